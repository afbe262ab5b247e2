/* Inside the float rows: what the float drivers (drivers/float.c) and the per-ISA float
 * files share. Not part of the contract the runtime sees (kernels.h).
 *
 * Activations are float32 for every float row but those of relaxed precision, whose
 * act_type says how they are stored: float16 (ARMv8.2 FP16 arithmetic) or bf16
 * (AVX512-BF16); strides count elements either way. Biases, SE gates, channel sums, the stem's image and the FC
 * vectors stay float32 for every row. */
#ifndef MNV3_FLOAT_IMPL_H
#define MNV3_FLOAT_IMPL_H

#include "kernels.h"

/* Room for the microkernels' form of a layer's epilogue (vector constants). */
#define MNV3_PARAMS_BYTES 512
/* Largest pointwise row tile any set uses. */
#define MNV3_MAX_MR 12

/* Bytes of one activation element of a float row. */
static inline size_t mnv3_act_elem_bytes(mnv3_dtype act_type) { return mnv3_dtype_size(act_type); }

/* The parameters of every float row: the head the drivers read, then (at offset
 * MNV3_F32_UKERNEL_PARAMS) the epilogue as the row's microkernels want it. */
typedef struct mnv3_f32_params {
    const float *bias;           /* NULL: none */
    mnv3_epilogue epilogue;
    mnv3_clamp residual_clamp;
    mnv3_clamp gate_clamp;
    int gate_clamped;            /* gate_clamp is bounded: x * gate is clamped */
} mnv3_f32_params;

#define MNV3_F32_UKERNEL_PARAMS 64u
typedef char mnv3_f32_params_fit[sizeof(mnv3_f32_params) <= MNV3_F32_UKERNEL_PARAMS ? 1 : -1];

static inline const void *mnv3_f32_ukernel_params(const void *params) {
    return (const char *)params + MNV3_F32_UKERNEL_PARAMS;
}

/* The epilogue (and a pointwise layer's residual clamp, else NULL) as microkernel
 * parameters, MNV3_PARAMS_BYTES at most. */
typedef void (*mnv3_prepare_fn)(const mnv3_epilogue *e, const mnv3_clamp *residual,
                                void *params);

/* Every float impl starts with this: how its microkernels want the epilogue, and in how
 * many bytes (NULL, 0: they take none, the driver applies it). */
typedef struct mnv3_f32_impl_head {
    mnv3_prepare_fn prepare;
    uint32_t params_bytes;
} mnv3_f32_impl_head;

/* ------------------------------------------------------------------------------------ */
/* Microkernels                                                                          */
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
    const void *params;          /* the microkernels' parameters */
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
 * input rows [iy0 + ky_lo, iy0 + ky_hi) inside the image. */
typedef struct mnv3_conv_row {
    const mnv3_conv_args *a;
    float *out;                  /* output element (oy, 0, 0) */
    long iy0;
    uint32_t ky_lo, ky_hi, ox_lo, ox_hi;
    const float *bias;
    const void *params;          /* the microkernels' parameters */
} mnv3_conv_row;
typedef void (*mnv3_conv_ukernel)(const mnv3_conv_row *r);

/* GEMV block: dots[j] = sum_i x[i] * w[(o0 + j) * n + i] for j in [0, count), count at
 * most the row's mr; bias and epilogue are the driver's. */
typedef void (*mnv3_gemv_ukernel)(const float *x, const void *w, uint32_t n, uint32_t count,
                                  float *dots);

/* dst[i] = src[i] for n narrow weights (float16): a row whose packed weights are narrower
 * than its tiles read. */
typedef void (*mnv3_widen_fn)(const void *src, size_t n, float *dst);

/* ------------------------------------------------------------------------------------ */
/* What each float row's driver needs of it                                              */
/* ------------------------------------------------------------------------------------ */

typedef struct mnv3_f32_gemm_impl {
    mnv3_prepare_fn prepare;
    uint32_t params_bytes;
    uint32_t mr;                 /* most rows of one tile */
    uint32_t nr;                 /* columns of a panel */
    uint32_t nr_min;             /* out_channels round up to this; a last panel may be this
                                    narrow, served by `narrow` */
    uint32_t packed_elem_bytes;  /* bytes of one packed weight (panels are K x nr of them) */
    /* dst[r][k] = clamp(src[r][k] * scale[k]) (clamp only when clamped): the SE gate
     * applied to a chunk of input rows */
    void (*scale_rows)(const float *src, size_t src_stride, const float *scale, uint32_t k,
                       uint32_t rows, float *dst, size_t dst_stride, int clamped,
                       mnv3_clamp clamp);
    mnv3_gemm_ukernel wide[MNV3_MAX_MR];   /* [mr - 1], panels nr wide */
    mnv3_gemm_ukernel narrow[MNV3_MAX_MR]; /* [mr - 1], panels nr_min wide */
    /* Packed weights narrower than the tiles read (float16 for float32 tiles): the driver
     * widens each panel into the workspace with `widen` and runs `tiles` on it (the same
     * tile and panel shape); NULL: the tiles read the panels in place. */
    mnv3_widen_fn widen;
    const struct mnv3_f32_gemm_impl *tiles;
} mnv3_f32_gemm_impl;

/* Depthwise microkernels by shape; `any` serves every other kernel size and stride. */
enum { MNV3_DW_K3S1, MNV3_DW_K3S2, MNV3_DW_K5S1, MNV3_DW_K5S2, MNV3_DW_ANY, MNV3_DW_SHAPES };

typedef struct mnv3_f32_dw_impl {
    mnv3_prepare_fn prepare;
    uint32_t params_bytes;
    mnv3_dw_ukernel span[MNV3_DW_SHAPES];
} mnv3_f32_dw_impl;

typedef struct mnv3_f32_conv_impl {
    mnv3_prepare_fn prepare;
    uint32_t params_bytes;
    mnv3_conv_ukernel row;
} mnv3_f32_conv_impl;

typedef struct mnv3_f32_fc_impl {
    mnv3_prepare_fn prepare;
    uint32_t params_bytes;     /* NULL: the driver applies the epilogue */
    uint32_t mr;                 /* outputs per gemv call */
    uint32_t packed_elem_bytes;  /* bytes of one weight as gemv reads them */
    mnv3_gemv_ukernel gemv;
} mnv3_f32_fc_impl;

/* ------------------------------------------------------------------------------------ */
/* Drivers and the row functions float sets share (drivers/float.c)                      */
/* ------------------------------------------------------------------------------------ */

void mnv3_f32_pointwise_driver(const mnv3_row *row, const mnv3_pointwise_args *a);
void mnv3_f32_depthwise_driver(const mnv3_row *row, const mnv3_depthwise_args *a);
void mnv3_f32_conv_driver(const mnv3_row *row, const mnv3_conv_args *a);
void mnv3_f32_fc_driver(const mnv3_row *row, const mnv3_fc_args *a);

/* Parameters: the head from the layer, then the row's impl prepares the rest. */
size_t mnv3_f32_params_bytes(const mnv3_row *row, const mnv3_layer *l);
void mnv3_f32_prepare(const mnv3_row *row, const mnv3_layer *l, void *params);

/* Workspaces: the pointwise driver's (rows it gates at once, and widened panels when the
 * impl widens), none for the others. */
size_t mnv3_f32_pointwise_workspace(const mnv3_row *row, const mnv3_layer *l, uint32_t in_width,
                                    uint32_t out_width);

/* dst[c] = clamp(scale * sum over slices of partial[slice][c]), adding slices in order. */
void mnv3_reduce_slices(const float *partial, uint32_t slices, uint32_t channels, float scale,
                        mnv3_clamp clamp, float *dst);

#if defined(MNV3_HAVE_X86_KERNELS)
/* CPUID and the OS's saved register state (dispatch.c). */
int mnv3_cpu_has_avx2(void);
int mnv3_cpu_has_avx512f(void);
int mnv3_cpu_has_avx2_f16c(void);
int mnv3_cpu_has_avx512f_f16c(void);
int mnv3_cpu_has_avx512bf16(void);
extern const mnv3_kernel_set mnv3_kernel_set_avx2;
extern const mnv3_kernel_set mnv3_kernel_set_avx512;
extern const mnv3_kernel_set mnv3_kernel_set_avx2_f16w;
extern const mnv3_kernel_set mnv3_kernel_set_avx512_f16w;
extern const mnv3_kernel_set mnv3_kernel_set_avx512_bf16;
/* The float32 sets' GEMM tiles, which the float16-weight rows run on widened weights. */
extern const mnv3_f32_gemm_impl mnv3_avx2_f32_gemm;
extern const mnv3_f32_gemm_impl mnv3_avx512_f32_gemm;
#endif
#if defined(MNV3_HAVE_NEON_KERNELS)
extern const mnv3_kernel_set mnv3_kernel_set_neon;
extern const mnv3_kernel_set mnv3_kernel_set_neon_f16w;
#if defined(__aarch64__)
/* Relaxed precision: float16 arithmetic where the CPU has it (HWCAP asimdhp). */
int mnv3_cpu_has_asimdhp(void);
extern const mnv3_kernel_set mnv3_kernel_set_neon_f16;
extern const mnv3_kernel_set mnv3_kernel_set_neon_f16_f32w;
#endif
/* The float32 set's GEMM tiles: the float16-weight and relaxed rows run them on widened
 * weights. */
extern const mnv3_f32_gemm_impl mnv3_neon_f32_gemm;
/* dst[i] = src[i] for n float16 weights (neon_f16w.c; AArch64, and ARMv7 with the
 * half-precision extension). */
void mnv3_neon_widen_f16(const void *src, size_t n, float *dst);
#endif

#endif
