/* The kernel contract.
 *
 * Three levels, from the executor down:
 *   - layer arguments (mnv3_*_args): what the executor hands one thread for one layer, a
 *     sub-range of rows or output channels, with activations NHWC (one pixel is `channels`
 *     contiguous elements). Different ranges of one layer never write the same element.
 *   - rows (mnv3_*_kernel): one per (layer kind, weight type, activation type, kernel set).
 *     A row says how weights are packed for it (packed_bytes, pack), how its parameters
 *     are prepared (the epilogue as the microkernels want it), its tile sizes and
 *     microkernels, and `run`, which executes layer arguments. For every SIMD set `run` is
 *     one of the portable drivers (drivers.c), which own thread sub-ranges, panel loops,
 *     tails, SE scaling, residuals, channel sums, ring input and the prefetch cursor; the
 *     reference rows' `run` is the scalar oracle itself (reference.c).
 *   - microkernels (mnv3_*_ukernel): per-ISA code for one tile; named like XNNPACK's,
 *     precision_operation_tile__isa, so that a profile or stack trace says what ran.
 *
 * A kernel set (mnv3_kernel_set) is one file's rows plus how to tell whether the CPU runs
 * them; dispatch.c lists the sets and resolves a context's rows (mnv3_kernels). */
#ifndef MNV3_KERNELS_H
#define MNV3_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "base/dtype.h"
#include "base/epilogue.h"
#include "mnv3.h"
#include "base/quant.h"

/* Which SIMD sets this build contains follows from the target, not from build flags, so
 * the Makefile and the Swift package agree. MNV3_NO_SIMD builds the reference only. */
#if !defined(MNV3_NO_SIMD)
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#define MNV3_HAVE_X86_KERNELS 1
#endif
/* AArch64 always has ASIMD. 32-bit ARM needs NEON with VFPv4 fused multiply-add, which
 * -mfpu=neon-vfpv4 (the Makefile's default for arm targets) provides. */
#if defined(__aarch64__) || (defined(__ARM_NEON) && defined(__ARM_FEATURE_FMA))
#define MNV3_HAVE_NEON_KERNELS 1
#endif
#endif

/* Room for a row's prepared parameters (vector constants of the epilogue); the drivers
 * keep them on the stack, 64-byte aligned. */
#define MNV3_PARAMS_BYTES 512
/* Largest kernel side the depthwise microkernels are given row pointers for. */
#define MNV3_DW_MAX_KERNEL 11
/* Largest pointwise row tile any set uses. */
#define MNV3_MAX_MR 12

typedef struct mnv3_prefetch_range {
    const char *begin;
    size_t bytes;
} mnv3_prefetch_range;

/* Activations between layers are float32 for every float row but those whose act_type
 * is MNV3_DTYPE_F16 (relaxed precision on ARMv8.2 FP16 arithmetic), which store them as
 * float16: for those rows the activation pointers below (input, residual, output, the
 * depthwise rows and outputs, the GEMM tile's a/res/out) address float16 elements, strides
 * still count elements. Bias, SE gate, channel sums, the stem's image and the FC's input and
 * output vectors stay float32 for every row. MNV3_DTYPE_BF16 rows (bf16 products) keep
 * float32 activations. */
static inline size_t mnv3_act_elem_bytes(mnv3_dtype act_type) {
    return act_type == MNV3_DTYPE_F16 ? 2u : 4u;
}

/* Element i of an activation buffer whose elements are elem_bytes wide. */
static inline const float *mnv3_act_at(const float *base, size_t i, size_t elem_bytes) {
    return (const float *)(const void *)((const char *)base + i * elem_bytes);
}
static inline float *mnv3_act_at_mut(float *base, size_t i, size_t elem_bytes) {
    return (float *)(void *)((char *)base + i * elem_bytes);
}

/* ------------------------------------------------------------------------------------ */
/* Layer arguments                                                                       */
/* ------------------------------------------------------------------------------------ */

/* 1x1 convolution over pixel rows [pixel_begin, pixel_end) and output channels
 * [oc_begin, oc_end):
 *   acc[p][o] = bias[o] + sum_i input[p*in_stride + i] * in_scale[i] * W[o][i]
 *   v = epilogue(acc);  if residual: v = clamp(v + residual[p*out_stride + o], residual_clamp)
 *   if output: output[p*out_stride + o] = v
 *   if channel_sums: channel_sums[o] += v   (sum over the rows of this call)
 * in_scale == NULL means all ones (the SE gate of the block, folded into the projection).
 * oc_begin is a multiple of the row's nr.
 * prefetch[0..prefetch_count) is memory later layers will stream (their weights): the
 * microkernels may touch part prefetch_part of prefetch_parts of each range, a cache line
 * at a time from their inner loop, so that the DRAM latency of the memory-bound layers
 * overlaps this layer's arithmetic. A hint only: the values are never read. */
typedef struct mnv3_pointwise_args {
    const float *input;
    size_t in_stride;
    const float *in_scale;
    const void *packed;          /* weights as the row's pack() laid them out */
    const float *bias;           /* may be NULL */
    mnv3_epilogue epilogue;
    const float *residual;       /* may be NULL */
    mnv3_clamp residual_clamp;
    float *output;               /* may be NULL when only channel_sums are wanted */
    size_t out_stride;
    float *channel_sums;         /* may be NULL */
    uint32_t in_channels, out_channels;
    size_t pixel_begin, pixel_end;
    uint32_t oc_begin, oc_end;
    void *workspace;             /* workspace_bytes() of the row, 64-byte aligned */
    const mnv3_prefetch_range *prefetch;
    uint32_t prefetch_count, prefetch_part, prefetch_parts;
} mnv3_pointwise_args;

/* Depthwise k x k convolution, NHWC, output rows [row_begin, row_end), all channels:
 *   acc = bias[c] + sum_{ky,kx} in[(oy*s + ky - pad_top), (ox*s + kx - pad_left), c] * W[ky][kx][c]
 * (taps outside the input contribute zero), v = epilogue(acc), output[oy][ox][c] = v,
 * and if channel_sums: channel_sums[c] += v (the SE squeeze, fused).
 * With in_ring_rows != 0 the input is a ring of that many rows (input row iy is stored at
 * row iy % in_ring_rows), which is how a fused expansion hands over a band of rows. */
typedef struct mnv3_depthwise_args {
    const float *input;
    uint32_t in_height, in_width, channels;
    const void *packed;
    const float *bias;
    uint32_t kernel, stride, pad_top, pad_left;
    uint32_t out_height, out_width;
    uint32_t row_begin, row_end;
    mnv3_epilogue epilogue;
    float *output;
    float *channel_sums;
    uint32_t in_ring_rows;
} mnv3_depthwise_args;

/* The input rows of a depthwise call's output rows, visited in increasing order. A ring's
 * slot is found with one division when the cursor starts (once per call, a band of rows)
 * and advanced by additions from there, so no loop divides. Element-type neutral: the
 * float and int8 drivers turn slots into row pointers. */
typedef struct mnv3_dw_cursor {
    long iy;     /* the first row inside the input of the last output row visited */
    size_t slot; /* where row iy is stored: iy, or iy % ring_rows */
    uint32_t stride, pad_top, kernel, in_height, ring_rows;
} mnv3_dw_cursor;

static inline void mnv3_dw_cursor_init(mnv3_dw_cursor *cur, uint32_t row_begin,
                                       uint32_t stride, uint32_t pad_top, uint32_t kernel,
                                       uint32_t in_height, uint32_t ring_rows) {
    const long iy0 = (long)row_begin * stride - (long)pad_top;
    cur->stride = stride;
    cur->pad_top = pad_top;
    cur->kernel = kernel;
    cur->in_height = in_height;
    cur->ring_rows = ring_rows;
    cur->iy = iy0 < 0 ? 0 : iy0;
    cur->slot = ring_rows ? (size_t)cur->iy % ring_rows : (size_t)cur->iy;
}

/* slots[ky], ky < kernel: the storage row of input row oy*stride - pad_top + ky, or -1
 * where that row lies in the padding. oy must not be below the previous call's. */
static inline void mnv3_dw_cursor_slots(mnv3_dw_cursor *cur, uint32_t oy, long *slots) {
    const long iy0 = (long)oy * cur->stride - (long)cur->pad_top, first = iy0 < 0 ? 0 : iy0;
    size_t slot;
    uint32_t ky;
    cur->slot += (size_t)(first - cur->iy);
    cur->iy = first;
    /* the cursor moved by at most a few strides: as many subtractions */
    if (cur->ring_rows)
        while (cur->slot >= cur->ring_rows) cur->slot -= cur->ring_rows;
    slot = cur->slot;
    for (ky = 0; ky < cur->kernel; ++ky) {
        const long iy = iy0 + (long)ky;
        if (iy < 0 || iy >= (long)cur->in_height) {
            slots[ky] = -1;
            continue;
        }
        slots[ky] = (long)slot;
        if (++slot == cur->ring_rows) slot = 0;
    }
}

static inline void mnv3_dw_cursor_start(const mnv3_depthwise_args *a, mnv3_dw_cursor *cur) {
    mnv3_dw_cursor_init(cur, a->row_begin, a->stride, a->pad_top, a->kernel, a->in_height,
                        a->in_ring_rows);
}

/* rows[ky], ky < kernel: first element of input row oy*stride - pad_top + ky, or NULL where
 * that row lies in the padding. oy must not be below the previous call's. */
static inline void mnv3_dw_rows(const mnv3_depthwise_args *a, mnv3_dw_cursor *cur, uint32_t oy,
                                const float **rows) {
    const size_t row_elems = (size_t)a->in_width * a->channels;
    long slots[MNV3_DW_MAX_KERNEL];
    uint32_t ky;
    mnv3_dw_cursor_slots(cur, oy, slots);
    for (ky = 0; ky < a->kernel; ++ky)
        rows[ky] = slots[ky] < 0 ? NULL : a->input + (size_t)slots[ky] * row_elems;
}

/* Dense k x k convolution (the stem) writing NHWC output rows [row_begin, row_end). The
 * input is addressed through element strides so NCHW and NHWC inputs need no copy:
 *   in(y, x, c) = input[y*in_row_stride + x*in_col_stride + c*in_chan_stride] */
typedef struct mnv3_conv_args {
    const float *input;
    uint32_t in_height, in_width, in_channels;
    size_t in_row_stride, in_col_stride, in_chan_stride;
    const void *packed;
    const float *bias;
    uint32_t out_channels, kernel, stride, pad_top, pad_left;
    uint32_t out_height, out_width;
    uint32_t row_begin, row_end;
    mnv3_epilogue epilogue;
    float *output;
} mnv3_conv_args;

/* Fully connected (matrix-vector) for outputs [out_begin, out_end):
 *   output[o] = epilogue(bias[o] + sum_i input[i] * W[o][i]) */
typedef struct mnv3_fc_args {
    const float *input;
    uint32_t in_features, out_features;
    const void *packed;
    const float *bias;
    mnv3_epilogue epilogue;
    float *output;
    uint32_t out_begin, out_end;
} mnv3_fc_args;

/* ------------------------------------------------------------------------------------ */
/* Microkernel arguments                                                                 */
/* ------------------------------------------------------------------------------------ */

/* GEMM tile: rows [0, mr) of A (mr is the microkernel's own) against one packed panel of
 * k rows x nr columns, of which the first nc are real outputs. Accumulators start at the
 * bias; then epilogue, residual (with the residual clamp), store, and channel sums, each
 * only where its pointer is set. The microkernel advances the prefetch cursor *pf by at
 * most one line per k step, up to pf_end. */
typedef struct mnv3_gemm_tile {
    const float *a;              /* row 0 of the input tile */
    size_t a_stride;             /* elements between rows */
    const void *w;               /* the panel */
    uint32_t k, nc;
    const float *bias;           /* at the panel's first column, or NULL */
    const void *params;          /* prepared by the row */
    const float *res;            /* residual at (row 0, column 0), or NULL */
    float *out;                  /* output at (row 0, column 0), or NULL */
    size_t out_stride;
    float *sums;                 /* channel sums at column 0, or NULL */
    const char **pf;
    const char *pf_end;
} mnv3_gemm_tile;
typedef void (*mnv3_gemm_ukernel)(const mnv3_gemm_tile *t);

/* Depthwise span: outputs [ox_begin, ox_end) of one output row, every channel. rows[ky]
 * is input row oy*stride - pad_top + ky (already resolved through a ring), or NULL where
 * that row lies in the padding. Outputs [ox_lo, ox_hi) have every horizontal tap inside
 * the input; the others are clipped. channel_sums, when set, get this span's outputs. */
typedef struct mnv3_dw_span {
    const float *const *rows;
    float *out;                  /* output element (oy, 0, 0) */
    float *sums;
    const void *w;
    const float *bias;
    const void *params;
    uint32_t channels, in_width, pad_left, stride, kernel;
    uint32_t ox_lo, ox_hi, ox_begin, ox_end;
    uint32_t pixel_major;        /* all channels of a group of outputs before the next
                                    group, instead of one channel vector across the span */
} mnv3_dw_span;
typedef void (*mnv3_dw_ukernel)(const mnv3_dw_span *s);

/* Dense conv row: outputs [0, out_width) of output row oy over every output channel, with
 * input rows [iy0 + ky_lo, iy0 + ky_hi) inside the image. No epilogue beyond `params`. */
typedef struct mnv3_conv_row {
    const mnv3_conv_args *a;
    float *out;                  /* output element (oy, 0, 0) */
    long iy0;
    uint32_t ky_lo, ky_hi, ox_lo, ox_hi;
    const void *params;
} mnv3_conv_row;
typedef void (*mnv3_conv_ukernel)(const mnv3_conv_row *r);

/* GEMV block: dots[j] = sum_i x[i] * w[(o0 + j) * n + i] for j in [0, count), count at
 * most the row's mr; bias and epilogue are the driver's. */
typedef void (*mnv3_gemv_ukernel)(const float *x, const void *w, uint32_t n, uint32_t count,
                                  float *dots);

/* ------------------------------------------------------------------------------------ */
/* Rows                                                                                  */
/* ------------------------------------------------------------------------------------ */

/* Packing: packed_bytes() is 0 when the row reads the canonical layout in place (then
 * pack is never called and `packed` is the canonical weights). Canonical layouts:
 * pointwise/fc [out][in], depthwise [kh][kw][channels], dense conv [out][kh][kw][in]. */
typedef void (*mnv3_prepare_fn)(const mnv3_epilogue *e, const mnv3_clamp *residual,
                                void *params);

typedef struct mnv3_pointwise_kernel mnv3_pointwise_kernel;
struct mnv3_pointwise_kernel {
    const char *name;
    mnv3_dtype weight_type, act_type;
    uint32_t mr;                 /* most rows of one tile */
    uint32_t nr;                 /* columns of a panel */
    uint32_t nr_min;             /* out_channels round up to this; a last panel may be this
                                    narrow, served by `narrow` */
    size_t (*packed_bytes)(uint32_t in_channels, uint32_t out_channels);
    void (*pack)(const void *weight, uint32_t in_channels, uint32_t out_channels,
                 void *packed);
    size_t (*workspace_bytes)(const mnv3_pointwise_kernel *row, uint32_t in_channels);
    mnv3_prepare_fn prepare;
    /* dst[r][k] = src[r][k] * scale[k]: the SE gate applied to a chunk of input rows */
    void (*scale_rows)(const float *src, size_t src_stride, const float *scale, uint32_t k,
                       uint32_t rows, float *dst, size_t dst_stride);
    mnv3_gemm_ukernel wide[MNV3_MAX_MR];   /* [mr - 1], panels nr wide */
    mnv3_gemm_ukernel narrow[MNV3_MAX_MR]; /* [mr - 1], panels nr_min wide */
    void (*run)(const mnv3_pointwise_kernel *row, const mnv3_pointwise_args *a);
    uint32_t packed_elem_bytes;  /* bytes of one packed weight (panels are K x nr of them);
                                    0: 4, a float */
};

/* Depthwise microkernels by shape; `any` serves every other kernel size and stride. */
enum { MNV3_DW_K3S1, MNV3_DW_K3S2, MNV3_DW_K5S1, MNV3_DW_K5S2, MNV3_DW_ANY, MNV3_DW_SHAPES };

typedef struct mnv3_depthwise_kernel mnv3_depthwise_kernel;
struct mnv3_depthwise_kernel {
    const char *name;
    mnv3_dtype weight_type, act_type;
    size_t (*packed_bytes)(uint32_t channels, uint32_t kernel);
    void (*pack)(const void *weight, uint32_t channels, uint32_t kernel, void *packed);
    mnv3_prepare_fn prepare;
    mnv3_dw_ukernel span[MNV3_DW_SHAPES];
    void (*run)(const mnv3_depthwise_kernel *row, const mnv3_depthwise_args *a);
};

typedef struct mnv3_conv_kernel mnv3_conv_kernel;
struct mnv3_conv_kernel {
    const char *name;
    mnv3_dtype weight_type, act_type;
    size_t (*packed_bytes)(uint32_t in_channels, uint32_t out_channels, uint32_t kernel);
    void (*pack)(const void *weight, uint32_t in_channels, uint32_t out_channels,
                 uint32_t kernel, void *packed);
    mnv3_prepare_fn prepare;
    mnv3_conv_ukernel row;
    void (*run)(const mnv3_conv_kernel *row, const mnv3_conv_args *a);
};

typedef struct mnv3_fc_kernel mnv3_fc_kernel;
struct mnv3_fc_kernel {
    const char *name;
    mnv3_dtype weight_type, act_type;
    uint32_t mr;                 /* outputs per gemv call */
    size_t (*packed_bytes)(uint32_t in_features, uint32_t out_features);
    void (*pack)(const void *weight, uint32_t in_features, uint32_t out_features,
                 void *packed);
    mnv3_gemv_ukernel gemv;
    void (*run)(const mnv3_fc_kernel *row, const mnv3_fc_args *a);
    uint32_t packed_elem_bytes;  /* bytes of one weight as gemv reads them; 0: 4, a float */
};

/* ------------------------------------------------------------------------------------ */
/* Kernel sets and dispatch                                                              */
/* ------------------------------------------------------------------------------------ */

/* One file's rows. Each list ends with a NULL pointer; a set may offer several rows of a
 * kind for different element types. */
typedef struct mnv3_kernel_set {
    mnv3_isa isa;
    const char *name;
    int (*supported)(void);      /* CPU and OS run it; NULL: always */
    const mnv3_pointwise_kernel *const *pointwise;
    const mnv3_depthwise_kernel *const *depthwise;
    const mnv3_conv_kernel *const *conv;
    const mnv3_fc_kernel *const *fc;
} mnv3_kernel_set;

/* The rows a context runs, resolved for one kernel set and element types. */
typedef struct mnv3_kernels {
    const mnv3_kernel_set *set;
    mnv3_isa isa;
    const mnv3_pointwise_kernel *pointwise;
    const mnv3_depthwise_kernel *depthwise;
    const mnv3_conv_kernel *conv;
    const mnv3_fc_kernel *fc;
    /* int8 rows, resolved for weight and activation type MNV3_DTYPE_I8 (the float rows
     * above are NULL then, and the float ones leave these NULL). */
    const struct mnv3_q8_kernel_set *q8_set;
    const struct mnv3_q8_pointwise_kernel *q8_pointwise;
    const struct mnv3_q8_depthwise_kernel *q8_depthwise;
    const struct mnv3_q8_conv_kernel *q8_conv;
    const struct mnv3_q8_fc_kernel *q8_fc;
} mnv3_kernels;

/* Resolves the rows of kernel set `isa` for the given weight and activation types, taking
 * the reference row for any kind the set does not offer. Returns 0 when the build or CPU
 * lacks the set, or no row of a kind handles the types. Weight and activation type
 * MNV3_DTYPE_I8 resolve the q8_* rows: the fastest int8 variant of that set id the CPU
 * runs. */
int mnv3_kernels_resolve(mnv3_isa isa, mnv3_dtype weight_type, mnv3_dtype act_type,
                         mnv3_kernels *out);
/* Number of kernel set ids (mnv3_isa values) this library knows, including AUTO. */
uint32_t mnv3_isa_count(void);

static inline void mnv3_call_pointwise(const mnv3_kernels *k, const mnv3_pointwise_args *a) {
    k->pointwise->run(k->pointwise, a);
}
static inline void mnv3_call_depthwise(const mnv3_kernels *k, const mnv3_depthwise_args *a) {
    k->depthwise->run(k->depthwise, a);
}
static inline void mnv3_call_conv(const mnv3_kernels *k, const mnv3_conv_args *a) {
    k->conv->run(k->conv, a);
}
static inline void mnv3_call_fc(const mnv3_kernels *k, const mnv3_fc_args *a) { k->fc->run(k->fc, a); }

/* ------------------------------------------------------------------------------------ */
/* int8 layers                                                                           */
/* ------------------------------------------------------------------------------------ */

/* Quantized layers follow TFLite's reference arithmetic (csrc/quant.h): int8 activations
 * with a per-tensor zero point, int8 weights with a per-tensor zero point and per-channel
 * multipliers, int32 biases. Every kernel set computes the same bytes as the reference
 * rows (reference_q8.c); integer sums may be taken in any order, requantization never
 * differs. All parameters are plain data that the network fills from the model; a pointer
 * left NULL turns its step off.
 *
 * One output of a conv or FC:
 *   acc = bias[o] + sum_k (x_k - in_zp) * (w_ok - weight_zp)      (int32; padding taps: 0)
 *   v = clamp(mnv3_q_requantize(acc, qmul[o]) + out_zp, act_lo, act_hi)
 *   if lut: v = lut[(uint8_t)(v + 128)] */
typedef struct mnv3_q8_requant {
    const mnv3_qmul *qmul;       /* per output channel, indexed by the absolute channel */
    int32_t out_zp;
    int32_t act_lo, act_hi;      /* the fused activation's range, within [-128, 127] */
    const int8_t *lut;           /* 256 bytes (an elementwise op on one 8-bit input), or NULL */
} mnv3_q8_requant;

/* SE gate (TFLite MUL of the input by a per-channel gate), materialised on the input rows
 * of a pointwise conv before its GEMM; the gated bytes have the conv's in_zp:
 *   x'_k = clamp(mnv3_q_requantize((x_k - x_zp) * (gate[k] - gate_zp), qmul) + in_zp,
 *                act_lo, act_hi) */
typedef struct mnv3_q8_gate {
    const int8_t *gate;          /* in_channels bytes; NULL: no gate */
    int32_t x_zp, gate_zp;       /* zero points of the ungated input and of the gate */
    mnv3_qmul qmul;              /* x_scale * gate_scale / gated_scale */
    int32_t act_lo, act_hi;      /* -128, 127 unless the MUL has a fused activation */
} mnv3_q8_gate;

/* Residual ADD (TFLite's quantized ADD, reference arithmetic) of a = the conv's output byte
 * (after requantization, clamp and LUT) and b = the residual byte:
 *   a' = mnv3_q_requantize((a - a_zp) << left_shift, a_mul)
 *   b' = mnv3_q_requantize((b - b_zp) << left_shift, b_mul)
 *   out = clamp(mnv3_q_requantize(a' + b', out_mul) + out_zp, act_lo, act_hi)
 * left_shift is 20 for int8 and uint8 tensors. */
typedef struct mnv3_q8_add {
    int32_t a_zp, b_zp;
    mnv3_qmul a_mul, b_mul, out_mul;
    int32_t left_shift;
    int32_t out_zp;
    int32_t act_lo, act_hi;
} mnv3_q8_add;

/* 1x1 convolution over pixel rows [pixel_begin, pixel_end) and output channels
 * [oc_begin, oc_end); input x[p][k] = input[p*in_stride + k] (gated when gate.gate is set):
 *   v = requant(acc) as above;  if residual: v = add(v, residual[p*out_stride + o])
 *   if output: output[p*out_stride + o] = v;  if channel_sums: channel_sums[o] += v
 * (int32 sums of the bytes written, over the rows of this call). oc_begin is a multiple of
 * the row's nr. `bias` and `weight_zp` are what the reference reads; packed rows fold them
 * (and in_zp) into their packed data at pack time, so they must be the values the weights
 * were packed with (mnv3_q8_weights). */
typedef struct mnv3_q8_pointwise_args {
    const int8_t *input;
    size_t in_stride;
    int32_t in_zp;
    mnv3_q8_gate gate;
    const void *packed;          /* weights as the row's pack() laid them out */
    const int32_t *bias;         /* may be NULL */
    int32_t weight_zp;
    mnv3_q8_requant requant;
    const int8_t *residual;      /* may be NULL */
    mnv3_q8_add add;             /* used when residual is set */
    int8_t *output;              /* may be NULL when only channel_sums are wanted */
    size_t out_stride;
    int32_t *channel_sums;       /* may be NULL */
    uint32_t in_channels, out_channels;
    size_t pixel_begin, pixel_end;
    uint32_t oc_begin, oc_end;
    void *workspace;             /* workspace_bytes() of the row, 64-byte aligned */
    const mnv3_prefetch_range *prefetch;
    uint32_t prefetch_count, prefetch_part, prefetch_parts;
} mnv3_q8_pointwise_args;

/* Depthwise k x k convolution, NHWC, output rows [row_begin, row_end), all channels, as
 * mnv3_depthwise_args (taps outside the input contribute zero, in_ring_rows the same
 * ring), per channel c: acc = bias[c] + sum (x - in_zp) * (w[ky][kx][c] - weight_zp),
 * v = requant(acc), output[oy][ox][c] = v, channel_sums[c] += v when set. */
typedef struct mnv3_q8_depthwise_args {
    const int8_t *input;
    uint32_t in_height, in_width, channels;
    int32_t in_zp;
    const void *packed;
    const int32_t *bias;         /* may be NULL */
    int32_t weight_zp;
    uint32_t kernel, stride, pad_top, pad_left;
    uint32_t out_height, out_width;
    uint32_t row_begin, row_end;
    mnv3_q8_requant requant;
    int8_t *output;
    int32_t *channel_sums;       /* may be NULL */
    uint32_t in_ring_rows;
    void *workspace;             /* workspace_bytes() of the row, 64-byte aligned */
} mnv3_q8_depthwise_args;

/* First element of input row iy (0 <= iy < in_height) of an int8 depthwise call. */
static inline const int8_t *mnv3_q8_dw_row(const mnv3_q8_depthwise_args *a, long iy) {
    const size_t r = a->in_ring_rows ? (size_t)iy % a->in_ring_rows : (size_t)iy;
    return a->input + r * a->in_width * a->channels;
}

/* Dense k x k convolution (the stem) writing NHWC output rows [row_begin, row_end), input
 * addressed through element strides as mnv3_conv_args (NHWC: in_chan_stride 1):
 *   acc = bias[o] + sum_{ky,kx,i} (in(y, x, i) - in_zp) * (W[o][ky][kx][i] - weight_zp) */
typedef struct mnv3_q8_conv_args {
    const int8_t *input;
    uint32_t in_height, in_width, in_channels;
    size_t in_row_stride, in_col_stride, in_chan_stride;
    int32_t in_zp;
    const void *packed;
    const int32_t *bias;         /* may be NULL */
    int32_t weight_zp;
    uint32_t out_channels, kernel, stride, pad_top, pad_left;
    uint32_t out_height, out_width;
    uint32_t row_begin, row_end;
    mnv3_q8_requant requant;
    int8_t *output;
    void *workspace;             /* workspace_bytes() of the row, 64-byte aligned */
} mnv3_q8_conv_args;

/* Fully connected (a 1x1 conv on a pooled vector: SE reduce/expand, the classifier) for
 * outputs [out_begin, out_end): output[o] = requant(bias[o] + sum_i (input[i] - in_zp) *
 * (W[o][i] - weight_zp)). */
typedef struct mnv3_q8_fc_args {
    const int8_t *input;
    int32_t in_zp;
    uint32_t in_features, out_features;
    const void *packed;
    const int32_t *bias;         /* may be NULL */
    int32_t weight_zp;
    mnv3_q8_requant requant;
    int8_t *output;
    uint32_t out_begin, out_end;
} mnv3_q8_fc_args;

/* What an int8 row packs: canonical weights (layouts as for float), the int32 bias and the
 * zero points that packing folds into the packed data. For depthwise, in_channels ==
 * out_channels == channels; for pointwise and FC, kernel == 1. */
typedef struct mnv3_q8_weights {
    const int8_t *weight;
    const int32_t *bias;         /* may be NULL */
    int32_t in_zp, weight_zp;
    uint32_t in_channels, out_channels, kernel;
} mnv3_q8_weights;

/* Rows. packed_bytes() is 0 when the row reads the canonical weights in place (then pack()
 * is never called and `packed` is the canonical weights), and SIZE_MAX when the packed
 * form does not fit in size_t. workspace_bytes() is what the args' workspace must hold
 * for layers of that size (0: none; SIZE_MAX: does not fit). */
typedef struct mnv3_q8_pointwise_kernel mnv3_q8_pointwise_kernel;
typedef struct mnv3_q8_depthwise_kernel mnv3_q8_depthwise_kernel;
typedef struct mnv3_q8_conv_kernel mnv3_q8_conv_kernel;
typedef struct mnv3_q8_fc_kernel mnv3_q8_fc_kernel;

struct mnv3_q8_pointwise_kernel {
    const char *name;
    mnv3_dtype weight_type, act_type;
    uint32_t mr, nr;             /* tile rows, panel columns (oc_begin is a multiple of nr) */
    size_t (*packed_bytes)(const mnv3_q8_weights *w);
    void (*pack)(const mnv3_q8_weights *w, void *packed);
    size_t (*workspace_bytes)(const mnv3_q8_pointwise_kernel *row, uint32_t in_channels);
    void (*run)(const mnv3_q8_pointwise_kernel *row, const mnv3_q8_pointwise_args *a);
    const void *impl;            /* the set's microkernels and helpers, for its driver */
};

struct mnv3_q8_depthwise_kernel {
    const char *name;
    mnv3_dtype weight_type, act_type;
    size_t (*packed_bytes)(const mnv3_q8_weights *w);
    void (*pack)(const mnv3_q8_weights *w, void *packed);
    size_t (*workspace_bytes)(const mnv3_q8_depthwise_kernel *row, uint32_t channels,
                              uint32_t kernel, uint32_t in_width);
    void (*run)(const mnv3_q8_depthwise_kernel *row, const mnv3_q8_depthwise_args *a);
    const void *impl;
};

struct mnv3_q8_conv_kernel {
    const char *name;
    mnv3_dtype weight_type, act_type;
    size_t (*packed_bytes)(const mnv3_q8_weights *w);
    void (*pack)(const mnv3_q8_weights *w, void *packed);
    size_t (*workspace_bytes)(const mnv3_q8_conv_kernel *row, uint32_t in_channels,
                              uint32_t kernel, uint32_t out_width);
    void (*run)(const mnv3_q8_conv_kernel *row, const mnv3_q8_conv_args *a);
    const void *impl;
};

struct mnv3_q8_fc_kernel {
    const char *name;
    mnv3_dtype weight_type, act_type;
    size_t (*packed_bytes)(const mnv3_q8_weights *w);
    void (*pack)(const mnv3_q8_weights *w, void *packed);
    void (*run)(const mnv3_q8_fc_kernel *row, const mnv3_q8_fc_args *a);
    const void *impl;
};

/* One file's int8 rows. `isas` is the mask (1u << mnv3_isa) of the kernel set ids it
 * serves: int8 variants are chosen within a set id by what the CPU has (the avx512 id
 * takes AVX512-VNNI rows, or the AVX2 rows on a CPU without VNNI; the neon id takes I8MM,
 * dot-product or plain rows). */
typedef struct mnv3_q8_kernel_set {
    const char *name;
    uint32_t isas;
    int (*supported)(void);      /* CPU and OS run it; NULL: always */
    const mnv3_q8_pointwise_kernel *const *pointwise;
    const mnv3_q8_depthwise_kernel *const *depthwise;
    const mnv3_q8_conv_kernel *const *conv;
    const mnv3_q8_fc_kernel *const *fc;
} mnv3_q8_kernel_set;

/* Every int8 kernel set of this build, fastest first, whether or not the CPU runs it: the
 * tests walk it to run each variant the CPU supports. */
const mnv3_q8_kernel_set *const *mnv3_q8_kernel_sets(uint32_t *count);
/* Whether the CPU runs the set. */
int mnv3_q8_set_supported(const mnv3_q8_kernel_set *set);
/* Fills out->q8_* from one int8 set (the reference rows for a kind it lacks), for tests
 * that force a variant; returns 0 when the CPU does not run the set. */
int mnv3_kernels_resolve_q8_set(const mnv3_q8_kernel_set *set, mnv3_dtype weight_type,
                                mnv3_dtype act_type, mnv3_kernels *out);

void mnv3_ref_q8_pointwise(const mnv3_q8_pointwise_args *args);
void mnv3_ref_q8_depthwise(const mnv3_q8_depthwise_args *args);
void mnv3_ref_q8_conv(const mnv3_q8_conv_args *args);
void mnv3_ref_q8_fc(const mnv3_q8_fc_args *args);

extern const mnv3_q8_kernel_set mnv3_q8_kernel_set_reference;

static inline void mnv3_call_q8_pointwise(const mnv3_kernels *k,
                                          const mnv3_q8_pointwise_args *a) {
    k->q8_pointwise->run(k->q8_pointwise, a);
}
static inline void mnv3_call_q8_depthwise(const mnv3_kernels *k,
                                          const mnv3_q8_depthwise_args *a) {
    k->q8_depthwise->run(k->q8_depthwise, a);
}
static inline void mnv3_call_q8_conv(const mnv3_kernels *k, const mnv3_q8_conv_args *a) {
    k->q8_conv->run(k->q8_conv, a);
}
static inline void mnv3_call_q8_fc(const mnv3_kernels *k, const mnv3_q8_fc_args *a) {
    k->q8_fc->run(k->q8_fc, a);
}

/* ------------------------------------------------------------------------------------ */
/* Drivers (drivers.c) and the reference (reference.c)                                   */
/* ------------------------------------------------------------------------------------ */

void mnv3_pointwise_driver(const mnv3_pointwise_kernel *row, const mnv3_pointwise_args *a);
void mnv3_depthwise_driver(const mnv3_depthwise_kernel *row, const mnv3_depthwise_args *a);
void mnv3_conv_driver(const mnv3_conv_kernel *row, const mnv3_conv_args *a);
void mnv3_fc_driver(const mnv3_fc_kernel *row, const mnv3_fc_args *a);
/* Rows of input a pointwise driver scales for the SE gate at once: its workspace. */
size_t mnv3_pointwise_driver_workspace(const mnv3_pointwise_kernel *row, uint32_t in_channels);
/* A row whose packed weights are narrower than its tiles read (float16 weights, float32
 * tiles) runs as mnv3_pointwise_driver_widened(row, tiles, widen, a): the driver widens
 * each panel into the workspace (once per chunk of rows, or the whole matrix once when it
 * is small) with widen(src, n, dst) and runs `tiles`' microkernels on it, which must match
 * the row's tile and panel shape. The row's workspace_bytes is then
 * mnv3_pointwise_widened_workspace. */
typedef void (*mnv3_widen_fn)(const void *src, size_t n, float *dst);
void mnv3_pointwise_driver_widened(const mnv3_pointwise_kernel *row,
                                   const mnv3_pointwise_kernel *tiles, mnv3_widen_fn widen,
                                   const mnv3_pointwise_args *a);
size_t mnv3_pointwise_widened_workspace(const mnv3_pointwise_kernel *row, uint32_t in_channels);

/* Squeeze-excite: gate = expand(reduce(mean)); see drivers.c. */
void mnv3_scale_channels(float *x, size_t pixels, uint32_t channels, const float *gate,
                         mnv3_clamp clamp);
/* The same on float16 activations (uint16_t encodings), in float32 and rounded once. */
void mnv3_scale_channels_f16(uint16_t *x, size_t pixels, uint32_t channels, const float *gate,
                             mnv3_clamp clamp);
/* dst[c] = clamp(scale * sum over slices of partial[slice][c]), adding slices in order. */
void mnv3_reduce_slices(const float *partial, uint32_t slices, uint32_t channels, float scale,
                        mnv3_clamp clamp, float *dst);

/* Output columns [ox_lo, ox_hi) of a k x k, stride s window whose taps all lie inside an
 * input of in_width columns (both out_width when there are none). */
void mnv3_interior_columns(uint32_t in_width, uint32_t out_width, uint32_t kernel,
                           uint32_t stride, uint32_t pad_left, uint32_t *ox_lo,
                           uint32_t *ox_hi);

void mnv3_ref_pointwise(const mnv3_pointwise_args *args);
void mnv3_ref_depthwise(const mnv3_depthwise_args *args);
void mnv3_ref_conv(const mnv3_conv_args *args);
void mnv3_ref_fc(const mnv3_fc_args *args);

extern const mnv3_kernel_set mnv3_kernel_set_reference;
#if defined(MNV3_HAVE_X86_KERNELS)
/* CPUID and the OS's saved register state (dispatch.c). */
int mnv3_cpu_has_avx2(void);
int mnv3_cpu_has_avx512f(void);
extern const mnv3_kernel_set mnv3_kernel_set_avx2;
extern const mnv3_kernel_set mnv3_kernel_set_avx512;
/* float16-weight rows of the same ids (F16C conversions) */
int mnv3_cpu_has_avx2_f16c(void);
int mnv3_cpu_has_avx512f_f16c(void);
extern const mnv3_kernel_set mnv3_kernel_set_avx2_f16;
extern const mnv3_kernel_set mnv3_kernel_set_avx512_f16;
/* Relaxed precision: bf16 products, float32 sums (vdpbf16ps) where the CPU has them. */
int mnv3_cpu_has_avx512bf16(void);
extern const mnv3_kernel_set mnv3_kernel_set_avx512_bf16;
#endif
#if defined(MNV3_HAVE_NEON_KERNELS)
extern const mnv3_kernel_set mnv3_kernel_set_neon;
extern const mnv3_kernel_set mnv3_kernel_set_neon_f16;
#if defined(__aarch64__)
/* Relaxed precision: float16 arithmetic where the CPU has it (HWCAP asimdhp). */
int mnv3_cpu_has_asimdhp(void);
extern const mnv3_kernel_set mnv3_kernel_set_neon_hp_f16w;
extern const mnv3_kernel_set mnv3_kernel_set_neon_hp_f32w;
#endif
/* The float32 set's GEMM row: the float16-weight and relaxed rows run its tiles on widened
 * weights. */
const mnv3_pointwise_kernel *mnv3_neon_f32_gemm_row(void);
/* dst[i] = src[i] for n float16 weights (arm_neon_f16.c; AArch64, and ARMv7 with the
 * half-precision extension). */
void mnv3_neon_widen_f16(const void *src, size_t n, float *dst);
#endif

/* A pointwise microkernel's prefetch cursor walks [*pf, *pf_end), the call's part of
 * each range in turn. Once the cursor is spent, this moves it to the next non-empty part,
 * if any (*next counts the ranges taken so far). */
static inline void mnv3_prefetch_next(const mnv3_pointwise_args *a, uint32_t *next,
                                      const char **pf, const char **pf_end) {
    while (*pf == *pf_end && *next < a->prefetch_count) {
        const mnv3_prefetch_range *r = &a->prefetch[(*next)++];
        const size_t lines = r->bytes / 64u;
        *pf = r->begin + lines * a->prefetch_part / a->prefetch_parts * 64u;
        *pf_end = r->begin + lines * (a->prefetch_part + 1u) / a->prefetch_parts * 64u;
    }
}

/* Touches the cursor's next line, if any; a microkernel does this once per k step. */
#define MNV3_PREFETCH_STEP(pf, pf_end)                                                       \
    do {                                                                                     \
        if ((pf) != (pf_end)) {                                                              \
            __builtin_prefetch((pf), 0, 3);                                                  \
            (pf) += 64;                                                                      \
        }                                                                                    \
    } while (0)

#endif
