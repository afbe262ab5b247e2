/* Overflow-checked size arithmetic and debug assertions.
 *
 * Every size the library derives from a model or a configuration goes through these: on a
 * 32-bit board size_t is 32 bits, and a product that wraps there would plan an arena too
 * small for what the kernels then write. A helper returns 0 and leaves *out untouched when
 * the exact result does not fit in size_t. */
#ifndef MNV3_CHECKED_H
#define MNV3_CHECKED_H

#include <stddef.h>
#include <stdint.h>

static inline int mnv3_size_mul(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

static inline int mnv3_size_add(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}

/* a * b * c * d, any of them 1 when unused. */
static inline int mnv3_size_mul4(size_t a, size_t b, size_t c, size_t d, size_t *out) {
    size_t ab, abc;
    return mnv3_size_mul(a, b, &ab) && mnv3_size_mul(ab, c, &abc) && mnv3_size_mul(abc, d, out);
}

/* x rounded up to a multiple of `align` (a power of two). */
static inline int mnv3_size_align(size_t x, size_t align, size_t *out) {
    size_t up;
    if (!mnv3_size_add(x, align - 1, &up)) return 0;
    *out = up & ~(align - 1);
    return 1;
}

/* Preconditions of internal functions: checked in debug builds, compiled out under NDEBUG
 * (release builds). They document what callers guarantee; user input is validated with
 * status codes before it gets this far, never with assertions. */
#if defined(NDEBUG)
#define MNV3_ASSERT(cond) ((void)0)
#else
#include <assert.h>
#define MNV3_ASSERT(cond) assert(cond)
#endif

#endif
