/* Sizes: tensors planned in bytes from their element types, configurations whose buffers
 * do not fit in size_t refused instead of wrapped (the 32-bit cases run under qemu-arm in
 * CI), and runs whose arena, input and outputs end at a guard page, so that a write or read
 * past any of them crashes the test instead of passing silently. */
/* mmap's MAP_ANONYMOUS and sysconf */
#define _DEFAULT_SOURCE 1
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "kernels/kernels.h"
#include "mnv3.h"
#include "plan/plan.h"
#include "model/weights.h"

static const mnv3_clamp unbounded = {-INFINITY, INFINITY};

static void conv1x1(mnv3_conv *c, uint32_t in, uint32_t out, int depthwise) {
    memset(c, 0, sizeof *c);
    c->in_channels = in;
    c->out_channels = out;
    c->kernel = c->stride = 1;
    c->depthwise = (uint32_t)depthwise;
    c->epilogue.activation = MNV3_ACT_RELU;
    c->epilogue.pre = c->epilogue.post = unbounded;
    c->has_bias = 1;
}

/* The smallest network with one wide tensor: a 1x1 stem 3 -> wide, a block of a 1x1
 * depthwise conv on `wide` channels and a projection to 1, last conv 1 -> 1, head 1 -> 10,
 * trained at size x size (which mnv3_config_init adopts). About 21 KB of weights at 1024. */
static mnv3_model *wide_model(uint32_t wide, uint32_t size) {
    mnv3_model *m = (mnv3_model *)calloc(1, sizeof *m);
    mnv3_error err;
    mnv3_block *b;
    if (!m) return NULL;
    m->input_channels = 3;
    conv1x1(&m->stem, 3, wide, 0);
    m->num_blocks = 1;
    b = &m->blocks[0];
    conv1x1(&b->depthwise, wide, wide, 1);
    conv1x1(&b->project, wide, 1, 0);
    b->project.epilogue.activation = MNV3_ACT_NONE;
    b->se.squeeze_clamp = b->se.scale_clamp = b->residual_clamp = unbounded;
    conv1x1(&m->last_conv, 1, 1, 0);
    m->pool_clamp = unbounded;
    m->num_head = 1;
    conv1x1(&m->head[0], 1, 10, 0);
    m->head[0].epilogue.activation = MNV3_ACT_NONE;
    m->preprocess.height = m->preprocess.width = size;
    m->preprocess.scale = 1.0f;
    m->preprocess.std[0] = m->preprocess.std[1] = m->preprocess.std[2] = 1.0f;
    if (mnv3_weights_attach(m, &err) != MNV3_OK || mnv3_model_validate(m, &err) != MNV3_OK) {
        CHECK_MSG(0, "wide model: %s", err.message);
        mnv3_model_free(m);
        return NULL;
    }
    mnv3_weights_fill_random(m, 3);
    return m;
}

/* ------------------------------------------------------------------------------------ */
/* Element types                                                                         */
/* ------------------------------------------------------------------------------------ */

static void test_typed_plan(void) {
    mnv3_model *m = NULL;
    mnv3_error err;
    static mnv3_step steps[MNV3_MAX_STEPS];
    static mnv3_tensor t32[MNV3_MAX_TENSORS], t8[MNV3_MAX_TENSORS], t16[MNV3_MAX_TENSORS];
    uint32_t ns, n32, n8, n16, i, j;
    size_t r32, b32, r8, b8, r16, b16;
    if (mnv3_model_create_builtin(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 1.0, 1000, 1, &m,
                                  &err) != MNV3_OK)
        return;
    CHECK_STATUS(mnv3_plan_steps(m, 224, 224, MNV3_DTYPE_F32, 0, steps, &ns, t32, &n32, &err), MNV3_OK);
    CHECK_STATUS(mnv3_plan_steps(m, 224, 224, MNV3_DTYPE_I8, 0, steps, &ns, t8, &n8, &err), MNV3_OK);
    CHECK_STATUS(mnv3_plan_steps(m, 224, 224, MNV3_DTYPE_F16, 0, steps, &ns, t16, &n16, &err), MNV3_OK);
    for (i = 0; i < n8 && i < n32; ++i) {
        CHECK(t32[i].dtype == MNV3_DTYPE_F32 && t8[i].dtype == MNV3_DTYPE_I8);
        /* bytes = elements x element size, rounded up to a cache line */
        CHECK(t8[i].bytes == (((size_t)t8[i].height * t8[i].width * t8[i].channels + 63) & ~(size_t)63));
        CHECK(t32[i].bytes == (((size_t)t32[i].height * t32[i].width * t32[i].channels * 4 + 63) & ~(size_t)63));
    }
    mnv3_plan_offsets(t32, n32, &r32, &b32);
    mnv3_plan_offsets(t8, n8, &r8, &b8);
    mnv3_plan_offsets(t16, n16, &r16, &b16);
    printf("Large 224x224 activations: f32 %zu B, f16 %zu B, i8 %zu B\n", r32, r16, r8);
    /* One byte per element: a quarter of the float plan (the fused expansions are chosen by
     * bytes, so int8 fuses fewer of them and the ratio is not exactly 4). */
    CHECK(r8 < r32 / 2 && r16 < r32);
    /* Mixed element sizes in one region: int32 accumulators beside int8 tensors beside
     * float vectors, placed by lifetime without overlapping a live neighbour. */
    {
        mnv3_tensor mix[12];
        size_t region, bound;
        for (i = 0; i < 12; ++i) {
            static const mnv3_dtype types[] = {MNV3_DTYPE_I8, MNV3_DTYPE_I32, MNV3_DTYPE_F32,
                                               MNV3_DTYPE_F16};
            memset(&mix[i], 0, sizeof mix[i]);
            mix[i].dtype = types[i % 4];
            mix[i].height = mix[i].width = 3 + i;
            mix[i].channels = 5 + 7 * i;
            mix[i].bytes = ((size_t)mix[i].height * mix[i].width * mix[i].channels *
                                mnv3_dtype_size(mix[i].dtype) + 63) & ~(size_t)63;
            mix[i].first = i;
            mix[i].last = i + 1 + i % 3;
        }
        mnv3_plan_offsets(mix, 12, &region, &bound);
        CHECK(region >= bound);
        for (i = 0; i < 12; ++i) {
            CHECK(mix[i].offset % 64 == 0 && mix[i].offset + mix[i].bytes <= region);
            for (j = 0; j < i; ++j) {
                const int live_together = mix[i].first <= mix[j].last && mix[j].first <= mix[i].last;
                const int apart = mix[i].offset + mix[i].bytes <= mix[j].offset ||
                                  mix[j].offset + mix[j].bytes <= mix[i].offset;
                CHECK_MSG(!live_together || apart, "tensors %u and %u overlap", i, j);
            }
        }
    }
    mnv3_model_free(m);
}

/* ------------------------------------------------------------------------------------ */
/* Sizes that do not fit in size_t                                                       */
/* ------------------------------------------------------------------------------------ */

static void expect_size(const mnv3_model *m, const mnv3_config *cfg, const char *what,
                        double min_bytes_64) {
    mnv3_error err;
    size_t bytes = 1;
    mnv3_context *ctx = NULL;
    const mnv3_status st = mnv3_arena_size(m, cfg, &bytes, &err);
    if (sizeof(size_t) < 8) {
        /* A 32-bit board: the request cannot be addressed, and says so. */
        CHECK_MSG(st == MNV3_ERR_SIZE_OVERFLOW, "%s: status %d (%s), %zu bytes", what, (int)st,
                  mnv3_status_string(st), bytes);
        CHECK(bytes == 0);
        CHECK_STATUS(mnv3_context_create(m, cfg, NULL, 0, &ctx, &err), MNV3_ERR_SIZE_OVERFLOW);
        CHECK(ctx == NULL);
        printf("%s: refused (%s)\n", what, err.message);
    } else {
        /* 64 bits: the exact size, never a wrapped one. */
        CHECK_MSG(st == MNV3_OK, "%s: %s", what, err.message);
        CHECK_MSG((double)bytes >= min_bytes_64, "%s: %zu bytes", what, bytes);
        printf("%s: %zu bytes\n", what, bytes);
    }
}

static void test_overflowing_sizes(void) {
    mnv3_config cfg;
    mnv3_model *m = wide_model(1024, 1024), *small = NULL;
    mnv3_error err;
    if (m) { /* two 1024x1024x1024 float tensors live at once: 8 GiB */
        mnv3_config_init(&cfg, m);
        CHECK(cfg.height == 1024 && cfg.width == 1024);
        cfg.isa = MNV3_ISA_SCALAR;
        expect_size(m, &cfg, "1024-channel stem at 1024x1024", 8.0 * 1024 * 1024 * 1024);
        cfg.isa = MNV3_ISA_AUTO;
        expect_size(m, &cfg, "1024-channel stem at 1024x1024, best kernels", 8.0 * 1024 * 1024 * 1024);
        mnv3_model_free(m);
    }
    m = wide_model(16384, 256);
    if (m) { /* 256x256x16384 floats: 4 GiB in one tensor */
        mnv3_config_init(&cfg, m);
        expect_size(m, &cfg, "16384-channel stem at 256x256", 4.0 * 1024 * 1024 * 1024);
        mnv3_model_free(m);
    }
    if (mnv3_model_create_builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.5, 10, 1, &small,
                                  &err) == MNV3_OK) {
        /* batch 256 of 3x4096x4096: 12.9 G input elements, 0 when counted in 32 bits */
        mnv3_config_init(&cfg, small);
        cfg.batch = 256;
        cfg.height = cfg.width = 4096;
        if (sizeof(size_t) < 8) {
            size_t bytes = 1;
            CHECK_STATUS(mnv3_arena_size(small, &cfg, &bytes, &err), MNV3_ERR_SIZE_OVERFLOW);
            CHECK(strstr(err.message, "batch") != NULL);
        }
        mnv3_model_free(small);
    }
}

/* ------------------------------------------------------------------------------------ */
/* Guard pages                                                                           */
/* ------------------------------------------------------------------------------------ */

typedef struct guarded {
    unsigned char *map;
    size_t map_bytes;
    void *p; /* `bytes` bytes ending exactly at the guard page */
} guarded;

static int guarded_alloc(guarded *g, size_t bytes) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t span = (bytes + page - 1) / page * page;
    memset(g, 0, sizeof *g);
    g->map_bytes = span + page;
    g->map = (unsigned char *)mmap(NULL, g->map_bytes, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED) return 0;
    if (mprotect(g->map + span, page, PROT_NONE) != 0) return 0;
    g->p = g->map + span - bytes;
    return 1;
}

static void guarded_free(guarded *g) {
    if (g->map && g->map != MAP_FAILED) munmap(g->map, g->map_bytes);
}

/* Arena, input, logits and features each end at a guard page; every kernel set, a
 * wide-channel model and a MobileNetV3, one and three threads. */
static void run_guarded(const mnv3_model *m, const char *name, uint32_t h, uint32_t w) {
    mnv3_model_info info;
    uint32_t isa, threads;
    mnv3_model_get_info(m, &info);
    for (isa = MNV3_ISA_SCALAR; isa < mnv3_isa_count(); ++isa) {
        if (!mnv3_isa_available((mnv3_isa)isa)) continue;
        for (threads = 1; threads <= 3; threads += 2) {
            mnv3_config cfg;
            mnv3_error err;
            mnv3_context *ctx = NULL;
            guarded arena, in, logits, feat;
            size_t bytes = 0, n_in, i;
            mnv3_config_init(&cfg, m);
            cfg.height = h;
            cfg.width = w;
            cfg.batch = 2;
            cfg.isa = (mnv3_isa)isa;
            cfg.threads = threads;
            CHECK_STATUS(mnv3_arena_size(m, &cfg, &bytes, &err), MNV3_OK);
            n_in = (size_t)2 * 3 * h * w;
            if (!guarded_alloc(&arena, bytes) || !guarded_alloc(&in, n_in * sizeof(float)) ||
                !guarded_alloc(&logits, 2 * info.num_classes * sizeof(float)) ||
                !guarded_alloc(&feat, 2 * info.feature_dim * sizeof(float))) {
                CHECK_MSG(0, "mmap failed");
                return;
            }
            CHECK(((uintptr_t)arena.p & 63u) == 0);
            for (i = 0; i < n_in; ++i) ((float *)in.p)[i] = (float)((i * 7919u) % 255u) / 127.0f - 1.0f;
            CHECK_STATUS(mnv3_context_create(m, &cfg, arena.p, bytes, &ctx, &err), MNV3_OK);
            if (ctx) {
                CHECK_STATUS(mnv3_run(ctx, (const float *)in.p, n_in, (float *)logits.p,
                                      2 * info.num_classes, (float *)feat.p, 2 * info.feature_dim),
                             MNV3_OK);
                CHECK(isfinite(((float *)logits.p)[2 * info.num_classes - 1]));
                /* one element short of what the configuration needs: refused, not read */
                CHECK_STATUS(mnv3_run(ctx, (const float *)in.p + 1, n_in - 1, (float *)logits.p,
                                      2 * info.num_classes, NULL, 0),
                             MNV3_ERR_SHAPE);
            }
            mnv3_context_free(ctx);
            guarded_free(&arena);
            guarded_free(&in);
            guarded_free(&logits);
            guarded_free(&feat);
        }
    }
    printf("guarded runs: %s %ux%u on every kernel set\n", name, h, w);
}

static void test_guard_pages(void) {
    mnv3_model *m = wide_model(67, 64), *small = NULL;
    mnv3_error err;
    if (m) {
        run_guarded(m, "67-channel stem", 45, 37);
        mnv3_model_free(m);
    }
    if (mnv3_model_create_builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.75, 10, 1, &small,
                                  &err) == MNV3_OK) {
        run_guarded(small, "Small 0.75", 67, 93);
        mnv3_model_free(small);
    }
}

int main(void) {
    printf("test_sizes (size_t is %u bits):\n", (unsigned)(sizeof(size_t) * 8));
    test_typed_plan();
    test_overflowing_sizes();
    test_guard_pages();
    return check_summary("test_sizes");
}
