import ArgumentParser
import Foundation
import MobileNetV3

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's architecture, size, cost, memory plan and preprocessing.",
        discussion: """
            Examples:
              mnv3 info model.mnv3
              mnv3 info builtin:small --layers
              mnv3 info builtin:large:int8
              mnv3 info model.mnv3 --resolution 320 --threads 2
            """
    )

    @Argument(help: "A .mnv3 model file, or builtin:large|small[:WIDTH][:int8].")
    var model: String

    @Option(help: "Input size for MACs and the memory plan (default: the model's).")
    var resolution: Int?

    @Option(help: "Threads for the memory plan.")
    var threads: Int = 1

    @Option(help: "Batch for the memory plan.")
    var batch: Int = 1

    @Flag(help: "Also list every layer.")
    var layers = false

    func run() throws {
        let model = try loadModel(self.model)
        let p = model.preprocess
        let size = resolution.map { ImageSize($0) } ?? p.size
        let macs = try model.macs(at: size)
        let plan = try model.arenaPlan(for: .init(batch: batch, height: size.height, width: size.width,
                                                  threads: threads))
        print("model:          \(self.model)")
        print("architecture:   MobileNetV3-\(model.arch) (\(model.flavor) flavor)")
        print("blocks:         \(model.blockCount) inverted-residual blocks, \(model.layerCount) layers")
        print("classes:        \(model.classCount)")
        print("feature dim:    \(model.featureDimension)")
        print("parameters:     \(model.parameters) (\(formatCount(model.parameters)))")
        print("precision:      \(model.precision)")
        if let input = model.inputQuantization, let logits = model.logitsQuantization {
            print("quantization:   input \(input)")
            print("                logits \(logits)")
            print("stored values:  \(model.storedValues) int8 weights and int32 biases "
                  + "(\(formatBytes(model.storedBytes)); with scales and tables: model memory, weights)")
        } else {
            print("stored values:  \(model.storedValues) \(model.weightType) weights and float32 biases "
                  + "(\(formatBytes(model.storedBytes)))")
        }
        print("MACs at \(size):  \(macs) (\(formatCount(macs)))")
        print("model memory (\(plan.isa) kernels; shared by every session on the model):")
        print("  weights:               \(formatBytes(plan.modelWeights))\(plan.modelWeights == 0 ? " (read in place)" : "")")
        print("  packed weights:        \(formatBytes(plan.packedWeights))")
        print("session arena (batch \(batch), \(threads) thread\(threads == 1 ? "" : "s")), per session:")
        print("  total:                 \(formatBytes(plan.total))")
        print("  activations:           \(formatBytes(plan.activations))")
        print("  activation lower bound: \(formatBytes(plan.activationLowerBound))")
        print("  scratch:               \(formatBytes(plan.scratch))")
        print("  context:               \(formatBytes(plan.context))")
        print("preprocessing:  \(p.size) \(p.channelOrder.uppercased()), framework layout \(p.layout)")
        print("  input = (pixel * \(p.scale) - mean) / std, mean \(p.mean), std \(p.std)")
        if model.hasLabels {
            let sample = model.labels.prefix(3).map { "\"\($0)\"" }.joined(separator: ", ")
            print("labels:         \(model.labels.count) (\(sample)\(model.labels.count > 3 ? ", ..." : ""))")
        } else {
            print("labels:         none")
        }
        if layers {
            print("")
            print(col("#", 4, right: true) + "  " + col("name", 22) + col("kind", 16) + col("in", 16)
                  + col("out", 16) + col("k/s", 6) + col("act", 13) + col("MACs", 12, right: true))
            for l in try model.layers(at: size) {
                print(col("\(l.index)", 4, right: true) + "  " + col(l.name, 22) + col(l.kind.rawValue, 16)
                      + col("\(l.inChannels)x\(l.inputSize)", 16) + col("\(l.outChannels)x\(l.outputSize)", 16)
                      + col("\(l.kernel)/\(l.stride)", 6) + col(l.activation.rawValue + (l.residual ? "+res" : ""), 13)
                      + col("\(l.macs)", 12, right: true))
            }
        }
    }
}
