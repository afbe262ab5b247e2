import ArgumentParser
import CMNV3Tools
import Foundation
import MobileNetV3

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure latency, throughput and per-layer cost.",
        discussion: """
            Runs warm-up inferences, then timed ones on a synthetic input, and prints min, median \
            and p90 latency, images per second, a per-layer table (time, MACs, GFLOP/s, share) and \
            the fraction of the measured single-core FMA peak (times threads) that was reached. \
            --precision int8 measures the built-in network quantized to int8 (deterministic \
            weights and quantization, no file needed); an int8 model file is measured as it is. \
            For int8 the throughput counts integer operations (GOP/s) and the fraction of peak \
            refers to the measured int8 multiply-accumulate peak of the kernels in use. \
            Build with `swift build -c release` for meaningful numbers.

            Examples:
              mnv3 bench --arch large --runs 50
              mnv3 bench --arch large --precision int8 --threads 2
              mnv3 bench --model model.mnv3 --resolution 320 --threads 2
              mnv3 bench --arch small --width 0.75 --sweep --json
              mnv3 bench --arch large --isa scalar
              mnv3 bench --arch large --precision fp16-weights
              mnv3 bench --model model.mnv3 --precision relaxed
            """
    )

    @Option(help: "A .mnv3 model file, or builtin:large|small[:WIDTH][:int8] (instead of --arch).")
    var model: String?

    @Option(help: "Built-in architecture when no --model is given: large or small.")
    var arch: String = "large"

    @Option(help: "Width multiplier of the built-in architecture.")
    var width: Double = 1.0

    @Option(help: "Square input size (default: the model's).")
    var resolution: Int?

    @Option(help: "Worker threads.")
    var threads: Int = 1

    @Flag(help: "Run with 1, 2, 4, ... threads up to the number of cores.")
    var sweep = false

    @Option(help: "Timed inferences.")
    var runs: Int = 20

    @Option(help: "Untimed warm-up inferences.")
    var warmup: Int = 3

    @Option(help: "Kernel set: auto, scalar, avx2, avx512 or neon.")
    var isa: String?

    @Option(help: precisionHelp)
    var precision: PrecisionChoice?

    @Flag(help: "Print machine-readable JSON instead of tables.")
    var json = false

    func validate() throws {
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard warmup >= 0 else { throw ValidationError("--warmup must not be negative") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if model != nil, width != 1.0 { throw ValidationError("--width applies to --arch, not --model") }
    }

    struct Stats: Codable {
        var threads: Int
        var minMs: Double
        var medianMs: Double
        var p90Ms: Double
        var meanMs: Double
        var imagesPerSecond: Double
        var gflops: Double
        var fractionOfPeak: Double?
    }

    struct LayerRow: Codable {
        var index: Int
        var name: String
        var kind: String
        var timeMs: Double
        var macs: Int
        var gflops: Double
        var share: Double
    }

    struct Report: Codable {
        var model: String
        var arch: String
        var flavor: String
        var precision: String
        var resolution: Int
        var isa: String
        var weights: String
        var arithmetic: String
        var macs: Int
        var parameters: Int
        var arenaBytes: Int
        var runs: Int
        var warmup: Int
        var peakGflopsPerCore: Double?
        /// int8 models: the int8 kernel variant, and the measured int8 multiply-accumulate
        /// peak of its instruction (GOP/s, 2 per multiply-accumulate).
        var int8Kernels: String?
        var int8PeakInstruction: String?
        var int8PeakGopsPerCore: Double?
        var results: [Stats]
        var layers: [LayerRow]
    }

    func run() throws {
        let spec = model ?? "builtin:\(arch)\(width == 1.0 ? "" : ":\(width)")\(precision == .int8 ? ":int8" : "")"
        let (model, mode) = try applyPrecision(precision, to: try loadModel(spec))
        let isa = try parseISA(self.isa)
        let side = resolution ?? model.preprocess.size.height
        let size = ImageSize(height: resolution ?? model.preprocess.size.height,
                             width: resolution ?? model.preprocess.size.width)
        let macs = try model.macs(at: size)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        var threadCounts = [threads]
        if sweep {
            threadCounts = []
            var t = 1
            while t < cores { threadCounts.append(t); t *= 2 }
            threadCounts.append(max(cores, 1))
        }
        let progress = !json && isTerminal(2)

        var results: [Stats] = []
        var usedISA = isa
        var arithmetic = Arithmetic.fp32
        var int8Kernels: String?
        var arena = 0
        for t in threadCounts {
            let session = try Session(model: model, options: .init(height: size.height, width: size.width,
                                                                    threads: t, isa: isa,
                                                                    precision: mode))
            usedISA = session.isa
            arithmetic = session.arithmetic
            int8Kernels = session.int8Kernels
            arena = session.arenaPlan.total
            let input = syntheticInput(count: session.inputShape.reduce(1, *), seed: 1)
            for i in 0..<warmup {
                if progress { status("warm-up \(i + 1)/\(warmup) (\(t) thread\(t == 1 ? "" : "s"))") }
                _ = try session.logits(for: input)
            }
            var times: [Double] = []
            for i in 0..<runs {
                let t0 = mnv3tools_now_ns()
                _ = try session.logits(for: input)
                let t1 = mnv3tools_now_ns()
                times.append(Double(t1 - t0) / 1e6)
                if progress {
                    status("run \(i + 1)/\(runs) (\(t) thread\(t == 1 ? "" : "s")): "
                           + String(format: "%.2f ms", times[i]))
                }
            }
            times.sort()
            let median = times.count % 2 == 1 ? times[times.count / 2]
                : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
            let p90 = times[min(times.count - 1, max(0, Int((0.9 * Double(times.count)).rounded(.up)) - 1))]
            let mean = times.reduce(0, +) / Double(times.count)
            results.append(Stats(threads: t, minMs: times[0], medianMs: median, p90Ms: p90, meanMs: mean,
                                 imagesPerSecond: 1000 / median, gflops: 2 * Double(macs) / (median * 1e6),
                                 fractionOfPeak: nil))
        }

        // Per-layer profile on the first configuration.
        if progress { status("profiling layers") }
        let profiled = try Session(model: model, options: .init(height: size.height, width: size.width,
                                                                 threads: threadCounts[0], isa: isa,
                                                                 profiling: true, precision: mode))
        let input = syntheticInput(count: profiled.inputShape.reduce(1, *), seed: 1)
        let layers = try model.layers(at: size)
        var perLayer = [[UInt64]](repeating: [], count: layers.count)
        for _ in 0..<max(1, min(runs, 5)) {
            _ = try profiled.logits(for: input)
            for (i, ns) in profiled.layerTimes.enumerated() where i < perLayer.count { perLayer[i].append(ns) }
        }
        let layerNs = perLayer.map { v -> Double in
            let s = v.sorted()
            return s.isEmpty ? 0 : Double(s[s.count / 2])
        }
        let totalNs = max(layerNs.reduce(0, +), 1)
        let rows = layers.enumerated().map { i, l in
            LayerRow(index: l.index, name: l.name, kind: l.kind.rawValue, timeMs: layerNs[i] / 1e6, macs: l.macs,
                     gflops: layerNs[i] > 0 ? 2 * Double(l.macs) / layerNs[i] : 0, share: layerNs[i] / totalNs)
        }

        if progress { status("measuring the FMA peak") }
        let peak = measurePeak(usedISA)
        let int8Peak = int8Kernels.flatMap(measureInt8Peak)
        // An int8 network is measured against the int8 multiply-accumulate peak, not the FMA one.
        let reference = model.precision == .int8 ? int8Peak?.gops : peak
        if let reference {
            for i in results.indices {
                results[i].fractionOfPeak = results[i].gflops / (reference * Double(results[i].threads))
            }
        }
        if progress { status(nil) }

        let report = Report(model: spec, arch: model.arch.rawValue, flavor: model.flavor.rawValue,
                            precision: model.precision.rawValue, resolution: side, isa: usedISA.rawValue,
                            weights: model.weightType.rawValue, arithmetic: arithmetic.rawValue,
                            macs: macs, parameters: model.parameters,
                            arenaBytes: arena, runs: runs, warmup: warmup, peakGflopsPerCore: peak,
                            int8Kernels: int8Kernels, int8PeakInstruction: int8Peak?.instruction,
                            int8PeakGopsPerCore: int8Peak?.gops,
                            results: results, layers: rows)
        if json {
            try printJSON(report)
        } else {
            printReport(report)
        }
    }

    private func measurePeak(_ isa: ISA) -> Double? {
        let kind: mnv3tools_peak_kind
        switch isa {
        case .avx2: kind = MNV3TOOLS_PEAK_AVX2
        case .avx512: kind = MNV3TOOLS_PEAK_AVX512
        case .neon: kind = MNV3TOOLS_PEAK_NEON
        default: kind = MNV3TOOLS_PEAK_SCALAR
        }
        let v = mnv3tools_peak_gflops(kind, 0.2)
        return v > 0 ? v : nil
    }

    /// The int8 multiply-accumulate peak of the instruction an int8 kernel variant is built
    /// on; nil where this build cannot measure it (the line is then left out).
    private func measureInt8Peak(_ kernels: String) -> (instruction: String, gops: Double)? {
        let kind: mnv3tools_int8_peak_kind
        let instruction: String
        switch kernels {
        case "avx512vnni", "avx512vnni-vbmi": (kind, instruction) = (MNV3TOOLS_INT8_PEAK_AVX512VNNI, "vpdpbusd zmm")
        case "avxvnni": (kind, instruction) = (MNV3TOOLS_INT8_PEAK_AVXVNNI, "vpdpbusd ymm")
        case "avx2": (kind, instruction) = (MNV3TOOLS_INT8_PEAK_AVX2, "vpmaddwd")
        case _ where kernels.contains("i8mm"): (kind, instruction) = (MNV3TOOLS_INT8_PEAK_I8MM, "smmla")
        case _ where kernels.contains("dot"): (kind, instruction) = (MNV3TOOLS_INT8_PEAK_SDOT, "sdot")
        case "neon": (kind, instruction) = (MNV3TOOLS_INT8_PEAK_NEON, "smlal")
        default: return nil
        }
        let v = mnv3tools_int8_peak_gops(kind, 0.2)
        return v > 0 ? (instruction, v) : nil
    }

    private func status(_ text: String?) {
        // Carriage return and clear-to-end-of-line: one live line on the terminal.
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + (text ?? "")).utf8))
    }

    private func printReport(_ r: Report) {
        func f(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }
        print("model: \(r.model) (MobileNetV3-\(r.arch), \(r.flavor), \(r.precision)), \(r.resolution)x\(r.resolution), "
              + "\(formatCount(r.macs))MACs, \(formatCount(r.parameters)) parameters")
        let variant = r.int8Kernels.map { " (int8: \($0))" } ?? ""
        print("kernels: \(r.isa)\(variant), \(r.weights) weights, \(r.arithmetic) arithmetic, "
              + "arena \(formatBytes(r.arenaBytes)), \(r.warmup) warm-up + \(r.runs) timed runs")
        if let p = r.peakGflopsPerCore { print("single-core FMA peak (\(r.isa)): \(f(p, 1)) GFLOP/s") }
        if let p = r.int8PeakGopsPerCore, let instruction = r.int8PeakInstruction {
            print("single-core int8 multiply-accumulate peak (\(instruction)): \(f(p, 1)) GOP/s")
        }
        print("")
        // An int8 network does integer operations: 2 per multiply-accumulate, as FLOPs count them.
        let ops = r.precision == Precision.int8.rawValue ? "GOP/s" : "GFLOP/s"
        print(col("threads", 8, right: true) + col("min ms", 10, right: true) + col("median ms", 11, right: true)
              + col("p90 ms", 10, right: true) + col("img/s", 10, right: true) + col(ops, 10, right: true)
              + col("of peak", 9, right: true))
        for s in r.results {
            print(col("\(s.threads)", 8, right: true) + col(f(s.minMs), 10, right: true)
                  + col(f(s.medianMs), 11, right: true) + col(f(s.p90Ms), 10, right: true)
                  + col(f(s.imagesPerSecond, 1), 10, right: true) + col(f(s.gflops), 10, right: true)
                  + col(s.fractionOfPeak.map { f($0 * 100, 1) + "%" } ?? "-", 9, right: true))
        }
        print("")
        print("per layer (\(r.results.first?.threads ?? 1) thread(s), median of profiled runs):")
        print(col("#", 4, right: true) + "  " + col("name", 22) + col("kind", 16) + col("ms", 9, right: true)
              + col("MMACs", 10, right: true) + col(ops, 9, right: true) + col("share", 8, right: true))
        for l in r.layers {
            print(col("\(l.index)", 4, right: true) + "  " + col(l.name, 22) + col(l.kind, 16)
                  + col(f(l.timeMs, 3), 9, right: true) + col(f(Double(l.macs) / 1e6), 10, right: true)
                  + col(f(l.gflops), 9, right: true) + col(f(l.share * 100, 1) + "%", 8, right: true))
        }
    }
}
