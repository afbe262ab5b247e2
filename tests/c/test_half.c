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
#include "half.h"
#include "kernels/kernels.h"
#include "mnv3.h"
#include "model.h"
#include "model_file.h"
#include "weights.h"

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

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

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

int main(void) {
    test_conversions();
    test_files();
    return check_summary("test_half");
}
