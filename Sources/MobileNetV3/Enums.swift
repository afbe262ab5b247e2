import CMobileNetV3

/// The MobileNetV3 variant of a network.
public enum Architecture: String, Sendable, CaseIterable, CustomStringConvertible {
    case custom, large, small

    init(_ c: mnv3_arch) {
        switch c {
        case MNV3_ARCH_LARGE: self = .large
        case MNV3_ARCH_SMALL: self = .small
        default: self = .custom
        }
    }

    var c: mnv3_arch {
        switch self {
        case .custom: return MNV3_ARCH_CUSTOM
        case .large: return MNV3_ARCH_LARGE
        case .small: return MNV3_ARCH_SMALL
        }
    }

    public var description: String { rawValue }
}

/// Which published definition the network follows (padding, channel rounding, classes).
public enum Flavor: String, Sendable, CaseIterable, CustomStringConvertible {
    case custom
    /// `torchvision.models.mobilenet_v3_{large,small}`.
    case torchvision
    /// The original paper tables: unrounded channels, ReLU6.
    case walkthrough
    /// TF-slim / TFLite graphs: SAME padding, 1001 classes.
    case tflite

    init(_ c: mnv3_flavor) {
        switch c {
        case MNV3_FLAVOR_TORCHVISION: self = .torchvision
        case MNV3_FLAVOR_WALKTHROUGH: self = .walkthrough
        case MNV3_FLAVOR_TFLITE: self = .tflite
        default: self = .custom
        }
    }

    var c: mnv3_flavor {
        switch self {
        case .custom: return MNV3_FLAVOR_CUSTOM
        case .torchvision: return MNV3_FLAVOR_TORCHVISION
        case .walkthrough: return MNV3_FLAVOR_WALKTHROUGH
        case .tflite: return MNV3_FLAVOR_TFLITE
        }
    }

    public var description: String { rawValue }
}

/// The arithmetic of a model's network.
public enum Precision: String, Sendable, CaseIterable, CustomStringConvertible {
    /// float32 weights and activations.
    case float32
    /// int8 weights and activations, each tensor with a scale and zero point, computed as
    /// TensorFlow Lite's integer reference kernels compute them.
    case int8

    init(_ c: mnv3_precision) { self = c == MNV3_PRECISION_INT8 ? .int8 : .float32 }

    /// Parses "float32" (or "fp32", "float") and "int8".
    public init?(name: String) {
        switch name.lowercased() {
        case "float32", "fp32", "float", "f32": self = .float32
        case "int8", "i8", "q8": self = .int8
        default: return nil
        }
    }

    public var description: String { rawValue }
}

/// Memory layout of an image tensor.
public enum Layout: String, Sendable, CaseIterable, CustomStringConvertible {
    /// batch, channels, height, width.
    case nchw
    /// batch, height, width, channels.
    case nhwc

    init(_ c: mnv3_layout) { self = c == MNV3_LAYOUT_NHWC ? .nhwc : .nchw }
    var c: mnv3_layout { self == .nhwc ? MNV3_LAYOUT_NHWC : MNV3_LAYOUT_NCHW }
    public var description: String { rawValue }
}

/// A kernel implementation (instruction set). `.auto` picks the best one at run time.
/// How a model stores its weights (biases are float32 in every float model).
public enum WeightType: String, Sendable, CaseIterable, CustomStringConvertible {
    case float32, float16, int8

    init(_ c: mnv3_weight_type) {
        switch c {
        case MNV3_WEIGHTS_FLOAT16: self = .float16
        case MNV3_WEIGHTS_INT8: self = .int8
        default: self = .float32
        }
    }

    var c: mnv3_weight_type {
        switch self {
        case .float32: return MNV3_WEIGHTS_FLOAT32
        case .float16: return MNV3_WEIGHTS_FLOAT16
        case .int8: return MNV3_WEIGHTS_INT8
        }
    }

    public var description: String { rawValue }
}

/// How freely a session may round, after TensorFlow Lite's "allow fp16 precision for fp32"
/// and XNNPACK's fp16-inference flag.
public enum PrecisionMode: String, Sendable, CaseIterable, CustomStringConvertible {
    /// float32 arithmetic; float16 weights are widened exactly.
    case exact
    /// float16 (ARMv8.2 with FP16 arithmetic) or bf16 (AVX512-BF16) products in the pointwise
    /// layers where the CPU has them; float32 elsewhere (see ``Session/arithmetic``).
    case relaxed

    var c: mnv3_precision_mode { self == .relaxed ? MNV3_PRECISION_RELAXED : MNV3_PRECISION_EXACT }
    public var description: String { rawValue }
}

/// The arithmetic a session actually uses.
public enum Arithmetic: String, Sendable, CaseIterable, CustomStringConvertible {
    case fp32, fp16, bf16

    init(_ c: mnv3_arithmetic) {
        switch c {
        case MNV3_ARITHMETIC_FP16: self = .fp16
        case MNV3_ARITHMETIC_BF16: self = .bf16
        default: self = .fp32
        }
    }

    public var description: String { rawValue }
}

public enum ISA: String, Sendable, CaseIterable, CustomStringConvertible {
    case auto, scalar, avx2, avx512, neon

    init(_ c: mnv3_isa) {
        switch c {
        case MNV3_ISA_SCALAR: self = .scalar
        case MNV3_ISA_AVX2: self = .avx2
        case MNV3_ISA_AVX512: self = .avx512
        case MNV3_ISA_NEON: self = .neon
        default: self = .auto
        }
    }

    var c: mnv3_isa {
        switch self {
        case .auto: return MNV3_ISA_AUTO
        case .scalar: return MNV3_ISA_SCALAR
        case .avx2: return MNV3_ISA_AVX2
        case .avx512: return MNV3_ISA_AVX512
        case .neon: return MNV3_ISA_NEON
        }
    }

    /// Parses "auto", "scalar", "avx2", "avx512" or "neon".
    public init?(name: String) { self.init(rawValue: name.lowercased()) }

    /// Whether this build has the kernels and the running CPU supports them.
    public var isAvailable: Bool { self == .auto || mnv3_isa_available(c) != 0 }

    /// What `.auto` resolves to on this machine (the `MNV3_ISA` environment variable
    /// overrides the automatic choice).
    public static var best: ISA { ISA(mnv3_isa_best()) }

    /// The kernel sets this build and CPU can run, fastest last.
    public static var available: [ISA] { [.scalar, .neon, .avx2, .avx512].filter { $0.isAvailable } }

    public var description: String { rawValue }
}

/// Activation function of a layer.
public enum Activation: String, Sendable, CustomStringConvertible {
    case none, relu, relu6, hardSwish = "hard_swish", hardSigmoid = "hard_sigmoid"

    init(_ c: mnv3_activation) {
        switch c {
        case MNV3_ACT_RELU: self = .relu
        case MNV3_ACT_RELU6: self = .relu6
        case MNV3_ACT_HARD_SWISH: self = .hardSwish
        case MNV3_ACT_HARD_SIGMOID: self = .hardSigmoid
        default: self = .none
        }
    }

    public var description: String { rawValue }
}

/// Kind of one executed step of the network.
public enum LayerKind: String, Sendable, CustomStringConvertible {
    case conv, pointwise, depthwise, squeezeExcite = "squeeze_excite", globalPool = "global_pool",
         fullyConnected = "fully_connected"

    init(_ c: mnv3_layer_kind) {
        switch c {
        case MNV3_LAYER_POINTWISE: self = .pointwise
        case MNV3_LAYER_DEPTHWISE: self = .depthwise
        case MNV3_LAYER_SQUEEZE_EXCITE: self = .squeezeExcite
        case MNV3_LAYER_GLOBAL_POOL: self = .globalPool
        case MNV3_LAYER_FULLY_CONNECTED: self = .fullyConnected
        default: self = .conv
        }
    }

    public var description: String { rawValue }
}

/// The library version (the C library actually linked).
public var libraryVersion: String { String(cString: mnv3_version_string()) }
