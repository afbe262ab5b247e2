/* Firmware-style use of libmnv3.a: a model image in a byte array (as it would sit in flash)
 * used in place, one static arena sized by the library's own query, one inference, top-5.
 *
 *   firmware [MODEL.mnv3]
 *
 * With a model file, the file is read into the static "flash" array first; without one, a
 * built-in MobileNetV3-Small is serialised into it. Either way the model is then loaded
 * from the byte array with MNV3_LOAD_IN_PLACE, so no weight is copied. The heap is used at
 * set-up only: the network description, and for SIMD kernel sets their packed weights,
 * made by the first context and shared by any others (the scalar set reads the flash
 * image directly).
 *
 * Built a second time with MNV3_FIRMWARE_CHECK_HEAP and the allocator wrapped
 * (-Wl,--wrap=malloc,...), it fails if anything allocates during inference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnv3.h"

#define FLASH_BYTES (24u * 1024u * 1024u)
#define ARENA_BYTES (8u * 1024u * 1024u)
#define MAX_CLASSES 1001u

/* 64-byte alignment lets the weights be used in place. */
#if defined(__GNUC__)
#define ALIGN64 __attribute__((aligned(64)))
#else
#define ALIGN64
#endif

static unsigned char flash[FLASH_BYTES] ALIGN64;
static unsigned char arena[ARENA_BYTES] ALIGN64;
static float input[3 * 224 * 224];
static float logits[MAX_CLASSES];

#if defined(MNV3_FIRMWARE_CHECK_HEAP)
/* The allocator wrappers: count every heap call made while `in_inference` is set. */
void *__real_malloc(size_t n);
void __real_free(void *p);
void *__real_calloc(size_t n, size_t s);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void __wrap_free(void *p);
void *__wrap_calloc(size_t n, size_t s);
void *__wrap_realloc(void *p, size_t n);
static volatile int in_inference;
static volatile unsigned heap_calls_during_inference;
void *__wrap_malloc(size_t n) {
    if (in_inference) ++heap_calls_during_inference;
    return __real_malloc(n);
}
void __wrap_free(void *p) {
    if (in_inference && p) ++heap_calls_during_inference;
    __real_free(p);
}
void *__wrap_calloc(size_t n, size_t s) {
    if (in_inference) ++heap_calls_during_inference;
    return __real_calloc(n, s);
}
void *__wrap_realloc(void *p, size_t n) {
    if (in_inference) ++heap_calls_during_inference;
    return __real_realloc(p, n);
}
#define INFERENCE_BEGIN() (in_inference = 1)
#define INFERENCE_END() (in_inference = 0)
#else
#define INFERENCE_BEGIN() ((void)0)
#define INFERENCE_END() ((void)0)
#endif

static size_t read_model_file(const char *path) {
    FILE *f = fopen(path, "rb");
    size_t n;
    if (!f) {
        fprintf(stderr, "firmware: cannot open model '%s'\n", path);
        return 0;
    }
    n = fread(flash, 1, sizeof flash, f);
    if (!feof(f) && n == sizeof flash) {
        fprintf(stderr, "firmware: model '%s' exceeds the %u-byte flash area\n", path, FLASH_BYTES);
        n = 0;
    }
    fclose(f);
    return n;
}

static size_t builtin_model_image(void) {
    mnv3_model *m = NULL;
    mnv3_error err;
    size_t size = 0;
    if (mnv3_model_create_builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 1000, 1, &m,
                                  &err) != MNV3_OK ||
        mnv3_model_save_memory(m, flash, sizeof flash, &size, &err) != MNV3_OK) {
        fprintf(stderr, "firmware: built-in model: %s\n", err.message);
        size = 0;
    }
    mnv3_model_free(m);
    return size;
}

int main(int argc, char **argv) {
    mnv3_model *model = NULL;
    mnv3_context *ctx = NULL;
    mnv3_model_info info;
    mnv3_config cfg;
    mnv3_error err;
    mnv3_status st;
    size_t model_bytes, arena_needed = 0, i;
    uint32_t top[5], k;

#if defined(MNV3_FIRMWARE_CHECK_HEAP)
    /* Prove the wrappers are live before trusting a zero count. */
    {
        /* volatile: compilers may elide a malloc/free pair whose memory is never used. */
        void *volatile probe;
        INFERENCE_BEGIN();
        probe = malloc(16);
        free(probe);
        INFERENCE_END();
    }
    if (heap_calls_during_inference != 2) {
        fprintf(stderr, "firmware: allocator wrappers are not active\n");
        return 1;
    }
    heap_calls_during_inference = 0;
#endif
    model_bytes = argc > 1 ? read_model_file(argv[1]) : builtin_model_image();
    if (model_bytes == 0) return 1;
    st = mnv3_model_load_memory(flash, model_bytes, MNV3_LOAD_IN_PLACE, &model, &err);
    if (st != MNV3_OK) {
        fprintf(stderr, "firmware: load: %s\n", err.message);
        return 1;
    }
    mnv3_model_get_info(model, &info);
    if (info.num_classes > MAX_CLASSES) {
        fprintf(stderr, "firmware: %u classes exceed this example's %u\n", info.num_classes, MAX_CLASSES);
        mnv3_model_free(model);
        return 1;
    }

    mnv3_config_init(&cfg, model);
    cfg.height = cfg.width = 224;
    cfg.threads = 1;
    st = mnv3_arena_size(model, &cfg, &arena_needed, &err);
    if (st != MNV3_OK || arena_needed > sizeof arena) {
        fprintf(stderr, "firmware: arena needs %zu bytes, have %u (%s)\n", arena_needed,
                ARENA_BYTES, st != MNV3_OK ? err.message : "too small");
        mnv3_model_free(model);
        return 1;
    }
    st = mnv3_context_create(model, &cfg, arena, sizeof arena, &ctx, &err);
    if (st != MNV3_OK) {
        fprintf(stderr, "firmware: context: %s\n", err.message);
        mnv3_model_free(model);
        return 1;
    }

    /* A deterministic test pattern stands in for a camera frame. */
    for (i = 0; i < sizeof input / sizeof *input; ++i)
        input[i] = (float)((i * 7919u) % 255u) / 127.5f - 1.0f;

    INFERENCE_BEGIN();
    st = mnv3_run(ctx, input, sizeof input / sizeof *input, logits, info.num_classes, NULL, 0);
    INFERENCE_END();
    if (st != MNV3_OK) {
        fprintf(stderr, "firmware: run: %s\n", mnv3_status_string(st));
        return 1;
    }
    mnv3_softmax(logits, logits, 1, info.num_classes);
    mnv3_top_k(logits, info.num_classes, 5, top);
    printf("model %zu bytes in place, arena %zu of %u bytes used, kernels %s\n", model_bytes,
           arena_needed, ARENA_BYTES, mnv3_isa_name(mnv3_context_isa(ctx)));
    if (argc < 2) printf("(built-in model with random weights: pass a .mnv3 file for real classes)\n");
    for (k = 0; k < 5; ++k) {
        const char *label = mnv3_model_label(model, top[k]);
        printf("  %u %-24s %.4f\n", top[k], label ? label : "", (double)logits[top[k]]);
    }
    mnv3_context_free(ctx);
    mnv3_model_free(model);
#if defined(MNV3_FIRMWARE_CHECK_HEAP)
    if (heap_calls_during_inference != 0) {
        fprintf(stderr, "firmware: %u heap calls during inference\n", heap_calls_during_inference);
        return 1;
    }
    printf("no heap use during inference\n");
#endif
    return 0;
}
