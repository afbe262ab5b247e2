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
            1e-4 * max(1, max|reference|). Exits non-zero on any disagreement.

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
        for arch in [Architecture.large, .small] {
            let model = try Model.builtin(arch: arch, seed: 7)
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
                let ok = c.withinTolerance
                if !ok { failures += 1 }
                print("\(ok ? "ok  " : "FAIL") MobileNetV3-\(arch) \(isa) threads \(threads) \(layout): "
                      + "max abs diff " + String(format: "%.3g", c.maxAbs)
                      + " (tolerance " + String(format: "%.3g", c.tolerance) + ")")
            }
        }
        if failures > 0 {
            printError("selfcheck failed: \(failures) configuration(s) disagree with the scalar reference")
            throw ExitCode(1)
        }
        print("selfcheck passed")
    }
}
