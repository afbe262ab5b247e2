/* A built-in architecture as a quantized network, for benchmarks and tests without a file:
 * the float built-in's deterministic weights quantized per channel (symmetric int8, int32
 * biases), and fixed activation quantizations wide enough for its O(1) activations. The
 * logits mean nothing; the arithmetic, shapes and costs are those of a real int8 model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "model.h"
#include "weights.h"

/* Feature maps of the float built-in stay within about +-8: 1/16 per step. Its
 * normalised input within +-4. The gate of an SE block is in [0, 1]. */
static const mnv3_qparam act_q = {1.0f / 16.0f, 0};
static const mnv3_qparam input_q = {1.0f / 32.0f, 0};
static const mnv3_qparam gate_q = {1.0f / 256.0f, -128};

static int8_t quantize_real(double v, mnv3_qparam q) {
    double r = floor(v / q.scale + 0.5) + q.zero_point;
    return (int8_t)(r < -128 ? -128 : (r > 127 ? 127 : r));
}

static float dequant(int b, mnv3_qparam q) { return q.scale * (float)(b - q.zero_point); }

/* Bytes per conv of the int8 storage: weights, bias, weight and bias scales, table; each
 * 64-byte aligned. */
static int conv_bytes(const mnv3_conv *c, size_t *total) {
    size_t w = mnv3_conv_weight_count(c), o = c->out_channels, parts[5], i;
    parts[0] = w;
    parts[1] = 4 * o;
    parts[2] = 4 * o;
    parts[3] = 4 * o;
    parts[4] = 256;
    for (i = 0; i < 5; ++i) {
        size_t up;
        if (!mnv3_size_align(parts[i], 64, &up) || !mnv3_size_add(*total, up, total)) return 0;
    }
    return 1;
}

static void quantize_conv(mnv3_conv *c, mnv3_qparam in, unsigned char **at) {
    const size_t per_out = mnv3_conv_weight_count(c) / c->out_channels;
    const float *w = (const float *)c->weight;
    int8_t *qw = (int8_t *)*at;
    int32_t *qb = (int32_t *)(void *)(*at + ((mnv3_conv_weight_count(c) + 63u) & ~(size_t)63u));
    float *ws = (float *)(void *)((unsigned char *)qb + ((4u * c->out_channels + 63u) & ~63u));
    float *bs = (float *)(void *)((unsigned char *)ws + ((4u * c->out_channels + 63u) & ~63u));
    int8_t *table = (int8_t *)(void *)((unsigned char *)bs + ((4u * c->out_channels + 63u) & ~63u));
    const mnv3_activation act = c->epilogue.activation;
    uint32_t o;
    size_t i;
    for (o = 0; o < c->out_channels; ++o) {
        float maxabs = 0.0f;
        /* depthwise [kh][kw][c]: channel o is every out_channels-th weight */
        for (i = 0; i < per_out; ++i) {
            const float v = c->depthwise ? w[i * c->out_channels + o] : w[o * per_out + i];
            if (fabsf(v) > maxabs) maxabs = fabsf(v);
        }
        ws[o] = maxabs > 0.0f ? maxabs / 127.0f : 1.0f;
        bs[o] = in.scale * ws[o];
        for (i = 0; i < per_out; ++i) {
            const size_t k = c->depthwise ? i * c->out_channels + o : o * per_out + i;
            const double r = floor(w[k] / ws[o] + 0.5);
            qw[k] = (int8_t)(r < -127 ? -127 : (r > 127 ? 127 : r));
        }
        qb[o] = c->has_bias ? (int32_t)floor(c->bias[o] / bs[o] + 0.5) : 0;
    }
    c->weight = qw;
    c->weight_type = MNV3_DTYPE_I8;
    c->bias = NULL;
    c->q8.bias = c->has_bias ? qb : NULL;
    c->q8.weight_zero_point = 0;
    c->q.output = act_q;
    c->q.mult_mode = MNV3_QMULT_DOUBLE;
    c->q.weight_scale = ws;
    c->q.bias_scale = c->has_bias ? bs : NULL;
    mnv3_q_activation_range(act, act_q.scale, act_q.zero_point, &c->q.act_lo, &c->q.act_hi);
    c->q.table = NULL;
    if (act == MNV3_ACT_HARD_SWISH) {
        (void)mnv3_q_hard_swish_table(act_q.scale, act_q.zero_point, act_q.scale,
                                      act_q.zero_point, table);
        c->q.table = table;
        c->q.table_output = act_q;
    } else if (act == MNV3_ACT_HARD_SIGMOID) {
        int b;
        for (b = -128; b < 128; ++b) {
            const double x = dequant(b, act_q);
            const double g = (x + 3 < 0 ? 0 : (x + 3 > 6 ? 6 : x + 3)) / 6;
            table[b + 128] = quantize_real(g, gate_q);
        }
        c->q.table = table;
        c->q.table_output = gate_q;
    }
    *at = (unsigned char *)table + 256;
    *at = (unsigned char *)(((uintptr_t)*at + 63u) & ~(uintptr_t)63u);
}

mnv3_status mnv3_model_create_builtin_int8(mnv3_arch arch, mnv3_flavor flavor, double width,
                                           uint32_t classes, uint64_t seed, mnv3_model **out,
                                           mnv3_error *e) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    mnv3_model *m;
    unsigned char *at;
    void *raw;
    size_t total = 0;
    uint32_t n, i, b;
    mnv3_status st;
    if (!out) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "out_model is NULL");
    MNV3_TRY(mnv3_model_create_builtin(arch, flavor, width, classes, seed, &m, e));
    n = mnv3_model_convs(m, list);
    for (i = 0; i < n; ++i)
        if (!conv_bytes(list[i], &total)) {
            mnv3_model_free(m);
            return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "int8 weights do not fit in memory");
        }
    at = (unsigned char *)mnv3_alloc_aligned(total ? total : 1, &raw);
    if (!at) {
        mnv3_model_free(m);
        return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "%zu bytes of int8 weights", total);
    }
    memset(at, 0, total);
    for (i = 0; i < n; ++i)
        quantize_conv(list[i], list[i] == &m->stem ? input_q : act_q, &at);
    /* The float weights were only the source of the int8 ones. */
    free(m->owned_weights);
    m->owned_weights = raw;
    m->owned_weight_bytes = total;
    m->quantized = 1;
    m->q_input = input_q;
    m->q_io_type = MNV3_QTYPE_INT8;
    m->pool_mode = MNV3_QPOOL_MEAN;
    m->pool_output = act_q;
    for (b = 0; b < m->num_blocks; ++b) {
        mnv3_block *k = &m->blocks[b];
        if (k->has_se) {
            k->se_pool_mode = MNV3_QPOOL_MEAN;
            k->se_pool_output = act_q;
            k->se_mul_output = act_q;
        }
        if (k->residual) k->residual_output = act_q;
    }
    st = mnv3_model_validate(m, e);
    if (st == MNV3_OK) st = mnv3_model_quant_prepare(m, e);
    if (st != MNV3_OK) {
        mnv3_model_free(m);
        return st;
    }
    *out = m;
    return MNV3_OK;
}
