/* The public face of quantized models: what they report, their run entry points (float
 * in and out, or the model's own bytes) and preprocessing straight to quantized bytes. */
#include <math.h>
#include <string.h>

#include "base/checked.h"
#include "runtime/context.h"

static int8_t to_int8(mnv3_qtype t, uint8_t byte) {
    return t == MNV3_QTYPE_UINT8 ? (int8_t)((int)byte - 128) : (int8_t)byte;
}

static uint8_t from_int8(mnv3_qtype t, int8_t v) {
    return t == MNV3_QTYPE_UINT8 ? (uint8_t)((int)v + 128) : (uint8_t)v;
}

static mnv3_quantization external(const mnv3_model *m, mnv3_qparam q) {
    mnv3_quantization r;
    r.type = m->q_io_type;
    r.scale = q.scale;
    r.zero_point = q.zero_point + (m->q_io_type == MNV3_QTYPE_UINT8 ? 128 : 0);
    return r;
}

mnv3_status mnv3_model_quantization(const mnv3_model *m, mnv3_quantization *input,
                                    mnv3_quantization *logits) {
    if (!m) return MNV3_ERR_NULL_ARGUMENT;
    if (!m->quantized) return MNV3_ERR_UNSUPPORTED;
    if (input) *input = external(m, m->q_input);
    if (logits) *logits = external(m, mnv3_model_output_q(m));
    return MNV3_OK;
}

mnv3_status mnv3_context_set_tap(mnv3_context *ctx, mnv3_tap_fn fn, void *user) {
    if (!ctx) return MNV3_ERR_NULL_ARGUMENT;
    ctx->tap = fn;
    ctx->tap_user = fn ? user : NULL;
    return MNV3_OK;
}

/* Element i of a 3-channel image in `layout` is pixel i / 3, channel i % 3 in NHWC. */
static size_t nhwc_source(mnv3_layout layout, size_t plane, size_t i) {
    return layout == MNV3_LAYOUT_NCHW ? (i % 3) * plane + i / 3 : i;
}

static mnv3_status check_outputs(const mnv3_context *ctx, const void *a, size_t a_len,
                                 size_t per_image_a, const void *b, size_t b_len,
                                 size_t per_image_b) {
    size_t want;
    const size_t n = ctx->cfg.batch;
    if ((a == NULL) != (a_len == 0) ||
        (a && (!mnv3_size_mul(n, per_image_a, &want) || a_len != want)))
        return MNV3_ERR_SHAPE;
    if ((b == NULL) != (b_len == 0) ||
        (b && (!mnv3_size_mul(n, per_image_b, &want) || b_len != want)))
        return MNV3_ERR_SHAPE;
    return MNV3_OK;
}

/* One image's int8 logits into the caller's buffers. */
static void emit_logits(const mnv3_context *ctx, const int8_t *q, uint8_t *logits_q,
                        float *logits) {
    const mnv3_model *m = ctx->model;
    const size_t classes = mnv3_model_classes(m);
    const mnv3_qparam oq = mnv3_model_output_q(m);
    size_t c;
    if (logits_q)
        for (c = 0; c < classes; ++c) logits_q[c] = from_int8(m->q_io_type, q[c]);
    if (logits) mnv3_q_dequantize(q, classes, oq.scale, oq.zero_point, logits);
}

mnv3_status mnv3_run_quantized(mnv3_context *ctx, const void *input, size_t input_len,
                               void *logits_q, size_t logits_q_len, float *logits,
                               size_t logits_len) {
    const mnv3_model *m;
    size_t per_image, classes, b, i;
    if (!ctx || !input) return MNV3_ERR_NULL_ARGUMENT;
    m = ctx->model;
    if (!m->quantized) return MNV3_ERR_UNSUPPORTED;
    per_image = (size_t)3 * ctx->cfg.height * ctx->cfg.width;
    classes = mnv3_model_classes(m);
    if (input_len != ctx->cfg.batch * per_image) return MNV3_ERR_SHAPE;
    MNV3_TRY(check_outputs(ctx, logits_q, logits_q_len, classes, logits, logits_len, classes));
    for (b = 0; b < ctx->cfg.batch; ++b) {
        const uint8_t *src = (const uint8_t *)input + b * per_image;
        for (i = 0; i < per_image; ++i)
            ctx->q_input[i] =
                to_int8(m->q_io_type, src[nhwc_source(ctx->cfg.layout, per_image / 3, i)]);
        emit_logits(ctx, mnv3_q8_executor_run(ctx), logits_q ? (uint8_t *)logits_q + b * classes : NULL,
                    logits ? logits + b * classes : NULL);
    }
    return MNV3_OK;
}

void mnv3_q8_run_float(mnv3_context *ctx, const float *input, float *logits, float *features) {
    const mnv3_model *m = ctx->model;
    const size_t per_image = (size_t)3 * ctx->cfg.height * ctx->cfg.width;
    const size_t plane = per_image / 3;
    size_t p, c;
    if (ctx->cfg.layout == MNV3_LAYOUT_NHWC)
        mnv3_q_quantize(input, per_image, m->q_input.scale, m->q_input.zero_point, ctx->q_input);
    else
        for (c = 0; c < 3; ++c)
            for (p = 0; p < plane; ++p)
                ctx->q_input[p * 3 + c] = mnv3_q_quantize_one(
                    input[c * plane + p], m->q_input.scale, m->q_input.zero_point);
    emit_logits(ctx, mnv3_q8_executor_run(ctx), NULL, logits);
    if (features)
        mnv3_q_dequantize((const int8_t *)(const void *)ctx->features,
                          mnv3_model_feature_dim(m), m->pool_output.scale,
                          m->pool_output.zero_point, features);
}
