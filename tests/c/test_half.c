/* float16 weights: the portable conversions (every encoding, subnormals, the largest finite
 * value, rounding ties), float16 model files (canonical round trip, version, size, in-place
 * loading, refusals naming the tensor), and inference on every kernel set against a
 * float32 run of the same network with its weights rounded to float16. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/float_impl.h"
#include "support/case.h"
#include "support/random.h"
#include "base/half.h"
#include "mnv3_npy.h"
#include "kernels/kernels.h"
#include "mnv3.h"
#include "model/model.h"
#include "format/model_file.h"
#include "base/alloc.h"

/* ---- conversions ------------------------------------------------------------------------ */

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_conversions(void) {
    uint32_t h, bad = 0;
    /* Every non-NaN encoding survives float and back; the value is the one IEEE defines. */
    for (h = 0; h < 0x10000u; ++h) {
        const uint16_t x = (uint16_t)h;
        const float f = mnv3_f16_to_f32(x);
        const uint32_t e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
        double want;
        if (e == 0x1F) {
            if (m == 0) bad += !isinf(f) || (signbit(f) != 0) != ((h & 0x8000u) != 0);
            else bad += !isnan(f);
            continue;
        }
        want = e ? ldexp(1.0 + m / 1024.0, (int)e - 15) : ldexp((double)m, -24);
        if (h & 0x8000u) want = -want;
        bad += (double)f != want || (signbit(f) != 0) != ((h & 0x8000u) != 0);
        bad += mnv3_f32_to_f16(f) != x;
    }
    CHECK_MSG(bad == 0, "%u encodings convert wrongly", bad);
    /* Subnormals and the extremes, by value. */
    CHECK(mnv3_f16_to_f32(0x0001u) == ldexpf(1.0f, -24));
    CHECK(mnv3_f16_to_f32(0x03FFu) == 1023.0f * ldexpf(1.0f, -24));
    CHECK(mnv3_f16_to_f32(0x0400u) == ldexpf(1.0f, -14));
    CHECK(mnv3_f16_to_f32(0x7BFFu) == MNV3_F16_MAX);
    CHECK(mnv3_f16_to_f32(0xFBFFu) == -MNV3_F16_MAX);
    CHECK(mnv3_f16_to_f32(0x8001u) == -ldexpf(1.0f, -24));
    /* Rounding: to nearest, ties to even, subnormal and overflow boundaries. */
    CHECK(mnv3_f32_to_f16(65519.0f) == 0x7BFFu);
    CHECK(mnv3_f32_to_f16(65520.0f) == 0x7C00u);
    CHECK(mnv3_f32_to_f16(-1e9f) == 0xFC00u);
    CHECK(mnv3_f32_to_f16(ldexpf(1.0f, -25)) == 0x0000u);                 /* tie to even 0 */
    CHECK(mnv3_f32_to_f16(float_of(bits_of(ldexpf(1.0f, -25)) + 1)) == 0x0001u);
    CHECK(mnv3_f32_to_f16(ldexpf(3.0f, -25)) == 0x0002u);                 /* 1.5 -> 2 */
    CHECK(mnv3_f32_to_f16(ldexpf(5.0f, -25)) == 0x0002u);                 /* 2.5 -> 2 */
    CHECK(mnv3_f32_to_f16(ldexpf(2047.0f, -25)) == 0x0400u);              /* carry to normal */
    CHECK(mnv3_f32_to_f16(1.0f + ldexpf(1.0f, -11)) == 0x3C00u);          /* tie, even below */
    CHECK(mnv3_f32_to_f16(1.0f + 3.0f * ldexpf(1.0f, -11)) == 0x3C02u);   /* tie, even above */
    CHECK(mnv3_f32_to_f16(-0.0f) == 0x8000u);
    CHECK((mnv3_f32_to_f16(NAN) & 0x7E00u) == 0x7E00u);
    CHECK(!mnv3_f16_is_finite(0x7C00u) && !mnv3_f16_is_finite(0xFE01u) &&
          mnv3_f16_is_finite(0x7BFFu));
}

/* Every set's float16 weight loads widen every finite encoding exactly as the portable
 * conversion does (subnormals and the largest finite value included): a GEMV whose input
 * is one-hot reads back one weight per output, through both whole and partial vectors. */
static void test_simd_conversions(void) {
    enum { IN = 67, OUT = (0x10000 + IN - 1) / IN };
    static uint16_t w[OUT * IN];
    static float x[IN], out[OUT];
    int isa;
    uint32_t i;
    for (i = 0; i < OUT * IN; ++i) w[i] = mnv3_f16_is_finite((uint16_t)i) ? (uint16_t)i : 0;
    for (isa = MNV3_ISA_SCALAR; isa < (int)mnv3_isa_count(); ++isa) {
        mnv3_kernels k;
        mnv3_fc_args a;
        mnv3_layer l;
        uint32_t j, o, bad = 0;
        if (!mnv3_kernels_resolve((mnv3_isa)isa, MNV3_DTYPE_F16, MNV3_DTYPE_F32, &k)) continue;
        tc_float_layer(&l, MNV3_ROW_FC, IN, OUT, 1, MNV3_DTYPE_F16, w, NULL, MNV3_ACT_NONE);
        memset(&a, 0, sizeof a);
        a.input = x;
        a.in_features = IN;
        a.out_features = OUT;
        a.output = out;
        a.out_end = OUT;
        for (j = 0; j < IN; ++j) {
            memset(x, 0, sizeof x);
            x[j] = 1.0f;
            tc_run_fc(k.row[MNV3_ROW_FC], &l, &a);
            for (o = 0; o < OUT; ++o)
                bad += out[o] != mnv3_f16_to_f32(w[(size_t)o * IN + j]);
        }
        CHECK_MSG(bad == 0, "%s (%s): %u encodings widen wrongly", mnv3_isa_name((mnv3_isa)isa),
                  k.row[MNV3_ROW_FC]->name, bad);
    }
}

/* ---- files ---------------------------------------------------------------------------- */

static mnv3_model *builtin(mnv3_arch arch, double width, uint32_t classes) {
    mnv3_model *m = NULL;
    mnv3_error err;
    CHECK_STATUS(mnv3_model_create_builtin(arch, MNV3_FLAVOR_TORCHVISION, width, classes, 7, &m,
                                           &err),
                 MNV3_OK);
    return m;
}

static mnv3_model *to_half(const mnv3_model *m) {
    mnv3_model *h = NULL;
    mnv3_error err;
    mnv3_status st = mnv3_model_convert_weights(m, MNV3_WEIGHTS_FLOAT16, &h, &err);
    CHECK_MSG(st == MNV3_OK, "convert: %s", err.message);
    return h;
}

/* A saved model in a 64-byte aligned buffer (so that it loads in place too). */
static uint8_t *saved(const mnv3_model *m, size_t *size, void **raw) {
    uint8_t *d;
    *size = 0;
    CHECK_STATUS(mnv3_model_save_memory(m, NULL, 0, size, NULL), MNV3_OK);
    d = (uint8_t *)mnv3_alloc_aligned(*size, raw);
    CHECK_STATUS(mnv3_model_save_memory(m, d, *size, size, NULL), MNV3_OK);
    return d;
}

#define rd32 tr_rd32
#define rd64 tr_rd64

/* The TENSORS section's entry `index`. */
static uint8_t *entry(uint8_t *d, uint32_t index) {
    uint32_t i;
    for (i = 0; i < rd32(d + 28); ++i)
        if (rd32(d + 64 + 24 * i) == 2) return d + rd64(d + 64 + 24 * i + 8) + 8 + 24 * index;
    return NULL;
}

static void fix_crc(uint8_t *d, size_t size) {
    const uint32_t crc = mnv3_crc32(0, d + 64, size - 64);
    d[40] = (uint8_t)crc;
    d[41] = (uint8_t)(crc >> 8);
    d[42] = (uint8_t)(crc >> 16);
    d[43] = (uint8_t)(crc >> 24);
}

static void test_files(void) {
    mnv3_model *f = builtin(MNV3_ARCH_SMALL, 0.5, 10), *h = f ? to_half(f) : NULL, *b = NULL;
    mnv3_model *back = NULL;
    mnv3_error err;
    size_t fsize, hsize, size2, n, i;
    void *fraw, *hraw, *raw2;
    uint8_t *fd, *hd, *d2, *w;
    if (!h) {
        mnv3_model_free(f);
        return;
    }
    CHECK(mnv3_model_weight_type(f) == MNV3_WEIGHTS_FLOAT32);
    CHECK(mnv3_model_weight_type(h) == MNV3_WEIGHTS_FLOAT16);
    {
        /* The same values, counted at their stored types: weights at 2 bytes, biases at 4. */
        mnv3_model_info fi, hi;
        mnv3_conv *convs[MNV3_MAX_CONVS];
        uint32_t c, nconvs = mnv3_model_convs(h, convs);
        uint64_t weights = 0;
        for (c = 0; c < nconvs; ++c) weights += mnv3_conv_weight_count(convs[c]);
        CHECK_STATUS(mnv3_model_get_info(f, &fi), MNV3_OK);
        CHECK_STATUS(mnv3_model_get_info(h, &hi), MNV3_OK);
        CHECK(hi.stored_floats == fi.stored_floats && fi.stored_bytes == 4 * fi.stored_floats);
        CHECK(weights > 0 && hi.stored_bytes == 2 * weights + 4 * (hi.stored_floats - weights));
    }
    fd = saved(f, &fsize, &fraw);
    hd = saved(h, &hsize, &hraw);
    /* Version 1.0 for float32 weights, 1.1 for float16; weights as dtype 4. */
    CHECK(fd[10] == 0 && hd[10] == 1);
    CHECK(rd32(entry(hd, 0)) == 4 && rd32(entry(hd, 1)) == 1); /* stem weight, its bias */
    printf("float16 file: %zu bytes, %.3f of the float32 file's %zu\n", hsize,
           (double)hsize / (double)fsize, fsize);
    CHECK(hsize < fsize * 0.56);
    /* Canonical: loading and saving again reproduces the bytes; in place stays in place. */
    CHECK_STATUS(mnv3_model_load_memory(hd, hsize, MNV3_LOAD_IN_PLACE, &b, &err), MNV3_OK);
    if (b) {
        CHECK((const uint8_t *)b->blocks[2].expand.weight > hd &&
              (const uint8_t *)b->blocks[2].expand.weight < hd + hsize);
        CHECK(b->head[1].weight_type == MNV3_DTYPE_F16);
        d2 = saved(b, &size2, &raw2);
        CHECK(size2 == hsize && memcmp(d2, hd, hsize) == 0);
        free(raw2);
        mnv3_model_free(b);
        b = NULL;
    }
    /* Back to float32 exactly: each value is the float16 one. */
    CHECK_STATUS(mnv3_model_convert_weights(h, MNV3_WEIGHTS_FLOAT32, &back, &err), MNV3_OK);
    if (back) {
        const float *w32 = (const float *)back->blocks[1].project.weight;
        const uint16_t *w16 = (const uint16_t *)h->blocks[1].project.weight;
        const float *orig = (const float *)f->blocks[1].project.weight;
        uint32_t mismatches = 0;
        n = mnv3_conv_weight_count(&h->blocks[1].project);
        for (i = 0; i < n; ++i) {
            mismatches += w32[i] != mnv3_f16_to_f32(w16[i]);
            mismatches += w16[i] != mnv3_f32_to_f16(orig[i]);
        }
        CHECK(mismatches == 0);
        CHECK(mnv3_model_weight_type(back) == MNV3_WEIGHTS_FLOAT32);
        mnv3_model_free(back);
    }
    /* An infinity, then a NaN, in a float16 weight: refused, naming conv, tensor, element. */
    w = hd + rd64(entry(hd, 2) + 8); /* block 0's first weight tensor */
    w[2 * 5] = 0x00;
    w[2 * 5 + 1] = 0x7C;
    fix_crc(hd, hsize);
    CHECK_STATUS(mnv3_model_load_memory(hd, hsize, 0, &b, &err), MNV3_ERR_BAD_TENSOR);
    CHECK_MSG(strstr(err.message, "tensor 2 element 5 is infinite (float16 0x7C00)") != NULL, "%s",
              err.message);
    w[2 * 5 + 1] = 0xFE;
    fix_crc(hd, hsize);
    CHECK_STATUS(mnv3_model_load_memory(hd, hsize, MNV3_LOAD_IN_PLACE, &b, &err),
                 MNV3_ERR_BAD_TENSOR);
    CHECK_MSG(strstr(err.message, "tensor 2 element 5 is NaN (float16 0xFE00)") != NULL, "%s",
              err.message);
    /* A float32 weight among float16 ones: refused, naming the tensor. */
    memcpy(d2 = (uint8_t *)mnv3_alloc_aligned(fsize, &raw2), fd, fsize);
    entry(d2, 2)[0] = 4; /* now float16, and the stem float32 */
    fix_crc(d2, fsize);
    CHECK_STATUS(mnv3_model_load_memory(d2, fsize, 0, &b, &err), MNV3_ERR_BAD_TENSOR);
    CHECK_MSG(strstr(err.message, "weight tensor 2 is float16, expected float32") != NULL, "%s",
              err.message);
    entry(d2, 2)[0] = 5; /* unknown dtype */
    fix_crc(d2, fsize);
    CHECK_STATUS(mnv3_model_load_memory(d2, fsize, 0, &b, &err), MNV3_ERR_BAD_TENSOR);
    free(raw2);
    free(fraw);
    free(hraw);
    /* Converting refuses weights beyond float16's range, and int8. */
    ((float *)f->blocks[0].depthwise.weight)[3] = 70000.0f;
    CHECK_STATUS(mnv3_model_convert_weights(f, MNV3_WEIGHTS_FLOAT16, &b, &err),
                 MNV3_ERR_BAD_TENSOR);
    CHECK_MSG(strstr(err.message, "block 0 depthwise: weight element 3") != NULL, "%s",
              err.message);
    CHECK_STATUS(mnv3_model_convert_weights(f, MNV3_WEIGHTS_INT8, &b, &err), MNV3_ERR_UNSUPPORTED);
    CHECK_STATUS(mnv3_model_convert_weights(NULL, MNV3_WEIGHTS_FLOAT16, &b, &err),
                 MNV3_ERR_NULL_ARGUMENT);
    mnv3_model_free(f);
    mnv3_model_free(h);
}

/* ---- inference -------------------------------------------------------------------------- */

static int run(const mnv3_model *m, mnv3_isa isa, uint32_t threads, uint32_t h, uint32_t w,
               const float *input, float *logits, uint32_t classes, mnv3_arena_plan *plan) {
    mnv3_config cfg;
    mnv3_context *ctx = NULL;
    mnv3_error err;
    mnv3_status st;
    mnv3_config_init(&cfg, m);
    cfg.height = h;
    cfg.width = w;
    cfg.isa = isa;
    cfg.threads = threads;
    cfg.layout = MNV3_LAYOUT_NHWC;
    st = mnv3_context_create(m, &cfg, NULL, 0, &ctx, &err);
    CHECK_MSG(st == MNV3_OK, "context on %s: %s", mnv3_isa_name(isa), err.message);
    if (st != MNV3_OK) return 0;
    if (plan) CHECK_STATUS(mnv3_arena_plan_for(m, &cfg, plan, NULL), MNV3_OK);
    CHECK_STATUS(mnv3_run(ctx, input, (size_t)3 * h * w, logits, classes, NULL, 0), MNV3_OK);
    mnv3_context_free(ctx);
    return 1;
}

/* The float16 model on every kernel set gives, bit for bit, what the same set gives for the
 * float32 model whose weights are the float16 values (the conversion is exact and the rows
 * share their arithmetic), at 1 and 3 threads; and the float16 model is close to the
 * float32 one it was rounded from. The walkthrough flavor's unrounded channel counts reach every
 * vector tail. */
static void network_case(mnv3_arch arch, mnv3_flavor flavor, double width, uint32_t classes,
                         uint32_t h, uint32_t w) {
    mnv3_model *f = NULL, *half = NULL, *rounded = NULL;
    mnv3_error err;
    float *input, *want, *got, *orig;
    size_t i, n = (size_t)3 * h * w;
    int isa;
    CHECK_STATUS(mnv3_model_create_builtin(arch, flavor, width, classes, 11, &f, &err), MNV3_OK);
    if (!f) return;
    half = to_half(f);
    if (half)
        CHECK_STATUS(mnv3_model_convert_weights(half, MNV3_WEIGHTS_FLOAT32, &rounded, &err),
                     MNV3_OK);
    input = (float *)malloc(n * sizeof *input);
    want = (float *)malloc(classes * sizeof *want);
    got = (float *)malloc(classes * sizeof *got);
    orig = (float *)malloc(classes * sizeof *orig);
    for (i = 0; i < n; ++i) input[i] = (float)((i * 2654435761u) % 1000u) / 250.0f - 2.0f;
    for (isa = MNV3_ISA_SCALAR; rounded && isa < (int)mnv3_isa_count(); ++isa) {
        mnv3_kernels k;
        mnv3_arena_plan p16, p32;
        uint32_t t;
        int same;
        double scale = 0.0, worst = 0.0, gap, wscale = 0.0;
        if (!mnv3_kernels_resolve((mnv3_isa)isa, MNV3_DTYPE_F16, MNV3_DTYPE_F32, &k)) continue;
        CHECK_MSG(k.row[MNV3_ROW_POINTWISE]->weight_type == MNV3_DTYPE_F16 &&
                  k.row[MNV3_ROW_FC]->weight_type == MNV3_DTYPE_F16, "%s",
                  mnv3_isa_name((mnv3_isa)isa));
        if (!run(rounded, (mnv3_isa)isa, 1, h, w, input, want, classes, &p32)) continue;
        for (t = 1; t <= 3; t += 2) {
            if (!run(half, (mnv3_isa)isa, t, h, w, input, got, classes, t == 1 ? &p16 : NULL))
                continue;
            for (i = 0, same = 1, gap = 0.0; i < classes; ++i) {
                same &= got[i] == want[i];
                if (fabs((double)got[i] - want[i]) > gap) gap = fabs((double)got[i] - want[i]);
                if (fabs(want[i]) > wscale) wscale = fabs(want[i]);
            }
            CHECK_MSG(gap <= 1e-4 * (wscale > 1.0 ? wscale : 1.0),
                      "%s threads %u: float16 weights differ from their float32 values by %g",
                      mnv3_isa_name((mnv3_isa)isa), t, gap);
            /* Every set shares its float32 rows' arithmetic: the GEMM runs the float32
             * tiles on widened weights, the others widen as they load, exactly. (An ARMv7
             * build without the half-precision extension converts at packing: the same.) */
            CHECK_MSG(same, "%s threads %u: float16 weights not bit-identical to their float32 "
                      "values (largest difference %g)", mnv3_isa_name((mnv3_isa)isa), t, gap);
            if (t == 1)
                printf("  %s: float16 weights vs their float32 values: %s\n",
                       mnv3_isa_name((mnv3_isa)isa), same ? "bit-identical" : "within rounding");
        }
        /* Packed copies are float16 too (half the bytes, give or take padding), except
         * where a set converts at packing. */
        printf("  %s: %s, %s, %s, %s; packed %zu bytes (float32 weights: %zu)\n",
               mnv3_isa_name((mnv3_isa)isa), k.row[MNV3_ROW_CONV]->name,
               k.row[MNV3_ROW_POINTWISE]->name, k.row[MNV3_ROW_DEPTHWISE]->name,
               k.row[MNV3_ROW_FC]->name, p16.packed_weights, p32.packed_weights);
#if !defined(__arm__)
        CHECK(p16.packed_weights <= p32.packed_weights / 2 + 64u * MNV3_MAX_CONVS);
#endif
        if (!run(f, (mnv3_isa)isa, 1, h, w, input, orig, classes, NULL)) continue;
        for (i = 0; i < classes; ++i) {
            const double d = fabs((double)got[i] - orig[i]);
            if (fabs(orig[i]) > scale) scale = fabs(orig[i]);
            if (d > worst) worst = d;
        }
        printf("  %s: max |float16 - float32 weights| of the logits %.3g (of %.3g)\n",
               mnv3_isa_name((mnv3_isa)isa), worst, scale);
        CHECK(worst <= 0.05 * scale);
    }
    free(input);
    free(want);
    free(got);
    free(orig);
    mnv3_model_free(f);
    mnv3_model_free(half);
    mnv3_model_free(rounded);
}

/* Relaxed precision: where a set has faster arithmetic for this CPU the context reports it
 * and the logits stay close (same top-1, relative error reported); elsewhere it falls back
 * to float32 and the logits are those of the exact run. float16 and bf16 arithmetic store
 * the activations in 16 bits: the arena's activations are fewer bytes than the float32
 * plan's, and half of them at 224x224, where both plans fuse the same expansions (at small
 * inputs an expanded tensor that float32 must fuse fits the cache in 16 bits and stays in
 * the arena). MNV3_EXPECT_RELAXED (fp32, fp16, bf16), set by the qemu targets, says what
 * the emulated CPU must give on the neon set. */
static void relaxed_case(const mnv3_model *m, const char *what, uint32_t h, uint32_t w,
                         uint32_t threads) {
    const uint32_t classes = mnv3_model_classes(m);
    const char *expect = getenv("MNV3_EXPECT_RELAXED");
    float *input = (float *)malloc((size_t)3 * h * w * sizeof(float));
    float *exact = (float *)malloc(classes * sizeof(float));
    float *relaxed = (float *)malloc(classes * sizeof(float));
    size_t i;
    int isa, faster = 0;
    for (i = 0; i < (size_t)3 * h * w; ++i)
        input[i] = (float)((i * 2654435761u) % 1000u) / 250.0f - 2.0f;
    for (isa = MNV3_ISA_SCALAR; isa < (int)mnv3_isa_count(); ++isa) {
        mnv3_config cfg;
        mnv3_context *ctx = NULL;
        mnv3_arithmetic got;
        mnv3_arena_plan p_exact, p_relaxed;
        uint32_t top_e = 0, top_r = 0;
        double scale = 0.0, worst = 0.0;
        if (!mnv3_isa_available((mnv3_isa)isa)) continue;
        if (!run(m, (mnv3_isa)isa, 1, h, w, input, exact, classes, &p_exact)) continue;
        mnv3_config_init(&cfg, m);
        cfg.height = h;
        cfg.width = w;
        cfg.isa = (mnv3_isa)isa;
        cfg.layout = MNV3_LAYOUT_NHWC;
        cfg.threads = threads;
        cfg.precision = MNV3_PRECISION_RELAXED;
        CHECK_STATUS(mnv3_arena_plan_for(m, &cfg, &p_relaxed, NULL), MNV3_OK);
        CHECK_STATUS(mnv3_context_create(m, &cfg, NULL, 0, &ctx, NULL), MNV3_OK);
        if (!ctx) continue;
        got = mnv3_context_arithmetic(ctx);
        CHECK_STATUS(mnv3_run(ctx, input, (size_t)3 * h * w, relaxed, classes, NULL, 0), MNV3_OK);
        mnv3_context_free(ctx);
        for (i = 0; i < classes; ++i) {
            if (fabs(exact[i]) > scale) scale = fabs(exact[i]);
            if (fabs((double)relaxed[i] - exact[i]) > worst) worst = fabs((double)relaxed[i] - exact[i]);
            if (exact[i] > exact[top_e]) top_e = (uint32_t)i;
            if (relaxed[i] > relaxed[top_r]) top_r = (uint32_t)i;
        }
        printf("  relaxed %s on %s, %u thread(s): %s arithmetic, max logit error %.3g of %.3g "
               "(%.2g relative); activations %zu bytes (float32 %zu)\n",
               what, mnv3_isa_name((mnv3_isa)isa), threads, mnv3_arithmetic_name(got), worst,
               scale, scale > 0 ? worst / scale : 0.0, p_relaxed.activations, p_exact.activations);
        if (got == MNV3_ARITHMETIC_FP16 || got == MNV3_ARITHMETIC_BF16)
            CHECK_MSG(p_relaxed.activations <= p_exact.activations * (h >= 224 ? 0.55 : 0.9),
                      "%s: %s activations take %zu bytes, float32 %zu",
                      mnv3_isa_name((mnv3_isa)isa), mnv3_arithmetic_name(got),
                      p_relaxed.activations, p_exact.activations);
        else
            CHECK(p_relaxed.activations == p_exact.activations);
        if (got == MNV3_ARITHMETIC_FP32) {
            CHECK_MSG(memcmp(exact, relaxed, classes * sizeof(float)) == 0,
                      "%s: float32 fallback differs from the exact run", mnv3_isa_name((mnv3_isa)isa));
        } else {
            faster = 1;
            CHECK(top_e == top_r);
            CHECK(worst <= 0.05 * scale);
        }
        if (expect && isa == MNV3_ISA_NEON)
            CHECK_MSG(strcmp(expect, mnv3_arithmetic_name(got)) == 0, "neon relaxed: %s, expected %s",
                      mnv3_arithmetic_name(got), expect);
    }
    if (!faster)
        SKIP("relaxed %s: no kernel set has float16 or bf16 arithmetic on this CPU (needs "
             "ARMv8.2 asimdhp or AVX512-BF16); checked the float32 fallback only", what);
    free(input);
    free(exact);
    free(relaxed);
}

/* ---- float16 activation rows against the reference ------------------------------------ */

static uint32_t lcg_state = 12345u;
/* A value in [-r, r] that float16 holds exactly, so both sides read the same inputs. */
static float f16_rand(float r) {
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return mnv3_f16_to_f32(mnv3_f32_to_f16(((float)(lcg_state >> 8) / 8388608.0f - 1.0f) * r));
}

static void fill_half(float *f, uint16_t *h, size_t n, float r) {
    size_t i;
    for (i = 0; i < n; ++i) {
        f[i] = f16_rand(r);
        h[i] = mnv3_f32_to_f16(f[i]);
    }
}

/* The relaxed sets' GEMV (float32 arithmetic, float32 or float16 weights) against a double
 * reference: every block height (out_features 13: a block of 8 and one of 5), inputs with
 * and without remainders after the blocks of 8 and 4. */
static void test_f16_gemv(void) {
    static const uint32_t in_counts[] = {1, 3, 4, 7, 8, 13, 37, 64};
    static const mnv3_dtype wtypes[] = {MNV3_DTYPE_F32, MNV3_DTYPE_F16};
    enum { OUT = 13, IMAX = 64 };
    static float x[IMAX], w32[OUT * IMAX], out[OUT];
    static uint16_t w16[OUT * IMAX];
    uint32_t ti, ii, i, o;
    for (ti = 0; ti < sizeof wtypes / sizeof *wtypes; ++ti) {
        mnv3_kernels k;
        if (!mnv3_kernels_resolve(MNV3_ISA_NEON, wtypes[ti], MNV3_DTYPE_F16, &k)) {
            SKIP("relaxed GEMV: the CPU has no FP16 arithmetic (ARMv8.2 asimdhp)");
            return;
        }
        for (ii = 0; ii < sizeof in_counts / sizeof *in_counts; ++ii) {
            const uint32_t I = in_counts[ii];
            mnv3_fc_args a;
            mnv3_layer l;
            double worst = 0.0;
            fill_half(x, w16, I, 2.0f);
            fill_half(w32, w16, (size_t)OUT * I, 0.5f);
            tc_float_layer(&l, MNV3_ROW_FC, I, OUT, 1, wtypes[ti],
                           wtypes[ti] == MNV3_DTYPE_F16 ? (const void *)w16 : (const void *)w32,
                           NULL, MNV3_ACT_NONE);
            memset(&a, 0, sizeof a);
            a.input = x;
            a.in_features = I;
            a.out_features = OUT;
            a.output = out;
            a.out_end = OUT;
            tc_run_fc(k.row[MNV3_ROW_FC], &l, &a);
            for (o = 0; o < OUT; ++o) {
                double want = 0.0, mag = 0.0;
                for (i = 0; i < I; ++i) {
                    want += (double)w32[(size_t)o * I + i] * x[i];
                    mag += fabs((double)w32[(size_t)o * I + i] * x[i]);
                }
                if (fabs(out[o] - want) / (mag + 1e-30) > worst)
                    worst = fabs(out[o] - want) / (mag + 1e-30);
            }
            CHECK_MSG(worst < 1e-5, "%s, %u inputs: relative error %g", k.row[MNV3_ROW_FC]->name, I,
                      worst);
        }
    }
}

/* The float16-weight GEMM tiles of every set against the reference given the same
 * (float16-valued) weights: every tile height the balanced split picks (1 .. 2 * mr + 1
 * pixels), k below, at and past the 8-step iterations of AArch64's generated loops and
 * their 4-step and single-step tails, whole and partial panels, with a bias, channel sums
 * and an SE gate on some. */
/* Rows of a pointwise row's tiles (1 for the reference, which has none). */
static uint32_t tile_rows(const mnv3_row *row) {
    const mnv3_f32_gemm_impl *im = (const mnv3_f32_gemm_impl *)row->impl;
    return im ? (im->tiles ? im->tiles->mr : im->mr) : 1;
}

static void test_f16w_gemm_tiles(void) {
    static const uint32_t ks[] = {1, 3, 4, 7, 8, 9, 12, 15, 16, 21, 28, 37};
    static const uint32_t ns[] = {3, 8, 13, 16, 24};
    enum { PMAX = 17, KMAX = 37, NMAX = 24 };
    static float in[PMAX * KMAX], wt[NMAX * KMAX], bias[NMAX], gate[KMAX];
    static float want[PMAX * NMAX], got[PMAX * NMAX], sums_want[NMAX], sums_got[NMAX];
    static uint16_t in_h[PMAX * KMAX], wt_h[NMAX * KMAX];
    const int quick = getenv("MNV3_TEST_QUICK") != NULL;
    unsigned cases = 0;
    int isa;
    for (isa = MNV3_ISA_SCALAR; isa < (int)mnv3_isa_count(); ++isa) {
        mnv3_kernels k;
        const mnv3_row *row;
        double worst = 0.0;
        uint32_t P, ki, ni;
        if (!mnv3_kernels_resolve((mnv3_isa)isa, MNV3_DTYPE_F16, MNV3_DTYPE_F32, &k)) continue;
        row = k.row[MNV3_ROW_POINTWISE];
        for (P = 1; P <= 2 * tile_rows(row) + 1 && P <= PMAX; ++P)
            for (ki = 0; ki < sizeof ks / sizeof *ks; ++ki)
                for (ni = 0; ni < sizeof ns / sizeof *ns; ++ni) {
                    const uint32_t K = ks[ki], N = ns[ni], variant = P + ki + ni;
                    const float *b = variant % 2 ? bias : NULL;
                    mnv3_pointwise_args a;
                    mnv3_layer lf, lh;
                    size_t i;
                    if (quick && variant % 3) continue;
                    fill_half(in, in_h, (size_t)P * K, 2.0f);
                    fill_half(wt, wt_h, (size_t)N * K, 0.5f);
                    for (i = 0; i < N; ++i) bias[i] = f16_rand(1.0f);
                    for (i = 0; i < K; ++i) gate[i] = 0.5f + 0.25f * f16_rand(1.0f);
                    /* the reference on float32 weights holding the float16 values */
                    tc_float_layer(&lf, MNV3_ROW_POINTWISE, K, N, 1, MNV3_DTYPE_F32, wt, b,
                                   MNV3_ACT_NONE);
                    tc_float_layer(&lh, MNV3_ROW_POINTWISE, K, N, 1, MNV3_DTYPE_F16, wt_h, b,
                                   MNV3_ACT_NONE);
                    memset(&a, 0, sizeof a);
                    a.input = in;
                    a.in_stride = K;
                    a.gate = variant % 4 == 1 ? gate : NULL;
                    a.out_stride = N;
                    a.in_channels = K;
                    a.out_channels = N;
                    a.pixel_begin = 0;
                    a.pixel_end = P;
                    a.oc_begin = 0;
                    a.oc_end = N;
                    memset(sums_want, 0, sizeof sums_want);
                    memset(sums_got, 0, sizeof sums_got);
                    a.channel_sums = variant % 3 == 2 ? sums_want : NULL;
                    a.output = want;
                    tc_run_pointwise(tc_reference(MNV3_ROW_POINTWISE, MNV3_DTYPE_F32), &lf, &a);
                    a.channel_sums = a.channel_sums ? sums_got : NULL;
                    a.output = got;
                    tc_run_pointwise(row, &lh, &a);
                    /* Exact products (the conversion is exact); the sums' order differs
                     * where a tile splits k over several accumulators. */
                    for (i = 0; i < (size_t)P * N; ++i) {
                        const double d = fabs((double)got[i] - want[i]) / (1.0 + fabs(want[i]));
                        if (d > worst) worst = d;
                    }
                    for (i = 0; a.channel_sums && i < N; ++i) {
                        const double d = fabs((double)sums_got[i] - sums_want[i]) /
                                         (1.0 + fabs(sums_want[i]));
                        if (d > worst) worst = d;
                    }
                    ++cases;
                }
        CHECK_MSG(worst <= 1e-5, "%s %s: float16-weight GEMM off by %g", mnv3_isa_name((mnv3_isa)isa),
                  row->name, worst);
        printf("  %s %s: float16-weight GEMM tiles, max relative error %.3g\n",
               mnv3_isa_name((mnv3_isa)isa), row->name, worst);
    }
    printf("  float16-weight GEMM tiles: %u cases\n", cases);
}

#if defined(MNV3_HAVE_NEON_KERNELS)
/* The NEON float32 and float16-weight rows, which the widening tests compare. */
static int neon_f32_and_f16w(mnv3_kernels *kf, mnv3_kernels *kh) {
    const int ok = mnv3_kernels_resolve(MNV3_ISA_NEON, MNV3_DTYPE_F32, MNV3_DTYPE_F32, kf) &&
                   mnv3_kernels_resolve(MNV3_ISA_NEON, MNV3_DTYPE_F16, MNV3_DTYPE_F32, kh);
    CHECK_MSG(ok, "no NEON float32 or float16-weight rows");
    return ok;
}

#endif

/* The NEON float16-weight GEMM widens its panels into the workspace and runs the float32
 * set's tiles: its results must equal, bit for bit, the float32 set's on the same weights.
 * Small weights (widened whole, once per call) and large ones (a panel at a time, per chunk
 * of 64 rows: 70 pixels make two chunks), an output-channel sub-range starting past the
 * first panel, the SE gate on some. */
static void test_f16w_gemm_widened(void) {
#if defined(MNV3_HAVE_NEON_KERNELS)
    static const uint32_t shapes[][3] = {{1, 37, 24}, {9, 37, 24}, {70, 16, 40},
                                         {1, 300, 40}, {13, 300, 40}, {70, 300, 40}};
    enum { PMAX = 70, KMAX = 300, NMAX = 40 };
    static float in[PMAX * KMAX], wt[NMAX * KMAX], bias[NMAX], gate[KMAX];
    static float want[PMAX * NMAX], got[PMAX * NMAX];
    static uint16_t in_h[PMAX * KMAX], wt_h[NMAX * KMAX];
    mnv3_kernels kh, kf;
    unsigned cases = 0, si;
    if (!neon_f32_and_f16w(&kf, &kh)) return;
    for (si = 0; si < sizeof shapes / sizeof *shapes; ++si) {
        const uint32_t P = shapes[si][0], K = shapes[si][1], N = shapes[si][2];
        const mnv3_row *rh = kh.row[MNV3_ROW_POINTWISE], *rf = kf.row[MNV3_ROW_POINTWISE];
        mnv3_layer lf, lh;
        int sub;
        size_t i;
        fill_half(in, in_h, (size_t)P * K, 2.0f);
        fill_half(wt, wt_h, (size_t)N * K, 0.5f);
        for (i = 0; i < N; ++i) bias[i] = f16_rand(1.0f);
        for (i = 0; i < K; ++i) gate[i] = 0.5f + 0.25f * f16_rand(1.0f);
        tc_float_layer(&lf, MNV3_ROW_POINTWISE, K, N, 1, MNV3_DTYPE_F32, wt, bias,
                       MNV3_ACT_HARD_SWISH);
        tc_float_layer(&lh, MNV3_ROW_POINTWISE, K, N, 1, MNV3_DTYPE_F16, wt_h, bias,
                       MNV3_ACT_HARD_SWISH);
        for (sub = 0; sub < 2; ++sub) {
            mnv3_pointwise_args a;
            memset(&a, 0, sizeof a);
            a.input = in;
            a.in_stride = K;
            a.gate = (si + sub) % 2 ? gate : NULL;
            a.out_stride = N;
            a.in_channels = K;
            a.out_channels = N;
            a.pixel_begin = sub ? P / 3 : 0;
            a.pixel_end = P;
            a.oc_begin = sub ? rh->nr : 0;
            a.oc_end = sub ? N - 7 : N;
            memset(want, 0, sizeof want);
            memset(got, 0, sizeof got);
            a.output = want;
            tc_run_pointwise(rf, &lf, &a);
            a.output = got;
            tc_run_pointwise(rh, &lh, &a);
            for (i = 0; i < (size_t)P * N && memcmp(&got[i], &want[i], sizeof *got) == 0; ++i) {
            }
            CHECK_MSG(i == (size_t)P * N,
                      "%s: %u x %u x %u%s: pixel %zu channel %zu is %.9g, the float32 set's %.9g",
                      rh->name, P, K, N, sub ? " (sub-range)" : "", i / N, i % N,
                      i < (size_t)P * N ? got[i] : 0.0, i < (size_t)P * N ? want[i] : 0.0);
            ++cases;
        }
    }
    printf("  float16-weight GEMM widening: %u cases bit-identical to the float32 set\n", cases);
#endif
}

/* The NEON float16-weight GEMV widens as it loads and adds in the float32 one's order:
 * equal bit for bit, for inputs with and without remainders after the steps of 8 and 4,
 * and 13 outputs (a block of 8 and one of 5, which repeats its last row). */
static void test_f16w_gemv(void) {
#if defined(MNV3_HAVE_NEON_KERNELS) &&                                                       \
    (defined(__aarch64__) || (defined(__ARM_FP16_FORMAT_IEEE) && (__ARM_FP & 2)))
    static const uint32_t in_counts[] = {1, 3, 4, 7, 8, 13, 37, 64, 100};
    enum { OUT = 13, IMAX = 100 };
    static float x[IMAX], w32[OUT * IMAX], bias[OUT], want[OUT], got[OUT];
    static uint16_t x16[IMAX], w16[OUT * IMAX];
    mnv3_kernels kf, kh;
    uint32_t ii, o;
    if (!neon_f32_and_f16w(&kf, &kh)) return;
    for (ii = 0; ii < sizeof in_counts / sizeof *in_counts; ++ii) {
        const uint32_t I = in_counts[ii];
        mnv3_fc_args a;
        mnv3_layer lf, lh;
        fill_half(x, x16, I, 2.0f);
        fill_half(w32, w16, (size_t)OUT * I, 0.5f);
        for (o = 0; o < OUT; ++o) bias[o] = f16_rand(1.0f);
        tc_float_layer(&lf, MNV3_ROW_FC, I, OUT, 1, MNV3_DTYPE_F32, w32, bias, MNV3_ACT_HARD_SWISH);
        tc_float_layer(&lh, MNV3_ROW_FC, I, OUT, 1, MNV3_DTYPE_F16, w16, bias, MNV3_ACT_HARD_SWISH);
        memset(&a, 0, sizeof a);
        a.input = x;
        a.in_features = I;
        a.out_features = OUT;
        a.out_end = OUT;
        a.output = want;
        tc_run_fc(kf.row[MNV3_ROW_FC], &lf, &a);
        a.output = got;
        tc_run_fc(kh.row[MNV3_ROW_FC], &lh, &a);
        for (o = 0; o < OUT && memcmp(&got[o], &want[o], sizeof *got) == 0; ++o) {
        }
        CHECK_MSG(o == OUT, "%s, %u inputs: output %u is %.9g, the float32 row's %.9g",
                  kh.row[MNV3_ROW_FC]->name, I, o, o < OUT ? got[o] : 0.0,
                  o < OUT ? want[o] : 0.0);
    }
    printf("  float16-weight GEMV: %u input counts equal to the float32 row's output\n",
           (unsigned)(sizeof in_counts / sizeof *in_counts));
#endif
}

/* A whole stem over an H x W x Ci NHWC image: every output row, padding pad each side. */
static void stem_args(mnv3_conv_args *a, const float *in, uint32_t H, uint32_t W, uint32_t Ci,
                      uint32_t Co, uint32_t K, uint32_t S, uint32_t pad) {
    memset(a, 0, sizeof *a);
    a->input = in;
    a->in_height = H;
    a->in_width = W;
    a->in_channels = Ci;
    a->in_row_stride = (size_t)W * Ci;
    a->in_col_stride = Ci;
    a->in_chan_stride = 1;
    a->out_channels = Co;
    a->kernel = K;
    a->stride = S;
    a->pad_top = a->pad_left = pad;
    a->out_height = (H + 2 * pad - K) / S + 1;
    a->out_width = (W + 2 * pad - K) / S + 1;
    a->row_begin = 0;
    a->row_end = a->out_height;
}

/* The NEON stems with float16 weights run the float32 set's tiles on widened weights: the
 * float16-weight row's output must equal the float32 row's bit for bit, and the relaxed
 * rows' (float16 output) must be the float32 row's output rounded once. Shapes: a stem
 * (27 taps, 16 channels), 90 taps (two passes over each patch) with 72 channels (more
 * than fit the widened-weights buffer, and two groups of columns where the output is
 * float16), and 20 channels (a partial panel) with a 5x5 kernel. */
static void test_f16_stems(void) {
#if defined(MNV3_HAVE_NEON_KERNELS) &&                                                       \
    (defined(__aarch64__) || (defined(__ARM_FP16_FORMAT_IEEE) && (__ARM_FP & 2)))
    static const uint32_t shapes[][7] = {/* H, W, Ci, Co, K, S, pad */
                                         {9, 13, 3, 16, 3, 2, 1},
                                         {7, 11, 10, 72, 3, 1, 1},
                                         {6, 10, 3, 20, 5, 1, 2}};
    static const mnv3_dtype relaxed_wtypes[] = {MNV3_DTYPE_F16, MNV3_DTYPE_F32};
    unsigned cases = 0, si, ti;
    mnv3_kernels kf, kh;
    if (!neon_f32_and_f16w(&kf, &kh)) return;
    {
        for (si = 0; si < sizeof shapes / sizeof *shapes; ++si) {
            const uint32_t H = shapes[si][0], W = shapes[si][1], Ci = shapes[si][2];
            const uint32_t Co = shapes[si][3], K = shapes[si][4], S = shapes[si][5];
            const uint32_t pad = shapes[si][6];
            const uint32_t OH = (H + 2 * pad - K) / S + 1, OW = (W + 2 * pad - K) / S + 1;
            const size_t in_n = (size_t)H * W * Ci, w_n = (size_t)Co * K * K * Ci;
            const size_t out_n = (size_t)OH * OW * Co;
            float *in = (float *)malloc(in_n * sizeof *in);
            float *w32 = (float *)malloc(w_n * sizeof *w32), *bias = (float *)malloc(Co * sizeof *bias);
            float *want = (float *)malloc(out_n * sizeof *want), *got = (float *)malloc(out_n * sizeof *got);
            uint16_t *w16 = (uint16_t *)malloc(w_n * sizeof *w16), *in16 = (uint16_t *)malloc(in_n * sizeof *in16);
            uint16_t *got16 = (uint16_t *)malloc(out_n * sizeof *got16);
            mnv3_conv_args a;
            mnv3_layer lf, lh;
            size_t i;
            if (!in || !w32 || !bias || !want || !got || !w16 || !in16 || !got16) {
                CHECK_MSG(0, "out of memory");
                free(in), free(w32), free(bias), free(want), free(got), free(w16), free(in16);
                free(got16);
                return;
            }
            fill_half(in, in16, in_n, 2.0f);
            fill_half(w32, w16, w_n, 0.5f);
            for (i = 0; i < Co; ++i) bias[i] = f16_rand(1.0f);
            tc_float_layer(&lf, MNV3_ROW_CONV, Ci, Co, K, MNV3_DTYPE_F32, w32, bias,
                           MNV3_ACT_HARD_SWISH);
            tc_float_layer(&lh, MNV3_ROW_CONV, Ci, Co, K, MNV3_DTYPE_F16, w16, bias,
                           MNV3_ACT_HARD_SWISH);
            lf.stride = lh.stride = S;
            stem_args(&a, in, H, W, Ci, Co, K, S, pad);
            a.output = want;
            tc_run_conv(kf.row[MNV3_ROW_CONV], &lf, &a);
            a.output = got;
            tc_run_conv(kh.row[MNV3_ROW_CONV], &lh, &a);
            for (i = 0; i < out_n && memcmp(&got[i], &want[i], sizeof *got) == 0; ++i) {
            }
            CHECK_MSG(i == out_n, "%s: %ux%u stem, %u to %u channels: output %zu is %.9g, the float32 "
                      "row's %.9g", kh.row[MNV3_ROW_CONV]->name, K, K, Ci, Co, i,
                      i < out_n ? got[i] : 0.0, i < out_n ? want[i] : 0.0);
            ++cases;
            for (ti = 0; ti < sizeof relaxed_wtypes / sizeof *relaxed_wtypes; ++ti) {
                mnv3_kernels kr;
                const mnv3_layer *lr = relaxed_wtypes[ti] == MNV3_DTYPE_F16 ? &lh : &lf;
                if (!mnv3_kernels_resolve(MNV3_ISA_NEON, relaxed_wtypes[ti], MNV3_DTYPE_F16, &kr))
                    continue; /* no FP16 arithmetic: test_relaxed_rows says so */
                a.output = got16;
                tc_run_conv(kr.row[MNV3_ROW_CONV], lr, &a);
                for (i = 0; i < out_n && got16[i] == mnv3_f32_to_f16(want[i]); ++i) {
                }
                CHECK_MSG(i == out_n, "%s: %ux%u stem, %u to %u channels: output %zu is %.9g, the "
                          "float32 row's %.9g rounded is %.9g", kr.row[MNV3_ROW_CONV]->name, K, K,
                          Ci, Co, i, i < out_n ? mnv3_f16_to_f32(got16[i]) : 0.0,
                          i < out_n ? want[i] : 0.0,
                          i < out_n ? mnv3_f16_to_f32(mnv3_f32_to_f16(want[i])) : 0.0);
                ++cases;
            }
            free(in), free(w32), free(bias), free(want), free(got), free(w16), free(in16);
            free(got16);
        }
    }
    printf("  float16-weight stems: %u cases equal to the float32 row's output\n", cases);
#endif
}

/* The 16-bit activation formats of relaxed precision, as the tests write and read them. */
typedef struct act16_format {
    const char *name;
    mnv3_isa isa;                /* the id whose relaxed rows store them */
    mnv3_dtype arith;
    const char *needs;           /* what the CPU lacks when no row has them */
    uint16_t (*narrow)(float);   /* rounded to nearest even */
    float (*widen)(uint16_t);
} act16_format;

static uint16_t bf16_from_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)(u >> 16 | 0x40u);
    return (uint16_t)((u + 0x7FFFu + (u >> 16 & 1u)) >> 16);
}

static float bf16_to_f32(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static const act16_format act16_formats[] = {
    {"float16", MNV3_ISA_NEON, MNV3_DTYPE_F16, "ARMv8.2 asimdhp", mnv3_f32_to_f16, mnv3_f16_to_f32},
    {"bf16", MNV3_ISA_AVX512, MNV3_DTYPE_BF16, "AVX512-BF16", bf16_from_f32, bf16_to_f32},
};

/* Values in [-r, r] that the format holds exactly, so both sides read the same inputs. */
static void fill_act16(const act16_format *fmt, float *f, uint16_t *h, size_t n, float r) {
    size_t i;
    for (i = 0; i < n; ++i) {
        lcg_state = lcg_state * 1664525u + 1013904223u;
        h[i] = fmt->narrow(((float)(lcg_state >> 8) / 8388608.0f - 1.0f) * r);
        f[i] = fmt->widen(h[i]);
    }
}

/* Largest |got - want| / (1 + |want|) over n outputs in the format. */
static double act16_error(const act16_format *fmt, const uint16_t *got, const float *want,
                          size_t n) {
    double worst = 0.0;
    size_t i;
    for (i = 0; i < n; ++i) {
        const double d = fabs((double)fmt->widen(got[i]) - want[i]) / (1.0 + fabs(want[i]));
        if (d > worst) worst = d;
    }
    return worst;
}

/* The relaxed stem (float32 image, float32 arithmetic) stores what the set's float32 stem
 * computes, rounded once to the format: interior groups and clipped border pixels, whole
 * and partial channel vectors. */
static void test_act16_stem(const act16_format *fmt, const mnv3_kernels *k,
                            const mnv3_kernels *kf) {
    static const uint32_t shapes[][4] = {{3, 2, 3, 24}, {3, 1, 3, 16}, {5, 2, 4, 13}};
    enum { H = 13, W = 21, CIMAX = 4, COMAX = 24, KMAX = 5 };
    static float in[H * W * CIMAX], wt[COMAX * KMAX * KMAX * CIMAX], bias[COMAX];
    static float want[H * W * COMAX];
    static uint16_t got[H * W * COMAX];
    uint32_t si, i, cases = 0;
    for (si = 0; si < sizeof shapes / sizeof *shapes; ++si) {
        const uint32_t K = shapes[si][0], S = shapes[si][1], Ci = shapes[si][2];
        const uint32_t Co = shapes[si][3], pad = K / 2;
        const uint32_t OH = (H + 2 * pad - K) / S + 1, OW = (W + 2 * pad - K) / S + 1;
        const size_t out_n = (size_t)OH * OW * Co;
        mnv3_conv_args a;
        mnv3_layer l;
        for (i = 0; i < H * W * Ci; ++i) in[i] = f16_rand(2.0f);
        for (i = 0; i < Co * K * K * Ci; ++i) wt[i] = f16_rand(0.5f);
        for (i = 0; i < Co; ++i) bias[i] = f16_rand(1.0f);
        tc_float_layer(&l, MNV3_ROW_CONV, Ci, Co, K, MNV3_DTYPE_F32, wt, bias,
                       MNV3_ACT_HARD_SWISH);
        l.stride = S;
        stem_args(&a, in, H, W, Ci, Co, K, S, pad);
        a.output = want;
        tc_run_conv(kf->row[MNV3_ROW_CONV], &l, &a);
        a.output = got;
        tc_run_conv(k->row[MNV3_ROW_CONV], &l, &a);
        for (i = 0; i < out_n && got[i] == fmt->narrow(want[i]); ++i) {
        }
        CHECK_MSG(i == out_n, "%s: %ux%u stem, %u to %u channels: output %u is %.9g, the float32 "
                  "row's %.9g rounded is %.9g", k->row[MNV3_ROW_CONV]->name, K, K, Ci, Co, i,
                  i < out_n ? fmt->widen(got[i]) : 0.0, i < out_n ? want[i] : 0.0,
                  i < out_n ? fmt->widen(fmt->narrow(want[i])) : 0.0);
        ++cases;
    }
    printf("  %s stem (%s): %u cases equal to the float32 row's output rounded\n", fmt->name,
           k->row[MNV3_ROW_CONV]->name, cases);
}

/* The relaxed rows on 16-bit activations (the neon set on a CPU with FP16 arithmetic, the
 * avx512 set on one with AVX512-BF16) against the float32 reference given the same
 * format-exact inputs: depthwise at every microkernel shape and the generic one (7x7, 3x3
 * and 5x5 stride 3), channel counts with partial vectors, input rows through a ring,
 * channel sums; pointwise with a partial last panel, odd and even k, the SE gate, a
 * residual with its clamp and channel sums; the stem, equal to the set's float32 stem
 * rounded once. Errors are the format's rounding (bf16 also rounds the GEMM weights). */
static void test_act16_rows(const act16_format *fmt) {
    static const uint32_t shapes[][2] = {{3, 1}, {3, 2}, {5, 1}, {5, 2}, {7, 1}, {3, 3}, {5, 3}};
    static const uint32_t channel_counts[] = {8, 13, 24};
    static const uint32_t pw_shapes[][2] = {{13, 37}, {7, 37}, {6, 21}, {4, 9},
                                            {3, 16}, {2, 40}, {1, 37}, {5, 5}};
    enum { H = 11, W = 10, CMAX = 24, KMAX = 7 };
    static float in[H * W * CMAX], want[H * W * CMAX], wt[KMAX * KMAX * CMAX], bias[64];
    static float sums_want[64], sums_got[64], scale[64], res[16 * 24];
    static uint16_t in_h[H * W * CMAX], out_h[H * W * CMAX], split_h[H * W * CMAX], res_h[16 * 24];
    static uint16_t wt_h[KMAX * KMAX * CMAX];
    mnv3_kernels k, kf;
    double worst_dw = 0.0, worst_pw = 0.0;
    uint32_t si, ci, i;
    if (!mnv3_kernels_resolve(fmt->isa, MNV3_DTYPE_F32, fmt->arith, &k) ||
        !mnv3_kernels_resolve(fmt->isa, MNV3_DTYPE_F32, MNV3_DTYPE_F32, &kf)) {
        SKIP("%s activation rows: the CPU has no %s arithmetic (%s)", fmt->name, fmt->name,
             fmt->needs);
        return;
    }
    for (si = 0; si < sizeof shapes / sizeof *shapes; ++si)
        for (ci = 0; ci < sizeof channel_counts / sizeof *channel_counts; ++ci) {
            const uint32_t K = shapes[si][0], S = shapes[si][1], C = channel_counts[ci];
            const uint32_t pad = K / 2;
            const uint32_t oh = (H + 2 * pad - K) / S + 1, ow = (W + 2 * pad - K) / S + 1;
            const int ring = si % 2 == 0;
            mnv3_depthwise_args a;
            mnv3_layer l;
            double e, es = 0.0;
            fill_act16(fmt, in, in_h, (size_t)H * W * C, 2.0f);
            fill_act16(fmt, wt, wt_h, (size_t)K * K * C, 0.5f);
            for (i = 0; i < C; ++i) bias[i] = fmt->widen(fmt->narrow(f16_rand(1.0f)));
            tc_float_layer(&l, MNV3_ROW_DEPTHWISE, C, C, K, MNV3_DTYPE_F32, wt, bias,
                           MNV3_ACT_HARD_SWISH);
            l.stride = S;
            memset(&a, 0, sizeof a);
            a.in_height = H;
            a.in_width = W;
            a.channels = C;
            a.kernel = K;
            a.stride = S;
            a.pad_top = a.pad_left = pad;
            a.out_height = oh;
            a.out_width = ow;
            a.row_begin = 0;
            a.row_end = oh;
            a.input = in;
            a.output = want;
            memset(sums_want, 0, sizeof sums_want);
            a.channel_sums = sums_want;
            tc_run_depthwise(tc_reference(MNV3_ROW_DEPTHWISE, MNV3_DTYPE_F32), &l, &a);
            /* the ring holds every row (H of them) so the same bytes serve both layouts */
            a.in_ring_rows = ring ? H : 0;
            a.input = in_h;
            a.output = out_h;
            memset(sums_got, 0, sizeof sums_got);
            a.channel_sums = sums_got;
            tc_run_depthwise(k.row[MNV3_ROW_DEPTHWISE], &l, &a);
            e = act16_error(fmt, out_h, want, (size_t)oh * ow * C);
            for (i = 0; i < C; ++i) {
                const double d =
                    fabs((double)sums_got[i] - sums_want[i]) / (oh * ow + fabs(sums_want[i]));
                if (d > es) es = d;
            }
            CHECK_MSG(e < 2e-2 && es < 2e-2, "%s %ux%u stride %u, %u channels: error %g, sums %g",
                      k.row[MNV3_ROW_DEPTHWISE]->name, K, K, S, C, e, es);
            if (e > worst_dw) worst_dw = e;
        }
    /* pointwise, 20 outputs (a partial panel): 13 pixels (tiles of 8 and 5 rows) and every
     * other tile height, k with and without a remainder after the blocks of 8, k < 8 */
    for (si = 0; si < sizeof pw_shapes / sizeof *pw_shapes; ++si) {
        const uint32_t P = pw_shapes[si][0], KI = pw_shapes[si][1];
        const mnv3_row *row = k.row[MNV3_ROW_POINTWISE];
        enum { N = 20 };
        mnv3_pointwise_args a;
        mnv3_layer l;
        double e, es = 0.0;
        fill_act16(fmt, in, in_h, (size_t)P * KI, 2.0f);
        fill_act16(fmt, wt, wt_h, (size_t)N * KI, 0.5f);
        fill_act16(fmt, res, res_h, (size_t)P * N, 2.0f);
        for (i = 0; i < N; ++i) bias[i] = f16_rand(1.0f);
        for (i = 0; i < KI; ++i) scale[i] = fmt->widen(fmt->narrow(f16_rand(1.0f)));
        tc_float_layer(&l, MNV3_ROW_POINTWISE, KI, N, 1, MNV3_DTYPE_F32, wt, bias, MNV3_ACT_RELU6);
        l.residual_clamp.lo = -3.0f;
        l.residual_clamp.hi = 3.0f;
        memset(&a, 0, sizeof a);
        a.in_stride = KI;
        a.gate = scale;
        a.out_stride = N;
        a.in_channels = KI;
        a.out_channels = N;
        a.pixel_end = P;
        a.oc_end = N;
        a.input = in;
        a.residual = res;
        a.output = want;
        memset(sums_want, 0, sizeof sums_want);
        a.channel_sums = sums_want;
        tc_run_pointwise(tc_reference(MNV3_ROW_POINTWISE, MNV3_DTYPE_F32), &l, &a);
        a.input = in_h;
        a.residual = res_h;
        a.output = out_h;
        memset(sums_got, 0, sizeof sums_got);
        a.channel_sums = sums_got;
        tc_run_pointwise(row, &l, &a);
        { /* A pixel's result does not depend on where its range starts (threads split
           * layers at any pixel, and results must not depend on the thread count). */
            uint32_t at, differs = 0;
            a.channel_sums = NULL;
            a.output = split_h;
            for (at = 1; at < P && !differs; ++at) {
                a.pixel_begin = 0;
                a.pixel_end = at;
                tc_run_pointwise(row, &l, &a);
                a.pixel_begin = at;
                a.pixel_end = P;
                tc_run_pointwise(row, &l, &a);
                if (memcmp(out_h, split_h, (size_t)P * N * sizeof *out_h) != 0) differs = at;
            }
            CHECK_MSG(!differs, "%s, %u pixels: splitting the range at pixel %u changes results",
                      row->name, P, differs);
        }
        e = act16_error(fmt, out_h, want, (size_t)P * N);
        for (i = 0; i < N; ++i) {
            const double d = fabs((double)sums_got[i] - sums_want[i]) / (P + fabs(sums_want[i]));
            if (d > es) es = d;
        }
        CHECK_MSG(e < 2e-2 && es < 2e-2, "%s, %u pixels, %u inputs: error %g, sums %g", row->name,
                  P, KI, e, es);
        if (e > worst_pw) worst_pw = e;
    }
    printf("  %s activation rows (%s, %s): largest error %.2g depthwise, %.2g pointwise\n",
           fmt->name, k.row[MNV3_ROW_DEPTHWISE]->name, k.row[MNV3_ROW_POINTWISE]->name, worst_dw,
           worst_pw);
    test_act16_stem(fmt, &k, &kf);
}

static void test_relaxed_rows(void) {
    size_t i;
    for (i = 0; i < sizeof act16_formats / sizeof *act16_formats; ++i)
        test_act16_rows(&act16_formats[i]);
}

static void test_relaxed(void) {
    mnv3_model *f = builtin(MNV3_ARCH_LARGE, 1.0, 1000), *h = f ? to_half(f) : NULL;
    mnv3_config cfg;
    if (f) {
        relaxed_case(f, "float32 Large", 96, 96, 1);
        relaxed_case(f, "float32 Large", 224, 224, 3);
        mnv3_config_init(&cfg, f);
        cfg.precision = (mnv3_precision_mode)7;
        CHECK_STATUS(mnv3_arena_plan_for(f, &cfg, &(mnv3_arena_plan){0}, NULL),
                     MNV3_ERR_INVALID_ARGUMENT);
    }
    if (h) relaxed_case(h, "float16 Large", 96, 96, 2);
    mnv3_model_free(f);
    mnv3_model_free(h);
    /* Unrounded channel counts (partial float16 vectors everywhere) and odd input sides. */
    f = NULL;
    CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_WALKTHROUGH, 0.6, 37, 5,
                                           &f, NULL),
                 MNV3_OK);
    if (f) relaxed_case(f, "walkthrough Small 0.6", 67, 45, 3);
    mnv3_model_free(f);
}

/* ---- accuracy on real inputs ------------------------------------------------------------ */

/* Logits of one image under a precision: `half` stores the weights as float16. */
static int logits_at(const mnv3_model *m, int relaxed, uint32_t h, uint32_t w, mnv3_layout layout,
                     const float *x, float *out, mnv3_arithmetic *arith) {
    mnv3_config cfg;
    mnv3_context *ctx = NULL;
    mnv3_status st;
    mnv3_config_init(&cfg, m);
    cfg.height = h;
    cfg.width = w;
    cfg.layout = layout;
    cfg.precision = relaxed ? MNV3_PRECISION_RELAXED : MNV3_PRECISION_EXACT;
    st = mnv3_context_create(m, &cfg, NULL, 0, &ctx, NULL);
    CHECK_STATUS(st, MNV3_OK);
    if (st != MNV3_OK) return 0;
    if (arith) *arith = mnv3_context_arithmetic(ctx);
    st = mnv3_run(ctx, x, (size_t)3 * h * w, out, mnv3_model_classes(m), NULL, 0);
    CHECK_STATUS(st, MNV3_OK);
    mnv3_context_free(ctx);
    return st == MNV3_OK;
}

static uint32_t argmax(const float *v, uint32_t n) {
    uint32_t i, best = 0;
    for (i = 1; i < n; ++i)
        if (v[i] > v[best]) best = i;
    return best;
}

/* Float16 weights and relaxed precision (with float32 and with float16 weights) against
 * the exact float32 run of one image: the same top-1; the largest logit error relative to
 * the largest logit is printed, the figure docs/benchmarks.md reports. */
static void accuracy_case(const char *what, const mnv3_model *m, uint32_t h, uint32_t w,
                          mnv3_layout layout, const float *x) {
    const uint32_t n = mnv3_model_classes(m);
    mnv3_model *half = to_half(m);
    float *exact = (float *)malloc(n * sizeof(float)), *got = (float *)malloc(n * sizeof(float));
    const char *names[3] = {"fp16-weights", "relaxed", "relaxed+fp16-weights"};
    int v;
    if (!half || !logits_at(m, 0, h, w, layout, x, exact, NULL)) goto done;
    for (v = 0; v < 3; ++v) {
        mnv3_arithmetic arith = MNV3_ARITHMETIC_FP32;
        double scale = 0.0, worst = 0.0;
        uint32_t i;
        if (!logits_at(v == 1 ? m : half, v > 0, h, w, layout, x, got, &arith)) continue;
        for (i = 0; i < n; ++i) {
            if (fabs(exact[i]) > scale) scale = fabs(exact[i]);
            if (fabs((double)got[i] - exact[i]) > worst) worst = fabs((double)got[i] - exact[i]);
        }
        printf("  accuracy %-28s %-21s (%s): top-1 %u vs %u, max logit error %.2e relative\n",
               what, names[v], mnv3_arithmetic_name(arith), argmax(got, n), argmax(exact, n),
               scale > 0 ? worst / scale : 0.0);
        CHECK_MSG(argmax(got, n) == argmax(exact, n), "%s %s: top-1 changed", what, names[v]);
    }
done:
    free(exact);
    free(got);
    mnv3_model_free(half);
}

/* The shipped TFLite model imported as float (its golden directory), on every shared
 * image; and the torchvision-architecture goldens on their inputs. */
static void test_accuracy(void) {
    static const char *images[2] = {"chelsea", "coffee"};
    static const char *goldens[3] = {"tv_large_w100_c1000_224", "tv_small_w100_c1000_224_b2",
                                     "tv_large_w050_c1000_224"};
    const char *golden = getenv("MNV3_GOLDEN_DIR"), *shared = getenv("MNV3_SHARED_DIR");
    char path[1024];
    mnv3_model *m = NULL;
    int i;
    if (!golden || !*golden) golden = "build/goldens";
    if (!shared || !*shared) shared = "../shared";
    snprintf(path, sizeof path, "%s/tflite_small_uint8/model.mnv3", golden);
    if (mnv3_model_load_file(path, 0, &m, NULL) != MNV3_OK || mnv3_model_weight_type(m) != MNV3_WEIGHTS_FLOAT32) {
        SKIP("accuracy on the shipped TFLite model: %s absent or not a float import (make "
             "goldens; needs ../shared)", path);
    } else {
        for (i = 0; i < 2; ++i) {
            mnv3_npy_array img;
            static float x[3 * 224 * 224];
            snprintf(path, sizeof path, "%s/images/%s_224_nhwc_uint8.npy", shared, images[i]);
            if (mnv3_npy_read_file(path, &img, NULL) != MNV3_OK) {
                SKIP("accuracy: %s absent", path);
                continue;
            }
            if (img.count == 3 * 224 * 224 && img.dtype == MNV3_NPY_UINT8 &&
                mnv3_preprocess_image(m, (const uint8_t *)img.data, 224, 224, 3, 224, 224,
                                      MNV3_LAYOUT_NHWC, x, 3 * 224 * 224) == MNV3_OK) {
                snprintf(path, sizeof path, "tflite small %s", images[i]);
                accuracy_case(path, m, 224, 224, MNV3_LAYOUT_NHWC, x);
            }
            mnv3_npy_free(&img);
        }
    }
    mnv3_model_free(m);
    for (i = 0; i < 3; ++i) {
        mnv3_npy_array in;
        m = NULL;
        snprintf(path, sizeof path, "%s/%s/model.mnv3", golden, goldens[i]);
        if (mnv3_model_load_file(path, 0, &m, NULL) != MNV3_OK) {
            SKIP("accuracy: golden %s absent (make goldens)", goldens[i]);
            continue;
        }
        snprintf(path, sizeof path, "%s/%s/input.npy", golden, goldens[i]);
        if (mnv3_npy_read_file(path, &in, NULL) == MNV3_OK) {
            /* NCHW batches: each image on its own */
            const size_t per = in.ndim == 4 ? (size_t)in.shape[1] * in.shape[2] * in.shape[3] : 0;
            size_t b;
            for (b = 0; per && in.dtype == MNV3_NPY_FLOAT32 && b < in.count / per; ++b) {
                char what[96];
                snprintf(what, sizeof what, "%s[%zu]", goldens[i], b);
                accuracy_case(what, m, (uint32_t)in.shape[2], (uint32_t)in.shape[3],
                              MNV3_LAYOUT_NCHW, (const float *)in.data + b * per);
            }
            mnv3_npy_free(&in);
        }
        mnv3_model_free(m);
    }
}

/* Loaded in place, a float16 model's weights stay in the caller's bytes. */
static void test_in_place_run(void) {
    mnv3_model *f = builtin(MNV3_ARCH_SMALL, 0.75, 21), *h = f ? to_half(f) : NULL, *b = NULL;
    mnv3_arena_plan plan;
    mnv3_config cfg;
    size_t size;
    void *raw;
    uint8_t *d;
    if (!h) {
        mnv3_model_free(f);
        return;
    }
    d = saved(h, &size, &raw);
    CHECK_STATUS(mnv3_model_load_memory(d, size, MNV3_LOAD_IN_PLACE, &b, NULL), MNV3_OK);
    if (b) {
        mnv3_config_init(&cfg, b);
        cfg.isa = MNV3_ISA_SCALAR;
        CHECK_STATUS(mnv3_arena_plan_for(b, &cfg, &plan, NULL), MNV3_OK);
        CHECK(plan.model_weights == 0 && plan.packed_weights == 0);
        mnv3_model_free(b);
    }
    free(raw);
    mnv3_model_free(f);
    mnv3_model_free(h);
}

int main(void) {
    test_conversions();
    test_simd_conversions();
    test_files();
    test_in_place_run();
    network_case(MNV3_ARCH_SMALL, MNV3_FLAVOR_WALKTHROUGH, 0.6, 37, 67, 45);
    network_case(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 1.0, 1000, 160, 160);
    test_f16w_gemm_tiles();
    test_f16w_gemm_widened();
    test_f16_stems();
    test_f16w_gemv();
    test_relaxed_rows();
    test_f16_gemv();
    test_relaxed();
    test_accuracy();
    return check_summary("test_half");
}
