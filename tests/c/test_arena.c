/* Arena planning and the context/run API: planned sizes against the layer-by-layer lower
 * bound, caller-owned arenas, hostile arguments, and results independent of thread count,
 * input layout and batching. */
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* setenv */
#endif
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "runtime/context.h"
#include "mnv3.h"

#define MIB (1024.0 * 1024.0)

static mnv3_model *builtin(mnv3_arch arch, mnv3_flavor flavor, double width, uint32_t classes) {
    mnv3_model *m = NULL;
    mnv3_error err;
    mnv3_status st = mnv3_model_create_builtin(arch, flavor, width, classes, 42, &m, &err);
    CHECK_MSG(st == MNV3_OK, "builtin: %s", err.message);
    return m;
}

static void fill_input(float *x, size_t n, uint32_t seed) {
    size_t i;
    uint32_t s = seed * 2654435761u + 1u;
    for (i = 0; i < n; ++i) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
    }
}

static float max_rel_diff(const float *a, const float *b, size_t n) {
    float scale = 1.0f, worst = 0.0f;
    size_t i;
    for (i = 0; i < n; ++i)
        if (fabsf(a[i]) > scale) scale = fabsf(a[i]);
    for (i = 0; i < n; ++i) {
        float d = fabsf(a[i] - b[i]) / scale;
        if (d > worst) worst = d;
    }
    return worst;
}

/* Activation memory planned by lifetime must stay within 5% of the largest set of tensors
 * live at one layer (the figures below include the 224x224x3 input, which mnv3 reads in
 * place from the caller's buffer, so mnv3 should be at or below them). */
static void test_planned_sizes(void) {
    struct {
        mnv3_arch arch;
        double published_bound_mib;
    } cases[] = {{MNV3_ARCH_LARGE, 3.83}, {MNV3_ARCH_SMALL, 1.34}};
    unsigned i;
    for (i = 0; i < 2; ++i) {
        mnv3_model *m = builtin(cases[i].arch, MNV3_FLAVOR_TORCHVISION, 1.0, 1000);
        mnv3_config cfg;
        mnv3_arena_plan plan;
        mnv3_error err;
        size_t bytes = 0;
        if (!m) continue;
        mnv3_config_init(&cfg, m);
        cfg.isa = MNV3_ISA_SCALAR;
        CHECK_STATUS(mnv3_arena_plan_for(m, &cfg, &plan, &err), MNV3_OK);
        CHECK_STATUS(mnv3_arena_size(m, &cfg, &bytes, &err), MNV3_OK);
        CHECK(bytes == plan.total);
        printf("%s: activations %.3f MiB (own lower bound %.3f MiB, published %.2f MiB), "
               "scratch %zu B, context %zu B, total %.3f MiB\n",
               cases[i].arch == MNV3_ARCH_LARGE ? "large" : "small", plan.activations / MIB,
               plan.activation_lower_bound / MIB, cases[i].published_bound_mib, plan.scratch,
               plan.context, plan.total / MIB);
        CHECK(plan.activations <= 1.05 * plan.activation_lower_bound);
        CHECK(plan.activations / MIB <= 1.05 * cases[i].published_bound_mib);
        /* Scalar kernels read weights in place: nothing packed. */
        CHECK(plan.packed_weights == 0);
        /* Per-thread scratch (pointwise rows, fused-expansion rings) stays well below the
         * activations it saves. */
        CHECK(plan.scratch < plan.activations / 4);
        /* Large's widest expansion (112x112x64 floats, 3.06 MiB) is fused with its
         * depthwise conv and never materialised. */
        if (cases[i].arch == MNV3_ARCH_LARGE) CHECK(plan.activations / MIB < 2.5);
        /* The arena is exactly its three parts; weights are the model's. */
        CHECK(plan.total == plan.activations + plan.scratch + plan.context);
        CHECK(plan.model_weights > 0);
        /* More threads: activations unchanged; only per-thread scratch may grow. */
        cfg.threads = 4;
        {
            mnv3_arena_plan p4;
            CHECK_STATUS(mnv3_arena_plan_for(m, &cfg, &p4, &err), MNV3_OK);
            CHECK(p4.activations == plan.activations);
            CHECK(p4.scratch >= plan.scratch);
        }
        mnv3_model_free(m);
    }
}

/* The order mnv3_top_k promises: larger first, NaN last (after -inf), ties by index. */
static int ref_before(const float *s, uint32_t a, uint32_t b) {
    if (isnan(s[a]) != isnan(s[b])) return !isnan(s[a]);
    if (!isnan(s[a]) && s[a] != s[b]) return s[a] > s[b];
    return a < b;
}

static void test_top_k_order(void) {
    static const float pool[] = {1.0f, 3.0f, -2.0f, 0.0f, -0.0f, INFINITY, -INFINITY, NAN};
    float x[4] = {1.0f, NAN, 3.0f, 4.0f}, s[9];
    uint32_t idx[9], ref[9], k, trial, i, j, bad = 0;
    uint64_t rng = 12345;
    CHECK_STATUS(mnv3_top_k(x, 4, 4, idx), MNV3_OK);
    CHECK_MSG(idx[0] == 3 && idx[1] == 2 && idx[2] == 0 && idx[3] == 1,
              "top-4 of [1, NaN, 3, 4] is %u %u %u %u", idx[0], idx[1], idx[2], idx[3]);
    x[0] = NAN;
    x[2] = -INFINITY;
    CHECK_STATUS(mnv3_top_k(x, 4, 4, idx), MNV3_OK);
    CHECK(idx[0] == 3 && idx[1] == 2 && idx[2] == 0 && idx[3] == 1);
    /* Random rows of ties, signed zeros, infinities and NaNs, every k, against a sort. */
    for (trial = 0; trial < 2000; ++trial) {
        for (i = 0; i < 9; ++i) {
            rng = rng * 6364136223846793005u + 1442695040888963407u;
            s[i] = pool[(rng >> 33) % (sizeof pool / sizeof *pool)];
            ref[i] = i;
        }
        for (i = 1; i < 9; ++i)
            for (j = i; j > 0 && ref_before(s, ref[j], ref[j - 1]); --j) {
                uint32_t t = ref[j];
                ref[j] = ref[j - 1];
                ref[j - 1] = t;
            }
        for (k = 1; k <= 9; ++k) {
            mnv3_top_k(s, 9, k, idx);
            bad += memcmp(idx, ref, k * sizeof *idx) != 0;
        }
    }
    CHECK_MSG(bad == 0, "%u top-k results differ from the sorted order", bad);
}

/* Non-finite scores: NaN gets 0 and ranks last, as mnv3_top_k ranks it. */
static void test_softmax_non_finite(void) {
    const float qnan = NAN, inf = INFINITY;
    float x[4] = {1.0f, qnan, 3.0f, 2.0f}, y[4], z[3], ref[3], rows[8];
    float all_nan[3] = {qnan, qnan, qnan}, out3[3] = {7, 7, 7};
    uint32_t idx[4], c;
    /* The NaN is left out: the other three are the softmax of {1, 3, 2}. */
    z[0] = 1.0f;
    z[1] = 3.0f;
    z[2] = 2.0f;
    CHECK_STATUS(mnv3_softmax(z, ref, 1, 3), MNV3_OK);
    CHECK_STATUS(mnv3_softmax(x, y, 1, 4), MNV3_OK);
    CHECK_MSG(y[1] == 0.0f, "softmax of NaN is %g, expected 0", (double)y[1]);
    CHECK(y[0] == ref[0] && y[2] == ref[1] && y[3] == ref[2]);
    CHECK(fabsf(y[0] + y[1] + y[2] + y[3] - 1.0f) < 1e-6f);
    /* The same ranking from the scores and from the probabilities, NaN last. */
    CHECK_STATUS(mnv3_top_k(x, 4, 4, idx), MNV3_OK);
    CHECK(idx[0] == 2 && idx[1] == 3 && idx[2] == 0 && idx[3] == 1);
    CHECK_STATUS(mnv3_top_k(y, 4, 4, idx), MNV3_OK);
    CHECK(idx[0] == 2 && idx[1] == 3 && idx[2] == 0 && idx[3] == 1);
    /* In place, with a NaN first (the old maximum's start). */
    x[0] = qnan;
    x[1] = 1.0f;
    CHECK_STATUS(mnv3_softmax(x, x, 1, 4), MNV3_OK);
    CHECK(x[0] == 0.0f && x[1] == ref[0] && x[2] == ref[1] && x[3] == ref[2]);
    /* +inf takes everything, shared; -inf gets 0; a row of -inf is uniform. */
    x[0] = inf;
    x[1] = 5.0f;
    x[2] = inf;
    x[3] = qnan;
    CHECK_STATUS(mnv3_softmax(x, y, 1, 4), MNV3_OK);
    CHECK(y[0] == 0.5f && y[1] == 0.0f && y[2] == 0.5f && y[3] == 0.0f);
    x[0] = -inf;
    x[1] = 0.0f;
    x[2] = -inf;
    x[3] = -inf;
    CHECK_STATUS(mnv3_softmax(x, y, 1, 4), MNV3_OK);
    CHECK(y[0] == 0.0f && y[1] == 1.0f && y[2] == 0.0f && y[3] == 0.0f);
    x[1] = qnan;
    CHECK_STATUS(mnv3_softmax(x, y, 1, 4), MNV3_OK);
    CHECK(fabsf(y[0] - 1.0f / 3) < 1e-7f && y[1] == 0.0f && y[2] == y[0] && y[3] == y[0]);
    /* A row of NaNs only is an error, written as zeros; the other rows are still done. */
    CHECK_STATUS(mnv3_softmax(all_nan, out3, 1, 3), MNV3_ERR_INVALID_ARGUMENT);
    CHECK(out3[0] == 0.0f && out3[1] == 0.0f && out3[2] == 0.0f);
    for (c = 0; c < 4; ++c) {
        rows[c] = qnan;
        rows[4 + c] = (float)c;
    }
    CHECK_STATUS(mnv3_softmax(rows, rows, 2, 4), MNV3_ERR_INVALID_ARGUMENT);
    CHECK(rows[0] == 0.0f && rows[3] == 0.0f);
    CHECK(rows[7] > rows[6] && fabsf(rows[4] + rows[5] + rows[6] + rows[7] - 1.0f) < 1e-6f);
    for (c = 0; c < 8; ++c) CHECK(!isnan(rows[c]));
}

static void test_hostile_arguments(void) {
    mnv3_model *m = builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.5, 10);
    mnv3_config cfg;
    mnv3_context *ctx = NULL;
    mnv3_error err;
    size_t bytes = 0;
    unsigned char *raw;
    float *in, out[10];
    size_t n = 3 * 224 * 224;
    if (!m) return;
    mnv3_config_init(&cfg, m);
    CHECK_STATUS(mnv3_arena_size(NULL, &cfg, &bytes, &err), MNV3_ERR_NULL_ARGUMENT);
    CHECK_STATUS(mnv3_arena_size(m, NULL, &bytes, &err), MNV3_ERR_NULL_ARGUMENT);
    CHECK_STATUS(mnv3_arena_size(m, &cfg, NULL, &err), MNV3_ERR_NULL_ARGUMENT);
    cfg.batch = 0;
    CHECK_STATUS(mnv3_arena_size(m, &cfg, &bytes, &err), MNV3_ERR_INVALID_ARGUMENT);
    cfg.batch = 1;
    cfg.height = 31;
    CHECK_STATUS(mnv3_arena_size(m, &cfg, &bytes, &err), MNV3_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "31x224") != NULL);
    cfg.height = 1u << 30;
    CHECK_STATUS(mnv3_arena_size(m, &cfg, &bytes, &err), MNV3_ERR_INVALID_ARGUMENT);
    cfg.height = 224;
    cfg.threads = 100000;
    CHECK_STATUS(mnv3_arena_size(m, &cfg, &bytes, &err), MNV3_ERR_INVALID_ARGUMENT);
    cfg.threads = 1;
    cfg.layout = (mnv3_layout)7;
    CHECK_STATUS(mnv3_arena_size(m, &cfg, &bytes, &err), MNV3_ERR_INVALID_ARGUMENT);
    cfg.layout = MNV3_LAYOUT_NCHW;
    cfg.isa = (mnv3_isa)99;
    CHECK_STATUS(mnv3_arena_size(m, &cfg, &bytes, &err), MNV3_ERR_INVALID_ARGUMENT);
    cfg.isa = MNV3_ISA_AUTO;
    CHECK_STATUS(mnv3_arena_size(m, &cfg, &bytes, &err), MNV3_OK);

    /* Arena too small, misaligned, NULL out pointer. */
    raw = (unsigned char *)malloc(bytes + 128);
    {
        unsigned char *aligned = raw + (64 - ((uintptr_t)raw & 63u));
        CHECK_STATUS(mnv3_context_create(m, &cfg, aligned, bytes - 1, &ctx, &err),
                     MNV3_ERR_ARENA_TOO_SMALL);
        CHECK(ctx == NULL);
        CHECK(strstr(err.message, "needs") != NULL);
        CHECK_STATUS(mnv3_context_create(m, &cfg, aligned + 4, bytes, &ctx, &err),
                     MNV3_ERR_ARENA_MISALIGNED);
        CHECK_STATUS(mnv3_context_create(m, &cfg, aligned, bytes, NULL, &err),
                     MNV3_ERR_NULL_ARGUMENT);
        CHECK_STATUS(mnv3_context_create(m, &cfg, aligned, bytes, &ctx, &err), MNV3_OK);
    }
    in = (float *)calloc(n, sizeof(float));
    /* Wrong lengths and NULLs are refused before anything runs. */
    CHECK_STATUS(mnv3_run(ctx, in, n - 1, out, 10, NULL, 0), MNV3_ERR_SHAPE);
    CHECK_STATUS(mnv3_run(ctx, in, n, out, 9, NULL, 0), MNV3_ERR_SHAPE);
    CHECK_STATUS(mnv3_run(ctx, in, n, NULL, 10, NULL, 0), MNV3_ERR_SHAPE);
    CHECK_STATUS(mnv3_run(ctx, in, n, out, 10, out, 3), MNV3_ERR_SHAPE);
    CHECK_STATUS(mnv3_run(ctx, NULL, n, out, 10, NULL, 0), MNV3_ERR_NULL_ARGUMENT);
    CHECK_STATUS(mnv3_run(NULL, in, n, out, 10, NULL, 0), MNV3_ERR_NULL_ARGUMENT);
    CHECK_STATUS(mnv3_run(ctx, in, n, out, 10, NULL, 0), MNV3_OK);
    CHECK_STATUS(mnv3_run(ctx, in, n, NULL, 0, NULL, 0), MNV3_OK);
    mnv3_context_free(ctx);
    mnv3_context_free(NULL);
    mnv3_model_free(NULL);
    free(in);
    free(raw);

    /* Helpers. */
    {
        float x[4] = {1, 3, 2, 3}, y[4];
        uint32_t idx[3];
        CHECK_STATUS(mnv3_softmax(x, y, 1, 4), MNV3_OK);
        CHECK(fabsf(y[0] + y[1] + y[2] + y[3] - 1.0f) < 1e-6f);
        CHECK_STATUS(mnv3_top_k(x, 4, 3, idx), MNV3_OK);
        CHECK(idx[0] == 1 && idx[1] == 3 && idx[2] == 2);
        CHECK_STATUS(mnv3_top_k(x, 4, 5, idx), MNV3_ERR_INVALID_ARGUMENT);
        CHECK_STATUS(mnv3_softmax(NULL, y, 1, 4), MNV3_ERR_NULL_ARGUMENT);
    }
    test_top_k_order();
    test_softmax_non_finite();
    CHECK(strcmp(mnv3_status_string(MNV3_ERR_ARENA_TOO_SMALL), "unknown status") != 0);
    CHECK(strcmp(mnv3_status_string((mnv3_status)12345), "unknown status") == 0);
    CHECK(mnv3_version() == MNV3_VERSION);
    CHECK(strcmp(mnv3_version_string(), MNV3_VERSION_STRING) == 0);
    {
        /* The version macros agree with each other (tests/check_abi.sh checks the SONAME). */
        char text[32];
        snprintf(text, sizeof text, "%d.%d.%d", MNV3_VERSION_MAJOR, MNV3_VERSION_MINOR,
                 MNV3_VERSION_PATCH);
        CHECK_MSG(strcmp(text, MNV3_VERSION_STRING) == 0, "%s against %s", text,
                  MNV3_VERSION_STRING);
        CHECK(MNV3_VERSION == MNV3_VERSION_MAJOR * 10000 + MNV3_VERSION_MINOR * 100 +
                                  MNV3_VERSION_PATCH);
        /* 0.2 added functions to 0.1 (docs/c-api.md, Versioning). */
        CHECK(MNV3_VERSION >= 200);
    }
    mnv3_model_free(m);
}

static mnv3_context *make_ctx(const mnv3_model *m, uint32_t batch, uint32_t h, uint32_t w,
                              mnv3_layout layout, uint32_t threads) {
    mnv3_config cfg;
    mnv3_context *ctx = NULL;
    mnv3_error err;
    mnv3_status st;
    mnv3_config_init(&cfg, m);
    cfg.batch = batch;
    cfg.height = h;
    cfg.width = w;
    cfg.layout = layout;
    cfg.threads = threads;
    st = mnv3_context_create(m, &cfg, NULL, 0, &ctx, &err);
    CHECK_MSG(st == MNV3_OK, "context: %s", err.message);
    return ctx;
}

/* NCHW and NHWC inputs, batch 2 against two batch-1 runs, and 1/2/3 threads. */
static void test_equivalences(void) {
    const uint32_t H = 97, W = 64, C = 10;
    mnv3_model *m = builtin(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 0.75, C);
    size_t n = (size_t)3 * H * W, i;
    float *nchw = (float *)malloc(2 * n * sizeof(float)), *nhwc = (float *)malloc(n * sizeof(float));
    float ref[2 * C], got[2 * C], feat1[1280], feat2[1280];
    mnv3_model_info info;
    mnv3_context *ctx;
    uint32_t t, y, x, c;
    if (!m) return;
    mnv3_model_get_info(m, &info);
    fill_input(nchw, 2 * n, 3);
    for (y = 0; y < H; ++y)
        for (x = 0; x < W; ++x)
            for (c = 0; c < 3; ++c) nhwc[((size_t)y * W + x) * 3 + c] = nchw[((size_t)c * H + y) * W + x];

    ctx = make_ctx(m, 1, H, W, MNV3_LAYOUT_NCHW, 1);
    CHECK_STATUS(mnv3_run(ctx, nchw, n, ref, C, feat1, info.feature_dim), MNV3_OK);
    CHECK_STATUS(mnv3_run(ctx, nchw + n, n, ref + C, C, NULL, 0), MNV3_OK);
    mnv3_context_free(ctx);
    for (i = 0; i < 2 * C; ++i) CHECK(isfinite(ref[i]));

    ctx = make_ctx(m, 1, H, W, MNV3_LAYOUT_NHWC, 1);
    CHECK_STATUS(mnv3_run(ctx, nhwc, n, got, C, feat2, info.feature_dim), MNV3_OK);
    CHECK(max_rel_diff(ref, got, C) == 0.0f);
    CHECK(max_rel_diff(feat1, feat2, info.feature_dim) == 0.0f);
    mnv3_context_free(ctx);

    ctx = make_ctx(m, 2, H, W, MNV3_LAYOUT_NCHW, 1);
    CHECK_STATUS(mnv3_run(ctx, nchw, 2 * n, got, 2 * C, NULL, 0), MNV3_OK);
    CHECK(max_rel_diff(ref, got, 2 * C) == 0.0f);
    mnv3_context_free(ctx);

    for (t = 2; t <= 3; ++t) {
        float d;
        ctx = make_ctx(m, 2, H, W, MNV3_LAYOUT_NCHW, t);
        CHECK(mnv3_context_threads(ctx) >= 1);
        CHECK_STATUS(mnv3_run(ctx, nchw, 2 * n, got, 2 * C, NULL, 0), MNV3_OK);
        d = max_rel_diff(ref, got, 2 * C);
        CHECK_MSG(d <= 1e-6f, "threads %u differ by %g relative", t, (double)d);
        mnv3_context_free(ctx);
    }
    free(nchw);
    free(nhwc);
    mnv3_model_free(m);
}

/* Large at 224 fuses its widest expansions with their depthwise convs: bands split across
 * threads (rows expanded twice at task boundaries) and the prefetch hints must not change
 * a single logit. */
static void test_fused_and_prefetch_invariance(void) {
    const uint32_t H = 224, W = 224, C = 10;
    mnv3_model *m = builtin(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 1.0, C);
    size_t n = (size_t)3 * H * W;
    float *x = (float *)malloc(n * sizeof(float)), ref[C], got[C];
    mnv3_context *ctx;
    uint32_t t;
    if (!m || !x) return;
    fill_input(x, n, 5);
    ctx = make_ctx(m, 1, H, W, MNV3_LAYOUT_NCHW, 1);
    CHECK_STATUS(mnv3_run(ctx, x, n, ref, C, NULL, 0), MNV3_OK);
    mnv3_context_free(ctx);
    for (t = 2; t <= 5; t += 3) {
        ctx = make_ctx(m, 1, H, W, MNV3_LAYOUT_NCHW, t);
        CHECK_STATUS(mnv3_run(ctx, x, n, got, C, NULL, 0), MNV3_OK);
        CHECK_MSG(max_rel_diff(ref, got, C) == 0.0f, "fused network, %u threads", t);
        mnv3_context_free(ctx);
    }
#if defined(__unix__) || defined(__APPLE__)
    setenv("MNV3_PREFETCH", "0", 1);
    ctx = make_ctx(m, 1, H, W, MNV3_LAYOUT_NCHW, 1);
    unsetenv("MNV3_PREFETCH");
    CHECK_STATUS(mnv3_run(ctx, x, n, got, C, NULL, 0), MNV3_OK);
    CHECK_MSG(max_rel_diff(ref, got, C) == 0.0f, "logits change without prefetch hints");
    mnv3_context_free(ctx);
#endif
    free(x);
    mnv3_model_free(m);
}

/* Smallest allowed input still runs every flavor (including SAME padding). */
static void test_small_inputs(void) {
    mnv3_flavor flavors[] = {MNV3_FLAVOR_TORCHVISION, MNV3_FLAVOR_WALKTHROUGH, MNV3_FLAVOR_TFLITE};
    unsigned f;
    for (f = 0; f < 3; ++f) {
        mnv3_model *m = builtin(MNV3_ARCH_SMALL, flavors[f], 1.0, 5);
        float in[3 * 32 * 33], out[5];
        mnv3_context *ctx;
        if (!m) continue;
        fill_input(in, sizeof in / sizeof *in, 9);
        ctx = make_ctx(m, 1, 32, 33, MNV3_LAYOUT_NHWC, 2);
        CHECK_STATUS(mnv3_run(ctx, in, sizeof in / sizeof *in, out, 5, NULL, 0), MNV3_OK);
        CHECK(isfinite(out[0]) && isfinite(out[4]));
        mnv3_context_free(ctx);
        mnv3_model_free(m);
    }
}

static void test_layers_and_profile(void) {
    mnv3_model *m = builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 1000);
    mnv3_model_info info;
    mnv3_layer_info li;
    mnv3_config cfg;
    mnv3_context *ctx = NULL;
    mnv3_error err;
    uint64_t macs = 0, sum = 0, ns = 0;
    uint32_t i;
    float *in;
    if (!m) return;
    mnv3_model_get_info(m, &info);
    CHECK(info.num_layers > 20);
    CHECK_STATUS(mnv3_model_macs(m, 224, 224, &macs), MNV3_OK);
    for (i = 0; i < info.num_layers; ++i) {
        CHECK_STATUS(mnv3_model_layer(m, 224, 224, i, &li), MNV3_OK);
        sum += li.macs;
    }
    CHECK(sum == macs);
    CHECK(macs > 55000000u && macs < 58000000u); /* 56.5 M for Small at 224 */
    CHECK_STATUS(mnv3_model_layer(m, 224, 224, info.num_layers, &li), MNV3_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(mnv3_model_macs(m, 0, 224, &macs), MNV3_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(mnv3_model_macs(m, 224, 4000000000u, &macs), MNV3_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(mnv3_model_layer(m, 224, 224, 0, &li), MNV3_OK);
    CHECK(strcmp(li.name, "stem") == 0 && li.out_height == 112 && li.out_channels == 16);

    mnv3_config_init(&cfg, m);
    cfg.profile = 1;
    CHECK_STATUS(mnv3_context_create(m, &cfg, NULL, 0, &ctx, &err), MNV3_OK);
    in = (float *)calloc(3 * 224 * 224, sizeof(float));
    CHECK_STATUS(mnv3_run(ctx, in, 3 * 224 * 224, NULL, 0, NULL, 0), MNV3_OK);
    for (i = 0; i < info.num_layers; ++i) ns += mnv3_context_layer_ns(ctx, i);
    CHECK(ns > 0);
    CHECK(mnv3_context_layer_ns(ctx, 100000) == 0);
    free(in);
    mnv3_context_free(ctx);
    mnv3_model_free(m);
}

static void test_isa_names(void) {
    mnv3_isa isa;
    CHECK_STATUS(mnv3_isa_from_name("scalar", &isa), MNV3_OK);
    CHECK(isa == MNV3_ISA_SCALAR);
    CHECK_STATUS(mnv3_isa_from_name("sse9", &isa), MNV3_ERR_INVALID_ARGUMENT);
    CHECK(mnv3_isa_available(MNV3_ISA_SCALAR));
    CHECK(mnv3_isa_available(mnv3_isa_best()));
    CHECK(strcmp(mnv3_isa_name(MNV3_ISA_SCALAR), "scalar") == 0);
}

static int inside(const void *p, const void *base, size_t bytes) {
    const unsigned char *q = (const unsigned char *)p, *b = (const unsigned char *)base;
    return q >= b && q < b + bytes;
}

/* Two contexts on one model share one copy of the packed weights, held by the model, not by
 * either arena; the memory report says so; the weights outlive a freed context. */
static void test_shared_packed_weights(void) {
    mnv3_model *m = builtin(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 1.0, 1000);
    const mnv3_isa best = mnv3_isa_best();
    mnv3_config cfg;
    mnv3_arena_plan plan;
    mnv3_context *a = NULL, *b = NULL, *s = NULL;
    mnv3_error err;
    void *arena_a = NULL, *arena_b = NULL;
    float *in, out_a[1000], out_b[1000];
    size_t n_in, i, packed_steps = 0;
    uint32_t k;
    if (!m) return;
    mnv3_config_init(&cfg, m);
    cfg.height = cfg.width = 96;
    CHECK_STATUS(mnv3_arena_plan_for(m, &cfg, &plan, &err), MNV3_OK);
    CHECK(plan.isa == best);
    CHECK(plan.total == plan.activations + plan.scratch + plan.context);
    if (best != MNV3_ISA_SCALAR) CHECK(plan.packed_weights > 0);
    CHECK(posix_memalign(&arena_a, 64, plan.total) == 0 && posix_memalign(&arena_b, 64, plan.total) == 0);
    CHECK(m->packed == NULL); /* planning packs nothing */
    CHECK_STATUS(mnv3_context_create(m, &cfg, arena_a, plan.total, &a, &err), MNV3_OK);
    CHECK_STATUS(mnv3_context_create(m, &cfg, arena_b, plan.total, &b, &err), MNV3_OK);
    if (!a || !b) goto done;
    CHECK(mnv3_packed_set_count(m) == 1);
    CHECK(a->num_steps == b->num_steps);
    for (k = 0; k < a->num_steps; ++k) {
        const mnv3_step_binding *sa = &a->bind[k], *sb = &b->bind[k];
        CHECK(sa->packed[0] == sb->packed[0] && sa->packed[1] == sb->packed[1]);
        CHECK(!sa->packed[0] || (!inside(sa->packed[0], arena_a, plan.total) &&
                                 !inside(sa->packed[0], arena_b, plan.total)));
        /* each context prepares its rows' parameters in its own arena */
        CHECK(!sa->params[0] || inside(sa->params[0], arena_a, plan.total));
        if (a->steps[k].conv && sa->packed[0] != a->steps[k].conv->weight) ++packed_steps;
    }
    if (best != MNV3_ISA_SCALAR) CHECK(packed_steps > 0);
    /* A context of another kernel set gets its own entry; the scalar reference reads the
     * canonical weights in place. */
    cfg.isa = MNV3_ISA_SCALAR;
    CHECK_STATUS(mnv3_context_create(m, &cfg, NULL, 0, &s, &err), MNV3_OK);
    if (s) {
        for (k = 0; k < s->num_steps; ++k)
            if (s->steps[k].conv) CHECK(s->bind[k].packed[0] == s->steps[k].conv->weight);
        CHECK(mnv3_packed_set_count(m) == (best == MNV3_ISA_SCALAR ? 1 : 2));
        CHECK(s->plan.packed_weights == 0);
    }
    /* Same results from both; b still runs once a is gone. */
    n_in = (size_t)3 * 96 * 96;
    in = (float *)malloc(n_in * sizeof(float));
    fill_input(in, n_in, 5);
    CHECK_STATUS(mnv3_run(a, in, n_in, out_a, 1000, NULL, 0), MNV3_OK);
    mnv3_context_free(a);
    a = NULL;
    memset(arena_a, 0xAB, plan.total);
    CHECK_STATUS(mnv3_run(b, in, n_in, out_b, 1000, NULL, 0), MNV3_OK);
    for (i = 0; i < 1000; ++i) CHECK(out_a[i] == out_b[i]);
    free(in);
done:
    mnv3_context_free(a);
    mnv3_context_free(b);
    mnv3_context_free(s);
    free(arena_a);
    free(arena_b);
    mnv3_model_free(m);
}

int main(void) {
    test_planned_sizes();
    test_hostile_arguments();
    test_equivalences();
    test_fused_and_prefetch_invariance();
    test_small_inputs();
    test_layers_and_profile();
    test_isa_names();
    test_shared_packed_weights();
    return check_summary("test_arena");
}
