#include <string.h>

#include "net.h"

void tn_run_init(tn_run *r, const mnv3_model *m, uint32_t height, uint32_t width) {
    memset(r, 0, sizeof *r);
    r->model = m;
    mnv3_config_init(&r->cfg, m);
    r->cfg.height = height;
    r->cfg.width = width;
    r->layout = r->cfg.layout;
    r->isa = MNV3_ISA_AUTO;
    r->threads = 1;
    r->precision = MNV3_PRECISION_EXACT;
}

mnv3_status tn_context(tn_run *r, mnv3_context **out) {
    mnv3_status st;
    r->cfg.layout = r->layout;
    r->cfg.isa = r->isa;
    r->cfg.threads = r->threads;
    r->cfg.precision = r->precision;
    memset(&r->err, 0, sizeof r->err);
    st = mnv3_context_create(r->model, &r->cfg, NULL, 0, out, &r->err);
    if (st == MNV3_OK) r->used_isa = mnv3_context_isa(*out);
    return st;
}

uint32_t tn_classes(const mnv3_model *m) {
    mnv3_model_info info;
    return mnv3_model_get_info(m, &info) == MNV3_OK ? info.num_classes : 0;
}

uint32_t tn_features(const mnv3_model *m) {
    mnv3_model_info info;
    return mnv3_model_get_info(m, &info) == MNV3_OK ? info.feature_dim : 0;
}

mnv3_status tn_logits_features(tn_run *r, const float *input, float *logits, float *features) {
    mnv3_context *ctx = NULL;
    const size_t per_image = (size_t)3 * r->cfg.height * r->cfg.width;
    mnv3_status st;
    r->cfg.batch = 1;
    st = tn_context(r, &ctx);
    if (st != MNV3_OK) return st;
    st = mnv3_run(ctx, input, per_image, logits, logits ? tn_classes(r->model) : 0, features,
                  features ? tn_features(r->model) : 0);
    if (st != MNV3_OK) {
        r->err.status = st;
        strcpy(r->err.message, mnv3_status_string(st));
    }
    mnv3_context_free(ctx);
    return st;
}

mnv3_status tn_logits(tn_run *r, const float *input, float *logits) {
    return tn_logits_features(r, input, logits, NULL);
}
