/* The kernel contract: what the runtime sees of the kernels, for every precision.
 *
 * A layer kind (pointwise, depthwise, dense conv, fully connected) has one argument struct,
 * whatever the element types: the executor hands one thread a sub-range of one layer, with
 * activations NHWC (one pixel is `channels` contiguous elements) and different ranges never
 * writing the same element.
 *
 * A row (mnv3_row) runs one layer kind for one combination of element types: the model's
 * weights, the activations stored between layers, and the arithmetic of the products. It
 * says how its weights are packed and how its per-layer parameters are prepared (both once
 * per model and kernel set, from an mnv3_layer), how much workspace a thread needs, and
 * `run`, which executes a layer's arguments. Everything a precision needs beyond that (the
 * int8 SE gate read in a GEMM's prologue, a residual add in its epilogue, channel sums) is
 * a property of the row, inside its parameters and its drivers, not of the executor.
 *
 * A kernel set (mnv3_kernel_set) is one file's rows, the kernel set ids (mnv3_isa) it
 * serves and how to tell whether the CPU runs it. dispatch.c lists the sets fastest first
 * and resolves a context's rows (mnv3_kernels): per kind, the first row of the id's sets
 * the CPU runs that handles the element types, else the scalar reference's.
 *
 * Inside a row (drivers, microkernels): float_impl.h and q8_impl.h. */
#ifndef MNV3_KERNELS_H
#define MNV3_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/epilogue.h"
#include "base/q8.h"
#include "mnv3.h"

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

/* The AArch64 float16-arithmetic, dot-product and int8 matrix-multiply sets are chosen at
 * run time, their functions compiled for the extension by a target attribute. clang
 * before 16 (Apple clang before 15) takes no architecture in that attribute on AArch64
 * and declares those intrinsics only when the whole file targets the extension
 * (-march=...+fp16, +dotprod, +i8mm), so with it a set is built only then. */
#if defined(MNV3_HAVE_NEON_KERNELS) && defined(__aarch64__)
#if defined(__clang__) && ((defined(__apple_build_version__) && __clang_major__ < 15) ||   \
                           (!defined(__apple_build_version__) && __clang_major__ < 16))
#define MNV3_NEON_EXTENSIONS_BY_FILE 1
#endif
#if !defined(MNV3_NEON_EXTENSIONS_BY_FILE) || defined(__ARM_FEATURE_FP16_VECTOR_ARITHMETIC)
#define MNV3_HAVE_NEON_FP16 1
#endif
#if !defined(MNV3_NEON_EXTENSIONS_BY_FILE) || defined(__ARM_FEATURE_DOTPROD)
#define MNV3_HAVE_NEON_DOT 1
#endif
#if defined(MNV3_HAVE_NEON_DOT) &&                                                           \
    (!defined(MNV3_NEON_EXTENSIONS_BY_FILE) || defined(__ARM_FEATURE_MATMUL_INT8))
#define MNV3_HAVE_NEON_I8MM 1
#endif
#endif

/* Largest depthwise kernel side the drivers walk rows for. */
#define MNV3_DW_MAX_KERNEL 11
/* Largest dense conv (stem) kernel side the drivers walk rows for. */
#define MNV3_CONV_MAX_KERNEL 11

/* ------------------------------------------------------------------------------------ */
/* Layer arguments                                                                       */
/* ------------------------------------------------------------------------------------ */

/* Memory that later layers will stream (their weights): a pointwise row may touch part
 * prefetch_part of prefetch_parts of each range, a cache line at a time from its inner
 * loop, so that the DRAM latency of the memory-bound layers overlaps this layer's
 * arithmetic. A hint only: the values are never read. */
typedef struct mnv3_prefetch_range {
    const char *begin;
    size_t bytes;
} mnv3_prefetch_range;

/* Activation pointers below address elements of the row's act_type; strides and counts
 * are in elements. `packed` is what the row's pack() wrote (the canonical weights when it
 * packs nothing) and `params` what its prepare() wrote, for this layer. Channel sums are
 * float32 for float rows and int32 (sums of the bytes written) for int8 rows. */

/* 1x1 convolution over pixel rows [pixel_begin, pixel_end) and output channels
 * [oc_begin, oc_end) (oc_begin a multiple of the row's nr):
 *   x[p][k] = input[p*in_stride + k], gated by gate[k] when a gate is set (the SE gate of
 *             the block: float32 scales, or int8 gate bytes, as the row's parameters say)
 *   v = the row's epilogue of the accumulator of x[p] . W[o]
 *   with a residual, v = the row's add of v and residual[p*out_stride + o]
 *   if output: output[p*out_stride + o] = v;  if channel_sums: channel_sums[o] += v */
typedef struct mnv3_pointwise_args {
    const void *input;
    size_t in_stride;
    const void *gate;            /* NULL: none */
    const void *packed, *params;
    const void *residual;        /* NULL: none */
    void *output;                /* NULL when only channel sums are wanted */
    size_t out_stride;
    void *channel_sums;          /* NULL: none */
    uint32_t in_channels, out_channels;
    size_t pixel_begin, pixel_end;
    uint32_t oc_begin, oc_end;
    void *workspace;             /* workspace_bytes() of the row, 64-byte aligned */
    const mnv3_prefetch_range *prefetch;
    uint32_t prefetch_count, prefetch_part, prefetch_parts;
} mnv3_pointwise_args;

/* Depthwise k x k convolution, NHWC, output rows [row_begin, row_end), all channels:
 *   acc = sum over taps inside the input of in[oy*s + ky - pad_top][ox*s + kx - pad_left][c]
 *         times W[ky][kx][c] (taps outside the input contribute zero)
 *   output[oy][ox][c] = the row's epilogue of acc;  channel_sums[c] += it when set.
 * With in_ring_rows != 0 the input is a ring of that many rows (input row iy is stored at
 * row iy % in_ring_rows), which is how a fused expansion hands over a band of rows. */
typedef struct mnv3_depthwise_args {
    const void *input;
    uint32_t in_height, in_width, channels;
    const void *packed, *params;
    uint32_t kernel, stride, pad_top, pad_left;
    uint32_t out_height, out_width;
    uint32_t row_begin, row_end;
    void *output;
    void *channel_sums;
    uint32_t in_ring_rows;
    void *workspace;
} mnv3_depthwise_args;

/* Dense k x k convolution (the stem) writing NHWC output rows [row_begin, row_end). The
 * input is addressed through element strides so NCHW and NHWC inputs need no copy:
 *   in(y, x, c) = input[y*in_row_stride + x*in_col_stride + c*in_chan_stride]
 * The input's element type is the row's (float32 for float rows, int8 for int8 rows). */
typedef struct mnv3_conv_args {
    const void *input;
    uint32_t in_height, in_width, in_channels;
    size_t in_row_stride, in_col_stride, in_chan_stride;
    const void *packed, *params;
    uint32_t out_channels, kernel, stride, pad_top, pad_left;
    uint32_t out_height, out_width;
    uint32_t row_begin, row_end;
    void *output;
    void *workspace;
} mnv3_conv_args;

/* Fully connected (a 1x1 conv on a pooled vector: SE reduce/expand, the classifier) for
 * outputs [out_begin, out_end): output[o] = the row's epilogue of input . W[o]. The vectors
 * are float32 for float rows (whatever their act_type) and int8 for int8 rows. */
typedef struct mnv3_fc_args {
    const void *input;
    uint32_t in_features, out_features;
    const void *packed, *params;
    void *output;
    uint32_t out_begin, out_end;
} mnv3_fc_args;

/* ------------------------------------------------------------------------------------ */
/* Layers as the rows see them                                                           */
/* ------------------------------------------------------------------------------------ */

/* int8 layers follow TFLite's reference arithmetic (base/q8.h): int8 activations with a
 * per-tensor zero point, int8 weights with a per-tensor zero point and per-channel
 * multipliers, int32 biases. Every kernel set computes the same bytes as the reference
 * rows; integer sums may be taken in any order, requantization never differs. One output:
 *   acc = bias[o] + sum_k (x_k - in_zp) * (w_ok - weight_zp)      (int32; padding taps: 0)
 *   v = clamp(mnv3_q8_requantize(acc, qmul[o]) + out_zp, act_lo, act_hi)
 *   if lut: v = lut[(uint8_t)(v + 128)] */
typedef struct mnv3_q8_requant {
    const mnv3_q8_mul *qmul;       /* per output channel, indexed by the absolute channel */
    int32_t out_zp;
    int32_t act_lo, act_hi;      /* the fused activation's range, within [-128, 127] */
    const int8_t *lut;           /* 256 bytes (an elementwise op on one 8-bit input), or NULL */
} mnv3_q8_requant;

/* SE gate (TFLite MUL of the input by a per-channel gate), applied to the input bytes of a
 * pointwise conv in its prologue; the gated bytes have the conv's in_zp:
 *   x'_k = clamp(mnv3_q8_requantize((x_k - x_zp) * (gate[k] - gate_zp), qmul) + in_zp,
 *                act_lo, act_hi) */
typedef struct mnv3_q8_gate {
    const int8_t *gate;          /* in_channels bytes: a call's gate (NULL in a layer) */
    int32_t x_zp, gate_zp;       /* zero points of the ungated input and of the gate */
    mnv3_q8_mul qmul;              /* x_scale * gate_scale / gated_scale */
    int32_t act_lo, act_hi;      /* -128, 127 unless the MUL has a fused activation */
} mnv3_q8_gate;

/* Residual ADD (TFLite's quantized ADD, reference arithmetic) of a = the conv's output byte
 * (after requantization, clamp and LUT) and b = the residual byte:
 *   a' = mnv3_q8_requantize((a - a_zp) << left_shift, a_mul)
 *   b' = mnv3_q8_requantize((b - b_zp) << left_shift, b_mul)
 *   out = clamp(mnv3_q8_requantize(a' + b', out_mul) + out_zp, act_lo, act_hi)
 * left_shift is 20 for int8 and uint8 tensors. */
typedef struct mnv3_q8_add {
    int32_t a_zp, b_zp;
    mnv3_q8_mul a_mul, b_mul, out_mul;
    int32_t left_shift;
    int32_t out_zp;
    int32_t act_lo, act_hi;
} mnv3_q8_add;

typedef enum mnv3_row_kind {
    MNV3_ROW_POINTWISE = 0,
    MNV3_ROW_DEPTHWISE = 1,
    MNV3_ROW_CONV = 2,
    MNV3_ROW_FC = 3,
    MNV3_ROW_KINDS = 4
} mnv3_row_kind;

/* One conv of the network: plain data the runtime fills from the model, from which a row
 * packs its weights and prepares its parameters. Canonical weight layouts: pointwise and
 * fc [out][in], depthwise [kh][kw][channels], dense conv [out][kh][kw][in]. For depthwise
 * layers in_channels == out_channels; pointwise and fc have kernel 1. */
typedef struct mnv3_layer {
    mnv3_row_kind kind;
    uint32_t in_channels, out_channels, kernel, stride;
    mnv3_dtype weight_type;
    const void *weight;
    const void *bias;            /* float32, or int32 for int8 layers; NULL: none */
    /* float layers */
    mnv3_epilogue epilogue;
    mnv3_clamp residual_clamp;   /* pointwise: clamp of v + residual */
    mnv3_clamp gate_clamp;       /* pointwise: clamp of x * gate */
    /* int8 layers */
    int32_t in_zp, weight_zp;
    mnv3_q8_requant requant;
    mnv3_q8_gate gate;           /* pointwise after a squeeze-excite */
    mnv3_q8_add add;             /* pointwise with a residual */
} mnv3_layer;

/* ------------------------------------------------------------------------------------ */
/* Rows                                                                                  */
/* ------------------------------------------------------------------------------------ */

typedef struct mnv3_row mnv3_row;

typedef void (*mnv3_pointwise_fn)(const mnv3_row *row, const mnv3_pointwise_args *a);
typedef void (*mnv3_depthwise_fn)(const mnv3_row *row, const mnv3_depthwise_args *a);
typedef void (*mnv3_conv_fn)(const mnv3_row *row, const mnv3_conv_args *a);
typedef void (*mnv3_fc_fn)(const mnv3_row *row, const mnv3_fc_args *a);

/* `run` of a row of each kind, typed by the kind. */
typedef union mnv3_row_run {
    mnv3_pointwise_fn pointwise;
    mnv3_depthwise_fn depthwise;
    mnv3_conv_fn conv;
    mnv3_fc_fn fc;
} mnv3_row_run;

/* Sizes: 0 means none (packed_bytes 0: the row reads the canonical weights in place, and
 * pack is never called); SIZE_MAX means the size does not fit in size_t. */
struct mnv3_row {
    const char *name;            /* the microkernel family, e.g. "f32_gemm_8x32__avx512" */
    mnv3_row_kind kind;
    mnv3_dtype weight_type;      /* the model's weights it reads or packs */
    mnv3_dtype act_type;         /* activations between layers */
    mnv3_dtype arith;            /* products: F32, F16, BF16 or I8 */
    uint32_t nr;                 /* pointwise: oc_begin is a multiple of this */
    size_t (*packed_bytes)(const mnv3_row *row, const mnv3_layer *l);
    void (*pack)(const mnv3_row *row, const mnv3_layer *l, void *packed);
    size_t (*params_bytes)(const mnv3_row *row, const mnv3_layer *l);
    void (*prepare)(const mnv3_row *row, const mnv3_layer *l, void *params);
    /* per thread, for a layer of this kind whose input rows are in_width wide and whose
     * output rows are out_width wide */
    size_t (*workspace_bytes)(const mnv3_row *row, const mnv3_layer *l, uint32_t in_width,
                              uint32_t out_width);
    mnv3_row_run run;
    const void *impl;            /* the row's microkernels and helpers, for its driver */
};

/* A row that reads the canonical weights in place, and one that needs no workspace. */
size_t mnv3_no_packing(const mnv3_row *row, const mnv3_layer *l);
size_t mnv3_no_workspace(const mnv3_row *row, const mnv3_layer *l, uint32_t in_width,
                         uint32_t out_width);

/* ------------------------------------------------------------------------------------ */
/* The int8 network's input                                                              */
/* ------------------------------------------------------------------------------------ */

/* The int8 stem reads NHWC bytes; an image arrives as floats to quantize, or as the
 * model's own bytes, in either layout. These turn one image of `pixels` pixels of 3
 * channels into those bytes at `out`, which overlaps no input. In planar (NCHW) input,
 * channel c of pixel p is at c * plane + p. Every set computes the same bytes: those of
 * mnv3_q8_quantize_one (base/q8.h) for floats, which needs zp in [-128, 127] (the loader
 * checks it). */
typedef struct mnv3_q8_input_ops {
    /* out[i] = mnv3_q8_quantize_one(x[i], scale, zp) for i < n */
    void (*quantize)(const float *x, size_t n, float scale, int32_t zp, int8_t *out);
    /* out[3p + c] = mnv3_q8_quantize_one(x[c * plane + p], scale, zp) for p < pixels */
    void (*quantize_planes)(const float *x, size_t plane, size_t pixels, float scale,
                            int32_t zp, int8_t *out);
    /* out[i] = x[i] ^ 0x80 for i < n: uint8 bytes as the int8 bytes x - 128 */
    void (*from_uint8)(const uint8_t *x, size_t n, int8_t *out);
    /* out[3p + c] = x[c * plane + p] ^ flip for p < pixels; flip is 0 or 0x80 */
    void (*interleave_planes)(const uint8_t *x, size_t plane, size_t pixels, uint8_t flip,
                              int8_t *out);
} mnv3_q8_input_ops;

/* The portable definitions (reference/reference.c), which the SIMD sets also run on the
 * elements after their last whole vector. */
extern const mnv3_q8_input_ops mnv3_q8_input_portable;
void mnv3_q8_quantize_planes_portable(const float *x, size_t plane, size_t pixels, float scale,
                                      int32_t zp, int8_t *out);
void mnv3_q8_from_uint8_portable(const uint8_t *x, size_t n, int8_t *out);
void mnv3_q8_interleave_planes_portable(const uint8_t *x, size_t plane, size_t pixels,
                                        uint8_t flip, int8_t *out);

/* ------------------------------------------------------------------------------------ */
/* Kernel sets and dispatch                                                              */
/* ------------------------------------------------------------------------------------ */

/* One file's rows (NULL-terminated), the kernel set ids it serves (mask of 1u << mnv3_isa)
 * and whether the CPU runs them. Several sets may serve one id: rows for other element
 * types (float16 weights, relaxed arithmetic), or int8 variants chosen by what the CPU has
 * (the avx512 id takes AVX512-VNNI rows where there is VNNI, else the AVX2 ones). An int8
 * set also says how its CPU turns an image into the stem's bytes. */
typedef struct mnv3_kernel_set {
    const char *name;
    uint32_t isas;
    int (*supported)(void);      /* CPU and OS run it; NULL: always */
    const mnv3_row *const *rows;
    const mnv3_q8_input_ops *q8_input; /* NULL: none of its own */
} mnv3_kernel_set;

/* The rows a context runs: one per kind, and the set each came from; and the int8 input
 * conversions. */
typedef struct mnv3_kernels {
    mnv3_isa isa;
    const mnv3_row *row[MNV3_ROW_KINDS];
    const mnv3_kernel_set *set[MNV3_ROW_KINDS];
    const mnv3_q8_input_ops *q8_input;
} mnv3_kernels;

/* Resolves kernel set id `isa` for the model's weight type and the arithmetic: per kind,
 * the first row of the id's sets that the CPU runs, else the scalar reference's; the input
 * conversions likewise, whatever the types. Returns 0 when the build or CPU lacks the id, a
 * kind has no row for the types, or the rows do not agree on the activation type. */
int mnv3_kernels_resolve(mnv3_isa isa, mnv3_dtype weight_type, mnv3_dtype arith,
                         mnv3_kernels *out);
/* The same from one set alone (the reference for a kind it lacks), for tests that force a
 * variant; 0 also when the CPU does not run the set. */
int mnv3_kernels_resolve_set(const mnv3_kernel_set *set, mnv3_dtype weight_type,
                             mnv3_dtype arith, mnv3_kernels *out);
/* Every kernel set of this build, fastest first, whether or not the CPU runs it. */
const mnv3_kernel_set *const *mnv3_kernel_sets(uint32_t *count);
int mnv3_kernel_set_supported(const mnv3_kernel_set *set);
/* Number of kernel set ids (mnv3_isa values) this library knows, including AUTO. */
uint32_t mnv3_isa_count(void);

/* The activation type of resolved rows, and its element size. */
static inline mnv3_dtype mnv3_kernels_act_type(const mnv3_kernels *k) {
    return k->row[MNV3_ROW_POINTWISE]->act_type;
}

static inline void mnv3_call_pointwise(const mnv3_kernels *k, const mnv3_pointwise_args *a) {
    const mnv3_row *r = k->row[MNV3_ROW_POINTWISE];
    r->run.pointwise(r, a);
}
static inline void mnv3_call_depthwise(const mnv3_kernels *k, const mnv3_depthwise_args *a) {
    const mnv3_row *r = k->row[MNV3_ROW_DEPTHWISE];
    r->run.depthwise(r, a);
}
static inline void mnv3_call_conv(const mnv3_kernels *k, const mnv3_conv_args *a) {
    const mnv3_row *r = k->row[MNV3_ROW_CONV];
    r->run.conv(r, a);
}
static inline void mnv3_call_fc(const mnv3_kernels *k, const mnv3_fc_args *a) {
    const mnv3_row *r = k->row[MNV3_ROW_FC];
    r->run.fc(r, a);
}

/* The scalar oracle (reference/reference.c), the `run` of the reference rows: any row whose
 * `packed` are the canonical weights and whose parameters have the layout of its
 * arithmetic's (float_impl.h, q8_impl.h) may run on it. */
void mnv3_reference_pointwise(const mnv3_row *row, const mnv3_pointwise_args *a);
void mnv3_reference_depthwise(const mnv3_row *row, const mnv3_depthwise_args *a);
void mnv3_reference_conv(const mnv3_row *row, const mnv3_conv_args *a);
void mnv3_reference_fc(const mnv3_row *row, const mnv3_fc_args *a);

extern const mnv3_kernel_set mnv3_kernel_set_reference;

/* ------------------------------------------------------------------------------------ */
/* Walks every driver shares                                                             */
/* ------------------------------------------------------------------------------------ */

/* Element i of an activation buffer whose elements are elem_bytes wide. */
static inline const void *mnv3_elem_at(const void *base, size_t i, size_t elem_bytes) {
    return (const char *)base + i * elem_bytes;
}
static inline void *mnv3_elem_at_mut(void *base, size_t i, size_t elem_bytes) {
    return (char *)base + i * elem_bytes;
}

/* The input rows of a depthwise call's output rows, visited in increasing order. A ring's
 * slot is found with one division when the cursor starts (once per call, a band of rows)
 * and advanced by additions from there, so no loop divides. */
typedef struct mnv3_dw_cursor {
    long iy;     /* the first row inside the input of the last output row visited */
    size_t slot; /* where row iy is stored: iy, or iy % ring_rows */
    size_t row_bytes;
    const char *input;
    uint32_t stride, pad_top, kernel, in_height, ring_rows;
} mnv3_dw_cursor;

static inline void mnv3_dw_cursor_start(const mnv3_depthwise_args *a, size_t elem_bytes,
                                        mnv3_dw_cursor *cur) {
    const long iy0 = (long)a->row_begin * a->stride - (long)a->pad_top;
    cur->stride = a->stride;
    cur->pad_top = a->pad_top;
    cur->kernel = a->kernel;
    cur->in_height = a->in_height;
    cur->ring_rows = a->in_ring_rows;
    cur->input = (const char *)a->input;
    cur->row_bytes = (size_t)a->in_width * a->channels * elem_bytes;
    cur->iy = iy0 < 0 ? 0 : iy0;
    cur->slot = cur->ring_rows ? (size_t)cur->iy % cur->ring_rows : (size_t)cur->iy;
}

/* rows[ky], ky < kernel: the first byte of input row oy*stride - pad_top + ky, or NULL
 * where that row lies in the padding. oy must not be below the previous call's. */
static inline void mnv3_dw_cursor_rows(mnv3_dw_cursor *cur, uint32_t oy, const void **rows) {
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
            rows[ky] = NULL;
            continue;
        }
        rows[ky] = cur->input + slot * cur->row_bytes;
        if (++slot == cur->ring_rows) slot = 0;
    }
}

/* Output columns [ox_lo, ox_hi) of a k x k, stride s window whose taps all lie inside an
 * input of in_width columns (both out_width when there are none). */
void mnv3_interior_columns(uint32_t in_width, uint32_t out_width, uint32_t kernel,
                           uint32_t stride, uint32_t pad_left, uint32_t *ox_lo,
                           uint32_t *ox_hi);

/* A pointwise row's prefetch cursor walks [pf, pf_end), the call's part of each range in
 * turn; next() moves a spent cursor to the next non-empty part, if any. */
typedef struct mnv3_prefetch_cursor {
    const mnv3_prefetch_range *ranges;
    uint32_t count, part, parts, next;
    const char *pf, *pf_end;
} mnv3_prefetch_cursor;

static inline void mnv3_prefetch_start(const mnv3_pointwise_args *a, mnv3_prefetch_cursor *c) {
    c->ranges = a ? a->prefetch : NULL;
    c->count = a ? a->prefetch_count : 0;
    c->part = a ? a->prefetch_part : 0;
    c->parts = a && a->prefetch_parts ? a->prefetch_parts : 1;
    c->next = 0;
    c->pf = c->pf_end = NULL;
}

static inline void mnv3_prefetch_next(mnv3_prefetch_cursor *c) {
    while (c->pf == c->pf_end && c->next < c->count) {
        const mnv3_prefetch_range *r = &c->ranges[c->next++];
        const size_t lines = r->bytes / 64u;
        c->pf = r->begin + lines * c->part / c->parts * 64u;
        c->pf_end = r->begin + lines * (c->part + 1u) / c->parts * 64u;
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

/* The same for a loop iteration of two k steps: one test when the cursor is done. */
#define MNV3_PREFETCH_STEP2(pf, pf_end)                                                      \
    do {                                                                                     \
        if ((pf) != (pf_end)) {                                                              \
            __builtin_prefetch((pf), 0, 3);                                                  \
            (pf) += 64;                                                                      \
            MNV3_PREFETCH_STEP(pf, pf_end);                                                  \
        }                                                                                    \
    } while (0)

static inline uint32_t mnv3_round_up_u32(uint32_t x, uint32_t m) { return (x + m - 1) / m * m; }

/* The tile loop every GEMM driver walks: `left` rows split into as few chunks of at most
 * `most` rows as possible, all of one size (give or take one), so that no chunk is a
 * short tail; and within a chunk, tiles of at most mr rows balanced the same way (49 rows
 * of 8-row tiles: 7 x 7, not 6 x 8 + 1, since a one-row tile costs nearly as much as a
 * full one). Both splits are computed once, not per chunk or per tile (their divisions
 * showed in profiles): `count` parts, the first `longer` of `rows + 1` rows and the
 * others of `rows`. */
typedef struct mnv3_chunk_split {
    size_t count, rows, longer;
} mnv3_chunk_split;

static inline mnv3_chunk_split mnv3_split_chunks(size_t left, size_t most) {
    mnv3_chunk_split s;
    s.count = (left + most - 1) / most;
    s.rows = s.count ? left / s.count : 0;
    s.longer = s.count ? left % s.count : 0;
    return s;
}

static inline size_t mnv3_chunk_split_rows(const mnv3_chunk_split *s, size_t chunk) {
    return s->rows + (chunk < s->longer);
}

typedef struct mnv3_tile_split {
    uint32_t count, rows, longer;
} mnv3_tile_split;

/* A chunk of at most mr rows (a small layer's, whose chunks are single tiles) is split
 * without dividing. */
static inline mnv3_tile_split mnv3_split_tiles(uint32_t left, uint32_t mr) {
    mnv3_tile_split s;
    if (left <= mr) {
        s.count = left ? 1u : 0u;
        s.rows = left;
        s.longer = 0;
        return s;
    }
    s.count = (left + mr - 1) / mr;
    s.rows = left / s.count;
    s.longer = left % s.count;
    return s;
}

static inline uint32_t mnv3_split_rows(const mnv3_tile_split *s, uint32_t tile) {
    return s->rows + (tile < s->longer);
}

#endif
