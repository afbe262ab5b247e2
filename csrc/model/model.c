/* Network description: validation and the queries the API answers without running. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/checked.h"
#include "model.h"

uint64_t mnv3_conv_weight_count64(const mnv3_conv *c) {
    const uint64_t taps = (uint64_t)c->kernel * c->kernel;
    if (c->depthwise) return taps * c->out_channels;
    return taps * c->in_channels * c->out_channels;
}

size_t mnv3_conv_weight_count(const mnv3_conv *c) {
    MNV3_ASSERT(mnv3_conv_weight_count64(c) <= SIZE_MAX / sizeof(float));
    return (size_t)mnv3_conv_weight_count64(c);
}

uint32_t mnv3_conv_out_size(uint32_t in, uint32_t kernel, uint32_t stride, uint32_t pad_a,
                            uint32_t pad_b) {
    uint64_t padded = (uint64_t)in + pad_a + pad_b;
    if (stride == 0 || padded < kernel) return 0;
    return (uint32_t)((padded - kernel) / stride + 1);
}

static void same_padding(uint32_t in, uint32_t kernel, uint32_t stride, uint32_t *before,
                         uint32_t *after) {
    uint32_t out = (in + stride - 1) / stride;
    int64_t total = (int64_t)(out - 1) * stride + kernel - in;
    if (total < 0) total = 0;
    *before = (uint32_t)(total / 2); /* TensorFlow puts the odd extra pixel after */
    *after = (uint32_t)(total - total / 2);
}

void mnv3_conv_padding(const mnv3_conv *c, uint32_t in_h, uint32_t in_w, uint32_t *pt,
                       uint32_t *pl, uint32_t *pb, uint32_t *pr) {
    if (c->padding_mode == MNV3_PAD_SAME) {
        same_padding(in_h, c->kernel, c->stride, pt, pb);
        same_padding(in_w, c->kernel, c->stride, pl, pr);
    } else {
        *pt = c->pad_top;
        *pl = c->pad_left;
        *pb = c->pad_bottom;
        *pr = c->pad_right;
    }
}

uint32_t mnv3_model_classes(const mnv3_model *m) {
    return m->num_head ? m->head[m->num_head - 1].out_channels : 0;
}

uint32_t mnv3_model_feature_dim(const mnv3_model *m) { return m->last_conv.out_channels; }

static int clamp_ok(mnv3_clamp c) { return !isnan(c.lo) && !isnan(c.hi) && c.lo <= c.hi; }

/* Checks one conv's own fields. `what` names it in messages. `max_out` is
 * MNV3_MAX_CHANNELS, or MNV3_MAX_CLASSES for the last head layer (its outputs are the
 * classes, not channels of a feature map). */
static mnv3_status check_conv(const mnv3_conv *c, const char *what, int must_be_1x1,
                              uint32_t max_out, mnv3_error *e) {
    if (c->in_channels == 0 || c->in_channels > MNV3_MAX_CHANNELS)
        return mnv3_set_error(e, MNV3_ERR_BAD_LAYER, "%s: in_channels %u outside 1..%u", what,
                              c->in_channels, MNV3_MAX_CHANNELS);
    if (c->out_channels == 0 || c->out_channels > max_out)
        return mnv3_set_error(e, MNV3_ERR_BAD_LAYER, "%s: out_channels %u outside 1..%u", what,
                              c->out_channels, max_out);
    if (c->kernel == 0 || c->kernel > MNV3_MAX_KERNEL)
        return mnv3_set_error(e, MNV3_ERR_BAD_LAYER, "%s: kernel %u outside 1..%u", what,
                              c->kernel, MNV3_MAX_KERNEL);
    if (c->stride < 1 || c->stride > 2)
        return mnv3_set_error(e, MNV3_ERR_BAD_LAYER, "%s: stride %u is not 1 or 2", what,
                              c->stride);
    if (c->padding_mode != MNV3_PAD_EXPLICIT && c->padding_mode != MNV3_PAD_SAME)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "%s: padding mode %u unknown", what,
                              (unsigned)c->padding_mode);
    /* Under SAME the padding is derived from the input size; stored pads are ignored. */
    if (c->padding_mode == MNV3_PAD_EXPLICIT &&
        (c->pad_top >= c->kernel || c->pad_left >= c->kernel || c->pad_bottom >= c->kernel ||
         c->pad_right >= c->kernel))
        return mnv3_set_error(e, MNV3_ERR_BAD_LAYER,
                              "%s: padding %u/%u/%u/%u must be smaller than kernel %u", what,
                              c->pad_top, c->pad_left, c->pad_bottom, c->pad_right, c->kernel);
    if (c->depthwise && c->in_channels != c->out_channels)
        return mnv3_set_error(e, MNV3_ERR_BAD_LAYER,
                              "%s: depthwise conv with %u inputs and %u outputs", what,
                              c->in_channels, c->out_channels);
    if (must_be_1x1 && (c->kernel != 1 || c->stride != 1 || c->depthwise ||
                        (c->padding_mode == MNV3_PAD_EXPLICIT &&
                         (c->pad_top || c->pad_left || c->pad_bottom || c->pad_right))))
        return mnv3_set_error(e, MNV3_ERR_BAD_LAYER,
                              "%s: must be a 1x1, stride 1, unpadded, dense conv", what);
    if ((unsigned)c->epilogue.activation > MNV3_ACT_HARD_SIGMOID)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "%s: activation %u unknown", what,
                              (unsigned)c->epilogue.activation);
    if (!clamp_ok(c->epilogue.pre) || !clamp_ok(c->epilogue.post))
        return mnv3_set_error(e, MNV3_ERR_BAD_LAYER, "%s: clamp bounds are NaN or reversed",
                              what);
    if (mnv3_conv_weight_count64(c) > SIZE_MAX / sizeof(float))
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "%s: weights do not fit in memory",
                              what);
    if (!c->weight)
        return mnv3_set_error(e, MNV3_ERR_BAD_TENSOR, "%s: weights missing", what);
    /* Kernels read the bias whenever the pointer is set, parameter counts follow has_bias:
     * the two must agree. */
    {
        const void *bias = c->weight_type == MNV3_DTYPE_I8 ? (const void *)c->q8.bias
                                                           : (const void *)c->bias;
        if (c->has_bias > 1 || (c->has_bias != 0) != (bias != NULL))
            return mnv3_set_error(e, MNV3_ERR_BAD_TENSOR, "%s: has_bias is %u but bias is %s",
                                  what, c->has_bias, bias ? "present" : "missing");
    }
    return MNV3_OK;
}

static mnv3_status check_chain(uint32_t have, uint32_t want, const char *what, mnv3_error *e) {
    if (have != want)
        return mnv3_set_error(e, MNV3_ERR_SHAPE_CHAIN,
                              "%s: takes %u channels but receives %u", what, want, have);
    return MNV3_OK;
}


mnv3_status mnv3_model_validate(const mnv3_model *m, mnv3_error *e) {
    char what[48];
    uint32_t b, ch, i;
    if (m->input_channels != 3)
        return mnv3_set_error(e, MNV3_ERR_BAD_LAYER, "input_channels is %u, expected 3",
                              m->input_channels);
    if ((unsigned)m->arch > MNV3_ARCH_SMALL)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "arch %u unknown", (unsigned)m->arch);
    if ((unsigned)m->flavor > MNV3_FLAVOR_TFLITE)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "flavor %u unknown", (unsigned)m->flavor);
    MNV3_TRY(check_conv(&m->stem, "stem", 0, MNV3_MAX_CHANNELS, e));
    if (m->stem.depthwise)
        return mnv3_set_error(e, MNV3_ERR_BAD_LAYER, "stem: must be a dense conv");
    MNV3_TRY(check_chain(m->input_channels, m->stem.in_channels, "stem", e));
    if (m->num_blocks > MNV3_MAX_BLOCKS)
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "num_blocks %u exceeds %u",
                              m->num_blocks, MNV3_MAX_BLOCKS);
    ch = m->stem.out_channels;
    for (b = 0; b < m->num_blocks; ++b) {
        const mnv3_block *k = &m->blocks[b];
        uint32_t block_in = ch;
        if (k->has_expand > 1 || k->has_se > 1 || k->residual > 1)
            return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "block %u: flags must be 0 or 1", b);
        if (k->has_expand) {
            snprintf(what, sizeof what, "block %u expand", b);
            MNV3_TRY(check_conv(&k->expand, what, 1, MNV3_MAX_CHANNELS, e));
            MNV3_TRY(check_chain(ch, k->expand.in_channels, what, e));
            ch = k->expand.out_channels;
        }
        snprintf(what, sizeof what, "block %u depthwise", b);
        MNV3_TRY(check_conv(&k->depthwise, what, 0, MNV3_MAX_CHANNELS, e));
        if (!k->depthwise.depthwise)
            return mnv3_set_error(e, MNV3_ERR_BAD_LAYER, "%s: not marked depthwise", what);
        MNV3_TRY(check_chain(ch, k->depthwise.in_channels, what, e));
        if (k->has_se) {
            snprintf(what, sizeof what, "block %u se.reduce", b);
            MNV3_TRY(check_conv(&k->se.reduce, what, 1, MNV3_MAX_CHANNELS, e));
            MNV3_TRY(check_chain(ch, k->se.reduce.in_channels, what, e));
            snprintf(what, sizeof what, "block %u se.expand", b);
            MNV3_TRY(check_conv(&k->se.expand, what, 1, MNV3_MAX_CHANNELS, e));
            MNV3_TRY(check_chain(k->se.reduce.out_channels, k->se.expand.in_channels, what, e));
            MNV3_TRY(check_chain(k->se.expand.out_channels, ch, what, e));
            if (!clamp_ok(k->se.squeeze_clamp) || !clamp_ok(k->se.scale_clamp))
                return mnv3_set_error(e, MNV3_ERR_BAD_LAYER,
                                      "block %u se: clamp bounds are NaN or reversed", b);
        }
        snprintf(what, sizeof what, "block %u project", b);
        MNV3_TRY(check_conv(&k->project, what, 1, MNV3_MAX_CHANNELS, e));
        MNV3_TRY(check_chain(ch, k->project.in_channels, what, e));
        ch = k->project.out_channels;
        if (k->residual) {
            const mnv3_conv *d = &k->depthwise;
            int keeps_size = d->stride == 1 &&
                             (d->padding_mode == MNV3_PAD_SAME ||
                              (d->pad_top + d->pad_bottom == d->kernel - 1 &&
                               d->pad_left + d->pad_right == d->kernel - 1));
            if (!keeps_size || block_in != ch)
                return mnv3_set_error(e, MNV3_ERR_SHAPE_CHAIN,
                                      "block %u: residual needs stride 1, size-preserving "
                                      "padding and in == out channels (%u vs %u)",
                                      b, block_in, ch);
            if (!clamp_ok(k->residual_clamp))
                return mnv3_set_error(e, MNV3_ERR_BAD_LAYER,
                                      "block %u: residual clamp NaN or reversed", b);
        }
    }
    MNV3_TRY(check_conv(&m->last_conv, "last_conv", 1, MNV3_MAX_CHANNELS, e));
    MNV3_TRY(check_chain(ch, m->last_conv.in_channels, "last_conv", e));
    if (!clamp_ok(m->pool_clamp))
        return mnv3_set_error(e, MNV3_ERR_BAD_LAYER, "pool clamp NaN or reversed");
    if (m->num_head < 1 || m->num_head > MNV3_MAX_HEAD)
        return mnv3_set_error(e, MNV3_ERR_BAD_LAYER, "head has %u layers, expected 1..%u",
                              m->num_head, MNV3_MAX_HEAD);
    ch = m->last_conv.out_channels;
    for (i = 0; i < m->num_head; ++i) {
        snprintf(what, sizeof what, "head %u", i);
        MNV3_TRY(check_conv(&m->head[i], what, 1,
                            i + 1 == m->num_head ? MNV3_MAX_CLASSES : MNV3_MAX_CHANNELS, e));
        MNV3_TRY(check_chain(ch, m->head[i].in_channels, what, e));
        ch = m->head[i].out_channels;
    }
    if (ch > MNV3_MAX_CLASSES)
        return mnv3_set_error(e, MNV3_ERR_BAD_LAYER, "%u classes exceeds %u", ch,
                              MNV3_MAX_CLASSES);
    if (m->num_labels != 0 && m->num_labels != ch)
        return mnv3_set_error(e, MNV3_ERR_BAD_METADATA, "%u labels for %u classes",
                              m->num_labels, ch);
    for (i = 0; i < 3; ++i) {
        float s = m->preprocess.std[i];
        if (!isfinite(s) || s == 0.0f || !isfinite(m->preprocess.mean[i]))
            return mnv3_set_error(e, MNV3_ERR_BAD_METADATA,
                                  "preprocess: channel %u mean/std invalid", i);
    }
    if (!isfinite(m->preprocess.scale) || m->preprocess.scale == 0.0f)
        return mnv3_set_error(e, MNV3_ERR_BAD_METADATA, "preprocess: scale invalid");
    if ((unsigned)m->preprocess.channel_order > MNV3_BGR ||
        (unsigned)m->preprocess.layout > MNV3_LAYOUT_NHWC)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "preprocess: channel order/layout unknown");
    if (m->preprocess.height > MNV3_MAX_INPUT_SIZE || m->preprocess.width > MNV3_MAX_INPUT_SIZE)
        return mnv3_set_error(e, MNV3_ERR_BAD_METADATA, "preprocess: input size %ux%u too big",
                              m->preprocess.height, m->preprocess.width);
    return MNV3_OK;
}

uint32_t mnv3_model_convs(mnv3_model *m, mnv3_conv **list) {
    uint32_t n = 0, b, i;
    list[n++] = &m->stem;
    for (b = 0; b < m->num_blocks && b < MNV3_MAX_BLOCKS; ++b) {
        mnv3_block *k = &m->blocks[b];
        if (k->has_expand) list[n++] = &k->expand;
        list[n++] = &k->depthwise;
        if (k->has_se) {
            list[n++] = &k->se.reduce;
            list[n++] = &k->se.expand;
        }
        list[n++] = &k->project;
    }
    list[n++] = &m->last_conv;
    for (i = 0; i < m->num_head && i < MNV3_MAX_HEAD; ++i) list[n++] = &m->head[i];
    return n;
}

void mnv3_conv_name(const mnv3_model *m, const mnv3_conv *c, char *buf, size_t len) {
    uint32_t b, i;
    if (c == &m->stem) { snprintf(buf, len, "stem"); return; }
    if (c == &m->last_conv) { snprintf(buf, len, "last_conv"); return; }
    for (i = 0; i < MNV3_MAX_HEAD; ++i)
        if (c == &m->head[i]) { snprintf(buf, len, "head %u", i); return; }
    for (b = 0; b < MNV3_MAX_BLOCKS; ++b) {
        const mnv3_block *k = &m->blocks[b];
        const char *part = c == &k->expand ? "expand" : c == &k->depthwise ? "depthwise"
                         : c == &k->se.reduce ? "se.reduce" : c == &k->se.expand ? "se.expand"
                         : c == &k->project ? "project" : NULL;
        if (part) { snprintf(buf, len, "block %u %s", b, part); return; }
    }
    snprintf(buf, len, "conv");
}

const char *mnv3_model_label(const mnv3_model *m, uint32_t index) {
    if (!m || !m->labels || index >= m->num_labels) return NULL;
    return m->labels[index];
}

void mnv3_model_free(mnv3_model *m) {
    if (!m) return;
    if (m->packed) m->packed_free(m->packed);
    free(m->owned_weights);
    free(m->owned_extra);
    free(m->owned_quant);
    free(m);
}

mnv3_weight_type mnv3_model_weight_type(const mnv3_model *m) {
    if (!m) return MNV3_WEIGHTS_FLOAT32;
    if (m->quantized) return MNV3_WEIGHTS_INT8;
    return m->stem.weight_type == MNV3_DTYPE_F16 ? MNV3_WEIGHTS_FLOAT16 : MNV3_WEIGHTS_FLOAT32;
}
