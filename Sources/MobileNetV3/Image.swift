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
public struct Image: Hashable, Sendable {
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
    public init(contentsOf url: URL) throws(MobileNetV3Error) {
        guard url.isFileURL else {
            throw MobileNetV3Error(.invalidArgument, "\(url.absoluteString): only file URLs can be read")
        }
        try self.init(path: url.path)
    }

    /// Reads and decodes an image file from a file-system path.
    public init(path: String) throws(MobileNetV3Error) {
        let bytes = try readFile(path, what: "image")
        try self.init(data: bytes, name: path)
    }

    /// Decodes an image held in memory. `name` is used in error messages.
    public init(data: [UInt8], name: String = "image data") throws(MobileNetV3Error) {
        guard let format = Image.sniff(data) else {
            if data.isEmpty { throw MobileNetV3Error(.badImage, "\(name): the file is empty") }
            throw MobileNetV3Error(.unsupportedImageFormat,
                                   "\(name): not a PNG, JPEG, binary PPM (P6) or binary PGM (P5) image")
        }
        switch format {
        case .png, .jpeg: self = try Image.decodeWithShim(data, format: format, name: name)
        case .ppm, .pgm: self = try Image.decodeNetpbm(data, name: name)
        case .raw: throw MobileNetV3Error(.unsupportedImageFormat, "\(name): unknown format")
        }
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
        let s = size ?? model.preprocess.size
        let (h, w) = try Model.dimensions(s)
        guard let iw = UInt32(exactly: width), let ih = UInt32(exactly: height) else {
            throw MobileNetV3Error(.invalidArgument, "image of \(width)x\(height) is too large")
        }
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

    private static func decodeWithShim(_ data: [UInt8], format: Format, name: String) throws(MobileNetV3Error) -> Image {
        var image = mnv3img_image()
        var message = [CChar](repeating: 0, count: 256)
        let status = data.withUnsafeBufferPointer { buf in
            message.withUnsafeMutableBufferPointer { msg in
                format == .png
                    ? mnv3img_decode_png(buf.baseAddress, buf.count, &image, msg.baseAddress, msg.count)
                    : mnv3img_decode_jpeg(buf.baseAddress, buf.count, &image, msg.baseAddress, msg.count)
            }
        }
        defer { mnv3img_free(&image) }
        let text = String(decoding: message.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let kind = format == .png ? "PNG" : "JPEG"
        switch status {
        case MNV3IMG_OK:
            guard let base = image.pixels else {
                throw MobileNetV3Error(.badImage, "\(name): \(kind) decoder returned no pixels")
            }
            let count = Int(image.width) * Int(image.height) * 3
            let rgb = Array(UnsafeBufferPointer(start: base, count: count))
            return Image(width: Int(image.width), height: Int(image.height), rgb: rgb, format: format,
                         sourceChannels: Int(image.source_channels))
        case MNV3IMG_UNSUPPORTED:
            throw MobileNetV3Error(.unsupportedImageFormat, "\(name): unsupported \(kind) image: \(text)")
        case MNV3IMG_TOO_LARGE:
            throw MobileNetV3Error(.unsupported, "\(name): \(kind) image is too large: \(text)")
        case MNV3IMG_NO_MEMORY:
            throw MobileNetV3Error(.outOfMemory, "\(name): out of memory decoding \(kind) image")
        default:
            throw MobileNetV3Error(.badImage, "\(name): corrupt or truncated \(kind) image: \(text)")
        }
    }

    /// Binary PPM (P6) and PGM (P5): header `P6 <width> <height> <maxval>` with `#` comments,
    /// one whitespace byte, then 8-bit (maxval < 256) or 16-bit big-endian samples.
    private static func decodeNetpbm(_ data: [UInt8], name: String) throws(MobileNetV3Error) -> Image {
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
        guard width <= Int(MNV3IMG_MAX_DIMENSION), height <= Int(MNV3IMG_MAX_DIMENSION),
              width * height <= Int(MNV3IMG_MAX_PIXELS) else {
            throw MobileNetV3Error(.unsupported, "\(name): \(kind) image of \(width)x\(height) is too large")
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
