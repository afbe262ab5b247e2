import CMobileNetV3
import CMNV3Image
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A decoded 8-bit RGB image (rows top to bottom, pixels interleaved R, G, B).
///
/// Decoding rules, the same for every format:
/// - grayscale is replicated into R, G and B;
/// - an alpha channel (RGBA or gray + alpha PNG) is dropped, not composited;
/// - 16-bit samples (PNG, or PPM/PGM with maxval > 255) are reduced to 8 bits;
/// - palette PNGs are expanded.
///
/// Resizing and normalisation happen later, from the model's metadata, in
/// ``Session/preprocess(_:)`` (the C `mnv3_preprocess_image`).
///
/// Decoding is bounded. The dimensions a file claims are checked against a pixel limit
/// (``defaultMaxPixels`` unless `maxPixels` says otherwise) before anything is allocated for
/// the image, a JPEG stops at the first corrupt or missing data, and PNG and JPEG rows are
/// decoded straight into the one pixel buffer. An `Image` holds 3 bytes per pixel; decoding
/// needs, besides that, a few rows, except for a progressive JPEG, which needs its
/// coefficients (2 bytes per pixel for gray, 3 for 4:2:0 colour, 6 for 4:4:4) while its rows
/// are decoded. Image and coefficients together may take at most 4 bytes per pixel of the
/// limit, 64 MiB at the default limit (a progressive 4:2:0 JPEG decodes whole up to about
/// 11 megapixels by default); a larger one is refused as too large, with a message saying
/// so. To classify a large photo without holding it, use
/// ``preprocess(path:for:size:layout:maxPixels:)`` or ``Session/classify(imageAt:top:maxPixels:)``,
/// which resize while decoding and keep only two rows (a progressive JPEG's coefficients
/// may then take 3 bytes per pixel of the limit).
public struct Image: Hashable, Sendable {
    /// The pixel limit used when none is given: 16 Mi pixels (16,777,216, for example
    /// 4096 x 4096 or 4896 x 3264), which is 48 MiB as 8-bit RGB. A larger image is refused
    /// with ``MobileNetV3Error/Code/imageTooLarge`` unless the caller raises the limit.
    public static let defaultMaxPixels = Int(MNV3IMG_DEFAULT_MAX_PIXELS)

    /// The size and kind of an image, as its file says.
    public struct Info: Hashable, Sendable {
        public let width: Int
        public let height: Int
        public let format: Format
        /// Channels in the source: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.
        public let sourceChannels: Int

        public init(width: Int, height: Int, format: Format, sourceChannels: Int) {
            self.width = width
            self.height = height
            self.format = format
            self.sourceChannels = sourceChannels
        }
    }

    /// A file format this module decodes.
    public enum Format: String, Sendable, CustomStringConvertible {
        case png, jpeg
        /// Binary PPM (`P6`).
        case ppm
        /// Binary PGM (`P5`).
        case pgm
        /// Pixels given directly.
        case raw
        public var description: String { rawValue }
    }

    public let width: Int
    public let height: Int
    /// `height * width * 3` bytes.
    public let pixels: [UInt8]
    /// The format the image was decoded from.
    public let format: Format
    /// Channels in the source: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA.
    public let sourceChannels: Int

    /// Size, format and source channels.
    public var info: Info { Info(width: width, height: height, format: format, sourceChannels: sourceChannels) }

    /// Wraps interleaved 8-bit pixels with 1 (gray), 3 (RGB) or 4 (RGBA, alpha dropped) channels.
    public init(width: Int, height: Int, channels: Int = 3, pixels: [UInt8]) throws(MobileNetV3Error) {
        guard width >= 1, height >= 1, [1, 3, 4].contains(channels) else {
            throw MobileNetV3Error(.invalidArgument,
                                   "image must be at least 1x1 with 1, 3 or 4 channels (got \(width)x\(height)x\(channels))")
        }
        let (wh, o1) = width.multipliedReportingOverflow(by: height)
        let (expected, o2) = wh.multipliedReportingOverflow(by: channels)
        guard !o1, !o2, pixels.count == expected else {
            throw MobileNetV3Error(.shape, "\(width)x\(height)x\(channels) image needs \(expected) bytes, got \(pixels.count)")
        }
        self.width = width
        self.height = height
        self.format = .raw
        self.sourceChannels = channels
        self.pixels = Image.toRGB(pixels, channels: channels)
    }

    private init(width: Int, height: Int, rgb: [UInt8], format: Format, sourceChannels: Int) {
        self.width = width
        self.height = height
        self.pixels = rgb
        self.format = format
        self.sourceChannels = sourceChannels
    }

    /// Reads and decodes an image file (PNG, JPEG, binary PPM or PGM, told apart by content).
    /// An image of more than `maxPixels` pixels is refused before it is decoded.
    public init(contentsOf url: URL, maxPixels: Int = Image.defaultMaxPixels) throws(MobileNetV3Error) {
        try self.init(path: try Image.filePath(url), maxPixels: maxPixels)
    }

    /// Reads and decodes an image file from a file-system path.
    public init(path: String, maxPixels: Int = Image.defaultMaxPixels) throws(MobileNetV3Error) {
        try Image.checkLimit(maxPixels)
        let bytes = try readFile(path, what: "image")
        try self.init(data: bytes, name: path, maxPixels: maxPixels)
    }

    /// Decodes an image held in memory. `name` is used in error messages.
    public init(data: [UInt8], name: String = "image data",
                maxPixels: Int = Image.defaultMaxPixels) throws(MobileNetV3Error) {
        try Image.checkLimit(maxPixels)
        switch try Image.format(of: data, name: name) {
        case .png, .jpeg: self = try Image.decodeWithShim(data, name: name, maxPixels: maxPixels)
        case .ppm, .pgm: self = try Image.decodeNetpbm(data, name: name, maxPixels: maxPixels)
        case .raw: throw MobileNetV3Error(.unsupportedImageFormat, "\(name): unknown format")
        }
    }

    /// Decodes an image file and turns it into the network input for `model`, exactly as
    /// ``preprocessed(for:size:layout:)`` on the decoded image would, without holding the
    /// decoded image: PNG and JPEG rows are resized as they are decoded, and only two of
    /// them are kept. Memory is then the output (`3 * height * width` floats) and two rows,
    /// except for an interlaced PNG (held whole, 3 bytes per pixel) and a progressive JPEG
    /// (its coefficients, at most 3 bytes per pixel of the limit, see ``Image``). PPM and
    /// PGM files are decoded whole.
    public static func preprocess(path: String, for model: Model, size: ImageSize? = nil,
                                  layout: Layout = .nchw,
                                  maxPixels: Int = Image.defaultMaxPixels) throws(MobileNetV3Error)
        -> (info: Info, input: [Float]) {
        try checkLimit(maxPixels)
        let bytes = try readFile(path, what: "image")
        return try preprocess(data: bytes, name: path, for: model, size: size, layout: layout,
                              maxPixels: maxPixels)
    }

    /// ``preprocess(path:for:size:layout:maxPixels:)`` for an image held in memory.
    public static func preprocess(data: [UInt8], name: String = "image data", for model: Model,
                                  size: ImageSize? = nil, layout: Layout = .nchw,
                                  maxPixels: Int = Image.defaultMaxPixels) throws(MobileNetV3Error)
        -> (info: Info, input: [Float]) {
        try preprocessFile(data, name: name, for: model, size: size, maxPixels: maxPixels,
                           rows: { decoder, h, w throws(MobileNetV3Error) in
                               try decoder.resize(for: model, height: h, width: w, layout: layout)
                           },
                           whole: { image throws(MobileNetV3Error) in
                               try image.preprocessed(for: model, size: size, layout: layout)
                           })
    }

    /// ``preprocess(path:for:size:layout:maxPixels:)`` straight to a quantized model's input
    /// bytes, as ``preprocessedQuantized(for:size:layout:)`` gives them: no float image, and
    /// no decoded image held either.
    static func preprocessQuantizedBytes(path: String, for model: Model, size: ImageSize?,
                                         layout: Layout, maxPixels: Int) throws(MobileNetV3Error)
        -> (info: Info, input: [UInt8]) {
        try checkLimit(maxPixels)
        let bytes = try readFile(path, what: "image")
        return try preprocessFile(bytes, name: path, for: model, size: size, maxPixels: maxPixels,
                                  rows: { decoder, h, w throws(MobileNetV3Error) in
                                      try decoder.resizeQuantized(for: model, height: h, width: w,
                                                                  layout: layout)
                                  },
                                  whole: { image throws(MobileNetV3Error) in
                                      try image.quantizedBytes(for: model, size: size, layout: layout)
                                  })
    }

    /// An image file's network input for `model`: `rows` makes it from a PNG or JPEG
    /// decoder (resizing while decoding, at `size` or the model's), `whole` from a PPM or
    /// PGM decoded whole.
    private static func preprocessFile<Input>(
        _ data: [UInt8], name: String, for model: Model, size: ImageSize?, maxPixels: Int,
        rows: (ShimDecoder, Int, Int) throws(MobileNetV3Error) -> Input,
        whole: (Image) throws(MobileNetV3Error) -> Input
    ) throws(MobileNetV3Error) -> (info: Info, input: Input) {
        try checkLimit(maxPixels)
        switch try format(of: data, name: name) {
        case .png, .jpeg:
            let (h, w) = try Model.dimensions(size ?? model.preprocess.size)
            return try streamWithShim(data, name: name, maxPixels: maxPixels, whole: false) {
                decoder throws(MobileNetV3Error) in
                try rows(decoder, Int(h), Int(w))
            }
        case .ppm, .pgm:
            let image = try decodeNetpbm(data, name: name, maxPixels: maxPixels)
            return (image.info, try whole(image))
        case .raw: throw MobileNetV3Error(.unsupportedImageFormat, "\(name): unknown format")
        }
    }

    static func filePath(_ url: URL) throws(MobileNetV3Error) -> String {
        guard url.isFileURL else {
            throw MobileNetV3Error(.invalidArgument, "\(url.absoluteString): only file URLs can be read")
        }
        return url.path
    }

    static func checkLimit(_ maxPixels: Int) throws(MobileNetV3Error) {
        guard maxPixels >= 1 else {
            throw MobileNetV3Error(.invalidArgument, "the pixel limit must be at least 1 (got \(maxPixels))")
        }
    }

    private static func format(of data: [UInt8], name: String) throws(MobileNetV3Error) -> Format {
        guard let format = sniff(data) else {
            if data.isEmpty { throw MobileNetV3Error(.badImage, "\(name): the file is empty") }
            throw MobileNetV3Error(.unsupportedImageFormat,
                                   "\(name): not a PNG, JPEG, binary PPM (P6) or binary PGM (P5) image")
        }
        return format
    }

    /// Recognises a format from the first bytes.
    public static func sniff(_ data: [UInt8]) -> Format? {
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if data.count >= 2, data[0] == UInt8(ascii: "P") {
            if data[1] == UInt8(ascii: "6") { return .ppm }
            if data[1] == UInt8(ascii: "5") { return .pgm }
        }
        return nil
    }

    /// The network input for `model`: bilinear resize to `size` (default the model's input
    /// size) and the model's normalisation, `3 * height * width` floats in `layout`.
    public func preprocessed(for model: Model, size: ImageSize? = nil,
                             layout: Layout = .nchw) throws(MobileNetV3Error) -> [Float] {
        let (ih, iw, h, w) = try preprocessSizes(for: model, size: size)
        var out = [Float](repeating: 0, count: 3 * Int(h) * Int(w))
        let status = pixels.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { dst in
                mnv3_preprocess_image(model.handle, px.baseAddress, ih, iw, 3, h, w,
                                      layout.c, dst.baseAddress, dst.count)
            }
        }
        try check("preprocessing image", status: status)
        return out
    }

    /// The image's size and the network input's, checked, as the C preprocessing takes them.
    private func preprocessSizes(for model: Model, size: ImageSize?) throws(MobileNetV3Error)
        -> (UInt32, UInt32, UInt32, UInt32) {
        let (h, w) = try Model.dimensions(size ?? model.preprocess.size)
        guard let iw = UInt32(exactly: width), let ih = UInt32(exactly: height) else {
            throw MobileNetV3Error(.invalidArgument, "image of \(width)x\(height) is too large")
        }
        return (ih, iw, h, w)
    }

    /// The same resize and normalisation for a quantized model, straight to its quantized
    /// input (``Model/inputQuantization``): `3 * height * width` bytes for
    /// ``Session/predict(quantized:)``, with no float array in between (the C
    /// `mnv3_preprocess_image_quantized`). Throws ``MobileNetV3Error/Code/unsupported`` for
    /// a float model.
    public func preprocessedQuantized(for model: Model, size: ImageSize? = nil,
                                      layout: Layout = .nchw) throws(MobileNetV3Error) -> QuantizedInput {
        guard let q = model.inputQuantization else {
            throw MobileNetV3Error(.unsupported, "quantized preprocessing needs a quantized model; this one is "
                                   + "\(model.precision)")
        }
        let out = try quantizedBytes(for: model, size: size, layout: layout)
        return q.type == .uint8 ? .uint8(out) : .int8(out.map { Int8(bitPattern: $0) })
    }

    /// ``preprocessedQuantized(for:size:layout:)``'s values as the bytes the C library takes.
    func quantizedBytes(for model: Model, size: ImageSize?, layout: Layout) throws(MobileNetV3Error) -> [UInt8] {
        let (ih, iw, h, w) = try preprocessSizes(for: model, size: size)
        var out = [UInt8](repeating: 0, count: 3 * Int(h) * Int(w))
        let status = pixels.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBytes { dst in
                mnv3_preprocess_image_quantized(model.handle, px.baseAddress, ih, iw, 3, h, w,
                                                layout.c, dst.baseAddress, dst.count)
            }
        }
        try check("preprocessing image", status: status)
        return out
    }

    // MARK: Decoders

    private static func toRGB(_ pixels: [UInt8], channels: Int) -> [UInt8] {
        if channels == 3 { return pixels }
        let n = pixels.count / channels
        var rgb = [UInt8](repeating: 0, count: n * 3)
        for i in 0..<n {
            if channels == 1 {
                let v = pixels[i]
                rgb[3 * i] = v; rgb[3 * i + 1] = v; rgb[3 * i + 2] = v
            } else {
                rgb[3 * i] = pixels[channels * i]
                rgb[3 * i + 1] = pixels[channels * i + 1]
                rgb[3 * i + 2] = pixels[channels * i + 2]
            }
        }
        return rgb
    }

    /// Opens a PNG or JPEG decoder on `data` (kept valid meanwhile) and runs `body` on it.
    /// `whole`: every row will be held (the decoded image), which counts against the memory
    /// a progressive JPEG's coefficients may take.
    private static func streamWithShim<T>(
        _ data: [UInt8], name: String, maxPixels: Int, whole: Bool,
        _ body: (ShimDecoder) throws(MobileNetV3Error) -> T
    ) throws(MobileNetV3Error) -> (info: Info, input: T) {
        let result: Result<(info: Info, input: T), MobileNetV3Error> = data.withUnsafeBufferPointer { buf in
            do throws(MobileNetV3Error) {
                let decoder = try ShimDecoder(buf, name: name, maxPixels: maxPixels, whole: whole)
                return .success((decoder.info, try body(decoder)))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private static func decodeWithShim(_ data: [UInt8], name: String, maxPixels: Int) throws(MobileNetV3Error) -> Image {
        let (info, rgb) = try streamWithShim(data, name: name, maxPixels: maxPixels, whole: true) {
            decoder throws(MobileNetV3Error) in
            try decoder.readAll()
        }
        return Image(width: info.width, height: info.height, rgb: rgb, format: info.format,
                     sourceChannels: info.sourceChannels)
    }

    /// Binary PPM (P6) and PGM (P5): header `P6 <width> <height> <maxval>` with `#` comments,
    /// one whitespace byte, then 8-bit (maxval < 256) or 16-bit big-endian samples.
    private static func decodeNetpbm(_ data: [UInt8], name: String, maxPixels: Int) throws(MobileNetV3Error) -> Image {
        let isPPM = data[1] == UInt8(ascii: "6")
        let kind = isPPM ? "PPM" : "PGM"
        var pos = 2
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x0B || c == 0x0C }
        func field(_ what: String) throws(MobileNetV3Error) -> Int {
            // Skip whitespace and comments.
            while pos < data.count {
                if isSpace(data[pos]) { pos += 1; continue }
                if data[pos] == UInt8(ascii: "#") {
                    while pos < data.count, data[pos] != 0x0A, data[pos] != 0x0D { pos += 1 }
                    continue
                }
                break
            }
            var value = 0
            var digits = 0
            while pos < data.count, data[pos] >= 0x30, data[pos] <= 0x39 {
                value = value * 10 + Int(data[pos] - 0x30)
                digits += 1
                pos += 1
                if value > 1 << 24 {
                    throw MobileNetV3Error(.badImage, "\(name): \(kind) \(what) is too large")
                }
            }
            guard digits > 0 else {
                throw MobileNetV3Error(.badImage, pos >= data.count
                    ? "\(name): truncated \(kind) header (no \(what))"
                    : "\(name): malformed \(kind) header (bad \(what))")
            }
            return value
        }
        let width = try field("width")
        let height = try field("height")
        let maxval = try field("maximum value")
        guard width >= 1, height >= 1, maxval >= 1, maxval <= 65535 else {
            throw MobileNetV3Error(.badImage, "\(name): \(kind) header has an invalid size or maximum value")
        }
        if let error = tooLarge(name: name, kind: kind, width: width, height: height, maxPixels: maxPixels) {
            throw error
        }
        guard pos < data.count, isSpace(data[pos]) else {
            throw MobileNetV3Error(.badImage, "\(name): truncated \(kind) header")
        }
        pos += 1
        let channels = isPPM ? 3 : 1
        let bytesPerSample = maxval > 255 ? 2 : 1
        let samples = width * height * channels
        guard data.count - pos >= samples * bytesPerSample else {
            throw MobileNetV3Error(.badImage, "\(name): truncated \(kind) image: \(samples * bytesPerSample) "
                                   + "bytes of pixels expected, \(data.count - pos) present")
        }
        var out = [UInt8](repeating: 0, count: samples)
        for i in 0..<samples {
            let v: Int
            if bytesPerSample == 1 {
                v = Int(data[pos + i])
            } else {
                v = Int(data[pos + 2 * i]) << 8 | Int(data[pos + 2 * i + 1])
            }
            let clamped = min(v, maxval)
            out[i] = maxval == 255 ? UInt8(clamped) : UInt8((clamped * 255 + maxval / 2) / maxval)
        }
        return Image(width: width, height: height, rgb: toRGB(out, channels: channels),
                     format: isPPM ? .ppm : .pgm, sourceChannels: channels)
    }
}

extension Image {
    /// The error for an image whose claimed size passes the limits, or nil.
    static func tooLarge(name: String, kind: String, width: Int, height: Int,
                         maxPixels: Int) -> MobileNetV3Error? {
        let side = Int(MNV3IMG_MAX_DIMENSION)
        if width > side || height > side {
            return MobileNetV3Error(.imageTooLarge, "\(name): \(kind) image is too large: it claims \(width)x\(height) "
                                    + "pixels, and no side may be longer than \(side)")
        }
        if width * height > maxPixels {
            return MobileNetV3Error(.imageTooLarge, "\(name): \(kind) image is too large: it claims \(width)x\(height) "
                                    + "= \(width * height) pixels, more than the limit of \(maxPixels) pixels")
        }
        return nil
    }
}

/// A PNG or JPEG decoder of the C shim, handing out 8-bit RGB rows. The data it reads must
/// stay valid while it lives.
private final class ShimDecoder {
    let handle: OpaquePointer
    let info: Image.Info
    /// Adam7 PNG or progressive (multi-scan) JPEG.
    let interlaced: Bool
    let name: String
    let kind: String

    init(_ data: UnsafeBufferPointer<UInt8>, name: String, maxPixels: Int, whole: Bool) throws(MobileNetV3Error) {
        var handle: OpaquePointer?
        var info = mnv3img_info()
        var message = [CChar](repeating: 0, count: 320)
        let status = message.withUnsafeMutableBufferPointer { msg in
            mnv3img_open(data.baseAddress, data.count, UInt64(maxPixels), whole ? MNV3IMG_WHOLE_IMAGE : 0,
                         &handle, &info, msg.baseAddress, msg.count)
        }
        let format: Image.Format = info.format == MNV3IMG_FORMAT_PNG.rawValue ? .png : .jpeg
        let kind = format == .png ? "PNG" : "JPEG"
        let header = Image.Info(width: Int(info.width), height: Int(info.height), format: format,
                                sourceChannels: Int(info.source_channels))
        guard status == MNV3IMG_OK, let handle else {
            if let handle { mnv3img_close(handle) }
            throw ShimDecoder.error(status, message, name: name, kind: kind, info: header, maxPixels: maxPixels)
        }
        self.handle = handle
        self.info = header
        self.interlaced = info.interlaced != 0
        self.name = name
        self.kind = kind
    }

    deinit { mnv3img_close(handle) }

    /// Decodes `count` rows into `rows`, `stride` bytes apart.
    func read(into rows: UnsafeMutablePointer<UInt8>, stride: Int, count: Int) throws(MobileNetV3Error) {
        var message = [CChar](repeating: 0, count: 320)
        let status = message.withUnsafeMutableBufferPointer { msg in
            mnv3img_read_rows(handle, rows, stride, UInt32(count), msg.baseAddress, msg.count)
        }
        if status != MNV3IMG_OK {
            throw ShimDecoder.error(status, message, name: name, kind: kind, info: info, maxPixels: 0)
        }
    }

    /// The whole image, decoded into one buffer. Except for an interlaced PNG (whose rows
    /// are only final after the last pass), the first row is decoded before that buffer is
    /// allocated, so a file that claims a large size but holds no pixel data costs a row.
    func readAll() throws(MobileNetV3Error) -> [UInt8] {
        let rowBytes = info.width * 3
        let total = rowBytes * info.height
        var done = 0
        var firstRow: [UInt8] = []
        if !(interlaced && info.format == .png) {
            let row = UnsafeMutablePointer<UInt8>.allocate(capacity: rowBytes)
            defer { row.deallocate() }
            try read(into: row, stride: rowBytes, count: 1)
            firstRow = Array(UnsafeBufferPointer(start: row, count: rowBytes))
            done = 1
        }
        var failure: MobileNetV3Error?
        let rgb = [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
            let base = buffer.baseAddress!
            firstRow.withUnsafeBufferPointer { row in
                if let first = row.baseAddress { base.update(from: first, count: rowBytes) }
            }
            do throws(MobileNetV3Error) {
                try read(into: base + done * rowBytes, stride: rowBytes, count: info.height - done)
                count = total
            } catch {
                failure = error
                count = 0
            }
        }
        if let failure { throw failure }
        return rgb
    }

    /// The network input for `model` as floats, resized while decoding (`resize(into:)`).
    func resize(for model: Model, height dh: Int, width dw: Int, layout: Layout) throws(MobileNetV3Error) -> [Float] {
        let (sh, sw) = (UInt32(info.height), UInt32(info.width))
        var out = [Float](repeating: 0, count: 3 * dh * dw)
        try resize(height: dh) { first, second, y in
            out.withUnsafeMutableBufferPointer { dst in
                mnv3_preprocess_image_row(model.handle, first, second, sh, sw, 3, UInt32(dh), UInt32(dw), y,
                                          layout.c, dst.baseAddress, dst.count)
            }
        }
        return out
    }

    /// The same as a quantized model's input bytes.
    func resizeQuantized(for model: Model, height dh: Int, width dw: Int,
                         layout: Layout) throws(MobileNetV3Error) -> [UInt8] {
        let (sh, sw) = (UInt32(info.height), UInt32(info.width))
        var out = [UInt8](repeating: 0, count: 3 * dh * dw)
        try resize(height: dh) { first, second, y in
            out.withUnsafeMutableBytes { dst in
                mnv3_preprocess_image_row_quantized(model.handle, first, second, sh, sw, 3, UInt32(dh),
                                                    UInt32(dw), y, layout.c, dst.baseAddress, dst.count)
            }
        }
        return out
    }

    /// Resizes while decoding: only the two source rows the current output row reads are
    /// kept (see `mnv3_preprocess_image_row`); `row(first, second, y)` writes output row y.
    private func resize(height dh: Int,
                        row: (UnsafePointer<UInt8>, UnsafePointer<UInt8>, UInt32) -> mnv3_status) throws(MobileNetV3Error) {
        let (h, w) = (info.height, info.width)
        let rowBytes = w * 3
        let ring = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * rowBytes)
        defer { ring.deallocate() }
        var next = 0
        for y in 0..<dh {
            var first: UInt32 = 0, second: UInt32 = 0
            try check("preprocessing image", status: mnv3_preprocess_source_rows(UInt32(h), UInt32(dh), UInt32(y),
                                                                                  &first, &second))
            while next <= Int(second) {
                try read(into: ring + (next % 2) * rowBytes, stride: rowBytes, count: 1)
                next += 1
            }
            try check("preprocessing image", status: row(ring + Int(first % 2) * rowBytes,
                                                         ring + Int(second % 2) * rowBytes, UInt32(y)))
        }
        // The rest is decoded too, so that a damaged or truncated tail is still an error.
        while next < h {
            try read(into: ring, stride: rowBytes, count: 1)
            next += 1
        }
    }

    private static func error(_ status: mnv3img_status, _ message: [CChar], name: String, kind: String,
                              info: Image.Info, maxPixels: Int) -> MobileNetV3Error {
        let text = String(decoding: message.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        switch status {
        case MNV3IMG_TOO_LARGE:
            if info.width > 0, info.height > 0,
               let error = Image.tooLarge(name: name, kind: kind, width: info.width, height: info.height,
                                          maxPixels: maxPixels) {
                return error
            }
            return MobileNetV3Error(.imageTooLarge, "\(name): \(kind) image is too large: \(text)")
        case MNV3IMG_UNSUPPORTED:
            return MobileNetV3Error(.unsupportedImageFormat, "\(name): unsupported \(kind) image: \(text)")
        case MNV3IMG_NO_MEMORY:
            let size = info.width > 0 ? " of \(info.width)x\(info.height)" : ""
            return MobileNetV3Error(.outOfMemory, "\(name): out of memory decoding the \(kind) image\(size): \(text)")
        default:
            return MobileNetV3Error(.badImage, "\(name): corrupt or truncated \(kind) image: \(text)")
        }
    }
}

/// Reads a whole file, mapping every failure to a typed error naming the file.
func readFile(_ path: String, what: String) throws(MobileNetV3Error) -> [UInt8] {
    var isDirectory = false
    #if canImport(FoundationEssentials)
    let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
    #else
    var objcBool: ObjCBool = false
    let exists = FileManager.default.fileExists(atPath: path, isDirectory: &objcBool)
    isDirectory = objcBool.boolValue
    #endif
    guard exists else { throw MobileNetV3Error(.io, "\(path): no such \(what) file") }
    guard !isDirectory else { throw MobileNetV3Error(.io, "\(path): is a directory, not an \(what) file") }
    do {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return [UInt8](data)
    } catch {
        throw MobileNetV3Error(.io, "\(path): cannot read \(what) file")
    }
}
