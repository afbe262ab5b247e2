/* The built-in int8 networks: they pass every quantization check, survive a save/load round
 * trip byte for byte, are deterministic, and their weights are the float built-in's within
 * half a quantization step. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "model/model.h"
#include "mnv3.h"

/* The model's file image (malloc'ed), or NULL. */
static unsigned char *saved(const mnv3_model *m, size_t *size) {
    mnv3_error err;
    unsigned char *image;
    *size = 0;
    CHECK_STATUS(mnv3_model_save_memory(m, NULL, 0, size, &err), MNV3_OK);
    image = (unsigned char *)malloc(*size ? *size : 1);
    if (!image) return NULL;
    CHECK_STATUS(mnv3_model_save_memory(m, image, *size, size, &err), MNV3_OK);
    return image;
}

static mnv3_model *create(mnv3_arch arch, mnv3_flavor flavor, double width, uint32_t classes,
                          uint64_t seed) {
    mnv3_model *m = NULL;
    mnv3_error err;
    mnv3_status st = mnv3_model_create_builtin_int8(arch, flavor, width, classes, seed, &m, &err);
    CHECK_MSG(st == MNV3_OK, "create_builtin_int8(%d, %d, %g): %s", (int)arch, (int)flavor, width,
              err.message);
    return st == MNV3_OK ? m : NULL;
}

/* Saved, loaded and saved again: the same bytes, a 1.1 file, and the loader's checks pass. */
static void test_round_trip(mnv3_arch arch, mnv3_flavor flavor, double width) {
    mnv3_model *m = create(arch, flavor, width, 1000, 7), *back = NULL;
    mnv3_model_info a, b;
    mnv3_error err;
    size_t size = 0, size2 = 0;
    unsigned char *image, *image2;
    if (!m) return;
    image = saved(m, &size);
    CHECK(image && size > 64);
    if (!image) {
        mnv3_model_free(m);
        return;
    }
    CHECK(image[8] == 1 && image[10] == 1); /* version 1.1: quantized */
    CHECK_STATUS(mnv3_model_load_memory(image, size, 0, &back, &err), MNV3_OK);
    if (back) {
        CHECK(back->quantized);
        CHECK_STATUS(mnv3_model_get_info(m, &a), MNV3_OK);
        CHECK_STATUS(mnv3_model_get_info(back, &b), MNV3_OK);
        CHECK(a.parameters == b.parameters && a.num_classes == b.num_classes &&
              a.num_blocks == b.num_blocks);
        image2 = saved(back, &size2);
        CHECK(image2 && size2 == size && memcmp(image, image2, size) == 0);
        free(image2);
    }
    mnv3_model_free(back);
    mnv3_model_free(m);
    free(image);
}

static void test_deterministic(void) {
    mnv3_model *a = create(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 1000, 3);
    mnv3_model *b = create(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 1000, 3);
    mnv3_model *c = create(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 1000, 4);
    size_t na = 0, nb = 0, nc = 0;
    unsigned char *ia = a ? saved(a, &na) : NULL, *ib = b ? saved(b, &nb) : NULL;
    unsigned char *ic = c ? saved(c, &nc) : NULL;
    CHECK(ia && ib && ic);
    if (ia && ib && ic) {
        CHECK(na == nb && memcmp(ia, ib, na) == 0);
        CHECK(na == nc && memcmp(ia, ic, na) != 0);
    }
    free(ia);
    free(ib);
    free(ic);
    mnv3_model_free(a);
    mnv3_model_free(b);
    mnv3_model_free(c);
}

static uint32_t fnv1a(uint32_t h, const void *data, size_t n) {
    const unsigned char *p = (const unsigned char *)data;
    size_t i;
    for (i = 0; i < n; ++i) h = (h ^ p[i]) * 16777619u;
    return h;
}

/* Little-endian bytes of 32-bit values, so that the hash does not depend on the host. */
static uint32_t hash_words(uint32_t h, const void *words, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i) {
        uint32_t v;
        unsigned char le[4];
        memcpy(&v, (const unsigned char *)words + 4 * i, 4);
        le[0] = (unsigned char)v;
        le[1] = (unsigned char)(v >> 8);
        le[2] = (unsigned char)(v >> 16);
        le[3] = (unsigned char)(v >> 24);
        h = fnv1a(h, le, 4);
    }
    return h;
}

static uint32_t hash_q(uint32_t h, mnv3_q8_param q) {
    return hash_words(hash_words(h, &q.scale, 1), &q.zero_point, 1);
}

/* The network's int8 tensors and every scale and zero point, hashed: the same on every
 * machine and compiler (the C suite runs under qemu for ARM too). A change of the float
 * built-in's weights or of the quantization recipe changes it on purpose; update it then. */
static void test_same_everywhere(void) {
    mnv3_model *m = create(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 1000, 0);
    mnv3_conv *list[MNV3_MAX_CONVS];
    uint32_t h = 2166136261u, n, i, b;
    if (!m) return;
    n = mnv3_model_convs(m, list);
    h = hash_q(hash_q(h, m->q8_input), m->pool_output);
    for (b = 0; b < m->num_blocks; ++b) {
        const mnv3_block *k = &m->blocks[b];
        h = hash_q(hash_q(hash_q(h, k->se_pool_output), k->se_mul_output), k->residual_output);
    }
    for (i = 0; i < n; ++i) {
        const mnv3_conv *c = list[i];
        h = fnv1a(h, c->weight, mnv3_conv_weight_count(c));
        h = hash_words(h, c->q8.weight_scale, c->out_channels);
        if (c->has_bias) h = hash_words(h, c->q8.bias, c->out_channels);
        if (c->q8.table) h = fnv1a(hash_q(h, c->q8.table_output), c->q8.table, 256);
        h = hash_words(hash_words(hash_q(h, c->q8.output), &c->q8.act_lo, 1), &c->q8.act_hi, 1);
    }
    CHECK_MSG(h == 0x710a99c5u, "int8 Small hashes to 0x%08x", (unsigned)h);
    mnv3_model_free(m);
}

/* Every int8 weight is its float weight to within half a step, and the activation slots
 * the network code reads are quantized as the checks demand. */
static void test_matches_float(mnv3_arch arch) {
    mnv3_model *q = create(arch, MNV3_FLAVOR_TORCHVISION, 1.0, 1000, 11), *f = NULL;
    mnv3_conv *ql[MNV3_MAX_CONVS], *fl[MNV3_MAX_CONVS];
    mnv3_error err;
    uint32_t n, i, bad = 0, tables = 0;
    CHECK_STATUS(mnv3_model_create_builtin(arch, MNV3_FLAVOR_TORCHVISION, 1.0, 1000, 11, &f, &err),
                 MNV3_OK);
    if (!q || !f) {
        mnv3_model_free(q);
        mnv3_model_free(f);
        return;
    }
    n = mnv3_model_convs(q, ql);
    CHECK(n == mnv3_model_convs(f, fl));
    for (i = 0; i < n; ++i) {
        const mnv3_conv *c = ql[i];
        const size_t count = mnv3_conv_weight_count(c), per_out = count / c->out_channels;
        const int8_t *w = (const int8_t *)c->weight;
        const float *fw = (const float *)fl[i]->weight;
        size_t j;
        CHECK(c->weight_type == MNV3_DTYPE_I8 && c->q8.weight_zero_point == 0);
        tables += c->q8.table != NULL;
        for (j = 0; j < count; ++j) {
            const uint32_t o = c->depthwise ? (uint32_t)(j % c->out_channels)
                                            : (uint32_t)(j / per_out);
            const float s = c->q8.weight_scale[o];
            bad += w[j] == -128 || fabsf((float)w[j] * s - fw[j]) > 0.5001f * s;
        }
        for (j = 0; c->has_bias && j < c->out_channels; ++j) {
            const float s = c->q8.bias_scale[j];
            /* On the accumulator's scale exactly, not just within the loader's tolerance. */
            bad += s != c->q8.input.scale * c->q8.weight_scale[j];
            bad += fabsf((float)((double)c->q8.bias[j] * s) - fl[i]->bias[j]) > 0.5001f * s + 1e-6f;
        }
    }
    CHECK_MSG(bad == 0, "%u weights or biases off by more than half a step", bad);
    CHECK(tables > 0);
    /* The input covers the normalised range of pixels 0..255 with zero representable. */
    CHECK(q->q8_input.scale > 0.0f && q->q8_input.scale < 0.05f);
    CHECK(q->pool_mode == MNV3_Q8_POOL_MEAN);
    mnv3_model_free(q);
    mnv3_model_free(f);
}

/* A context reports the int8 kernel variant it runs; a float context none. */
static void test_int8_kernels_name(void) {
    mnv3_model *q = create(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.5, 10, 1), *f = NULL;
    mnv3_context *ctx = NULL;
    mnv3_config cfg;
    mnv3_error err;
    CHECK(mnv3_context_int8_kernels(NULL) == NULL);
    if (!q) return;
    mnv3_config_init(&cfg, q);
    cfg.height = cfg.width = 64;
    cfg.isa = MNV3_ISA_SCALAR;
    CHECK_STATUS(mnv3_context_create(q, &cfg, NULL, 0, &ctx, &err), MNV3_OK);
    CHECK(ctx && mnv3_context_int8_kernels(ctx) &&
          strcmp(mnv3_context_int8_kernels(ctx), "scalar") == 0);
    mnv3_context_free(ctx);
    ctx = NULL;
    cfg.isa = MNV3_ISA_AUTO;
    CHECK_STATUS(mnv3_context_create(q, &cfg, NULL, 0, &ctx, &err), MNV3_OK);
    CHECK(ctx && mnv3_context_int8_kernels(ctx) != NULL);
    if (ctx) printf("int8 kernels under auto: %s\n", mnv3_context_int8_kernels(ctx));
    mnv3_context_free(ctx);
    ctx = NULL;
    CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.5, 10, 1, &f,
                                           &err),
                 MNV3_OK);
    if (f) {
        mnv3_config_init(&cfg, f);
        cfg.height = cfg.width = 64;
        CHECK_STATUS(mnv3_context_create(f, &cfg, NULL, 0, &ctx, &err), MNV3_OK);
        CHECK(ctx && mnv3_context_int8_kernels(ctx) == NULL);
        mnv3_context_free(ctx);
    }
    mnv3_model_free(f);
    mnv3_model_free(q);
}

static void test_bad_arguments(void) {
    mnv3_model *m = (mnv3_model *)&m;
    mnv3_error err;
    CHECK_STATUS(mnv3_model_create_builtin_int8(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 1.0,
                                                1000, 0, NULL, &err),
                 MNV3_ERR_NULL_ARGUMENT);
    CHECK_STATUS(mnv3_model_create_builtin_int8(MNV3_ARCH_CUSTOM, MNV3_FLAVOR_TORCHVISION, 1.0,
                                                1000, 0, &m, &err),
                 MNV3_ERR_INVALID_ARGUMENT);
    CHECK(m == NULL);
    CHECK_STATUS(mnv3_model_create_builtin_int8(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.0,
                                                1000, 0, &m, &err),
                 MNV3_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(mnv3_model_create_builtin_int8(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 0,
                                                0, &m, &err),
                 MNV3_ERR_INVALID_ARGUMENT);
    CHECK(m == NULL);
}

int main(void) {
    mnv3_model *m;
    test_round_trip(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 1.0);
    test_round_trip(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0);
    test_round_trip(MNV3_ARCH_SMALL, MNV3_FLAVOR_TFLITE, 0.75);
    test_round_trip(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 0.35);
    /* SE convs without bias, one of them with a table. */
    test_round_trip(MNV3_ARCH_SMALL, MNV3_FLAVOR_WALKTHROUGH, 1.0);
    test_round_trip(MNV3_ARCH_LARGE, MNV3_FLAVOR_WALKTHROUGH, 0.5);
    /* A one-class head. */
    m = create(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 1, 5);
    mnv3_model_free(m);
    test_deterministic();
    test_same_everywhere();
    test_matches_float(MNV3_ARCH_LARGE);
    test_matches_float(MNV3_ARCH_SMALL);
    test_int8_kernels_name();
    test_bad_arguments();
    return check_summary("test_builtin_q8");
}
