/* Writes the seed corpus of the fuzzers: small but complete model files (every flavor, with
 * and without labels) and a few .npy files. Run from the repository root:
 *   make fuzz-corpus */
#include <stdio.h>
#include <string.h>

#include "mnv3.h"
#include "mnv3_npy.h"
#include "model/model.h"
#include "model/weights.h"

static const char *const labels[6] = {"cat", "dog", "bird", "fish", "\xC3\xA9l\xC3\xA9phant", ""};

/* The first few blocks of MobileNetV3-Small at width 0.25 with a narrow head: every kind of
 * layer, a residual, SE, in a few kilobytes. */
static int tiny(mnv3_flavor flavor, uint32_t blocks, int with_labels, int int8,
                const char *path) {
    mnv3_model *m = NULL;
    mnv3_error err;
    if (mnv3_model_create_builtin(MNV3_ARCH_SMALL, flavor, 0.25, 6, 11, &m, &err) != MNV3_OK)
        goto fail;
    m->num_blocks = blocks;
    m->last_conv.in_channels = m->blocks[blocks - 1].project.out_channels;
    m->last_conv.out_channels = 16;
    m->head[0].in_channels = 16;
    m->head[0].out_channels = 12;
    m->head[1].in_channels = 12;
    if (with_labels) {
        m->labels = labels;
        m->num_labels = 6;
    }
    if (mnv3_weights_attach(m, &err) != MNV3_OK) goto fail;
    mnv3_weights_fill_random(m, 3);
    if (mnv3_model_validate(m, &err) != MNV3_OK) goto fail;
    /* an int8 model: quantization fields of every kind for the fuzzer to mutate */
    if (int8 && mnv3_model_quantize_fixed(m, &err) != MNV3_OK) goto fail;
    if (mnv3_model_save_file(m, path, &err) != MNV3_OK) goto fail;
    mnv3_model_free(m);
    return 0;
fail:
    fprintf(stderr, "%s: %s\n", path, err.message);
    mnv3_model_free(m);
    return 1;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "fuzz/corpus";
    char path[512];
    float f[12];
    uint8_t u[6] = {0, 1, 2, 127, 128, 255};
    size_t shape[3] = {2, 2, 3}, i;
    mnv3_error err;
    int bad = 0;
    for (i = 0; i < 12; ++i) f[i] = (float)i - 5.5f;
    snprintf(path, sizeof path, "%s/model/small-tv-labels.mnv3", dir);
    bad |= tiny(MNV3_FLAVOR_TORCHVISION, 3, 1, 0, path);
    snprintf(path, sizeof path, "%s/model/small-walkthrough.mnv3", dir);
    bad |= tiny(MNV3_FLAVOR_WALKTHROUGH, 2, 0, 0, path);
    snprintf(path, sizeof path, "%s/model/small-tflite-same.mnv3", dir);
    bad |= tiny(MNV3_FLAVOR_TFLITE, 4, 1, 0, path);
    snprintf(path, sizeof path, "%s/model/small-int8.mnv3", dir);
    bad |= tiny(MNV3_FLAVOR_TORCHVISION, 3, 0, 1, path);
    snprintf(path, sizeof path, "%s/model/small-int8-tflite-labels.mnv3", dir);
    bad |= tiny(MNV3_FLAVOR_TFLITE, 4, 1, 1, path);
    snprintf(path, sizeof path, "%s/npy/f32-2x2x3.npy", dir);
    bad |= mnv3_npy_write_file(path, MNV3_NPY_FLOAT32, 3, shape, f, &err) != MNV3_OK;
    snprintf(path, sizeof path, "%s/npy/u8-6.npy", dir);
    bad |= mnv3_npy_write_file(path, MNV3_NPY_UINT8, 1, shape + 2, u, &err) != MNV3_OK;
    snprintf(path, sizeof path, "%s/npy/f32-scalar.npy", dir);
    bad |= mnv3_npy_write_file(path, MNV3_NPY_FLOAT32, 0, NULL, f, &err) != MNV3_OK;
    return bad;
}
