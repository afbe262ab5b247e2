import ArgumentParser
import Foundation
import MobileNetV3

struct Selfcheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the fastest kernels against the scalar reference on built-in models.",
        discussion: """
            Runs MobileNetV3-Large and -Small (built-in weights) on a synthetic input with the \
            scalar reference kernels and with every other kernel set this CPU supports, with 1 \
            and 2 threads and both input layouts, and checks that the logits agree within \
            1e-4 * max(1, max|reference|). The int8 built-ins must give identical logits on \
            every kernel set (integer arithmetic leaves no room for rounding differences). \
            Exits non-zero on any disagreement.

            Example:
              mnv3 selfcheck
            """
    )

    @Option(help: "Square input size.")
    var resolution: Int = 224

    func run() throws {
        var failures = 0
        let candidates = ISA.available.filter { $0 != .scalar }
        print("kernel sets available: \(ISA.available.map(\.rawValue).joined(separator: ", ")) "
              + "(auto = \(ISA.best))")
        for (arch, precision) in [(Architecture.large, Precision.float32), (.small, .float32), (.large, .int8),
                                  (.small, .int8)] {
            let model = try Model.builtin(arch: arch, seed: 7, precision: precision)
            let ref = try Session(model: model, options: .init(height: resolution, width: resolution, isa: .scalar))
            let input = syntheticInput(count: ref.inputShape.reduce(1, *), seed: 11)
            let expected = try ref.logits(for: input)
            let nhwc = try Tensor(shape: ref.inputShape, layout: .nchw, data: input).converted(to: .nhwc)
            var configs: [(ISA, Int, Layout)] = [(.scalar, 2, .nchw), (.scalar, 1, .nhwc)]
            for isa in candidates { configs += [(isa, 1, .nchw), (isa, 2, .nchw), (isa, 1, .nhwc)] }
            for (isa, threads, layout) in configs {
                let s = try Session(model: model, options: .init(height: resolution, width: resolution,
                                                                  layout: layout, threads: threads, isa: isa))
                let got = try s.logits(for: layout == .nhwc ? nhwc.data : input)
                let c = Comparison(got, expected)
                let ok: Bool
                let detail: String
                if precision == .int8 {
                    let differ = zip(got, expected).filter { $0 != $1 }.count
                    ok = differ == 0 && got.count == expected.count
                    detail = ok ? "identical logits" : "\(differ) of \(expected.count) logits differ"
                } else {
                    ok = c.withinTolerance
                    detail = "max abs diff " + String(format: "%.3g", c.maxAbs)
                        + " (tolerance " + String(format: "%.3g", c.tolerance) + ")"
                }
                if !ok { failures += 1 }
                print("\(ok ? "ok  " : "FAIL") MobileNetV3-\(arch) \(precision) \(isa) threads \(threads) "
                      + "\(layout): \(detail)")
            }
        }
        if failures > 0 {
            printError("selfcheck failed: \(failures) configuration(s) disagree with the scalar reference")
            throw ExitCode(1)
        }
        print("selfcheck passed")
    }
}
