import ArgumentParser
import Foundation
import MobileNetV3

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on a .npy batch and write the logits as .npy.",
        discussion: """
            float32 input is used as is: [N,3,H,W] with --layout nchw (the default) or [N,H,W,3] \
            with --layout nhwc, already normalised. uint8 input [N,H,W,3] (RGB pixels) gets the \
            model's preprocessing (resize to its input size and normalisation). The output is \
            float32 logits [N, classes]; --features also writes the pooled features [N, C].

            Examples:
              mnv3 run --model model.mnv3 --input batch.npy --output logits.npy
              mnv3 run --model model.mnv3 --input images_u8.npy --output logits.npy --threads 2
              mnv3 run --model model.mnv3 --input x_nhwc.npy --layout nhwc --output y.npy
            """
    )

    @Option(help: "A .mnv3 model file, or builtin:large|small[:WIDTH][:int8].")
    var model: String

    @Option(help: "Input .npy (float32 or uint8).")
    var input: String

    @Option(help: "Output .npy for the logits.")
    var output: String

    @Option(help: "Optional output .npy for the pooled features.")
    var features: String?

    @Option(help: "Layout of a float32 input: nchw or nhwc.")
    var layout: Layout = .nchw

    @Option(help: "Worker threads.")
    var threads: Int = 1

    @Option(help: "Kernel set: auto, scalar, avx2, avx512 or neon.")
    var isa: String?

    func run() throws {
        let model = try loadModel(self.model)
        let isa = try parseISA(self.isa)
        let array = try NumpyArray(contentsOf: URL(fileURLWithPath: input))
        let shape = array.shape
        var batch: [Float]
        var runLayout = layout
        var size: ImageSize
        if let bytes = array.bytes {
            guard shape.count == 4, shape[3] == 3, shape[0] >= 1, shape[1] >= 1, shape[2] >= 1 else {
                throw MobileNetV3Error(.shape, "\(input): uint8 input must be [N,H,W,3] RGB pixels, got \(shape)")
            }
            size = model.preprocess.size
            runLayout = .nchw
            let n = shape[0], h = shape[1], w = shape[2]
            let per = h * w * 3
            batch = []
            batch.reserveCapacity(n * 3 * size.height * size.width)
            for i in 0..<n {
                let image = try Image(width: w, height: h, channels: 3, pixels: Array(bytes[(i * per)..<((i + 1) * per)]))
                batch += try image.preprocessed(for: model, size: size, layout: .nchw)
            }
        } else if let floats = array.floats {
            guard shape.count == 4 else {
                throw MobileNetV3Error(.shape, "\(input): float32 input must have 4 dimensions, got \(shape)")
            }
            let channels = layout == .nchw ? shape[1] : shape[3]
            guard channels == 3 else {
                throw MobileNetV3Error(.shape, "\(input): a \(layout) input needs 3 channels, shape is \(shape)"
                                       + (layout == .nchw && shape[3] == 3 ? " (did you mean --layout nhwc?)" : ""))
            }
            size = layout == .nchw ? ImageSize(height: shape[2], width: shape[3]) : ImageSize(height: shape[1], width: shape[2])
            batch = floats
        } else {
            throw MobileNetV3Error(.badArray, "\(input): unsupported element type")
        }
        let n = shape[0]
        let session = try Session(model: model, options: .init(height: size.height, width: size.width,
                                                                layout: runLayout, threads: threads, isa: isa))
        let per = 3 * size.height * size.width
        var logits: [Float] = []
        var feats: [Float] = []
        logits.reserveCapacity(n * model.classCount)
        for i in 0..<n {
            let t = try Tensor(shape: session.inputShape, layout: runLayout,
                               data: Array(batch[(i * per)..<((i + 1) * per)]))
            let r = try session.predict(t)
            logits += r.logits.data
            feats += r.features.data
        }
        try NumpyArray(shape: [n, model.classCount], floats: logits).write(to: URL(fileURLWithPath: output))
        if let features {
            try NumpyArray(shape: [n, model.featureDimension], floats: feats).write(to: URL(fileURLWithPath: features))
        }
        printError("wrote \(output): float32 [\(n), \(model.classCount)] (\(session.isa) kernels, "
                   + "\(session.threads) thread\(session.threads == 1 ? "" : "s"))")
    }
}
