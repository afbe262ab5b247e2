#include <math.h>
#include <string.h>

#include "layer.h"

mnv3_row_kind mnv3_conv_role(const mnv3_model *m, const mnv3_conv *c) {
    uint32_t b;
    if (c == &m->stem) return MNV3_ROW_CONV;
    if (c == &m->last_conv) return MNV3_ROW_POINTWISE;
    for (b = 0; b < m->num_blocks; ++b) {
        const mnv3_block *k = &m->blocks[b];
        if (c == &k->depthwise) return MNV3_ROW_DEPTHWISE;
        if (c == &k->expand || c == &k->project) return MNV3_ROW_POINTWISE;
    }
    return MNV3_ROW_FC; /* SE reduce/expand, head */
}

/* The block whose projection c is, or NULL. */
static const mnv3_block *projection_block(const mnv3_model *m, const mnv3_conv *c) {
    uint32_t b;
    for (b = 0; b < m->num_blocks; ++b)
        if (c == &m->blocks[b].project) return &m->blocks[b];
    return NULL;
}

static const mnv3_clamp unbounded = {-INFINITY, INFINITY};

static void quantization_of(const mnv3_model *m, const mnv3_conv *c, const mnv3_block *blk,
                            mnv3_layer *l) {
    l->bias = c->q8.bias;
    l->in_zp = c->q8.input_zero_point;
    l->weight_zp = c->q8.weight_zero_point;
    l->requant.qmul = c->q8.qmul;
    l->requant.out_zp = c->q8.output.zero_point;
    l->requant.act_lo = c->q8.act_lo;
    l->requant.act_hi = c->q8.act_hi;
    l->requant.lut = c->q8.table;
    if (blk && blk->has_se) {
        l->gate.x_zp = mnv3_conv_result_q(&blk->depthwise).zero_point;
        l->gate.gate_zp = mnv3_conv_result_q(&blk->se.expand).zero_point;
        l->gate.qmul = blk->se_mul.m;
        l->gate.act_lo = blk->se_mul.lo;
        l->gate.act_hi = blk->se_mul.hi;
    }
    if (blk && blk->residual) {
        const mnv3_q8_addop *add = &blk->residual_add;
        l->add.a_zp = add->a_zp;
        l->add.b_zp = add->b_zp;
        l->add.a_mul = add->a;
        l->add.b_mul = add->b;
        l->add.out_mul = add->out;
        l->add.left_shift = 20;
        l->add.out_zp = add->out_zp;
        l->add.act_lo = add->lo;
        l->add.act_hi = add->hi;
    }
    (void)m;
}

void mnv3_layer_of(const mnv3_model *m, const mnv3_conv *c, mnv3_layer *l) {
    const mnv3_block *blk = projection_block(m, c);
    memset(l, 0, sizeof *l);
    l->kind = mnv3_conv_role(m, c);
    l->in_channels = c->in_channels;
    l->out_channels = c->out_channels;
    l->kernel = c->kernel;
    l->stride = c->stride;
    l->weight_type = c->weight_type;
    l->weight = c->weight;
    l->epilogue = c->epilogue;
    l->residual_clamp = blk && blk->residual ? blk->residual_clamp : unbounded;
    l->gate_clamp = blk && blk->has_se ? blk->se.scale_clamp : unbounded;
    if (m->quantized)
        quantization_of(m, c, blk, l);
    else
        l->bias = c->bias;
}
