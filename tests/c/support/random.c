#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "random.h"

static uint64_t state = 0x9E3779B97F4A7C15ull;

void tr_seed(uint64_t seed) { state = seed ? seed : 0x9E3779B97F4A7C15ull; }

uint32_t tr_rnd(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)(state >> 32);
}

uint32_t tr_below(uint32_t n) { return n ? tr_rnd() % n : 0; }

int32_t tr_range(int32_t lo, int32_t hi) {
    return lo + (int32_t)tr_below((uint32_t)((int64_t)hi - lo + 1));
}

float tr_float(float lo, float hi) { return lo + (hi - lo) * (float)(tr_rnd() >> 8) / 16777216.0f; }

void *tr_alloc(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0) {
        fprintf(stderr, "test: out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    return p;
}

float *tr_floats(size_t n, float lo, float hi) {
    float *p = (float *)tr_alloc(n * sizeof *p);
    size_t i;
    for (i = 0; i < n; ++i) p[i] = tr_float(lo, hi);
    return p;
}

float *tr_weights(size_t n, uint32_t fan_in) {
    const float s = fan_in > 16 ? 2.0f / sqrtf((float)fan_in) : 0.5f;
    return tr_floats(n, -s, s);
}

int8_t *tr_bytes(size_t n, int32_t lo, int32_t hi) {
    int8_t *p = (int8_t *)tr_alloc(n);
    size_t i;
    for (i = 0; i < n; ++i) p[i] = (int8_t)tr_range(lo, hi);
    return p;
}

void *tr_copy(const void *src, size_t bytes) {
    void *p = tr_alloc(bytes);
    memcpy(p, src, bytes);
    return p;
}

uint32_t tr_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t tr_rd64(const uint8_t *p) { return tr_rd32(p) | (uint64_t)tr_rd32(p + 4) << 32; }
