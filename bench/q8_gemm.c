/* mnv3-q8-gemm: throughput of the int8 pointwise rows against the float32 rows of the
 * same kernel set, on pointwise layers of MobileNetV3-Large's shapes (224 input), one
 * thread, through the same drivers the network uses, float and int8 of each layer timed
 * back to back. A measurement to read, not a test.
 *
 * With --cold every timed call starts with the caches evicted (a 64 MiB buffer written in
 * between), as a layer's weights are in a network whose weights exceed the caches.
 *
 *   mnv3-q8-gemm [--isa avx2|avx512|neon|...] [--runs N] [--cold] */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"
#include "mnv3.h"
#include "mnv3_tools.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *alloc64(size_t n) {
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 1) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memset(p, 0, n ? n : 1);
    return p;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The measured multiply-accumulate peaks of one core for the instructions the two rows
 * use, in MAC/s (0 when not measurable here). */
static double int8_peak(const char *set) {
    double gops = -1.0;
    if (!strcmp(set, "avx512vnni") || !strcmp(set, "avx512vnni-vbmi"))
        gops = mnv3tools_int8_peak_gops(MNV3TOOLS_INT8_PEAK_AVX512VNNI, 0.2);
    else if (!strcmp(set, "avxvnni"))
        gops = mnv3tools_int8_peak_gops(MNV3TOOLS_INT8_PEAK_AVXVNNI, 0.2);
    else if (!strcmp(set, "avx2"))
        gops = mnv3tools_int8_peak_gops(MNV3TOOLS_INT8_PEAK_AVX2, 0.2);
    else if (!strcmp(set, "neon-dot"))
        gops = mnv3tools_int8_peak_gops(MNV3TOOLS_INT8_PEAK_SDOT, 0.2);
    else if (!strcmp(set, "neon"))
        gops = mnv3tools_int8_peak_gops(MNV3TOOLS_INT8_PEAK_NEON, 0.2);
    return gops > 0.0 ? gops * 0.5e9 : 0.0;
}

static double fma_peak(mnv3_isa isa) {
    double gflops = -1.0;
    if (isa == MNV3_ISA_AVX512) gflops = mnv3tools_peak_gflops(MNV3TOOLS_PEAK_AVX512, 0.2);
    if (isa == MNV3_ISA_AVX2) gflops = mnv3tools_peak_gflops(MNV3TOOLS_PEAK_AVX2, 0.2);
    if (isa == MNV3_ISA_NEON) gflops = mnv3tools_peak_gflops(MNV3TOOLS_PEAK_NEON, 0.2);
    return gflops > 0.0 ? gflops * 0.5e9 : 0.0;
}

typedef struct shape {
    const char *what;
    size_t pixels;
    uint32_t k, n;
} shape;

/* Expansions and projections of Large at 224 (pixels, in, out). */
static const shape shapes[] = {
    {"block 2 expand 56x56", 3136, 24, 72},   {"block 3 project 28x28", 784, 72, 40},
    {"block 5 expand 28x28", 784, 40, 120},   {"block 7 expand 14x14", 196, 80, 240},
    {"block 11 expand 14x14", 196, 112, 672}, {"block 12 project 14x14", 196, 672, 112},
    {"block 14 expand 7x7", 49, 160, 960},    {"block 14 project 7x7", 49, 960, 160},
};

/* Written between timed calls with --cold, to evict the caches. */
static unsigned char *evict;
#define EVICT_BYTES ((size_t)64 << 20)

/* The fastest of `runs`: on a machine shared with other work, the least disturbed run. */
static double best_run(void (*fn)(void *), void *ctx, int runs) {
    double t[64];
    int i;
    if (runs > 64) runs = 64;
    fn(ctx);
    for (i = 0; i < runs; ++i) {
        double t0;
        if (evict) memset(evict, i & 0xFF, EVICT_BYTES);
        t0 = now_s();
        fn(ctx);
        t[i] = now_s() - t0;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    return t[0];
}

typedef struct job {
    const mnv3_kernels *k;
    mnv3_pointwise_args a;
    int reps;
} job;

static void run_layer(void *p) {
    job *j = (job *)p;
    int r;
    for (r = 0; r < j->reps; ++r) mnv3_call_pointwise(j->k, &j->a);
}

/* What the row of k for layer l reads: its packed weights, parameters and a workspace,
 * set in the arguments (the buffers to free in owned[0..2]). */
static void bind(const mnv3_kernels *k, const mnv3_layer *l, mnv3_pointwise_args *a,
                 void **owned) {
    const mnv3_row *row = k->row[MNV3_ROW_POINTWISE];
    const size_t packed = row->packed_bytes(row, l);
    owned[0] = packed ? alloc64(packed) : NULL;
    if (packed) row->pack(row, l, owned[0]);
    owned[1] = alloc64(row->params_bytes(row, l));
    row->prepare(row, l, owned[1]);
    owned[2] = alloc64(row->workspace_bytes(row, l, 0, 0));
    a->packed = packed ? owned[0] : l->weight;
    a->params = owned[1];
    a->workspace = owned[2];
}

int main(int argc, char **argv) {
    mnv3_isa isa = mnv3_isa_best();
    int runs = 15, i;
    mnv3_kernels kf, kq;
    double total_f = 0, total_q = 0, peak_f, peak_q;
    mnv3_q8_mul qmul[1024];
    for (i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            if (mnv3_isa_from_name(argv[++i], &isa) != MNV3_OK) return 2;
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--cold")) {
            evict = (unsigned char *)alloc64(EVICT_BYTES);
        } else {
            fprintf(stderr, "usage: %s [--isa NAME] [--runs N] [--cold]\n", argv[0]);
            return 2;
        }
    }
    if (!mnv3_kernels_resolve(isa, MNV3_DTYPE_F32, MNV3_DTYPE_F32, &kf) ||
        !mnv3_kernels_resolve(isa, MNV3_DTYPE_I8, MNV3_DTYPE_I8, &kq)) {
        fprintf(stderr, "kernel set %s is not available\n", mnv3_isa_name(isa));
        return 1;
    }
    for (i = 0; i < 1024; ++i) mnv3_q8_mul_from_real(0.0007 + 0.00001 * (i % 13), &qmul[i]);
    printf("set %s: f32 %s, int8 %s (%s), 1 thread, best of %d%s\n", mnv3_isa_name(isa),
           kf.row[MNV3_ROW_POINTWISE]->name, kq.row[MNV3_ROW_POINTWISE]->name,
           kq.set[MNV3_ROW_POINTWISE]->name, runs, evict ? ", caches evicted before each" : "");
    peak_f = fma_peak(isa);
    peak_q = int8_peak(kq.set[MNV3_ROW_POINTWISE]->name);
    printf("measured peaks: FMA %.1f GMAC/s, int8 %.1f GMAC/s\n", peak_f * 1e-9, peak_q * 1e-9);
    printf("%-24s %10s %10s %10s %10s %7s %7s %7s\n", "layer", "f32 us", "int8 us", "f32 GMAC/s",
           "int8 GMAC/s", "ratio", "f32 pk", "int8 pk");
    for (i = 0; i < (int)(sizeof shapes / sizeof *shapes); ++i) {
        const shape *s = &shapes[i];
        const double macs = (double)s->pixels * s->k * s->n;
        const int reps = evict || macs >= 2e7 ? 1 : (int)(2e7 / macs) + 1;
        float *fin = (float *)alloc64(s->pixels * s->k * 4), *fout = (float *)alloc64(s->pixels * s->n * 4);
        float *fw = (float *)alloc64((size_t)s->k * s->n * 4);
        int8_t *qin = (int8_t *)alloc64(s->pixels * s->k), *qout = (int8_t *)alloc64(s->pixels * s->n);
        int8_t *qw = (int8_t *)alloc64((size_t)s->k * s->n);
        void *fo[3], *qo[3];
        mnv3_layer lf, lq;
        job j;
        double tf, tq;
        size_t e;
        for (e = 0; e < s->pixels * s->k; ++e) {
            qin[e] = (int8_t)(e * 7 % 251 - 125);
            fin[e] = qin[e] * 0.01f;
        }
        for (e = 0; e < (size_t)s->k * s->n; ++e) {
            qw[e] = (int8_t)(e * 13 % 253 - 126);
            fw[e] = qw[e] * 0.001f;
        }
        memset(&lf, 0, sizeof lf);
        lf.kind = MNV3_ROW_POINTWISE;
        lf.in_channels = s->k;
        lf.out_channels = s->n;
        lf.kernel = lf.stride = 1;
        lf.epilogue.activation = MNV3_ACT_NONE;
        lf.epilogue.pre.lo = lf.epilogue.post.lo = lf.residual_clamp.lo = lf.gate_clamp.lo =
            -1.0f / 0.0f;
        lf.epilogue.pre.hi = lf.epilogue.post.hi = lf.residual_clamp.hi = lf.gate_clamp.hi =
            1.0f / 0.0f;
        lq = lf;
        lf.weight_type = MNV3_DTYPE_F32;
        lf.weight = fw;
        lq.weight_type = MNV3_DTYPE_I8;
        lq.weight = qw;
        lq.in_zp = 3;
        lq.requant.qmul = qmul;
        lq.requant.out_zp = -5;
        lq.requant.act_lo = -128;
        lq.requant.act_hi = 127;

        memset(&j, 0, sizeof j);
        j.reps = reps;
        j.a.in_stride = s->k;
        j.a.out_stride = s->n;
        j.a.in_channels = s->k;
        j.a.out_channels = s->n;
        j.a.pixel_end = s->pixels;
        j.a.oc_end = s->n;
        j.a.input = fin;
        j.a.output = fout;
        j.k = &kf;
        bind(&kf, &lf, &j.a, fo);
        tf = best_run(run_layer, &j, runs) / reps;
        j.a.input = qin;
        j.a.output = qout;
        j.k = &kq;
        bind(&kq, &lq, &j.a, qo);
        tq = best_run(run_layer, &j, runs) / reps;
        total_f += tf;
        total_q += tq;
        printf("%-24s %10.1f %10.1f %10.2f %10.2f %7.2f %6.0f%% %6.0f%%\n", s->what, tf * 1e6,
               tq * 1e6, macs / tf * 1e-9, macs / tq * 1e-9, tf / tq,
               peak_f > 0 ? 100.0 * macs / tf / peak_f : 0.0,
               peak_q > 0 ? 100.0 * macs / tq / peak_q : 0.0);
        for (e = 0; e < 3; ++e) free(fo[e]), free(qo[e]);
        free(fin), free(fout), free(fw), free(qin), free(qout), free(qw);
    }
    printf("%-24s %10.1f %10.1f %32.2f\n", "all", total_f * 1e6, total_q * 1e6, total_f / total_q);
    return 0;
}
