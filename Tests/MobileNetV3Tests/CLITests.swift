import Foundation
import XCTest
import MobileNetV3

/// End-to-end tests of the `mnv3` executable built beside the test bundle.
final class CLITests: XCTestCase {
    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The built `mnv3` binary: next to the test bundle (`.build/<config>/`).
    static let binary: URL? = {
        var candidates: [URL] = []
        let argv0 = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        var dir = argv0.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent("mnv3"))
            dir = dir.deletingLastPathComponent()
        }
        let bundle = Bundle.main.bundleURL
        candidates.append(bundle.appendingPathComponent("mnv3"))
        candidates.append(bundle.deletingLastPathComponent().appendingPathComponent("mnv3"))
        for config in ["debug", "release"] {
            candidates.append(packageRoot.appendingPathComponent(".build/\(config)/mnv3"))
        }
        return candidates.first { url in
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) && !isDir.boolValue
                && FileManager.default.isExecutableFile(atPath: url.path)
        }
    }()

    func mnv3(_ arguments: [String]) throws -> Output {
        guard let binary = Self.binary else {
            throw XCTSkip("the mnv3 executable was not found next to the tests; run `swift build` first")
        }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes concurrently so a full pipe cannot block the child.
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }

    func assertCleanFailure(_ o: Output, mentions text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(o.status, 0, file: file, line: line)
        XCTAssert(o.stderr.contains(text), "stderr: \(o.stderr)", file: file, line: line)
        for crash in ["Fatal error", "Stack dump", "backtrace", "Segmentation"] {
            XCTAssertFalse(o.stderr.contains(crash), "stderr: \(o.stderr)", file: file, line: line)
        }
    }

    func testHelpForEverySubcommand() throws {
        let top = try mnv3(["--help"])
        XCTAssertEqual(top.status, 0)
        for sub in ["info", "classify", "run", "validate", "bench", "selfcheck"] {
            XCTAssert(top.stdout.contains(sub), sub)
            let o = try mnv3([sub, "--help"])
            XCTAssertEqual(o.status, 0, sub)
            XCTAssert(o.stdout.contains("Example"), "\(sub) --help has no example")
            XCTAssert(o.stdout.contains("mnv3 \(sub)"), "\(sub) --help example does not show the command")
        }
    }

    func testInfo() throws {
        let o = try mnv3(["info", "builtin:small", "--layers"])
        XCTAssertEqual(o.status, 0, o.stderr)
        XCTAssert(o.stdout.contains("MobileNetV3-small"))
        XCTAssert(o.stdout.contains("2542856"))
        XCTAssert(o.stdout.contains("56510400"), o.stdout)
        XCTAssert(o.stdout.contains("packed weights"))
        XCTAssert(o.stdout.contains("block0.depthwise"))
    }

    func testBenchJSON() throws {
        let o = try mnv3(["bench", "--arch", "small", "--width", "0.5", "--resolution", "96", "--runs", "2",
                          "--warmup", "1", "--json"])
        XCTAssertEqual(o.status, 0, o.stderr)
        XCTAssertEqual(o.stderr, "", "no progress output when not on a terminal")
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["resolution"] as? Int, 96)
        let results = try XCTUnwrap(json["results"] as? [[String: Any]])
        XCTAssertEqual(results.count, 1)
        XCTAssertNotNil(results[0]["medianMs"] as? Double)
        XCTAssertNotNil(results[0]["imagesPerSecond"] as? Double)
        let layers = try XCTUnwrap(json["layers"] as? [[String: Any]])
        let model = try Model.builtin(arch: .small, widthMultiplier: 0.5)
        XCTAssertEqual(layers.count, model.layerCount)
        XCTAssertEqual(json["macs"] as? Int, try model.macs(at: ImageSize(96)))

        let table = try mnv3(["bench", "--arch", "small", "--width", "0.5", "--resolution", "64", "--runs", "2",
                              "--warmup", "0", "--isa", "scalar"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssert(table.stdout.contains("median ms"))
        XCTAssert(table.stdout.contains("share"))
        XCTAssert(table.stdout.contains("scalar"))
    }

    func testRunAndValidateRoundTrip() throws {
        let dir = try temporaryDirectory(self)
        let model = try Model.builtin(arch: .small, widthMultiplier: 0.75, classes: 10, seed: 21)
        let golden = dir.appendingPathComponent("golden")
        try FileManager.default.createDirectory(at: golden, withIntermediateDirectories: true)
        let modelURL = golden.appendingPathComponent("model.mnv3")
        try model.save(to: modelURL)
        let input = try NumpyArray(shape: [2, 3, 64, 96], floats: randomFloats(2 * 3 * 64 * 96, seed: 3))
        let inputURL = golden.appendingPathComponent("input.npy")
        try input.write(to: inputURL)

        let logitsURL = golden.appendingPathComponent("logits.npy")
        let featuresURL = golden.appendingPathComponent("features.npy")
        let run = try mnv3(["run", "--model", modelURL.path, "--input", inputURL.path, "--output", logitsURL.path,
                            "--features", featuresURL.path, "--threads", "2"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let logits = try NumpyArray(contentsOf: logitsURL)
        XCTAssertEqual(logits.shape, [2, 10])
        let session = try Session(model: model, options: .init(batch: 2, height: 64, width: 96))
        let expected = try session.predict(Tensor(shape: [2, 3, 64, 96], data: input.floats ?? []))
        XCTAssertLessThan(maxAbsDiff(logits.floats ?? [], expected.logits.data), 1e-4)

        let ok = try mnv3(["validate", "--model", modelURL.path, "--golden", golden.path])
        XCTAssertEqual(ok.status, 0, ok.stdout + ok.stderr)
        XCTAssert(ok.stdout.contains("max abs error"))
        XCTAssert(ok.stdout.contains("top-1 agreement: 2/2"))
        // The golden's own model.mnv3 is the default.
        XCTAssertEqual(try mnv3(["validate", "--golden", golden.path, "--isa", "scalar"]).status, 0)

        // Perturbed reference: outside tolerance, non-zero exit.
        var bad = logits.floats ?? []
        bad[3] += 0.05
        try NumpyArray(shape: [2, 10], floats: bad).write(to: logitsURL)
        let fail = try mnv3(["validate", "--golden", golden.path])
        XCTAssertNotEqual(fail.status, 0)
        XCTAssert(fail.stdout.contains("FAIL"))

        // NHWC float input and uint8 pixels.
        let nhwc = try Tensor(shape: [2, 3, 64, 96], data: input.floats ?? []).converted(to: .nhwc)
        let nhwcURL = dir.appendingPathComponent("nhwc.npy")
        try NumpyArray(shape: nhwc.shape, floats: nhwc.data).write(to: nhwcURL)
        let out2 = dir.appendingPathComponent("y2.npy")
        XCTAssertEqual(try mnv3(["run", "--model", modelURL.path, "--input", nhwcURL.path, "--layout", "nhwc",
                                 "--output", out2.path]).status, 0)
        XCTAssertLessThan(maxAbsDiff(try NumpyArray(contentsOf: out2).floats ?? [], expected.logits.data), 1e-4)
        let wrongLayout = try mnv3(["run", "--model", modelURL.path, "--input", nhwcURL.path, "--output", out2.path])
        assertCleanFailure(wrongLayout, mentions: "nhwc")

        let pixels = (0..<(1 * 40 * 30 * 3)).map { UInt8($0 % 256) }
        let u8URL = dir.appendingPathComponent("u8.npy")
        try NumpyArray(shape: [1, 40, 30, 3], bytes: pixels).write(to: u8URL)
        let out3 = dir.appendingPathComponent("y3.npy")
        XCTAssertEqual(try mnv3(["run", "--model", modelURL.path, "--input", u8URL.path, "--output", out3.path]).status, 0)
        let image = try Image(width: 30, height: 40, channels: 3, pixels: pixels)
        let direct = try Session(model: model).logits(for: image.preprocessed(for: model))
        XCTAssertLessThan(maxAbsDiff(try NumpyArray(contentsOf: out3).floats ?? [], direct), 1e-4)
    }

    func testInt8Models() throws {
        let info = try mnv3(["info", "builtin:small:0.5:int8"])
        XCTAssertEqual(info.status, 0, info.stderr)
        XCTAssert(info.stdout.contains("precision:      int8"), info.stdout)
        XCTAssert(info.stdout.contains("quantization:   input int8, scale"), info.stdout)
        XCTAssert(info.stdout.contains("logits int8, scale"), info.stdout)
        XCTAssert(try mnv3(["info", "builtin:small"]).stdout.contains("precision:      float32"))

        let bench = try mnv3(["bench", "--arch", "small", "--width", "0.5", "--precision", "int8",
                              "--resolution", "64", "--runs", "1", "--warmup", "0", "--json"])
        XCTAssertEqual(bench.status, 0, bench.stderr)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["precision"] as? String, "int8")
        XCTAssertEqual(json["model"] as? String, "builtin:small:0.5:int8")
        XCTAssertNotNil(json["int8Kernels"] as? String)
        if let peak = json["int8PeakGopsPerCore"] as? Double {
            XCTAssertGreaterThan(peak, 0)
            let results = try XCTUnwrap(json["results"] as? [[String: Any]])
            XCTAssertNotNil(results.first?["fractionOfPeak"] as? Double)
        }
        let table = try mnv3(["bench", "--arch", "small", "--width", "0.5", "--precision", "int8",
                              "--resolution", "64", "--runs", "1", "--warmup", "0"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssert(table.stdout.contains("int8"), table.stdout)
        XCTAssert(table.stdout.contains("GOP/s"), table.stdout)

        // A saved int8 model through run, validate and classify.
        let dir = try temporaryDirectory(self)
        let model = try Model.builtin(arch: .small, widthMultiplier: 0.5, classes: 10, seed: 8, precision: .int8)
        let golden = dir.appendingPathComponent("golden")
        try FileManager.default.createDirectory(at: golden, withIntermediateDirectories: true)
        let modelURL = golden.appendingPathComponent("model.mnv3")
        try model.save(to: modelURL)
        let input = try NumpyArray(shape: [1, 3, 64, 64], floats: randomFloats(3 * 64 * 64, seed: 6))
        try input.write(to: golden.appendingPathComponent("input.npy"))
        let logitsURL = golden.appendingPathComponent("logits.npy")
        let floatURL = dir.appendingPathComponent("float-logits.npy")
        let run = try mnv3(["run", "--model", modelURL.path, "--input", golden.appendingPathComponent("input.npy").path,
                            "--output", floatURL.path, "--quantized-logits", logitsURL.path])
        XCTAssertEqual(run.status, 0, run.stderr)
        let session = try Session(model: model, options: .init(height: 64, width: 64))
        let expected = try session.logits(for: input.floats ?? [])
        XCTAssertEqual(try NumpyArray(contentsOf: floatURL).floats, expected)
        let inQ = try XCTUnwrap(model.inputQuantization)
        let exact = try session.predict(quantized: QuantizedInput(input.floats ?? [], quantization: inQ))
        let written = try NumpyArray(contentsOf: logitsURL)
        XCTAssertEqual(written.shape, [1, 10])
        XCTAssertEqual(written.int8Values?.map(Int.init), exact.quantizedLogits)
        let ok = try mnv3(["validate", "--golden", golden.path])
        XCTAssertEqual(ok.status, 0, ok.stdout + ok.stderr)
        XCTAssert(ok.stdout.contains("int8"), ok.stdout)
        XCTAssert(ok.stdout.contains("compared exactly"), ok.stdout)
        XCTAssertEqual(try mnv3(["validate", "--golden", golden.path, "--precision", "int8"]).status, 0)

        // The quantized logits are compared exactly: one step off fails, naming the count.
        var off = written.int8Values ?? []
        off[3] = off[3] == 127 ? 126 : off[3] + 1
        try NumpyArray(shape: [1, 10], int8: off).write(to: logitsURL)
        let oneStep = try mnv3(["validate", "--golden", golden.path])
        assertCleanFailure(oneStep, mentions: "1 of 10 quantized logits differ from the reference, by up to 1 step")
        XCTAssert(oneStep.stdout.contains("1 value differs"), oneStep.stdout)
        // Float logits, however close, are not what an int8 model is validated on.
        try NumpyArray(contentsOf: floatURL).write(to: logitsURL)
        assertCleanFailure(try mnv3(["validate", "--golden", golden.path]), mentions: "quantized logits")
        assertCleanFailure(try mnv3(["validate", "--golden", golden.path, "--precision", "relaxed"]),
                           mentions: "needs a float model")

        let png = dir.appendingPathComponent("gray.png")
        try write(RawPNG.encode(width: 8, height: 8, bitDepth: 8, colorType: 0, samples: (0..<64).map { $0 * 4 }),
                  to: png)
        let classify = try mnv3(["classify", "--model", modelURL.path, png.path, "--top", "2"])
        XCTAssertEqual(classify.status, 0, classify.stderr)
        XCTAssert(classify.stdout.contains("class "), classify.stdout)

        // --precision int8 names what a quantized file already is; a float model is refused.
        let benchFile = try mnv3(["bench", "--model", modelURL.path, "--precision", "int8", "--runs", "2",
                                  "--warmup", "0", "--resolution", "64"])
        XCTAssertEqual(benchFile.status, 0, benchFile.stderr)
        XCTAssert(benchFile.stdout.contains("int8"), benchFile.stdout)
        assertCleanFailure(try mnv3(["bench", "--model", "builtin:small:0.5", "--precision", "int8"]),
                           mentions: "quantized")
        assertCleanFailure(try mnv3(["bench", "--arch", "small", "--precision", "int4"]), mentions: "int4")
        assertCleanFailure(try mnv3(["info", "builtin:small:int4"]), mentions: "PRECISION")
    }

    /// --precision on run, classify and validate, as on bench; validate reports each
    /// precision against its own tolerance.
    func testPrecisionOnEveryCommand() throws {
        let dir = try temporaryDirectory(self)
        let model = try Model.builtin(arch: .small, widthMultiplier: 0.5, classes: 10, seed: 31)
        let golden = dir.appendingPathComponent("golden")
        try FileManager.default.createDirectory(at: golden, withIntermediateDirectories: true)
        let modelURL = golden.appendingPathComponent("model.mnv3")
        try model.save(to: modelURL)
        let input = try NumpyArray(shape: [2, 3, 64, 64], floats: randomFloats(2 * 3 * 64 * 64, seed: 9))
        let inputURL = golden.appendingPathComponent("input.npy")
        try input.write(to: inputURL)
        let logitsURL = golden.appendingPathComponent("logits.npy")
        XCTAssertEqual(try mnv3(["run", "--model", modelURL.path, "--input", inputURL.path,
                                 "--output", logitsURL.path, "--precision", "fp32"]).status, 0)

        // run: each precision gives what a session at that precision gives.
        let options = Session.Options(batch: 2, height: 64, width: 64)
        let half = try model.converted(weights: .float16)
        var relaxedOptions = options
        relaxedOptions.precision = .relaxed
        let expected: [(String, [Float])] = [
            ("fp32", try Session(model: model, options: options).logits(for: input.floats ?? [])),
            ("fp16-weights", try Session(model: half, options: options).logits(for: input.floats ?? [])),
            ("relaxed", try Session(model: model, options: relaxedOptions).logits(for: input.floats ?? [])),
        ]
        for (name, want) in expected {
            let out = dir.appendingPathComponent("\(name).npy")
            let o = try mnv3(["run", "--model", modelURL.path, "--input", inputURL.path, "--output", out.path,
                              "--precision", name])
            XCTAssertEqual(o.status, 0, "\(name): \(o.stderr)")
            XCTAssertEqual(try NumpyArray(contentsOf: out).floats, want, name)
        }
        assertCleanFailure(try mnv3(["run", "--model", modelURL.path, "--input", inputURL.path, "--output",
                                     dir.appendingPathComponent("x.npy").path, "--precision", "int8"]),
                           mentions: "quantized")

        // validate: every precision reported, each against its tolerance.
        let all = try mnv3(["validate", "--golden", golden.path, "--precision", "fp32", "--precision", "fp16-weights",
                            "--precision", "relaxed", "--json"])
        XCTAssertEqual(all.status, 0, all.stdout + all.stderr)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as? [String: Any])
        let runs = try XCTUnwrap(json["runs"] as? [[String: Any]])
        XCTAssertEqual(runs.compactMap { $0["precision"] as? String }, ["fp32", "fp16-weights", "relaxed"])
        XCTAssertEqual(runs.compactMap { $0["toleranceFactor"] as? Double }, [1e-4, 1e-2, 3e-2])
        XCTAssertEqual(runs.compactMap { $0["weights"] as? String }, ["float32", "float16", "float32"])
        let results = try XCTUnwrap(json["results"] as? [[String: Any]])
        XCTAssertEqual(results.count, 3)
        // float16 weights move the logits, within their tolerance but not within fp32's.
        let fp16Error = try XCTUnwrap(results[1]["maxAbs"] as? Double)
        XCTAssertGreaterThan(fp16Error, 0)

        // A reference off by 0.005: outside the fp32 tolerance, inside the relaxed one.
        var ref = try XCTUnwrap(NumpyArray(contentsOf: logitsURL).floats)
        ref[4] += 0.005
        try NumpyArray(shape: [2, 10], floats: ref).write(to: logitsURL)
        let relaxedOK = try mnv3(["validate", "--golden", golden.path, "--precision", "relaxed"])
        XCTAssertEqual(relaxedOK.status, 0, relaxedOK.stdout + relaxedOK.stderr)
        XCTAssert(relaxedOK.stdout.contains("relaxed ("), relaxedOK.stdout)
        XCTAssert(relaxedOK.stdout.contains("(tolerance 0.03)"), relaxedOK.stdout)
        let strict = try mnv3(["validate", "--golden", golden.path, "--precision", "fp32", "--precision", "relaxed"])
        assertCleanFailure(strict, mentions: "validation failed: fp32: the max abs error of the logits")
        XCTAssertFalse(strict.stderr.contains("validation failed: relaxed"), strict.stderr)
        // Past the relaxed tolerance: a clear message naming it and how to set another.
        ref[4] += 0.1
        try NumpyArray(shape: [2, 10], floats: ref).write(to: logitsURL)
        let relaxedBad = try mnv3(["validate", "--golden", golden.path, "--precision", "relaxed"])
        assertCleanFailure(relaxedBad, mentions: "exceeds the relaxed tolerance 0.03 (0.03 x max(1, max|reference|))")
        XCTAssert(relaxedBad.stderr.contains("tolerance_relaxed"), relaxedBad.stderr)
        XCTAssert(relaxedBad.stdout.contains("FAIL"), relaxedBad.stdout)
        XCTAssertEqual(try mnv3(["validate", "--golden", golden.path, "--precision", "relaxed",
                                 "--tolerance", "0.2"]).status, 0)
        try Data(#"{"tolerance_relaxed": 0.2}"#.utf8).write(to: golden.appendingPathComponent("meta.json"))
        XCTAssertEqual(try mnv3(["validate", "--golden", golden.path, "--precision", "relaxed"]).status, 0)
        assertCleanFailure(try mnv3(["validate", "--golden", golden.path, "--tolerance", "-1"]), mentions: "--tolerance")

        // classify: the same option; a float precision is refused for an int8 model.
        let png = dir.appendingPathComponent("gray.png")
        try write(RawPNG.encode(width: 8, height: 8, bitDepth: 8, colorType: 0, samples: (0..<64).map { $0 * 4 }),
                  to: png)
        for name in ["fp32", "fp16-weights", "relaxed"] {
            let o = try mnv3(["classify", "--model", modelURL.path, png.path, "--top", "2", "--precision", name])
            XCTAssertEqual(o.status, 0, "\(name): \(o.stderr)")
            XCTAssert(o.stdout.contains("class "), o.stdout)
        }
        let direct = try Session(model: half).classify(image: Image(contentsOf: png), top: 2)
        let viaCLI = try mnv3(["classify", "--model", modelURL.path, png.path, "--top", "2", "--precision", "fp16-weights"])
        XCTAssert(viaCLI.stdout.contains(String(format: "%.4f", direct[0].probability) + "  "
                                         + col5(direct[0].index)), viaCLI.stdout)
        assertCleanFailure(try mnv3(["classify", "--model", modelURL.path, png.path, "--precision", "int8"]),
                           mentions: "quantized")
        assertCleanFailure(try mnv3(["classify", "--model", "builtin:small:0.5:int8", png.path, "--precision", "fp32"]),
                           mentions: "needs a float model")
        assertCleanFailure(try mnv3(["classify", "--model", modelURL.path, png.path, "--precision", "fp8"]),
                           mentions: "fp8")
    }

    /// Right-aligns a class index in 5 columns, as `mnv3 classify` prints it.
    private func col5(_ i: Int) -> String {
        let s = "\(i)"
        return String(repeating: " ", count: max(0, 5 - s.count)) + s
    }

    /// int8 .npy input for an int8 model: used byte for byte, the same logits as the float
    /// input that quantizes to it; refused, with the reason, where it cannot apply.
    func testRunInt8Input() throws {
        let dir = try temporaryDirectory(self)
        let model = try Model.builtin(arch: .small, widthMultiplier: 0.5, classes: 10, seed: 12, precision: .int8)
        let modelURL = dir.appendingPathComponent("q.mnv3")
        try model.save(to: modelURL)
        let inQ = try XCTUnwrap(model.inputQuantization)
        XCTAssertEqual(inQ.type, .int8)
        let floats = randomFloats(2 * 64 * 64 * 3, seed: 17)
        guard case .int8(let bytes) = QuantizedInput(floats, quantization: inQ) else {
            return XCTFail("an int8 model's input quantizes to int8")
        }
        let inputURL = dir.appendingPathComponent("q_nhwc.npy")
        try NumpyArray(shape: [2, 64, 64, 3], int8: bytes).write(to: inputURL)
        let out = dir.appendingPathComponent("y.npy"), outQ = dir.appendingPathComponent("yq.npy")
        let feats = dir.appendingPathComponent("f.npy")
        let o = try mnv3(["run", "--model", modelURL.path, "--input", inputURL.path, "--layout", "nhwc",
                          "--output", out.path, "--quantized-logits", outQ.path, "--features", feats.path])
        XCTAssertEqual(o.status, 0, o.stderr)
        let session = try Session(model: model, options: .init(batch: 2, height: 64, width: 64, layout: .nhwc))
        let want = try session.predict(quantized: .int8(bytes))
        XCTAssertEqual(try NumpyArray(contentsOf: out).floats, want.logits.data)
        XCTAssertEqual(try NumpyArray(contentsOf: outQ).int8Values?.map(Int.init), want.quantizedLogits)
        let floatRun = try session.predict(Tensor(shape: [2, 64, 64, 3], layout: .nhwc, data: floats))
        XCTAssertEqual(floatRun.logits.data, want.logits.data)
        XCTAssertEqual(try NumpyArray(contentsOf: feats).floats, floatRun.features.data)
        // Without --quantized-logits the same float logits.
        XCTAssertEqual(try mnv3(["run", "--model", modelURL.path, "--input", inputURL.path, "--layout", "nhwc",
                                 "--output", out.path]).status, 0)
        XCTAssertEqual(try NumpyArray(contentsOf: out).floats, want.logits.data)

        assertCleanFailure(try mnv3(["run", "--model", modelURL.path, "--input", inputURL.path, "--output", out.path]),
                           mentions: "--layout nhwc")
        assertCleanFailure(try mnv3(["run", "--model", "builtin:small:0.5", "--input", inputURL.path, "--layout",
                                     "nhwc", "--output", out.path]), mentions: "int8 input is quantized input for an int8 model")
        assertCleanFailure(try mnv3(["run", "--model", "builtin:small:0.5", "--input", inputURL.path, "--layout",
                                     "nhwc", "--output", out.path, "--quantized-logits", outQ.path]),
                           mentions: "--quantized-logits needs a quantized")
    }

    /// The int8 TFLite graphs of ../shared against TFLite's reference kernels, through
    /// `mnv3 validate`: the quantized input bytes in, the quantized logits compared exactly.
    func testValidateInt8AgainstTFLite() throws {
        guard let shared = sharedDirectory else {
            throw XCTSkip("../shared is absent: skipping the int8 validation against TFLite")
        }
        let dir = try temporaryDirectory(self)
        for name in ["mobilenet_v3_small_int8_seed1", "mobilenet_v3_small_1.0_224_uint8"] {
            let tflite = shared.appendingPathComponent("models/\(name).tflite")
            let refs = ["chelsea", "coffee"].map { shared.appendingPathComponent("reference/\(name)__\($0)") }
            for f in [tflite] + refs.flatMap({ [URL(fileURLWithPath: $0.path + "__input.npy"),
                                                URL(fileURLWithPath: $0.path + "__ref_logits.npy")] })
            where !FileManager.default.fileExists(atPath: f.path) {
                throw XCTSkip("\(f.lastPathComponent) is missing from ../shared: skipping")
            }
            let golden = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: golden, withIntermediateDirectories: true)
            try importTFLite(tflite, to: golden.appendingPathComponent("model.mnv3"))
            let inputs = try refs.map { try NumpyArray(contentsOf: URL(fileURLWithPath: $0.path + "__input.npy")) }
            let logits = try refs.map { try NumpyArray(contentsOf: URL(fileURLWithPath: $0.path + "__ref_logits.npy")) }
            let classes = logits[0].shape.last ?? 0
            if let a = inputs[0].int8Values, let b = inputs[1].int8Values {
                try NumpyArray(shape: [2, 224, 224, 3], int8: a + b).write(to: golden.appendingPathComponent("input.npy"))
                try NumpyArray(shape: [2, classes], int8: (logits[0].int8Values ?? []) + (logits[1].int8Values ?? []))
                    .write(to: golden.appendingPathComponent("logits.npy"))
            } else {
                try NumpyArray(shape: [2, 224, 224, 3], bytes: (inputs[0].bytes ?? []) + (inputs[1].bytes ?? []))
                    .write(to: golden.appendingPathComponent("input.npy"))
                try NumpyArray(shape: [2, classes], bytes: (logits[0].bytes ?? []) + (logits[1].bytes ?? []))
                    .write(to: golden.appendingPathComponent("logits.npy"))
            }
            try Data(#"{"layout": "NHWC"}"#.utf8).write(to: golden.appendingPathComponent("meta.json"))
            let o = try mnv3(["validate", "--golden", golden.path, "--precision", "int8", "--threads", "2"])
            XCTAssertEqual(o.status, 0, "\(name): \(o.stdout) \(o.stderr)")
            XCTAssert(o.stdout.contains("0 values differ"), o.stdout)
            XCTAssert(o.stdout.contains("top-1 agreement: 2/2"), o.stdout)
        }
    }

    func testErrorsExitNonZeroWithoutCrashing() throws {
        assertCleanFailure(try mnv3(["info", "/nonexistent/m.mnv3"]), mentions: "/nonexistent/m.mnv3")
        assertCleanFailure(try mnv3(["classify", "--model", "builtin:small", "/nonexistent/cat.png"]),
                           mentions: "/nonexistent/cat.png")
        let dir = try temporaryDirectory(self)
        let junk = dir.appendingPathComponent("junk.mnv3")
        try write(Array("not a model at all, just some text".utf8), to: junk)
        assertCleanFailure(try mnv3(["info", junk.path]), mentions: "junk.mnv3")
        let png = dir.appendingPathComponent("cut.png")
        let full = RawPNG.encode(width: 8, height: 8, bitDepth: 8, colorType: 2, samples: [Int](repeating: 9, count: 192))
        try write(Array(full.prefix(60)), to: png)
        assertCleanFailure(try mnv3(["classify", "--model", "builtin:small", png.path]), mentions: "cut.png")
        assertCleanFailure(try mnv3(["bench", "--arch", "medium"]), mentions: "medium")
        assertCleanFailure(try mnv3(["bench", "--arch", "small", "--isa", "sse9"]), mentions: "sse9")
        assertCleanFailure(try mnv3(["run", "--model", "builtin:small", "--input", "/nonexistent/x.npy",
                                     "--output", dir.appendingPathComponent("y.npy").path]), mentions: "x.npy")
        assertCleanFailure(try mnv3(["validate", "--golden", "/nonexistent/golden"]), mentions: "/nonexistent/golden")
        assertCleanFailure(try mnv3(["frobnicate"]), mentions: "frobnicate")
    }

    /// The real, ImageNet-trained MobileNetV3-Small (TFLite, imported with
    /// tools/import_tflite.py) must call the sample cat an Egyptian cat.
    func testClassifyRealModel() throws {
        guard let shared = sharedDirectory else {
            throw XCTSkip("../shared is absent: skipping the real-model classification test")
        }
        let tflite = shared.appendingPathComponent("models/mobilenet_v3_small_1.0_224_uint8.tflite")
        let labels = shared.appendingPathComponent("models/imagenet_labels_1001.txt")
        let cat = shared.appendingPathComponent("images/chelsea.png")
        for f in [tflite, labels, cat] where !FileManager.default.fileExists(atPath: f.path) {
            throw XCTSkip("\(f.lastPathComponent) is missing from ../shared: skipping")
        }
        let dir = try temporaryDirectory(self)
        let model = dir.appendingPathComponent("small.mnv3")
        try importTFLite(tflite, to: model, arguments: ["--labels", labels.path])
        let o = try mnv3(["classify", "--model", model.path, cat.path, "--top", "3"])
        XCTAssertEqual(o.status, 0, o.stderr)
        let lines = o.stdout.split(separator: "\n")
        XCTAssertGreaterThanOrEqual(lines.count, 2)
        XCTAssert(lines.count >= 2 && lines[1].contains("Egyptian cat"), o.stdout)

        // The same through the Swift API.
        let loaded = try Model(contentsOf: model)
        XCTAssertEqual(loaded.classCount, 1001)
        XCTAssertEqual(loaded.labels.count, 1001)
        let top = try loaded.classify(image: Image(contentsOf: cat), top: 1)
        XCTAssertEqual(top.first?.index, 286)
        XCTAssertEqual(top.first?.label, "Egyptian cat")
    }
}
