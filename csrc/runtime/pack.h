/* Weights packed for a kernel set, owned by the model: made once per model and set of rows
 * on the first context that needs them, shared read-only by every context on the model,
 * freed with it. The canonical weights stay where the model has them (in the caller's
 * bytes for a model loaded in place); a row that reads them in place packs nothing. */
#ifndef MNV3_PACK_H
#define MNV3_PACK_H

#include "kernels/kernels.h"
#include "model/model.h"

typedef struct mnv3_packed_weights mnv3_packed_weights;

/* Bytes the model will hold for `k`'s packed weights, with or without having packed them. Fails with MNV3_ERR_SIZE_OVERFLOW when they cannot be addressed. */
mnv3_status mnv3_packed_bytes(const mnv3_model *m, const mnv3_kernels *k, size_t *bytes,
                              mnv3_error *error);

/* The model's packed weights for `k`, packing them on first use (safe to call from several
 * threads creating contexts at once). */
mnv3_status mnv3_packed_get(const mnv3_model *m, const mnv3_kernels *k,
                            const mnv3_packed_weights **out, mnv3_error *error);

/* What conv c's row reads: its packed weights (the canonical ones when the row packs
 * none). c must belong to the model the set was packed for. */
const void *mnv3_packed_weight(const mnv3_packed_weights *p, const mnv3_conv *c);
/* Bytes a kernel streams for conv c (what the prefetch schedule fetches ahead). */
size_t mnv3_packed_weight_bytes(const mnv3_packed_weights *p, const mnv3_conv *c);

/* How many kernel sets the model holds packed weights for. */
uint32_t mnv3_packed_set_count(const mnv3_model *m);

#endif
