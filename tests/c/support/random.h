/* Reproducible pseudo-random data for the C tests: one xorshift stream a test reseeds per
 * case, so that a failing case can be rerun alone. */
#ifndef MNV3_TEST_RANDOM_H
#define MNV3_TEST_RANDOM_H

#include <stddef.h>
#include <stdint.h>

void tr_seed(uint64_t seed);
uint32_t tr_rnd(void);
uint32_t tr_below(uint32_t n);                 /* [0, n), 0 when n is 0 */
int32_t tr_range(int32_t lo, int32_t hi);      /* [lo, hi] */
float tr_float(float lo, float hi);            /* [lo, hi) */

/* 64-byte aligned, never NULL (the test exits on exhaustion); free with free(). */
void *tr_alloc(size_t bytes);
float *tr_floats(size_t n, float lo, float hi);
/* Uniform in [-s, s], s = 2 / sqrt(fan_in) (0.5 for small fans): weights that keep
 * activations in range. */
float *tr_weights(size_t n, uint32_t fan_in);
int8_t *tr_bytes(size_t n, int32_t lo, int32_t hi);
void *tr_copy(const void *src, size_t bytes);

/* Little-endian fields of a serialised file. */
uint32_t tr_rd32(const uint8_t *p);
uint64_t tr_rd64(const uint8_t *p);

#endif
