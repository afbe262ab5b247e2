import ArgumentParser
import Foundation
import MobileNetV3

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on a .npy batch and write the logits as .npy.",
        discussion: """
            float32 input is used as is: [N,3,H,W] with --layout nchw (the default) or [N,H,W,3] \
            with --layout nhwc, already normalised. uint8 input [N,H,W,3] (RGB pixels) gets the \
            model's preprocessing (resize to its input size and normalisation). int8 input, \
            for an int8 model whose input is int8, is already quantized: [N,3,H,W] or \
            [N,H,W,3] as --layout says, used byte for byte (a float32 input is quantized with \
            the model's input scale and zero point). The output is float32 logits [N, classes] \
            (an int8 model's dequantized); --features also writes the pooled features [N, C], \
            and for an int8 model --quantized-logits writes its exact quantized logits (int8 \
            or uint8, as the model's logits are), which `mnv3 validate` compares.

            --precision as for `mnv3 bench`: fp32 or fp16-weights convert a float model's \
            weights, relaxed allows float16 or bf16 products where the CPU has them, int8 \
            asks for a quantized model.

            Examples:
              mnv3 run --model model.mnv3 --input batch.npy --output logits.npy
              mnv3 run --model model.mnv3 --input images_u8.npy --output logits.npy --threads 2
              mnv3 run --model model.mnv3 --input x_nhwc.npy --layout nhwc --output y.npy
              mnv3 run --model model.mnv3 --input batch.npy --output y.npy --precision relaxed
              mnv3 run --model int8.mnv3 --input q_nhwc.npy --layout nhwc --output y.npy \\
                  --quantized-logits yq.npy
            """
    )

    @Option(help: "A .mnv3 model file, or builtin:large|small[:WIDTH][:int8].")
    var model: String

    @Option(help: "Input .npy (float32, uint8 pixels, or int8 for an int8 model).")
    var input: String

    @Option(help: "Output .npy for the logits.")
    var output: String

    @Option(help: "Optional output .npy for the pooled features.")
    var features: String?

    @Option(help: "int8 models: optional output .npy for the quantized logits.")
    var quantizedLogits: String?

    @Option(help: "Layout of a float32 or int8 input: nchw or nhwc.")
    var layout: Layout = .nchw

    @Option(help: "Worker threads.")
    var threads: Int = 1

    @Option(help: "Kernel set: auto, scalar, avx2, avx512 or neon.")
    var isa: String?

    @Option(help: precisionHelp)
    var precision: PrecisionChoice?

    /// One image of the batch, as the input file has it.
    enum Item {
        case floats([Float])
        case pixels(Image)
        case int8([Int8])
    }

    func run() throws {
        let (model, mode) = try applyPrecision(precision, to: try loadModel(self.model))
        let isa = try parseISA(self.isa)
        if quantizedLogits != nil, model.logitsQuantization == nil {
            throw MobileNetV3Error(.unsupported, "--quantized-logits needs a quantized (int8) model; \(self.model) "
                                   + "is \(model.precision)")
        }
        let array = try NumpyArray(contentsOf: URL(fileURLWithPath: input))
        let shape = array.shape
        var runLayout = layout
        var size: ImageSize
        var items: [Item] = []
        /// The size a 4-dimensional float32 or int8 input has in `layout`, with 3 channels.
        func tensorSize(_ kind: String) throws(MobileNetV3Error) -> ImageSize {
            guard shape.count == 4, shape.allSatisfy({ $0 >= 1 }) else {
                throw MobileNetV3Error(.shape, "\(input): \(kind) input must have 4 dimensions, got \(shape)")
            }
            let channels = layout == .nchw ? shape[1] : shape[3]
            guard channels == 3 else {
                throw MobileNetV3Error(.shape, "\(input): a \(layout) input needs 3 channels, shape is \(shape)"
                                       + (layout == .nchw && shape[3] == 3 ? " (did you mean --layout nhwc?)" : ""))
            }
            return layout == .nchw ? ImageSize(height: shape[2], width: shape[3])
                : ImageSize(height: shape[1], width: shape[2])
        }
        switch array.storage {
        case .uint8(let bytes):
            guard shape.count == 4, shape[3] == 3, shape[0] >= 1, shape[1] >= 1, shape[2] >= 1 else {
                throw MobileNetV3Error(.shape, "\(input): uint8 input must be [N,H,W,3] RGB pixels, got \(shape)")
            }
            size = model.preprocess.size
            runLayout = .nchw
            let h = shape[1], w = shape[2], per = h * w * 3
            for i in 0..<shape[0] {
                items.append(.pixels(try Image(width: w, height: h, channels: 3,
                                               pixels: Array(bytes[(i * per)..<((i + 1) * per)]))))
            }
        case .float32(let floats):
            size = try tensorSize("float32")
            let per = 3 * size.height * size.width
            for i in 0..<shape[0] { items.append(.floats(Array(floats[(i * per)..<((i + 1) * per)]))) }
        case .int8(let values):
            guard let q = model.inputQuantization else {
                throw MobileNetV3Error(.badArray, "\(input): int8 input is quantized input for an int8 model; "
                                       + "\(self.model) is a \(model.precision) model (give it float32 or uint8 input)")
            }
            guard q.type == .int8 else {
                throw MobileNetV3Error(.badArray, "\(input): the model's input is \(q.type), not int8 "
                                       + "(give it float32 input, or uint8 pixels)")
            }
            size = try tensorSize("int8")
            let per = 3 * size.height * size.width
            for i in 0..<shape[0] { items.append(.int8(Array(values[(i * per)..<((i + 1) * per)]))) }
        }
        let n = items.count
        let session = try Session(model: model, options: .init(height: size.height, width: size.width,
                                                                layout: runLayout, threads: threads, isa: isa,
                                                                precision: mode))
        var logits: [Float] = []
        var feats: [Float] = []
        var quantized: [Int] = []
        logits.reserveCapacity(n * model.classCount)
        // An int8 model runs its integer path when the input is quantized or its quantized
        // logits are asked for (the logits are the same either way); features come from
        // the float path.
        let integerPath = array.int8Values != nil || quantizedLogits != nil
        for item in items {
            // The float input of this image (an int8 input dequantized: those values
            // quantize back to the same bytes).
            func floats() throws(MobileNetV3Error) -> [Float] {
                switch item {
                case .floats(let x): return x
                case .pixels(let image): return try image.preprocessed(for: model, size: size, layout: .nchw)
                case .int8(let v): return v.map { model.inputQuantization!.dequantize(Int($0)) }
                }
            }
            if integerPath, let inQ = model.inputQuantization {
                let q: QuantizedInput
                switch item {
                case .floats(let x): q = QuantizedInput(x, quantization: inQ)
                case .pixels(let image): q = try image.preprocessedQuantized(for: model, size: size, layout: .nchw)
                case .int8(let v): q = .int8(v)
                }
                let r = try session.predict(quantized: q)
                logits += r.logits.data
                quantized += r.quantizedLogits
                if features != nil {
                    let x = try floats()
                    feats += try session.predict(Tensor(shape: session.inputShape, layout: runLayout, data: x)).features.data
                }
            } else {
                let r = try session.predict(Tensor(shape: session.inputShape, layout: runLayout, data: try floats()))
                logits += r.logits.data
                feats += r.features.data
            }
        }
        try NumpyArray(shape: [n, model.classCount], floats: logits).write(to: URL(fileURLWithPath: output))
        if let features {
            try NumpyArray(shape: [n, model.featureDimension], floats: feats).write(to: URL(fileURLWithPath: features))
        }
        if let path = quantizedLogits, let q = model.logitsQuantization {
            let array = q.type == .int8
                ? try NumpyArray(shape: [n, model.classCount], int8: quantized.map { Int8($0) })
                : try NumpyArray(shape: [n, model.classCount], bytes: quantized.map { UInt8($0) })
            try array.write(to: URL(fileURLWithPath: path))
        }
        let arithmetic = session.arithmetic == .fp32 ? "" : ", \(session.arithmetic) arithmetic"
        printError("wrote \(output): float32 [\(n), \(model.classCount)] (\(model.precision) model, \(session.isa) kernels"
                   + "\(arithmetic), \(session.threads) thread\(session.threads == 1 ? "" : "s"))"
                   + (quantizedLogits.map { ", \($0): \(model.logitsQuantization!.type) [\(n), \(model.classCount)]" } ?? ""))
    }
}
