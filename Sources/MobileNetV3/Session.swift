import CMobileNetV3

/// One class of a classification result.
public struct Classification: Hashable, Sendable, CustomStringConvertible {
    /// The class label (or `"class N"` when the model has no labels).
    public var label: String
    /// The class index in the logits.
    public var index: Int
    /// Softmax probability over all classes.
    public var probability: Float

    public init(label: String, index: Int, probability: Float) {
        self.label = label
        self.index = index
        self.probability = probability
    }

    public var description: String { "\(index) \(label) \(probability)" }
}

/// An inference context: one configuration (batch, input size, layout, threads, kernels)
/// and the memory arena that runs it.
///
/// A `Session` is single-user: it is deliberately not `Sendable`, and must not be used by
/// two tasks or threads at once. Create one session per concurrent inference; all of them
/// may share one ``Model``. Creating a session allocates its arena once and starts its
/// worker threads; ``predict(_:)`` itself never allocates inside the C library.
public final class Session {
    /// Configuration of a session.
    public struct Options: Hashable, Sendable {
        /// Images per ``Session/predict(_:)``, at least 1.
        public var batch: Int
        /// Input size; `nil` means the model's preprocessing size.
        public var height: Int?
        public var width: Int?
        /// Layout of the input tensors.
        public var layout: Layout
        /// Worker threads for one inference, 1...256.
        public var threads: Int
        /// Kernel set; `.auto` picks the fastest one the CPU supports.
        public var isa: ISA
        /// Record per-layer times (see ``Session/layerTimes``).
        public var profiling: Bool
        /// `.relaxed` allows float16 or bf16 products where the CPU runs them faster.
        public var precision: PrecisionMode

        public init(batch: Int = 1, height: Int? = nil, width: Int? = nil, layout: Layout = .nchw,
                    threads: Int = 1, isa: ISA = .auto, profiling: Bool = false,
                    precision: PrecisionMode = .exact) {
            self.batch = batch
            self.height = height
            self.width = width
            self.layout = layout
            self.threads = threads
            self.isa = isa
            self.profiling = profiling
            self.precision = precision
        }

        func config(for model: Model) throws(MobileNetV3Error) -> mnv3_config {
            var config = mnv3_config()
            mnv3_config_init(&config, model.handle)
            guard batch >= 1, batch <= Int(MNV3_MAX_BATCH) else {
                throw MobileNetV3Error(.invalidArgument, "batch must be in 1...\(MNV3_MAX_BATCH) (got \(batch))")
            }
            guard threads >= 1, threads <= Int(MNV3_MAX_THREADS) else {
                throw MobileNetV3Error(.invalidArgument, "threads must be in 1...\(MNV3_MAX_THREADS) (got \(threads))")
            }
            let size = ImageSize(height: height ?? Int(config.height), width: width ?? Int(config.width))
            let (h, w) = try Model.dimensions(size)
            config.batch = UInt32(batch)
            config.height = h
            config.width = w
            config.layout = layout.c
            config.threads = UInt32(threads)
            config.isa = isa.c
            config.profile = profiling ? 1 : 0
            config.precision = precision.c
            return config
        }
    }

    /// The model this session runs. The session keeps it alive.
    public let model: Model
    /// Batch, input size, layout, threads and kernels actually in use.
    public let options: Options
    /// The memory this session uses, broken down.
    public let arenaPlan: ArenaPlan
    /// For a quantized model: the int8 kernel variant its kernel set resolved to on this CPU
    /// (for example `"avx512vnni"`, `"avxvnni"`, `"avx2"`, `"scalar"`); `nil` for a float model.
    public let int8Kernels: String?
    private let context: OpaquePointer
    private var logits: [Float]
    private var features: [Float]

    /// Creates a session (allocates the arena and starts the worker threads).
    public init(model: Model, options: Options = .init()) throws(MobileNetV3Error) {
        var config = try options.config(for: model)
        var plan = mnv3_arena_plan()
        try check("planning the session") { mnv3_arena_plan_for(model.handle, &config, &plan, $0) }
        var ctx: OpaquePointer?
        try check("creating the session") {
            mnv3_context_create(model.handle, &config, nil, 0, &ctx, $0)
        }
        guard let ctx else { throw MobileNetV3Error(.outOfMemory, "no context returned") }
        self.model = model
        self.context = ctx
        var resolved = options
        resolved.height = Int(config.height)
        resolved.width = Int(config.width)
        resolved.isa = ISA(mnv3_context_isa(ctx))
        resolved.threads = Int(mnv3_context_threads(ctx))
        self.options = resolved
        self.arithmetic = Arithmetic(mnv3_context_arithmetic(ctx))
        self.arenaPlan = ArenaPlan(plan)
        self.int8Kernels = mnv3_context_int8_kernels(ctx).map { String(cString: $0) }
        self.logits = [Float](repeating: 0, count: options.batch * model.classCount)
        self.features = [Float](repeating: 0, count: options.batch * model.featureDimension)
    }

    deinit { mnv3_context_free(context) }

    /// The kernel set in use.
    public var isa: ISA { options.isa }
    /// The arithmetic in use: `.fp32` unless ``Options/precision`` is `.relaxed` and the
    /// kernel set has faster arithmetic on this CPU.
    public let arithmetic: Arithmetic
    /// Worker threads in use.
    public var threads: Int { options.threads }
    public var batch: Int { options.batch }
    /// The input size of this session.
    public var inputSize: ImageSize { ImageSize(height: options.height ?? 224, width: options.width ?? 224) }
    /// The shape ``predict(_:)`` expects.
    public var inputShape: [Int] {
        let s = inputSize
        return options.layout == .nchw ? [batch, 3, s.height, s.width] : [batch, s.height, s.width, 3]
    }

    /// Runs the network on an already normalised batch (shape ``inputShape``, layout as
    /// configured). Returns logits `[N, classes]` and pooled features `[N, featureDimension]`.
    public func predict(_ input: Tensor) throws(MobileNetV3Error) -> (logits: Tensor, features: Tensor) {
        guard input.shape == inputShape else {
            throw MobileNetV3Error(.shape, "input shape \(input.shape) does not match the session's "
                                   + "\(options.layout) input \(inputShape)")
        }
        if input.layout != options.layout {
            throw MobileNetV3Error(.shape, "input layout \(input.layout) does not match the session's \(options.layout)")
        }
        try run(input.data)
        return (Tensor(uncheckedShape: [batch, model.classCount], data: logits),
                Tensor(uncheckedShape: [batch, model.featureDimension], data: features))
    }

    /// Logits only, as a flat array (`batch * classes`).
    public func logits(for input: [Float]) throws(MobileNetV3Error) -> [Float] {
        try run(input)
        return logits
    }

    private func run(_ input: [Float]) throws(MobileNetV3Error) {
        let expected = inputShape.reduce(1, *)
        guard input.count == expected else {
            throw MobileNetV3Error(.shape, "input has \(input.count) floats, the session expects \(expected)")
        }
        let status = input.withUnsafeBufferPointer { inp in
            logits.withUnsafeMutableBufferPointer { lg in
                features.withUnsafeMutableBufferPointer { ft in
                    mnv3_run(context, inp.baseAddress, inp.count, lg.baseAddress, lg.count,
                             ft.baseAddress, ft.count)
                }
            }
        }
        try check("inference", status: status)
    }

    /// Runs a quantized model on a batch of its own input bytes, logits into `logits`.
    private func run(quantized input: [UInt8]) throws(MobileNetV3Error) {
        let status = input.withUnsafeBytes { inp in
            logits.withUnsafeMutableBufferPointer { lg in
                mnv3_run_quantized(context, inp.baseAddress, inp.count, nil, 0, lg.baseAddress, lg.count)
            }
        }
        try check("inference", status: status)
    }

    // MARK: Quantized input

    /// Runs a quantized model on input that is already quantized: bytes of the model's input
    /// type (``Model/inputQuantization``), shape ``inputShape`` in the session's layout. The
    /// result equals ``predict(_:)`` on any float input that quantizes to these bytes.
    /// Throws ``MobileNetV3Error/Code/unsupported`` for a float model.
    public func predict(quantized input: QuantizedInput) throws(MobileNetV3Error) -> QuantizedPrediction {
        guard let inQ = model.inputQuantization, let outQ = model.logitsQuantization else {
            throw MobileNetV3Error(.unsupported, "quantized input needs a quantized model; this one is \(model.precision)")
        }
        guard input.type == inQ.type else {
            throw MobileNetV3Error(.invalidArgument, "the model takes \(inQ.type) input, got \(input.type) values")
        }
        let expected = inputShape.reduce(1, *)
        guard input.count == expected else {
            throw MobileNetV3Error(.shape, "input has \(input.count) values, the session expects \(expected)")
        }
        var quantized = [UInt8](repeating: 0, count: logits.count)
        func run(_ raw: UnsafeRawBufferPointer) -> mnv3_status {
            quantized.withUnsafeMutableBytes { q in
                logits.withUnsafeMutableBufferPointer { lg in
                    mnv3_run_quantized(context, raw.baseAddress, raw.count, q.baseAddress, q.count,
                                       lg.baseAddress, lg.count)
                }
            }
        }
        let status: mnv3_status
        switch input {
        case .uint8(let v): status = v.withUnsafeBytes(run)
        case .int8(let v): status = v.withUnsafeBytes(run)
        }
        try check("inference", status: status)
        return QuantizedPrediction(
            logits: Tensor(uncheckedShape: [batch, model.classCount], data: logits),
            quantizedLogits: quantized.map { outQ.type == .uint8 ? Int($0) : Int(Int8(bitPattern: $0)) },
            quantization: outQ)
    }

    /// ``predict(quantized:)`` for a model with uint8 input.
    public func predict(quantized input: [UInt8]) throws(MobileNetV3Error) -> QuantizedPrediction {
        try predict(quantized: .uint8(input))
    }

    /// ``predict(quantized:)`` for a model with int8 input.
    public func predict(quantized input: [Int8]) throws(MobileNetV3Error) -> QuantizedPrediction {
        try predict(quantized: .int8(input))
    }

    /// Preprocesses one decoded image straight to this session's quantized input (the
    /// camera path; see ``Image/preprocessedQuantized(for:size:layout:)``): the bytes that
    /// ``preprocess(_:)`` followed by quantization gives.
    public func preprocessQuantized(_ image: Image) throws(MobileNetV3Error) -> QuantizedInput {
        try image.preprocessedQuantized(for: model, size: inputSize, layout: options.layout)
    }

    /// Nanoseconds the last inference spent in each layer (indices as ``Model/layers(at:)``);
    /// all zero unless the session was created with `profiling`.
    public var layerTimes: [UInt64] {
        (0..<UInt32(model.layerCount)).map { mnv3_context_layer_ns(context, $0) }
    }

    // MARK: Images

    /// Preprocesses one decoded image for this session (resize and normalisation from the
    /// model's metadata), in the session's layout: `3 * height * width` floats.
    public func preprocess(_ image: Image) throws(MobileNetV3Error) -> [Float] {
        try image.preprocessed(for: model, size: inputSize, layout: options.layout)
    }

    /// Decodes an image file and preprocesses it for this session without holding the
    /// decoded image (see ``Image/preprocess(path:for:size:layout:maxPixels:)``): the
    /// values are those of ``preprocess(_:)`` on `Image(path:)`. Returns the file's size and
    /// format too.
    public func preprocess(imageAt path: String,
                           maxPixels: Int = Image.defaultMaxPixels) throws(MobileNetV3Error) -> (info: Image.Info, input: [Float]) {
        try Image.preprocess(path: path, for: model, size: inputSize, layout: options.layout, maxPixels: maxPixels)
    }

    /// Classifies one image; the session's batch must be 1. Returns the `top` most likely
    /// classes, best first, with softmax probabilities.
    public func classify(image: Image, top: Int = 5) throws(MobileNetV3Error) -> [Classification] {
        guard batch == 1 else {
            throw MobileNetV3Error(.invalidArgument, "classify(image:) needs a session with batch 1 (this one has \(batch))")
        }
        return try classify(images: [image], top: top)[0]
    }

    /// Classifies an image file, decoding and resizing it row by row so that a large photo
    /// is never held whole (``preprocess(imageAt:maxPixels:)``); the result is the same as
    /// ``classify(image:top:)`` on `Image(path:)`. Any batch size works (the batch is padded).
    public func classify(imageAt path: String, top: Int = 5,
                         maxPixels: Int = Image.defaultMaxPixels) throws(MobileNetV3Error)
        -> (info: Image.Info, classes: [Classification]) {
        if takesQuantizedInput {
            let (info, input) = try Image.preprocessQuantizedBytes(path: path, for: model, size: inputSize,
                                                                  layout: options.layout, maxPixels: maxPixels)
            return (info, try classify(count: 1, top: top, padding: UInt8(0), run: run(quantized:)) {
                _ throws(MobileNetV3Error) in input
            }[0])
        }
        let (info, input) = try preprocess(imageAt: path, maxPixels: maxPixels)
        return (info, try classify(count: 1, top: top, padding: Float(0), run: run) {
            _ throws(MobileNetV3Error) in input
        }[0])
    }

    /// Classifies any number of images, `batch` at a time (a short last batch is padded).
    public func classify(images: [Image], top: Int = 5) throws(MobileNetV3Error) -> [[Classification]] {
        if takesQuantizedInput {
            return try classify(count: images.count, top: top, padding: UInt8(0), run: run(quantized:)) {
                i throws(MobileNetV3Error) in
                try images[i].quantizedBytes(for: model, size: inputSize, layout: options.layout)
            }
        }
        return try classify(count: images.count, top: top, padding: Float(0), run: run) {
            i throws(MobileNetV3Error) in try preprocess(images[i])
        }
    }

    /// A quantized model is classified from its own input bytes, straight from the pixels:
    /// the bytes ``predict(_:)`` would quantize the preprocessed floats to, so the results
    /// are the same, without a float image.
    private var takesQuantizedInput: Bool { model.inputQuantization != nil }

    /// Classifies `count` inputs (floats, or a quantized model's bytes), `batch` at a time
    /// by `run`, which leaves the logits in `logits`.
    private func classify<Element>(count: Int, top: Int, padding: Element,
                                   run: ([Element]) throws(MobileNetV3Error) -> Void,
                                   input one: (Int) throws(MobileNetV3Error) -> [Element]) throws(MobileNetV3Error)
        -> [[Classification]] {
        let classes = model.classCount
        guard top >= 1 else { throw MobileNetV3Error(.invalidArgument, "top must be at least 1 (got \(top))") }
        let k = min(top, classes)
        let s = inputSize
        let per = 3 * s.height * s.width
        var results: [[Classification]] = []
        results.reserveCapacity(count)
        var start = 0
        while start < count {
            let chunk = start..<min(start + batch, count)
            var input = [Element](repeating: padding, count: batch * per)
            for (i, index) in chunk.enumerated() {
                input.replaceSubrange((i * per)..<((i + 1) * per), with: try one(index))
            }
            try run(input)
            var probs = logits
            // A row of NaN logits only has no probabilities: the C softmax refuses it.
            if mnv3_softmax(logits, &probs, batch, classes) != MNV3_OK {
                let row = (0..<chunk.count).first { i in
                    logits[(i * classes)..<((i + 1) * classes)].allSatisfy(\.isNaN)
                } ?? 0
                throw MobileNetV3Error(.invalidArgument,
                                       "softmax: every logit of image \(chunk.lowerBound + row) is NaN")
            }
            for i in 0..<chunk.count {
                // Ranked by the logits (NaN last, ties by index), which still differ where
                // the probabilities underflow to 0.
                let row = Array(logits[(i * classes)..<((i + 1) * classes)])
                var indices = [UInt32](repeating: 0, count: k)
                try check("top-k", status: mnv3_top_k(row, classes, UInt32(k), &indices))
                results.append(indices.map {
                    Classification(label: model.label(Int($0)), index: Int($0),
                                   probability: probs[i * classes + Int($0)])
                })
            }
            start += batch
        }
        return results
    }
}

@available(*, unavailable, message: "a Session is single-user; create one per task")
extension Session: Sendable {}

extension Model {
    /// A convenience: classifies one image with a temporary single-image session.
    public func classify(image: Image, top: Int = 5, threads: Int = 1) throws(MobileNetV3Error) -> [Classification] {
        try Session(model: self, options: .init(threads: threads)).classify(image: image, top: top)
    }
}
