/* Small public helpers: status text, version, model queries, softmax/top-k and image
 * preprocessing. */
#include <math.h>
#include <string.h>

#include "plan.h"

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
    }
    return "unknown status";
}

const char *mnv3_version_string(void) { return MNV3_VERSION_STRING; }
int mnv3_version(void) { return MNV3_VERSION; }

mnv3_status mnv3_model_macs(const mnv3_model *m, uint32_t h, uint32_t w, uint64_t *macs) {
    mnv3_step steps[MNV3_MAX_STEPS];
    uint32_t ns, i;
    mnv3_status st;
    if (!m || !macs) return MNV3_ERR_NULL_ARGUMENT;
    if (h < 1 || w < 1 || h > MNV3_MAX_INPUT_SIZE || w > MNV3_MAX_INPUT_SIZE)
        return MNV3_ERR_INVALID_ARGUMENT;
    st = mnv3_plan_steps(m, h, w, MNV3_DTYPE_F32, steps, &ns, NULL, NULL, NULL);
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
    st = mnv3_plan_steps(m, h, w, MNV3_DTYPE_F32, steps, &ns, NULL, NULL, NULL);
    if (st != MNV3_OK) return st;
    if (index >= ns) return MNV3_ERR_INVALID_ARGUMENT;
    mnv3_step_describe(m, &steps[index], info);
    return MNV3_OK;
}

mnv3_status mnv3_softmax(const float *in, float *out, size_t rows, size_t cols) {
    size_t r, c;
    if (!in || !out) return MNV3_ERR_NULL_ARGUMENT;
    if (cols == 0) return MNV3_ERR_INVALID_ARGUMENT;
    for (r = 0; r < rows; ++r) {
        const float *x = in + r * cols;
        float *y = out + r * cols;
        float mx = x[0];
        double sum = 0.0;
        for (c = 1; c < cols; ++c)
            if (x[c] > mx) mx = x[c];
        for (c = 0; c < cols; ++c) {
            y[c] = expf(x[c] - mx);
            sum += y[c];
        }
        for (c = 0; c < cols; ++c) y[c] = (float)(y[c] / sum);
    }
    return MNV3_OK;
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

/* Bilinear sample with half-pixel centres (like PIL/TF's resize with half_pixel_centers),
 * edges clamped. */
static float sample(const uint8_t *px, uint32_t h, uint32_t w, uint32_t ch, float y, float x,
                    uint32_t c) {
    int y0, x0, y1, x1;
    float fy, fx, a, b, cc, d;
    if (y < 0) y = 0;
    if (x < 0) x = 0;
    y0 = (int)y;
    x0 = (int)x;
    if (y0 > (int)h - 1) y0 = (int)h - 1;
    if (x0 > (int)w - 1) x0 = (int)w - 1;
    y1 = y0 + 1 < (int)h ? y0 + 1 : y0;
    x1 = x0 + 1 < (int)w ? x0 + 1 : x0;
    fy = y - (float)y0;
    fx = x - (float)x0;
    if (fy > 1) fy = 1;
    if (fx > 1) fx = 1;
    a = px[((size_t)y0 * w + x0) * ch + c];
    b = px[((size_t)y0 * w + x1) * ch + c];
    cc = px[((size_t)y1 * w + x0) * ch + c];
    d = px[((size_t)y1 * w + x1) * ch + c];
    return (a * (1 - fx) + b * fx) * (1 - fy) + (cc * (1 - fx) + d * fx) * fy;
}

mnv3_status mnv3_preprocess_image(const mnv3_model *m, const uint8_t *px, uint32_t sh,
                                  uint32_t sw, uint32_t sc, uint32_t dh, uint32_t dw,
                                  mnv3_layout layout, float *dst, size_t dst_len) {
    const mnv3_preprocess *p;
    uint32_t y, x, c;
    float ry, rx;
    if (!m || !px || !dst) return MNV3_ERR_NULL_ARGUMENT;
    if (sh == 0 || sw == 0 || dh == 0 || dw == 0 || sh > 65536 || sw > 65536 ||
        dh > MNV3_MAX_INPUT_SIZE || dw > MNV3_MAX_INPUT_SIZE)
        return MNV3_ERR_INVALID_ARGUMENT;
    if (sc != 1 && sc != 3 && sc != 4) return MNV3_ERR_INVALID_ARGUMENT;
    if ((unsigned)layout > MNV3_LAYOUT_NHWC) return MNV3_ERR_INVALID_ARGUMENT;
    if (dst_len != (size_t)3 * dh * dw) return MNV3_ERR_SHAPE;
    p = &m->preprocess;
    ry = (float)sh / (float)dh;
    rx = (float)sw / (float)dw;
    for (y = 0; y < dh; ++y) {
        for (x = 0; x < dw; ++x) {
            float sy = ((float)y + 0.5f) * ry - 0.5f, sx = ((float)x + 0.5f) * rx - 0.5f;
            for (c = 0; c < 3; ++c) {
                /* c is the model's channel; pick the matching source channel. */
                uint32_t src_c = sc == 1 ? 0 : (p->channel_order == MNV3_BGR ? 2 - c : c);
                float v = (sh == dh && sw == dw) ? (float)px[((size_t)y * sw + x) * sc + src_c]
                                                 : sample(px, sh, sw, sc, sy, sx, src_c);
                float out = (v * p->scale - p->mean[c]) / p->std[c];
                if (layout == MNV3_LAYOUT_NCHW)
                    dst[((size_t)c * dh + y) * dw + x] = out;
                else
                    dst[((size_t)y * dw + x) * 3 + c] = out;
            }
        }
    }
    return MNV3_OK;
}
