/* What differs between float and int8 networks around the kernels: the input the stem
 * reads, how channel sums become a pooled vector, and how the outputs reach the caller's
 * floats. Everything else (steps, tensors, tasks, fused expansions, the SE gate, residuals)
 * is the executor's, the same for every precision. */
#include <string.h>

#include "base/checked.h"
#include "context.h"
#include "kernels/float_impl.h"

/* ------------------------------------------------------------------------------------ */
/* Float networks: float32 image, float sums, float vectors                              */
/* ------------------------------------------------------------------------------------ */

static void float_needs(const mnv3_model *m, const mnv3_config *cfg, mnv3_scratch_needs *n) {
    (void)m;
    (void)cfg;
    (void)n;
}

static void float_prepare(mnv3_context *ctx) { (void)ctx; }

static void nhwc_input(const mnv3_context *ctx, const void *data, mnv3_stem_input *in) {
    in->data = data;
    in->row_stride = (size_t)ctx->cfg.width * 3;
    in->col_stride = 3;
    in->chan_stride = 1;
}

/* The stem reads the caller's image where it is, in either layout. */
static void float_input(mnv3_context *ctx, const float *image, mnv3_stem_input *in) {
    const size_t h = ctx->cfg.height, w = ctx->cfg.width;
    if (ctx->cfg.layout == MNV3_LAYOUT_NHWC) {
        nhwc_input(ctx, image, in);
        return;
    }
    in->data = image;
    in->row_stride = w;
    in->col_stride = 1;
    in->chan_stride = h * w;
}

/* The mean over the step's output pixels, clamped as the model says (the SE squeeze's
 * clamp, or the global pool's). */
static void float_pool(mnv3_context *ctx, const mnv3_step *s, uint32_t slices, void *dst) {
    const mnv3_clamp clamp = s->kind == MNV3_STEP_DEPTHWISE ? s->blk->se.squeeze_clamp
                                                            : ctx->model->pool_clamp;
    mnv3_reduce_slices((const float *)ctx->sums, slices, s->out_c,
                       1.0f / ((float)s->out_h * (float)s->out_w), clamp, (float *)dst);
}

static void float_logits(const mnv3_context *ctx, float *out) {
    memcpy(out, ctx->logits, (size_t)mnv3_model_classes(ctx->model) * sizeof(float));
}

static void float_features(const mnv3_context *ctx, float *out) {
    memcpy(out, ctx->features, (size_t)mnv3_model_feature_dim(ctx->model) * sizeof(float));
}

const mnv3_network_ops mnv3_network_float = {
    0, float_needs, float_prepare, float_input, float_pool, float_logits, float_features,
};

/* ------------------------------------------------------------------------------------ */
/* int8 networks: the image quantized for the stem, integer sums, int8 vectors           */
/* ------------------------------------------------------------------------------------ */

/* The quantized image, NHWC bytes: check_config proved its element count fits. */
static void q8_needs(const mnv3_model *m, const mnv3_config *cfg, mnv3_scratch_needs *n) {
    (void)m;
    n->input_bytes = (size_t)3 * cfg->height * cfg->width;
}

/* Pools turn channel sums of a known pixel count into bytes: prepared once here. */
static void q8_prepare(mnv3_context *ctx) {
    const mnv3_model *m = ctx->model;
    uint32_t i;
    for (i = 0; i < ctx->num_steps; ++i) {
        const mnv3_step *s = &ctx->steps[i];
        mnv3_q8_pool *p = &ctx->pools[i];
        memset(p, 0, sizeof *p);
        if (s->kind == MNV3_STEP_DEPTHWISE && s->blk->has_se) {
            const mnv3_q8_param in = mnv3_conv_result_q(s->conv), out = s->blk->se_pool_output;
            (void)mnv3_q8_pool_prepare(s->blk->se_pool_mode, s->out_h * s->out_w, in.scale,
                                      in.zero_point, out.scale, out.zero_point, p);
        } else if (s->kind == MNV3_STEP_LAST_CONV) {
            const mnv3_q8_param in = mnv3_conv_result_q(s->conv), out = m->pool_output;
            (void)mnv3_q8_pool_prepare(m->pool_mode, s->out_h * s->out_w, in.scale,
                                      in.zero_point, out.scale, out.zero_point, p);
        }
    }
}

/* TFLite QUANTIZE of the image into NHWC bytes, which the stem reads: one pass in the
 * CPU's vectors over either layout. */
static void q8_input(mnv3_context *ctx, const float *image, mnv3_stem_input *in) {
    const mnv3_q8_param q = ctx->model->q8_input;
    const mnv3_q8_input_ops *ops = ctx->k.q8_input;
    const size_t plane = (size_t)ctx->cfg.height * ctx->cfg.width;
    int8_t *dst = (int8_t *)ctx->net_input;
    if (ctx->cfg.layout == MNV3_LAYOUT_NHWC)
        ops->quantize(image, plane * 3, q.scale, q.zero_point, dst);
    else
        ops->quantize_planes(image, plane, plane, q.scale, q.zero_point, dst);
    nhwc_input(ctx, dst, in);
}

/* The model's own bytes: int8 NHWC is read where it is; uint8 (held as x - 128, the same
 * bytes with the top bit flipped) or planes take one pass into the arena. */
void mnv3_q8_bytes_input(mnv3_context *ctx, const uint8_t *image, mnv3_stem_input *in) {
    const mnv3_q8_input_ops *ops = ctx->k.q8_input;
    const size_t plane = (size_t)ctx->cfg.height * ctx->cfg.width;
    const uint8_t flip = ctx->model->q8_io_type == MNV3_QTYPE_UINT8 ? 0x80u : 0u;
    const int in_place = ctx->cfg.layout == MNV3_LAYOUT_NHWC && !flip;
    int8_t *dst = (int8_t *)ctx->net_input;
    if (ctx->cfg.layout == MNV3_LAYOUT_NCHW)
        ops->interleave_planes(image, plane, plane, flip, dst);
    else if (flip)
        ops->from_uint8(image, plane * 3, dst);
    nhwc_input(ctx, in_place ? (const void *)image : (const void *)dst, in);
}

/* The slices' partial sums, added in slice order (modulo 2^32), then pooled to bytes. Each
 * channel's total is kept in a register across the slices (a depthwise layer has one per
 * output row): adding slice by slice into sums[] made every add wait for the last one's
 * store. */
static void q8_pool(mnv3_context *ctx, const mnv3_step *s, uint32_t slices, void *dst) {
    int32_t *sums = (int32_t *)ctx->sums;
    const uint32_t c = s->out_c;
    uint32_t sl, k;
    for (k = 0; k < c; ++k) {
        uint32_t total = (uint32_t)sums[k];
        for (sl = 1; sl < slices; ++sl) total += (uint32_t)sums[(size_t)sl * c + k];
        sums[k] = (int32_t)total;
    }
    mnv3_q8_pool_sums(&ctx->pools[s - ctx->steps], sums, c, (int8_t *)dst);
}

static void q8_logits(const mnv3_context *ctx, float *out) {
    const mnv3_q8_param q = mnv3_model_output_q(ctx->model);
    mnv3_q8_dequantize((const int8_t *)ctx->logits, mnv3_model_classes(ctx->model), q.scale,
                      q.zero_point, out);
}

static void q8_features(const mnv3_context *ctx, float *out) {
    const mnv3_model *m = ctx->model;
    mnv3_q8_dequantize((const int8_t *)ctx->features, mnv3_model_feature_dim(m),
                      m->pool_output.scale, m->pool_output.zero_point, out);
}

const mnv3_network_ops mnv3_network_q8 = {
    1, q8_needs, q8_prepare, q8_input, q8_pool, q8_logits, q8_features,
};
