/* The int8 network's input conversions (mnv3_q8_input_ops) of every kernel set the CPU
 * runs, against their scalar definition, byte for byte:
 *   - QUANTIZE of floats in order and of three planes into NHWC, on awkward values (NaN of
 *     every sign and payload, infinities, zeros, denormals, the largest floats, exact and
 *     nearly exact .5 ties, the saturation thresholds), on tiny and huge scales and every
 *     kind of zero point, on a sweep over the float bit patterns, at every length from 0
 *     to 70 and from pointers off any vector alignment, with nothing written past the end;
 *     and every float within 40 ulps of a tie, where a reciprocal and a division may part;
 *   - uint8 bytes to int8 and three byte planes into NHWC, the same way.
 * Every set id resolves conversions, whatever the element types. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/kernels.h"
#include "mnv3.h"
#include "support/random.h"

static int quick;

/* Room for the longest case, its planes' gaps and a misalignment of up to 3 elements. */
#define MAX_PIXELS 1100u
#define GUARD 16u
#define GUARD_BYTE 0x5A

static float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static const float scales[] = {
    1.0f, 0.5f, 1.0f / 127.0f, 1.0f / 127.5f, 1.0f / 255.0f, 0.0078125f, 0.017352f, 3.0f,
    1e-3f, 1e6f, FLT_MIN, 1e-40f /* denormal */, 1.4e-45f /* the least denormal */, 1e30f,
    FLT_MAX,
};
#define N_SCALES (sizeof scales / sizeof *scales)
static const int32_t zero_points[] = {-128, -1, 0, 3, 127};
#define N_ZPS (sizeof zero_points / sizeof *zero_points)

/* Values whose quotient by `scale` lands on each hard case of the rounding, and values
 * that are hard whatever the scale. */
static size_t awkward_values(float scale, float *v, size_t cap) {
    static const uint32_t special[] = {
        0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFFBFFFFFu, 0x7FFFFFFFu, 0xFFFFFFFFu, /* NaNs */
        0x7F800000u, 0xFF800000u, 0x00000000u, 0x80000000u,                /* inf, 0 */
        0x00000001u, 0x80000001u, 0x007FFFFFu, 0x807FFFFFu, 0x00400000u,   /* denormals */
        0x00800000u, 0x80800000u, 0x7F7FFFFFu, 0xFF7FFFFFu,                /* min, max normal */
    };
    static const float boundaries[] = {1e9f, 2147483648.0f, 8388608.0f, 16777216.0f, 1000.0f,
                                       255.5f, 256.0f, 128.5f, 127.5f, 0.5f, 1.5f, 2.5f};
    size_t n = 0, i;
    int k, d;
    for (i = 0; i < sizeof special / sizeof *special && n < cap; ++i)
        v[n++] = bits_to_float(special[i]);
    /* the boundaries and ties of the quotient, and a few floats either side */
    for (i = 0; i < sizeof boundaries / sizeof *boundaries; ++i)
        for (k = -1; k <= 1; k += 2) {
            float x = (float)k * boundaries[i] * scale;
            for (d = 0; d < 3 && n + 2 < cap; ++d) {
                v[n++] = x;
                v[n++] = nextafterf(x, 0.0f);
                x = nextafterf(x, (float)k * INFINITY);
            }
        }
    for (k = -300; k <= 300 && n + 3 < cap; ++k) {
        const float x = ((float)k + 0.5f) * scale;
        v[n++] = x;
        v[n++] = nextafterf(x, INFINITY);
        v[n++] = nextafterf(x, -INFINITY);
    }
    while (n < cap) {
        /* random bit patterns, and random values in the range that does not saturate */
        v[n] = (n & 1) ? bits_to_float((uint32_t)tr_rnd())
                       : tr_float(-300.0f, 300.0f) * scale;
        ++n;
    }
    return n;
}

static void shuffle(float *v, size_t n) {
    size_t i;
    for (i = n; i > 1; --i) {
        const size_t j = (size_t)tr_below((uint32_t)i);
        const float t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* The first index where got differs from want within n bytes, n when none does; the guard
 * after them must be untouched. */
static size_t first_difference(const int8_t *got, const int8_t *want, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i)
        if (got[i] != want[i]) return i;
    for (i = n; i < n + GUARD; ++i)
        if ((uint8_t)got[i] != GUARD_BYTE) return i;
    return n;
}

typedef struct buffers {
    float x[3 * (MAX_PIXELS + 8)];
    uint8_t bytes[3 * (MAX_PIXELS + 8)];
    int8_t got[3 * MAX_PIXELS + GUARD + 8], want[3 * MAX_PIXELS + GUARD + 8];
} buffers;

/* Lengths 0..70 at every misalignment, then a few long ones through the main loops. */
static size_t length_at(uint32_t i) { return i <= 70 ? i : (size_t)(i - 71) * 250u + 333u; }
#define N_LENGTHS 75u

static uint32_t quantize_cases(const char *set, const mnv3_q8_input_ops *ops, buffers *b,
                               float scale, int32_t zp) {
    const float *pool = b->x;
    uint32_t li, bad = 0;
    for (li = 0; li < N_LENGTHS; ++li) {
        const size_t n = length_at(li), off = li % 4u, out_off = (li / 4u) % 4u;
        const size_t plane = n + li % 5u; /* planes with gaps between them */
        const float *x = pool + off;
        int8_t *got = b->got + out_off;
        size_t i, at;
        if (n > MAX_PIXELS) continue;
        /* in order */
        for (i = 0; i < n; ++i) b->want[i] = mnv3_q8_quantize_one(x[i], scale, zp);
        memset(got, GUARD_BYTE, n + GUARD);
        ops->quantize(x, n, scale, zp, got);
        at = first_difference(got, b->want, n);
        if (at != n && bad++ < 5)
            fprintf(stderr, "  %s quantize n=%zu scale %g zp %d: element %zu: %d, want %d\n", set,
                    n, (double)scale, (int)zp, at, got[at], at < n ? b->want[at] : GUARD_BYTE);
        /* three planes into NHWC */
        for (i = 0; i < n; ++i) {
            b->want[3 * i] = mnv3_q8_quantize_one(x[i], scale, zp);
            b->want[3 * i + 1] = mnv3_q8_quantize_one(x[plane + i], scale, zp);
            b->want[3 * i + 2] = mnv3_q8_quantize_one(x[2 * plane + i], scale, zp);
        }
        memset(got, GUARD_BYTE, 3 * n + GUARD);
        ops->quantize_planes(x, plane, n, scale, zp, got);
        at = first_difference(got, b->want, 3 * n);
        if (at != 3 * n && bad++ < 5)
            fprintf(stderr, "  %s quantize_planes pixels=%zu scale %g zp %d: byte %zu: %d, "
                    "want %d\n", set, n, (double)scale, (int)zp, at, got[at],
                    at < 3 * n ? b->want[at] : GUARD_BYTE);
    }
    return bad;
}

static void quantize_suite(const char *set, const mnv3_q8_input_ops *ops, buffers *b) {
    uint32_t s, z, bad = 0, round;
    for (s = 0; s < N_SCALES; ++s)
        for (z = 0; z < N_ZPS; ++z)
            for (round = 0; round < (quick ? 1u : 3u); ++round) {
                awkward_values(scales[s], b->x, sizeof b->x / sizeof *b->x);
                if (round > 0) shuffle(b->x, sizeof b->x / sizeof *b->x);
                bad += quantize_cases(set, ops, b, scales[s], zero_points[z]);
            }
    CHECK_MSG(bad == 0, "%s: %u quantizations differ from mnv3_q8_quantize_one", set, bad);
}

/* Quantizes b->x[0, n) with the set and by definition; returns 1 (and reports the first
 * difference, while `bad` is below 5) when they differ. */
static uint32_t block_differs(const char *set, const char *what, const mnv3_q8_input_ops *ops,
                             buffers *b, size_t n, float scale, int32_t zp, uint32_t bad) {
    size_t i;
    for (i = 0; i < n; ++i) b->want[i] = mnv3_q8_quantize_one(b->x[i], scale, zp);
    memset(b->got, GUARD_BYTE, n + GUARD);
    ops->quantize(b->x, n, scale, zp, b->got);
    i = first_difference(b->got, b->want, n);
    if (i == n) return 0;
    if (bad < 5)
        fprintf(stderr, "  %s %s scale %g: x = %a: %d, want %d\n", set, what, (double)scale,
                i < n ? (double)b->x[i] : 0.0, b->got[i], i < n ? b->want[i] : 0);
    return 1;
}

/* Float bit patterns from the whole range, a block at a time, on a few scales. */
static void sweep_suite(const char *set, const mnv3_q8_input_ops *ops, buffers *b) {
    static const float sweep_scales[] = {1.0f / 127.5f, 0.75f, 1e-40f};
    const uint64_t step = quick ? 65521u : 251u, block = MAX_PIXELS;
    uint32_t s, bad = 0;
    for (s = 0; s < sizeof sweep_scales / sizeof *sweep_scales; ++s) {
        const float scale = sweep_scales[s];
        const int32_t zp = (int32_t)s * 61 - 64;
        uint64_t u = s;
        while (u <= UINT32_MAX) {
            size_t n = 0;
            for (; n < block && u <= UINT32_MAX; ++n, u += step)
                b->x[n] = bits_to_float((uint32_t)u);
            bad += block_differs(set, "sweep", ops, b, n, scale, zp, bad);
        }
    }
    CHECK_MSG(bad == 0, "%s: %u blocks of the float sweep differ", set, bad);
}

/* Every float within 40 ulps of each tie (k + 0.5) * scale that does not saturate, on
 * scales whose reciprocal is inexact: where multiplying by the reciprocal and dividing
 * can round apart (a set that multiplies divides near a tie, MNV3_Q8IN_TIE_MARGIN). */
static void tie_suite(const char *set, const mnv3_q8_input_ops *ops, buffers *b) {
    static const float tie_scales[] = {1.0f / 127.5f, 0.017352f, 0.1f, 1.0f / 3.0f, 0.0123457f,
                                       7.3e-3f, 3.0f, 1e-29f, 9e29f};
    uint32_t s, bad = 0;
    for (s = 0; s < sizeof tie_scales / sizeof *tie_scales; ++s) {
        const float scale = tie_scales[s];
        const int32_t zp = (int32_t)(s * 37u % 256u) - 128;
        int k;
        for (k = -260; k < 260; ++k) {
            const float tie = ((float)k + 0.5f) * scale;
            float up = tie, down = tie;
            size_t n = 0;
            int d;
            for (d = 0; d < 40; ++d) {
                b->x[n++] = up;
                b->x[n++] = down;
                up = nextafterf(up, INFINITY);
                down = nextafterf(down, -INFINITY);
            }
            bad += block_differs(set, "tie", ops, b, n, scale, zp, bad);
        }
    }
    CHECK_MSG(bad == 0, "%s: %u windows around ties differ", set, bad);
}

static void bytes_suite(const char *set, const mnv3_q8_input_ops *ops, buffers *b) {
    uint32_t li, bad = 0, flip;
    size_t i, at;
    for (i = 0; i < sizeof b->bytes; ++i) b->bytes[i] = (uint8_t)tr_rnd();
    for (i = 0; i < 256; ++i) b->bytes[i] = (uint8_t)i;
    for (li = 0; li < N_LENGTHS; ++li) {
        const size_t n = length_at(li), off = li % 7u, out_off = (li / 7u) % 4u;
        const size_t plane = n + li % 3u;
        const uint8_t *x = b->bytes + off;
        int8_t *got = b->got + out_off;
        if (n > MAX_PIXELS) continue;
        for (i = 0; i < n; ++i) b->want[i] = (int8_t)(x[i] ^ 0x80u);
        memset(got, GUARD_BYTE, n + GUARD);
        ops->from_uint8(x, n, got);
        at = first_difference(got, b->want, n);
        if (at != n && bad++ < 5) fprintf(stderr, "  %s from_uint8 n=%zu: byte %zu\n", set, n, at);
        for (flip = 0; flip <= 0x80u; flip += 0x80u) {
            for (i = 0; i < n; ++i) {
                b->want[3 * i] = (int8_t)(x[i] ^ flip);
                b->want[3 * i + 1] = (int8_t)(x[plane + i] ^ flip);
                b->want[3 * i + 2] = (int8_t)(x[2 * plane + i] ^ flip);
            }
            memset(got, GUARD_BYTE, 3 * n + GUARD);
            ops->interleave_planes(x, plane, n, (uint8_t)flip, got);
            at = first_difference(got, b->want, 3 * n);
            if (at != 3 * n && bad++ < 5)
                fprintf(stderr, "  %s interleave_planes pixels=%zu flip %u: byte %zu\n", set, n,
                        flip, at);
        }
    }
    CHECK_MSG(bad == 0, "%s: %u byte conversions differ", set, bad);
}

/* Every set's conversions that the CPU runs (once, where sets share them), and the
 * portable ones. */
static void sets_suite(buffers *b) {
    uint32_t count, i, j;
    const mnv3_kernel_set *const *sets = mnv3_kernel_sets(&count);
    for (i = 0; i < count; ++i) {
        const mnv3_q8_input_ops *ops = sets[i]->q8_input;
        const int runs = mnv3_kernel_set_supported(sets[i]);
        int elsewhere = 0;
        /* tested with an earlier set, or to be tested with a later one the CPU runs */
        for (j = 0; j < count; ++j)
            elsewhere |= j != i && sets[j]->q8_input == ops && mnv3_kernel_set_supported(sets[j]) &&
                         (j < i || !runs);
        if (!ops || elsewhere) continue;
        if (!runs) {
            SKIP("int8 input of kernel set %s: this CPU does not run it", sets[i]->name);
            continue;
        }
        printf("int8 input conversions of kernel set %s\n", sets[i]->name);
        quantize_suite(sets[i]->name, ops, b);
        sweep_suite(sets[i]->name, ops, b);
        tie_suite(sets[i]->name, ops, b);
        bytes_suite(sets[i]->name, ops, b);
    }
}

/* Conversions come with the rows of every id the CPU runs, for int8 and float types
 * alike, and a set forced alone brings its own or the portable ones. */
static void resolve_suite(void) {
    uint32_t isa, count, i;
    const mnv3_kernel_set *const *sets = mnv3_kernel_sets(&count);
    for (isa = 1; isa < mnv3_isa_count(); ++isa) {
        mnv3_kernels k;
        if (!mnv3_isa_available((mnv3_isa)isa)) continue;
        CHECK(mnv3_kernels_resolve((mnv3_isa)isa, MNV3_DTYPE_I8, MNV3_DTYPE_I8, &k) &&
              k.q8_input != NULL);
        CHECK(mnv3_kernels_resolve((mnv3_isa)isa, MNV3_DTYPE_F32, MNV3_DTYPE_F32, &k) &&
              k.q8_input != NULL);
    }
    for (i = 0; i < count; ++i) {
        mnv3_kernels k;
        if (!mnv3_kernels_resolve_set(sets[i], MNV3_DTYPE_I8, MNV3_DTYPE_I8, &k)) continue;
        CHECK(k.q8_input == (sets[i]->q8_input ? sets[i]->q8_input : &mnv3_q8_input_portable));
    }
}

int main(void) {
    buffers *b = (buffers *)tr_alloc(sizeof *b);
    quick = getenv("MNV3_TEST_QUICK") != NULL;
    tr_seed(0x9E3779B97F4A7C15ull);
    resolve_suite();
    sets_suite(b);
    free(b);
    return check_summary("test_q8_input");
}
