/* Whole-network runs for the C tests: a configuration, a context made for it, one call. */
#ifndef MNV3_TEST_NET_H
#define MNV3_TEST_NET_H

#include "mnv3.h"

typedef struct tn_run {
    const mnv3_model *model;
    mnv3_config cfg;             /* mnv3_config_init's, size set by tn_run_init */
    mnv3_layout layout;          /* copied into cfg by each call */
    mnv3_isa isa;
    uint32_t threads;
    mnv3_precision_mode precision;
    mnv3_error err;              /* the message of the last failure */
    mnv3_isa used_isa;           /* what the last context ran */
} tn_run;

void tn_run_init(tn_run *r, const mnv3_model *m, uint32_t height, uint32_t width);
/* A context for the run's configuration (heap arena); MNV3_OK or the failure, in r->err. */
mnv3_status tn_context(tn_run *r, mnv3_context **out);
/* One image (batch 1): logits and, when features is not NULL, the pooled features. */
mnv3_status tn_logits(tn_run *r, const float *input, float *logits);
mnv3_status tn_logits_features(tn_run *r, const float *input, float *logits, float *features);

uint32_t tn_classes(const mnv3_model *m);
uint32_t tn_features(const mnv3_model *m);

#endif
