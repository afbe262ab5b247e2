import CMobileNetV3

/// How the real values of a quantized tensor map to its 8-bit values:
/// `real = scale * (q - zeroPoint)`.
///
/// A quantized ``Model`` has one for its input and one for its logits (the input of the
/// source model's softmax): ``Model/inputQuantization`` and ``Model/logitsQuantization``.
public struct Quantization: Hashable, Sendable, CustomStringConvertible {
    /// The element type of the tensor's bytes.
    public enum ElementType: String, Sendable, CaseIterable, CustomStringConvertible {
        /// Signed bytes, -128...127 (TensorFlow Lite full-integer models, the built-ins).
        case int8
        /// Unsigned bytes, 0...255 (TensorFlow Lite's older quantized models).
        case uint8

        init(_ c: mnv3_qtype) { self = c == MNV3_QTYPE_UINT8 ? .uint8 : .int8 }

        /// The values a byte of this type holds.
        public var range: ClosedRange<Int> { self == .uint8 ? 0...255 : -128...127 }

        public var description: String { rawValue }
    }

    public var type: ElementType
    /// Real value of one step; finite and positive.
    public var scale: Float
    /// The value that stands for 0.0, within `type.range`.
    public var zeroPoint: Int

    public init(type: ElementType, scale: Float, zeroPoint: Int) {
        self.type = type
        self.scale = scale
        self.zeroPoint = zeroPoint
    }

    init(_ q: mnv3_quantization) {
        self.init(type: ElementType(q.type), scale: q.scale, zeroPoint: Int(q.zero_point))
    }

    /// The nearest quantized value, as TensorFlow Lite's QUANTIZE computes it (`x / scale` in
    /// float, rounded half away from zero, plus the zero point), clamped to `type.range`.
    /// NaN becomes the lowest value. The library quantizes float input to a quantized model
    /// the same way.
    public func quantize(_ x: Float) -> Int {
        let r = x / scale
        let range = type.range
        guard r > -1e9 else { return range.lowerBound }
        guard r < 1e9 else { return range.upperBound }
        return min(max(zeroPoint + Int(r.rounded(.toNearestOrAwayFromZero)), range.lowerBound), range.upperBound)
    }

    /// The real value of a quantized value.
    public func dequantize(_ q: Int) -> Float { Float(Double(scale) * Double(q - zeroPoint)) }

    public var description: String { "\(type), scale \(scale), zero point \(zeroPoint)" }
}

/// Network input that is already quantized: bytes of the model's input type
/// (``Model/inputQuantization``), in the session's layout. This is the camera path: image
/// bytes become network input with no float array in between
/// (``Session/preprocessQuantized(_:)``).
public enum QuantizedInput: Hashable, Sendable {
    case uint8([UInt8])
    case int8([Int8])

    /// Quantizes float input (already normalised) with `quantization`.
    public init(_ input: [Float], quantization q: Quantization) {
        switch q.type {
        case .uint8: self = .uint8(input.map { UInt8(q.quantize($0)) })
        case .int8: self = .int8(input.map { Int8(q.quantize($0)) })
        }
    }

    public var type: Quantization.ElementType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        }
    }

    public var count: Int {
        switch self {
        case .uint8(let v): return v.count
        case .int8(let v): return v.count
        }
    }
}

/// The result of ``Session/predict(quantized:)``.
public struct QuantizedPrediction: Hashable, Sendable {
    /// Logits `[N, classes]`, dequantized.
    public var logits: Tensor
    /// The quantized logits, `N * classes` values within ``quantization``'s type range:
    /// exactly the source model's quantized logits (the input of its softmax).
    public var quantizedLogits: [Int]
    /// The quantization of the logits.
    public var quantization: Quantization
}
