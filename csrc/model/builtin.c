/* Built-in MobileNetV3 architectures. One table per size; the flavors differ only in
 * rounding, activations, SE shape and padding, which are data here, not code paths. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "weights.h"

typedef struct bneck {
    uint16_t in, kernel, expanded, out;
    uint8_t se, hard_swish, stride;
} bneck;

/* MobileNetV3 paper, tables 1 and 2 (torchvision's inverted_residual_setting). */
static const bneck large_table[] = {
    {16, 3, 16, 16, 0, 0, 1},    {16, 3, 64, 24, 0, 0, 2},    {24, 3, 72, 24, 0, 0, 1},
    {24, 5, 72, 40, 1, 0, 2},    {40, 5, 120, 40, 1, 0, 1},   {40, 5, 120, 40, 1, 0, 1},
    {40, 3, 240, 80, 0, 1, 2},   {80, 3, 200, 80, 0, 1, 1},   {80, 3, 184, 80, 0, 1, 1},
    {80, 3, 184, 80, 0, 1, 1},   {80, 3, 480, 112, 1, 1, 1},  {112, 3, 672, 112, 1, 1, 1},
    {112, 5, 672, 160, 1, 1, 2}, {160, 5, 960, 160, 1, 1, 1}, {160, 5, 960, 160, 1, 1, 1},
};

static const bneck small_table[] = {
    {16, 3, 16, 16, 1, 0, 2},  {16, 3, 72, 24, 0, 0, 2},   {24, 3, 88, 24, 0, 0, 1},
    {24, 5, 96, 40, 1, 1, 2},  {40, 5, 240, 40, 1, 1, 1},  {40, 5, 240, 40, 1, 1, 1},
    {40, 5, 120, 48, 1, 1, 1}, {48, 5, 144, 48, 1, 1, 1},  {48, 5, 288, 96, 1, 1, 2},
    {96, 5, 576, 96, 1, 1, 1}, {96, 5, 576, 96, 1, 1, 1},
};

/* torchvision's _make_divisible(v, 8): round to the nearest multiple of 8, never below 8
 * and never more than 10% below v. */
static uint32_t make_divisible(double v, uint32_t divisor) {
    long r = (long)(v + divisor / 2.0) / (long)divisor * (long)divisor;
    if (r < (long)divisor) r = divisor;
    if ((double)r < 0.9 * v) r += divisor;
    return (uint32_t)r;
}

typedef struct flavor_rules {
    int round_to_8;               /* torchvision/TF: make_divisible; walkthrough: int(c*w) */
    int always_expand;            /* walkthrough keeps the 1x1 expansion when exp == in */
    mnv3_activation relu;         /* what the tables' "RE" means */
    int se_bias;
    mnv3_activation se_inner;
    mnv3_padding_mode padding;
} flavor_rules;

static uint32_t scale_channels(const flavor_rules *r, uint32_t c, double w) {
    if (r->round_to_8) return make_divisible(c * w, 8);
    return (uint32_t)(c * w) ? (uint32_t)(c * w) : 1u;
}

static void set_conv(mnv3_conv *c, uint32_t in, uint32_t out, uint32_t kernel, uint32_t stride,
                     int depthwise, mnv3_activation act, int batchnorm, int bias,
                     mnv3_padding_mode padding) {
    memset(c, 0, sizeof *c);
    c->in_channels = in;
    c->out_channels = out;
    c->kernel = kernel;
    c->stride = stride;
    c->depthwise = (uint32_t)depthwise;
    c->padding_mode = padding;
    if (padding == MNV3_PAD_EXPLICIT)
        c->pad_top = c->pad_left = c->pad_bottom = c->pad_right = (kernel - 1) / 2;
    c->batchnorm_folded = (uint32_t)batchnorm;
    c->epilogue.activation = act;
    c->epilogue.pre.lo = c->epilogue.post.lo = -INFINITY;
    c->epilogue.pre.hi = c->epilogue.post.hi = INFINITY;
    c->has_bias = (uint32_t)(batchnorm || bias); /* a folded BatchNorm always leaves a bias */
}

static const mnv3_clamp unbounded = {-INFINITY, INFINITY};

mnv3_status mnv3_model_create_builtin(mnv3_arch arch, mnv3_flavor flavor, double width,
                                      uint32_t classes, uint64_t seed, mnv3_model **out,
                                      mnv3_error *e) {
    flavor_rules r;
    const bneck *table;
    uint32_t n, b, ch, head_hidden, last;
    mnv3_model *m;
    mnv3_status st;
    if (!out) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "out_model is NULL");
    *out = NULL;
    if (!(width > 0.0 && width <= 4.0))
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT, "width multiplier %g not in (0, 4]",
                              width);
    if (classes < 1 || classes > MNV3_MAX_CLASSES)
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT, "num_classes %u not in 1..%u",
                              classes, MNV3_MAX_CLASSES);
    if (arch == MNV3_ARCH_LARGE) {
        table = large_table;
        n = sizeof large_table / sizeof *large_table;
        head_hidden = 1280;
    } else if (arch == MNV3_ARCH_SMALL) {
        table = small_table;
        n = sizeof small_table / sizeof *small_table;
        head_hidden = 1024;
    } else {
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT, "arch %d is not large or small",
                              (int)arch);
    }
    memset(&r, 0, sizeof r);
    switch (flavor) {
    case MNV3_FLAVOR_TORCHVISION:
    case MNV3_FLAVOR_TFLITE:
        r.round_to_8 = 1;
        r.relu = MNV3_ACT_RELU;
        r.se_bias = 1;
        r.se_inner = MNV3_ACT_RELU;
        r.padding = flavor == MNV3_FLAVOR_TFLITE ? MNV3_PAD_SAME : MNV3_PAD_EXPLICIT;
        break;
    case MNV3_FLAVOR_WALKTHROUGH:
        r.always_expand = 1;
        r.relu = MNV3_ACT_RELU6;
        r.se_inner = MNV3_ACT_RELU6;
        r.padding = MNV3_PAD_EXPLICIT;
        break;
    default:
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT,
                              "flavor %d is not torchvision, walkthrough or tflite", (int)flavor);
    }

    m = (mnv3_model *)calloc(1, sizeof *m);
    if (!m) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "model description");
    m->arch = arch;
    m->flavor = flavor;
    m->input_channels = 3;
    ch = scale_channels(&r, 16, width);
    set_conv(&m->stem, 3, ch, 3, 2, 0, MNV3_ACT_HARD_SWISH, 1, 0, r.padding);
    m->num_blocks = n;
    for (b = 0; b < n; ++b) {
        const bneck *t = &table[b];
        mnv3_block *k = &m->blocks[b];
        uint32_t in = scale_channels(&r, t->in, width);
        uint32_t exp = scale_channels(&r, t->expanded, width);
        uint32_t outc = scale_channels(&r, t->out, width);
        mnv3_activation act = t->hard_swish ? MNV3_ACT_HARD_SWISH : r.relu;
        k->has_expand = r.always_expand || exp != in;
        if (k->has_expand) set_conv(&k->expand, in, exp, 1, 1, 0, act, 1, 0, MNV3_PAD_EXPLICIT);
        set_conv(&k->depthwise, exp, exp, t->kernel, t->stride, 1, act, 1, 0, r.padding);
        k->has_se = t->se;
        if (t->se) {
            uint32_t sq = r.round_to_8 ? make_divisible(exp / 4, 8) : (exp / 4 ? exp / 4 : 1);
            k->se.squeeze_clamp = k->se.scale_clamp = unbounded;
            set_conv(&k->se.reduce, exp, sq, 1, 1, 0, r.se_inner, 0, r.se_bias,
                     MNV3_PAD_EXPLICIT);
            set_conv(&k->se.expand, sq, exp, 1, 1, 0, MNV3_ACT_HARD_SIGMOID, 0, r.se_bias,
                     MNV3_PAD_EXPLICIT);
        }
        set_conv(&k->project, exp, outc, 1, 1, 0, MNV3_ACT_NONE, 1, 0, MNV3_PAD_EXPLICIT);
        k->residual = t->stride == 1 && in == outc;
        k->residual_clamp = unbounded;
        ch = outc;
    }
    last = r.round_to_8 ? 6 * ch : scale_channels(&r, arch == MNV3_ARCH_LARGE ? 960 : 576, width);
    set_conv(&m->last_conv, ch, last, 1, 1, 0, MNV3_ACT_HARD_SWISH, 1, 0, MNV3_PAD_EXPLICIT);
    m->pool_clamp = unbounded;
    /* Every flavor scales the head's hidden width: make_divisible or int(c * width). */
    head_hidden = scale_channels(&r, head_hidden, width);
    m->num_head = 2;
    set_conv(&m->head[0], last, head_hidden, 1, 1, 0, MNV3_ACT_HARD_SWISH, 0, 1,
             MNV3_PAD_EXPLICIT);
    set_conv(&m->head[1], head_hidden, classes, 1, 1, 0, MNV3_ACT_NONE, 0, 1, MNV3_PAD_EXPLICIT);

    m->preprocess.height = m->preprocess.width = 224;
    m->preprocess.channel_order = MNV3_RGB;
    if (flavor == MNV3_FLAVOR_TFLITE) {
        m->preprocess.layout = MNV3_LAYOUT_NHWC;
        m->preprocess.scale = 1.0f;
        m->preprocess.mean[0] = m->preprocess.mean[1] = m->preprocess.mean[2] = 127.5f;
        m->preprocess.std[0] = m->preprocess.std[1] = m->preprocess.std[2] = 127.5f;
    } else {
        static const float mean[3] = {0.485f, 0.456f, 0.406f}, stdv[3] = {0.229f, 0.224f, 0.225f};
        m->preprocess.layout = MNV3_LAYOUT_NCHW;
        m->preprocess.scale = 1.0f / 255.0f;
        memcpy(m->preprocess.mean, mean, sizeof mean);
        memcpy(m->preprocess.std, stdv, sizeof stdv);
    }

    st = mnv3_weights_attach(m, e);
    if (st == MNV3_OK) {
        mnv3_weights_fill_random(m, seed);
        st = mnv3_model_validate(m, e);
    }
    if (st != MNV3_OK) {
        mnv3_model_free(m);
        return st;
    }
    *out = m;
    return MNV3_OK;
}
