/* Post-training quantization of a float network whose weights the model owns, as a
 * quantizer would make it: weights symmetric per output channel, every activation slot
 * from a calibrated range (runtime/calibrate.c observes them on the executor) or from a
 * fixed one. The int8 built-ins and the fuzzers' int8 seed models come from here; all of
 * it belongs to model creation (set-up, heap allowed), never to inference. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/checked.h"
#include "q8_quantize.h"

/* A product that an addition follows is stored to a volatile first wherever it decides the
 * quantization: a compiler may otherwise fuse the two into one multiply-add (GCC in GNU
 * mode, clang on ARM), whose single rounding would change table entries and range ends, and
 * with them the network, from one build to another. */

typedef mnv3_range range;

static const range empty_range = {INFINITY, -INFINITY};

void mnv3_calibration_init(mnv3_calibration *cal) {
    uint32_t i;
    for (i = 0; i < MNV3_MAX_CONVS; ++i) cal->pre[i] = cal->post[i] = empty_range;
    for (i = 0; i < MNV3_MAX_BLOCKS; ++i)
        cal->se_pool[i] = cal->se_mul[i] = cal->residual[i] = empty_range;
    cal->pool = empty_range;
}

void mnv3_range_widen(mnv3_range *r, const float *x, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i) {
        if (x[i] < r->lo) r->lo = x[i];
        if (x[i] > r->hi) r->hi = x[i];
    }
}

/* ---- Scales and zero points ------------------------------------------------------------ */

/* v rounded away from zero onto a grid of 1/32 of its power of two, so that a last-bit
 * difference in the float pass (FMA contraction differs between compilers) almost never
 * changes a scale: the same seed gives the same int8 network everywhere. */
static double round_outward(double v) {
    int exponent;
    double step;
    if (v == 0.0) return 0.0;
    frexp(v, &exponent);
    step = ldexp(1.0, exponent - 6);
    return v > 0 ? ceil(v / step) * step : floor(v / step) * step;
}

/* Asymmetric int8 quantization covering [lo, hi] and zero, as TFLite's converter makes it. */
static mnv3_q8_param qparam_for(range r) {
    double lo = r.lo < 0.0f ? r.lo : 0.0, hi = r.hi > 0.0f ? r.hi : 0.0, scale, zp;
    mnv3_q8_param q;
    if (!isfinite(lo) || !isfinite(hi)) {
        lo = -1.0;
        hi = 1.0;
    }
    lo = round_outward(lo);
    hi = round_outward(hi);
    if (hi - lo < 1e-3) hi = lo + 1e-3;   /* a dead channel still needs a scale */
    scale = (hi - lo) / 255.0;
    zp = floor(-128.0 - lo / scale + 0.5);
    q.scale = (float)scale;
    q.zero_point = (int32_t)(zp < -128.0 ? -128.0 : (zp > 127.0 ? 127.0 : zp));
    return q;
}

static range clip(range r, float lo, float hi) {
    if (r.lo < lo) r.lo = lo;
    if (r.hi > hi) r.hi = hi;
    return r;
}

/* The fixed quantization of mnv3_model_quantize_fixed(): feature maps of the float
 * built-ins stay within about +-8, their normalised input within +-4; an SE gate is in
 * [0, 1]. */
static const mnv3_q8_param fixed_map = {1.0f / 16.0f, 0};
static const mnv3_q8_param fixed_input = {1.0f / 32.0f, 0};
static const mnv3_q8_param fixed_gate = {1.0f / 256.0f, -128};

/* Output quantization of one conv from its calibrated ranges, or the fixed one when they
 * are NULL. Below -3 hard-swish is 0 and hard-sigmoid is 0 (above 3 it is 1): clipping the
 * conv's own range there loses nothing. */
static void quantize_activation(mnv3_conv *c, const range *pre, const range *post) {
    const mnv3_activation act = c->epilogue.activation;
    static const range unit = {0.0f, 1.0f};
    c->q8.act_lo = -128;
    c->q8.act_hi = 127;
    c->q8.table_output.scale = 0.0f;
    c->q8.table_output.zero_point = 0;
    if (act == MNV3_ACT_HARD_SWISH) {
        c->q8.output = pre ? qparam_for(clip(*pre, -3.0f, INFINITY)) : fixed_map;
        c->q8.table_output = post ? qparam_for(*post) : fixed_map;
    } else if (act == MNV3_ACT_HARD_SIGMOID) {
        c->q8.output = pre ? qparam_for(clip(*pre, -3.0f, 3.0f)) : fixed_map;
        c->q8.table_output = pre ? qparam_for(unit) : fixed_gate;
    } else {
        c->q8.output = post ? qparam_for(*post) : fixed_map;
        mnv3_q8_activation_range((int)act, c->q8.output.scale, c->q8.output.zero_point,
                                &c->q8.act_lo, &c->q8.act_hi);
    }
}

/* The quantization of the tensor each conv reads, in canonical conv order. */
static void conv_inputs(const mnv3_model *m, mnv3_q8_param *in) {
    uint32_t n = 0, b, i;
    mnv3_q8_param x = m->q8_input;
    in[n++] = x;
    x = mnv3_conv_result_q(&m->stem);
    for (b = 0; b < m->num_blocks; ++b) {
        const mnv3_block *k = &m->blocks[b];
        if (k->has_expand) {
            in[n++] = x;
            x = mnv3_conv_result_q(&k->expand);
        }
        in[n++] = x;
        x = mnv3_conv_result_q(&k->depthwise);
        if (k->has_se) {
            in[n++] = k->se_pool_output;
            in[n++] = mnv3_conv_result_q(&k->se.reduce);
            x = k->se_mul_output;
        }
        in[n++] = x;
        x = k->residual ? k->residual_output : mnv3_conv_result_q(&k->project);
    }
    in[n++] = x;
    x = m->pool_output;
    for (i = 0; i < m->num_head; ++i) {
        in[n++] = x;
        x = mnv3_conv_result_q(&m->head[i]);
    }
}

/* The range the normalised input can take: pixels 0 and 255 of every channel. */
static range input_range(const mnv3_model *m) {
    const mnv3_preprocess *pp = &m->preprocess;
    range r = empty_range;
    uint32_t c;
    for (c = 0; c < 3; ++c) {
        volatile float top = 255.0f * pp->scale; /* not fused with the subtraction */
        const float ends[2] = {(0.0f - pp->mean[c]) / pp->std[c], (top - pp->mean[c]) / pp->std[c]};
        mnv3_range_widen(&r, ends, 2);
    }
    return r;
}

/* ---- Weights ------------------------------------------------------------------------------ */

/* Hands out 64-byte aligned pieces of one block; with base == NULL it only measures. */
typedef struct bump {
    unsigned char *base;
    size_t used;
    int ok;
} bump;

static void *take(bump *b, size_t count, size_t elem) {
    size_t bytes, start, end;
    if (!b->ok || !mnv3_size_mul(count, elem, &bytes) || !mnv3_size_align(b->used, 64, &start) ||
        !mnv3_size_add(start, bytes, &end)) {
        b->ok = 0;
        return NULL;
    }
    b->used = end;
    return b->base ? b->base + start : NULL;
}

typedef struct qtensors {
    int8_t *weight;
    int32_t *bias;
    float *weight_scale, *bias_scale;
    int8_t *table;
} qtensors;

static void take_conv(bump *b, const mnv3_conv *c, qtensors *t) {
    const int table = c->epilogue.activation == MNV3_ACT_HARD_SWISH ||
                      c->epilogue.activation == MNV3_ACT_HARD_SIGMOID;
    t->weight = (int8_t *)take(b, mnv3_conv_weight_count(c), 1);
    t->weight_scale = (float *)take(b, c->out_channels, sizeof(float));
    t->bias = c->has_bias ? (int32_t *)take(b, c->out_channels, sizeof(int32_t)) : NULL;
    t->bias_scale = c->has_bias ? (float *)take(b, c->out_channels, sizeof(float)) : NULL;
    t->table = table ? (int8_t *)take(b, 256, 1) : NULL;
}

static void hard_sigmoid_table(const mnv3_conv *c, int8_t *table) {
    float gate[256];
    int v;
    for (v = -128; v < 128; ++v) {
        /* not fused with the + 3 of the activation */
        volatile float x = c->q8.output.scale * (float)(v - c->q8.output.zero_point);
        gate[v + 128] = mnv3_activate(MNV3_ACT_HARD_SIGMOID, x);
    }
    mnv3_q8_quantize(gate, 256, c->q8.table_output.scale, c->q8.table_output.zero_point, table);
}

/* Symmetric per-output-channel int8 weights, int32 bias on the accumulator's scale. */
static mnv3_status quantize_conv(mnv3_conv *c, mnv3_q8_param input, const qtensors *t,
                                 mnv3_error *e) {
    const float *w = (const float *)c->weight;
    const size_t count = mnv3_conv_weight_count(c);
    const size_t per_out = count / c->out_channels;
    size_t j;
    uint32_t o;
    for (o = 0; o < c->out_channels; ++o) t->weight_scale[o] = 0.0f;
    for (j = 0; j < count; ++j) {
        const uint32_t channel = c->depthwise ? (uint32_t)(j % c->out_channels)
                                              : (uint32_t)(j / per_out);
        const float a = fabsf(w[j]);
        if (a > t->weight_scale[channel]) t->weight_scale[channel] = a;
    }
    for (o = 0; o < c->out_channels; ++o)
        t->weight_scale[o] = t->weight_scale[o] > 0.0f ? t->weight_scale[o] / 127.0f : 1.0f;
    if (c->depthwise) {
        for (j = 0; j < count; ++j)
            mnv3_q8_quantize(w + j, 1, t->weight_scale[j % c->out_channels], 0, t->weight + j);
    } else {
        for (o = 0; o < c->out_channels; ++o)
            mnv3_q8_quantize(w + o * per_out, per_out, t->weight_scale[o], 0,
                            t->weight + o * per_out);
    }
    if (t->bias) {
        for (o = 0; o < c->out_channels; ++o) {
            const double v = floor((double)c->bias[o] / (double)(input.scale * t->weight_scale[o]) +
                                   0.5);
            t->bias_scale[o] = input.scale * t->weight_scale[o];
            t->bias[o] = (int32_t)(v < -2147483647.0 ? -2147483647.0
                                                     : (v > 2147483647.0 ? 2147483647.0 : v));
        }
    }
    if (c->epilogue.activation == MNV3_ACT_HARD_SWISH) {
        if (mnv3_q8_hard_swish_table(c->q8.output.scale, c->q8.output.zero_point,
                                    c->q8.table_output.scale, c->q8.table_output.zero_point,
                                    t->table) != 0)
            return mnv3_set_error(e, MNV3_ERR_BAD_MULTIPLIER,
                                  "hard-swish output scale %g is too small for input scale %g",
                                  (double)c->q8.table_output.scale, (double)c->q8.output.scale);
    } else if (c->epilogue.activation == MNV3_ACT_HARD_SIGMOID) {
        hard_sigmoid_table(c, t->table);
    }
    return MNV3_OK;
}

/* Replaces the float weights of every conv by int8 tensors in one new block. */
static mnv3_status quantize_weights(mnv3_model *m, mnv3_error *e) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    mnv3_q8_param inputs[MNV3_MAX_CONVS];
    qtensors t;
    const uint32_t n = mnv3_model_convs(m, list);
    bump b = {NULL, 0, 1};
    size_t bytes;
    void *raw;
    uint32_t i;
    for (i = 0; i < n; ++i) take_conv(&b, list[i], &t);
    if (!b.ok) return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "int8 weights do not fit");
    bytes = b.used;
    b.base = (unsigned char *)mnv3_alloc_aligned(bytes, &raw);
    if (!b.base) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "%zu bytes of int8 weights",
                                       bytes);
    memset(b.base, 0, bytes);
    /* Tables first: a conv's result is quantized as its table's output when it has one, and
     * the biases below depend on the quantization of what each conv reads. */
    b.used = 0;
    for (i = 0; i < n; ++i) {
        take_conv(&b, list[i], &t);
        list[i]->q8.table = t.table;
    }
    conv_inputs(m, inputs);
    b.used = 0;
    for (i = 0; i < n; ++i) {
        mnv3_conv *c = list[i];
        mnv3_status st;
        take_conv(&b, c, &t);
        st = quantize_conv(c, inputs[i], &t, e);
        if (st != MNV3_OK) {
            free(raw);
            return st;
        }
        c->weight = t.weight;
        c->weight_type = MNV3_DTYPE_I8;
        c->q8.weight_zero_point = 0;
        c->q8.mult_mode = MNV3_Q8_MULT_DOUBLE;
        c->q8.weight_scale = t.weight_scale;
        c->q8.bias_scale = t.bias_scale;
        c->q8.bias = t.bias;
        c->bias = NULL;
    }
    /* Every conv now points into the new block: the float weights can go. */
    free(m->owned_weights);
    m->owned_weights = raw;
    m->owned_weight_bytes = bytes;
    return MNV3_OK;
}

/* Every activation slot's scale and zero point: from the calibrated ranges, or the fixed
 * ones when cal is NULL. */
static void quantize_activations(mnv3_model *m, const mnv3_calibration *cal) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    const uint32_t n = mnv3_model_convs(m, list);
    uint32_t i, b;
    for (i = 0; i < n; ++i)
        quantize_activation(list[i], cal ? &cal->pre[i] : NULL, cal ? &cal->post[i] : NULL);
    m->quantized = 1;
    m->q8_io_type = MNV3_QTYPE_INT8;
    m->q8_input = cal ? qparam_for(input_range(m)) : fixed_input;
    m->pool_mode = MNV3_Q8_POOL_MEAN;
    m->pool_output = cal ? qparam_for(cal->pool) : fixed_map;
    for (b = 0; b < m->num_blocks; ++b) {
        mnv3_block *k = &m->blocks[b];
        if (k->has_se) {
            k->se_pool_mode = MNV3_Q8_POOL_MEAN;
            k->se_pool_output = cal ? qparam_for(cal->se_pool[b]) : fixed_map;
            k->se_mul_output = cal ? qparam_for(cal->se_mul[b]) : fixed_map;
        }
        if (k->residual) k->residual_output = cal ? qparam_for(cal->residual[b]) : fixed_map;
    }
}

mnv3_status mnv3_model_quantize(mnv3_model *m, const mnv3_calibration *cal, mnv3_error *e) {
    quantize_activations(m, cal);
    MNV3_TRY(quantize_weights(m, e));
    MNV3_TRY(mnv3_model_validate(m, e));
    return mnv3_model_q8_prepare(m, e);
}

mnv3_status mnv3_model_quantize_fixed(mnv3_model *m, mnv3_error *e) {
    return mnv3_model_quantize(m, NULL, e);
}
