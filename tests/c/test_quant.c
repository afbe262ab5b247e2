/* Quantized (int8) models:
 * 1. The shipped uint8 MobileNetV3-Small and the full-int8 Keras Small and Large of
 *    $MNV3_SHARED_DIR, imported natively into $MNV3_QMODEL_DIR (`make qmodels`): for every
 *    shared image, on every kernel set this CPU runs and 1 to 3 threads, the quantized logits
 *    are byte for byte those of TFLite's reference kernels, and the quantized preprocessing
 *    of the image gives exactly TFLite's input bytes.
 * 2. Built-in int8 networks: every kernel set and thread count gives the scalar reference's
 *    bytes; save -> load -> save is byte-identical; the int8 activation arena of Large is at
 *    most 0.3x the fp32 one; the model's bytes in either layout and input type give the
 *    logits of the float input that quantizes to them.
 * 3. Hostile files: each quantization field out of range gets its own status. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "check.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "mnv3.h"
#include "mnv3_npy.h"

static const char *const models[] = {"mobilenet_v3_small_1.0_224_uint8",
                                     "mobilenet_v3_small_int8_seed1",
                                     "mobilenet_v3_large_int8_seed1"};
static const char *const images[] = {"chelsea", "coffee"};

static int quick(void) { return getenv("MNV3_TEST_QUICK") != NULL; }

/* Every kernel set this CPU runs, the scalar reference first; under emulation
 * (MNV3_TEST_QUICK) or with MNV3_ISA set, only the automatic choice. */
static uint32_t kernel_sets(mnv3_isa *isas) {
    uint32_t n = 0, isa;
    if (quick() || getenv("MNV3_ISA")) {
        isas[0] = MNV3_ISA_AUTO;
        return 1;
    }
    for (isa = MNV3_ISA_SCALAR; isa < mnv3_isa_count() && n < 16; ++isa)
        if (mnv3_isa_available((mnv3_isa)isa)) isas[n++] = (mnv3_isa)isa;
    return n;
}

static mnv3_status make_context(const mnv3_model *m, mnv3_isa isa, uint32_t threads,
                                mnv3_layout layout, mnv3_context **ctx) {
    mnv3_config cfg;
    mnv3_error e;
    mnv3_status st;
    mnv3_config_init(&cfg, m);
    cfg.isa = isa;
    cfg.threads = threads;
    cfg.layout = layout;
    st = mnv3_context_create(m, &cfg, NULL, 0, ctx, &e);
    if (st != MNV3_OK) fprintf(stderr, "context: %s\n", e.message);
    return st;
}

/* Which layer first differs between two runs is what a mismatch should name: the tap
 * records a checksum per layer. */
typedef struct layer_sums {
    uint32_t count;
    uint64_t sum[512];
    char name[512][32];
} layer_sums;

static void record(void *user, uint32_t layer, const char *name, const void *data,
                   size_t bytes) {
    layer_sums *s = (layer_sums *)user;
    const uint8_t *p = (const uint8_t *)data;
    uint64_t h = 1469598103934665603ull;
    size_t i;
    if (layer >= 512) return;
    for (i = 0; i < bytes; ++i) h = (h ^ p[i]) * 1099511628211ull;
    s->sum[layer] = h;
    snprintf(s->name[layer], sizeof s->name[layer], "%s", name);
    if (layer + 1 > s->count) s->count = layer + 1;
}

static const char *first_difference(const layer_sums *a, const layer_sums *b) {
    uint32_t i;
    for (i = 0; i < a->count && i < b->count; ++i)
        if (a->sum[i] != b->sum[i]) return a->name[i];
    return "none";
}

/* ---- 1. real models ----------------------------------------------------------------------- */

/* The reference files of int8 models hold int8 bytes ('|i1'), which the npy reader does
 * not parse: read the payload behind the header directly. */
static int read_bytes_npy(const char *path, uint8_t *dst, size_t n) {
    FILE *f = fopen(path, "rb");
    long size;
    int ok;
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    ok = size >= (long)n && fseek(f, size - (long)n, SEEK_SET) == 0 &&
         fread(dst, 1, n, f) == n;
    fclose(f);
    return ok;
}

static void test_real_model(const char *qdir, const char *shared, const char *name) {
    char path[1024];
    mnv3_model *m;
    mnv3_error e;
    mnv3_model_info info;
    mnv3_quantization qin, qout;
    mnv3_isa isas[16];
    const uint32_t n_isa = kernel_sets(isas);
    uint32_t im, k, threads;
    snprintf(path, sizeof path, "%s/%s.mnv3", qdir, name);
    if (mnv3_model_load_file(path, 0, &m, &e) != MNV3_OK) {
        SKIP("%s: %s (import it with `make qmodels`)", name, e.message);
        return;
    }
    CHECK_STATUS(mnv3_model_get_info(m, &info), MNV3_OK);
    CHECK(info.precision == MNV3_PRECISION_INT8);
    {
        /* int8 weights at one byte, int32 biases at four */
        mnv3_conv *convs[MNV3_MAX_CONVS];
        uint32_t c, nconvs = mnv3_model_convs(m, convs);
        uint64_t weights = 0;
        for (c = 0; c < nconvs; ++c) weights += mnv3_conv_weight_count(convs[c]);
        CHECK(weights > 0 && info.stored_bytes == weights + 4 * (info.stored_floats - weights));
    }
    CHECK_STATUS(mnv3_model_quantization(m, &qin, &qout), MNV3_OK);
    CHECK(qin.type == (strstr(name, "uint8") ? MNV3_QTYPE_UINT8 : MNV3_QTYPE_INT8));
    for (im = 0; im < sizeof images / sizeof *images; ++im) {
        const size_t n_in = 3 * 224 * 224, classes = info.num_classes;
        uint8_t *input = (uint8_t *)malloc(n_in), *pre = (uint8_t *)malloc(n_in);
        uint8_t ref[1024], got[1024];
        float got_f[1024], *xf = (float *)malloc(n_in * sizeof(float));
        mnv3_npy_array pixels;
        layer_sums *base = (layer_sums *)calloc(1, sizeof *base);
        size_t c;
        int have;
        snprintf(path, sizeof path, "%s/reference/%s__%s__input.npy", shared, name, images[im]);
        have = read_bytes_npy(path, input, n_in);
        snprintf(path, sizeof path, "%s/reference/%s__%s__ref_logits.npy", shared, name,
                 images[im]);
        have = have && classes <= sizeof ref && read_bytes_npy(path, ref, classes);
        snprintf(path, sizeof path, "%s/images/%s_224_nhwc_uint8.npy", shared, images[im]);
        have = have && mnv3_npy_read_file(path, &pixels, &e) == MNV3_OK;
        if (!have) {
            SKIP("%s: reference data for %s missing under %s", name, images[im], shared);
        } else {
            /* Pixels to quantized input bytes: the shipped uint8 model takes the pixels
             * themselves. (The int8 models' reference inputs were resized apart from the
             * shared uint8 images, so only self-consistency is checked for them.) */
            CHECK_STATUS(mnv3_preprocess_image_quantized(m, (const uint8_t *)pixels.data, 224,
                                                         224, 3, 224, 224, MNV3_LAYOUT_NHWC,
                                                         pre, n_in),
                         MNV3_OK);
            CHECK_STATUS(mnv3_preprocess_image(m, (const uint8_t *)pixels.data, 224, 224, 3,
                                               224, 224, MNV3_LAYOUT_NHWC, xf, n_in),
                         MNV3_OK);
            mnv3_npy_free(&pixels);
            if (qin.type == MNV3_QTYPE_UINT8)
                CHECK_MSG(memcmp(pre, input, n_in) == 0,
                          "%s %s: quantized preprocessing differs from TFLite's input", name,
                          images[im]);
            for (c = 0; c < n_in; ++c) {
                const float r = xf[c] / qin.scale;
                long v = (long)(r < 0 ? -floor(-r + 0.5) : floor(r + 0.5)) + qin.zero_point;
                const long lo = qin.type == MNV3_QTYPE_UINT8 ? 0 : -128;
                v = v < lo ? lo : (v > lo + 255 ? lo + 255 : v);
                if ((uint8_t)v != pre[c]) break;
            }
            CHECK_MSG(c == n_in, "%s %s: quantized preprocessing is not the float one quantized "
                      "(element %zu)", name, images[im], c);
            /* The reference bytes as floats (NCHW), which mnv3_run quantizes back exactly. */
            for (c = 0; c < n_in; ++c) {
                const int q = qin.type == MNV3_QTYPE_UINT8 ? (int)input[c] : (int)(int8_t)input[c];
                xf[(c % 3) * (n_in / 3) + c / 3] = qin.scale * (float)(q - qin.zero_point);
            }
            for (k = 0; k < n_isa; ++k) {
                const mnv3_isa isa = isas[k];
                for (threads = 1; threads <= (quick() ? 1u : 3u); threads += 2) {
                    mnv3_context *ctx;
                    layer_sums *sums = (layer_sums *)calloc(1, sizeof *sums);
                    const int first = k == 0 && threads == 1;
                    if (make_context(m, isa, threads, MNV3_LAYOUT_NHWC, &ctx) !=
                        MNV3_OK) {
                        CHECK(0);
                        free(sums);
                        continue;
                    }
                    mnv3_context_set_tap(ctx, record, first ? base : sums);
                    CHECK_STATUS(mnv3_run_quantized(ctx, input, n_in, got, classes, got_f,
                                                    classes),
                                 MNV3_OK);
                    CHECK_MSG(memcmp(got, ref, classes) == 0,
                              "%s %s on %s, %u threads: quantized logits differ from TFLite's "
                              "reference kernels; first layer differing from the scalar run: %s",
                              name, images[im], mnv3_isa_name(isa), threads,
                              first ? "(this is it)" : first_difference(base, sums));
                    for (c = 0; c < classes; ++c) {
                        const int q = qout.type == MNV3_QTYPE_UINT8 ? (int)got[c]
                                                                     : (int)(int8_t)got[c];
                        if (got_f[c] != qout.scale * (float)(q - qout.zero_point)) break;
                    }
                    CHECK_MSG(c == classes, "%s: dequantized logits disagree with the bytes",
                              name);
                    mnv3_context_free(ctx);
                    free(sums);
                }
            }
            /* Float in, float out: the quantization of the float input reproduces the bytes. */
            {
                mnv3_context *ctx;
                if (make_context(m, MNV3_ISA_AUTO, 2, MNV3_LAYOUT_NCHW, &ctx) == MNV3_OK) {
                    CHECK_STATUS(mnv3_run(ctx, xf, n_in, got_f, classes, NULL, 0), MNV3_OK);
                    for (c = 0; c < classes; ++c) {
                        const int q = qout.type == MNV3_QTYPE_UINT8 ? (int)ref[c]
                                                                     : (int)(int8_t)ref[c];
                        if (got_f[c] != qout.scale * (float)(q - qout.zero_point)) break;
                    }
                    CHECK_MSG(c == classes, "%s %s: mnv3_run's float logits differ at class %zu",
                              name, images[im], c);
                    mnv3_context_free(ctx);
                } else {
                    CHECK(0);
                }
            }
        }
        free(base);
        free(input);
        free(pre);
        free(xf);
    }
    mnv3_model_free(m);
}

/* ---- 2. built-in int8 networks -------------------------------------------------------------- */

static void test_builtin(mnv3_arch arch) {
    mnv3_model *m, *f, *back;
    mnv3_error e;
    mnv3_config cfg;
    mnv3_arena_plan p8, p32;
    const size_t n_in = 3 * 224 * 224;
    int8_t *input = (int8_t *)malloc(n_in);
    int8_t ref[1000], got[1000];
    size_t i, size, size2;
    uint8_t *file, *file2;
    mnv3_isa isas[16];
    const uint32_t n_isa = kernel_sets(isas);
    uint32_t k, threads;
    layer_sums *base = (layer_sums *)calloc(1, sizeof *base);
    CHECK_STATUS(mnv3_model_create_builtin_int8(arch, MNV3_FLAVOR_TORCHVISION, 1.0, 1000, 7, &m,
                                                &e),
                 MNV3_OK);
    CHECK_STATUS(mnv3_model_create_builtin(arch, MNV3_FLAVOR_TORCHVISION, 1.0, 1000, 7, &f, &e),
                 MNV3_OK);
    mnv3_config_init(&cfg, m);
    CHECK_STATUS(mnv3_arena_plan_for(m, &cfg, &p8, &e), MNV3_OK);
    CHECK_STATUS(mnv3_arena_plan_for(f, &cfg, &p32, &e), MNV3_OK);
    printf("%s int8 activations %zu bytes, fp32 %zu (%.3fx)\n",
           arch == MNV3_ARCH_LARGE ? "large" : "small", p8.activations, p32.activations,
           (double)p8.activations / (double)p32.activations);
    if (arch == MNV3_ARCH_LARGE) CHECK(p8.activations * 10 <= p32.activations * 3);
    mnv3_model_free(f);
    for (i = 0; i < n_in; ++i) input[i] = (int8_t)((i * 7919u) % 97u - 48);
    for (k = 0; k < n_isa; ++k) {
        const mnv3_isa isa = isas[k];
        for (threads = 1; threads <= 3; ++threads) {
            mnv3_context *ctx;
            layer_sums *sums = (layer_sums *)calloc(1, sizeof *sums);
            const int first = k == 0 && threads == 1;
            if (quick() && threads == 2) {
                free(sums);
                continue;
            }
            CHECK_STATUS(make_context(m, isa, threads, MNV3_LAYOUT_NHWC, &ctx), MNV3_OK);
            mnv3_context_set_tap(ctx, record, first ? base : sums);
            CHECK_STATUS(mnv3_run_quantized(ctx, input, n_in, first ? ref : got, 1000, NULL, 0),
                         MNV3_OK);
            if (!first)
                CHECK_MSG(memcmp(ref, got, 1000) == 0 && base->count == sums->count,
                          "built-in int8 on %s, %u threads: differs from the scalar run from "
                          "layer %s on",
                          mnv3_isa_name(isa), threads, first_difference(base, sums));
            mnv3_context_free(ctx);
            free(sums);
        }
    }
    /* save -> load -> save */
    CHECK_STATUS(mnv3_model_save_memory(m, NULL, 0, &size, &e), MNV3_OK);
    file = (uint8_t *)malloc(size);
    file2 = (uint8_t *)malloc(size);
    CHECK_STATUS(mnv3_model_save_memory(m, file, size, &size, &e), MNV3_OK);
    CHECK(file[10] == 1 && file[11] == 0); /* version 1.1 */
    CHECK_STATUS(mnv3_model_load_memory(file, size, 0, &back, &e), MNV3_OK);
    if (back) {
        mnv3_context *ctx;
        CHECK_STATUS(mnv3_model_save_memory(back, file2, size, &size2, &e), MNV3_OK);
        CHECK(size2 == size && memcmp(file, file2, size) == 0);
        CHECK_STATUS(make_context(back, MNV3_ISA_AUTO, 1, MNV3_LAYOUT_NHWC, &ctx), MNV3_OK);
        CHECK_STATUS(mnv3_run_quantized(ctx, input, n_in, got, 1000, NULL, 0), MNV3_OK);
        CHECK(memcmp(ref, got, 1000) == 0);
        mnv3_context_free(ctx);
        mnv3_model_free(back);
    }
    free(file);
    free(file2);
    free(input);
    free(base);
    mnv3_model_free(m);
}

/* The model's bytes in every layout and input type, a batch of two images: NHWC int8 read
 * in place, uint8 flipped and planes interleaved into the arena, all give the logits of
 * mnv3_run on floats that quantize to the same bytes, on every kernel set. */
static void test_builtin_layouts(void) {
    enum { H = 40, W = 56, PLANE = H * W, PER = 3 * PLANE, CLASSES = 10 };
    mnv3_model *m;
    mnv3_error e;
    mnv3_isa isas[16];
    const uint32_t n_isa = kernel_sets(isas);
    int8_t nhwc[2 * PER];
    uint8_t bytes[2 * PER];
    float floats[2 * PER];
    uint8_t want_q[2 * CLASSES], got_q[2 * CLASSES];
    float want[2 * CLASSES], got[2 * CLASSES];
    uint32_t k, i, layout, uint8_io;
    CHECK_STATUS(mnv3_model_create_builtin_int8(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.5,
                                                CLASSES, 5, &m, &e),
                 MNV3_OK);
    if (!m) return;
    for (i = 0; i < 2 * PER; ++i) nhwc[i] = (int8_t)((i * 7919u + (i / PER) * 31u) % 251u - 125);
    for (k = 0; k < n_isa; ++k)
        for (uint8_io = 0; uint8_io <= 1; ++uint8_io) {
            /* the same int8 bytes handed over as uint8 */
            m->q8_io_type = uint8_io ? MNV3_QTYPE_UINT8 : MNV3_QTYPE_INT8;
            for (layout = 0; layout <= 1; ++layout) {
                const mnv3_layout lay = layout ? MNV3_LAYOUT_NHWC : MNV3_LAYOUT_NCHW;
                mnv3_context *ctx = NULL;
                mnv3_config cfg;
                size_t b, p, c;
                mnv3_config_init(&cfg, m);
                cfg.batch = 2;
                cfg.height = H;
                cfg.width = W;
                cfg.layout = lay;
                cfg.isa = isas[k];
                CHECK_STATUS(mnv3_context_create(m, &cfg, NULL, 0, &ctx, &e), MNV3_OK);
                if (!ctx) continue;
                for (b = 0; b < 2; ++b)
                    for (p = 0; p < PLANE; ++p)
                        for (c = 0; c < 3; ++c) {
                            const size_t from = b * PER + p * 3 + c;
                            const size_t to = b * PER + (lay == MNV3_LAYOUT_NHWC ? from - b * PER
                                                                                : c * PLANE + p);
                            bytes[to] = (uint8_t)nhwc[from] ^ (uint8_io ? 0x80u : 0u);
                            floats[to] = m->q8_input.scale *
                                         (float)((int32_t)nhwc[from] - m->q8_input.zero_point);
                        }
                CHECK_STATUS(mnv3_run(ctx, floats, 2 * PER, want, 2 * CLASSES, NULL, 0),
                             MNV3_OK);
                memset(got_q, 0, sizeof got_q);
                CHECK_STATUS(mnv3_run_quantized(ctx, bytes, 2 * PER, got_q, 2 * CLASSES, got,
                                                2 * CLASSES),
                             MNV3_OK);
                CHECK_MSG(memcmp(got, want, sizeof got) == 0,
                          "%s input, %s, on %s: quantized input gives other logits than float",
                          uint8_io ? "uint8" : "int8", layout ? "NHWC" : "NCHW",
                          mnv3_isa_name(isas[k]));
                if (!uint8_io && !layout) memcpy(want_q, got_q, sizeof want_q);
                for (i = 0; i < 2 * CLASSES; ++i)
                    if (got_q[i] != (uint8_t)(want_q[i] ^ (uint8_io ? 0x80u : 0u))) break;
                CHECK_MSG(i == 2 * CLASSES, "%s input, %s: quantized logit %u",
                          uint8_io ? "uint8" : "int8", layout ? "NHWC" : "NCHW", i);
                /* the two images differ, and so do their logits */
                CHECK(memcmp(got, got + CLASSES, CLASSES * sizeof *got) != 0);
                mnv3_context_free(ctx);
            }
        }
    mnv3_model_free(m);
}

/* ---- 3. hostile quantization fields ---------------------------------------------------------- */

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static void wrf(uint8_t *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    wr32(p, u);
}

static uint8_t *section_of(uint8_t *d, uint32_t type) {
    uint32_t i, n = rd32(d + 28);
    for (i = 0; i < n; ++i)
        if (rd32(d + 64 + 24 * i) == type) return d + rd64(d + 64 + 24 * i + 8);
    return NULL;
}

/* Layout of the QUANT section (docs/FORMAT.md): header, a record per block, one per conv. */
#define QHEADER 24u
#define QBLOCK 32u
#define QCONV 48u

static uint8_t *quant_conv(uint8_t *d, uint32_t blocks, uint32_t conv) {
    return section_of(d, 5) + QHEADER + QBLOCK * blocks + QCONV * conv;
}

static uint8_t *tensor_data(uint8_t *d, uint32_t index) {
    return d + rd64(section_of(d, 2) + 8 + 24 * index + 8);
}

static void expect(const uint8_t *good, size_t size, void (*corrupt)(uint8_t *, uint32_t),
                   uint32_t blocks, mnv3_status want, const char *fragment) {
    uint8_t *d = (uint8_t *)malloc(size);
    mnv3_model *m = NULL;
    mnv3_error e;
    mnv3_status st;
    memcpy(d, good, size);
    corrupt(d, blocks);
    st = mnv3_model_load_memory(d, size, MNV3_LOAD_SKIP_CHECKSUM, &m, &e);
    CHECK_MSG(st == want && strstr(e.message, fragment) != NULL,
              "status %d (%s), message '%s'; expected %d with '%s'", (int)st,
              mnv3_status_string(st), st ? e.message : "", (int)want, fragment);
    mnv3_model_free(m);
    free(d);
}

/* Block 0 of the built-in Small has an SE; conv 0 is the stem (hard-swish, with a table),
 * conv 1 block 0's depthwise, conv 2 its se.reduce, conv 3 its se.expand. */
static void c_input_scale_nan(uint8_t *d, uint32_t b) { (void)b; wr32(section_of(d, 5), 0x7FC00000u); }
static void c_input_scale_neg(uint8_t *d, uint32_t b) { (void)b; wrf(section_of(d, 5), -1.0f); }
static void c_input_scale_zero(uint8_t *d, uint32_t b) { (void)b; wrf(section_of(d, 5), 0.0f); }
static void c_input_zp(uint8_t *d, uint32_t b) { (void)b; wr32(section_of(d, 5) + 4, 200); }
static void c_pool_mode(uint8_t *d, uint32_t b) { (void)b; wr32(section_of(d, 5) + 8, 9); }
static void c_io_type(uint8_t *d, uint32_t b) { (void)b; wr32(section_of(d, 5) + 20, 2); }
static void c_output_zp(uint8_t *d, uint32_t b) { wr32(quant_conv(d, b, 1) + 4, (uint32_t)-129); }
static void c_weight_zp(uint8_t *d, uint32_t b) { wr32(quant_conv(d, b, 1) + 16, 300); }
static void c_act_range(uint8_t *d, uint32_t b) {
    wr32(quant_conv(d, b, 1) + 8, 10);
    wr32(quant_conv(d, b, 1) + 12, 5);
}
static void c_mult_mode(uint8_t *d, uint32_t b) { wr32(quant_conv(d, b, 1) + 20, 7); }
static void c_weight_scale(uint8_t *d, uint32_t b) {
    wr32(tensor_data(d, rd32(quant_conv(d, b, 1) + 24)) + 4, 0x7F800000u);
}
static void c_bias_scale(uint8_t *d, uint32_t b) {
    uint8_t *bs = tensor_data(d, rd32(quant_conv(d, b, 1) + 28));
    float f;
    uint32_t u = rd32(bs);
    memcpy(&f, &u, 4);
    wrf(bs, f * 1.5f + 1.0f);
}
static void c_no_table(uint8_t *d, uint32_t b) {
    wr32(quant_conv(d, b, 0) + 32, 0xFFFFFFFFu);
    wr32(quant_conv(d, b, 0) + 36, 0);
    wr32(quant_conv(d, b, 0) + 40, 0);
}
static void c_table_size(uint8_t *d, uint32_t b) {
    wr32(section_of(d, 2) + 8 + 24 * rd32(quant_conv(d, b, 0) + 32) + 16, 255);
}
static void c_scale_type(uint8_t *d, uint32_t b) {
    wr32(quant_conv(d, b, 0) + 24, rd32(quant_conv(d, b, 0) + 32)); /* scales -> the table */
}
static void c_table_output(uint8_t *d, uint32_t b) { wrf(quant_conv(d, b, 0) + 36, -2.0f); }
static void c_se_mul_multiplier(uint8_t *d, uint32_t b) {
    (void)b;
    wrf(section_of(d, 5) + QHEADER + 12, 1e-30f); /* block 0's se multiply output scale */
}
static void c_se_pool_avg(uint8_t *d, uint32_t b) {
    (void)b;
    wr32(section_of(d, 5) + QHEADER, 1); /* an average pool that changes the scale */
    wrf(section_of(d, 5) + QHEADER + 4, 0.5f);
}
static void c_unused_fields(uint8_t *d, uint32_t b) {
    /* block 1 of the built-in Small has no SE and no residual */
    (void)b;
    wr32(section_of(d, 5) + QHEADER + QBLOCK + 4, 1);
}
static void c_bias_type(uint8_t *d, uint32_t b) {
    (void)b;
    wr32(section_of(d, 2) + 8 + 24 * 1, 1); /* the stem's int32 bias as float32 */
}

static void test_hostile(void) {
    mnv3_model *m;
    mnv3_error e;
    size_t size;
    uint8_t *good;
    uint32_t blocks;
    mnv3_model_info info;
    CHECK_STATUS(mnv3_model_create_builtin_int8(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.5,
                                                10, 3, &m, &e),
                 MNV3_OK);
    if (!m) return;
    mnv3_model_get_info(m, &info);
    blocks = info.num_blocks;
    CHECK_STATUS(mnv3_model_save_memory(m, NULL, 0, &size, &e), MNV3_OK);
    good = (uint8_t *)malloc(size);
    CHECK_STATUS(mnv3_model_save_memory(m, good, size, &size, &e), MNV3_OK);
    mnv3_model_free(m);
    expect(good, size, c_input_scale_nan, blocks, MNV3_ERR_BAD_SCALE, "input scale");
    expect(good, size, c_input_scale_neg, blocks, MNV3_ERR_BAD_SCALE, "input scale -1");
    expect(good, size, c_input_scale_zero, blocks, MNV3_ERR_BAD_SCALE, "input scale 0");
    expect(good, size, c_input_zp, blocks, MNV3_ERR_BAD_ZERO_POINT, "input zero point 200");
    expect(good, size, c_pool_mode, blocks, MNV3_ERR_BAD_ENUM, "pool mode 9");
    expect(good, size, c_io_type, blocks, MNV3_ERR_BAD_ENUM, "io type 2");
    expect(good, size, c_output_zp, blocks, MNV3_ERR_BAD_ZERO_POINT,
           "block 0 depthwise: output zero point -129");
    expect(good, size, c_weight_zp, blocks, MNV3_ERR_BAD_ZERO_POINT, "weight zero point 300");
    expect(good, size, c_act_range, blocks, MNV3_ERR_BAD_QUANT_RANGE, "range [10, 5]");
    expect(good, size, c_mult_mode, blocks, MNV3_ERR_BAD_ENUM, "multiplier mode 7");
    expect(good, size, c_weight_scale, blocks, MNV3_ERR_BAD_SCALE, "weight scale 1 is inf");
    expect(good, size, c_bias_scale, blocks, MNV3_ERR_BAD_BIAS_SCALE, "bias scale 0");
    expect(good, size, c_no_table, blocks, MNV3_ERR_BAD_QUANT_RANGE, "stem: its activation");
    expect(good, size, c_table_size, blocks, MNV3_ERR_BAD_TENSOR, "expected 256");
    expect(good, size, c_scale_type, blocks, MNV3_ERR_BAD_TENSOR, "is int8, expected float32");
    expect(good, size, c_table_output, blocks, MNV3_ERR_BAD_SCALE, "table output scale -2");
    expect(good, size, c_se_mul_multiplier, blocks, MNV3_ERR_BAD_MULTIPLIER, "se multiply");
    expect(good, size, c_se_pool_avg, blocks, MNV3_ERR_BAD_QUANT_RANGE, "average pool");
    expect(good, size, c_unused_fields, blocks, MNV3_ERR_BAD_ENUM, "block 1: reserved");
    expect(good, size, c_bias_type, blocks, MNV3_ERR_BAD_TENSOR, "is float32, expected int32");
    CHECK(strcmp(mnv3_status_string(MNV3_ERR_BAD_MULTIPLIER), "unknown status") != 0);
    free(good);
}

int main(void) {
    const char *qdir = getenv("MNV3_QMODEL_DIR");
    const char *shared = getenv("MNV3_SHARED_DIR");
    size_t i;
    test_hostile();
    test_builtin(MNV3_ARCH_SMALL);
    if (!quick()) test_builtin(MNV3_ARCH_LARGE);
    test_builtin_layouts();
    if (!qdir) qdir = "build/qmodels";
    if (!shared) shared = "../shared";
    for (i = 0; i < sizeof models / sizeof *models; ++i) test_real_model(qdir, shared, models[i]);
    return check_summary("test_quant");
}
