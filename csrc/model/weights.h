/* Weight storage owned by a model: one aligned allocation holding every tensor. */
#ifndef MNV3_WEIGHTS_H
#define MNV3_WEIGHTS_H

#include "model.h"

/* Tensors start on 64-byte boundaries so SIMD loads and in-place file images agree. */
#define MNV3_TENSOR_ALIGN_FLOATS 16u

/* Gives every conv of `m` (shapes already set) zeroed storage for weights and bias, owned
 * by the model. */
mnv3_status mnv3_weights_attach(mnv3_model *m, mnv3_error *error);

/* Deterministic pseudo-random weights with variance ~2/fan_in, so activations keep a
 * realistic spread through the network. Only for storage owned by the model. */
void mnv3_weights_fill_random(mnv3_model *m, uint64_t seed);

#endif
