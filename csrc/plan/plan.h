/* Planning: from (model, input size) to the list of executed steps, the activation tensors
 * with their lifetimes, and their offsets in the arena. Nothing here runs kernels. */
#ifndef MNV3_PLAN_H
#define MNV3_PLAN_H

#include "base/dtype.h"
#include "model/model.h"

typedef enum mnv3_step_kind {
    MNV3_STEP_STEM,
    MNV3_STEP_EXPAND,
    MNV3_STEP_DEPTHWISE,
    MNV3_STEP_SE,
    MNV3_STEP_PROJECT,
    MNV3_STEP_LAST_CONV,   /* its output is only pooled: the step accumulates channel sums */
    MNV3_STEP_POOL,
    MNV3_STEP_HEAD
} mnv3_step_kind;

typedef struct mnv3_step {
    mnv3_step_kind kind;
    int32_t block;               /* -1 outside blocks */
    uint32_t index;              /* head index for HEAD steps */
    const mnv3_conv *conv;       /* NULL for SE and POOL */
    const mnv3_block *blk;       /* for block steps */
    uint32_t in_h, in_w, in_c, out_h, out_w, out_c;
    uint32_t pad_top, pad_left;  /* resolved for this input size */
    int32_t in_tensor, out_tensor, residual_tensor; /* -1: none (vectors live in scratch) */
    uint64_t macs;
    /* Fused expansion: an EXPAND step with `fused` set produces no tensor; the DEPTHWISE
     * step after it (band_rows != 0) reads the expansion's input and computes the expanded
     * rows itself, band_rows output rows at a time, into a per-thread ring of ring_rows
     * rows that stays in cache. */
    uint32_t fused;
    uint32_t band_rows, ring_rows;
} mnv3_step;

typedef struct mnv3_tensor {
    mnv3_dtype dtype;
    uint32_t height, width, channels;
    size_t bytes;                /* per image, rounded up to 64 */
    uint32_t first, last;        /* steps that write it first and read it last */
    size_t offset;               /* in the activation region */
} mnv3_tensor;

/* An expanded tensor larger than this (about half of a typical L2) is not materialised:
 * the expansion runs in bands fused with the depthwise conv that reads it. A build can
 * move the threshold (-DMNV3_FUSE_MIN_BYTES=...), e.g. out of reach to measure the fusion. */
#ifndef MNV3_FUSE_MIN_BYTES
#define MNV3_FUSE_MIN_BYTES ((size_t)512 << 10)
#endif
/* Target size of one thread's ring of expanded rows: bands of one or two output rows
 * already keep the expansion in L1/L2; larger rings measured no faster. */
#define MNV3_FUSE_RING_BYTES ((size_t)64 << 10)

#define MNV3_MAX_STEPS (1 + 4 * MNV3_MAX_BLOCKS + 2 + MNV3_MAX_HEAD)
#define MNV3_MAX_TENSORS (1 + 3 * MNV3_MAX_BLOCKS)

uint32_t mnv3_plan_step_count(const mnv3_model *m);

/* Every conv's output a tensor of its own: no expansion fused into its depthwise conv, the
 * last conv's output kept beside its pooled sums (a network observed layer by layer). */
#define MNV3_PLAN_OBSERVABLE 1u

/* Fills steps and tensors (arrays of MNV3_MAX_STEPS / MNV3_MAX_TENSORS, or NULL to skip),
 * activations of element type act_type, with the MNV3_PLAN_* flags. Fails when the input is too small for the
 * network's downsampling (MNV3_ERR_SHAPE), or when the tensors' bytes, all together, do
 * not fit in size_t (MNV3_ERR_SIZE_OVERFLOW): then no placement can wrap either. */
mnv3_status mnv3_plan_steps(const mnv3_model *m, uint32_t height, uint32_t width,
                            mnv3_dtype act_type, uint32_t flags, mnv3_step *steps, uint32_t *num_steps,
                            mnv3_tensor *tensors, uint32_t *num_tensors, mnv3_error *error);

/* Assigns offsets by lifetime (greedy by size, best gap first) to tensors of any element
 * sizes. Returns the region size and the lower bound: the largest total of tensors live at
 * any one step. The tensors' bytes must add up without overflow (mnv3_plan_steps checks). */
void mnv3_plan_offsets(mnv3_tensor *tensors, uint32_t count, size_t *region_bytes,
                       size_t *lower_bound);

/* Step -> public layer description. */
void mnv3_step_describe(const mnv3_model *m, const mnv3_step *s, mnv3_layer_info *info);

#endif
