/* The built-in architectures as int8 networks, so that int8 inference can be measured and
 * tested without a model file. The float built-in (same seed, same weights) is quantized
 * as a post-training quantizer would (model/quantize.c), from the ranges its activation
 * slots take when the executor runs it on a fixed synthetic image: the scalar reference
 * rows, one thread, every conv's output kept and observed step by step. That pass belongs
 * to model creation (set-up, heap allowed), never to inference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "model/q8_quantize.h"

/* Side of the calibration image: small enough that creating Large stays fast in debug
 * builds, large enough that every layer sees a few pixels. */
#define CALIBRATION_SIDE 64

typedef struct observation {
    mnv3_calibration *cal;
    mnv3_conv *convs[MNV3_MAX_CONVS];
    uint32_t count;
} observation;

static mnv3_range *post_of(observation *o, const mnv3_conv *c) {
    uint32_t i;
    for (i = 0; i < o->count; ++i)
        if (o->convs[i] == c) return &o->cal->post[i];
    return &o->cal->pool; /* never: every conv of the model is listed */
}

static const float *tensor_of(const mnv3_context *ctx, int32_t t) {
    return (const float *)(const void *)(ctx->activations + ctx->tensors[t].offset);
}

/* Each step's result (float32: a float context on the reference rows). */
static void observe(void *user, mnv3_context *ctx, uint32_t i, void *data, size_t n) {
    observation *o = (observation *)user;
    const mnv3_step *s = &ctx->steps[i];
    const float *x = (const float *)data;
    size_t j;
    switch (s->kind) {
    case MNV3_STEP_SE: {
        const mnv3_squeeze_excite *se = &s->blk->se;
        const float *d = tensor_of(ctx, s->in_tensor);
        const size_t count = (size_t)s->in_h * s->in_w * s->in_c;
        mnv3_range *gated = &o->cal->se_mul[s->block];
        mnv3_range_widen(&o->cal->se_pool[s->block], (const float *)ctx->se_pooled, s->in_c);
        mnv3_range_widen(post_of(o, &se->reduce), (const float *)ctx->se_hidden,
                         se->reduce.out_channels);
        mnv3_range_widen(post_of(o, &se->expand), x, n);
        for (j = 0; j < count; ++j) {
            const float v = d[j] * x[j % s->in_c];
            mnv3_range_widen(gated, &v, 1);
        }
        break;
    }
    case MNV3_STEP_PROJECT:
        if (s->residual_tensor >= 0) { /* the projection's own output is the sum less x */
            const float *r = tensor_of(ctx, s->residual_tensor);
            mnv3_range_widen(&o->cal->residual[s->block], x, n);
            for (j = 0; j < n; ++j) {
                const float v = x[j] - r[j];
                mnv3_range_widen(post_of(o, s->conv), &v, 1);
            }
        } else {
            mnv3_range_widen(post_of(o, s->conv), x, n);
        }
        break;
    case MNV3_STEP_POOL: mnv3_range_widen(&o->cal->pool, x, n); break;
    default: mnv3_range_widen(post_of(o, s->conv), x, n); break;
    }
}

/* What each conv's activation was applied to, as far as the quantizer reads it: the
 * input of a hard-swish below -3 and of a hard-sigmoid outside [-3, 3] all map to one
 * value, so those ranges are their domains' ends, with the top of a hard-swish's input
 * found from its output (the function is increasing above -1.5, the identity above 3).
 * Other activations only need their outputs. */
static void inputs_of_activations(observation *o) {
    uint32_t i;
    for (i = 0; i < o->count; ++i) {
        const mnv3_range post = o->cal->post[i];
        mnv3_range *pre = &o->cal->pre[i];
        switch (o->convs[i]->epilogue.activation) {
        case MNV3_ACT_HARD_SWISH:
            pre->lo = -3.0f;
            pre->hi = post.hi >= 3.0f ? post.hi
                                      : (float)((-3.0 + sqrt(9.0 + 24.0 * (post.hi > -0.375f
                                                                               ? post.hi
                                                                               : -0.375f))) /
                                                2.0);
            break;
        case MNV3_ACT_HARD_SIGMOID:
            pre->lo = -3.0f;
            pre->hi = 3.0f;
            break;
        default: *pre = post; break;
        }
    }
}

/* A fixed image: pseudo-random 8-bit pixels through the model's own normalisation, so the
 * pass sees the whole input range. NHWC. */
static void synthetic_image(const mnv3_model *m, float *x) {
    const mnv3_preprocess *pp = &m->preprocess;
    const size_t n = (size_t)CALIBRATION_SIDE * CALIBRATION_SIDE * 3u;
    uint64_t state = 0x243F6A8885A308D3ull;
    size_t i;
    for (i = 0; i < n; ++i) {
        const uint32_t c = (uint32_t)(i % 3u);
        volatile float pixel; /* not fused with the subtraction */
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        pixel = (float)(state >> 56) * pp->scale;
        x[i] = (pixel - pp->mean[c]) / pp->std[c];
    }
}

static mnv3_status calibrate(mnv3_model *m, mnv3_calibration *cal, mnv3_error *e) {
    const size_t pixels = (size_t)CALIBRATION_SIDE * CALIBRATION_SIDE * 3u;
    observation o;
    mnv3_config cfg;
    mnv3_context *ctx = NULL;
    mnv3_status st;
    float *image = (float *)malloc(pixels * sizeof(float));
    if (!image) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "calibration image");
    mnv3_calibration_init(cal);
    o.cal = cal;
    o.count = mnv3_model_convs(m, o.convs);
    mnv3_config_init(&cfg, m);
    cfg.height = cfg.width = CALIBRATION_SIDE;
    cfg.layout = MNV3_LAYOUT_NHWC;
    cfg.isa = MNV3_ISA_SCALAR; /* the same ranges on every machine */
    synthetic_image(m, image);
    st = mnv3_context_create_observed(m, &cfg, observe, &o, &ctx, e);
    if (st == MNV3_OK) st = mnv3_run(ctx, image, pixels, NULL, 0, NULL, 0);
    mnv3_context_free(ctx);
    free(image);
    /* the float rows' packed parameters point at weights the quantizer replaces */
    if (m->packed) m->packed_free(m->packed);
    m->packed = NULL;
    if (st == MNV3_OK) inputs_of_activations(&o);
    return st;
}

mnv3_status mnv3_model_create_builtin_int8(mnv3_arch arch, mnv3_flavor flavor, double width,
                                           uint32_t classes, uint64_t seed, mnv3_model **out,
                                           mnv3_error *e) {
    mnv3_calibration *cal;
    mnv3_model *m = NULL;
    mnv3_status st;
    if (!out) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "out_model is NULL");
    *out = NULL;
    MNV3_TRY(mnv3_model_create_builtin(arch, flavor, width, classes, seed, &m, e));
    cal = (mnv3_calibration *)malloc(sizeof *cal);
    st = cal ? calibrate(m, cal, e)
             : mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "calibration ranges");
    if (st == MNV3_OK) st = mnv3_model_quantize(m, cal, e);
    free(cal);
    if (st != MNV3_OK) {
        mnv3_model_free(m);
        return st;
    }
    *out = m;
    return MNV3_OK;
}
