/* mnv3-bench: latency of the built-in MobileNetV3 architectures (deterministic weights),
 * a per-layer profile, and how close the pointwise layers come to the measured FMA peak
 * of one core.
 *
 *   mnv3-bench [--arch large|small] [--width W] [--resolution R] [--threads N]
 *              [--runs N] [--warmup N] [--isa auto|scalar|avx2|avx512|neon] [--no-layers]
 *              [--layer-stat median|min] [--cold] [--precision fp32|fp16-weights|relaxed]
 * On a shared machine, --layer-stat min shows what each layer costs when undisturbed;
 * --cold shows what each costs when other work has used the caches since the last run.
 * --precision fp16-weights stores the weights as float16 (float32 arithmetic); relaxed
 * allows float16 or bf16 products where the CPU has them. */
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
            "                  [--precision fp32|fp16-weights|relaxed]\n");
}

int main(int argc, char **argv) {
    mnv3_arch arch = MNV3_ARCH_LARGE;
    double width = 1.0;
    uint32_t res = 224, threads = 1, nlayers, i;
    int runs = 100, warmup = 10, layers = 1, cold = 0, half = 0, a, r;
    mnv3_precision_mode precision = MNV3_PRECISION_EXACT;
    double layer_q = 0.5;
    mnv3_isa isa = MNV3_ISA_AUTO, used;
    mnv3_model *model = NULL;
    mnv3_model_info info;
    mnv3_config cfg;
    mnv3_context *ctx = NULL;
    mnv3_error err;
    uint64_t total_macs = 0;
    float *input, *logits;
    double *times, peak;
    size_t in_len, i2;

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
            half = strcmp(v, "fp16-weights") == 0;
            if (strcmp(v, "relaxed") == 0)
                precision = MNV3_PRECISION_RELAXED;
            else if (!half && strcmp(v, "fp32") != 0) {
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

    if (mnv3_model_create_builtin(arch, MNV3_FLAVOR_TORCHVISION, width, 1000, 1, &model, &err) !=
        MNV3_OK) {
        fprintf(stderr, "model: %s\n", err.message);
        return 1;
    }
    if (half) {
        mnv3_model *h = NULL;
        if (mnv3_model_convert_weights(model, MNV3_WEIGHTS_FLOAT16, &h, &err) != MNV3_OK) {
            fprintf(stderr, "float16 weights: %s\n", err.message);
            return 1;
        }
        mnv3_model_free(model);
        model = h;
    }
    mnv3_model_get_info(model, &info);
    mnv3_model_macs(model, res, res, &total_macs);
    mnv3_config_init(&cfg, model);
    cfg.height = cfg.width = res;
    cfg.threads = threads;
    cfg.isa = isa;
    cfg.precision = precision;
    if (mnv3_context_create(model, &cfg, NULL, 0, &ctx, &err) != MNV3_OK) {
        fprintf(stderr, "context: %s\n", err.message);
        return 1;
    }
    used = mnv3_context_isa(ctx);
    in_len = (size_t)3 * res * res;
    input = (float *)malloc(in_len * sizeof(float));
    logits = (float *)malloc(info.num_classes * sizeof(float));
    times = (double *)malloc((size_t)runs * sizeof(double));
    if (!input || !logits || !times) return 1;
    for (i2 = 0; i2 < in_len; ++i2) input[i2] = (float)((i2 * 2654435761u) % 1000) / 500.0f - 1.0f;

    for (r = 0; r < warmup; ++r) mnv3_run(ctx, input, in_len, logits, info.num_classes, NULL, 0);
    for (r = 0; r < runs; ++r) {
        double t0;
        if (cold) evict_caches();
        t0 = now_s();
        mnv3_run(ctx, input, in_len, logits, info.num_classes, NULL, 0);
        times[r] = (now_s() - t0) * 1e3;
    }
    qsort(times, (size_t)runs, sizeof *times, cmp_double);
    printf("mnv3-bench: MobileNetV3-%s width %.2f at %ux%u, %.1f M MACs, isa %s, %u thread%s, "
           "%s weights, %s arithmetic\n",
           arch == MNV3_ARCH_LARGE ? "Large" : "Small", width, res, res, (double)total_macs / 1e6,
           mnv3_isa_name(used), mnv3_context_threads(ctx), mnv3_context_threads(ctx) == 1 ? "" : "s",
           half ? "float16" : "float32", mnv3_arithmetic_name(mnv3_context_arithmetic(ctx)));
    printf("latency ms over %d runs: min %.3f  median %.3f  p90 %.3f  (%.1f images/s, %.1f GFLOP/s)\n",
           runs, times[0], pct(times, runs, 0.5), pct(times, runs, 0.9),
           1e3 / pct(times, runs, 0.5), 2.0 * (double)total_macs / (pct(times, runs, 0.5) * 1e6));
    mnv3_context_free(ctx);

    peak = fma_peak(used);
    if (peak > 0)
        printf("single-core %s FMA peak (measured): %.1f GFLOP/s\n", mnv3_isa_name(used),
               peak / 1e9);

    if (layers) {
        /* Profiled runs: per-layer median (or minimum) over the runs. */
        const int pruns = runs;
        double *lt, kind_ns[6] = {0}, kind_macs[6] = {0}, total_ns = 0;
        mnv3_layer_info li;
        cfg.profile = 1;
        if (mnv3_context_create(model, &cfg, NULL, 0, &ctx, &err) != MNV3_OK) return 1;
        nlayers = info.num_layers;
        lt = (double *)malloc((size_t)nlayers * pruns * sizeof(double));
        if (!lt) return 1;
        for (r = 0; r < 3; ++r) mnv3_run(ctx, input, in_len, logits, info.num_classes, NULL, 0);
        for (r = 0; r < pruns; ++r) {
            if (cold) evict_caches();
            mnv3_run(ctx, input, in_len, logits, info.num_classes, NULL, 0);
            for (i = 0; i < nlayers; ++i)
                lt[(size_t)i * pruns + r] = (double)mnv3_context_layer_ns(ctx, i);
        }
        for (i = 0; i < nlayers; ++i) {
            qsort(lt + (size_t)i * pruns, (size_t)pruns, sizeof(double), cmp_double);
            total_ns += pct(lt + (size_t)i * pruns, pruns, layer_q);
        }
        printf("\n%-3s %-18s %-4s %-26s %8s %9s %8s %6s %6s\n", "#", "layer", "kind",
               "in -> out (k/s)", "MMACs", "us", "GFLOP/s", "%peak", "share");
        for (i = 0; i < nlayers; ++i) {
            double ns = pct(lt + (size_t)i * pruns, pruns, layer_q), gf;
            char shape[64];
            if (mnv3_model_layer(model, res, res, i, &li) != MNV3_OK) continue;
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
                kind_ns[li.kind] += ns;
                kind_macs[li.kind] += (double)li.macs;
            }
        }
        printf("\nby kind (sum of per-layer %s %.3f ms):\n", layer_q > 0 ? "medians" : "minima",
               total_ns / 1e6);
        for (i = 0; i < 6; ++i) {
            double gf;
            if (kind_ns[i] <= 0) continue;
            gf = 2.0 * kind_macs[i] / kind_ns[i];
            printf("  %-5s %8.3f ms %6.1f%%  %8.1f M MACs  %7.1f GFLOP/s", kind_name((mnv3_layer_kind)i),
                   kind_ns[i] / 1e6, 100.0 * kind_ns[i] / total_ns, kind_macs[i] / 1e6, gf);
            if (peak > 0) printf("  %5.1f%% of peak", 100.0 * gf * 1e9 / peak);
            putchar('\n');
        }
        free(lt);
        mnv3_context_free(ctx);
    }
    free(input);
    free(logits);
    free(times);
    mnv3_model_free(model);
    return 0;
}
