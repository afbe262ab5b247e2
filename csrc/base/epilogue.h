/* The per-element tail every convolution ends with, as data: the model stores one per conv
 * and the kernels apply it. Kept apart from the kernel contract so that the network
 * description does not depend on how kernels are organised. */
#ifndef MNV3_EPILOGUE_H
#define MNV3_EPILOGUE_H

#include <math.h>
#include "mnv3.h"

typedef struct mnv3_clamp {
    float lo, hi;           /* -INFINITY / +INFINITY when unbounded */
} mnv3_clamp;

/* y = clamp(act(clamp(x, pre)), post). The clamps carry the quantized ranges of
 * fake-quantised (TFLite) models; float models leave them infinite. */
typedef struct mnv3_epilogue {
    mnv3_activation activation;
    mnv3_clamp pre;
    mnv3_clamp post;
} mnv3_epilogue;

static inline float mnv3_clampf(float x, mnv3_clamp c) {
    x = x < c.lo ? c.lo : x;
    return x > c.hi ? c.hi : x;
}

static inline float mnv3_activate(mnv3_activation act, float x) {
    switch (act) {
    case MNV3_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case MNV3_ACT_RELU6: return x < 0.0f ? 0.0f : (x > 6.0f ? 6.0f : x);
    case MNV3_ACT_HARD_SWISH: {
        float r = x + 3.0f;
        r = r < 0.0f ? 0.0f : (r > 6.0f ? 6.0f : r);
        return x * r * (1.0f / 6.0f);
    }
    case MNV3_ACT_HARD_SIGMOID: {
        float r = x + 3.0f;
        r = r < 0.0f ? 0.0f : (r > 6.0f ? 6.0f : r);
        return r * (1.0f / 6.0f);
    }
    case MNV3_ACT_NONE:
    default: return x;
    }
}

static inline float mnv3_epilogue_apply(const mnv3_epilogue *e, float x) {
    return mnv3_clampf(mnv3_activate(e->activation, mnv3_clampf(x, e->pre)), e->post);
}

static inline int mnv3_clamp_is_unbounded(mnv3_clamp c) {
    return isinf(c.lo) && c.lo < 0 && isinf(c.hi) && c.hi > 0;
}

#endif
