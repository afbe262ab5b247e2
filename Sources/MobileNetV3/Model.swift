import CMobileNetV3
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// An input size in pixels.
public struct ImageSize: Hashable, Sendable, CustomStringConvertible {
    public var height: Int
    public var width: Int
    public init(height: Int, width: Int) {
        self.height = height
        self.width = width
    }
    /// A square size.
    public init(_ side: Int) { self.init(height: side, width: side) }
    public var description: String { "\(height)x\(width)" }
}

/// How raw pixels become the network input: `input = (pixel * scale - mean[c]) / std[c]`.
public struct Preprocessing: Hashable, Sendable {
    /// The input size the model was trained at.
    public var size: ImageSize
    /// Channel order the network expects: `"rgb"` or `"bgr"`.
    public var channelOrder: String
    /// The layout the original framework used.
    public var layout: Layout
    public var scale: Float
    public var mean: [Float]
    public var std: [Float]

    init(_ p: mnv3_preprocess) {
        size = ImageSize(height: Int(p.height), width: Int(p.width))
        channelOrder = p.channel_order == MNV3_BGR ? "bgr" : "rgb"
        layout = Layout(p.layout)
        scale = p.scale
        mean = [p.mean.0, p.mean.1, p.mean.2]
        std = [p.std.0, p.std.1, p.std.2]
    }
}

/// One executed step of the network at a given input size.
public struct LayerInfo: Hashable, Sendable {
    public var index: Int
    public var kind: LayerKind
    /// Inverted-residual block index, or `nil` outside blocks.
    public var block: Int?
    /// For example `"stem"`, `"block3.expand"`, `"head.fc1"`.
    public var name: String
    public var inChannels: Int
    public var outChannels: Int
    public var kernel: Int
    public var stride: Int
    public var inputSize: ImageSize
    public var outputSize: ImageSize
    public var activation: Activation
    /// Whether the step adds the block input.
    public var residual: Bool
    /// Multiply-accumulates of one image.
    public var macs: Int
}

/// Memory of one ``Session``, broken down by where each byte lives (see
/// `mnv3_arena_plan_for`). The session's arena holds ``total`` bytes: activations, scratch
/// and the context. Weights belong to the ``Model`` and are shared by all of its sessions:
/// its own copy (``modelWeights``) and, for kernel sets that re-lay weights out, one packed
/// copy per kernel set (``packedWeights``), made by the first session that needs it.
public struct ArenaPlan: Hashable, Sendable {
    /// Bytes of the session's arena: exactly what `mnv3_arena_size` reports.
    public var total: Int
    /// Lifetime-planned activation buffers (in the arena).
    public var activations: Int
    /// Largest input + output (+ residual) live at one layer.
    public var activationLowerBound: Int
    /// Held by the model: weights re-laid out for the selected kernels, shared by its sessions.
    public var packedWeights: Int
    /// Held by the model: its copy of the weights (0 when they are read in place).
    public var modelWeights: Int
    /// Per-thread scratch and small vectors (in the arena).
    public var scratch: Int
    /// The context structure and step table (in the arena).
    public var context: Int
    /// The kernel set the plan was made for.
    public var isa: ISA

    init(_ p: mnv3_arena_plan) {
        self.init(total: p.total, activations: p.activations,
                  activationLowerBound: p.activation_lower_bound, packedWeights: p.packed_weights,
                  modelWeights: p.model_weights, scratch: p.scratch, context: p.context,
                  isa: ISA(p.isa))
    }

    public init(total: Int, activations: Int, activationLowerBound: Int, packedWeights: Int,
                modelWeights: Int, scratch: Int, context: Int, isa: ISA) {
        self.total = total
        self.activations = activations
        self.activationLowerBound = activationLowerBound
        self.packedWeights = packedWeights
        self.modelWeights = modelWeights
        self.scratch = scratch
        self.context = context
        self.isa = isa
    }
}

/// A loaded MobileNetV3 network: layers, weights, preprocessing metadata and labels.
///
/// A `Model` is immutable once created. It is `Sendable`: one instance may be shared by
/// any number of tasks and threads, each running inferences through its own ``Session``.
/// The underlying C model is freed exactly once, when the last reference goes away; every
/// session keeps its model alive.
public final class Model: Sendable {
    /// The C handle (`mnv3_model *`). Valid for the lifetime of this object; never free it.
    public nonisolated(unsafe) let handle: OpaquePointer
    private let info: mnv3_model_info
    /// Class labels (empty when the model has none).
    public let labels: [String]
    /// A quantized model's input: how ``Session/predict(_:)`` quantizes float input, and
    /// what ``Session/predict(quantized:)`` takes. `nil` for a float model.
    public let inputQuantization: Quantization?
    /// A quantized model's logits (the input of the source model's softmax), which
    /// ``Session/predict(_:)`` dequantizes. `nil` for a float model.
    public let logitsQuantization: Quantization?

    private init(handle: OpaquePointer) throws(MobileNetV3Error) {
        var info = mnv3_model_info()
        let status = mnv3_model_get_info(handle, &info)
        if status != MNV3_OK {
            mnv3_model_free(handle)
            throw MobileNetV3Error(status: status, error: nil, context: "reading model information")
        }
        self.handle = handle
        self.info = info
        var labels: [String] = []
        if info.has_labels != 0 {
            labels.reserveCapacity(Int(info.num_classes))
            for i in 0..<info.num_classes {
                if let text = mnv3_model_label(handle, i) {
                    labels.append(String(cString: text))
                } else {
                    labels.append("")
                }
            }
        }
        self.labels = labels
        var input = mnv3_quantization(), logits = mnv3_quantization()
        if info.precision != MNV3_PRECISION_FLOAT32, mnv3_model_quantization(handle, &input, &logits) == MNV3_OK {
            inputQuantization = Quantization(input)
            logitsQuantization = Quantization(logits)
        } else {
            inputQuantization = nil
            logitsQuantization = nil
        }
    }

    deinit { mnv3_model_free(handle) }

    /// Loads a `.mnv3` model file.
    public convenience init(contentsOf url: URL) throws(MobileNetV3Error) {
        guard url.isFileURL else {
            throw MobileNetV3Error(.invalidArgument, "\(url.absoluteString): only file URLs can be loaded")
        }
        try self.init(path: url.path)
    }

    /// Loads a `.mnv3` model file from a file-system path.
    public convenience init(path: String) throws(MobileNetV3Error) {
        var model: OpaquePointer?
        try check(path) { mnv3_model_load_file(path, 0, &model, $0) }
        guard let model else { throw MobileNetV3Error(.outOfMemory, "\(path): no model returned") }
        try self.init(handle: model)
    }

    /// Parses a `.mnv3` file image held in memory. The bytes are copied.
    public convenience init(bytes: [UInt8]) throws(MobileNetV3Error) {
        var model: OpaquePointer?
        var error = mnv3_error()
        let status = bytes.withUnsafeBytes { raw in
            mnv3_model_load_memory(raw.baseAddress, raw.count, 0, &model, &error)
        }
        if status != MNV3_OK { throw MobileNetV3Error(status: status, error: error, context: "model bytes") }
        guard let model else { throw MobileNetV3Error(.outOfMemory, "model bytes: no model returned") }
        try self.init(handle: model)
    }

    /// The most classes a model may have: the C library's `MNV3_MAX_CLASSES` (100,000). A
    /// model file with more is refused when it loads; ``builtin(arch:flavor:widthMultiplier:classes:seed:precision:)``
    /// refuses more with ``MobileNetV3Error/Code/invalidArgument``, its message naming the limit.
    public static let maxClasses = Int(MNV3_MAX_CLASSES)

    /// A built-in architecture with deterministic pseudo-random weights derived from `seed`.
    /// For benchmarks and tests: the logits are meaningless.
    ///
    /// - Parameters:
    ///   - arch: `.large` or `.small`.
    ///   - flavor: which published definition to follow.
    ///   - widthMultiplier: channel multiplier in (0, 4].
    ///   - classes: number of output classes, 1...``maxClasses``.
    ///   - seed: weight seed.
    ///   - precision: `.int8` quantizes the float network of the same seed: int8 weights per
    ///     output channel, activation scales from a float pass over a fixed synthetic image
    ///     (deterministic; see `mnv3_model_create_builtin_int8`).
    public static func builtin(arch: Architecture = .large, flavor: Flavor = .torchvision,
                               widthMultiplier: Double = 1.0, classes: Int = 1000,
                               seed: UInt64 = 0, precision: Precision = .float32) throws(MobileNetV3Error) -> Model {
        guard classes >= 1, classes <= maxClasses else {
            throw MobileNetV3Error(.invalidArgument,
                                   "classes must be in 1...\(maxClasses) (Model.maxClasses, the C library's "
                                   + "MNV3_MAX_CLASSES), got \(classes)")
        }
        var model: OpaquePointer?
        try check("built-in \(arch) \(precision) model") {
            switch precision {
            case .float32:
                return mnv3_model_create_builtin(arch.c, flavor.c, widthMultiplier, UInt32(classes), seed,
                                                 &model, $0)
            case .int8:
                return mnv3_model_create_builtin_int8(arch.c, flavor.c, widthMultiplier, UInt32(classes), seed,
                                                      &model, $0)
            }
        }
        guard let model else { throw MobileNetV3Error(.outOfMemory, "no model returned") }
        return try Model(handle: model)
    }

    /// The same network with its weights stored as `type`: `.float16` halves the model
    /// (rounded to nearest even; a weight beyond float16's range is refused), `.float32`
    /// widens float16 weights exactly. Quantized models stay int8.
    public func converted(weights type: WeightType) throws(MobileNetV3Error) -> Model {
        var model: OpaquePointer?
        try check("converting the weights to \(type)") {
            mnv3_model_convert_weights(handle, type.c, &model, $0)
        }
        guard let model else { throw MobileNetV3Error(.outOfMemory, "no model returned") }
        return try Model(handle: model)
    }

    /// How the weights are stored.
    public var weightType: WeightType { WeightType(mnv3_model_weight_type(handle)) }

    // MARK: Description

    public var arch: Architecture { Architecture(info.arch) }
    /// The arithmetic of the network. Sessions work the same way for every precision: float
    /// input (quantized inside for int8) and float logits.
    public var precision: Precision { Precision(info.precision) }
    public var flavor: Flavor { Flavor(info.flavor) }
    /// Input channels (3).
    public var inputChannels: Int { Int(info.input_channels) }
    public var classCount: Int { Int(info.num_classes) }
    /// Length of the pooled feature vector.
    public var featureDimension: Int { Int(info.feature_dim) }
    /// Inverted-residual blocks.
    public var blockCount: Int { Int(info.num_blocks) }
    /// Steps reported by ``layers(at:)``.
    public var layerCount: Int { Int(info.num_layers) }
    /// Parameters, counted as the source framework counts them (batch norm = 2 per channel).
    public var parameters: Int { Int(info.parameters) }
    /// Weight and bias values actually held (folded), whatever their element type.
    public var storedValues: Int { Int(info.stored_floats) }
    /// Bytes of those values at their stored types (float32, float16 or int8 weights).
    public var storedBytes: Int { Int(info.stored_bytes) }
    @available(*, deprecated, renamed: "storedValues")
    public var storedFloats: Int { storedValues }
    public var hasLabels: Bool { info.has_labels != 0 }
    public var preprocess: Preprocessing { Preprocessing(info.preprocess) }

    /// The label of class `index`, or `"class N"` when the model has no labels.
    public func label(_ index: Int) -> String {
        if index >= 0, index < labels.count, !labels[index].isEmpty { return labels[index] }
        return "class \(index)"
    }

    /// Multiply-accumulates of one image at `size` (default: the model's input size).
    public func macs(at size: ImageSize? = nil) throws(MobileNetV3Error) -> Int {
        let s = size ?? preprocess.size
        let (h, w) = try Model.dimensions(s)
        var macs: UInt64 = 0
        try check("MACs at \(s)", status: mnv3_model_macs(handle, h, w, &macs))
        return Int(clamping: macs)
    }

    /// The executed steps at `size` (default: the model's input size).
    public func layers(at size: ImageSize? = nil) throws(MobileNetV3Error) -> [LayerInfo] {
        let s = size ?? preprocess.size
        let (h, w) = try Model.dimensions(s)
        var result: [LayerInfo] = []
        result.reserveCapacity(layerCount)
        for i in 0..<UInt32(layerCount) {
            var l = mnv3_layer_info()
            try check("layer \(i) at \(s)", status: mnv3_model_layer(handle, h, w, i, &l))
            let name = withUnsafeBytes(of: &l.name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            result.append(LayerInfo(
                index: Int(i), kind: LayerKind(l.kind), block: l.block < 0 ? nil : Int(l.block),
                name: name, inChannels: Int(l.in_channels), outChannels: Int(l.out_channels),
                kernel: Int(l.kernel), stride: Int(l.stride),
                inputSize: ImageSize(height: Int(l.in_height), width: Int(l.in_width)),
                outputSize: ImageSize(height: Int(l.out_height), width: Int(l.out_width)),
                activation: Activation(l.activation), residual: l.residual != 0,
                macs: Int(clamping: l.macs)))
        }
        return result
    }

    /// The memory a session with `options` needs, broken down.
    public func arenaPlan(for options: Session.Options = .init()) throws(MobileNetV3Error) -> ArenaPlan {
        var config = try options.config(for: self)
        var plan = mnv3_arena_plan()
        try check("arena plan") { mnv3_arena_plan_for(handle, &config, &plan, $0) }
        return ArenaPlan(plan)
    }

    // MARK: Saving

    /// The model serialised in the `.mnv3` format.
    public func serialized() throws(MobileNetV3Error) -> [UInt8] {
        var size = 0
        try check("serialising model") { mnv3_model_save_memory(handle, nil, 0, &size, $0) }
        var bytes = [UInt8](repeating: 0, count: size)
        var written = 0
        var error = mnv3_error()
        let status = bytes.withUnsafeMutableBytes { raw in
            mnv3_model_save_memory(handle, raw.baseAddress, raw.count, &written, &error)
        }
        if status != MNV3_OK { throw MobileNetV3Error(status: status, error: error, context: "serialising model") }
        if written < bytes.count { bytes.removeLast(bytes.count - written) }
        return bytes
    }

    /// Writes the model to a `.mnv3` file.
    public func save(to url: URL) throws(MobileNetV3Error) {
        guard url.isFileURL else {
            throw MobileNetV3Error(.invalidArgument, "\(url.absoluteString): only file URLs can be written")
        }
        let path = url.path
        try check(path) { mnv3_model_save_file(handle, path, $0) }
    }

    static func dimensions(_ s: ImageSize) throws(MobileNetV3Error) -> (UInt32, UInt32) {
        let range = Int(MNV3_MIN_INPUT_SIZE)...Int(MNV3_MAX_INPUT_SIZE)
        guard range.contains(s.height), range.contains(s.width) else {
            throw MobileNetV3Error(.invalidArgument,
                                   "input size \(s) is outside \(range.lowerBound)...\(range.upperBound)")
        }
        return (UInt32(s.height), UInt32(s.width))
    }
}
