/* In-memory network description shared by the loader, the built-in constructors, the
 * planner and the executor. A network is data: stem, inverted-residual blocks, last conv,
 * global pool, fully connected head. Every convolution carries its own epilogue. */
#ifndef MNV3_MODEL_H
#define MNV3_MODEL_H

#include "base/dtype.h"
#include "base/status.h"
#include "base/epilogue.h"
#include "mnv3.h"
#include "base/q8.h"

/* Limits the loader enforces; anything beyond is "absurd" for MobileNetV3-like nets. */
#define MNV3_MAX_CHANNELS 16384
#define MNV3_MAX_KERNEL 11
#define MNV3_MAX_BLOCKS 64
#define MNV3_MAX_HEAD 4
/* MNV3_MAX_CLASSES is public (mnv3.h). */

typedef enum mnv3_padding_mode {
    MNV3_PAD_EXPLICIT = 0,  /* use pad_top/left/bottom/right as given */
    MNV3_PAD_SAME = 1       /* TensorFlow "SAME": derived from the input size at plan time */
} mnv3_padding_mode;

/* Scale and zero point of one int8 activation tensor (a uint8 tensor is held as x - 128
 * with zero point zp - 128). */
typedef struct mnv3_q8_param {
    float scale;
    int32_t zero_point;
} mnv3_q8_param;

/* Quantization of one conv of a quantized model (docs/FORMAT.md, QUANT section); float
 * convs leave it zero:
 *   acc = bias[o] + sum (x - input_zero_point) * (w - weight_zero_point)
 *   v = clamp(requantize(acc, qmul[o]) + output.zero_point, act_lo, act_hi)
 *   if table: v = table[v + 128]   (result on table_output's scale)
 * Packing folds the bias and both zero points into an int8 row's packed weights. */
typedef struct mnv3_conv_q8 {
    const int32_t *bias;         /* out_channels values (scale in_scale * w_scale[o]), or NULL */
    int32_t input_zero_point;
    int32_t weight_zero_point;
    mnv3_q8_param output;        /* the conv's own output, before the table */
    int32_t act_lo, act_hi;      /* fused activation range, within [-128, 127] */
    mnv3_q8_mult_mode mult_mode;
    const float *weight_scale;   /* out_channels (per-tensor weights: all equal) */
    const float *bias_scale;     /* out_channels; NULL without bias */
    const int8_t *table;         /* 256 entries, or NULL */
    mnv3_q8_param table_output;  /* with a table: the scale of its results */
    /* Derived by mnv3_model_q8_prepare(): */
    mnv3_q8_param input;         /* the tensor this conv reads */
    const mnv3_q8_mul *qmul;     /* out_channels fixed-point multipliers */
} mnv3_conv_q8;

typedef struct mnv3_conv {
    uint32_t in_channels, out_channels;
    uint32_t kernel, stride;
    uint32_t depthwise;                /* groups == in_channels == out_channels */
    mnv3_padding_mode padding_mode;
    uint32_t pad_top, pad_left, pad_bottom, pad_right;
    uint32_t batchnorm_folded;         /* for parameter counting as the source framework does */
    uint32_t has_bias;
    mnv3_epilogue epilogue;            /* clamp(act(clamp(x + bias, pre)), post) */
    mnv3_dtype weight_type;            /* element type of `weight` (bias is float) */
    const void *weight;                /* see weight_count() for layouts */
    const float *bias;                 /* out_channels floats when has_bias, else NULL */
    mnv3_conv_q8 q8;                   /* quantized models: the conv's quantization */
} mnv3_conv;

/* Weight layouts (canonical, what files store and reference kernels read):
 *   dense conv:  [out][kh][kw][in]   (OHWI)
 *   depthwise:   [kh][kw][channels]
 *   pointwise and fully connected: [out][in] */

typedef struct mnv3_squeeze_excite {
    mnv3_clamp squeeze_clamp;   /* on the pooled vector */
    mnv3_conv reduce;           /* 1x1, channels -> squeeze, usually ReLU/ReLU6 */
    mnv3_conv expand;           /* 1x1, squeeze -> channels, activation HARD_SIGMOID */
    mnv3_clamp scale_clamp;     /* on x * gate */
} mnv3_squeeze_excite;

typedef struct mnv3_block {
    uint32_t has_expand;
    uint32_t has_se;
    uint32_t residual;          /* stride 1 and in == out; the loader checks */
    mnv3_conv expand;           /* 1x1 */
    mnv3_conv depthwise;
    mnv3_squeeze_excite se;
    mnv3_conv project;          /* 1x1, no activation */
    mnv3_clamp residual_clamp;  /* on project + input */
    /* Quantized models: the SE squeeze (pool of the depthwise output), the gated tensor
     * x * gate, the residual sum; and what the loader derives from them. */
    mnv3_q8_pool_mode se_pool_mode;
    mnv3_q8_param se_pool_output, se_mul_output, residual_output;
    mnv3_q8_mulop se_mul;
    mnv3_q8_addop residual_add;
} mnv3_block;

struct mnv3_model {
    mnv3_arch arch;
    mnv3_flavor flavor;
    uint32_t input_channels;
    mnv3_conv stem;
    uint32_t num_blocks;
    mnv3_block blocks[MNV3_MAX_BLOCKS];
    mnv3_conv last_conv;        /* 1x1 */
    mnv3_clamp pool_clamp;
    uint32_t num_head;
    mnv3_conv head[MNV3_MAX_HEAD]; /* fully connected, stored as 1x1 convs */
    mnv3_preprocess preprocess;

    /* Quantized (int8) network: every conv has int8 weights and int32 biases, every
     * activation slot a scale and zero point. */
    int quantized;
    mnv3_q8_param q8_input;        /* the network input */
    mnv3_qtype q8_io_type;       /* the bytes the source model took and gave (uint8 or int8) */
    mnv3_q8_pool_mode pool_mode;  /* the global pool */
    mnv3_q8_param pool_output;
    void *owned_quant;          /* derived multipliers, freed with the model */

    uint32_t num_labels;        /* 0 or num_classes */
    const char *const *labels;  /* num_labels pointers into label storage */

    /* Ownership: whatever the model allocated, freed with it. */
    void *owned_weights;        /* NULL when weights live in the caller's bytes */
    size_t owned_weight_bytes;
    void *owned_extra;          /* labels, file copy, ... */
    /* Weights packed per kernel set on first use (pack.c), behind their own lock: a cache
     * that contexts on a const model share. */
    struct mnv3_packed_weights *packed;
    void (*packed_free)(struct mnv3_packed_weights *list); /* set with the first packed set */
    volatile int packed_lock;
};

/* Element count of a conv's weight tensor: exact, and as a size once the model is
 * validated (validation refuses weights whose bytes do not fit in size_t). */
uint64_t mnv3_conv_weight_count64(const mnv3_conv *c);
size_t mnv3_conv_weight_count(const mnv3_conv *c);
/* Output size of a conv along one axis for a given input size; 0 if it does not fit. */
void mnv3_conv_padding(const mnv3_conv *c, uint32_t in_h, uint32_t in_w, uint32_t *pt,
                       uint32_t *pl, uint32_t *pb, uint32_t *pr);
uint32_t mnv3_conv_out_size(uint32_t in, uint32_t kernel, uint32_t stride, uint32_t pad_a,
                            uint32_t pad_b);

/* Every conv of the network in canonical order (stem; per block: expand, depthwise,
 * se.reduce, se.expand, project; last conv; head). This order is also the tensor order of
 * model files. Returns the count; `list` needs MNV3_MAX_CONVS entries. */
#define MNV3_MAX_CONVS (2 + 5 * MNV3_MAX_BLOCKS + MNV3_MAX_HEAD)
uint32_t mnv3_model_convs(mnv3_model *m, mnv3_conv **list);
/* Same, with a human-readable name per conv ("block 3 expand"). */
void mnv3_conv_name(const mnv3_model *m, const mnv3_conv *c, char *buf, size_t len);

uint32_t mnv3_model_classes(const mnv3_model *m);
uint32_t mnv3_model_feature_dim(const mnv3_model *m);

/* Validates a fully populated description (shapes chain, ranges, residual legality, weights
 * present). Used by the loader and the builders. */
mnv3_status mnv3_model_validate(const mnv3_model *m, mnv3_error *error);

/* Quantized models: checks every quantization field (each failure with its own status)
 * and derives each conv's input quantization and multipliers, the SE multiply and the
 * residual add. Called by the loader once tensors are resolved. */
mnv3_status mnv3_model_q8_prepare(mnv3_model *m, mnv3_error *error);
/* Turns a float model whose weights it owns into an int8 network quantized as
 * mnv3_model_create_builtin_int8() quantizes (runtime/calibrate.c and model/q8_quantize.c: per-channel weights), but with
 * fixed activation quantizations instead of calibrated ones (feature maps 1/16 per step,
 * input 1/32, SE gates 1/256): the int8 seed models of the fuzzers. */
mnv3_status mnv3_model_quantize_fixed(mnv3_model *m, mnv3_error *error);
/* The quantization of a conv's result (after its table, if any). */
mnv3_q8_param mnv3_conv_result_q(const mnv3_conv *c);
/* The quantization of the logits (the last head conv's result). */
mnv3_q8_param mnv3_model_output_q(const mnv3_model *m);

#endif
