/* Small public helpers: status text, version, model queries, softmax/top-k and image
 * preprocessing. */
#include <math.h>
#include <string.h>

#include "plan/plan.h"

const char *mnv3_status_string(mnv3_status s) {
    switch (s) {
    case MNV3_OK: return "ok";
    case MNV3_ERR_NULL_ARGUMENT: return "a required pointer argument is NULL";
    case MNV3_ERR_INVALID_ARGUMENT: return "an argument is out of range";
    case MNV3_ERR_SHAPE: return "buffer length does not match the configured shape";
    case MNV3_ERR_ARENA_TOO_SMALL: return "arena is smaller than mnv3_arena_size()";
    case MNV3_ERR_ARENA_MISALIGNED: return "arena is not 64-byte aligned";
    case MNV3_ERR_OUT_OF_MEMORY: return "out of memory during set-up";
    case MNV3_ERR_IO: return "file could not be opened or read";
    case MNV3_ERR_UNSUPPORTED: return "not supported by this build or CPU";
    case MNV3_ERR_FILE_TRUNCATED: return "model file is truncated";
    case MNV3_ERR_BAD_MAGIC: return "not an mnv3 model file (bad magic)";
    case MNV3_ERR_BAD_VERSION: return "unsupported model file version";
    case MNV3_ERR_BAD_ENDIANNESS: return "model file byte order is not little-endian";
    case MNV3_ERR_CHECKSUM: return "model file checksum mismatch";
    case MNV3_ERR_SIZE_OVERFLOW: return "a size or count in the model file is absurd";
    case MNV3_ERR_BAD_OFFSET: return "an offset in the model file is out of bounds or misaligned";
    case MNV3_ERR_BAD_ENUM: return "an enumerated field has an unknown value";
    case MNV3_ERR_SHAPE_CHAIN: return "layer shapes do not chain";
    case MNV3_ERR_BAD_LAYER: return "a layer field is out of range";
    case MNV3_ERR_BAD_TENSOR: return "a tensor reference is invalid";
    case MNV3_ERR_BAD_METADATA: return "preprocessing or label metadata is invalid";
    case MNV3_ERR_MISALIGNED_DATA: return "in-place load needs 64-byte aligned data";
    case MNV3_ERR_BAD_SCALE: return "quantization scale not finite and positive";
    case MNV3_ERR_BAD_ZERO_POINT: return "quantization zero point out of range";
    case MNV3_ERR_BAD_MULTIPLIER: return "quantized multiplier cannot be represented";
    case MNV3_ERR_BAD_BIAS_SCALE: return "bias scale inconsistent with input and weight scales";
    case MNV3_ERR_BAD_QUANT_RANGE: return "quantized activation range or table inconsistent";
    }
    return "unknown status";
}

const char *mnv3_version_string(void) { return MNV3_VERSION_STRING; }
int mnv3_version(void) { return MNV3_VERSION; }

static uint64_t conv_params(const mnv3_conv *c) {
    uint64_t n = mnv3_conv_weight_count(c);
    if (c->batchnorm_folded) n += 2u * (uint64_t)c->out_channels;
    else if (c->has_bias) n += c->out_channels;
    return n;
}

static uint64_t conv_stored(const mnv3_conv *c) {
    return mnv3_conv_weight_count(c) + (c->has_bias ? c->out_channels : 0);
}

/* Biases are 4 bytes either way: float32, or int32 in an int8 conv. */
static uint64_t conv_stored_bytes(const mnv3_conv *c) {
    return mnv3_conv_weight_count(c) * mnv3_dtype_size(c->weight_type)
         + (c->has_bias ? 4u * (uint64_t)c->out_channels : 0);
}

typedef uint64_t (*conv_measure)(const mnv3_conv *);

static uint64_t sum_over_convs(const mnv3_model *m, conv_measure f) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    uint32_t n = mnv3_model_convs((mnv3_model *)m, list), i;
    uint64_t total = 0;
    for (i = 0; i < n; ++i) total += f(list[i]);
    return total;
}

mnv3_status mnv3_model_get_info(const mnv3_model *m, mnv3_model_info *info) {
    if (!m || !info) return MNV3_ERR_NULL_ARGUMENT;
    memset(info, 0, sizeof *info);
    info->arch = m->arch;
    info->flavor = m->flavor;
    info->input_channels = m->input_channels;
    info->num_classes = mnv3_model_classes(m);
    info->feature_dim = mnv3_model_feature_dim(m);
    info->num_blocks = m->num_blocks;
    info->num_layers = mnv3_plan_step_count(m);
    info->parameters = sum_over_convs(m, conv_params);
    info->stored_floats = sum_over_convs(m, conv_stored);
    info->has_labels = m->num_labels > 0;
    info->preprocess = m->preprocess;
    info->precision = m->quantized ? MNV3_PRECISION_INT8 : MNV3_PRECISION_FLOAT32;
    info->stored_bytes = sum_over_convs(m, conv_stored_bytes);
    return MNV3_OK;
}

/* A quantized model's tensor as the caller sees it: uint8 bytes are held as x - 128. */
static mnv3_quantization external(const mnv3_model *m, mnv3_q8_param q) {
    mnv3_quantization r;
    r.type = m->q8_io_type;
    r.scale = q.scale;
    r.zero_point = q.zero_point + (m->q8_io_type == MNV3_QTYPE_UINT8 ? 128 : 0);
    return r;
}

mnv3_status mnv3_model_quantization(const mnv3_model *m, mnv3_quantization *input,
                                    mnv3_quantization *logits) {
    if (!m) return MNV3_ERR_NULL_ARGUMENT;
    if (!m->quantized) return MNV3_ERR_UNSUPPORTED;
    if (input) *input = external(m, m->q8_input);
    if (logits) *logits = external(m, mnv3_model_output_q(m));
    return MNV3_OK;
}

mnv3_status mnv3_model_macs(const mnv3_model *m, uint32_t h, uint32_t w, uint64_t *macs) {
    mnv3_step steps[MNV3_MAX_STEPS];
    uint32_t ns, i;
    mnv3_status st;
    if (!m || !macs) return MNV3_ERR_NULL_ARGUMENT;
    if (h < 1 || w < 1 || h > MNV3_MAX_INPUT_SIZE || w > MNV3_MAX_INPUT_SIZE)
        return MNV3_ERR_INVALID_ARGUMENT;
    st = mnv3_plan_steps(m, h, w, MNV3_DTYPE_F32, 0, steps, &ns, NULL, NULL, NULL);
    if (st != MNV3_OK) return st;
    *macs = 0;
    for (i = 0; i < ns; ++i) *macs += steps[i].macs;
    return MNV3_OK;
}

mnv3_status mnv3_model_layer(const mnv3_model *m, uint32_t h, uint32_t w, uint32_t index,
                             mnv3_layer_info *info) {
    mnv3_step steps[MNV3_MAX_STEPS];
    uint32_t ns;
    mnv3_status st;
    if (!m || !info) return MNV3_ERR_NULL_ARGUMENT;
    if (h < 1 || w < 1 || h > MNV3_MAX_INPUT_SIZE || w > MNV3_MAX_INPUT_SIZE)
        return MNV3_ERR_INVALID_ARGUMENT;
    st = mnv3_plan_steps(m, h, w, MNV3_DTYPE_F32, 0, steps, &ns, NULL, NULL, NULL);
    if (st != MNV3_OK) return st;
    if (index >= ns) return MNV3_ERR_INVALID_ARGUMENT;
    mnv3_step_describe(m, &steps[index], info);
    return MNV3_OK;
}

/* One row, in place or not: NaN gets 0 (it ranks last, as in mnv3_top_k); +inf entries
 * share the whole probability; a row whose numbers are all -inf is uniform over them.
 * Returns 0 for a row of NaNs only (written as zeros). */
static int softmax_row(const float *x, float *y, size_t cols) {
    size_t c, numbers = 0, infinite = 0;
    float mx = -INFINITY;
    double sum = 0.0;
    for (c = 0; c < cols; ++c) {
        if (isnan(x[c])) continue;
        ++numbers;
        if (x[c] == INFINITY) ++infinite;
        if (x[c] > mx) mx = x[c];
    }
    if (numbers == 0) {
        for (c = 0; c < cols; ++c) y[c] = 0.0f;
        return 0;
    }
    if (infinite > 0 || mx == -INFINITY) {
        /* The limits: the largest entries, all equal, share it. */
        const float share = (float)(1.0 / (double)(infinite > 0 ? infinite : numbers));
        for (c = 0; c < cols; ++c) y[c] = !isnan(x[c]) && x[c] == mx ? share : 0.0f;
        return 1;
    }
    for (c = 0; c < cols; ++c) {
        y[c] = isnan(x[c]) ? 0.0f : expf(x[c] - mx);
        sum += y[c];
    }
    for (c = 0; c < cols; ++c) y[c] = (float)(y[c] / sum);
    return 1;
}

mnv3_status mnv3_softmax(const float *in, float *out, size_t rows, size_t cols) {
    size_t r;
    int all_nan = 0;
    if (!in || !out) return MNV3_ERR_NULL_ARGUMENT;
    if (cols == 0) return MNV3_ERR_INVALID_ARGUMENT;
    for (r = 0; r < rows; ++r)
        if (!softmax_row(in + r * cols, out + r * cols, cols)) all_nan = 1;
    return all_nan ? MNV3_ERR_INVALID_ARGUMENT : MNV3_OK;
}

/* Whether a score ranks strictly before one already ranked (which has the lower index):
 * larger first, NaN after everything (even -inf), equal scores and NaNs by index. */
static int ranks_before(float x, float ranked) {
    return isnan(ranked) ? !isnan(x) : x > ranked;
}

mnv3_status mnv3_top_k(const float *s, size_t cols, uint32_t k, uint32_t *idx) {
    uint32_t n = 0, j;
    size_t c;
    if (!s || !idx) return MNV3_ERR_NULL_ARGUMENT;
    if (k == 0 || k > cols) return MNV3_ERR_INVALID_ARGUMENT;
    /* Insertion into a sorted list of k: k is small (top-5). A strict order keeps the lower
     * index first on ties. */
    for (c = 0; c < cols; ++c) {
        if (n == k && !ranks_before(s[c], s[idx[k - 1]])) continue;
        j = n < k ? n++ : k - 1;
        while (j > 0 && ranks_before(s[c], s[idx[j - 1]])) {
            idx[j] = idx[j - 1];
            --j;
        }
        idx[j] = (uint32_t)c;
    }
    return MNV3_OK;
}

/* Bilinear resize with half-pixel centres (like PIL/TF's resize with half_pixel_centers),
 * edges clamped. Output row y reads two source rows; source_rows() names them and the
 * weight of the second, and preprocess_row() computes the row from them. The whole-image
 * and the row-at-a-time entry points both go through these two, so they agree exactly. */
static void source_rows(uint32_t h, uint32_t dh, uint32_t dst_row, uint32_t *first,
                        uint32_t *second, float *weight) {
    float ry = (float)h / (float)dh;
    float y = ((float)dst_row + 0.5f) * ry - 0.5f;
    int y0, y1;
    float fy;
    if (y < 0) y = 0;
    y0 = (int)y;
    if (y0 > (int)h - 1) y0 = (int)h - 1;
    y1 = y0 + 1 < (int)h ? y0 + 1 : y0;
    fy = y - (float)y0;
    if (fy > 1) fy = 1;
    *first = (uint32_t)y0;
    *second = (uint32_t)y1;
    *weight = fy;
}

static float sample(const uint8_t *row0, const uint8_t *row1, float fy, uint32_t w,
                    uint32_t ch, float x, uint32_t c) {
    int x0, x1;
    float fx, a, b, cc, d;
    if (x < 0) x = 0;
    x0 = (int)x;
    if (x0 > (int)w - 1) x0 = (int)w - 1;
    x1 = x0 + 1 < (int)w ? x0 + 1 : x0;
    fx = x - (float)x0;
    if (fx > 1) fx = 1;
    a = row0[(size_t)x0 * ch + c];
    b = row0[(size_t)x1 * ch + c];
    cc = row1[(size_t)x0 * ch + c];
    d = row1[(size_t)x1 * ch + c];
    return (a * (1 - fx) + b * fx) * (1 - fy) + (cc * (1 - fx) + d * fx) * fy;
}

static mnv3_status check_preprocess(uint32_t sh, uint32_t sw, uint32_t sc, uint32_t dh,
                                    uint32_t dw, mnv3_layout layout, size_t dst_len) {
    if (sh == 0 || sw == 0 || dh == 0 || dw == 0 || sh > 65536 || sw > 65536 ||
        dh > MNV3_MAX_INPUT_SIZE || dw > MNV3_MAX_INPUT_SIZE)
        return MNV3_ERR_INVALID_ARGUMENT;
    if (sc != 1 && sc != 3 && sc != 4) return MNV3_ERR_INVALID_ARGUMENT;
    if ((unsigned)layout > MNV3_LAYOUT_NHWC) return MNV3_ERR_INVALID_ARGUMENT;
    if (dst_len != (size_t)3 * dh * dw) return MNV3_ERR_SHAPE;
    return MNV3_OK;
}

/* Where preprocessed values go: floats, or (with a quantized model) bytes of its input
 * type. */
typedef struct preprocess_sink {
    float *f;
    uint8_t *q;
    const mnv3_model *model;
} preprocess_sink;

static void put_value(const preprocess_sink *d, size_t i, float v) {
    const mnv3_model *m = d->model;
    int8_t b;
    if (d->f) {
        d->f[i] = v;
        return;
    }
    mnv3_q8_quantize(&v, 1, m->q8_input.scale, m->q8_input.zero_point, &b);
    d->q[i] = m->q8_io_type == MNV3_QTYPE_UINT8 ? (uint8_t)(b + 128) : (uint8_t)b;
}

/* Output row y from source rows row0 and row1 (as source_rows() names them). */
static void preprocess_row(const mnv3_preprocess *p, const uint8_t *row0, const uint8_t *row1,
                           float fy, uint32_t sh, uint32_t sw, uint32_t sc, uint32_t dh,
                           uint32_t dw, mnv3_layout layout, uint32_t y,
                           const preprocess_sink *dst) {
    uint32_t x, c;
    float rx = (float)sw / (float)dw;
    for (x = 0; x < dw; ++x) {
        float sx = ((float)x + 0.5f) * rx - 0.5f;
        for (c = 0; c < 3; ++c) {
            /* c is the model's channel; pick the matching source channel. */
            uint32_t src_c = sc == 1 ? 0 : (p->channel_order == MNV3_BGR ? 2 - c : c);
            float v = (sh == dh && sw == dw) ? (float)row0[(size_t)x * sc + src_c]
                                             : sample(row0, row1, fy, sw, sc, sx, src_c);
            float out = (v * p->scale - p->mean[c]) / p->std[c];
            if (layout == MNV3_LAYOUT_NCHW)
                put_value(dst, ((size_t)c * dh + y) * dw + x, out);
            else
                put_value(dst, ((size_t)y * dw + x) * 3 + c, out);
        }
    }
}

static mnv3_status preprocess_whole(const mnv3_model *m, const uint8_t *px, uint32_t sh,
                                    uint32_t sw, uint32_t sc, uint32_t dh, uint32_t dw,
                                    mnv3_layout layout, const preprocess_sink *dst,
                                    size_t dst_len) {
    uint32_t y;
    mnv3_status st;
    st = check_preprocess(sh, sw, sc, dh, dw, layout, dst_len);
    if (st != MNV3_OK) return st;
    for (y = 0; y < dh; ++y) {
        uint32_t r0, r1;
        float fy;
        source_rows(sh, dh, y, &r0, &r1, &fy);
        preprocess_row(&m->preprocess, px + (size_t)r0 * sw * sc, px + (size_t)r1 * sw * sc, fy,
                       sh, sw, sc, dh, dw, layout, y, dst);
    }
    return MNV3_OK;
}

mnv3_status mnv3_preprocess_image(const mnv3_model *m, const uint8_t *px, uint32_t sh,
                                  uint32_t sw, uint32_t sc, uint32_t dh, uint32_t dw,
                                  mnv3_layout layout, float *dst, size_t dst_len) {
    preprocess_sink sink;
    if (!m || !px || !dst) return MNV3_ERR_NULL_ARGUMENT;
    sink.f = dst;
    sink.q = NULL;
    sink.model = m;
    return preprocess_whole(m, px, sh, sw, sc, dh, dw, layout, &sink, dst_len);
}

mnv3_status mnv3_preprocess_image_quantized(const mnv3_model *m, const uint8_t *px,
                                            uint32_t sh, uint32_t sw, uint32_t sc, uint32_t dh,
                                            uint32_t dw, mnv3_layout layout, void *dst,
                                            size_t dst_len) {
    preprocess_sink sink;
    if (!m || !px || !dst) return MNV3_ERR_NULL_ARGUMENT;
    if (!m->quantized) return MNV3_ERR_UNSUPPORTED;
    sink.f = NULL;
    sink.q = (uint8_t *)dst;
    sink.model = m;
    return preprocess_whole(m, px, sh, sw, sc, dh, dw, layout, &sink, dst_len);
}

mnv3_status mnv3_preprocess_source_rows(uint32_t src_height, uint32_t dst_height,
                                        uint32_t dst_row, uint32_t *first, uint32_t *second) {
    float fy;
    if (!first || !second) return MNV3_ERR_NULL_ARGUMENT;
    if (src_height == 0 || src_height > 65536 || dst_height == 0 ||
        dst_height > MNV3_MAX_INPUT_SIZE || dst_row >= dst_height)
        return MNV3_ERR_INVALID_ARGUMENT;
    source_rows(src_height, dst_height, dst_row, first, second, &fy);
    return MNV3_OK;
}

static mnv3_status preprocess_one_row(const mnv3_model *m, const uint8_t *first_row,
                                      const uint8_t *second_row, uint32_t sh, uint32_t sw,
                                      uint32_t sc, uint32_t dh, uint32_t dw, uint32_t dst_row,
                                      mnv3_layout layout, const preprocess_sink *dst,
                                      size_t dst_len) {
    uint32_t r0, r1;
    float fy;
    mnv3_status st;
    if (!first_row || !second_row) return MNV3_ERR_NULL_ARGUMENT;
    st = check_preprocess(sh, sw, sc, dh, dw, layout, dst_len);
    if (st != MNV3_OK) return st;
    if (dst_row >= dh) return MNV3_ERR_INVALID_ARGUMENT;
    source_rows(sh, dh, dst_row, &r0, &r1, &fy);
    preprocess_row(&m->preprocess, first_row, second_row, fy, sh, sw, sc, dh, dw, layout,
                   dst_row, dst);
    return MNV3_OK;
}

mnv3_status mnv3_preprocess_image_row(const mnv3_model *m, const uint8_t *first_row,
                                      const uint8_t *second_row, uint32_t sh, uint32_t sw,
                                      uint32_t sc, uint32_t dh, uint32_t dw, uint32_t dst_row,
                                      mnv3_layout layout, float *dst, size_t dst_len) {
    preprocess_sink sink;
    if (!m || !dst) return MNV3_ERR_NULL_ARGUMENT;
    sink.f = dst;
    sink.q = NULL;
    sink.model = m;
    return preprocess_one_row(m, first_row, second_row, sh, sw, sc, dh, dw, dst_row, layout,
                              &sink, dst_len);
}

mnv3_status mnv3_preprocess_image_row_quantized(const mnv3_model *m, const uint8_t *first_row,
                                                const uint8_t *second_row, uint32_t sh,
                                                uint32_t sw, uint32_t sc, uint32_t dh,
                                                uint32_t dw, uint32_t dst_row,
                                                mnv3_layout layout, void *dst, size_t dst_len) {
    preprocess_sink sink;
    if (!m || !dst) return MNV3_ERR_NULL_ARGUMENT;
    if (!m->quantized) return MNV3_ERR_UNSUPPORTED;
    sink.f = NULL;
    sink.q = (uint8_t *)dst;
    sink.model = m;
    return preprocess_one_row(m, first_row, second_row, sh, sw, sc, dh, dw, dst_row, layout,
                              &sink, dst_len);
}
