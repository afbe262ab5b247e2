/* mnv3-q8-gemm: throughput of the int8 pointwise rows against the float32 rows of the
 * same kernel set, on pointwise layers of MobileNetV3-Large's shapes (224 input), one
 * thread, through the same drivers the network uses, float and int8 of each layer timed
 * back to back. A measurement to read, not a test.
 *
 *   mnv3-q8-gemm [--isa avx2|avx512|neon|...] [--runs N] */
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
    if (!strcmp(set, "avx512vnni"))
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

/* The fastest of `runs`: on a machine shared with other work, the least disturbed run. */
static double best_run(void (*fn)(void *), void *ctx, int runs) {
    double t[64];
    int i;
    if (runs > 64) runs = 64;
    fn(ctx);
    for (i = 0; i < runs; ++i) {
        const double t0 = now_s();
        fn(ctx);
        t[i] = now_s() - t0;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    return t[0];
}

typedef struct job {
    const mnv3_kernels *k;
    mnv3_pointwise_args f;
    mnv3_q8_pointwise_args q;
    int reps;
} job;

static void run_f32(void *p) {
    job *j = (job *)p;
    int r;
    for (r = 0; r < j->reps; ++r) mnv3_call_pointwise(j->k, &j->f);
}

static void run_q8(void *p) {
    job *j = (job *)p;
    int r;
    for (r = 0; r < j->reps; ++r) mnv3_call_q8_pointwise(j->k, &j->q);
}

int main(int argc, char **argv) {
    mnv3_isa isa = mnv3_isa_best();
    int runs = 15, i;
    mnv3_kernels kf, kq;
    double total_f = 0, total_q = 0, peak_f, peak_q;
    mnv3_qmul qmul[1024];
    for (i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            if (mnv3_isa_from_name(argv[++i], &isa) != MNV3_OK) return 2;
        } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--isa NAME] [--runs N]\n", argv[0]);
            return 2;
        }
    }
    if (!mnv3_kernels_resolve(isa, MNV3_DTYPE_F32, MNV3_DTYPE_F32, &kf) ||
        !mnv3_kernels_resolve(isa, MNV3_DTYPE_I8, MNV3_DTYPE_I8, &kq)) {
        fprintf(stderr, "kernel set %s is not available\n", mnv3_isa_name(isa));
        return 1;
    }
    for (i = 0; i < 1024; ++i) mnv3_qmul_from_real(0.0007 + 0.00001 * (i % 13), &qmul[i]);
    printf("set %s: f32 %s, int8 %s (%s), 1 thread, best of %d\n", mnv3_isa_name(isa),
           kf.pointwise->name, kq.q8_pointwise->name, kq.q8_set->name, runs);
    peak_f = fma_peak(isa);
    peak_q = int8_peak(kq.q8_set->name);
    printf("measured peaks: FMA %.1f GMAC/s, int8 %.1f GMAC/s\n", peak_f * 1e-9, peak_q * 1e-9);
    printf("%-24s %10s %10s %10s %10s %7s %7s %7s\n", "layer", "f32 us", "int8 us", "f32 GMAC/s",
           "int8 GMAC/s", "ratio", "f32 pk", "int8 pk");
    for (i = 0; i < (int)(sizeof shapes / sizeof *shapes); ++i) {
        const shape *s = &shapes[i];
        const double macs = (double)s->pixels * s->k * s->n;
        const int reps = macs < 2e7 ? (int)(2e7 / macs) + 1 : 1;
        float *fin = (float *)alloc64(s->pixels * s->k * 4), *fout = (float *)alloc64(s->pixels * s->n * 4);
        float *fw = (float *)alloc64((size_t)s->k * s->n * 4);
        int8_t *qin = (int8_t *)alloc64(s->pixels * s->k), *qout = (int8_t *)alloc64(s->pixels * s->n);
        int8_t *qw = (int8_t *)alloc64((size_t)s->k * s->n);
        void *fpk, *qpk, *fws, *qws;
        size_t b;
        mnv3_q8_weights w;
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
        b = kf.pointwise->packed_bytes(s->k, s->n);
        fpk = b ? alloc64(b) : fw;
        if (b) kf.pointwise->pack(fw, s->k, s->n, fpk);
        memset(&w, 0, sizeof w);
        w.weight = qw;
        w.in_zp = 3;
        w.in_channels = s->k;
        w.out_channels = s->n;
        w.kernel = 1;
        b = kq.q8_pointwise->packed_bytes(&w);
        qpk = b ? alloc64(b) : qw;
        if (b) kq.q8_pointwise->pack(&w, qpk);
        fws = alloc64(kf.pointwise->workspace_bytes(kf.pointwise, s->k));
        qws = alloc64(kq.q8_pointwise->workspace_bytes(kq.q8_pointwise, s->k));

        memset(&j, 0, sizeof j);
        j.reps = reps;
        j.f.input = fin;
        j.f.in_stride = s->k;
        j.f.packed = fpk;
        j.f.epilogue.activation = MNV3_ACT_NONE;
        j.f.epilogue.pre.lo = j.f.epilogue.post.lo = -1.0f / 0.0f;
        j.f.epilogue.pre.hi = j.f.epilogue.post.hi = 1.0f / 0.0f;
        j.f.output = fout;
        j.f.out_stride = s->n;
        j.f.in_channels = s->k;
        j.f.out_channels = s->n;
        j.f.pixel_end = s->pixels;
        j.f.oc_end = s->n;
        j.f.workspace = fws;
        j.q.input = qin;
        j.q.in_stride = s->k;
        j.q.in_zp = 3;
        j.q.packed = qpk;
        j.q.requant.qmul = qmul;
        j.q.requant.out_zp = -5;
        j.q.requant.act_lo = -128;
        j.q.requant.act_hi = 127;
        j.q.output = qout;
        j.q.out_stride = s->n;
        j.q.in_channels = s->k;
        j.q.out_channels = s->n;
        j.q.pixel_end = s->pixels;
        j.q.oc_end = s->n;
        j.q.workspace = qws;
        j.k = &kf;
        tf = best_run(run_f32, &j, runs) / reps;
        j.k = &kq;
        tq = best_run(run_q8, &j, runs) / reps;
        total_f += tf;
        total_q += tq;
        printf("%-24s %10.1f %10.1f %10.2f %10.2f %7.2f %6.0f%% %6.0f%%\n", s->what, tf * 1e6,
               tq * 1e6, macs / tf * 1e-9, macs / tq * 1e-9, tf / tq,
               peak_f > 0 ? 100.0 * macs / tf / peak_f : 0.0,
               peak_q > 0 ? 100.0 * macs / tq / peak_q : 0.0);
        if (fpk != fw) free(fpk);
        if (qpk != qw) free(qpk);
        free(fin), free(fout), free(fw), free(qin), free(qout), free(qw), free(fws), free(qws);
    }
    printf("%-24s %10.1f %10.1f %32.2f\n", "all", total_f * 1e6, total_q * 1e6, total_f / total_q);
    return 0;
}
