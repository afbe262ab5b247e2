/* Changing how a float model stores its weights (float32 <-> float16) is a rewrite of its
 * file: the converted network goes through the writer and the loader, so the new model is
 * checked exactly as a file would be and owns one copy of everything, labels included. */
#include <stdlib.h>
#include <string.h>

#include "base/checked.h"
#include "base/half.h"
#include "base/alloc.h"
#include "model/model.h"

/* Converts one conv's weights into dst (count elements of the target type). */
static mnv3_status convert_conv(const mnv3_model *m, const mnv3_conv *c, mnv3_dtype to,
                                void *dst, mnv3_error *e) {
    const size_t n = mnv3_conv_weight_count(c);
    size_t i;
    if (c->weight_type == to) {
        memcpy(dst, c->weight, n * mnv3_dtype_size(to));
        return MNV3_OK;
    }
    if (to == MNV3_DTYPE_F32) {
        const uint16_t *src = (const uint16_t *)c->weight;
        float *out = (float *)dst;
        for (i = 0; i < n; ++i) out[i] = mnv3_f16_to_f32(src[i]);
        return MNV3_OK;
    }
    {
        const float *src = (const float *)c->weight;
        uint16_t *out = (uint16_t *)dst;
        for (i = 0; i < n; ++i) {
            out[i] = mnv3_f32_to_f16(src[i]);
            if (!mnv3_f16_is_finite(out[i])) {
                char what[48];
                mnv3_conv_name(m, c, what, sizeof what);
                return mnv3_set_error(e, MNV3_ERR_BAD_TENSOR,
                                      "%s: weight element %zu (%g) is beyond float16's range",
                                      what, i, (double)src[i]);
            }
        }
    }
    return MNV3_OK;
}

mnv3_status mnv3_model_convert_weights(const mnv3_model *m, mnv3_weight_type type,
                                       mnv3_model **out, mnv3_error *e) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    mnv3_model *copy;
    const mnv3_dtype to = type == MNV3_WEIGHTS_FLOAT16 ? MNV3_DTYPE_F16 : MNV3_DTYPE_F32;
    unsigned char *weights = NULL, *file = NULL;
    void *raw = NULL;
    size_t total = 0, at = 0, size = 0;
    uint32_t n, i;
    mnv3_status st;
    if (!out) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "out_model is NULL");
    *out = NULL;
    if (!m) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "model is NULL");
    if (type != MNV3_WEIGHTS_FLOAT32 && type != MNV3_WEIGHTS_FLOAT16)
        return mnv3_set_error(e, MNV3_ERR_UNSUPPORTED,
                              "weights convert to float32 or float16; int8 needs quantization");
    if (m->quantized)
        return mnv3_set_error(e, MNV3_ERR_UNSUPPORTED, "a quantized model's weights stay int8");
    /* A shallow copy whose convs point at the converted weights; it owns nothing. */
    copy = (mnv3_model *)malloc(sizeof *copy);
    if (!copy) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "model description");
    memcpy(copy, m, sizeof *copy);
    copy->packed = NULL;
    n = mnv3_model_convs(copy, list);
    for (i = 0; i < n; ++i) {
        size_t bytes;
        if (!mnv3_size_mul(mnv3_conv_weight_count(list[i]), mnv3_dtype_size(to), &bytes) ||
            !mnv3_size_align(bytes, 64, &bytes) || !mnv3_size_add(total, bytes, &total)) {
            free(copy);
            return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "weights do not fit in memory");
        }
    }
    weights = (unsigned char *)mnv3_alloc_aligned(total ? total : 1, &raw);
    st = weights ? MNV3_OK : mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "%zu bytes", total);
    for (i = 0; i < n && st == MNV3_OK; ++i) {
        const size_t bytes = mnv3_conv_weight_count(list[i]) * mnv3_dtype_size(to);
        st = convert_conv(copy, list[i], to, weights + at, e);
        list[i]->weight = weights + at;
        list[i]->weight_type = to;
        at += (bytes + 63u) & ~(size_t)63u;
    }
    if (st == MNV3_OK) st = mnv3_model_save_memory(copy, NULL, 0, &size, e);
    if (st == MNV3_OK) {
        file = (unsigned char *)malloc(size);
        if (!file) st = mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "%zu bytes", size);
    }
    if (st == MNV3_OK) st = mnv3_model_save_memory(copy, file, size, &size, e);
    free(raw);
    free(copy);
    if (st == MNV3_OK) st = mnv3_model_load_memory(file, size, MNV3_LOAD_SKIP_CHECKSUM, out, e);
    free(file);
    return st;
}
