import ArgumentParser
import Foundation
import MobileNetV3

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare a model's outputs with a golden directory.",
        discussion: """
            A golden directory holds input.npy (float32, normalised; layout from meta.json, or \
            inferred from the shape), logits.npy [N, classes], optionally features.npy [N, C], \
            meta.json and model.mnv3 (used when --model is not given). Prints the max absolute \
            and relative error (relative to max(|ref|, 1e-3 * max|ref|)) and the top-1 agreement, and exits non-zero when the max \
            absolute error exceeds tolerance * max(1, max|reference|) (tolerance 1e-4, or \
            meta.json's "tolerance") or any top-1 class differs.

            Examples:
              mnv3 validate --golden goldens/tv_large_w100_c1000_224
              mnv3 validate --model model.mnv3 --golden goldens/mymodel --threads 2
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

    @Flag(help: "Print the result as JSON.")
    var json = false

    struct Result: Codable {
        var name: String
        var maxAbs: Double
        var maxRel: Double
        var tolerance: Double
        var pass: Bool
    }

    struct Report: Codable {
        var golden: String
        var precision: String
        var isa: String
        var batch: Int
        var top1Agree: Int
        var results: [Result]
        var pass: Bool
    }

    func run() throws {
        let dir = URL(fileURLWithPath: golden)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw MobileNetV3Error(.io, "\(golden): no such golden directory")
        }
        let model = try loadModel(self.model ?? dir.appendingPathComponent("model.mnv3").path)
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

        guard let x = input.floats, input.shape.count == 4 else {
            throw MobileNetV3Error(.shape, "\(golden)/input.npy: expected float32 [N,3,H,W] or [N,H,W,3], got "
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
        guard let ref = reference.floats, reference.shape == [n, model.classCount] else {
            throw MobileNetV3Error(.shape, "\(golden)/logits.npy: expected float32 [\(n), \(model.classCount)], got "
                                   + "\(reference.dtypeName) \(reference.shape)")
        }
        let session = try Session(model: model, options: .init(batch: n, height: size.height, width: size.width,
                                                                layout: layout, threads: threads, isa: isa))
        let out = try session.predict(Tensor(shape: input.shape, layout: layout, data: x))
        let base = (meta["tolerance"] as? Double) ?? 1e-4

        var results: [Result] = []
        let c = Comparison(out.logits.data, ref)
        let tol = base * Double(max(1, c.maxRef))
        results.append(Result(name: "logits", maxAbs: Double(c.maxAbs), maxRel: Double(c.maxRel), tolerance: tol,
                              pass: Double(c.maxAbs) <= tol))
        if let refFeatures {
            guard let f = refFeatures.floats, refFeatures.shape == [n, model.featureDimension] else {
                throw MobileNetV3Error(.shape, "\(golden)/features.npy: expected float32 [\(n), "
                                       + "\(model.featureDimension)], got \(refFeatures.dtypeName) \(refFeatures.shape)")
            }
            let fc = Comparison(out.features.data, f)
            let ftol = base * Double(max(1, fc.maxRef))
            results.append(Result(name: "features", maxAbs: Double(fc.maxAbs), maxRel: Double(fc.maxRel),
                                  tolerance: ftol, pass: Double(fc.maxAbs) <= ftol))
        }
        var agree = 0
        let k = model.classCount
        for i in 0..<n where argmax(out.logits.data[(i * k)..<((i + 1) * k)]) == argmax(ref[(i * k)..<((i + 1) * k)]) {
            agree += 1
        }
        let pass = results.allSatisfy(\.pass) && agree == n
        let report = Report(golden: golden, precision: model.precision.rawValue, isa: session.isa.rawValue, batch: n, top1Agree: agree,
                            results: results, pass: pass)
        if json {
            try printJSON(report)
        } else {
            print("golden: \(golden) (batch \(n), \(size), \(layout), \(model.precision) model, \(session.isa) kernels)")
            for r in results {
                print("\(col(r.name + ":", 10)) max abs error " + String(format: "%.3g", r.maxAbs)
                      + ", max rel error " + String(format: "%.3g", r.maxRel)
                      + " (tolerance " + String(format: "%.3g", r.tolerance) + ")  \(r.pass ? "ok" : "FAIL")")
            }
            print("top-1 agreement: \(agree)/\(n)  \(agree == n ? "ok" : "FAIL")")
            print(pass ? "validation passed" : "validation FAILED")
        }
        if !pass {
            if json { printError("validation failed") }
            throw ExitCode(1)
        }
    }
}
