/* Inside the int8 rows: what the int8 drivers (drivers/q8.c) and the per-ISA int8 files
 * share. Not part of the kernel contract the runtime sees (kernels.h).
 *
 * Pointwise and FC layers run one GEMM shape. The driver prepares input rows into the
 * workspace in the form the set's microkernels multiply (the A format: int8, int8 ^ 0x80
 * for u8 x s8 dot products, or int16 x - in_zp for 16-bit multiplies), with the SE gate
 * applied and K padded with zeros to the set's kr; the FC's one row is the pooled vector.
 * Microkernels multiply a tile of prepared rows by one packed panel, requantize once, and
 * store bytes; the driver then applies what remains per byte (LUT, residual ADD, channel
 * sums). The stem reads its taps straight from the input rows instead (mnv3_q8_conv_impl).
 *
 * Zero points are folded so the k loop is pure products. With a = the prepared value,
 * a_off = 0 (int8) or 128 (u8), and W = w - weight_zp:
 *   sum_k (x - zx) * W = sum_k a*w - weight_zp * sum_k a - (zx + a_off) * sum_k W
 * The last term goes into the packed bias, the middle one is a per-row term the driver
 * computes only when weight_zp != 0. The int16 format multiplies (x - zx) by packed
 * (w - weight_zp) directly and needs neither. All of it is exact modulo 2^32, so equal to
 * the reference wherever TFLite's int32 accumulator is. */
#ifndef MNV3_Q8_IMPL_H
#define MNV3_Q8_IMPL_H

#include "kernels.h"

/* Widest panel of any set (AVX-512: 4 vectors of 16 int32). */
#define MNV3_Q8_MAX_NR 64
/* Largest row tile any set uses. */
#define MNV3_Q8_MAX_MR 8

/* One multiplier in the form vector code broadcasts it: acc << left, doubling high
 * multiply by mult, rounding right shift (mask = 2^right - 1, half = mask >> 1). */
typedef struct mnv3_q8_vmul {
    int32_t mult, left, right, mask, half;
} mnv3_q8_vmul;
void mnv3_q8_vmul_of(mnv3_q8_mul m, mnv3_q8_vmul *v);

/* No left shift and not the multiplier INT32_MIN (whose product with INT32_MIN
 * saturates): vector code may skip both steps (mnv3_q8_rq_table.plain). */
static inline int mnv3_q8_plain_mul(mnv3_q8_mul m) {
    return m.shift <= 0 && m.multiplier != INT32_MIN;
}

/* The residual ADD's three multipliers all plain (mnv3_q8_plain_mul). */
static inline int mnv3_q8_add_plain(const mnv3_q8_add *p) {
    return mnv3_q8_plain_mul(p->a_mul) && mnv3_q8_plain_mul(p->b_mul) &&
           mnv3_q8_plain_mul(p->out_mul);
}

/* Whether the short rounding (mnv3_q8_rq_table.rounds_short) is exact for multiplier m
 * and accumulators within +-acc_bound: the doubling high multiply of such an accumulator
 * is within +-(acc_bound + 1), and the zero point within +-255. */
static inline int mnv3_q8_rounds_short(mnv3_q8_mul m, int64_t acc_bound) {
    const int32_t right = -m.shift;
    if (m.shift >= 0 || right > 23 || m.multiplier == INT32_MIN) return 0;
    return acc_bound + 1 + ((int64_t)1 << (right - 1)) + ((int64_t)255 << right) <= INT32_MAX;
}

/* The SE gate in 32-bit lanes. TFLite's MUL of a byte x by channel c's gate byte g is
 *   zp + rounding_shift(doubling_high_mul(d * m, M), s),  d = x - x_zp, m = g - gate_zp,
 * and d * m * M needs 64 bits, which x86 vectors form two lanes to a register. Per channel,
 * K = m * M = hi * 2^16 + lo with 0 <= lo < 2^16; then, every division a floor,
 *   doubling_high_mul = (d*K + 2^30) / 2^31 = A / 2^15,  A = d*hi + (d*lo + 2^30) / 2^16,
 * and the rounding shift of h by s >= 1 is (h + 2^(s-1) - [h < 0]) / 2^s, so the two are
 *   (B - 2^15 * [B < 2^(s+14)]) / 2^(s+15),  B = A + 2^(s+14)
 * ([h < 0] is [A < 0]). With the zero point folded into each channel's constants,
 *   B = x*hi + ((x*lo + lo_add) >> 16) + hi_add,  lo_add = 2^30 - x_zp*lo,
 *   hi_add = 2^(s+14) - x_zp*hi (modulo 2^32):
 * two 32-bit multiplies a byte instead of four 64-bit ones. Exact when A, B and
 * B - 2^15 fit in int32 for every x and g, and 1 <= s <= 16: mnv3_q8_gate_splits. */
int mnv3_q8_gate_splits(const mnv3_q8_gate *g);
/* The constants of channels [0, k): hi, lo, lo_add and hi_add, arrays `stride` int32
 * apart from split. */
void mnv3_q8_gate_split(const mnv3_q8_gate *g, const int8_t *gate, uint32_t k, size_t stride,
                        int32_t *split);

/* The residual ADD's input rescale without a 64-bit product. TFLite forms
 * mnv3_q8_requantize((v - zp) << 20, m) for an input byte v. With d = v - zp in [-255, 255],
 * M = m.multiplier >= 2^11 and s = -m.shift >= 0, the doubling high multiply of d * 2^20
 * rounds half up, floor((d*M + 2^10) / 2^11); M = hi * 2^11 + lo splits that into
 * d*hi + floor((d*lo + 2^10) / 2^11), and the rounding shift that follows nests its own
 * floor into the same sum (d*M < 0 exactly when d < 0):
 *   (d*hi + 2^(s-1) - [d < 0] + ((d*lo + 2^10) >> 11)) >> s    (s >= 1)
 *    d*hi + ((d*lo + 2^10) >> 11)                                (s = 0)
 * |d*hi| < 2^28 and the sum stays below 2^31, so vector code needs 32-bit products only.
 * The zero point is folded: v*hi + hi_add and v*lo + lo_add; `neg` is -1 when s >= 1
 * (the [v < zp] term applies), else 0. */
typedef struct mnv3_q8_add_split {
    int32_t zp, hi, lo, hi_add, lo_add, neg, shift;
} mnv3_q8_add_split;
/* Whether both inputs of p split so, with the left shift 20 and an output multiplier that
 * is plain (mnv3_q8_plain_mul); when they do, out[0] and out[1] get the splits of a and b. */
int mnv3_q8_add_splits(const mnv3_q8_add *p, mnv3_q8_add_split out[2]);

/* The parameters of every int8 row: the layer's quantization, as prepared once. `bias` and
 * `weight_zp` are what the reference reads; packed rows fold them (and in_zp) into their
 * packed weights. The gate's bytes come with each call (mnv3_pointwise_args.gate). The
 * residual ADD's and the gate's multipliers are also kept in vector form; `*_plain`: none
 * of them shifts left or is INT32_MIN, so vector code may take the short requantization. */
typedef struct mnv3_q8_params {
    const int32_t *bias;         /* NULL: none */
    int32_t in_zp, weight_zp;
    mnv3_q8_requant requant;
    mnv3_q8_gate gate;
    mnv3_q8_add add;
    mnv3_q8_vmul add_v[3];       /* a_mul, b_mul, out_mul */
    mnv3_q8_vmul gate_v;
    int32_t add_plain, gate_plain;
    int32_t gate_splits;         /* mnv3_q8_gate_splits(&gate) */
    mnv3_q8_add_split add_in[2]; /* a, b: made when add_splits */
    int32_t add_splits;          /* mnv3_q8_add_splits(&add, add_in) */
    int32_t narrow_weights;      /* a classifier row's weights packed as int8 (its impl's narrow) */
} mnv3_q8_params;

size_t mnv3_q8_params_bytes(const mnv3_row *row, const mnv3_layer *l);
void mnv3_q8_prepare(const mnv3_row *row, const mnv3_layer *l, void *params);

/* What packing folds: canonical weights (layouts as kernels.h), the int32 bias and the
 * zero points. */
typedef struct mnv3_q8_weights {
    const int8_t *weight;
    const int32_t *bias;         /* may be NULL */
    int32_t in_zp, weight_zp;
    const mnv3_q8_mul *qmul;     /* per output channel */
    uint32_t in_channels, out_channels, kernel;
} mnv3_q8_weights;

static inline mnv3_q8_weights mnv3_q8_weights_of(const mnv3_layer *l) {
    mnv3_q8_weights w;
    w.weight = (const int8_t *)l->weight;
    w.bias = (const int32_t *)l->bias;
    w.in_zp = l->in_zp;
    w.weight_zp = l->weight_zp;
    w.qmul = l->requant.qmul;
    w.in_channels = l->in_channels;
    w.out_channels = l->out_channels;
    w.kernel = l->kernel;
    return w;
}

/* One depthwise call as the int8 microkernels see it: the arguments with the layer's
 * quantization beside them. */
typedef struct mnv3_q8_dw_call {
    const int8_t *input;
    uint32_t in_height, in_width, channels;
    int32_t in_zp;
    const void *packed;
    uint32_t kernel, stride, pad_top, pad_left;
    uint32_t out_height, out_width;
    mnv3_q8_requant requant;
    void *workspace;
} mnv3_q8_dw_call;

typedef enum mnv3_q8_format {
    MNV3_Q8_A_S8 = 0,            /* a = x */
    MNV3_Q8_A_U8 = 1,            /* a = x + 128 as uint8 (x ^ 0x80) */
    MNV3_Q8_A_S16 = 2            /* a = x - in_zp as int16; weights w - weight_zp as int16 */
} mnv3_q8_format;

/* Bytes per element of a prepared row in format f. */
static inline size_t mnv3_q8_format_bytes(mnv3_q8_format f) {
    return f == MNV3_Q8_A_S16 ? 2u : 1u;
}

/* Requantization of one panel's columns, as vectors want it: acc << left, doubling high
 * multiply by mult, rounding right shift (mask = 2^right - 1, half = mask >> 1), + out_zp,
 * clamp. The per-column arrays are made once, when the weights are packed: they follow
 * each packed panel's weights (mnv3_q8_rq_bytes(nr) of them, mnv3_q8_rq_fill's layout), and
 * the driver points a table at them. Padding columns have mult 0. */
typedef struct mnv3_q8_rq_table {
    const int32_t *mult, *left, *right, *neg_right, *mask, *half;
    int32_t out_zp, lo, hi;
    /* No column shifts left and none has the multiplier INT32_MIN (whose product with
     * INT32_MIN saturates): then vector code may skip both steps. Conv multipliers are
     * below 1 and in [2^30, 2^31), so this is the usual case. */
    int32_t plain;
    /* Besides plain, every column shifts right by 1 to 23 and its accumulators stay small
     * enough (mnv3_q8_gemm_pack bounds them by the bias and the weights) that
     * (h + 2^(s-1) + out_zp * 2^s + (h >> 31)) >> s cannot overflow: that expression is
     * then the rounding shift plus the zero point, in four vector steps instead of seven. */
    int32_t rounds_short;
} mnv3_q8_rq_table;

/* Bytes of one panel's requantization arrays: six of nr int32, `plain` and
 * `rounds_short`. */
static inline size_t mnv3_q8_rq_bytes(uint32_t nr) { return (size_t)nr * 24u + 16u; }
/* Fills the arrays of columns [col, col + nr) of a layer with n output channels at dst.
 * acc_bound[c]: a bound on the magnitude of column col + c's accumulators (NULL: none
 * known, and the panel never rounds short). */
void mnv3_q8_rq_fill(int32_t *dst, const mnv3_q8_mul *qmul, uint32_t col, uint32_t nr,
                     uint32_t n, const int64_t *acc_bound);
/* Points t at the arrays at src, with the layer's zero point and range. */
void mnv3_q8_rq_view(mnv3_q8_rq_table *t, const void *src, uint32_t nr,
                     const mnv3_q8_requant *r);

/* One tile: prepared rows [0, m) (m is the microkernel's own) times one packed panel.
 * The panel is nr int32 biases followed by the k loop's weights (k is a multiple of kr),
 * then the requantization arrays.
 * Outputs [0, nc) of each row are stored; nothing beyond. A tile whose impl fuses them
 * (mnv3_q8_gemm_impl.fused) then finishes its bytes in registers, in this order: the LUT,
 * the residual ADD, the store, and the column sums (sums[0, nc) += each stored column's
 * bytes). */
typedef struct mnv3_q8_gemm_tile {
    const void *a;
    size_t a_stride;             /* bytes between prepared rows */
    const void *w;
    uint32_t k, nc;
    const int32_t *row_terms;    /* per row, added to every column; NULL: none */
    const mnv3_q8_rq_table *rq;
    int8_t *out;
    size_t out_stride;
    const char **pf;             /* prefetch cursor, as the float tiles */
    const char *pf_end;
    const int8_t *lut;           /* NULL: none */
    const int8_t *residual;      /* NULL: none */
    size_t residual_stride;      /* bytes between its rows */
    const mnv3_q8_params *params; /* the ADD's multipliers */
    int32_t *sums;               /* NULL: none */
} mnv3_q8_gemm_tile;
typedef void (*mnv3_q8_gemm_ukernel)(const mnv3_q8_gemm_tile *t);

/* Rows of input bytes to prepare at once: row r is x + r * x_stride, its prepared form
 * goes to dst + r * dst_stride. */
typedef struct mnv3_q8_prepare_args {
    const int8_t *x;
    size_t x_stride;
    uint32_t rows, k, kpad;
    const mnv3_q8_gate *gate;    /* NULL: none */
    const mnv3_q8_params *params; /* the gate's multiplier in vector form */
    const int32_t *gate_split;   /* mnv3_q8_gate_split of the call's gate; NULL: not made */
    size_t gate_split_stride;
    int32_t in_zp;
    mnv3_q8_format format;
    unsigned char *dst;
    size_t dst_stride;
    int32_t *row_sums;           /* NULL: not needed */
} mnv3_q8_prepare_args;

/* Byte helpers a set may provide in SIMD; the drivers use portable code for NULL ones. */
typedef struct mnv3_q8_ops {
    /* Each row's dst[0, kpad) = the prepared form of x[0, k) (gated when gate is set),
     * zeros after; row_sums[r] (when not NULL) = the sum of row r's prepared values. */
    void (*prepare_rows)(const mnv3_q8_prepare_args *p);
    /* x[i] = lut[(uint8_t)(x[i] + 128)] */
    void (*lut)(int8_t *x, size_t n, const int8_t *lut);
    /* out[i] = add(a[i], b[i]) */
    void (*add)(const int8_t *a, const int8_t *b, size_t n, const mnv3_q8_add *p, int8_t *out);
    /* out[i] = mnv3_q8_requantize(acc[i], m[i]): the set's vector requantization, exposed
     * for the tests. */
    void (*requantize)(const int32_t *acc, const mnv3_q8_mul *m, size_t n, int32_t *out);
    /* prepare_rows gates by mnv3_q8_prepare_args.gate_split when the driver makes it */
    int reads_gate_split;
} mnv3_q8_ops;

/* Steps of a layer's epilogue a set's tiles do in registers (mnv3_q8_gemm_tile); the
 * driver runs the others as passes over the stored bytes. */
#define MNV3_Q8_FUSE_LUT 1u
#define MNV3_Q8_FUSE_ADD 2u
#define MNV3_Q8_FUSE_SUMS 4u

/* What the GEMM driver needs of a set: its A format, tile, microkernels, helpers. */
typedef struct mnv3_q8_gemm_impl {
    mnv3_q8_format format;
    uint32_t mr, nr, kr;
    mnv3_q8_gemm_ukernel gemm[MNV3_Q8_MAX_MR]; /* [m - 1] */
    const mnv3_q8_ops *ops;
    /* k within a panel interleaved by this many (0: kr); k is padded to kr either way */
    uint32_t interleave;
    uint32_t fused;              /* MNV3_Q8_FUSE_* */
    /* Bytes of a packed weight, 0: as the A format's element. 1 with the 16-bit A format:
     * w - weight_zp stored as int8, for layers where every one fits, widened in the tile. */
    uint32_t weight_bytes;
    /* Classifier (FC) rows: the impl for layers whose weights all fit its narrower packing
     * (mnv3_q8_fc_impl); NULL: none. A matrix-vector product reads each weight once, from
     * memory, so half the bytes is most of its time. */
    const struct mnv3_q8_gemm_impl *narrow;
} mnv3_q8_gemm_impl;

/* The stem (a dense k x k conv on few input channels) has too few taps per output (3x3 x 3:
 * 27) for im2col rows to pay for themselves: a microkernel reads each output pixel's taps
 * straight from the input rows, as `row_taps` = kernel * in_channels contiguous bytes per
 * kernel row (NHWC), and multiplies them by weights packed once per layer
 * (mnv3_q8_conv_row_pack):
 *   per panel of nr output channels: nr int32 biases with the input zero point folded in
 *   (bias - in_zp * sum of the channel's w - weight_zp over every tap), then per kernel row
 *   ky and per group of `group` consecutive taps of that row (row_taps padded with zero
 *   weights to a multiple of group), nr columns x group int16 w - weight_zp, then the
 *   requantization arrays (mnv3_q8_rq_fill).
 * So the k loop is pure products of input bytes, and a tap in the padding must read the
 * byte in_zp, whose products the folded bias cancels exactly (TFLite's padding). The driver
 * hands the microkernel real input rows for pixels whose taps all lie inside the image, and
 * copies of the taps of the other pixels (a window, in_zp where the image ends) otherwise;
 * both look alike to it: tap t of kernel row ky of pixel j is rows[ky][j * step + t]. */
typedef struct mnv3_q8_conv_span {
    const int8_t *const *rows;   /* [kernel]: pixel 0's first tap in each kernel row */
    size_t step;                 /* bytes between consecutive pixels' taps */
    uint32_t pixels;
    uint32_t kernel, row_taps;
    const void *w;               /* the panel */
    const mnv3_q8_rq_table *rq;
    const int8_t *lut;           /* NULL: none, or the impl does not fuse it */
    int8_t *out;                 /* pixel 0's first column of the panel */
    size_t out_stride;           /* bytes between pixels' outputs */
    uint32_t nc;                 /* columns stored, at most nr */
} mnv3_q8_conv_span;
typedef void (*mnv3_q8_conv_ukernel)(const mnv3_q8_conv_span *s);

/* What the stem driver needs of a set: its microkernel, its packing and what its loads
 * reach. A pixel's kernel row is read as round_up(row_taps, chunk) bytes from its first
 * tap, so pixels whose reads would leave the input row take the window too. */
typedef struct mnv3_q8_conv_impl {
    mnv3_q8_conv_ukernel span;   /* any number of pixels, one panel */
    uint32_t window_pixels;      /* pixels the driver copies into a window at once */
    uint32_t nr;                 /* output channels per panel */
    uint32_t group;              /* taps per packed weight group */
    uint32_t chunk;              /* bytes per load */
    const mnv3_q8_ops *ops;      /* lut, when the span does not fuse it; NULL: portable */
    uint32_t fused;              /* MNV3_Q8_FUSE_LUT or 0 */
} mnv3_q8_conv_impl;

/* Depthwise: one output row over every channel. rows[ky] is input row oy*stride - pad_top
 * + ky (through the ring), or NULL in the padding. Weights as the set's depthwise pack
 * laid them out (per channel group: biases, then per tap the group's w - weight_zp). */
typedef struct mnv3_q8_dw_out_row {
    const int8_t *const *rows;
    int8_t *out;                 /* output (oy, 0, 0) */
    /* What the row does after requantization when its impl fuses it: the LUT, then
     * sums[c] += the row's output bytes of channel c. NULL: not asked, or not fused. */
    const int8_t *lut;
    int32_t *sums;
    const void *w;
    const mnv3_q8_dw_call *a;
    uint32_t ox_lo, ox_hi;       /* outputs whose horizontal taps are all inside the input */
    /* 1 on the first output row of a driver call: what a set caches in the args' workspace
     * between rows of one call (converted input rows) is stale, since the workspace and
     * the ring are rewritten between calls. */
    int first;
} mnv3_q8_dw_out_row;
typedef void (*mnv3_q8_dw_ukernel)(const mnv3_q8_dw_out_row *r);

typedef struct mnv3_q8_dw_impl {
    uint32_t group;              /* channels per packed group */
    uint32_t wbytes;             /* bytes per packed weight: 2 (int16) or 4 (int32) */
    mnv3_q8_dw_ukernel row;
    const mnv3_q8_ops *ops;      /* lut; NULL: portable */
    /* The packed layout, when it is not mnv3_q8_dw_pack's for (group, wbytes). */
    size_t (*packed_bytes)(const mnv3_q8_weights *w);
    void (*pack)(const mnv3_q8_weights *w, void *packed);
    /* Bytes of workspace a call needs (rows it keeps converted); NULL: none. */
    size_t (*workspace)(uint32_t channels, uint32_t kernel, uint32_t in_width);
    uint32_t fused;              /* MNV3_Q8_FUSE_LUT and _SUMS: what the row does itself */
} mnv3_q8_dw_impl;

/* Packers (drivers/q8.c) for the GEMM formats, by panel width, kr and interleave; the rows
 * wrap them. */
size_t mnv3_q8_gemm_panel_bytes(const mnv3_q8_gemm_impl *im, uint32_t k_total);
size_t mnv3_q8_gemm_packed_bytes(const mnv3_q8_gemm_impl *im, const mnv3_q8_weights *w,
                                 uint32_t k_total);
void mnv3_q8_gemm_pack(const mnv3_q8_gemm_impl *im, const mnv3_q8_weights *w, uint32_t k_total,
                       void *packed);
/* The impl an FC row runs layer l with: its narrow one when l's weights all fit it. */
const mnv3_q8_gemm_impl *mnv3_q8_fc_impl(const mnv3_row *row, const mnv3_layer *l);
size_t mnv3_q8_dw_packed_bytes(const mnv3_q8_weights *w, uint32_t group, uint32_t wbytes);
void mnv3_q8_dw_pack(const mnv3_q8_weights *w, uint32_t group, uint32_t wbytes, void *packed);

/* Row functions every int8 set shares: packing from the impl (mnv3_q8_gemm_impl or
 * mnv3_q8_dw_impl), drivers, workspaces. */
size_t mnv3_q8_gemm_row_packed_bytes(const mnv3_row *row, const mnv3_layer *l);
void mnv3_q8_gemm_row_pack(const mnv3_row *row, const mnv3_layer *l, void *packed);
size_t mnv3_q8_dw_row_packed_bytes(const mnv3_row *row, const mnv3_layer *l);
void mnv3_q8_dw_row_pack(const mnv3_row *row, const mnv3_layer *l, void *packed);
void mnv3_q8_pointwise_driver(const mnv3_row *row, const mnv3_pointwise_args *a);
size_t mnv3_q8_pointwise_workspace(const mnv3_row *row, const mnv3_layer *l, uint32_t in_width,
                                   uint32_t out_width);
/* The stem's rows: packing from a mnv3_q8_conv_impl, the driver and its workspace. */
size_t mnv3_q8_conv_row_packed_bytes(const mnv3_row *row, const mnv3_layer *l);
void mnv3_q8_conv_row_pack(const mnv3_row *row, const mnv3_layer *l, void *packed);
void mnv3_q8_conv_driver(const mnv3_row *row, const mnv3_conv_args *a);
size_t mnv3_q8_conv_workspace(const mnv3_row *row, const mnv3_layer *l, uint32_t in_width,
                              uint32_t out_width);
void mnv3_q8_fc_driver(const mnv3_row *row, const mnv3_fc_args *a);
/* The FC's packing: that of the impl mnv3_q8_fc_impl picks, or none for an input longer
 * than the driver keeps on its stack (the reference then runs it on the canonical
 * weights); its parameters record which impl packed it. */
size_t mnv3_q8_fc_row_packed_bytes(const mnv3_row *row, const mnv3_layer *l);
void mnv3_q8_fc_row_pack(const mnv3_row *row, const mnv3_layer *l, void *packed);
void mnv3_q8_fc_prepare(const mnv3_row *row, const mnv3_layer *l, void *params);
void mnv3_q8_depthwise_driver(const mnv3_row *row, const mnv3_depthwise_args *a);
size_t mnv3_q8_depthwise_workspace(const mnv3_row *row, const mnv3_layer *l, uint32_t in_width,
                                   uint32_t out_width);


/* Depthwise rows that convert each input row once per driver call into the workspace
 * (x86 AVX2, NEON) keep there a header of MNV3_Q8_DW_CACHE_HEADER bytes, then K + 1 slots
 * of slot_bytes; the last slot is the zero row for the vertical padding (its first
 * zero_bytes cleared on a call's first output row). Sets slot[ky] to the slot holding
 * tap row ky of this output row: found in the cache, else converted by
 * convert(a, row, slot, ctx) into a slot that no tap row of this output row holds. */
#define MNV3_Q8_DW_CACHE_HEADER 128u
typedef void (*mnv3_q8_dw_convert)(const mnv3_q8_dw_call *a, const int8_t *row,
                                   int16_t *slot, const void *ctx);
void mnv3_q8_dw_cached_rows(const mnv3_q8_dw_out_row *r, size_t slot_bytes, size_t zero_bytes,
                            mnv3_q8_dw_convert convert, const void *ctx,
                            const int16_t **slot);

/* Portable helpers, also the fallbacks of mnv3_q8_ops. */
void mnv3_q8_prepare_rows_portable(const mnv3_q8_prepare_args *p);
void mnv3_q8_prepare_row_portable(const int8_t *x, uint32_t k, uint32_t kpad,
                                  const mnv3_q8_gate *gate, int32_t in_zp,
                                  mnv3_q8_format format, void *dst, int32_t *row_sum);
/* Elements [from, k) of one row (and the padding); returns their part of the row sum.
 * The SIMD prepare_rows functions end each row with it. Most rows end on a whole vector:
 * those make no call, which would cost more than a short row's vectors. */
static inline int32_t mnv3_q8_prepare_row_rest(const int8_t *x, uint32_t from, uint32_t k,
                                               uint32_t kpad, const mnv3_q8_gate *gate,
                                               int32_t in_zp, mnv3_q8_format format, void *dst) {
    mnv3_q8_gate rest;
    int32_t sum = 0;
    if (from == kpad) return 0;
    if (gate) {
        rest = *gate;
        rest.gate = gate->gate + from;
    }
    mnv3_q8_prepare_row_portable(x + from, k - from, kpad - from, gate ? &rest : NULL, in_zp,
                                 format,
                                 (char *)dst + (size_t)from * mnv3_q8_format_bytes(format), &sum);
    return sum;
}
/* Channels [c_begin, channels) of a depthwise output row, from the packed weights (group,
 * wbytes as mnv3_q8_dw_pack): the channels after the last whole vector. */
void mnv3_q8_dw_channels_portable(const mnv3_q8_dw_out_row *r, uint32_t c_begin, uint32_t group,
                                  uint32_t wbytes);
void mnv3_q8_lut_portable(int8_t *x, size_t n, const int8_t *lut);
void mnv3_q8_add_portable(const int8_t *a, const int8_t *b, size_t n, const mnv3_q8_add *p,
                          int8_t *out);

#if defined(MNV3_HAVE_X86_KERNELS)
int mnv3_cpu_has_avx2(void);
int mnv3_cpu_has_avx512vnni(void);
int mnv3_cpu_has_avx512vbmi(void);
int mnv3_cpu_has_avxvnni(void);
extern const mnv3_kernel_set mnv3_kernel_set_avx2_q8;
extern const mnv3_kernel_set mnv3_kernel_set_avxvnni_q8;
extern const mnv3_kernel_set mnv3_kernel_set_avx512vnni_q8;
extern const mnv3_kernel_set mnv3_kernel_set_avx512vbmi_q8;
extern const mnv3_kernel_set mnv3_kernel_set_avx2_dotemu_q8;
/* The AVX2 depthwise row, which the 256-bit x86 int8 sets use. */
extern const mnv3_row mnv3_q8_depthwise_avx2;
/* The AVX2 input conversions (x86/avx2_q8_input.c), likewise. */
extern const mnv3_q8_input_ops mnv3_q8_input_avx2;
/* The AVX2 stem row, which every x86 int8 set uses. */
extern const mnv3_row mnv3_q8_conv_avx2;
#endif
#if defined(MNV3_HAVE_NEON_KERNELS)
extern const mnv3_kernel_set mnv3_kernel_set_neon_q8;
/* The input conversions of every NEON int8 set (arm/neon_q8_input.c). */
extern const mnv3_q8_input_ops mnv3_q8_input_neon;
#if defined(__aarch64__)
int mnv3_cpu_has_neon_dot(void);
int mnv3_cpu_has_neon_i8mm(void);
extern const mnv3_kernel_set mnv3_kernel_set_neondot_q8;
extern const mnv3_kernel_set mnv3_kernel_set_neoni8mm_q8;
#endif
#endif

#endif
