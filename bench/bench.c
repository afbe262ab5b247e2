/* mnv3-bench: latency of the built-in MobileNetV3 architectures (deterministic weights),
 * a per-layer profile, and how close the pointwise layers come to the measured FMA peak
 * of one core.
 *
 *   mnv3-bench [--arch large|small] [--width W] [--resolution R] [--threads N]
 *              [--runs N] [--warmup N] [--isa auto|scalar|avx2|avx512|neon] [--no-layers]
 *              [--layer-stat median|min] [--cold]
 *              [--precision fp32|fp16-weights|relaxed|int8[,another]]
 * On a shared machine, --layer-stat min shows what each layer costs when undisturbed;
 * --cold shows what each costs when other work has used the caches since the last run.
 * --precision fp16-weights stores the weights as float16 (float32 arithmetic); relaxed
 * allows float16 or bf16 products where the CPU has them; int8 runs the built-in int8
 * network (mnv3_model_create_builtin_int8, float input quantized in the timed run). Two
 * precisions, for example fp32,int8, are timed in alternation, run for run, so that a
 * noisy machine disturbs both alike; their ratios follow, overall and by layer kind. */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mnv3.h"

#include "mnv3_tools.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Percentile of sorted values, nearest rank. */
static double pct(const double *sorted, int n, double p) {
    int i = (int)(p * (n - 1) + 0.5);
    return sorted[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* FMA peak of one core for the kernel set in use, in FLOP/s; 0 when there is no loop for
 * it. The measurement (shared with the Swift CLI) is inline assembly over independent
 * accumulators, so the compiler can neither merge the chains nor slow the loop down. */
static double fma_peak(mnv3_isa isa) {
    double gflops;
    switch (isa) {
    case MNV3_ISA_AVX512: gflops = mnv3tools_peak_gflops(MNV3TOOLS_PEAK_AVX512, 0.2); break;
    case MNV3_ISA_AVX2: gflops = mnv3tools_peak_gflops(MNV3TOOLS_PEAK_AVX2, 0.2); break;
    case MNV3_ISA_NEON: gflops = mnv3tools_peak_gflops(MNV3TOOLS_PEAK_NEON, 0.2); break;
    case MNV3_ISA_SCALAR: gflops = mnv3tools_peak_gflops(MNV3TOOLS_PEAK_SCALAR, 0.2); break;
    default: gflops = 0.0; break;
    }
    return gflops > 0.0 ? gflops * 1e9 : 0.0;
}

/* ------------------------------------------------------------------------------------ */

static const char *kind_name(mnv3_layer_kind k) {
    switch (k) {
    case MNV3_LAYER_CONV: return "conv";
    case MNV3_LAYER_POINTWISE: return "1x1";
    case MNV3_LAYER_DEPTHWISE: return "dw";
    case MNV3_LAYER_SQUEEZE_EXCITE: return "se";
    case MNV3_LAYER_GLOBAL_POOL: return "pool";
    case MNV3_LAYER_FULLY_CONNECTED: return "fc";
    }
    return "?";
}

/* --cold: before each measured run, write and read a buffer larger than any last-level
 * cache, so the run starts the way it does when other work ran in between (weights and
 * activations in DRAM, translation caches cold). */
#define EVICT_BYTES (256u << 20)
static volatile float evict_sink;

static void evict_caches(void) {
    static float *buf;
    size_t n = EVICT_BYTES / sizeof(float), i;
    float s = 0.0f;
    if (!buf) buf = (float *)calloc(n, sizeof(float));
    if (!buf) return;
    for (i = 0; i < n; i += 16) buf[i] += 1.0f;
    for (i = 0; i < n; i += 16) s += buf[i];
    evict_sink = s;
}

static void usage(void) {
    fprintf(stderr,
            "usage: mnv3-bench [--arch large|small] [--width W] [--resolution R] [--threads N]\n"
            "                  [--runs N] [--warmup N] [--isa auto|scalar|avx2|avx512|neon]\n"
            "                  [--no-layers] [--layer-stat median|min] [--cold]\n"
            "                  [--precision fp32|fp16-weights|relaxed|int8[,another]]\n");
}

/* One configuration under test: a precision, its model and context, its timings. */
typedef struct bench_config {
    const char *name;            /* as given to --precision */
    int half, int8;
    mnv3_precision_mode precision;
    mnv3_model *model;
    mnv3_context *ctx;
    double *times;               /* latency of each measured run, ms */
    double *layer_ns;            /* [layer][run] of the profiled runs */
    double kind_ns[6];           /* sums of the per-layer statistic by kind */
} bench_config;

static int parse_precision(const char *v, bench_config *c) {
    memset(c, 0, sizeof *c);
    c->name = v;
    c->precision = MNV3_PRECISION_EXACT;
    if (strcmp(v, "fp16-weights") == 0)
        c->half = 1;
    else if (strcmp(v, "relaxed") == 0)
        c->precision = MNV3_PRECISION_RELAXED;
    else if (strcmp(v, "int8") == 0)
        c->int8 = 1;
    else if (strcmp(v, "fp32") != 0)
        return 0;
    return 1;
}

static int make_model(bench_config *c, mnv3_arch arch, double width) {
    mnv3_error err;
    mnv3_status st =
        c->int8 ? mnv3_model_create_builtin_int8(arch, MNV3_FLAVOR_TORCHVISION, width, 1000, 1,
                                                 &c->model, &err)
                : mnv3_model_create_builtin(arch, MNV3_FLAVOR_TORCHVISION, width, 1000, 1,
                                            &c->model, &err);
    if (st != MNV3_OK) {
        fprintf(stderr, "model: %s\n", err.message);
        return 0;
    }
    if (c->half) {
        mnv3_model *h = NULL;
        if (mnv3_model_convert_weights(c->model, MNV3_WEIGHTS_FLOAT16, &h, &err) != MNV3_OK) {
            fprintf(stderr, "float16 weights: %s\n", err.message);
            return 0;
        }
        mnv3_model_free(c->model);
        c->model = h;
    }
    return 1;
}

static int make_context(bench_config *c, const mnv3_config *base, int profile) {
    mnv3_config cfg = *base;
    mnv3_error err;
    cfg.precision = c->precision;
    cfg.profile = profile;
    if (mnv3_context_create(c->model, &cfg, NULL, 0, &c->ctx, &err) != MNV3_OK) {
        fprintf(stderr, "context: %s\n", err.message);
        return 0;
    }
    return 1;
}

static void run_once(bench_config *c, const float *input, size_t in_len, float *logits,
                     uint32_t classes) {
    mnv3_run(c->ctx, input, in_len, logits, classes, NULL, 0);
}

/* Per-layer table and totals by kind of one configuration's profiled runs (sorted). */
static void print_layers(bench_config *c, uint32_t res, uint32_t nlayers, int pruns,
                         double layer_q, double peak) {
    double kind_macs[6] = {0}, total_ns = 0;
    mnv3_layer_info li;
    uint32_t i;
    for (i = 0; i < nlayers; ++i) total_ns += pct(c->layer_ns + (size_t)i * pruns, pruns, layer_q);
    if (c->int8) peak = 0; /* integer operations have no FMA peak to compare with */
    printf("\n%s:\n%-3s %-18s %-4s %-26s %8s %9s %8s %6s %6s\n", c->name, "#", "layer", "kind",
           "in -> out (k/s)", "MMACs", "us", c->int8 ? "GOP/s" : "GFLOP/s", "%peak", "share");
    for (i = 0; i < nlayers; ++i) {
        double ns = pct(c->layer_ns + (size_t)i * pruns, pruns, layer_q), gf;
        char shape[64];
        if (mnv3_model_layer(c->model, res, res, i, &li) != MNV3_OK) continue;
        snprintf(shape, sizeof shape, "%ux%ux%u->%ux%ux%u %u/%u", li.in_height, li.in_width,
                 li.in_channels, li.out_height, li.out_width, li.out_channels, li.kernel,
                 li.stride);
        gf = ns > 0 ? 2.0 * (double)li.macs / ns : 0.0;
        printf("%-3u %-18s %-4s %-26s %8.3f %9.1f %8.1f ", i, li.name, kind_name(li.kind), shape,
               (double)li.macs / 1e6, ns / 1e3, gf);
        if (li.kind == MNV3_LAYER_POINTWISE && peak > 0)
            printf("%5.1f%% ", 100.0 * gf * 1e9 / peak);
        else
            printf("%6s ", "");
        printf("%5.1f%%\n", total_ns > 0 ? 100.0 * ns / total_ns : 0.0);
        if ((unsigned)li.kind < 6) {
            c->kind_ns[li.kind] += ns;
            kind_macs[li.kind] += (double)li.macs;
        }
    }
    if (c->int8)
        printf("(a fused expansion runs inside its depthwise layer's time and shows 0)\n");
    printf("\nby kind (sum of per-layer %s %.3f ms):\n", layer_q > 0 ? "medians" : "minima",
           total_ns / 1e6);
    for (i = 0; i < 6; ++i) {
        double gf;
        if (c->kind_ns[i] <= 0) continue;
        gf = 2.0 * kind_macs[i] / c->kind_ns[i];
        printf("  %-5s %8.3f ms %6.1f%%  %8.1f M MACs  %7.1f %s", kind_name((mnv3_layer_kind)i),
               c->kind_ns[i] / 1e6, 100.0 * c->kind_ns[i] / total_ns, kind_macs[i] / 1e6, gf,
               c->int8 ? "GOP/s" : "GFLOP/s");
        if (peak > 0) printf("  %5.1f%% of peak", 100.0 * gf * 1e9 / peak);
        putchar('\n');
    }
}

int main(int argc, char **argv) {
    mnv3_arch arch = MNV3_ARCH_LARGE;
    double width = 1.0;
    uint32_t res = 224, threads = 1, nlayers = 0, i;
    int runs = 100, warmup = 10, layers = 1, cold = 0, a, r, n = 1, k;
    double layer_q = 0.5;
    mnv3_isa isa = MNV3_ISA_AUTO, used;
    bench_config cfgs[2];
    mnv3_model_info info;
    mnv3_config base;
    uint64_t total_macs = 0;
    float *input, *logits;
    double peak;
    size_t in_len, i2;

    if (!parse_precision("fp32", &cfgs[0])) return 2;
    for (a = 1; a < argc; ++a) {
        const char *o = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (strcmp(o, "--no-layers") == 0) {
            layers = 0;
            continue;
        }
        if (strcmp(o, "--cold") == 0) {
            cold = 1;
            continue;
        }
        if (!v) {
            usage();
            return 2;
        }
        ++a;
        if (strcmp(o, "--arch") == 0) {
            if (strcmp(v, "large") == 0)
                arch = MNV3_ARCH_LARGE;
            else if (strcmp(v, "small") == 0)
                arch = MNV3_ARCH_SMALL;
            else {
                usage();
                return 2;
            }
        } else if (strcmp(o, "--width") == 0) {
            width = atof(v);
        } else if (strcmp(o, "--resolution") == 0) {
            res = (uint32_t)atoi(v);
        } else if (strcmp(o, "--threads") == 0) {
            threads = (uint32_t)atoi(v);
        } else if (strcmp(o, "--runs") == 0) {
            runs = atoi(v);
        } else if (strcmp(o, "--warmup") == 0) {
            warmup = atoi(v);
        } else if (strcmp(o, "--layer-stat") == 0) {
            layer_q = strcmp(v, "min") == 0 ? 0.0 : 0.5;
        } else if (strcmp(o, "--precision") == 0) {
            /* one name, or two separated by a comma */
            static char names[64];
            char *comma;
            snprintf(names, sizeof names, "%s", v);
            comma = strchr(names, ',');
            if (comma) *comma = '\0';
            n = comma ? 2 : 1;
            if (!parse_precision(names, &cfgs[0]) ||
                (comma && !parse_precision(comma + 1, &cfgs[1]))) {
                usage();
                return 2;
            }
        } else if (strcmp(o, "--isa") == 0) {
            if (mnv3_isa_from_name(v, &isa) != MNV3_OK) {
                fprintf(stderr, "unknown isa '%s'\n", v);
                return 2;
            }
        } else {
            usage();
            return 2;
        }
    }
    if (runs < 1) runs = 1;
    if (warmup < 0) warmup = 0;

    for (k = 0; k < n; ++k)
        if (!make_model(&cfgs[k], arch, width)) return 1;
    mnv3_model_get_info(cfgs[0].model, &info);
    mnv3_model_macs(cfgs[0].model, res, res, &total_macs);
    mnv3_config_init(&base, cfgs[0].model);
    base.height = base.width = res;
    base.threads = threads;
    base.isa = isa;
    for (k = 0; k < n; ++k) {
        if (!make_context(&cfgs[k], &base, 0)) return 1;
        cfgs[k].times = (double *)malloc((size_t)runs * sizeof(double));
        if (!cfgs[k].times) return 1;
    }
    used = mnv3_context_isa(cfgs[0].ctx);
    in_len = (size_t)3 * res * res;
    input = (float *)malloc(in_len * sizeof(float));
    logits = (float *)malloc(info.num_classes * sizeof(float));
    if (!input || !logits) return 1;
    for (i2 = 0; i2 < in_len; ++i2) input[i2] = (float)((i2 * 2654435761u) % 1000) / 500.0f - 1.0f;

    for (r = 0; r < warmup; ++r)
        for (k = 0; k < n; ++k) run_once(&cfgs[k], input, in_len, logits, info.num_classes);
    /* Two configurations alternate run for run, in alternating order. */
    for (r = 0; r < runs; ++r)
        for (k = 0; k < n; ++k) {
            bench_config *c = &cfgs[(r + k) % n];
            double t0;
            if (cold) evict_caches();
            t0 = now_s();
            run_once(c, input, in_len, logits, info.num_classes);
            c->times[r] = (now_s() - t0) * 1e3;
        }
    for (k = 0; k < n; ++k) {
        bench_config *c = &cfgs[k];
        const char *q8 = mnv3_context_int8_kernels(c->ctx);
        qsort(c->times, (size_t)runs, sizeof *c->times, cmp_double);
        printf("mnv3-bench: MobileNetV3-%s width %.2f at %ux%u, %.1f M MACs, isa %s, %u thread%s, ",
               arch == MNV3_ARCH_LARGE ? "Large" : "Small", width, res, res,
               (double)total_macs / 1e6, mnv3_isa_name(mnv3_context_isa(c->ctx)),
               mnv3_context_threads(c->ctx), mnv3_context_threads(c->ctx) == 1 ? "" : "s");
        if (q8)
            printf("int8 weights and activations, %s kernels\n", q8);
        else
            printf("%s weights, %s arithmetic\n", c->half ? "float16" : "float32",
                   mnv3_arithmetic_name(mnv3_context_arithmetic(c->ctx)));
        printf("latency ms over %d runs: min %.3f  median %.3f  p90 %.3f  (%.1f images/s, %.1f "
               "GFLOP/s)\n",
               runs, c->times[0], pct(c->times, runs, 0.5), pct(c->times, runs, 0.9),
               1e3 / pct(c->times, runs, 0.5),
               2.0 * (double)total_macs / (pct(c->times, runs, 0.5) * 1e6));
        mnv3_context_free(c->ctx);
    }
    if (n == 2)
        printf("%s / %s latency, interleaved: min %.3f  median %.3f\n", cfgs[1].name,
               cfgs[0].name, cfgs[1].times[0] / cfgs[0].times[0],
               pct(cfgs[1].times, runs, 0.5) / pct(cfgs[0].times, runs, 0.5));

    peak = fma_peak(used);
    if (peak > 0)
        printf("single-core %s FMA peak (measured): %.1f GFLOP/s\n", mnv3_isa_name(used),
               peak / 1e9);

    if (layers) {
        /* Profiled runs, interleaved as above: per-layer median (or minimum) over the runs. */
        const int pruns = runs;
        nlayers = info.num_layers;
        for (k = 0; k < n; ++k) {
            if (!make_context(&cfgs[k], &base, 1)) return 1;
            cfgs[k].layer_ns = (double *)malloc((size_t)nlayers * pruns * sizeof(double));
            if (!cfgs[k].layer_ns) return 1;
            for (r = 0; r < 3; ++r) run_once(&cfgs[k], input, in_len, logits, info.num_classes);
        }
        for (r = 0; r < pruns; ++r)
            for (k = 0; k < n; ++k) {
                bench_config *c = &cfgs[(r + k) % n];
                if (cold) evict_caches();
                run_once(c, input, in_len, logits, info.num_classes);
                for (i = 0; i < nlayers; ++i)
                    c->layer_ns[(size_t)i * pruns + r] = (double)mnv3_context_layer_ns(c->ctx, i);
            }
        for (k = 0; k < n; ++k) {
            for (i = 0; i < nlayers; ++i)
                qsort(cfgs[k].layer_ns + (size_t)i * pruns, (size_t)pruns, sizeof(double),
                      cmp_double);
            print_layers(&cfgs[k], res, nlayers, pruns, layer_q, peak);
            mnv3_context_free(cfgs[k].ctx);
            free(cfgs[k].layer_ns);
        }
        if (n == 2) {
            printf("\n%s / %s by kind (per-layer %s, interleaved runs):\n", cfgs[1].name,
                   cfgs[0].name, layer_q > 0 ? "medians" : "minima");
            for (i = 0; i < 6; ++i)
                if (cfgs[0].kind_ns[i] > 0 || cfgs[1].kind_ns[i] > 0)
                    printf("  %-5s %8.3f ms %8.3f ms  ratio %.2f\n", kind_name((mnv3_layer_kind)i),
                           cfgs[0].kind_ns[i] / 1e6, cfgs[1].kind_ns[i] / 1e6,
                           cfgs[0].kind_ns[i] > 0 ? cfgs[1].kind_ns[i] / cfgs[0].kind_ns[i] : 0.0);
        }
    }
    free(input);
    free(logits);
    for (k = 0; k < n; ++k) {
        free(cfgs[k].times);
        mnv3_model_free(cfgs[k].model);
    }
    return 0;
}
