/* End-to-end accuracy against reference frameworks.
 *
 * 1. Every golden directory under $MNV3_GOLDEN_DIR (default build/goldens), written by
 *    tools/make_goldens.py or tools/golden.py: model.mnv3, input.npy, logits.npy,
 *    features.npy, meta.json. The model runs on the scalar kernels and on the best kernels
 *    of this CPU; logits and features must match to max|d| <= tol * max(1, max|ref|) and
 *    agree on top-1 per image. A golden with reference_probs.npy (TFLite) must also share
 *    at least topk_min_overlap of its top-5.
 * 2. The real TFLite MobileNetV3-Small from $MNV3_SHARED_DIR (default ../shared), imported
 *    into the golden directory: raw uint8 images preprocessed as the model's metadata says;
 *    top-1 must be 286 (Egyptian cat) and 968 (espresso), and >= 3 of TFLite's top-5. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "mnv3.h"
#include "mnv3_npy.h"

#define MAX_GOLDENS 256
#define PATH_LEN 1024

static int quick; /* MNV3_TEST_QUICK: emulated runs; fewer kernel sets, no Large goldens */

static const char *howto =
    "generate them with `make goldens` or `python3 tools/make_goldens.py --out build/goldens`";

/* ---- small helpers -------------------------------------------------------------------- */

/* dir + "/" + name into buf; a path that does not fit is a test failure. */
static int join(char *buf, size_t size, const char *dir, const char *name) {
    int n = snprintf(buf, size, "%s/%s", dir, name);
    if (n >= 0 && (size_t)n < size) return 1;
    CHECK_MSG(0, "path %s/%s too long", dir, name);
    return 0;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    long n;
    char *s;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    s = (char *)malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

/* Finds "key": in a flat JSON object; returns a pointer to the value or NULL. */
static const char *json_value(const char *json, const char *key) {
    char pat[64];
    const char *p;
    snprintf(pat, sizeof pat, "\"%s\"", key);
    p = json ? strstr(json, pat) : NULL;
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') ++p;
    if (*p != ':') return NULL;
    ++p;
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') ++p;
    return p;
}

static double json_number(const char *json, const char *key, double fallback) {
    const char *v = json_value(json, key);
    char *end;
    double d;
    if (!v) return fallback;
    d = strtod(v, &end);
    return end == v ? fallback : d;
}

static int json_string_is(const char *json, const char *key, const char *want) {
    const char *v = json_value(json, key);
    size_t n = strlen(want);
    return v && v[0] == '"' && strncmp(v + 1, want, n) == 0 && v[1 + n] == '"';
}

/* Reads up to `max` integers of a JSON array value; returns how many. */
static int json_ints(const char *json, const char *key, long *out, int max) {
    const char *v = json_value(json, key);
    int n = 0;
    if (!v || *v != '[') return 0;
    ++v;
    while (n < max) {
        char *end;
        long x;
        while (*v == ' ' || *v == '\n' || *v == '\r' || *v == '\t' || *v == ',') ++v;
        if (*v == ']' || !*v) break;
        x = strtol(v, &end, 10);
        if (end == v) break;
        out[n++] = x;
        v = end;
    }
    return n;
}

static uint32_t argmax(const float *v, size_t n) {
    uint32_t best = 0;
    size_t i;
    for (i = 1; i < n; ++i)
        if (v[i] > v[best]) best = (uint32_t)i;
    return best;
}

static double max_abs(const float *v, size_t n) {
    double m = 0;
    size_t i;
    for (i = 0; i < n; ++i)
        if (fabs(v[i]) > m) m = fabs(v[i]);
    return m;
}

static int read_npy(const char *dir, const char *name, mnv3_npy_array *a, mnv3_npy_dtype dtype) {
    char path[PATH_LEN];
    mnv3_error err;
    mnv3_status st;
    join(path, sizeof path, dir, name);
    st = mnv3_npy_read_file(path, a, &err);
    CHECK_MSG(st == MNV3_OK, "%s: %s", path, err.message);
    if (st != MNV3_OK) return 0;
    CHECK_MSG(a->dtype == dtype, "%s: unexpected dtype %d", path, (int)a->dtype);
    if (a->dtype != dtype) {
        mnv3_npy_free(a);
        return 0;
    }
    return 1;
}

/* Number of indices shared by the top-5 of two score rows. */
static int top5_overlap(const float *a, const float *b, size_t cols) {
    uint32_t ta[5], tb[5];
    int i, j, n = 0;
    if (cols < 5) return 0;
    mnv3_top_k(a, cols, 5, ta);
    mnv3_top_k(b, cols, 5, tb);
    for (i = 0; i < 5; ++i)
        for (j = 0; j < 5; ++j)
            if (ta[i] == tb[j]) ++n;
    return n;
}

/* Runs a model on `input` with one kernel set and thread count. */
static mnv3_status run_model(const mnv3_model *m, uint32_t batch, uint32_t h, uint32_t w,
                             mnv3_layout layout, mnv3_isa isa, uint32_t threads,
                             const float *input, size_t input_len, float *logits,
                             size_t logits_len, float *features, size_t features_len,
                             mnv3_error *err) {
    mnv3_config cfg;
    mnv3_context *ctx = NULL;
    mnv3_status st;
    mnv3_config_init(&cfg, m);
    cfg.batch = batch;
    cfg.height = h;
    cfg.width = w;
    cfg.layout = layout;
    cfg.isa = isa;
    cfg.threads = threads;
    st = mnv3_context_create(m, &cfg, NULL, 0, &ctx, err);
    if (st != MNV3_OK) return st;
    st = mnv3_run(ctx, input, input_len, logits, logits_len, features, features_len);
    if (st != MNV3_OK && err) {
        err->status = st;
        snprintf(err->message, sizeof err->message, "mnv3_run: %s", mnv3_status_string(st));
    }
    mnv3_context_free(ctx);
    return st;
}

/* ---- one golden directory --------------------------------------------------------------- */

/* A golden of a built-in flavor (meta.json names arch, flavor and width_mult) was exported
 * from the reference framework's own model: the built-in architecture of the same arch,
 * flavor, width and class count must be that network, layer for layer, with the parameter
 * count the framework reports ("parameters", when recorded). */
static void check_builtin_matches(const char *name, const char *meta, const mnv3_model *m,
                                  uint32_t h, uint32_t w) {
    mnv3_arch arch = json_string_is(meta, "arch", "large")   ? MNV3_ARCH_LARGE
                     : json_string_is(meta, "arch", "small") ? MNV3_ARCH_SMALL
                                                             : MNV3_ARCH_CUSTOM;
    mnv3_flavor flavor = json_string_is(meta, "flavor", "torchvision") ? MNV3_FLAVOR_TORCHVISION
                         : json_string_is(meta, "flavor", "walkthrough")
                             ? MNV3_FLAVOR_WALKTHROUGH
                             : MNV3_FLAVOR_CUSTOM;
    double width = json_number(meta, "width_mult", 0.0), torch_params;
    mnv3_model *b = NULL;
    mnv3_model_info mi, bi;
    mnv3_error err;
    mnv3_status st;
    uint32_t i, mismatched = 0;
    if (arch == MNV3_ARCH_CUSTOM || flavor == MNV3_FLAVOR_CUSTOM || !(width > 0.0)) return;
    mnv3_model_get_info(m, &mi);
    st = mnv3_model_create_builtin(arch, flavor, width, mi.num_classes, 1, &b, &err);
    CHECK_MSG(st == MNV3_OK, "%s: built-in of the same architecture: %s", name, err.message);
    if (st != MNV3_OK) return;
    mnv3_model_get_info(b, &bi);
    torch_params = json_number(meta, "parameters", -1.0);
    if (torch_params >= 0.0)
        CHECK_MSG((double)mi.parameters == torch_params, "%s: %llu parameters, the reference "
                  "model has %.0f", name, (unsigned long long)mi.parameters, torch_params);
    CHECK_MSG(bi.parameters == mi.parameters && bi.stored_floats == mi.stored_floats &&
                  bi.feature_dim == mi.feature_dim && bi.num_layers == mi.num_layers,
              "%s: built-in has %llu parameters, %u features, %u layers; the exported model "
              "%llu, %u, %u", name, (unsigned long long)bi.parameters, bi.feature_dim,
              bi.num_layers, (unsigned long long)mi.parameters, mi.feature_dim, mi.num_layers);
    for (i = 0; i < mi.num_layers && i < bi.num_layers; ++i) {
        mnv3_layer_info a, c;
        if (mnv3_model_layer(m, h, w, i, &a) != MNV3_OK ||
            mnv3_model_layer(b, h, w, i, &c) != MNV3_OK ||
            a.kind != c.kind || a.in_channels != c.in_channels ||
            a.out_channels != c.out_channels || a.kernel != c.kernel || a.stride != c.stride ||
            a.out_height != c.out_height || a.out_width != c.out_width ||
            a.activation != c.activation || a.residual != c.residual || a.macs != c.macs) {
            if (!mismatched++)
                fprintf(stderr, "%s: layer %u (%s) of the built-in differs: %u -> %u channels "
                        "vs %u -> %u\n", name, i, a.name, c.in_channels, c.out_channels,
                        a.in_channels, a.out_channels);
        }
    }
    CHECK_MSG(mismatched == 0, "%s: %u layers of the built-in differ from the exported model",
              name, mismatched);
    mnv3_model_free(b);
}

static void check_golden(const char *dir, const char *name) {
    char path[PATH_LEN];
    char *meta;
    mnv3_model *m = NULL;
    mnv3_error err;
    mnv3_status st;
    mnv3_npy_array in, ref_logits, ref_feats, probs;
    mnv3_model_info info;
    mnv3_layout layout;
    uint32_t batch, h, w, classes, fdim, b;
    double tol;
    int has_probs, pass;
    mnv3_isa isas[4];
    int n_isa = 1, k;
    float *logits, *feats;

    memset(&in, 0, sizeof in);
    memset(&ref_logits, 0, sizeof ref_logits);
    memset(&ref_feats, 0, sizeof ref_feats);
    memset(&probs, 0, sizeof probs);
    join(path, sizeof path, dir, "meta.json");
    meta = read_text(path);
    CHECK_MSG(meta != NULL, "%s: cannot read meta.json", name);
    if (!meta) return;
    layout = json_string_is(meta, "layout", "NHWC") ? MNV3_LAYOUT_NHWC : MNV3_LAYOUT_NCHW;
    tol = json_number(meta, "tolerance", 1e-4);
    if (quick && json_string_is(meta, "arch", "large")) {
        printf("%-32s skipped under MNV3_TEST_QUICK\n", name);
        goto done;
    }

    join(path, sizeof path, dir, "model.mnv3");
    st = mnv3_model_load_file(path, 0, &m, &err);
    CHECK_MSG(st == MNV3_OK, "%s: load: %s", name, err.message);
    if (st != MNV3_OK) goto done;
    mnv3_model_get_info(m, &info);
    classes = info.num_classes;
    fdim = info.feature_dim;
    if (!read_npy(dir, "input.npy", &in, MNV3_NPY_FLOAT32) ||
        !read_npy(dir, "logits.npy", &ref_logits, MNV3_NPY_FLOAT32) ||
        !read_npy(dir, "features.npy", &ref_feats, MNV3_NPY_FLOAT32))
        goto done;
    CHECK_MSG(in.ndim == 4, "%s: input.npy has %u dims", name, in.ndim);
    if (in.ndim != 4) goto done;
    batch = (uint32_t)in.shape[0];
    if (layout == MNV3_LAYOUT_NCHW) {
        h = (uint32_t)in.shape[2];
        w = (uint32_t)in.shape[3];
        CHECK_MSG(in.shape[1] == 3, "%s: NCHW input with %zu channels", name, in.shape[1]);
    } else {
        h = (uint32_t)in.shape[1];
        w = (uint32_t)in.shape[2];
        CHECK_MSG(in.shape[3] == 3, "%s: NHWC input with %zu channels", name, in.shape[3]);
    }
    check_builtin_matches(name, meta, m, h, w);
    CHECK_MSG(ref_logits.count == (size_t)batch * classes, "%s: logits.npy has %zu values, "
              "model gives %u x %u", name, ref_logits.count, batch, classes);
    CHECK_MSG(ref_feats.count == (size_t)batch * fdim, "%s: features.npy has %zu values, "
              "model gives %u x %u", name, ref_feats.count, batch, fdim);
    if (ref_logits.count != (size_t)batch * classes || ref_feats.count != (size_t)batch * fdim)
        goto done;
    join(path, sizeof path, dir, "reference_probs.npy");
    has_probs = is_file(path) && read_npy(dir, "reference_probs.npy", &probs, MNV3_NPY_FLOAT32);

    /* Every kernel set this CPU runs (the scalar reference on one thread, the others on two).
     * Under emulation (MNV3_TEST_QUICK) or with MNV3_ISA set, only the automatic choice. */
    if (quick || getenv("MNV3_ISA")) {
        isas[0] = MNV3_ISA_AUTO;
    } else {
        mnv3_isa all[] = {MNV3_ISA_SCALAR, MNV3_ISA_AVX2, MNV3_ISA_AVX512, MNV3_ISA_NEON};
        unsigned a;
        n_isa = 0;
        for (a = 0; a < sizeof all / sizeof *all; ++a)
            if (mnv3_isa_available(all[a])) isas[n_isa++] = all[a];
    }
    logits = (float *)malloc(sizeof(float) * batch * classes);
    feats = (float *)malloc(sizeof(float) * batch * fdim);
    if (!logits || !feats) {
        CHECK_MSG(0, "%s: out of memory", name);
        free(logits);
        free(feats);
        goto done;
    }
    for (k = 0; k < n_isa; ++k) {
        const float *rl = (const float *)ref_logits.data, *rf = (const float *)ref_feats.data;
        double scale_l = fmax(1.0, max_abs(rl, ref_logits.count));
        double scale_f = fmax(1.0, max_abs(rf, ref_feats.count));
        double err_l = 0, err_f = 0;
        size_t i;
        int top1_ok = 1, overlap_min = 5;
        uint32_t threads = isas[k] == MNV3_ISA_SCALAR ? 1 : 2;
        mnv3_isa used = isas[k] == MNV3_ISA_AUTO ? mnv3_isa_best() : isas[k];
        st = run_model(m, batch, h, w, layout, isas[k], threads, (const float *)in.data,
                       in.count, logits, (size_t)batch * classes, feats, (size_t)batch * fdim,
                       &err);
        CHECK_MSG(st == MNV3_OK, "%s [%s]: %s", name, mnv3_isa_name(used), err.message);
        if (st != MNV3_OK) continue;
        for (i = 0; i < ref_logits.count; ++i) err_l = fmax(err_l, fabs(logits[i] - rl[i]));
        for (i = 0; i < ref_feats.count; ++i) err_f = fmax(err_f, fabs(feats[i] - rf[i]));
        for (b = 0; b < batch; ++b) {
            const float *row = logits + (size_t)b * classes, *rrow = rl + (size_t)b * classes;
            uint32_t got = argmax(row, classes), want = argmax(rrow, classes);
            if (got != want) {
                /* Only a near-tie in the reference may flip within the tolerance. */
                int tie = fabs(rrow[got] - rrow[want]) <= 2 * tol * scale_l;
                CHECK_MSG(tie, "%s [%s] image %u: top-1 %u, reference %u", name,
                          mnv3_isa_name(used), b, got, want);
                if (!tie) top1_ok = 0;
            }
            if (has_probs && probs.count == (size_t)batch * classes) {
                int ov = top5_overlap(row, (const float *)probs.data + (size_t)b * classes,
                                      classes);
                int need = (int)json_number(meta, "topk_min_overlap", 3);
                CHECK_MSG(ov >= need, "%s image %u: %d of the reference top-5, need %d", name,
                          b, ov, need);
                if (ov < overlap_min) overlap_min = ov;
            }
        }
        {
            long expect[16];
            int ne = json_ints(meta, "expect_top1", expect, 16), j;
            for (j = 0; j < ne && j < (int)batch; ++j) {
                uint32_t got = argmax(logits + (size_t)j * classes, classes);
                CHECK_MSG(got == (uint32_t)expect[j], "%s image %d: top-1 %u, expected %ld",
                          name, j, got, expect[j]);
            }
        }
        pass = err_l <= tol * scale_l && err_f <= tol * scale_f;
        CHECK_MSG(err_l <= tol * scale_l, "%s [%s]: max|dlogit| %.3g > %.3g", name,
                  mnv3_isa_name(used), err_l, tol * scale_l);
        CHECK_MSG(err_f <= tol * scale_f, "%s [%s]: max|dfeature| %.3g > %.3g", name,
                  mnv3_isa_name(used), err_f, tol * scale_f);
        printf("%-32s %-7s %ux%ux%u b%u  logits max abs %.2e rel %.2e  features max abs %.2e "
               "rel %.2e  top-1 %s", name, mnv3_isa_name(used), h, w, 3u, batch, err_l,
               err_l / scale_l, err_f, err_f / scale_f, top1_ok ? "same" : "DIFFERENT");
        if (has_probs) printf("  top-5 overlap >= %d", overlap_min);
        printf("  %s\n", pass && top1_ok ? "ok" : "FAIL");
    }
    free(logits);
    free(feats);
done:
    mnv3_npy_free(&in);
    mnv3_npy_free(&ref_logits);
    mnv3_npy_free(&ref_feats);
    mnv3_npy_free(&probs);
    mnv3_model_free(m);
    free(meta);
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void check_golden_dir(const char *root) {
    DIR *d;
    struct dirent *e;
    char *names[MAX_GOLDENS];
    int n = 0, i;
    if (!is_dir(root)) {
        SKIP("no golden directory %s; %s (needs python3 with numpy and torch: "
             "pip install -r tools/requirements.txt)", root, howto);
        return;
    }
    d = opendir(root);
    if (!d) {
        SKIP("cannot open %s", root);
        return;
    }
    while ((e = readdir(d)) != NULL && n < MAX_GOLDENS) {
        char path[PATH_LEN];
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s/meta.json", root, e->d_name);
        if (!is_file(path)) continue;
        names[n] = (char *)malloc(strlen(e->d_name) + 1);
        if (!names[n]) break;
        strcpy(names[n++], e->d_name);
    }
    closedir(d);
    if (n == 0) {
        SKIP("no goldens in %s; %s", root, howto);
        return;
    }
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    for (i = 0; i < n; ++i) {
        char path[PATH_LEN];
        snprintf(path, sizeof path, "%s/%s", root, names[i]);
        check_golden(path, names[i]);
        free(names[i]);
    }
}

/* ---- the real TFLite model on raw images ------------------------------------------------ */

static void check_tflite_images(const char *shared, const char *golden_root) {
    static const char *images[2] = {"chelsea", "coffee"};
    static const uint32_t expect[2] = {286, 968};
    char path[PATH_LEN], model_path[PATH_LEN];
    mnv3_model *m = NULL;
    mnv3_model_info info;
    mnv3_error err;
    mnv3_status st;
    int i;
    snprintf(path, sizeof path, "%s/models/mobilenet_v3_small_1.0_224_uint8.tflite", shared);
    if (!is_file(path)) {
        SKIP("real TFLite model check: %s not found (set MNV3_SHARED_DIR)", path);
        return;
    }
    snprintf(model_path, sizeof model_path, "%s/tflite_small_uint8/model.mnv3", golden_root);
    if (!is_file(model_path)) {
        SKIP("real TFLite model check: %s missing; import it with `make goldens` (needs "
             "python3 with numpy and tflite: pip install -r tools/requirements.txt)",
             model_path);
        return;
    }
    st = mnv3_model_load_file(model_path, 0, &m, &err);
    CHECK_MSG(st == MNV3_OK, "%s: %s", model_path, err.message);
    if (st != MNV3_OK) return;
    mnv3_model_get_info(m, &info);
    CHECK(info.num_classes == 1001);
    CHECK(info.has_labels);
    CHECK(info.preprocess.layout == MNV3_LAYOUT_NHWC);
    for (i = 0; i < 2; ++i) {
        mnv3_npy_array img, probs;
        float *x = NULL, *logits = NULL;
        uint32_t top1;
        int ov;
        memset(&img, 0, sizeof img);
        memset(&probs, 0, sizeof probs);
        join(path, sizeof path, shared, "images");
        snprintf(model_path, sizeof model_path, "%s_224_nhwc_uint8.npy", images[i]);
        if (!read_npy(path, model_path, &img, MNV3_NPY_UINT8)) continue;
        snprintf(model_path, sizeof model_path, "%s_tflite_uint8_probs.npy", images[i]);
        if (!read_npy(path, model_path, &probs, MNV3_NPY_FLOAT32)) {
            mnv3_npy_free(&img);
            continue;
        }
        CHECK(img.ndim == 4 && img.shape[1] == 224 && img.shape[2] == 224 && img.shape[3] == 3);
        CHECK(probs.count == 1001);
        x = (float *)malloc(sizeof(float) * 3 * 224 * 224);
        logits = (float *)malloc(sizeof(float) * 1001);
        if (x && logits && img.count == 3 * 224 * 224 && probs.count == 1001) {
            CHECK_STATUS(mnv3_preprocess_image(m, (const uint8_t *)img.data, 224, 224, 3, 224,
                                               224, MNV3_LAYOUT_NHWC, x, 3 * 224 * 224),
                         MNV3_OK);
            st = run_model(m, 1, 224, 224, MNV3_LAYOUT_NHWC, MNV3_ISA_AUTO, 1, x,
                           3 * 224 * 224, logits, 1001, NULL, 0, &err);
            CHECK_MSG(st == MNV3_OK, "%s: %s", images[i], err.message);
            if (st == MNV3_OK) {
                const char *label;
                top1 = argmax(logits, 1001);
                ov = top5_overlap(logits, (const float *)probs.data, 1001);
                label = mnv3_model_label(m, top1);
                CHECK_MSG(top1 == expect[i], "%s: top-1 %u, expected %u", images[i], top1,
                          expect[i]);
                CHECK_MSG(ov >= 3, "%s: %d of TFLite's top-5, need 3", images[i], ov);
                printf("tflite %-8s top-1 %u (%s), TFLite %u, top-5 overlap %d/5\n", images[i],
                       top1, label ? label : "?", argmax((const float *)probs.data, 1001), ov);
            }
        }
        free(x);
        free(logits);
        mnv3_npy_free(&img);
        mnv3_npy_free(&probs);
    }
    mnv3_model_free(m);
}

int main(void) {
    const char *golden = getenv("MNV3_GOLDEN_DIR");
    const char *shared = getenv("MNV3_SHARED_DIR");
    const char *q = getenv("MNV3_TEST_QUICK");
    quick = q && *q && strcmp(q, "0") != 0;
    if (!golden || !*golden) golden = "build/goldens";
    if (!shared || !*shared) shared = "../shared";
    check_golden_dir(golden);
    check_tflite_images(shared, golden);
    return check_summary("test_networks");
}
