import ArgumentParser
import Foundation
import MobileNetV3
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Loads a model from a path or a `builtin:ARCH[:WIDTH][:PRECISION]` specification.
/// `precision` (from `--precision`) chooses the built-in's precision; a model file has its own.
func loadModel(_ spec: String, precision: Precision? = nil) throws(MobileNetV3Error) -> Model {
    if spec.hasPrefix("builtin:") {
        let usage = "\(spec): expected builtin:ARCH[:WIDTH][:PRECISION], ARCH large or small, "
            + "WIDTH in (0, 4], PRECISION float32 or int8"
        let parts = spec.dropFirst("builtin:".count).split(separator: ":", omittingEmptySubsequences: false)
        guard let first = parts.first, let arch = Architecture(rawValue: String(first)), arch != .custom,
              parts.count <= 3 else {
            throw MobileNetV3Error(.invalidArgument, usage)
        }
        var width: Double?
        var named: Precision?
        for part in parts.dropFirst() {
            if width == nil, named == nil, let w = Double(part) {
                guard w > 0, w <= 4 else {
                    throw MobileNetV3Error(.invalidArgument, "\(spec): width must be a number in (0, 4]")
                }
                width = w
            } else if named == nil, let p = Precision(name: String(part)) {
                named = p
            } else {
                throw MobileNetV3Error(.invalidArgument, usage)
            }
        }
        if let named, let precision, named != precision {
            throw MobileNetV3Error(.invalidArgument, "\(spec) is \(named), --precision says \(precision)")
        }
        return try Model.builtin(arch: arch, flavor: .torchvision, widthMultiplier: width ?? 1.0,
                                 precision: named ?? precision ?? .float32)
    }
    if precision != nil {
        throw MobileNetV3Error(.invalidArgument,
                               "--precision chooses a built-in network's precision; \(spec) has its own")
    }
    return try Model(contentsOf: URL(fileURLWithPath: spec))
}

/// `--precision`: how the network is stored and computed, one set of names for every
/// command.
enum PrecisionChoice: String, CaseIterable, ExpressibleByArgument {
    /// float32 weights and arithmetic (float16 weights are widened at load).
    case fp32
    /// float16 weights, float32 arithmetic (float32 weights are rounded at load).
    case fp16Weights = "fp16-weights"
    /// float16 or bf16 products where the CPU has them, the model's own weights.
    case relaxed
    /// An int8 network: a quantized model file.
    case int8

    init?(argument: String) {
        switch argument.lowercased() {
        case "fp32", "float32", "f32", "float": self = .fp32
        case "fp16-weights", "fp16", "float16", "f16": self = .fp16Weights
        case "relaxed": self = .relaxed
        case "int8", "i8", "q8": self = .int8
        default: return nil
        }
    }

    static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

/// The help of `--precision`, the same for every command.
var precisionHelp: ArgumentHelp {
    ArgumentHelp("""
        fp32, fp16-weights (float16 weights, float32 arithmetic), relaxed (float16 or bf16 \
        products where the CPU has them) or int8 (a quantized model).
        """)
}

extension PrecisionChoice {
    /// Validation tolerance of this precision for the largest absolute error against a
    /// float reference, as a fraction of max(1, max|reference|): float32 arithmetic agrees
    /// with a float32 framework to about 1e-5; rounding the weights to float16 moves the
    /// logits by up to about 3e-3 of the largest, and float16 or bf16 products by up to
    /// about 1e-2 (docs/benchmarks.md). int8 is compared exactly.
    var defaultTolerance: Double {
        switch self {
        case .fp32: return 1e-4
        case .fp16Weights: return 1e-2
        case .relaxed: return 3e-2
        case .int8: return 0
        }
    }

    /// The meta.json key of a golden directory that sets this precision's tolerance.
    var toleranceKey: String {
        switch self {
        case .fp32, .int8: return "tolerance"
        case .fp16Weights: return "tolerance_fp16_weights"
        case .relaxed: return "tolerance_relaxed"
        }
    }
}

/// The model and session mode a `--precision` asks for.
func applyPrecision(_ choice: PrecisionChoice?, to model: Model) throws(MobileNetV3Error)
    -> (Model, PrecisionMode) {
    if let choice, choice != .int8, model.precision == .int8 {
        throw MobileNetV3Error(.unsupported, "--precision \(choice.rawValue) needs a float model; this one is int8 "
                               + "(leave --precision out, or say int8)")
    }
    switch choice {
    case nil:
        return (model, .exact)
    case .fp32:
        return (model.weightType == .float16 ? try model.converted(weights: .float32) : model, .exact)
    case .fp16Weights:
        return (model.weightType == .float32 ? try model.converted(weights: .float16) : model, .exact)
    case .relaxed:
        return (model, .relaxed)
    case .int8:
        guard model.precision == .int8 else {
            throw MobileNetV3Error(.unsupported, "--precision int8 needs a quantized (int8) model")
        }
        return (model, .exact)
    }
}

func parseISA(_ name: String?) throws(MobileNetV3Error) -> ISA {
    guard let name else { return .auto }
    guard let isa = ISA(name: name) else {
        throw MobileNetV3Error(.invalidArgument, "unknown kernel set '\(name)' (auto, scalar, avx2, avx512, neon)")
    }
    guard isa.isAvailable else {
        let have = ISA.available.map(\.rawValue).joined(separator: ", ")
        throw MobileNetV3Error(.unsupported, "kernel set '\(name)' is not available on this machine (available: \(have))")
    }
    return isa
}

extension Layout: ExpressibleByArgument {}

/// Writes to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

func isTerminal(_ fd: Int32) -> Bool { isatty(fd) != 0 }

func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB"]
    var v = Double(n)
    var u = 0
    while v >= 1024, u < units.count - 1 { v /= 1024; u += 1 }
    return u == 0 ? "\(n) B" : String(format: "%.2f ", v) + units[u] + " (\(n) B)"
}

func formatCount(_ n: Int) -> String {
    if n >= 1_000_000_000 { return String(format: "%.3f G", Double(n) / 1e9) }
    if n >= 1_000_000 { return String(format: "%.3f M", Double(n) / 1e6) }
    if n >= 1_000 { return String(format: "%.3f k", Double(n) / 1e3) }
    return "\(n)"
}

/// Pads or truncates to a column.
func col(_ s: String, _ width: Int, right: Bool = false) -> String {
    if s.count >= width { return s }
    let pad = String(repeating: " ", count: width - s.count)
    return right ? pad + s : s + pad
}

/// Encodes a value as pretty JSON on standard output.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = try encoder.encode(value)
    print(String(decoding: data, as: UTF8.self))
}

/// Deterministic pseudo-random floats in [-1, 1) (xorshift), for synthetic inputs.
func syntheticInput(count: Int, seed: UInt64) -> [Float] {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    var out = [Float](repeating: 0, count: count)
    for i in 0..<count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        out[i] = Float(state >> 40) / Float(1 << 23) - 1
    }
    return out
}

/// Element-wise comparison with a reference. The relative error of an element is
/// |got - ref| / max(|ref|, 1e-3 * max|ref|), so tiny reference values do not dominate it.
struct Comparison {
    var maxAbs: Float = 0
    var maxRel: Float = 0
    var maxRef: Float = 0
    var tolerance: Float { 1e-4 * max(1, maxRef) }
    var withinTolerance: Bool { maxAbs <= tolerance }

    init(_ got: [Float], _ ref: [Float]) {
        for r in ref { maxRef = max(maxRef, abs(r)) }
        let floor = max(1e-3 * maxRef, Float.leastNormalMagnitude)
        if got.count != ref.count { maxAbs = .infinity; maxRel = .infinity; return }
        for (g, r) in zip(got, ref) {
            let d = abs(g - r)
            if !(d <= maxAbs) { maxAbs = d.isNaN ? .infinity : d }
            let rel = d / max(abs(r), floor)
            if !(rel <= maxRel) { maxRel = rel.isNaN ? .infinity : rel }
        }
    }
}

func argmax(_ row: ArraySlice<Float>) -> Int {
    var best = row.startIndex
    for i in row.indices where row[i] > row[best] { best = i }
    return best - row.startIndex
}
