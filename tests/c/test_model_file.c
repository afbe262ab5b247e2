/* The .mnv3 reader and writer: canonical round trips, in-place loading, and one refusal
 * per kind of malformed file, each with its specific status. Malformed files are made by
 * corrupting a valid saved image; where the targeted check comes after the checksum, the
 * CRC is recomputed so that the corruption reaches it. */
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* mkdtemp, mkfifo, alarm */
#endif
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "mnv3.h"
#include "model/model.h"
#include "format/model_file.h"
#include "special_files.h"
#include "base/alloc.h"
#include "model/weights.h"

/* ---- little-endian field access on an image ---------------------------------------- */

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }
static void wrf(uint8_t *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    wr32(p, u);
}

static void fix_crc(uint8_t *d, size_t size) { wr32(d + 40, mnv3_crc32(0, d + 64, size - 64)); }

static uint8_t *section_entry(uint8_t *d, uint32_t type) {
    uint32_t n = rd32(d + 28), i;
    for (i = 0; i < n; ++i)
        if (rd32(d + 64 + 24 * i) == type) return d + 64 + 24 * i;
    return NULL;
}
static uint8_t *section(uint8_t *d, uint32_t type) { return d + rd64(section_entry(d, type) + 8); }
static uint8_t *tensor_entry(uint8_t *d, uint32_t index) { return section(d, 2) + 8 + 24 * index; }
/* Conv records: the stem follows the 24-byte network header. */
static uint8_t *stem(uint8_t *d) { return section(d, 1) + 24; }
static uint8_t *block0(uint8_t *d) { return stem(d) + 80; }

/* ---- models and images ---------------------------------------------------------------- */

static mnv3_model *builtin(mnv3_arch arch, mnv3_flavor flavor, double width, uint32_t classes) {
    mnv3_model *m = NULL;
    mnv3_error err;
    mnv3_status st = mnv3_model_create_builtin(arch, flavor, width, classes, 42, &m, &err);
    CHECK_MSG(st == MNV3_OK, "create_builtin: %s", err.message);
    return m;
}

/* 64-byte aligned copy so images can also be loaded in place. */
typedef struct image {
    uint8_t *d;
    size_t size;
    void *raw;
} image;

static image save(const mnv3_model *m) {
    image im = {NULL, 0, NULL};
    mnv3_error err;
    size_t size = 0;
    if (!m) return im;
    CHECK_STATUS(mnv3_model_save_memory(m, NULL, 0, &size, &err), MNV3_OK);
    im.d = (uint8_t *)mnv3_alloc_aligned(size + 1, &im.raw);
    im.size = size;
    CHECK_STATUS(mnv3_model_save_memory(m, im.d, size, &size, &err), MNV3_OK);
    CHECK(size == im.size);
    return im;
}

static image clone(image a) {
    image b = a;
    b.d = (uint8_t *)mnv3_alloc_aligned(a.size + 1, &b.raw);
    memcpy(b.d, a.d, a.size);
    return b;
}

static void drop(image *im) {
    free(im->raw);
    im->raw = NULL;
    im->d = NULL;
}

static mnv3_status load(image im, uint32_t flags, mnv3_error *err) {
    mnv3_model *m = NULL;
    mnv3_status st = mnv3_model_load_memory(im.d, im.size, flags, &m, err);
    CHECK((st == MNV3_OK) == (m != NULL));
    mnv3_model_free(m);
    return st;
}

/* ---- round trips -------------------------------------------------------------------------- */

static void logits_of(const mnv3_model *m, float *out, uint32_t classes) {
    mnv3_config cfg;
    mnv3_context *ctx = NULL;
    mnv3_error err;
    static float input[3 * 96 * 96];
    size_t i;
    for (i = 0; i < sizeof input / sizeof *input; ++i) input[i] = (float)((i * 7919u) % 255u) / 64.0f - 2.0f;
    mnv3_config_init(&cfg, m);
    cfg.height = cfg.width = 96;
    cfg.isa = MNV3_ISA_SCALAR;
    CHECK_STATUS(mnv3_context_create(m, &cfg, NULL, 0, &ctx, &err), MNV3_OK);
    if (!ctx) return;
    CHECK_STATUS(mnv3_run(ctx, input, sizeof input / sizeof *input, out, classes, NULL, 0), MNV3_OK);
    mnv3_context_free(ctx);
}

static void round_trip(mnv3_arch arch, mnv3_flavor flavor, double width, uint32_t classes) {
    mnv3_model *a = builtin(arch, flavor, width, classes), *b = NULL;
    image first, second;
    mnv3_error err;
    float *la, *lb;
    if (!a) return;
    first = save(a);
    CHECK_STATUS(mnv3_model_load_memory(first.d, first.size, 0, &b, &err), MNV3_OK);
    if (!b) {
        fprintf(stderr, "load: %s\n", err.message);
        mnv3_model_free(a);
        drop(&first);
        return;
    }
    second = save(b);
    CHECK_MSG(second.size == first.size && memcmp(first.d, second.d, first.size) == 0,
              "arch %d flavor %d width %g: save-load-save differs", (int)arch, (int)flavor, width);
    la = (float *)calloc(classes, sizeof *la);
    lb = (float *)calloc(classes, sizeof *lb);
    logits_of(a, la, classes);
    logits_of(b, lb, classes);
    CHECK_MSG(memcmp(la, lb, classes * sizeof *la) == 0,
              "arch %d flavor %d width %g: logits differ after load", (int)arch, (int)flavor, width);
    {
        mnv3_model_info ia, ib;
        mnv3_model_get_info(a, &ia);
        mnv3_model_get_info(b, &ib);
        CHECK(ia.parameters == ib.parameters && ia.stored_floats == ib.stored_floats);
        CHECK(ia.arch == ib.arch && ia.flavor == ib.flavor && ib.has_labels == 0);
        CHECK(memcmp(&ia.preprocess, &ib.preprocess, sizeof ia.preprocess) == 0);
    }
    free(la);
    free(lb);
    mnv3_model_free(a);
    mnv3_model_free(b);
    drop(&first);
    drop(&second);
}

static const char *const label_names[10] = {"zero", "one", "two", "three", "four", "five",
                                            "six", "seven", ("\xC3\xA4" "cht"), "nine"};

/* Small models keep the exhaustive tests fast; labels exercise the optional section. */
static mnv3_model *small_labelled(void) {
    mnv3_model *m = builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.25, 10);
    if (m) {
        m->labels = label_names;
        m->num_labels = 10;
    }
    return m;
}

/* A few blocks and a narrow head: a ~20 KB image, cheap to cut at every length. */
static mnv3_model *tiny_labelled(void) {
    mnv3_model *m = small_labelled();
    mnv3_error err;
    if (!m) return NULL;
    m->num_blocks = 4;
    m->last_conv.in_channels = m->blocks[3].project.out_channels;
    m->last_conv.out_channels = 32;
    m->head[0].in_channels = 32;
    m->head[0].out_channels = 24;
    m->head[1].in_channels = 24;
    CHECK_STATUS(mnv3_weights_attach(m, &err), MNV3_OK);
    mnv3_weights_fill_random(m, 9);
    CHECK_STATUS(mnv3_model_validate(m, &err), MNV3_OK);
    return m;
}

static void test_labels_and_in_place(void) {
    mnv3_model *a = small_labelled(), *b = NULL;
    image im, misaligned, again;
    mnv3_error err;
    if (!a) return;
    im = save(a);
    CHECK_STATUS(mnv3_model_load_memory(im.d, im.size, MNV3_LOAD_IN_PLACE, &b, &err), MNV3_OK);
    if (b) {
        CHECK(strcmp(mnv3_model_label(b, 8), "\xC3\xA4" "cht") == 0);
        CHECK(mnv3_model_label(b, 10) == NULL);
        /* In place: weights and labels point into the caller's bytes. */
        CHECK((const uint8_t *)b->stem.weight >= im.d &&
              (const uint8_t *)b->stem.weight < im.d + im.size);
        CHECK((const uint8_t *)mnv3_model_label(b, 0) > im.d &&
              (const uint8_t *)mnv3_model_label(b, 0) < im.d + im.size);
        CHECK(((uintptr_t)b->blocks[3].project.weight & 63u) == 0);
        again = save(b);
        CHECK(again.size == im.size && memcmp(again.d, im.d, im.size) == 0);
        drop(&again);
        mnv3_model_free(b);
        b = NULL;
    }
    /* A copy: nothing points into the caller's bytes. */
    CHECK_STATUS(mnv3_model_load_memory(im.d, im.size, 0, &b, &err), MNV3_OK);
    if (b) {
        CHECK((const uint8_t *)b->stem.weight < im.d ||
              (const uint8_t *)b->stem.weight >= im.d + im.size);
        CHECK(strcmp(mnv3_model_label(b, 3), "three") == 0);
        mnv3_model_free(b);
        b = NULL;
    }
    misaligned.d = (uint8_t *)mnv3_alloc_aligned(im.size + 64, &misaligned.raw);
    misaligned.d += 16;
    misaligned.size = im.size;
    memcpy(misaligned.d, im.d, im.size);
    CHECK_STATUS(mnv3_model_load_memory(misaligned.d, im.size, MNV3_LOAD_IN_PLACE, &b, &err),
                 MNV3_ERR_MISALIGNED_DATA);
    CHECK(b == NULL);
    /* Without in-place, any alignment is fine. */
    CHECK_STATUS(load(misaligned, 0, &err), MNV3_OK);
    drop(&misaligned);
    drop(&im);
    mnv3_model_free(a);
}

/* Under SAME the padding comes from the input size: stored pads, even ones no explicit
 * padding could have (>= kernel), are ignored and read as 0. */
static void test_same_padding_ignores_stored_pads(void) {
    mnv3_model *a = builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TFLITE, 0.25, 10), *b = NULL;
    image im, again;
    mnv3_error err;
    uint8_t *dw;
    float la[10], lb[10];
    uint32_t i;
    if (!a) return;
    im = save(a);
    /* Pads held in memory under SAME are written as 0. */
    a->stem.pad_bottom = 5;
    again = save(a);
    CHECK(again.size == im.size && memcmp(again.d, im.d, im.size) == 0);
    drop(&again);
    a->stem.pad_bottom = 0;
    CHECK(rd32(stem(im.d) + 20) == 1 && rd32(stem(im.d) + 12) == 3);
    CHECK(a->blocks[0].has_expand == 0);
    dw = block0(im.d) + 28; /* block 0 has no expansion: its depthwise record comes first */
    CHECK(rd32(dw) == 1 && rd32(dw + 20) == 1);
    wr32(stem(im.d) + 24, 7);
    wr32(stem(im.d) + 28, 3);
    wr32(stem(im.d) + 32, 100);
    wr32(stem(im.d) + 36, 0xFFFFFFFFu);
    for (i = 0; i < 4; ++i) wr32(dw + 24 + 4 * i, 3);
    fix_crc(im.d, im.size);
    CHECK_STATUS(mnv3_model_load_memory(im.d, im.size, 0, &b, &err), MNV3_OK);
    if (b) {
        CHECK(b->stem.pad_top == 0 && b->stem.pad_left == 0 && b->stem.pad_bottom == 0 &&
              b->stem.pad_right == 0 && b->blocks[0].depthwise.pad_top == 0);
        logits_of(a, la, 10);
        logits_of(b, lb, 10);
        CHECK(memcmp(la, lb, sizeof la) == 0);
        /* Saved again, the pads are written as 0: the original image. */
        again = save(b);
        wr32(stem(im.d) + 24, 0);
        wr32(stem(im.d) + 28, 0);
        wr32(stem(im.d) + 32, 0);
        wr32(stem(im.d) + 36, 0);
        for (i = 0; i < 4; ++i) wr32(dw + 24 + 4 * i, 0);
        fix_crc(im.d, im.size);
        CHECK(again.size == im.size && memcmp(again.d, im.d, im.size) == 0);
        drop(&again);
        mnv3_model_free(b);
    } else {
        fprintf(stderr, "SAME with stored pads: %s\n", err.message);
    }
    /* The same pads under explicit padding are refused. */
    wr32(stem(im.d) + 20, 0);
    wr32(stem(im.d) + 32, 3);
    fix_crc(im.d, im.size);
    CHECK_STATUS(load(im, 0, &err), MNV3_ERR_BAD_LAYER);
    CHECK(strstr(err.message, "stem: padding") != NULL);
    drop(&im);
    mnv3_model_free(a);
}

static mnv3_status load_path(const char *path, mnv3_error *err) {
    mnv3_model *m = NULL;
    mnv3_status st = mnv3_model_load_file(path, 0, &m, err);
    CHECK((st == MNV3_OK) == (m != NULL));
    mnv3_model_free(m);
    return st;
}

/* Saves a small model (about 12 KiB) to `path`. */
static mnv3_status save_path(const char *path, mnv3_error *err) {
    mnv3_model *m = builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.25, 10);
    mnv3_status st = m ? mnv3_model_save_file(m, path, err) : MNV3_ERR_OUT_OF_MEMORY;
    mnv3_model_free(m);
    return st;
}

static void test_file_io(void) {
    const char *dir = getenv("BUILD");
    char path[512];
    mnv3_model *a = small_labelled(), *b = NULL;
    mnv3_error err;
    image im;
    if (!a) return;
    snprintf(path, sizeof path, "%s/test_model_file.tmp.mnv3", dir ? dir : ".");
    CHECK_STATUS(mnv3_model_save_file(a, path, &err), MNV3_OK);
    CHECK_STATUS(mnv3_model_load_file(path, 0, &b, &err), MNV3_OK);
    if (b) {
        im = save(b);
        {
            image orig = save(a);
            CHECK(orig.size == im.size && memcmp(orig.d, im.d, im.size) == 0);
            drop(&orig);
        }
        drop(&im);
        mnv3_model_free(b);
        b = NULL;
    }
    remove(path);
    CHECK_STATUS(mnv3_model_load_file(path, 0, &b, &err), MNV3_ERR_IO);
    CHECK(strstr(err.message, "test_model_file.tmp.mnv3") != NULL);
    CHECK_STATUS(mnv3_model_save_file(a, "/nonexistent-dir/x.mnv3", &err), MNV3_ERR_IO);
    CHECK_STATUS(mnv3_model_load_file(NULL, 0, &b, &err), MNV3_ERR_NULL_ARGUMENT);
    mnv3_model_free(a);
    /* Directories, FIFOs, sockets and devices are refused as such, never read. */
    test_special_files(load_path, "test_model_file");
    /* nor written; a failed save leaves the old file. */
    test_special_files_for_writing(save_path, "test_model_file");
}

static void test_arguments(void) {
    mnv3_model *a = builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.25, 10), *b = NULL;
    mnv3_error err;
    image im = save(a);
    size_t size = 0;
    uint8_t small[16];
    CHECK_STATUS(mnv3_model_load_memory(NULL, 10, 0, &b, &err), MNV3_ERR_NULL_ARGUMENT);
    CHECK_STATUS(mnv3_model_load_memory(im.d, im.size, 0, NULL, &err), MNV3_ERR_NULL_ARGUMENT);
    CHECK_STATUS(mnv3_model_load_memory(im.d, im.size, 0x100, &b, &err),
                 MNV3_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(mnv3_model_load_memory(im.d, 0, 0, &b, NULL), MNV3_ERR_FILE_TRUNCATED);
    CHECK_STATUS(mnv3_model_save_memory(NULL, NULL, 0, &size, &err), MNV3_ERR_NULL_ARGUMENT);
    CHECK_STATUS(mnv3_model_save_memory(a, small, sizeof small, &size, &err),
                 MNV3_ERR_INVALID_ARGUMENT);
    CHECK(size == im.size);
    /* Only what loads is saved: a NaN or infinite weight or bias is refused by name. */
    ((float *)(void *)a->blocks[2].depthwise.weight)[3] = NAN;
    CHECK_STATUS(mnv3_model_save_memory(a, NULL, 0, &size, &err), MNV3_ERR_BAD_TENSOR);
    CHECK(strstr(err.message, "block 2 depthwise: weight element 3 is NaN") != NULL);
    ((float *)(void *)a->blocks[2].depthwise.weight)[3] = 0.5f;
    ((float *)(void *)a->head[0].bias)[0] = -INFINITY;
    CHECK_STATUS(mnv3_model_save_memory(a, NULL, 0, &size, &err), MNV3_ERR_BAD_TENSOR);
    CHECK(strstr(err.message, "head 0: bias element 0 is infinite") != NULL);
    ((float *)(void *)a->head[0].bias)[0] = 0.0f;
    CHECK_STATUS(mnv3_model_save_memory(a, NULL, 0, &size, &err), MNV3_OK);
    /* CRC-32/ISO-HDLC check value. */
    CHECK(mnv3_crc32(0, "123456789", 9) == 0xCBF43926u);
    CHECK(mnv3_crc32(mnv3_crc32(0, "1234", 4), "56789", 5) == 0xCBF43926u);
    drop(&im);
    mnv3_model_free(a);
}

/* ---- malformed files ----------------------------------------------------------------- */

typedef void (*corruptor)(uint8_t *d, size_t size);

static image base_image;

/* Applies `f` to a fresh copy, optionally re-seals the CRC, loads, and expects `want` (and,
 * when given, a fragment of the message). */
static void expect(const char *name, corruptor f, int reseal, mnv3_status want,
                   const char *fragment) {
    image im = clone(base_image);
    mnv3_error err;
    mnv3_status st;
    memset(&err, 0, sizeof err);
    f(im.d, im.size);
    if (reseal) fix_crc(im.d, im.size);
    st = load(im, 0, &err);
    CHECK_MSG(st == want, "%s: got %d (%s: %s), expected %d", name, (int)st,
              mnv3_status_string(st), err.message, (int)want);
    if (st != MNV3_OK) CHECK_MSG(err.status == st && err.message[0], "%s: no message", name);
    if (fragment)
        CHECK_MSG(strstr(err.message, fragment) != NULL, "%s: message \"%s\" lacks \"%s\"", name,
                  err.message, fragment);
    /* The same bytes in place must be refused the same way. */
    CHECK_MSG(load(im, MNV3_LOAD_IN_PLACE, &err) == want, "%s: in place differs", name);
    drop(&im);
}

#define CORRUPT(name, body)                                                                  \
    static void name(uint8_t *d, size_t size) {                                              \
        (void)size;                                                                          \
        body;                                                                                \
    }

CORRUPT(c_magic, d[3] = 'X')
CORRUPT(c_version, wr32(d + 8, 2))
CORRUPT(c_minor, wr32(d + 8, 1 | 7u << 16))
CORRUPT(c_bom, { d[12] = 1; d[13] = 2; d[14] = 3; d[15] = 4; })
CORRUPT(c_file_size_big, wr64(d + 16, size + 64))
CORRUPT(c_header_size, wr32(d + 24, 72))
CORRUPT(c_sections_0, wr32(d + 28, 0))
CORRUPT(c_sections_17, wr32(d + 28, 17))
CORRUPT(c_table_offset, wr64(d + 32, 128))
CORRUPT(c_header_flags, wr32(d + 44, 1))
CORRUPT(c_header_reserved, d[60] = 1)
CORRUPT(c_payload_byte, d[size - 5] ^= 0x40)
CORRUPT(c_duplicate_section, wr32(d + 64 + 24 * 2, 1))
CORRUPT(c_unknown_section, wr32(d + 64 + 24 * 2, 9))
CORRUPT(c_extension_section, wr32(section_entry(d, 4), 0x80000004u))
CORRUPT(c_missing_section, wr32(d + 64 + 24 * 2, 0x80000003u))
CORRUPT(c_section_reserved, wr32(d + 64 + 4, 1))
CORRUPT(c_section_past_end, wr64(section_entry(d, 3) + 8, size - 40))
CORRUPT(c_section_unaligned, wr64(section_entry(d, 3) + 8, rd64(section_entry(d, 3) + 8) + 4))
CORRUPT(c_section_overflow, wr64(section_entry(d, 3) + 16, UINT64_MAX - 8))
CORRUPT(c_section_in_table, wr64(section_entry(d, 3) + 8, 64))
CORRUPT(c_network_short, wr64(section_entry(d, 1) + 16, rd64(section_entry(d, 1) + 16) - 4))
CORRUPT(c_preprocess_long, wr64(section_entry(d, 3) + 16, 56))
CORRUPT(c_tensor_count_0, wr32(section(d, 2), 0))
CORRUPT(c_tensor_count_big, wr32(section(d, 2), 5000))
CORRUPT(c_tensor_count_more, wr32(section(d, 2), rd32(section(d, 2)) + 1))
CORRUPT(c_tensor_misaligned, wr64(tensor_entry(d, 1) + 8, rd64(tensor_entry(d, 1) + 8) + 4))
CORRUPT(c_tensor_past_end, wr64(tensor_entry(d, 1) + 8, (size + 64) & ~(uint64_t)63))
CORRUPT(c_tensor_overflow, wr64(tensor_entry(d, 1) + 16, UINT64_MAX / 2))
CORRUPT(c_tensor_huge, wr64(tensor_entry(d, 1) + 16, (uint64_t)1 << 40))
CORRUPT(c_tensor_overlap, wr64(tensor_entry(d, 1) + 8, rd64(tensor_entry(d, 0) + 8)))
CORRUPT(c_tensor_dtype, wr32(tensor_entry(d, 0), 7))
CORRUPT(c_tensor_dtype_mismatch, wr32(tensor_entry(d, 0), 2))
CORRUPT(c_tensor_count_mismatch, wr64(tensor_entry(d, 0) + 16, rd64(tensor_entry(d, 0) + 16) - 1))
CORRUPT(c_bias_count_mismatch, wr64(tensor_entry(d, 1) + 16, 1))
CORRUPT(c_tensor_index, wr32(stem(d) + 64, 9999))
CORRUPT(c_bias_index, wr32(stem(d) + 68, 9999))
CORRUPT(c_bias_without_flag, wr32(stem(d) + 44, 2))
CORRUPT(c_chain, wr32(stem(d) + 8, 24))
CORRUPT(c_absurd_channels, wr32(stem(d) + 8, 1u << 30))
CORRUPT(c_input_channels, wr32(section(d, 1) + 8, 4))
CORRUPT(c_kernel, wr32(stem(d) + 12, 13))
CORRUPT(c_stride, wr32(stem(d) + 16, 3))
CORRUPT(c_padding, wr32(stem(d) + 24, 3))
CORRUPT(c_groups, wr32(stem(d) + 0, 2))
CORRUPT(c_padding_mode, wr32(stem(d) + 20, 2))
CORRUPT(c_activation, wr32(stem(d) + 40, 9))
CORRUPT(c_arch, wr32(section(d, 1), 7))
CORRUPT(c_flavor, wr32(section(d, 1) + 4, 9))
CORRUPT(c_network_reserved, wr32(section(d, 1) + 20, 1))
CORRUPT(c_num_blocks, wr32(section(d, 1) + 12, 65))
CORRUPT(c_num_head, wr32(section(d, 1) + 16, 0))
CORRUPT(c_conv_flags, wr32(stem(d) + 44, 1u | 1u << 5))
CORRUPT(c_conv_reserved, wr32(stem(d) + 76, 1))
CORRUPT(c_block_flags, wr32(block0(d), rd32(block0(d)) | 8u))
CORRUPT(c_residual_illegal, wr32(block0(d), rd32(block0(d)) | 4u))
CORRUPT(c_clamp_nan, wrf(stem(d) + 48, NAN))
CORRUPT(c_clamp_reversed, { wrf(stem(d) + 56, 1.0f); wrf(stem(d) + 60, 0.0f); })
CORRUPT(c_block_clamp_nan, wrf(block0(d) + 4, NAN))
CORRUPT(c_std_zero, wrf(section(d, 3) + 36, 0.0f))
CORRUPT(c_std_nan, wrf(section(d, 3) + 32, NAN))
CORRUPT(c_scale_inf, wrf(section(d, 3) + 16, INFINITY))
CORRUPT(c_channel_order, wr32(section(d, 3) + 8, 2))
CORRUPT(c_layout, wr32(section(d, 3) + 12, 5))
CORRUPT(c_preprocess_reserved, wr32(section(d, 3) + 44, 1))
CORRUPT(c_preprocess_size, wr32(section(d, 3), 5000))
CORRUPT(c_label_nul, {
    uint8_t *e = section_entry(d, 4);
    d[rd64(e + 8) + rd64(e + 16) - 1] = 'x';
})
CORRUPT(c_label_count_more, wr32(section(d, 4), 11))
CORRUPT(c_label_count_less, wr32(section(d, 4), 9))
CORRUPT(c_label_count_zero, wr32(section(d, 4), 0))
CORRUPT(c_label_utf8, section(d, 4)[4] = 0xFF)
/* Weights and biases: tensor 0 is the stem's weight, the last one the head's bias. */
CORRUPT(c_weight_nan, wrf(d + rd64(tensor_entry(d, 0) + 8) + 4 * 5, NAN))
CORRUPT(c_weight_inf, wrf(d + rd64(tensor_entry(d, 0) + 8) + 4 * 7, -INFINITY))
CORRUPT(c_bias_inf, {
    uint32_t last = rd32(section(d, 2)) - 1;
    wrf(d + rd64(tensor_entry(d, last) + 8) + 4 * 2, INFINITY);
})

static void test_malformed(void) {
    mnv3_model *m = small_labelled();
    image extra;
    mnv3_error err;
    if (!m) return;
    base_image = save(m);
    CHECK_STATUS(load(base_image, 0, &err), MNV3_OK);

    /* Header: checked before the checksum, no resealing needed. */
    expect("magic", c_magic, 0, MNV3_ERR_BAD_MAGIC, "magic");
    expect("version", c_version, 0, MNV3_ERR_BAD_VERSION, "version 2.0");
    expect("minor version", c_minor, 0, MNV3_OK, NULL);
    expect("byte order", c_bom, 0, MNV3_ERR_BAD_ENDIANNESS, "byte_order_mark");
    expect("file_size", c_file_size_big, 0, MNV3_ERR_FILE_TRUNCATED, "file_size");
    expect("header_size", c_header_size, 0, MNV3_ERR_BAD_OFFSET, "header_size");
    expect("section_count 0", c_sections_0, 0, MNV3_ERR_SIZE_OVERFLOW, "section_count");
    expect("section_count 17", c_sections_17, 0, MNV3_ERR_SIZE_OVERFLOW, "section_count");
    expect("section table offset", c_table_offset, 0, MNV3_ERR_BAD_OFFSET, "section_table_offset");
    expect("header flags", c_header_flags, 0, MNV3_ERR_BAD_ENUM, "flags");
    expect("header reserved", c_header_reserved, 0, MNV3_ERR_BAD_ENUM, "reserved");
    expect("payload byte", c_payload_byte, 0, MNV3_ERR_CHECKSUM, "CRC");
    expect("payload byte resealed", c_payload_byte, 1, MNV3_OK, NULL);

    /* Trailing bytes beyond file_size. */
    extra = clone(base_image);
    extra.size += 1;
    CHECK_STATUS(load(extra, 0, &err), MNV3_ERR_SIZE_OVERFLOW);
    drop(&extra);
    /* Skipping the checksum lets a corrupted weight through. */
    extra = clone(base_image);
    c_payload_byte(extra.d, extra.size);
    CHECK_STATUS(load(extra, MNV3_LOAD_SKIP_CHECKSUM, &err), MNV3_OK);
    CHECK_STATUS(load(extra, MNV3_LOAD_SKIP_CHECKSUM | MNV3_LOAD_IN_PLACE, &err), MNV3_OK);
    drop(&extra);

    /* Section table. */
    expect("duplicate section", c_duplicate_section, 1, MNV3_ERR_BAD_ENUM, "appears twice");
    expect("unknown section", c_unknown_section, 1, MNV3_ERR_BAD_ENUM, "type 9 unknown");
    expect("extension section", c_extension_section, 1, MNV3_OK, NULL);
    expect("missing section", c_missing_section, 1, MNV3_ERR_BAD_ENUM, "PREPROCESS is missing");
    expect("section reserved", c_section_reserved, 1, MNV3_ERR_BAD_ENUM, "section 0");
    expect("section past end", c_section_past_end, 1, MNV3_ERR_BAD_OFFSET, "PREPROCESS");
    expect("section unaligned", c_section_unaligned, 1, MNV3_ERR_BAD_OFFSET, "8-aligned");
    expect("section overflow", c_section_overflow, 1, MNV3_ERR_SIZE_OVERFLOW, "overflows");
    expect("section in table", c_section_in_table, 1, MNV3_ERR_BAD_OFFSET, "section table");
    expect("network short", c_network_short, 1, MNV3_ERR_FILE_TRUNCATED, "head 1");
    expect("preprocess long", c_preprocess_long, 1, MNV3_ERR_SIZE_OVERFLOW, "PREPROCESS");

    /* Tensor table and references. */
    expect("tensor count 0", c_tensor_count_0, 1, MNV3_ERR_SIZE_OVERFLOW, "tensor count 0");
    expect("tensor count 5000", c_tensor_count_big, 1, MNV3_ERR_SIZE_OVERFLOW, "5000");
    expect("tensor count +1", c_tensor_count_more, 1, MNV3_ERR_FILE_TRUNCATED, "TENSORS");
    expect("tensor misaligned", c_tensor_misaligned, 1, MNV3_ERR_BAD_OFFSET, "64-aligned");
    expect("tensor past end", c_tensor_past_end, 1, MNV3_ERR_BAD_OFFSET, "tensor 1");
    expect("tensor overflow", c_tensor_overflow, 1, MNV3_ERR_SIZE_OVERFLOW, "tensor 1");
    expect("tensor huge", c_tensor_huge, 1, MNV3_ERR_BAD_OFFSET, "tensor 1");
    expect("tensor overlap", c_tensor_overlap, 1, MNV3_ERR_BAD_OFFSET, "previous tensor");
    expect("tensor dtype", c_tensor_dtype, 1, MNV3_ERR_BAD_TENSOR, "dtype 7");
    expect("int8 weights in a float model", c_tensor_dtype_mismatch, 1, MNV3_ERR_BAD_TENSOR,
           "stem: weight tensor 0 is int8, expected float32");
    expect("weight count", c_tensor_count_mismatch, 1, MNV3_ERR_BAD_TENSOR,
           "stem: weight tensor 0 has 215 elements, expected 216");
    expect("bias count", c_bias_count_mismatch, 1, MNV3_ERR_BAD_TENSOR,
           "stem: bias tensor 1 has 1 elements, expected 8");
    expect("weight index", c_tensor_index, 1, MNV3_ERR_BAD_TENSOR, "weight tensor 9999");
    expect("bias index", c_bias_index, 1, MNV3_ERR_BAD_TENSOR, "bias tensor 9999");
    expect("bias without flag", c_bias_without_flag, 1, MNV3_ERR_BAD_TENSOR, "0xFFFFFFFF");
    expect("weight NaN", c_weight_nan, 1, MNV3_ERR_BAD_TENSOR,
           "stem: weight tensor 0 element 5 is NaN");
    expect("weight -inf", c_weight_inf, 1, MNV3_ERR_BAD_TENSOR,
           "stem: weight tensor 0 element 7 is infinite");
    expect("bias inf", c_bias_inf, 1, MNV3_ERR_BAD_TENSOR, "head 1: bias tensor");
    expect("bias inf unchecked", c_bias_inf, 0, MNV3_ERR_CHECKSUM, NULL);

    /* Network description. */
    expect("chain", c_chain, 1, MNV3_ERR_SHAPE_CHAIN, "block 0");
    expect("absurd channels", c_absurd_channels, 1, MNV3_ERR_BAD_LAYER, "out_channels");
    expect("input channels", c_input_channels, 1, MNV3_ERR_BAD_LAYER, "input_channels");
    expect("kernel", c_kernel, 1, MNV3_ERR_BAD_LAYER, "kernel 13");
    expect("stride", c_stride, 1, MNV3_ERR_BAD_LAYER, "stride 3");
    expect("padding", c_padding, 1, MNV3_ERR_BAD_LAYER, "padding");
    expect("groups", c_groups, 1, MNV3_ERR_BAD_ENUM, "stem: groups_mode 2");
    expect("padding mode", c_padding_mode, 1, MNV3_ERR_BAD_ENUM, "padding_mode 2");
    expect("activation", c_activation, 1, MNV3_ERR_BAD_ENUM, "activation 9");
    expect("arch", c_arch, 1, MNV3_ERR_BAD_ENUM, "arch 7");
    expect("flavor", c_flavor, 1, MNV3_ERR_BAD_ENUM, "flavor 9");
    expect("network reserved", c_network_reserved, 1, MNV3_ERR_BAD_ENUM, "reserved");
    expect("num_blocks", c_num_blocks, 1, MNV3_ERR_SIZE_OVERFLOW, "num_blocks 65");
    expect("num_head", c_num_head, 1, MNV3_ERR_BAD_LAYER, "num_head 0");
    expect("conv flags", c_conv_flags, 1, MNV3_ERR_BAD_ENUM, "reserved bits");
    expect("conv reserved", c_conv_reserved, 1, MNV3_ERR_BAD_ENUM, "stem: reserved");
    expect("block flags", c_block_flags, 1, MNV3_ERR_BAD_ENUM, "block 0: flags");
    expect("illegal residual", c_residual_illegal, 1, MNV3_ERR_SHAPE_CHAIN, "residual");
    expect("clamp NaN", c_clamp_nan, 1, MNV3_ERR_BAD_LAYER, "stem: pre clamp");
    expect("clamp reversed", c_clamp_reversed, 1, MNV3_ERR_BAD_LAYER, "stem: post clamp");
    expect("block clamp NaN", c_block_clamp_nan, 1, MNV3_ERR_BAD_LAYER, "block 0: residual");

    /* Metadata. */
    expect("std 0", c_std_zero, 1, MNV3_ERR_BAD_METADATA, "std[1]");
    expect("std NaN", c_std_nan, 1, MNV3_ERR_BAD_METADATA, "std[0]");
    expect("scale inf", c_scale_inf, 1, MNV3_ERR_BAD_METADATA, "scale");
    expect("channel order", c_channel_order, 1, MNV3_ERR_BAD_ENUM, "channel_order 2");
    expect("layout", c_layout, 1, MNV3_ERR_BAD_ENUM, "layout 5");
    expect("preprocess reserved", c_preprocess_reserved, 1, MNV3_ERR_BAD_ENUM, "reserved");
    expect("preprocess size", c_preprocess_size, 1, MNV3_ERR_BAD_METADATA, "input size");
    expect("label NUL", c_label_nul, 1, MNV3_ERR_BAD_METADATA, "NUL-terminated");
    expect("label count +1", c_label_count_more, 1, MNV3_ERR_BAD_METADATA, "label 10 of 11");
    expect("label count -1", c_label_count_less, 1, MNV3_ERR_BAD_METADATA, "follow");
    expect("label count 0", c_label_count_zero, 1, MNV3_ERR_BAD_METADATA, "count 0");
    expect("label UTF-8", c_label_utf8, 1, MNV3_ERR_BAD_METADATA, "UTF-8");

    drop(&base_image);
    mnv3_model_free(m);
}

/* Every prefix must be refused without a crash: as given (the header's file_size catches
 * it), and with file_size patched to the prefix and the checksum skipped, so the section
 * and tensor checks see the cut. */
static void test_truncation(void) {
    mnv3_model *m = small_labelled(), *t = tiny_labelled();
    image im, work;
    size_t n, refused = 0, patched_refused = 0, total = 0;
    if (!m || !t) return;
    im = save(m);
    for (n = 0; n < im.size; ++n) {
        mnv3_model *out = NULL;
        mnv3_status st = mnv3_model_load_memory(im.d, n, MNV3_LOAD_IN_PLACE, &out, NULL);
        refused += st != MNV3_OK && out == NULL;
    }
    CHECK_MSG(refused == im.size, "%zu of %zu prefixes refused", refused, im.size);
    /* A few prefixes through the copying path too. */
    for (n = 0; n < im.size; n += im.size / 7 + 1) {
        mnv3_model *out = NULL;
        CHECK(mnv3_model_load_memory(im.d, n, 0, &out, NULL) != MNV3_OK && out == NULL);
    }
    printf("truncation: %zu-byte image, every prefix refused\n", im.size);
    drop(&im);

    im = save(t);
    work = clone(im);
    CHECK_STATUS(load(im, 0, NULL), MNV3_OK);
    for (n = 64; n < im.size; ++n) {
        mnv3_model *out = NULL;
        mnv3_status st;
        wr64(work.d + 16, n);
        st = mnv3_model_load_memory(work.d, n, MNV3_LOAD_IN_PLACE | MNV3_LOAD_SKIP_CHECKSUM,
                                    &out, NULL);
        patched_refused += st != MNV3_OK && out == NULL;
        mnv3_model_free(out);
        ++total;
    }
    CHECK_MSG(patched_refused == total, "%zu of %zu patched prefixes refused", patched_refused,
              total);
    printf("truncation: %zu-byte image with file_size patched, every prefix refused\n",
           im.size);
    drop(&work);
    drop(&im);
    mnv3_model_free(m);
    mnv3_model_free(t);
}

int main(void) {
    static const mnv3_flavor flavors[3] = {MNV3_FLAVOR_TORCHVISION, MNV3_FLAVOR_WALKTHROUGH,
                                           MNV3_FLAVOR_TFLITE};
    int f;
    for (f = 0; f < 3; ++f) {
        round_trip(MNV3_ARCH_LARGE, flavors[f], 1.0, 1000);
        round_trip(MNV3_ARCH_SMALL, flavors[f], 1.0, 1000);
        round_trip(MNV3_ARCH_LARGE, flavors[f], 0.75, 100);
        round_trip(MNV3_ARCH_SMALL, flavors[f], 0.75, 100);
    }
    test_labels_and_in_place();
    test_same_padding_ignores_stored_pads();
    test_file_io();
    test_arguments();
    test_malformed();
    test_truncation();
    return check_summary("test_model_file");
}
