/* One layer case for the kernel suites, float or int8: random data and quantization or
 * epilogue, the mnv3_layer rows pack and prepare from, and calls of any row on it over the
 * whole layer or the ranges the executor hands threads. Both kernel suites (test_kernels,
 * test_kernels_q8) and test_half build their cases here; each keeps its own naive formula
 * to check the reference rows against. */
#ifndef MNV3_TEST_CASE_H
#define MNV3_TEST_CASE_H

#include "kernels/kernels.h"

typedef enum tc_type {
    TC_F32,                      /* float32 weights and activations */
    TC_F16W,                     /* float16 weights, float32 arithmetic and activations */
    TC_Q8                        /* int8 weights and activations, TFLite arithmetic */
} tc_type;

/* Written before a call into every output element and checked after it: elements a call
 * must not touch keep it. */
#define TC_SENTINEL 12345.0f
#define TC_SENTINEL_BYTE ((int8_t)0x5A)

typedef struct tc_case {
    tc_type type;
    mnv3_layer layer;            /* what a row packs and prepares from */
    size_t P, in_stride, out_stride;   /* pointwise: pixels and element strides */
    uint32_t H, W, OH, OW, pad_top, pad_left; /* depthwise and conv */
    size_t in_row, in_col, in_chan;    /* conv: input strides, NCHW or NHWC */
    uint32_t ring;               /* depthwise: input handed over as a ring of this many rows */
    int want_output;             /* pointwise: 0 when only channel sums are wanted */
    /* owned data; element types by `type` (weights float16 for TC_F16W) */
    void *input, *weight, *bias, *gate, *residual, *sums0;
    mnv3_q8_mul *qmul;
    int8_t *lut;
    size_t in_elems, out_elems, n_sums;
} tc_case;

/* Random cases. `extreme` (int8): inputs and weights pinned at the ends, multipliers with
 * every shift, biases at int32's ends. Depthwise and conv return 0 when the padded input
 * is smaller than the kernel. Options the generator picks at random can be forced after. */
void tc_pointwise(tc_case *c, tc_type t, size_t P, uint32_t K, uint32_t N, int extreme);
int tc_depthwise(tc_case *c, tc_type t, uint32_t H, uint32_t W, uint32_t C, uint32_t K,
                 uint32_t S, uint32_t pt, uint32_t pl, uint32_t pb, uint32_t pr, int extreme);
int tc_conv(tc_case *c, tc_type t, uint32_t H, uint32_t W, uint32_t Ci, uint32_t Co, uint32_t K,
            uint32_t S, uint32_t pt, uint32_t pl, uint32_t pb, uint32_t pr, int nhwc,
            int extreme);
void tc_fc(tc_case *c, tc_type t, uint32_t I, uint32_t O, int extreme);
void tc_free(tc_case *c);

/* int8 multipliers (extreme: INT32_MIN and 0 too) and accumulators, edges included. */
mnv3_q8_mul tc_random_qmul(int extreme);
int32_t tc_random_accumulator(void);

void tc_set_gate(tc_case *c);      /* pointwise: an SE gate (float clamps at random) */
void tc_set_residual(tc_case *c);  /* pointwise: a residual */
void tc_set_sums(tc_case *c);      /* pointwise, depthwise: channel sums */
void tc_set_epilogue(tc_case *c, const mnv3_epilogue *e); /* float */

/* A row bound to a case: what it packed, its parameters and a workspace. */
typedef struct tc_bound {
    const mnv3_row *row;
    const void *packed;
    void *owned, *params, *workspace;
} tc_bound;

void tc_bind(tc_bound *b, const mnv3_row *row, const tc_case *c);
void tc_unbind(tc_bound *b);

/* One call of `row` on arguments built by hand: packs and prepares for layer l (its
 * canonical weights), fills the arguments' packed, params and workspace, runs, frees. */
void tc_run_pointwise(const mnv3_row *row, const mnv3_layer *l, mnv3_pointwise_args *a);
void tc_run_depthwise(const mnv3_row *row, const mnv3_layer *l, mnv3_depthwise_args *a);
void tc_run_conv(const mnv3_row *row, const mnv3_layer *l, mnv3_conv_args *a);
void tc_run_fc(const mnv3_row *row, const mnv3_layer *l, mnv3_fc_args *a);
/* A float layer as those calls want it: no bias, gate or residual clamps, the activation
 * unclamped. */
void tc_float_layer(mnv3_layer *l, mnv3_row_kind kind, uint32_t in, uint32_t out, uint32_t kernel,
                    mnv3_dtype weight_type, const void *weight, const float *bias,
                    mnv3_activation act);
/* The reference row of a kind for float weights of a type, or for int8. */
const mnv3_row *tc_reference(mnv3_row_kind kind, mnv3_dtype weight_type);

/* The reference row of a case's kind and type. */
const mnv3_row *tc_reference_row(const tc_case *c);

/* Outputs of calls on a case: sentinels, and the case's initial channel sums. */
typedef struct tc_result {
    void *out;
    void *sums;
} tc_result;

void tc_result_init(tc_result *r, const tc_case *c);
void tc_result_free(tc_result *r);

/* What one call covers: pointwise pixels [p0, p1) and channels [c0, c1); depthwise and
 * conv output rows [r0, r1); fc outputs [c0, c1). */
typedef struct tc_range {
    size_t p0, p1;
    uint32_t c0, c1, r0, r1;
} tc_range;

tc_range tc_whole(const tc_case *c);
/* A random sub-range as a thread gets one (channels from a multiple of the row's nr). */
tc_range tc_subrange(const tc_case *c, const mnv3_row *row);
/* Calls row b on range r into res; a depthwise call reads its input from a ring of rows
 * when the case has one. Prefetch ranges, when given, are passed as hints. */
void tc_call(const tc_bound *b, const tc_case *c, tc_range r, tc_result *res,
             const mnv3_prefetch_range *prefetch, uint32_t prefetch_count, uint32_t part,
             uint32_t parts);

/* How a row is checked against the reference. */
typedef enum tc_split {
    TC_WHOLE,                    /* one call over the whole layer */
    TC_SUBRANGE,                 /* both on one random sub-range, prefetch hints on */
    TC_TASKS                     /* the row in pieces that cover the layer */
} tc_split;

/* Mismatching output elements and sums of `row` against the case's reference row (float:
 * within tol of the largest magnitude; int8: byte for byte), each reported on stderr. */
size_t tc_check_row(const mnv3_row *row, const tc_case *c, tc_split split, double tol);
/* The reference row against an independent formula of the case's kind, which writes its
 * outputs into a result made for the case (sentinels and initial sums). */
typedef void (*tc_naive_fn)(const tc_case *c, tc_result *out);
size_t tc_check_reference(const tc_case *c, tc_naive_fn naive, double tol);
/* The same between two results of the case. */
size_t tc_diff(const tc_case *c, const tc_result *got, const tc_result *want, double tol,
               const char *what);

#endif
