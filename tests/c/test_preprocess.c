/* Image preprocessing: the row-at-a-time entry points give exactly the floats of
 * mnv3_preprocess_image() (and for a quantized model the bytes of
 * mnv3_preprocess_image_quantized()), keeping only two source rows, and the rows they name
 * are the ones a streaming decoder can keep. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mnv3.h"

static uint32_t rng_state = 12345u;

static uint8_t next_byte(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return (uint8_t)(rng_state >> 24);
}

/* Preprocesses sh x sw x sc pixels to dh x dw both ways and compares bit for bit: to
 * floats, or to the input bytes of a quantized model. */
static void compare(const mnv3_model *m, uint32_t sh, uint32_t sw, uint32_t sc, uint32_t dh,
                    uint32_t dw, mnv3_layout layout) {
    mnv3_model_info info;
    size_t row_bytes = (size_t)sw * sc, n = (size_t)3 * dh * dw, i, elem;
    uint8_t *px = (uint8_t *)malloc(row_bytes * sh);
    uint8_t *ring = (uint8_t *)malloc(row_bytes * 2); /* the last two source rows */
    void *whole, *rows;
    uint32_t y, next = 0, prev_first = 0;
    int ok = 1, quantized;
    mnv3_model_get_info(m, &info);
    quantized = info.precision == MNV3_PRECISION_INT8;
    elem = quantized ? 1 : sizeof(float);
    whole = malloc(n * elem);
    rows = malloc(n * elem);
    if (!px || !ring || !whole || !rows) {
        CHECK(!"out of memory");
        free(px), free(ring), free(whole), free(rows);
        return;
    }
    for (i = 0; i < row_bytes * sh; ++i) px[i] = next_byte();
    memset(rows, 0xFF, n * elem);
    CHECK_STATUS(quantized
                     ? mnv3_preprocess_image_quantized(m, px, sh, sw, sc, dh, dw, layout, whole, n)
                     : mnv3_preprocess_image(m, px, sh, sw, sc, dh, dw, layout, (float *)whole, n),
                 MNV3_OK);
    for (y = 0; y < dh && ok; ++y) {
        uint32_t first = 0, second = 0;
        CHECK_STATUS(mnv3_preprocess_source_rows(sh, dh, y, &first, &second), MNV3_OK);
        if (first < prev_first || (second != first && second != first + 1) || second >= sh) {
            CHECK_MSG(0, "%ux%u -> %ux%u row %u reads rows %u and %u", sh, sw, dh, dw, y, first,
                      second);
            ok = 0;
            break;
        }
        prev_first = first;
        /* "Decode" source rows into the ring until the second one is there. */
        while (next <= second) {
            memcpy(ring + (next % 2) * row_bytes, px + (size_t)next * row_bytes, row_bytes);
            ++next;
        }
        CHECK_STATUS(quantized ? mnv3_preprocess_image_row_quantized(
                                     m, ring + (first % 2) * row_bytes,
                                     ring + (second % 2) * row_bytes, sh, sw, sc, dh, dw, y,
                                     layout, rows, n)
                               : mnv3_preprocess_image_row(
                                     m, ring + (first % 2) * row_bytes,
                                     ring + (second % 2) * row_bytes, sh, sw, sc, dh, dw, y,
                                     layout, (float *)rows, n),
                     MNV3_OK);
    }
    if (ok)
        CHECK_MSG(memcmp(whole, rows, n * elem) == 0,
                  "%ux%ux%u -> %ux%u (%s, %s): row-wise result differs", sh, sw, sc, dh, dw,
                  layout == MNV3_LAYOUT_NCHW ? "nchw" : "nhwc", quantized ? "int8" : "float");
    free(px), free(ring), free(whole), free(rows);
}

/* The row entry points' argument checks: floats of the float model, bytes of the int8 one
 * (or of the float one, which has none). */
typedef struct row_case {
    int bytes, of_float_model, no_second_row;
    uint32_t channels, dst_row;
    size_t dst_len;
    mnv3_status want;
} row_case;

static void row_arguments(const mnv3_model *f, const mnv3_model *q) {
    static const row_case cases[] = {
        {0, 1, 0, 3, 1, 3, MNV3_ERR_INVALID_ARGUMENT}, /* past the last row */
        {0, 1, 0, 3, 0, 2, MNV3_ERR_SHAPE},
        {0, 1, 1, 3, 0, 3, MNV3_ERR_NULL_ARGUMENT},
        {0, 1, 0, 2, 0, 3, MNV3_ERR_INVALID_ARGUMENT}, /* two channels */
        {0, 1, 0, 3, 0, 3, MNV3_OK},
        {1, 1, 0, 3, 0, 3, MNV3_ERR_UNSUPPORTED},
        {1, 0, 0, 3, 1, 3, MNV3_ERR_INVALID_ARGUMENT},
        {1, 0, 0, 3, 0, 4, MNV3_ERR_SHAPE},
        {1, 0, 1, 3, 0, 3, MNV3_ERR_NULL_ARGUMENT},
        {1, 0, 0, 3, 0, 3, MNV3_OK},
    };
    const uint8_t row[4] = {0, 0, 0, 0};
    float out[4];
    uint8_t out_q[4];
    size_t i;
    for (i = 0; i < sizeof cases / sizeof *cases; ++i) {
        const row_case *c = &cases[i];
        const mnv3_model *m = c->of_float_model ? f : q;
        const uint8_t *second = c->no_second_row ? NULL : row;
        const mnv3_status st =
            c->bytes ? mnv3_preprocess_image_row_quantized(m, row, second, 1, 1, c->channels, 1,
                                                           1, c->dst_row, MNV3_LAYOUT_NCHW, out_q,
                                                           c->dst_len)
                     : mnv3_preprocess_image_row(m, row, second, 1, 1, c->channels, 1, 1,
                                                 c->dst_row, MNV3_LAYOUT_NCHW, out, c->dst_len);
        CHECK_MSG(st == c->want, "row case %zu: status %d (%s), expected %d (%s)", i, (int)st,
                  mnv3_status_string(st), (int)c->want, mnv3_status_string(c->want));
    }
}

int main(void) {
    static const uint32_t sizes[][4] = {
        {1, 1, 224, 224},   {1, 7, 5, 3},       {5, 3, 1, 1},     {224, 224, 224, 224},
        {300, 451, 224, 224}, {7, 9, 32, 40},   {1000, 3, 224, 224}, {2, 2, 3, 3},
        {480, 640, 224, 224}, {223, 225, 224, 224}, {4095, 17, 13, 11}, {37, 1, 113, 7},
    };
    static const uint32_t channels[] = {1, 3, 4};
    mnv3_model *m = NULL, *q = NULL;
    const mnv3_model *models[2];
    mnv3_error err;
    uint32_t first, second;
    size_t s, c, k;
    CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.5, 10, 1,
                                           &m, &err),
                 MNV3_OK);
    CHECK_STATUS(mnv3_model_create_builtin_int8(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.5, 10,
                                                1, &q, &err),
                 MNV3_OK);
    if (!m || !q) {
        mnv3_model_free(m);
        mnv3_model_free(q);
        return check_summary("test_preprocess");
    }
    models[0] = m;
    models[1] = q;
    for (k = 0; k < 2; ++k)
        for (s = 0; s < sizeof sizes / sizeof sizes[0]; ++s)
            for (c = 0; c < 3; ++c) {
                compare(models[k], sizes[s][0], sizes[s][1], channels[c], sizes[s][2],
                        sizes[s][3], MNV3_LAYOUT_NCHW);
                compare(models[k], sizes[s][0], sizes[s][1], channels[c], sizes[s][2],
                        sizes[s][3], MNV3_LAYOUT_NHWC);
            }

    /* Argument checks. */
    CHECK_STATUS(mnv3_preprocess_source_rows(10, 5, 5, &first, &second),
                 MNV3_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(mnv3_preprocess_source_rows(0, 5, 0, &first, &second),
                 MNV3_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(mnv3_preprocess_source_rows(10, 5, 0, NULL, &second), MNV3_ERR_NULL_ARGUMENT);
    row_arguments(m, q);
    mnv3_model_free(q);
    mnv3_model_free(m);
    return check_summary("test_preprocess");
}
