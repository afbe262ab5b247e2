/* Post-training quantization of a float model: the activation ranges a calibration pass
 * observed, and the int8 network made from them. */
#ifndef MNV3_Q8_QUANTIZE_H
#define MNV3_Q8_QUANTIZE_H

#include "model.h"

typedef struct mnv3_range {
    float lo, hi;
} mnv3_range;

/* The range of every activation slot: each conv's output before and after its
 * activation (canonical conv order, mnv3_model_convs), and per block the SE squeeze, the
 * gated tensor x * gate and the residual sum; the global pool. */
typedef struct mnv3_calibration {
    mnv3_range pre[MNV3_MAX_CONVS];
    mnv3_range post[MNV3_MAX_CONVS];
    mnv3_range se_pool[MNV3_MAX_BLOCKS], se_mul[MNV3_MAX_BLOCKS], residual[MNV3_MAX_BLOCKS];
    mnv3_range pool;
} mnv3_calibration;

/* Every range empty (lo = +inf, hi = -inf). */
void mnv3_calibration_init(mnv3_calibration *cal);
void mnv3_range_widen(mnv3_range *r, const float *x, size_t n);

/* A float model whose weights it owns becomes an int8 one, checked as the loader checks:
 * activation quantizations from `cal`, or the fixed ones of mnv3_model_quantize_fixed()
 * when it is NULL. */
mnv3_status mnv3_model_quantize(mnv3_model *m, const mnv3_calibration *cal, mnv3_error *e);

#endif
