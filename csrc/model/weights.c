#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/checked.h"
#include "weights.h"

static size_t aligned_floats(size_t n) {
    return (n + MNV3_TENSOR_ALIGN_FLOATS - 1) / MNV3_TENSOR_ALIGN_FLOATS * MNV3_TENSOR_ALIGN_FLOATS;
}

mnv3_status mnv3_weights_attach(mnv3_model *m, mnv3_error *e) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    uint32_t n = mnv3_model_convs(m, list), i;
    size_t total = 0, bytes;
    float *base;
    void *raw;
    for (i = 0; i < n; ++i) {
        const uint64_t count = mnv3_conv_weight_count64(list[i]);
        int ok = count <= SIZE_MAX - MNV3_TENSOR_ALIGN_FLOATS &&
                 mnv3_size_add(total, aligned_floats((size_t)count), &total);
        if (ok && list[i]->has_bias)
            ok = mnv3_size_add(total, aligned_floats(list[i]->out_channels), &total);
        if (!ok) return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "weights do not fit in memory");
    }
    if (!mnv3_size_mul(total, sizeof(float), &bytes) || bytes > SIZE_MAX - 64)
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "weights do not fit in memory");
    base = (float *)mnv3_alloc_aligned(bytes, &raw);
    if (!base) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "%zu weight floats", total);
    memset(base, 0, bytes);
    free(m->owned_weights);
    m->owned_weights = raw;
    m->owned_weight_bytes = bytes;
    for (i = 0; i < n; ++i) {
        list[i]->weight = base;
        list[i]->weight_type = MNV3_DTYPE_F32;
        base += aligned_floats(mnv3_conv_weight_count(list[i]));
        if (list[i]->has_bias) {
            list[i]->bias = base;
            base += aligned_floats(list[i]->out_channels);
        } else {
            list[i]->bias = NULL;
        }
    }
    return MNV3_OK;
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1). */
static float uniform(uint64_t *state) {
    return (float)((double)(splitmix64(state) >> 40) * (2.0 / 16777216.0) - 1.0);
}

void mnv3_weights_fill_random(mnv3_model *m, uint64_t seed) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    uint32_t n = mnv3_model_convs(m, list), i;
    uint64_t state = seed;
    for (i = 0; i < n; ++i) {
        mnv3_conv *c = list[i];
        size_t count = mnv3_conv_weight_count(c), j;
        size_t fan_in = (size_t)c->kernel * c->kernel * (c->depthwise ? 1 : c->in_channels);
        /* uniform(-a, a) has variance a^2/3: a = sqrt(6/fan_in) gives 2/fan_in. */
        float a = (float)sqrt(6.0 / (double)fan_in);
        float *w = (float *)c->weight, *b = (float *)c->bias;
        for (j = 0; j < count; ++j) w[j] = a * uniform(&state);
        if (b)
            for (j = 0; j < c->out_channels; ++j) b[j] = 0.1f * uniform(&state);
    }
}
