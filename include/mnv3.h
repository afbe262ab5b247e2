/*
 * mnv3 — MobileNetV3 inference in portable C99.
 *
 * Life cycle:
 *   1. Obtain a model: mnv3_model_load_file(), mnv3_model_load_memory() (optionally using
 *      the caller's bytes in place: flash, mmap) or mnv3_model_create_builtin().
 *   2. Ask how much memory one inference configuration needs: mnv3_arena_size().
 *   3. Create a context inside caller-owned memory (a static array on firmware), or let
 *      the library make one allocation for it: mnv3_context_create().
 *   4. mnv3_run() as often as needed. It never allocates, frees or blocks on I/O.
 *
 * Threading: a loaded mnv3_model is immutable and may be shared by any number of threads
 * and contexts. An mnv3_context is single-user: run at most one inference on it at a time;
 * use one context per concurrent inference. The library keeps no global mutable state,
 * except a lazily initialised, idempotent CPU feature probe.
 *
 * Errors: every fallible call returns an mnv3_status. Calls that can say more fill an
 * optional mnv3_error (pass NULL if you do not want the message).
 */
#ifndef MNV3_H
#define MNV3_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Versioning (docs/c-api.md, "Versioning"): MAJOR changes with any change that breaks
 * source or binary compatibility, MINOR with additions, PATCH with fixes. The shared
 * library's SONAME is libmnv3.so.MAJOR; while MAJOR is 0, a minor release may break
 * compatibility too, and the SONAME is libmnv3.so.0.MINOR. */
#define MNV3_VERSION_MAJOR 0
#define MNV3_VERSION_MINOR 2
#define MNV3_VERSION_PATCH 0
#define MNV3_VERSION_STRING "0.2.0"
/* Single integer for compile-time comparisons: major*10000 + minor*100 + patch. */
#define MNV3_VERSION (MNV3_VERSION_MAJOR * 10000 + MNV3_VERSION_MINOR * 100 + MNV3_VERSION_PATCH)

#if defined(_WIN32) && defined(MNV3_BUILD_SHARED)
#define MNV3_API __declspec(dllexport)
#elif defined(__GNUC__)
#define MNV3_API __attribute__((visibility("default")))
#else
#define MNV3_API
#endif

/* ------------------------------------------------------------------------------------ */
/* Status codes                                                                          */
/* ------------------------------------------------------------------------------------ */

typedef enum mnv3_status {
    MNV3_OK = 0,
    MNV3_ERR_NULL_ARGUMENT = 1,      /* a required pointer was NULL */
    MNV3_ERR_INVALID_ARGUMENT = 2,   /* a value is out of its documented range */
    MNV3_ERR_SHAPE = 3,              /* buffer length does not match the configured shape */
    MNV3_ERR_ARENA_TOO_SMALL = 4,    /* the arena is smaller than mnv3_arena_size() */
    MNV3_ERR_ARENA_MISALIGNED = 5,   /* the arena is not MNV3_ARENA_ALIGNMENT aligned */
    MNV3_ERR_OUT_OF_MEMORY = 6,      /* a set-up allocation failed */
    MNV3_ERR_IO = 7,                 /* a file could not be opened or read */
    MNV3_ERR_UNSUPPORTED = 8,        /* valid request this build or CPU cannot honour */
    /* Model file problems (see docs/FORMAT.md). */
    MNV3_ERR_FILE_TRUNCATED = 20,    /* the data ends before a structure it announces */
    MNV3_ERR_BAD_MAGIC = 21,         /* not an .mnv3 file */
    MNV3_ERR_BAD_VERSION = 22,       /* a format version this library does not read */
    MNV3_ERR_BAD_ENDIANNESS = 23,    /* byte-order marker is not the little-endian one */
    MNV3_ERR_CHECKSUM = 24,          /* payload CRC-32 does not match the header */
    MNV3_ERR_SIZE_OVERFLOW = 25,     /* a size or count overflows or is absurd */
    MNV3_ERR_BAD_OFFSET = 26,        /* an offset points outside the file or is misaligned */
    MNV3_ERR_BAD_ENUM = 27,          /* an enumerated field holds an unknown value */
    MNV3_ERR_SHAPE_CHAIN = 28,       /* layer shapes do not connect */
    MNV3_ERR_BAD_LAYER = 29,         /* a layer field is out of range (kernel, stride, ...) */
    MNV3_ERR_BAD_TENSOR = 30,        /* a tensor reference is wrong (index, size, type) */
    MNV3_ERR_BAD_METADATA = 31,      /* preprocessing or label section is malformed */
    MNV3_ERR_MISALIGNED_DATA = 32,   /* in-place load asked for, bytes not 64-byte aligned */
    /* Quantization fields of quantized models (docs/FORMAT.md, QUANT section). */
    MNV3_ERR_BAD_SCALE = 33,         /* a scale is not finite and > 0 */
    MNV3_ERR_BAD_ZERO_POINT = 34,    /* a zero point is outside [-128, 127] */
    MNV3_ERR_BAD_MULTIPLIER = 35,    /* a real multiplier has no fixed-point form */
    MNV3_ERR_BAD_BIAS_SCALE = 36,    /* bias scale not input scale x weight scale */
    MNV3_ERR_BAD_QUANT_RANGE = 37    /* activation range or lookup table inconsistent */
} mnv3_status;

/* Short, static, human-readable description of a status. Never NULL. */
MNV3_API const char *mnv3_status_string(mnv3_status status);

/* Detailed error: which field or argument failed and why. */
typedef struct mnv3_error {
    mnv3_status status;
    char message[256];
} mnv3_error;

MNV3_API const char *mnv3_version_string(void);
MNV3_API int mnv3_version(void); /* == MNV3_VERSION of the library actually linked */

/* ------------------------------------------------------------------------------------ */
/* Enumerations shared by the API and the model file                                     */
/* ------------------------------------------------------------------------------------ */

typedef enum mnv3_activation {
    MNV3_ACT_NONE = 0,
    MNV3_ACT_RELU = 1,
    MNV3_ACT_RELU6 = 2,
    MNV3_ACT_HARD_SWISH = 3,   /* x * relu6(x + 3) / 6 */
    MNV3_ACT_HARD_SIGMOID = 4  /* relu6(x + 3) / 6 */
} mnv3_activation;

typedef enum mnv3_layout {
    MNV3_LAYOUT_NCHW = 0,
    MNV3_LAYOUT_NHWC = 1
} mnv3_layout;

typedef enum mnv3_arch {
    MNV3_ARCH_CUSTOM = 0,
    MNV3_ARCH_LARGE = 1,
    MNV3_ARCH_SMALL = 2
} mnv3_arch;

typedef enum mnv3_flavor {
    MNV3_FLAVOR_CUSTOM = 0,
    MNV3_FLAVOR_TORCHVISION = 1,  /* torchvision.models.mobilenet_v3_{large,small} */
    MNV3_FLAVOR_WALKTHROUGH = 2,  /* the original paper tables, unrounded channels, ReLU6 */
    MNV3_FLAVOR_TFLITE = 3        /* TF-slim / TFLite graphs: SAME padding, 1001 classes */
} mnv3_flavor;

/* Kernel implementation. AUTO picks the best one the CPU supports at run time. */
typedef enum mnv3_isa {
    MNV3_ISA_AUTO = 0,
    MNV3_ISA_SCALAR = 1,   /* portable reference kernels: the numerical oracle */
    MNV3_ISA_AVX2 = 2,     /* x86-64 AVX2 + FMA */
    MNV3_ISA_AVX512 = 3,   /* x86-64 AVX-512F */
    MNV3_ISA_NEON = 4      /* AArch64 NEON, or ARMv7 NEON-VFPv4 */
} mnv3_isa;

MNV3_API const char *mnv3_isa_name(mnv3_isa isa);
/* Parses "auto", "scalar", "avx2", "avx512", "neon". Returns MNV3_ERR_INVALID_ARGUMENT otherwise. */
MNV3_API mnv3_status mnv3_isa_from_name(const char *name, mnv3_isa *out);
/* Non-zero when this build contains the kernels for `isa` and the running CPU supports them. */
MNV3_API int mnv3_isa_available(mnv3_isa isa);
/* What MNV3_ISA_AUTO resolves to. The environment variable MNV3_ISA (same names as
 * mnv3_isa_from_name) overrides the automatic choice, for tests and benchmarks. */
MNV3_API mnv3_isa mnv3_isa_best(void);

/* ------------------------------------------------------------------------------------ */
/* Models                                                                                */
/* ------------------------------------------------------------------------------------ */

typedef struct mnv3_model mnv3_model;

enum {
    /* Use the caller's bytes for the weights instead of copying them. The bytes must stay
     * valid and unchanged until mnv3_model_free(), and must be 64-byte aligned. */
    MNV3_LOAD_IN_PLACE = 1u << 0,
    /* Skip the payload CRC-32 (for example when the image was verified at flash time). */
    MNV3_LOAD_SKIP_CHECKSUM = 1u << 1
};

/* Parses and validates a model file image. Makes one small allocation for the network
 * description (and, without MNV3_LOAD_IN_PLACE, one for the weights). */
MNV3_API mnv3_status mnv3_model_load_memory(const void *data, size_t size, uint32_t flags,
                                            mnv3_model **out_model, mnv3_error *error);
/* Reads a regular file (a directory, FIFO, device or socket is refused with MNV3_ERR_IO,
 * without reading it) and loads it as mnv3_model_load_memory() does. */
MNV3_API mnv3_status mnv3_model_load_file(const char *path, uint32_t flags,
                                          mnv3_model **out_model, mnv3_error *error);

/* The most classes a model may have: a model file or built-in with more is refused. (The
 * class count is not held to the 16384-channel limit of feature maps.) */
#define MNV3_MAX_CLASSES 100000

/* A built-in architecture with deterministic pseudo-random weights derived from `seed`
 * (for benchmarks and tests; the logits are meaningless). width_mult in (0, 4], classes in
 * 1..MNV3_MAX_CLASSES. */
MNV3_API mnv3_status mnv3_model_create_builtin(mnv3_arch arch, mnv3_flavor flavor,
                                               double width_mult, uint32_t num_classes,
                                               uint64_t seed, mnv3_model **out_model,
                                               mnv3_error *error);
/* The same network quantized to int8 (for benchmarks and tests of int8 inference without a
 * model file): the float built-in of the same seed, with symmetric per-output-channel int8
 * weights, int32 biases, and a scale and zero point for every activation chosen from the
 * ranges a float pass over a fixed synthetic image reaches (global pool and SE squeeze as
 * MEAN, hard-swish and the SE gate as 256-entry tables). Deterministic: the same arguments
 * give the same bytes (mnv3_model_save_memory) on every machine. Costs one float
 * inference at 64x64 at creation. */
MNV3_API mnv3_status mnv3_model_create_builtin_int8(mnv3_arch arch, mnv3_flavor flavor,
                                                    double width_mult, uint32_t num_classes,
                                                    uint64_t seed, mnv3_model **out_model,
                                                    mnv3_error *error);

/* Serialises a model to the .mnv3 format. Call with buffer == NULL to learn *size. */
MNV3_API mnv3_status mnv3_model_save_memory(const mnv3_model *model, void *buffer, size_t capacity,
                                            size_t *size, mnv3_error *error);
/* Writes the file image to `path` through a new file in the same directory, renamed to
 * `path` once complete: a failed save leaves the old file unchanged. A directory, FIFO,
 * device or socket is refused with MNV3_ERR_IO, without opening it (see docs/c-api.md). */
MNV3_API mnv3_status mnv3_model_save_file(const mnv3_model *model, const char *path,
                                          mnv3_error *error);

MNV3_API void mnv3_model_free(mnv3_model *model); /* NULL is allowed */

/* How a model stores its weights (biases are float32 in every float model). float16
 * weights (IEEE binary16, file format 1.1) halve the model and its packed copies; the
 * arithmetic stays float32 unless the configuration relaxes it (mnv3_config.precision). */
typedef enum mnv3_weight_type {
    MNV3_WEIGHTS_FLOAT32 = 0,
    MNV3_WEIGHTS_FLOAT16 = 1,
    MNV3_WEIGHTS_INT8 = 2       /* quantized models */
} mnv3_weight_type;

MNV3_API mnv3_weight_type mnv3_model_weight_type(const mnv3_model *model);
/* A new, independent model with the same network whose weights are stored as `type`:
 * float32 -> float16 rounds to nearest even (a weight beyond float16's range, 65504, is
 * refused with MNV3_ERR_BAD_TENSOR naming its conv), float16 -> float32 is exact. Quantized
 * models, and MNV3_WEIGHTS_INT8, are MNV3_ERR_UNSUPPORTED. */
MNV3_API mnv3_status mnv3_model_convert_weights(const mnv3_model *model, mnv3_weight_type type,
                                                mnv3_model **out_model, mnv3_error *error);

/* How raw pixels become the network input: input = (pixel * scale - mean[c]) / std[c],
 * with channels in `channel_order`. */
typedef enum mnv3_channel_order { MNV3_RGB = 0, MNV3_BGR = 1 } mnv3_channel_order;

typedef struct mnv3_preprocess {
    uint32_t height, width;          /* the input size the model was trained at */
    mnv3_channel_order channel_order;
    mnv3_layout layout;              /* the layout the original framework used */
    float scale;
    float mean[3];
    float std[3];
} mnv3_preprocess;

/* Arithmetic of a model's network. */
typedef enum mnv3_precision {
    MNV3_PRECISION_FLOAT32 = 0,
    MNV3_PRECISION_INT8 = 1      /* int8 weights and activations, TFLite's integer kernels */
} mnv3_precision;

/* Element type of a quantized model's input and logits, as the source model's tensors
 * have them (a TFLite uint8 model keeps uint8 bytes at its interface). */
typedef enum mnv3_qtype {
    MNV3_QTYPE_INT8 = 0,
    MNV3_QTYPE_UINT8 = 1
} mnv3_qtype;

/* real = scale * (q - zero_point), q in the range of `type`. */
typedef struct mnv3_quantization {
    mnv3_qtype type;
    float scale;
    int32_t zero_point;          /* in the convention of `type` (uint8: 0..255) */
} mnv3_quantization;

typedef struct mnv3_model_info {
    mnv3_arch arch;
    mnv3_flavor flavor;
    uint32_t input_channels;   /* 3 */
    uint32_t num_classes;
    uint32_t feature_dim;      /* length of the pooled feature vector */
    uint32_t num_blocks;       /* inverted-residual blocks */
    uint32_t num_layers;       /* steps reported by mnv3_model_layer() */
    uint64_t parameters;       /* counted as the source framework counts them (BN = 2/channel) */
    uint64_t stored_floats;    /* weight and bias values actually held (folded), of any
                                  element type; the name predates non-float weights */
    int has_labels;
    mnv3_preprocess preprocess;
    mnv3_precision precision;
    uint64_t stored_bytes;     /* bytes of those values at their stored element types
                                  (float32, float16 or int8 weights; float32 or int32 biases) */
} mnv3_model_info;

/* The quantization of a quantized model's input tensor and of its logits (the input of the
 * source model's softmax). MNV3_ERR_UNSUPPORTED for a float model. */
MNV3_API mnv3_status mnv3_model_quantization(const mnv3_model *model, mnv3_quantization *input,
                                             mnv3_quantization *logits);

MNV3_API mnv3_status mnv3_model_get_info(const mnv3_model *model, mnv3_model_info *info);
/* Class label, or NULL when the model has none or index is out of range. */
MNV3_API const char *mnv3_model_label(const mnv3_model *model, uint32_t index);
/* Multiply-accumulates of one image at the given input size. */
MNV3_API mnv3_status mnv3_model_macs(const mnv3_model *model, uint32_t height, uint32_t width,
                                     uint64_t *macs);

typedef enum mnv3_layer_kind {
    MNV3_LAYER_CONV = 0,        /* dense k x k convolution (the stem) */
    MNV3_LAYER_POINTWISE = 1,   /* 1 x 1 convolution */
    MNV3_LAYER_DEPTHWISE = 2,
    MNV3_LAYER_SQUEEZE_EXCITE = 3,
    MNV3_LAYER_GLOBAL_POOL = 4,
    MNV3_LAYER_FULLY_CONNECTED = 5
} mnv3_layer_kind;

/* One executed step of the network at a given input size (for summaries and profiles). */
typedef struct mnv3_layer_info {
    mnv3_layer_kind kind;
    int32_t block;             /* inverted-residual block index, -1 outside blocks */
    char name[32];             /* e.g. "block3.expand", "stem", "head.fc1" */
    uint32_t in_channels, out_channels;
    uint32_t kernel, stride;
    uint32_t in_height, in_width, out_height, out_width;
    mnv3_activation activation;
    int residual;              /* the step adds the block input */
    uint64_t macs;
} mnv3_layer_info;

MNV3_API mnv3_status mnv3_model_layer(const mnv3_model *model, uint32_t height, uint32_t width,
                                      uint32_t index, mnv3_layer_info *info);

/* ------------------------------------------------------------------------------------ */
/* Contexts and inference                                                                */
/* ------------------------------------------------------------------------------------ */

typedef struct mnv3_context mnv3_context;

#define MNV3_ARENA_ALIGNMENT 64
#define MNV3_MAX_THREADS 256
#define MNV3_MIN_INPUT_SIZE 32
#define MNV3_MAX_INPUT_SIZE 4096
#define MNV3_MAX_BATCH 4096

/* How freely a context may round (mnv3_config.precision), after TFLite's "allow fp16
 * precision for fp32" and XNNPACK's fp16-inference flag. */
typedef enum mnv3_precision_mode {
    MNV3_PRECISION_EXACT = 0,   /* float32 arithmetic; float16 weights are widened exactly */
    MNV3_PRECISION_RELAXED = 1  /* float16 or bf16 products where the CPU runs them faster;
                                   float32 elsewhere (see mnv3_context_arithmetic). Either
                                   also stores activations in that 16-bit format (a smaller
                                   arena) */
} mnv3_precision_mode;

/* The arithmetic a context actually uses. */
typedef enum mnv3_arithmetic {
    MNV3_ARITHMETIC_FP32 = 0,
    MNV3_ARITHMETIC_FP16 = 1,   /* pointwise layers multiply and add in float16 (ARMv8.2 with
                                   FP16 arithmetic, HWCAP asimdhp); the rest float32 */
    MNV3_ARITHMETIC_BF16 = 2    /* pointwise layers take bf16 products with float32 sums
                                   (AVX512-BF16, vdpbf16ps); the rest float32 */
} mnv3_arithmetic;

MNV3_API const char *mnv3_arithmetic_name(mnv3_arithmetic arithmetic); /* "fp32", ... */

typedef struct mnv3_config {
    uint32_t batch;          /* images per mnv3_run(), >= 1 */
    uint32_t height, width;  /* input size, each in [MNV3_MIN_INPUT_SIZE, MNV3_MAX_INPUT_SIZE] */
    mnv3_layout layout;      /* layout of the input buffer given to mnv3_run() */
    uint32_t threads;        /* worker threads, 1..MNV3_MAX_THREADS; 0 means 1 */
    mnv3_isa isa;            /* MNV3_ISA_AUTO unless forcing a kernel set */
    int profile;             /* non-zero: record per-layer times (see mnv3_context_layer_ns) */
    mnv3_precision_mode precision; /* MNV3_PRECISION_EXACT unless relaxing it */
} mnv3_config;

/* Defaults: batch 1, the model's preprocess size (224x224 if unknown), NCHW, 1 thread, AUTO. */
MNV3_API void mnv3_config_init(mnv3_config *config, const mnv3_model *model);

/* Memory of one context, broken down by where each byte lives. `total` is what
 * mnv3_arena_size() returns: the arena holds activations, scratch and the context itself.
 * Weights live in the model: its own copy (none when loaded in place) and, for kernel sets
 * that re-lay weights out, one packed copy per kernel set, made on the first context that
 * needs it and shared read-only by every context on the model. */
typedef struct mnv3_arena_plan {
    size_t total;           /* bytes the caller must provide: activations + scratch + context */
    size_t activations;     /* lifetime-planned activation buffers */
    size_t activation_lower_bound; /* largest input+output(+residual) live at one layer */
    size_t packed_weights;  /* held by the model, not the arena: weights re-laid out for the
                               selected kernels, shared by all of its contexts */
    size_t scratch;         /* per-thread scratch (GEMM rows, fused-expansion rings) and
                               small vectors */
    size_t context;         /* the context structure and step table */
    mnv3_isa isa;           /* the kernel set the plan was made for */
    size_t model_weights;   /* held by the model: its copy of the weights (0 when they are
                               read in place from the caller's bytes) */
} mnv3_arena_plan;

MNV3_API mnv3_status mnv3_arena_plan_for(const mnv3_model *model, const mnv3_config *config,
                                         mnv3_arena_plan *plan, mnv3_error *error);
MNV3_API mnv3_status mnv3_arena_size(const mnv3_model *model, const mnv3_config *config,
                                     size_t *bytes, mnv3_error *error);

/* Creates a context inside `arena` (at least mnv3_arena_size() bytes, MNV3_ARENA_ALIGNMENT
 * aligned). With arena == NULL the library allocates the arena itself, once, and frees it in
 * mnv3_context_free(). The model must outlive the context. Thread workers (if any) are
 * started here, not during inference, and the weight prefetch schedule is made here
 * (MNV3_PREFETCH=0 in the environment turns it off, for measuring it; results are
 * identical either way). */
MNV3_API mnv3_status mnv3_context_create(const mnv3_model *model, const mnv3_config *config,
                                         void *arena, size_t arena_size,
                                         mnv3_context **out_context, mnv3_error *error);
MNV3_API void mnv3_context_free(mnv3_context *context); /* NULL is allowed */

/* Runs the network on batch x 3 x H x W floats (layout as configured), already normalised.
 * logits: batch x num_classes floats, or NULL with logits_len 0.
 * features: batch x feature_dim floats (the globally pooled last-conv output), or NULL with 0.
 * Lengths are element counts and must match exactly. No allocation happens here. */
MNV3_API mnv3_status mnv3_run(mnv3_context *context, const float *input, size_t input_len,
                              float *logits, size_t logits_len,
                              float *features, size_t features_len);

/* Quantized models only: runs the network on input that is already quantized, bytes of
 * the model's input type (mnv3_model_quantization: uint8 or int8), batch x 3 x H x W in the
 * configured layout. Outputs, each optional (NULL with length 0): logits_q, batch x
 * num_classes bytes of the logits' type, exactly the source model's quantized logits (the
 * input of its softmax); logits, the same dequantized to floats. Float models return
 * MNV3_ERR_UNSUPPORTED. mnv3_run() on a quantized model quantizes its float input with
 * the input scale and zero point (rounding half away from zero, as TFLite's QUANTIZE) and
 * dequantizes the logits and features. No allocation happens here. */
MNV3_API mnv3_status mnv3_run_quantized(mnv3_context *context, const void *input,
                                        size_t input_len, void *logits_q, size_t logits_q_len,
                                        float *logits, size_t logits_len);

/* Debugging: after each step of a run, fn(user, layer, name, data, bytes) receives the
 * step's result (layer indices and names as mnv3_model_layer()): feature maps NHWC (for a
 * projection, after the residual add; a last conv whose output is only pooled reports
 * nothing), for a squeeze-excite step the gate, for the global pool the pooled vector, for
 * a classifier layer its outputs. Elements are int8 for a quantized model, float32 for a
 * float one, except a relaxed context with float16 or bf16 arithmetic
 * (mnv3_context_arithmetic MNV3_ARITHMETIC_FP16, _BF16), whose feature maps are float16 or
 * bf16. NULL turns it off. The data is only valid during the call. */
typedef void (*mnv3_tap_fn)(void *user, uint32_t layer, const char *name, const void *data,
                            size_t bytes);
MNV3_API mnv3_status mnv3_context_set_tap(mnv3_context *context, mnv3_tap_fn fn, void *user);

/* Kernel set actually used by a context. */
MNV3_API mnv3_isa mnv3_context_isa(const mnv3_context *context);
/* Arithmetic actually used: FP32 unless the configuration relaxed the precision and the
 * kernel set has faster arithmetic on this CPU. */
MNV3_API mnv3_arithmetic mnv3_context_arithmetic(const mnv3_context *context);
/* For a context on a quantized model: the int8 kernel variant that kernel set resolved to
 * on this CPU ("avx512vnni-vbmi", "avx512vnni", "avxvnni" or "avx2" under MNV3_ISA_AVX512,
 * as the CPU allows; "scalar" for the reference kernels), for example to pick the matching
 * int8 peak in a benchmark. NULL for a float model or a NULL context. */
MNV3_API const char *mnv3_context_int8_kernels(const mnv3_context *context);
MNV3_API uint32_t mnv3_context_threads(const mnv3_context *context);
/* With config.profile set: nanoseconds the last mnv3_run() spent in layer `index` (indices
 * as mnv3_model_layer()); 0 otherwise. */
MNV3_API uint64_t mnv3_context_layer_ns(const mnv3_context *context, uint32_t index);

/* ------------------------------------------------------------------------------------ */
/* Helpers                                                                               */
/* ------------------------------------------------------------------------------------ */

/* Row-wise, numerically stable softmax; in and out may alias. Non-finite scores: a NaN
 * gets probability 0 (it ranks last, as in mnv3_top_k) and the other entries of its row
 * share 1 as if it were absent; +inf entries share 1 equally and every other entry gets
 * 0; a row whose non-NaN entries are all -inf is uniform over those entries. A row of
 * NaNs only has no distribution: it is written as zeros and the call returns
 * MNV3_ERR_INVALID_ARGUMENT (after writing every row). */
MNV3_API mnv3_status mnv3_softmax(const float *in, float *out, size_t rows, size_t cols);

/* Top-k indices of one row of scores, best first (ties: lower index first). NaN ranks last,
 * after -inf, NaNs among themselves by index. k <= cols. */
MNV3_API mnv3_status mnv3_top_k(const float *scores, size_t cols, uint32_t k, uint32_t *indices);

/* Turns an 8-bit interleaved image (channels 1, 3 or 4; RGB(A) or gray) of any size into the
 * model's input: bilinear resize (half-pixel centres) to dst_height x dst_width, channel
 * order and normalisation from the model's preprocess metadata, written in `layout`.
 * dst holds 3 * dst_height * dst_width floats. Alpha is ignored; gray is replicated. */
MNV3_API mnv3_status mnv3_preprocess_image(const mnv3_model *model, const uint8_t *pixels,
                                           uint32_t src_height, uint32_t src_width,
                                           uint32_t src_channels, uint32_t dst_height,
                                           uint32_t dst_width, mnv3_layout layout, float *dst,
                                           size_t dst_len);

/* The same resize and normalisation, quantized for a quantized model's input: dst holds
 * 3 * dst_height * dst_width bytes of the model's input type (mnv3_model_quantization),
 * ready for mnv3_run_quantized(): each is the value mnv3_preprocess_image() computes,
 * quantized with the input scale and zero point as mnv3_run() quantizes it. For the
 * TFLite models (scale 1/127 or 1/127.5 around the pixel midpoint) the bytes are the
 * pixels themselves (uint8) or pixel - 128 (int8). MNV3_ERR_UNSUPPORTED for a float
 * model. */
MNV3_API mnv3_status mnv3_preprocess_image_quantized(const mnv3_model *model,
                                                     const uint8_t *pixels, uint32_t src_height,
                                                     uint32_t src_width, uint32_t src_channels,
                                                     uint32_t dst_height, uint32_t dst_width,
                                                     mnv3_layout layout, void *dst,
                                                     size_t dst_len);

/* The same preprocessing a row at a time, for images decoded row by row (so that a large
 * photo never has to be held whole). Output row `dst_row` reads only two source rows, which
 * mnv3_preprocess_source_rows() names: *first, and *second (== *first or *first + 1). Both
 * never decrease as dst_row grows, so a decoder can keep just the last two rows.
 * mnv3_preprocess_image_row() then writes that output row into dst (the whole output, as
 * for mnv3_preprocess_image) from those two rows (src_width * src_channels bytes each);
 * the values are exactly those mnv3_preprocess_image() produces.
 * mnv3_preprocess_image_row_quantized() does the same for a quantized model, into the bytes
 * mnv3_preprocess_image_quantized() produces (MNV3_ERR_UNSUPPORTED for a float model). */
MNV3_API mnv3_status mnv3_preprocess_source_rows(uint32_t src_height, uint32_t dst_height,
                                                 uint32_t dst_row, uint32_t *first,
                                                 uint32_t *second);
MNV3_API mnv3_status mnv3_preprocess_image_row(const mnv3_model *model, const uint8_t *first_row,
                                               const uint8_t *second_row, uint32_t src_height,
                                               uint32_t src_width, uint32_t src_channels,
                                               uint32_t dst_height, uint32_t dst_width,
                                               uint32_t dst_row, mnv3_layout layout, float *dst,
                                               size_t dst_len);
MNV3_API mnv3_status mnv3_preprocess_image_row_quantized(
    const mnv3_model *model, const uint8_t *first_row, const uint8_t *second_row,
    uint32_t src_height, uint32_t src_width, uint32_t src_channels, uint32_t dst_height,
    uint32_t dst_width, uint32_t dst_row, mnv3_layout layout, void *dst, size_t dst_len);

#ifdef __cplusplus
}
#endif
#endif /* MNV3_H */
