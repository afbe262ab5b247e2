/* Built-in architectures: parameter counts as the source frameworks count them, MACs, and
 * channel rounding. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "mnv3.h"

static uint64_t params(mnv3_arch arch, mnv3_flavor flavor, double width, uint32_t classes) {
    mnv3_model *m = NULL;
    mnv3_model_info info;
    mnv3_error err;
    mnv3_status st = mnv3_model_create_builtin(arch, flavor, width, classes, 1, &m, &err);
    CHECK_MSG(st == MNV3_OK, "create_builtin: %s", err.message);
    if (st != MNV3_OK) return 0;
    mnv3_model_get_info(m, &info);
    mnv3_model_free(m);
    return info.parameters;
}

/* Logits of a fixed input at 64x64 on one kernel set; NULL when the context fails. */
static float *run_logits(const mnv3_model *m, mnv3_isa isa, uint32_t classes) {
    static float input[3 * 64 * 64];
    mnv3_config cfg;
    mnv3_context *ctx = NULL;
    mnv3_error err;
    float *logits = (float *)calloc(classes, sizeof *logits);
    size_t i;
    for (i = 0; i < sizeof input / sizeof *input; ++i)
        input[i] = (float)((i * 7919u) % 255u) / 64.0f - 2.0f;
    mnv3_config_init(&cfg, m);
    cfg.height = cfg.width = 64;
    cfg.isa = isa;
    CHECK_STATUS(mnv3_context_create(m, &cfg, NULL, 0, &ctx, &err), MNV3_OK);
    if (!ctx || !logits) {
        free(logits);
        return NULL;
    }
    CHECK_STATUS(mnv3_run(ctx, input, sizeof input / sizeof *input, logits, classes, NULL, 0),
                 MNV3_OK);
    /* One logit too few or too many is a shape error: the count is exactly `classes`. */
    CHECK_STATUS(mnv3_run(ctx, input, sizeof input / sizeof *input, logits, classes - 1, NULL, 0),
                 MNV3_ERR_SHAPE);
    mnv3_context_free(ctx);
    return logits;
}

/* The class count may exceed the channel limit (16384) up to MNV3_MAX_CLASSES: ImageNet-21k
 * heads have 21843 classes. */
static void test_many_classes(void) {
    const uint32_t classes = 21843;
    mnv3_model *m = NULL, *back = NULL;
    mnv3_model_info info;
    mnv3_error err;
    size_t size = 0, i, differ = 0;
    void *image;
    float *scalar, *best, *reloaded;
    CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.25,
                                           classes, 3, &m, &err), MNV3_OK);
    if (!m) {
        fprintf(stderr, "21843 classes: %s\n", err.message);
        return;
    }
    CHECK_STATUS(mnv3_model_get_info(m, &info), MNV3_OK);
    CHECK(info.num_classes == classes);
    scalar = run_logits(m, MNV3_ISA_SCALAR, classes);
    best = run_logits(m, MNV3_ISA_AUTO, classes);
    CHECK_STATUS(mnv3_model_save_memory(m, NULL, 0, &size, &err), MNV3_OK);
    image = malloc(size);
    CHECK_STATUS(mnv3_model_save_memory(m, image, size, &size, &err), MNV3_OK);
    CHECK_STATUS(mnv3_model_load_memory(image, size, 0, &back, &err), MNV3_OK);
    reloaded = back ? run_logits(back, MNV3_ISA_SCALAR, classes) : NULL;
    CHECK(scalar && best && reloaded);
    if (scalar && best && reloaded) {
        float peak = 0.0f;
        CHECK(memcmp(scalar, reloaded, classes * sizeof *scalar) == 0);
        for (i = 0; i < classes; ++i) {
            float d = fabsf(scalar[i] - best[i]);
            if (fabsf(scalar[i]) > peak) peak = fabsf(scalar[i]);
            differ += d > 1e-3f * (1.0f + fabsf(scalar[i]));
        }
        CHECK_MSG(differ == 0, "%zu of %u logits differ between scalar and %s", differ, classes,
                  mnv3_isa_name(mnv3_isa_best()));
        CHECK(peak > 0.0f && scalar[classes - 1] != 0.0f);
    }
    free(scalar);
    free(best);
    free(reloaded);
    free(image);
    mnv3_model_free(back);
    mnv3_model_free(m);
    CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 0.25,
                                           100001, 3, &m, &err), MNV3_ERR_INVALID_ARGUMENT);
}

int main(void) {
    mnv3_model *m = NULL;
    mnv3_error err;
    uint64_t macs = 0;
    /* torch.nn.Module.parameters() totals (BatchNorm contributes weight and bias). */
    CHECK(params(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 1.0, 1000) == 5483032u);
    CHECK(params(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 1000) == 2542856u);
    CHECK(params(MNV3_ARCH_LARGE, MNV3_FLAVOR_WALKTHROUGH, 1.0, 1000) == 5476416u);
    /* The walkthrough PyTorch model scales every channel count by int(c * width), the
     * head's hidden layer (1280 / 1024) included. */
    {
        static const struct {
            mnv3_arch arch;
            double width;
            uint64_t params;
        } walk[] = {
            {MNV3_ARCH_LARGE, 0.35, 988433u},  {MNV3_ARCH_LARGE, 0.5, 1719292u},
            {MNV3_ARCH_LARGE, 0.75, 3342766u}, {MNV3_ARCH_LARGE, 1.25, 8119150u},
            {MNV3_ARCH_SMALL, 0.35, 558130u},  {MNV3_ARCH_SMALL, 0.5, 908460u},
            {MNV3_ARCH_SMALL, 0.75, 1631626u}, {MNV3_ARCH_SMALL, 1.0, 2534656u},
            {MNV3_ARCH_SMALL, 1.25, 3617130u},
        };
        size_t i;
        for (i = 0; i < sizeof walk / sizeof *walk; ++i) {
            uint64_t got = params(walk[i].arch, MNV3_FLAVOR_WALKTHROUGH, walk[i].width, 1000);
            CHECK_MSG(got == walk[i].params, "walkthrough %s width %g: %llu parameters, PyTorch "
                      "has %llu", walk[i].arch == MNV3_ARCH_LARGE ? "large" : "small",
                      walk[i].width, (unsigned long long)got,
                      (unsigned long long)walk[i].params);
        }
        CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_LARGE, MNV3_FLAVOR_WALKTHROUGH, 0.5, 10,
                                               1, &m, &err), MNV3_OK);
        if (m) {
            mnv3_model_info info;
            mnv3_layer_info fc;
            mnv3_model_get_info(m, &info);
            CHECK(info.feature_dim == 480);
            CHECK_STATUS(mnv3_model_layer(m, 224, 224, info.num_layers - 2, &fc), MNV3_OK);
            CHECK_MSG(fc.kind == MNV3_LAYER_FULLY_CONNECTED && fc.in_channels == 480 &&
                      fc.out_channels == 640, "head.fc1 of walkthrough large 0.5: %u -> %u",
                      fc.in_channels, fc.out_channels);
            mnv3_model_free(m);
            m = NULL;
        }
    }
    printf("large tv %llu small tv %llu large walk %llu small walk %llu large 0.75 %llu\n",
           (unsigned long long)params(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 1.0, 1000),
           (unsigned long long)params(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 1000),
           (unsigned long long)params(MNV3_ARCH_LARGE, MNV3_FLAVOR_WALKTHROUGH, 1.0, 1000),
           (unsigned long long)params(MNV3_ARCH_SMALL, MNV3_FLAVOR_WALKTHROUGH, 1.0, 1000),
           (unsigned long long)params(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 0.75, 1000));

    CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 1.0, 1000, 7,
                                           &m, &err), MNV3_OK);
    CHECK_STATUS(mnv3_model_macs(m, 224, 224, &macs), MNV3_OK);
    printf("large macs %llu\n", (unsigned long long)macs);
    mnv3_model_free(m);

    CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_LARGE, MNV3_FLAVOR_TORCHVISION, 0.0, 10, 1,
                                           &m, &err), MNV3_ERR_INVALID_ARGUMENT);
    CHECK(m == NULL);
    CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_CUSTOM, MNV3_FLAVOR_TORCHVISION, 1.0, 10, 1,
                                           &m, &err), MNV3_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 0, 1,
                                           &m, &err), MNV3_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(mnv3_model_create_builtin(MNV3_ARCH_SMALL, MNV3_FLAVOR_TORCHVISION, 1.0, 10, 1,
                                           NULL, &err), MNV3_ERR_NULL_ARGUMENT);
    test_many_classes();
    return check_summary("test_builtin");
}
