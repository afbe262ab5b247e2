import ArgumentParser
import Foundation
import MobileNetV3

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare a model's outputs with a golden directory.",
        discussion: """
            A golden directory holds input.npy, logits.npy [N, classes], optionally \
            features.npy [N, C], meta.json and model.mnv3 (used when --model is not given). \
            input.npy is float32, normalised, [N,3,H,W] or [N,H,W,3] (layout from meta.json, or \
            inferred from the shape); for an int8 model it may also hold the quantized input \
            itself (bytes of the model's input type, int8 or uint8).

            A float model: prints the max absolute and relative error of the logits (and \
            features) against the reference (relative to max(|ref|, 1e-3 * max|ref|)) and the \
            top-1 agreement, and fails when the max absolute error exceeds tolerance * max(1, \
            max|reference|) or any top-1 class differs. The tolerance depends on the precision: \
            fp32 1e-4, fp16-weights 1e-2, relaxed 3e-2 (meta.json's "tolerance", \
            "tolerance_fp16_weights" and "tolerance_relaxed", or --tolerance, set them). \
            --precision may be given several times: each precision is run and reported on its \
            own, and each must pass.

            An int8 model: logits.npy holds the quantized logits (int8 or uint8, as the \
            model's logits are; `mnv3 run --quantized-logits` writes them) and they are \
            compared exactly: any differing value fails, and the report says how many differ \
            and by how many quantization steps at most. features.npy, if present, is compared \
            as floats with the fp32 tolerance.

            Examples:
              mnv3 validate --golden goldens/tv_large_w100_c1000_224
              mnv3 validate --model model.mnv3 --golden goldens/mymodel --threads 2
              mnv3 validate --golden goldens/mymodel --precision fp32 --precision relaxed
              mnv3 validate --golden goldens/int8model --precision int8
            """
    )

    @Option(help: "A .mnv3 model file (default: GOLDEN/model.mnv3).")
    var model: String?

    @Option(help: "The golden directory.")
    var golden: String

    @Option(help: "Worker threads.")
    var threads: Int = 1

    @Option(help: "Kernel set: auto, scalar, avx2, avx512 or neon.")
    var isa: String?

    @Option(help: ArgumentHelp(precisionHelp.abstract + " Repeat it to validate several."))
    var precision: [PrecisionChoice] = []

    @Option(help: "Tolerance for every float precision validated, instead of its default.")
    var tolerance: Double?

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        if let tolerance, !(tolerance >= 0 && tolerance.isFinite) {
            throw ValidationError("--tolerance must be a finite number >= 0")
        }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    /// One output compared with its reference.
    struct Result: Codable {
        var name: String
        /// The precision this result was computed at.
        var precision: String
        /// Float outputs: the largest absolute and relative error. Quantized logits: the
        /// largest difference in quantization steps (both fields).
        var maxAbs: Double
        var maxRel: Double
        /// The largest absolute error allowed (0 for quantized logits).
        var tolerance: Double
        /// Quantized logits: how many values differ.
        var mismatches: Int?
        var pass: Bool
    }

    /// One precision's run.
    struct PrecisionRun: Codable {
        var precision: String
        var weights: String
        var arithmetic: String
        /// The tolerance factor (the allowed error is this times max(1, max|reference|)).
        var toleranceFactor: Double
        var top1Agree: Int
        var pass: Bool
        /// Why it failed, for people.
        var failure: String?
    }

    struct Report: Codable {
        var golden: String
        /// The model's precision (float32 or int8).
        var precision: String
        var isa: String
        var batch: Int
        /// The smallest top-1 agreement of the runs.
        var top1Agree: Int
        var results: [Result]
        var runs: [PrecisionRun]
        var pass: Bool
    }

    func run() throws {
        let dir = URL(fileURLWithPath: golden)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw MobileNetV3Error(.io, "\(golden): no such golden directory")
        }
        let loaded = try loadModel(self.model ?? dir.appendingPathComponent("model.mnv3").path)
        let isa = try parseISA(self.isa)
        var meta: [String: Any] = [:]
        let metaURL = dir.appendingPathComponent("meta.json")
        if FileManager.default.fileExists(atPath: metaURL.path) {
            guard let data = try? Data(contentsOf: metaURL),
                  let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw MobileNetV3Error(.badMetadata, "\(metaURL.path): not a JSON object")
            }
            meta = object
        }
        let input = try NumpyArray(contentsOf: dir.appendingPathComponent("input.npy"))
        let reference = try NumpyArray(contentsOf: dir.appendingPathComponent("logits.npy"))
        let featuresURL = dir.appendingPathComponent("features.npy")
        let refFeatures = FileManager.default.fileExists(atPath: featuresURL.path)
            ? try NumpyArray(contentsOf: featuresURL) : nil

        // The input: float32, or for an int8 model the quantized bytes of its input type.
        let quantizedInput = loaded.inputQuantization.flatMap { q -> QuantizedInput? in
            switch (input.storage, q.type) {
            case (.int8(let v), .int8): return .int8(v)
            case (.uint8(let v), .uint8): return .uint8(v)
            default: return nil
            }
        }
        guard input.shape.count == 4, input.floats != nil || quantizedInput != nil else {
            let types = loaded.inputQuantization.map { "float32 or \($0.type)" } ?? "float32"
            throw MobileNetV3Error(.shape, "\(golden)/input.npy: expected \(types) [N,3,H,W] or [N,H,W,3], got "
                                   + "\(input.dtypeName) \(input.shape)")
        }
        let layout: Layout
        if let name = meta["layout"] as? String, let l = Layout(rawValue: name.lowercased()) {
            layout = l
        } else {
            layout = input.shape[1] == 3 ? .nchw : .nhwc
        }
        let n = input.shape[0]
        let size = layout == .nchw ? ImageSize(height: input.shape[2], width: input.shape[3])
            : ImageSize(height: input.shape[1], width: input.shape[2])
        // The float values of the input (an int8 model's quantized input dequantized: they
        // quantize back to the same bytes).
        let x: [Float]
        if let floats = input.floats {
            x = floats
        } else if let q = loaded.inputQuantization, let quantizedInput {
            switch quantizedInput {
            case .int8(let v): x = v.map { q.dequantize(Int($0)) }
            case .uint8(let v): x = v.map { q.dequantize(Int($0)) }
            }
        } else {
            x = []
        }

        var choices: [PrecisionChoice?] = []
        for p in precision where !choices.contains(p) { choices.append(p) }
        if choices.isEmpty { choices = [nil] }
        var results: [Result] = []
        var runs: [PrecisionRun] = []
        var sessionISA = isa
        for choice in choices {
            let (model, mode) = try applyPrecision(choice, to: loaded)
            let name = (choice ?? (model.precision == .int8 ? .int8 : .fp32)).rawValue
            let session = try Session(model: model, options: .init(batch: n, height: size.height, width: size.width,
                                                                    layout: layout, threads: threads, isa: isa,
                                                                    precision: mode))
            sessionISA = session.isa
            var run: PrecisionRun
            var these: [Result]
            if let outQ = model.logitsQuantization, let inQ = model.inputQuantization {
                // int8: the quantized logits, exactly.
                let expected: [Int]
                switch (reference.storage, outQ.type) {
                case (.int8(let v), .int8): expected = v.map { Int($0) }
                case (.uint8(let v), .uint8): expected = v.map { Int($0) }
                default:
                    throw MobileNetV3Error(.badArray, "\(golden)/logits.npy: an int8 model is validated on its "
                                           + "quantized logits, which are \(outQ.type) [\(n), \(model.classCount)]; got "
                                           + "\(reference.dtypeName) \(reference.shape) (mnv3 run --quantized-logits "
                                           + "writes them)")
                }
                guard reference.shape == [n, model.classCount] else {
                    throw MobileNetV3Error(.shape, "\(golden)/logits.npy: expected \(outQ.type) [\(n), "
                                           + "\(model.classCount)], got \(reference.shape)")
                }
                let q = try session.predict(quantized: quantizedInput ?? QuantizedInput(x, quantization: inQ))
                var mismatches = 0, steps = 0
                for (g, r) in zip(q.quantizedLogits, expected) where g != r {
                    mismatches += 1
                    steps = max(steps, abs(g - r))
                }
                these = [Result(name: "logits", precision: name, maxAbs: Double(steps), maxRel: Double(steps),
                                tolerance: 0, mismatches: mismatches, pass: mismatches == 0)]
                if let refFeatures {
                    let out = try session.predict(Tensor(shape: input.shape, layout: layout, data: x))
                    these.append(try compare("features", refFeatures, out.features.data, n: n,
                                             width: model.featureDimension, precision: name,
                                             factor: tolerance(for: .fp32, meta)))
                }
                let agree = top1Agreement(q.quantizedLogits.map(Float.init), expected.map(Float.init), n: n,
                                          classes: model.classCount)
                run = PrecisionRun(precision: name, weights: model.weightType.rawValue,
                                   arithmetic: "int8", toleranceFactor: 0, top1Agree: agree, pass: true)
                if mismatches > 0 {
                    run.failure = "\(name): \(mismatches) of \(expected.count) quantized logits differ from the "
                        + "reference, by up to \(steps) step\(steps == 1 ? "" : "s") (they must be equal)"
                }
            } else {
                guard let ref = reference.floats, reference.shape == [n, model.classCount] else {
                    throw MobileNetV3Error(.shape, "\(golden)/logits.npy: expected float32 [\(n), \(model.classCount)], "
                                           + "got \(reference.dtypeName) \(reference.shape)")
                }
                let factor = tolerance(for: choice ?? .fp32, meta)
                let out = try session.predict(Tensor(shape: input.shape, layout: layout, data: x))
                these = [try compare("logits", reference, out.logits.data, n: n, width: model.classCount,
                                     precision: name, factor: factor)]
                if let refFeatures {
                    these.append(try compare("features", refFeatures, out.features.data, n: n,
                                             width: model.featureDimension, precision: name, factor: factor))
                }
                let agree = top1Agreement(out.logits.data, ref, n: n, classes: model.classCount)
                run = PrecisionRun(precision: name, weights: model.weightType.rawValue,
                                   arithmetic: session.arithmetic.rawValue, toleranceFactor: factor,
                                   top1Agree: agree, pass: true)
                if let bad = these.first(where: { !$0.pass }) {
                    run.failure = "\(name): the max abs error of the \(bad.name), " + String(format: "%.3g", bad.maxAbs) + ","
                        + " exceeds the \(name) tolerance " + String(format: "%.3g", bad.tolerance) + " ("
                        + String(format: "%g", factor) + " x max(1, max|reference|)); --tolerance or meta.json's \""
                        + (choice ?? .fp32).toleranceKey + "\" sets another"
                }
            }
            if run.failure == nil, run.top1Agree != n {
                run.failure = "\(name): the top-1 class differs from the reference's for \(n - run.top1Agree) of \(n) "
                    + "input\(n == 1 ? "" : "s")"
            }
            run.pass = run.failure == nil && these.allSatisfy(\.pass)
            results += these
            runs.append(run)
        }
        let pass = runs.allSatisfy(\.pass)
        let report = Report(golden: golden, precision: loaded.precision.rawValue, isa: sessionISA.rawValue, batch: n,
                            top1Agree: runs.map(\.top1Agree).min() ?? 0, results: results, runs: runs, pass: pass)
        if json {
            try printJSON(report)
        } else {
            print("golden: \(golden) (batch \(n), \(size), \(layout), \(loaded.precision) model, \(sessionISA) kernels)")
            for run in runs {
                print("\(run.precision) (\(run.weights) weights, \(run.arithmetic) arithmetic):")
                for r in results where r.precision == run.precision {
                    if let mismatches = r.mismatches {
                        print("  \(col(r.name + ":", 10)) quantized, \(mismatches) value\(mismatches == 1 ? " differs" : "s differ") "
                              + "(largest difference \(Int(r.maxAbs)) step\(r.maxAbs == 1 ? "" : "s"); "
                              + "compared exactly)  \(r.pass ? "ok" : "FAIL")")
                    } else {
                        print("  \(col(r.name + ":", 10)) max abs error " + String(format: "%.3g", r.maxAbs)
                              + ", max rel error " + String(format: "%.3g", r.maxRel)
                              + " (tolerance " + String(format: "%.3g", r.tolerance) + ")  \(r.pass ? "ok" : "FAIL")")
                    }
                }
                print("  top-1 agreement: \(run.top1Agree)/\(n)  \(run.top1Agree == n ? "ok" : "FAIL")")
            }
            print(pass ? "validation passed" : "validation FAILED")
        }
        if !pass {
            for run in runs { if let failure = run.failure { printError("validation failed: \(failure)") } }
            throw ExitCode(1)
        }
    }

    /// A precision's tolerance factor: --tolerance, else meta.json's key for it, else the
    /// default.
    private func tolerance(for choice: PrecisionChoice, _ meta: [String: Any]) -> Double {
        if let tolerance { return tolerance }
        return (meta[choice.toleranceKey] as? Double) ?? choice.defaultTolerance
    }

    /// Float output against a float32 reference [n, width].
    private func compare(_ name: String, _ reference: NumpyArray, _ got: [Float], n: Int, width: Int,
                         precision: String, factor: Double) throws(MobileNetV3Error) -> Result {
        guard let ref = reference.floats, reference.shape == [n, width] else {
            throw MobileNetV3Error(.shape, "\(golden)/\(name).npy: expected float32 [\(n), \(width)], got "
                                   + "\(reference.dtypeName) \(reference.shape)")
        }
        let c = Comparison(got, ref)
        let tol = factor * Double(max(1, c.maxRef))
        return Result(name: name, precision: precision, maxAbs: Double(c.maxAbs), maxRel: Double(c.maxRel),
                      tolerance: tol, mismatches: nil, pass: Double(c.maxAbs) <= tol)
    }

    private func top1Agreement(_ got: [Float], _ ref: [Float], n: Int, classes k: Int) -> Int {
        var agree = 0
        for i in 0..<n where argmax(got[(i * k)..<((i + 1) * k)]) == argmax(ref[(i * k)..<((i + 1) * k)]) {
            agree += 1
        }
        return agree
    }
}
