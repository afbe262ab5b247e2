/* Element types of tensors: weights in the model, activations in the plan. Every size in
 * the planner and the packers is counted in bytes from these, so a network of one-byte
 * activations is planned at one byte per element. */
#ifndef MNV3_DTYPE_H
#define MNV3_DTYPE_H

#include <stddef.h>

typedef enum mnv3_dtype {
    MNV3_DTYPE_F32 = 0,
    MNV3_DTYPE_F16 = 1,
    MNV3_DTYPE_I8 = 2,
    MNV3_DTYPE_U8 = 3,
    MNV3_DTYPE_I32 = 4,
    MNV3_DTYPE_BF16 = 5
} mnv3_dtype;

#define MNV3_DTYPE_COUNT 6

static inline size_t mnv3_dtype_size(mnv3_dtype t) {
    switch (t) {
    case MNV3_DTYPE_F16:
    case MNV3_DTYPE_BF16: return 2;
    case MNV3_DTYPE_I8:
    case MNV3_DTYPE_U8: return 1;
    case MNV3_DTYPE_F32:
    case MNV3_DTYPE_I32:
    default: return 4;
    }
}

static inline const char *mnv3_dtype_name(mnv3_dtype t) {
    switch (t) {
    case MNV3_DTYPE_F32: return "f32";
    case MNV3_DTYPE_F16: return "f16";
    case MNV3_DTYPE_I8: return "i8";
    case MNV3_DTYPE_U8: return "u8";
    case MNV3_DTYPE_I32: return "i32";
    case MNV3_DTYPE_BF16: return "bf16";
    default: return "?";
    }
}

#endif
