/* libFuzzer target: the model loader must refuse or accept any byte string without a crash,
 * leak or undefined behaviour, and whatever it accepts must be usable by every query and
 * must survive a save/load round trip unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mnv3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void exercise(const mnv3_model *m) {
    mnv3_model_info info;
    mnv3_layer_info layer;
    mnv3_config cfg;
    mnv3_model *again = NULL;
    size_t bytes = 0, bytes2 = 0;
    uint64_t macs = 0;
    uint32_t i;
    uint8_t *saved, *saved2;
    if (mnv3_model_get_info(m, &info) != MNV3_OK) abort();
    for (i = 0; i < info.num_classes && i < 64; ++i) {
        const char *label = mnv3_model_label(m, i);
        if (info.has_labels != (label != NULL)) abort();
        if (label) (void)strlen(label);
    }
    if (mnv3_model_label(m, info.num_classes) != NULL) abort();
    for (i = 0; i < info.num_layers + 1; ++i) (void)mnv3_model_layer(m, 64, 48, i, &layer);
    (void)mnv3_model_macs(m, 224, 224, &macs);
    mnv3_config_init(&cfg, m);
    (void)mnv3_arena_size(m, &cfg, &bytes, NULL);
    cfg.height = cfg.width = 32;
    cfg.isa = MNV3_ISA_SCALAR;
    /* Inference too, while it stays cheap. */
    if (mnv3_model_macs(m, 32, 32, &macs) == MNV3_OK && macs < 2000000) {
        mnv3_context *ctx = NULL;
        if (mnv3_context_create(m, &cfg, NULL, 0, &ctx, NULL) == MNV3_OK) {
            static float input[3 * 32 * 32];
            static uint8_t qinput[3 * 32 * 32];
            float *logits = (float *)malloc((size_t)info.num_classes * sizeof(float));
            uint8_t *qlogits = (uint8_t *)malloc(info.num_classes);
            mnv3_quantization qin, qout;
            if (logits)
                (void)mnv3_run(ctx, input, 3 * 32 * 32, logits, info.num_classes, NULL, 0);
            if ((mnv3_model_quantization(m, &qin, &qout) == MNV3_OK) !=
                (info.precision == MNV3_PRECISION_INT8))
                abort();
            if (qlogits && info.precision == MNV3_PRECISION_INT8)
                (void)mnv3_run_quantized(ctx, qinput, sizeof qinput, qlogits, info.num_classes,
                                         logits, logits ? info.num_classes : 0);
            free(logits);
            free(qlogits);
            mnv3_context_free(ctx);
        }
    }
    /* Canonical re-serialisation is a fixed point. */
    if (mnv3_model_save_memory(m, NULL, 0, &bytes, NULL) != MNV3_OK) abort();
    saved = (uint8_t *)malloc(bytes);
    if (!saved) return;
    if (mnv3_model_save_memory(m, saved, bytes, &bytes, NULL) != MNV3_OK) abort();
    if (mnv3_model_load_memory(saved, bytes, 0, &again, NULL) != MNV3_OK) abort();
    if (mnv3_model_save_memory(again, NULL, 0, &bytes2, NULL) != MNV3_OK || bytes2 != bytes)
        abort();
    saved2 = (uint8_t *)malloc(bytes2);
    if (saved2) {
        if (mnv3_model_save_memory(again, saved2, bytes2, &bytes2, NULL) != MNV3_OK ||
            memcmp(saved, saved2, bytes) != 0)
            abort();
        free(saved2);
    }
    mnv3_model_free(again);
    free(saved);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint32_t flag_sets[2] = {0, MNV3_LOAD_SKIP_CHECKSUM};
    mnv3_error err;
    void *raw;
    uint8_t *aligned;
    int f;
    for (f = 0; f < 2; ++f) {
        mnv3_model *m = NULL;
        mnv3_status st = mnv3_model_load_memory(data, size, flag_sets[f], &m, &err);
        if ((st == MNV3_OK) != (m != NULL)) abort();
        if (st != MNV3_OK && (err.status != st || err.message[0] == '\0')) abort();
        if (m) {
            exercise(m);
            mnv3_model_free(m);
        }
    }
    /* In place, from a 64-aligned copy. */
    raw = malloc(size + 64);
    if (!raw) return 0;
    aligned = (uint8_t *)raw + (64 - ((uintptr_t)raw & 63u));
    memcpy(aligned, data, size);
    {
        mnv3_model *m = NULL;
        if (mnv3_model_load_memory(aligned, size, MNV3_LOAD_IN_PLACE | MNV3_LOAD_SKIP_CHECKSUM,
                                   &m, &err) == MNV3_OK) {
            mnv3_model_info info;
            mnv3_model_get_info(m, &info);
            mnv3_model_free(m);
        }
    }
    free(raw);
    return 0;
}
