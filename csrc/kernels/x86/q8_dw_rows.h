/* What the x86 int8 depthwise rows share: the packed weights, the converted input rows in
 * the workspace and their conversion. Included (without an include guard) by one file per
 * row, after q8_common.h, with DW_GROUP the channels per step (16 for ymm, 32 for zmm).
 *
 * Each input row that an output row reads is converted once per driver call into the
 * workspace as int16 x - in_zp, with zero columns for the horizontal padding and the
 * channels rounded up to DW_GROUP; one zero row stands for the vertical padding. Every
 * output pixel then runs the same tap loop with no border test and no zero point (a
 * padding tap is an exact 0, as TFLite's in_zp padding). Two taps' vectors interleaved by
 * vpunpcklwd / vpunpckhwd (within each 128-bit lane) meet weights packed as (w_t0, w_t1)
 * pairs in the same lane order: per 8 channels of a lane, 0-3 in the low accumulator and
 * 4-7 in the high one, the order vpackssdw puts back. */
#define DW_HEADER MNV3_Q8_DW_CACHE_HEADER
#define DW_LANES (DW_GROUP / 2u) /* int32 lanes per accumulator */

static uint32_t dw_pairs(uint32_t kernel) { return (kernel * kernel + 1u) / 2u; }

/* Lane j of the low (high = 0) or high accumulator holds this channel of the group. */
static uint32_t dw_lane_channel(uint32_t j, uint32_t high) {
    return (j & 3u) + (j >> 2) * 8u + high * 4u;
}

/* One converted row: columns for (out_width - 1) * stride + kernel <= in_width + 2 * kernel
 * (pads are below the kernel size), channels rounded up to the group, int16. */
static int dw_slot_bytes(uint32_t channels, uint32_t kernel, uint32_t in_width, size_t *out) {
    size_t cols, bytes;
    const size_t cpad = ((size_t)channels + DW_GROUP - 1u) / DW_GROUP * DW_GROUP;
    return mnv3_size_add(in_width, 2u * (size_t)kernel, &cols) &&
           mnv3_size_mul4(cols, cpad, 2u, 1u, &bytes) && mnv3_size_align(bytes, 64u, out);
}

static size_t dw_workspace(uint32_t channels, uint32_t kernel, uint32_t in_width) {
    size_t slot, total;
    if (!dw_slot_bytes(channels, kernel, in_width, &slot) ||
        !mnv3_size_mul(slot, (size_t)kernel + 1u, &total) ||
        !mnv3_size_add(total, DW_HEADER, &total))
        return SIZE_MAX;
    return total;
}

/* The requantization form of a group's n channels (dw_group_plan.form), bias: its
 * DW_GROUP biases. */
static int dw_group_form(const int32_t *bias, const mnv3_q8_mul *m, uint32_t n, uint32_t K) {
    int64_t bound = 0;
    int form = Q8X_RQ_SHORT;
    uint32_t c;
    for (c = 0; c < DW_GROUP; ++c) {
        const int64_t b = bias[c] < 0 ? -(int64_t)bias[c] : bias[c];
        if (b > bound) bound = b;
    }
    bound += (int64_t)255 * 255 * K * K;
    for (c = 0; c < n; ++c) {
        if (!mnv3_q8_plain_mul(m[c])) return Q8X_RQ_ANY;
        if (!mnv3_q8_rounds_short(m[c], bound)) form = Q8X_RQ_PLAIN;
    }
    return form;
}

/* Per group: the biases (low, high accumulator order), then per tap pair the
 * (w - weight_zp) pairs of the low and the high lanes, a missing tap or channel 0; then a
 * trailer made once here rather than for every output row: 64 bytes whose first int32 is
 * the group's requantization form (dw_group_form), then its multipliers in vector form
 * (mnv3_q8_vmul's mult, left, right, mask and half), each DW_GROUP int32 in the same lane
 * order as the biases, a missing channel 0. */
#define DW_FORM_BYTES 64u
#define DW_TRAILER (DW_FORM_BYTES + 5u * 4u * DW_GROUP)
static size_t dw_group_bytes(uint32_t kernel) {
    return 4u * DW_GROUP * ((size_t)dw_pairs(kernel) + 1u) + DW_TRAILER;
}

static size_t dw_packed_bytes(const mnv3_q8_weights *w) {
    const size_t groups = ((size_t)w->out_channels + DW_GROUP - 1u) / DW_GROUP;
    size_t total;
    if (!mnv3_size_mul(groups, dw_group_bytes(w->kernel), &total))
        return SIZE_MAX;
    return total;
}

static void dw_pack(const mnv3_q8_weights *w, void *packed) {
    const uint32_t C = w->out_channels, taps = w->kernel * w->kernel, pairs = dw_pairs(w->kernel);
    const size_t group_bytes = dw_group_bytes(w->kernel);
    uint32_t g, high, j, q, i;
    for (g = 0; g < C; g += DW_GROUP) {
        int32_t *p = (int32_t *)(void *)((unsigned char *)packed + (size_t)(g / DW_GROUP) * group_bytes);
        int32_t *trailer = p + DW_GROUP * (pairs + 1u);
        for (high = 0; high < 2; ++high)
            for (j = 0; j < DW_LANES; ++j) {
                const uint32_t c = g + dw_lane_channel(j, high);
                p[high * DW_LANES + j] = c < C && w->bias ? w->bias[c] : 0;
                for (q = 0; q < pairs; ++q) {
                    int16_t v[2] = {0, 0};
                    for (i = 0; i < 2; ++i) {
                        const uint32_t t = 2u * q + i;
                        if (c < C && t < taps)
                            v[i] = (int16_t)(w->weight[(size_t)t * C + c] - w->weight_zp);
                    }
                    memcpy(&p[DW_GROUP * (q + 1u) + high * DW_LANES + j], v, sizeof v);
                }
            }
        memset(trailer, 0, DW_TRAILER);
        trailer[0] = dw_group_form(p, w->qmul + g, C - g < DW_GROUP ? C - g : DW_GROUP,
                                   w->kernel);
        for (high = 0; high < 2; ++high)
            for (j = 0; j < DW_LANES; ++j) {
                const uint32_t c = g + dw_lane_channel(j, high), lane = high * DW_LANES + j;
                int32_t *rq = trailer + DW_FORM_BYTES / 4u;
                mnv3_q8_vmul v;
                if (c >= C) continue;
                mnv3_q8_vmul_of(w->qmul[c], &v);
                rq[lane] = v.mult;
                rq[DW_GROUP + lane] = v.left;
                rq[2u * DW_GROUP + lane] = v.right;
                rq[3u * DW_GROUP + lane] = v.mask;
                rq[4u * DW_GROUP + lane] = v.half;
            }
    }
}

/* dst[0, n) = 0. Inline stores: the spans are a padding column or a channel tail, and a
 * library memset per converted column showed in profiles. */
Q8X_INLINE void dw_zero(int16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 16u <= n; i += 16u)
        _mm256_storeu_si256((__m256i *)(void *)(dst + i), _mm256_setzero_si256());
    if (i + 8u <= n) {
        _mm_storeu_si128((__m128i *)(void *)(dst + i), _mm_setzero_si128());
        i += 8u;
    }
    for (; i < n; ++i) dst[i] = 0;
}

/* dst[0, n) = src[0, n) - zp as int16. */
Q8X_INLINE void dw_widen(const int8_t *src, size_t n, int16_t zp, int16_t *dst) {
    const __m256i zx = _mm256_set1_epi16(zp);
    size_t i = 0;
    for (; i + 16u <= n; i += 16u)
        _mm256_storeu_si256((__m256i *)(void *)(dst + i),
                            _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(
                                                 (const __m128i *)(const void *)(src + i))),
                                             zx));
    if (i + 8u <= n) {
        _mm_storeu_si128((__m128i *)(void *)(dst + i),
                         _mm_sub_epi16(_mm_cvtepi8_epi16(_mm_loadl_epi64(
                                           (const __m128i *)(const void *)(src + i))),
                                       _mm256_castsi256_si128(zx)));
        i += 8u;
    }
    for (; i < n; ++i) dst[i] = (int16_t)(src[i] - zp);
}

/* Input row src as converted columns [0, cols): column j holds input column j - pad_left.
 * With channels a multiple of the group the columns inside the input are one contiguous
 * run. */
static Q8X_ATTR void dw_convert_row(const mnv3_q8_dw_call *a, const int8_t *src,
                                    uint32_t cols, size_t cpad, int16_t *dst) {
    const uint32_t C = a->channels;
    const int16_t zp = (int16_t)a->in_zp;
    const uint32_t inside_lo = a->pad_left < cols ? a->pad_left : cols;
    const uint32_t inside_hi = a->pad_left + a->in_width < cols ? a->pad_left + a->in_width : cols;
    uint32_t j;
    dw_zero(dst, (size_t)inside_lo * cpad);
    if (cpad == C) {
        dw_widen(src, (size_t)(inside_hi - inside_lo) * C, zp, dst + (size_t)inside_lo * cpad);
    } else {
        for (j = inside_lo; j < inside_hi; ++j) {
            int16_t *d = dst + (size_t)j * cpad;
            dw_widen(src + (size_t)(j - a->pad_left) * C, C, zp, d);
            dw_zero(d + C, cpad - C);
        }
    }
    dw_zero(dst + (size_t)inside_hi * cpad, (size_t)(cols - inside_hi) * cpad);
}

typedef struct dw_convert_ctx {
    uint32_t cols;
    size_t cpad;
} dw_convert_ctx;

static void dw_convert(const mnv3_q8_dw_call *a, const int8_t *src, int16_t *slot,
                       const void *ctx) {
    const dw_convert_ctx *c = (const dw_convert_ctx *)ctx;
    dw_convert_row(a, src, c->cols, c->cpad, slot);
}

/* The converted rows of this output row (mnv3_q8_dw_cached_rows). */
static void dw_rows(const mnv3_q8_dw_out_row *r, uint32_t cols, size_t cpad,
                    const int16_t **crow) {
    const dw_convert_ctx ctx = {cols, cpad};
    size_t slot_bytes = 0;
    (void)dw_slot_bytes(r->a->channels, r->a->kernel, r->a->in_width, &slot_bytes);
    mnv3_q8_dw_cached_rows(r, slot_bytes, (size_t)cols * cpad * sizeof(int16_t), dw_convert,
                           &ctx, crow);
}

/* What the groups of one output row share: its converted rows and the sizes. */
typedef struct dw_row_plan {
    uint32_t pairs;
    size_t cpad, step, group_bytes;
    const int16_t *crow[MNV3_DW_MAX_KERNEL];
} dw_row_plan;

static void dw_row_begin(const mnv3_q8_dw_out_row *r, dw_row_plan *p) {
    const mnv3_q8_dw_call *a = r->a;
    const uint32_t K = a->kernel;
    const uint32_t cols = a->out_width >= 1 ? (a->out_width - 1u) * a->stride + K : 0;
    MNV3_ASSERT(a->workspace != NULL && a->out_width >= 1 && cols <= a->in_width + 2u * K);
    p->pairs = dw_pairs(K);
    p->cpad = ((size_t)a->channels + DW_GROUP - 1u) / DW_GROUP * DW_GROUP;
    p->step = (size_t)a->stride * p->cpad;
    p->group_bytes = dw_group_bytes(K);
    dw_rows(r, cols, p->cpad, p->crow);
}

/* One group of channels from g: n of them (the last group may have fewer), the packed
 * weights, the multipliers in vector form (lane order, a missing channel 0), and the form
 * of their requantization (Q8X_RQ_*): plain when every multiplier is (mnv3_q8_plain_mul),
 * short when besides every one rounds short (mnv3_q8_rounds_short) for accumulators
 * bounded by the group's largest bias and K x K taps of 255 x 255. */
typedef struct dw_group_plan {
    uint32_t n;
    int form;
    const void *w;
    mnv3_q8_rq_table rq;         /* mult, left, right, mask, half: the packed trailer's */
} dw_group_plan;


/* Fills gp for group g, and tap[ky * K + kx] = converted row ky's column kx at channel g;
 * tap[K * K] repeats the last for an odd tap count (its weights are 0). */
static void dw_group_begin(const mnv3_q8_dw_out_row *r, const dw_row_plan *p, uint32_t g,
                           dw_group_plan *gp, const int16_t **tap) {
    const mnv3_q8_dw_call *a = r->a;
    const uint32_t K = a->kernel;
    const int32_t *trailer;
    uint32_t ky, kx;
    gp->n = a->channels - g < DW_GROUP ? a->channels - g : DW_GROUP;
    gp->w = (const unsigned char *)r->w + (size_t)(g / DW_GROUP) * p->group_bytes;
    trailer = (const int32_t *)gp->w + DW_GROUP * (p->pairs + 1u);
    gp->form = trailer[0];
    memset(&gp->rq, 0, sizeof gp->rq);
    gp->rq.mult = trailer + DW_FORM_BYTES / 4u;
    gp->rq.left = gp->rq.mult + DW_GROUP;
    gp->rq.right = gp->rq.left + DW_GROUP;
    gp->rq.mask = gp->rq.right + DW_GROUP;
    gp->rq.half = gp->rq.mask + DW_GROUP;
    for (ky = 0; ky < K; ++ky)
        for (kx = 0; kx < K; ++kx) tap[ky * K + kx] = p->crow[ky] + kx * p->cpad + g;
    tap[K * K] = tap[K * K - 1u];
}
