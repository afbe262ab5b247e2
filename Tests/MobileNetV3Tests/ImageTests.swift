import CMNV3Image
import Foundation
import XCTest
import MobileNetV3
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class ImageTests: XCTestCase {
    /// A small test picture: a gradient with distinct channels.
    static func pattern(width: Int, height: Int, channels: Int) -> [UInt8] {
        var out: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels { out.append(UInt8((x * 37 + y * 11 + c * 80) % 256)) }
            }
        }
        return out
    }

    func encodePNG(_ pixels: [UInt8], width: Int, height: Int, channels: Int) throws -> [UInt8] {
        var data: UnsafeMutablePointer<UInt8>?
        var size = 0
        let status = mnv3img_encode_png(pixels, UInt32(width), UInt32(height), UInt32(channels), &data, &size, nil, 0)
        XCTAssertEqual(status, MNV3IMG_OK)
        guard let data else { throw XCTSkip("PNG encoder failed") }
        defer { mnv3img_free_bytes(data) }
        return Array(UnsafeBufferPointer(start: data, count: size))
    }

    func encodeJPEG(_ pixels: [UInt8], width: Int, height: Int, channels: Int, quality: Int = 95,
                    progressive: Bool = false) throws -> [UInt8] {
        var data: UnsafeMutablePointer<UInt8>?
        var size = 0
        let status = mnv3img_encode_jpeg(pixels, UInt32(width), UInt32(height), UInt32(channels), Int32(quality),
                                         progressive ? 1 : 0, &data, &size, nil, 0)
        XCTAssertEqual(status, MNV3IMG_OK)
        guard let data else { throw XCTSkip("JPEG encoder failed") }
        defer { mnv3img_free_bytes(data) }
        return Array(UnsafeBufferPointer(start: data, count: size))
    }

    func testPNGRGB() throws {
        let rgb = Self.pattern(width: 7, height: 5, channels: 3)
        let dir = try temporaryDirectory(self)
        let url = dir.appendingPathComponent("rgb.png")
        try write(try encodePNG(rgb, width: 7, height: 5, channels: 3), to: url)
        let image = try Image(contentsOf: url)
        XCTAssertEqual(image.format, .png)
        XCTAssertEqual(image.width, 7)
        XCTAssertEqual(image.height, 5)
        XCTAssertEqual(image.sourceChannels, 3)
        XCTAssertEqual(image.pixels, rgb)
    }

    func testPNGGrayIsReplicatedAndAlphaDropped() throws {
        let gray = Self.pattern(width: 4, height: 3, channels: 1)
        let g = try Image(data: try encodePNG(gray, width: 4, height: 3, channels: 1))
        XCTAssertEqual(g.sourceChannels, 1)
        XCTAssertEqual(g.pixels, gray.flatMap { [$0, $0, $0] })

        var rgba = Self.pattern(width: 4, height: 3, channels: 4)
        for i in stride(from: 3, to: rgba.count, by: 4) { rgba[i] = i % 8 == 3 ? 0 : 255 } // some transparent
        let a = try Image(data: try encodePNG(rgba, width: 4, height: 3, channels: 4))
        XCTAssertEqual(a.sourceChannels, 4)
        let expected = stride(from: 0, to: rgba.count, by: 4).flatMap { Array(rgba[$0..<($0 + 3)]) }
        XCTAssertEqual(a.pixels, expected, "alpha is dropped, colour kept as stored")
    }

    func testRawPNG16BitReduced() throws {
        // 16-bit gray written without a gAMA chunk, by hand.
        let values = [0, 257, 0x8000, 0xFFFF, 0x1234, 0xABCD]
        let png = RawPNG.encode(width: 3, height: 2, bitDepth: 16, colorType: 0, samples: values)
        let image = try Image(data: png)
        XCTAssertEqual(image.width, 3)
        XCTAssertEqual(image.height, 2)
        for (i, v) in values.enumerated() {
            let got = Int(image.pixels[3 * i])
            XCTAssertLessThanOrEqual(abs(got - v / 257), 1, "sample \(i): \(got) vs \(v / 257)")
            XCTAssertEqual(image.pixels[3 * i + 1], image.pixels[3 * i])
        }
        // 8-bit RGB through the hand encoder decodes exactly.
        let rgb = Self.pattern(width: 5, height: 4, channels: 3).map(Int.init)
        let decoded = try Image(data: RawPNG.encode(width: 5, height: 4, bitDepth: 8, colorType: 2, samples: rgb))
        XCTAssertEqual(decoded.pixels.map(Int.init), rgb)
    }

    /// Adam7 PNGs decode to the same pixels as plain ones, whole or streamed, for 8- and
    /// 16-bit samples (libpng's simplified reader got 16-bit Adam7 images wrong).
    func testInterlacedPNG() throws {
        let model = try Model.builtin(arch: .small, classes: 3)
        for (bitDepth, colorType) in [(8, UInt8(2)), (16, UInt8(2)), (16, UInt8(6)), (8, UInt8(0))] {
            let channels = [0: 1, 2: 3, 6: 4][Int(colorType)]!
            let samples = (0..<(13 * 11 * channels)).map { ($0 * 7919 + 13) % (1 << bitDepth) }
            let plain = RawPNG.encode(width: 13, height: 11, bitDepth: bitDepth, colorType: colorType, samples: samples)
            let adam7 = RawPNG.encode(width: 13, height: 11, bitDepth: bitDepth, colorType: colorType, samples: samples,
                                      interlaced: true)
            let what = "\(bitDepth)-bit colour type \(colorType)"
            XCTAssertEqual(try Image(data: adam7).pixels, try Image(data: plain).pixels, what)
            let size = ImageSize(height: 40, width: 33)
            XCTAssert(try Image.preprocess(data: adam7, for: model, size: size).input
                      == Image(data: plain).preprocessed(for: model, size: size), what)
        }
    }

    func testTruncatedAndCorruptPNG() throws {
        let png = try encodePNG(Self.pattern(width: 32, height: 32, channels: 3), width: 32, height: 32, channels: 3)
        let dir = try temporaryDirectory(self)
        for cut in [png.count - 20, png.count / 2, 40, 12] {
            let url = dir.appendingPathComponent("cut\(cut).png")
            try write(Array(png.prefix(cut)), to: url)
            XCTAssertThrowsError(try Image(contentsOf: url), "cut at \(cut)") { error in
                let e = error as? MobileNetV3Error
                XCTAssertEqual(e?.code, .badImage)
                XCTAssert(e?.message.contains(url.path) == true, e?.message ?? "")
            }
        }
        var corrupt = RawPNG.encode(width: 4, height: 4, bitDepth: 8, colorType: 2,
                                    samples: [Int](repeating: 7, count: 48))
        corrupt[20] ^= 0x55 // inside IHDR: CRC mismatch
        XCTAssertThrowsError(try Image(data: corrupt, name: "corrupt.png")) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .badImage)
            XCTAssert((error as? MobileNetV3Error)?.message.contains("corrupt.png") == true)
        }
    }

    func testJPEG() throws {
        // A smooth image survives JPEG at high quality nearly unchanged.
        var rgb: [UInt8] = []
        for y in 0..<16 { for x in 0..<24 { rgb += [UInt8(x * 8), UInt8(y * 12), 128] } }
        let jpeg = try encodeJPEG(rgb, width: 24, height: 16, channels: 3, quality: 100)
        let dir = try temporaryDirectory(self)
        let url = dir.appendingPathComponent("smooth.jpg")
        try write(jpeg, to: url)
        let image = try Image(contentsOf: url)
        XCTAssertEqual(image.format, .jpeg)
        XCTAssertEqual(image.width, 24)
        XCTAssertEqual(image.height, 16)
        let diff = zip(image.pixels, rgb).map { abs(Int($0) - Int($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(diff, 12)

        let gray = [UInt8](repeating: 90, count: 8 * 8)
        let g = try Image(data: try encodeJPEG(gray, width: 8, height: 8, channels: 1))
        XCTAssertEqual(g.sourceChannels, 1)
        for i in 0..<64 {
            XCTAssertEqual(g.pixels[3 * i], g.pixels[3 * i + 1])
            XCTAssertEqual(g.pixels[3 * i], g.pixels[3 * i + 2])
            XCTAssertLessThanOrEqual(abs(Int(g.pixels[3 * i]) - 90), 2)
        }
    }

    func testTruncatedJPEG() throws {
        let jpeg = try encodeJPEG(Self.pattern(width: 64, height: 64, channels: 3), width: 64, height: 64, channels: 3)
        for cut in [jpeg.count / 2, 100, 3] {
            XCTAssertThrowsError(try Image(data: Array(jpeg.prefix(cut)), name: "cut.jpg"), "cut at \(cut)") { error in
                let e = error as? MobileNetV3Error
                XCTAssertEqual(e?.code, .badImage)
                XCTAssert(e?.message.contains("cut.jpg") == true, e?.message ?? "")
            }
        }
    }

    func testPPMAndPGM() throws {
        let rgb = Self.pattern(width: 3, height: 2, channels: 3)
        let ppm = Array("P6\n# a comment\n3 2\n255\n".utf8) + rgb
        let image = try Image(data: ppm)
        XCTAssertEqual(image.format, .ppm)
        XCTAssertEqual(image.pixels, rgb)

        let gray: [UInt8] = [0, 50, 100, 150, 200, 250]
        let pgm = Array("P5 2 3 255 ".utf8) + gray
        let g = try Image(data: pgm)
        XCTAssertEqual(g.format, .pgm)
        XCTAssertEqual(g.width, 2)
        XCTAssertEqual(g.height, 3)
        XCTAssertEqual(g.pixels, gray.flatMap { [$0, $0, $0] })

        // 16-bit samples, big-endian, reduced to 8 bits.
        let pgm16 = Array("P5\n2 1\n65535\n".utf8) + [0xFF, 0xFF, 0x80, 0x00]
        let w = try Image(data: pgm16)
        XCTAssertEqual(w.pixels, [255, 255, 255, 128, 128, 128])

        // Maximum value other than 255 is rescaled.
        let ppm15 = Array("P6 1 1 15\n".utf8) + [15, 0, 5]
        XCTAssertEqual(try Image(data: ppm15).pixels, [255, 0, 85])
    }

    func testNetpbmErrors() {
        let cases: [(String, [UInt8])] = [
            ("short pixels", Array("P6\n4 4\n255\n".utf8) + [1, 2, 3]),
            ("no maxval", Array("P6\n4 4\n".utf8)),
            ("bad width", Array("P5\nx 4 255\n".utf8)),
            ("zero size", Array("P5\n0 4 255\n".utf8)),
        ]
        for (name, bytes) in cases {
            XCTAssertThrowsError(try Image(data: bytes, name: name)) { error in
                let e = error as? MobileNetV3Error
                XCTAssertEqual(e?.code, .badImage, name)
                XCTAssert(e?.message.contains(name) == true, e?.message ?? "")
            }
        }
    }

    func testMissingEmptyAndUnsupported() throws {
        XCTAssertThrowsError(try Image(path: "/nonexistent/cat.png")) { error in
            let e = error as? MobileNetV3Error
            XCTAssertEqual(e?.code, .io)
            XCTAssert(e?.message.contains("/nonexistent/cat.png") == true)
        }
        let dir = try temporaryDirectory(self)
        XCTAssertThrowsError(try Image(contentsOf: dir)) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .io)
        }
        let empty = dir.appendingPathComponent("empty.png")
        try write([], to: empty)
        XCTAssertThrowsError(try Image(contentsOf: empty)) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .badImage)
        }
        let gif = dir.appendingPathComponent("a.gif")
        try write(Array("GIF89a....".utf8), to: gif)
        XCTAssertThrowsError(try Image(contentsOf: gif)) { error in
            let e = error as? MobileNetV3Error
            XCTAssertEqual(e?.code, .unsupportedImageFormat)
            XCTAssert(e?.message.contains("a.gif") == true)
        }
        XCTAssertThrowsError(try Image(data: Array("P3\n1 1\n255\n0 0 0\n".utf8))) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .unsupportedImageFormat)
        }
        XCTAssertThrowsError(try Image(width: 2, height: 2, channels: 3, pixels: [1, 2, 3])) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .shape)
        }
    }

    func testPreprocessingUsesModelMetadata() throws {
        let model = try Model.builtin(arch: .small, classes: 3)
        let image = try Image(width: 10, height: 6, channels: 1, pixels: [UInt8](repeating: 128, count: 60))
        let input = try image.preprocessed(for: model, size: ImageSize(height: 32, width: 40))
        XCTAssertEqual(input.count, 3 * 32 * 40)
        let p = model.preprocess
        for c in 0..<3 {
            let expected = (128 * p.scale - p.mean[c]) / p.std[c]
            XCTAssertEqual(input[c * 32 * 40 + 17], expected, accuracy: 1e-5)
        }
        let session = try Session(model: model, options: .init(layout: .nhwc))
        let nhwc = try session.preprocess(image)
        XCTAssertEqual(nhwc.count, 3 * 224 * 224)
        XCTAssertEqual(nhwc[1], (128 * p.scale - p.mean[1]) / p.std[1], accuracy: 1e-5)
    }

    // MARK: Bounded decoding

    /// The bound every PNG or JPEG of up to 64 KiB must stay within, decoded or refused.
    static let memoryBound = 64 << 20
    static let timeBound = 1.0

    /// The hostile files of the regression tests, each with the size it claims.
    static var hostileFiles: [(name: String, bytes: [UInt8], width: Int, height: Int)] {
        [
            ("progressive-65500.jpg", HostileImages.truncatedJPEG(width: 65500, height: 65500, progressive: true), 65500, 65500),
            ("progressive-30000.jpg", HostileImages.truncatedJPEG(width: 30000, height: 30000, progressive: true), 30000, 30000),
            ("baseline-16384.jpg", HostileImages.truncatedJPEG(width: 16384, height: 16384, progressive: false), 16384, 16384),
            ("zero-16384.png", HostileImages.zeroGrayPNG(width: 16384, height: 16384), 16384, 16384),
            ("header-65535x4096.png", HostileImages.headerOnlyPNG(width: 65535, height: 4096), 65535, 4096),
        ]
    }

    /// Peak resident memory of this process so far (a high-water mark), in bytes.
    static func peakRSS() -> Int {
        var usage = rusage()
        #if os(Linux)
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        #if canImport(Darwin)
        return Int(usage.ru_maxrss)
        #else
        return Int(usage.ru_maxrss) * 1024
        #endif
    }

    /// Runs `body` and checks that it took at most `timeBound` and raised the peak resident
    /// memory by at most `memoryBound`. (The peak is a high-water mark, so this catches a
    /// decode that goes past the bound; the exact attribution is done in child processes
    /// by testHostileFilesThroughTheCLI.)
    func assertBounded<T>(_ what: String, seconds: Double = ImageTests.timeBound,
                          _ body: () throws -> T) rethrows -> T {
        let before = Self.peakRSS()
        let start = Date()
        let result = try body()
        let elapsed = Date().timeIntervalSince(start)
        let grown = Self.peakRSS() - before
        XCTAssertLessThanOrEqual(elapsed, seconds, "\(what) took \(elapsed) s")
        XCTAssertLessThanOrEqual(grown, Self.memoryBound, "\(what) raised the peak memory by \(grown >> 20) MiB")
        return result
    }

    func testHostileFilesAreSmall() {
        let sizes = Self.hostileFiles.map { ($0.name, $0.bytes.count) }
        for (name, count) in sizes { XCTAssertLessThanOrEqual(count, 64 << 10, name) }
        XCTAssertEqual(sizes.first { $0.0 == "header-65535x4096.png" }?.1, 69)
    }

    /// With the default limit every hostile file is refused from its header, and the message
    /// names the claimed size and the limit.
    func testHostileFilesAreRefusedAsTooLarge() throws {
        for file in Self.hostileFiles {
            try assertBounded(file.name) {
                XCTAssertThrowsError(try Image(data: file.bytes, name: file.name), file.name) { error in
                    let e = error as? MobileNetV3Error
                    XCTAssertEqual(e?.code, .imageTooLarge, file.name)
                    let message = e?.message ?? ""
                    XCTAssert(message.contains(file.name), message)
                    XCTAssert(message.contains("\(file.width)x\(file.height)"), message)
                    XCTAssert(message.contains("\(Image.defaultMaxPixels)"), message)
                }
            }
        }
    }

    /// With the limit raised past their claims, the truncated files are reported as corrupt at
    /// the first missing data, still within the bounds. Decoded whole, a progressive (4:2:0)
    /// JPEG needs 6 bytes per pixel (coefficients and image) of the 4 the limit allows: at a
    /// limit of its own size it is refused as too large before its scans are read, and at 1.5
    /// times its size (where the pixel limit can go that far) it is corrupt too.
    func testHostileFilesWithARaisedLimitAreCorrupt() throws {
        let model = try Model.builtin(arch: .small, classes: 3)
        for file in Self.hostileFiles where file.name != "zero-16384.png" {
            let limit = file.width * file.height
            try assertBounded(file.name) {
                XCTAssertThrowsError(try Image(data: file.bytes, name: file.name, maxPixels: limit), file.name) { error in
                    let e = error as? MobileNetV3Error
                    if file.name.hasPrefix("progressive") {
                        XCTAssertEqual(e?.code, .imageTooLarge, "\(file.name): \(error)")
                        XCTAssert(e?.message.contains("decoded whole") == true, "\(file.name): \(error)")
                    } else {
                        XCTAssertEqual(e?.code, .badImage, "\(file.name): \(error)")
                    }
                }
                if file.name.hasPrefix("progressive"), limit * 3 / 2 <= 65535 * 65535 {
                    XCTAssertThrowsError(try Image(data: file.bytes, name: file.name, maxPixels: limit * 3 / 2),
                                         file.name) { error in
                        XCTAssertEqual((error as? MobileNetV3Error)?.code, .badImage, "\(file.name): \(error)")
                    }
                }
                XCTAssertThrowsError(try Image.preprocess(data: file.bytes, name: file.name, for: model,
                                                          maxPixels: limit), file.name) { error in
                    XCTAssertEqual((error as? MobileNetV3Error)?.code, .badImage, "\(file.name): \(error)")
                }
            }
        }
    }

    /// The 32 KiB all-zero 16384 x 16384 PNG is valid: with the limit raised it is classified
    /// row by row in little memory (decoding it whole would take 768 MiB).
    func testZeroPNGWithARaisedLimitStreams() throws {
        let png = HostileImages.zeroGrayPNG(width: 16384, height: 16384)
        let model = try Model.builtin(arch: .small, classes: 3)
        let (info, input) = try assertBounded("streaming 16384x16384", seconds: 60) {
            try Image.preprocess(data: png, name: "zero.png", for: model, maxPixels: 16384 * 16384)
        }
        XCTAssertEqual(info, Image.Info(width: 16384, height: 16384, format: .png, sourceChannels: 1))
        let p = model.preprocess
        let plane = input.count / 3
        for c in 0..<3 {
            let expected = (0 * p.scale - p.mean[c]) / p.std[c]
            XCTAssert(input[(c * plane)..<((c + 1) * plane)].allSatisfy { $0 == expected }, "channel \(c)")
        }
    }

    /// A valid, tiny PNG at the default limit (4096 x 4096) decodes whole within the bounds.
    func testZeroPNGAtTheDefaultLimitDecodes() throws {
        let png = HostileImages.zeroGrayPNG(width: 4096, height: 4096)
        XCTAssertLessThanOrEqual(png.count, 64 << 10)
        let image = try assertBounded("4096x4096") { try Image(data: png) }
        XCTAssertEqual(image.width, 4096)
        XCTAssertEqual(image.pixels.count, 4096 * 4096 * 3)
        XCTAssertEqual(image.pixels.first, 0)
        XCTAssertEqual(image.pixels.last, 0)
        XCTAssertThrowsError(try Image(data: HostileImages.zeroGrayPNG(width: 4097, height: 4096))) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .imageTooLarge)
        }
    }

    /// The limit applies to every format, is exact, and can be lowered and raised.
    func testPixelLimit() throws {
        let rgb = Self.pattern(width: 7, height: 5, channels: 3)
        let files: [(String, [UInt8])] = [
            ("a.png", try encodePNG(rgb, width: 7, height: 5, channels: 3)),
            ("a.jpg", try encodeJPEG(rgb, width: 7, height: 5, channels: 3)),
            ("a.ppm", Array("P6 7 5 255\n".utf8) + rgb),
        ]
        let model = try Model.builtin(arch: .small, classes: 3)
        for (name, bytes) in files {
            XCTAssertEqual(try Image(data: bytes, name: name, maxPixels: 35).width, 7, name)
            XCTAssertEqual(try Image.preprocess(data: bytes, name: name, for: model, maxPixels: 35).info.height, 5, name)
            XCTAssertThrowsError(try Image(data: bytes, name: name, maxPixels: 34), name) { error in
                let e = error as? MobileNetV3Error
                XCTAssertEqual(e?.code, .imageTooLarge, name)
                XCTAssert(e?.message.contains("7x5") == true && e?.message.contains("34") == true, e?.message ?? "")
            }
            XCTAssertThrowsError(try Image.preprocess(data: bytes, name: name, for: model, maxPixels: 34), name) { error in
                XCTAssertEqual((error as? MobileNetV3Error)?.code, .imageTooLarge, name)
            }
            XCTAssertThrowsError(try Image(data: bytes, name: name, maxPixels: 0), name) { error in
                XCTAssertEqual((error as? MobileNetV3Error)?.code, .invalidArgument, name)
            }
        }
        // No side may pass 65535 pixels, whatever the limit.
        XCTAssertThrowsError(try Image(data: HostileImages.headerOnlyPNG(width: 65536, height: 1), maxPixels: 1 << 40)) { error in
            let e = error as? MobileNetV3Error
            XCTAssertEqual(e?.code, .imageTooLarge)
            XCTAssert(e?.message.contains("65535") == true, e?.message ?? "")
        }
    }

    /// A damaged header is corrupt, not too large, even when the damage makes it claim a
    /// large size.
    func testDamagedPNGHeaderIsCorrupt() {
        var png = HostileImages.headerOnlyPNG(width: 8, height: 8)
        png[16] = 0x7F // width 0x7F000008, CRC no longer matches
        XCTAssertThrowsError(try Image(data: png)) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .badImage)
        }
    }

    /// A progressive JPEG with more than 100 scans is refused; one with fewer decodes.
    func testJPEGScanLimit() throws {
        let few = HostileImages.progressiveJPEG(acCoefficients: 40)   // 82 scans
        let image = try Image(data: few, name: "few.jpg")
        XCTAssertEqual(image.width, 8)
        XCTAssert(image.pixels.allSatisfy { $0 == 128 }, "a flat gray block")
        let many = HostileImages.progressiveJPEG(acCoefficients: 63)  // 128 scans
        XCTAssertThrowsError(try Image(data: many, name: "many.jpg")) { error in
            let e = error as? MobileNetV3Error
            XCTAssertEqual(e?.code, .badImage)
            XCTAssert(e?.message.contains("scans") == true, e?.message ?? "")
        }
    }

    /// The coefficients of a progressive JPEG may take 3 bytes per pixel of the limit when
    /// it is read row by row. A 32 KB valid 4096 x 4096 4:4:4 file (one DC scan) would need
    /// 96 MiB: refused by default. Gray at the full limit fits (2 bytes per pixel) and
    /// streams within bounds.
    func testProgressiveJPEGCoefficientBudget() throws {
        let colour = HostileImages.blankProgressiveJPEG(width: 4096, height: 4096, components: 3)
        XCTAssertLessThanOrEqual(colour.count, 64 << 10)
        try assertBounded("4:4:4") {
            XCTAssertThrowsError(try Image(data: colour, name: "c.jpg")) { error in
                let e = error as? MobileNetV3Error
                XCTAssertEqual(e?.code, .imageTooLarge)
                XCTAssert(e?.message.contains("coefficients") == true, e?.message ?? "")
            }
        }
        let model = try Model.builtin(arch: .small, classes: 3)
        let gray = HostileImages.blankProgressiveJPEG(width: 4096, height: 4096, components: 1)
        let (info, _) = try assertBounded("gray") { try Image.preprocess(data: gray, for: model) }
        XCTAssertEqual(info.width, 4096)
        // 64 x 64 4:4:4: 24 KiB of coefficients. Row by row they may take 3 bytes per pixel
        // of the limit; decoded whole, they and the 12 KiB image together 4 bytes per pixel.
        let small = HostileImages.blankProgressiveJPEG(width: 64, height: 64, components: 3)
        XCTAssert(try Image.preprocess(data: small, for: model, maxPixels: 2 * 64 * 64).input.count > 0)
        XCTAssertThrowsError(try Image.preprocess(data: small, for: model, maxPixels: 2 * 64 * 64 - 1)) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .imageTooLarge)
        }
        XCTAssert(try Image(data: small, maxPixels: 9 * 64 * 64 / 4).pixels.allSatisfy { $0 == 128 })
        XCTAssertThrowsError(try Image(data: small, maxPixels: 9 * 64 * 64 / 4 - 1)) { error in
            let e = error as? MobileNetV3Error
            XCTAssertEqual(e?.code, .imageTooLarge)
            XCTAssert(e?.message.contains("decoded whole") == true, e?.message ?? "")
            XCTAssert(e?.message.contains("row by row") == true, e?.message ?? "")
        }
    }

    func testProgressiveJPEG() throws {
        var rgb: [UInt8] = []
        for y in 0..<40 { for x in 0..<56 { rgb += [UInt8(x * 4), UInt8(y * 6), 100] } }
        let progressive = try encodeJPEG(rgb, width: 56, height: 40, channels: 3, quality: 100, progressive: true)
        let image = try Image(data: progressive, name: "p.jpg")
        XCTAssertEqual(image.width, 56)
        XCTAssertEqual(image.height, 40)
        let diff = zip(image.pixels, rgb).map { abs(Int($0) - Int($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(diff, 12)
        for cut in [progressive.count - 2, progressive.count / 2, 200] {
            XCTAssertThrowsError(try Image(data: Array(progressive.prefix(cut)), name: "cut.jpg"), "cut at \(cut)") { error in
                XCTAssertEqual((error as? MobileNetV3Error)?.code, .badImage)
            }
        }
    }

    /// Resizing while decoding gives exactly the floats of decoding whole and then
    /// preprocessing, for every format, size and layout.
    func testStreamingPreprocessingMatchesWholeImage() throws {
        let model = try Model.builtin(arch: .small, classes: 3)
        let rgb = Self.pattern(width: 40, height: 33, channels: 3)
        var rgba = Self.pattern(width: 40, height: 33, channels: 4)
        for i in stride(from: 3, to: rgba.count, by: 4) { rgba[i] = UInt8(i % 256) }
        let gray16 = (0..<(40 * 33)).map { $0 * 71 % 65536 }
        let files: [(String, [UInt8])] = [
            ("rgb.png", try encodePNG(rgb, width: 40, height: 33, channels: 3)),
            ("rgba.png", try encodePNG(rgba, width: 40, height: 33, channels: 4)),
            ("gray16.png", RawPNG.encode(width: 40, height: 33, bitDepth: 16, colorType: 0, samples: gray16)),
            ("baseline.jpg", try encodeJPEG(rgb, width: 40, height: 33, channels: 3)),
            ("progressive.jpg", try encodeJPEG(rgb, width: 40, height: 33, channels: 3, progressive: true)),
            ("gray.jpg", try encodeJPEG(Self.pattern(width: 40, height: 33, channels: 1), width: 40, height: 33, channels: 1)),
            ("rgb.ppm", Array("P6 40 33 255\n".utf8) + rgb),
        ]
        let sizes: [ImageSize?] = [nil, ImageSize(height: 33, width: 40), ImageSize(height: 32, width: 50),
                                   ImageSize(height: 64, width: 32)]
        for (name, bytes) in files {
            let whole = try Image(data: bytes, name: name)
            for size in sizes {
                for layout in [Layout.nchw, .nhwc] {
                    let expected = try whole.preprocessed(for: model, size: size, layout: layout)
                    let (info, streamed) = try Image.preprocess(data: bytes, name: name, for: model, size: size, layout: layout)
                    XCTAssertEqual(info, whole.info, name)
                    XCTAssert(streamed == expected, "\(name) at \(String(describing: size)) \(layout): differs")
                }
            }
        }
        // A truncated file is an error in the streaming path too, even when the rows it
        // lacks are not read by the resize.
        let png = try encodePNG(rgb, width: 40, height: 33, channels: 3)
        XCTAssertThrowsError(try Image.preprocess(data: Array(png.prefix(png.count - 30)), for: model,
                                                  size: ImageSize(height: 32, width: 32))) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .badImage)
        }
        // The session helpers give the same classification as classify(image:).
        let dir = try temporaryDirectory(self)
        let url = dir.appendingPathComponent("rgb.png")
        try write(png, to: url)
        let session = try Session(model: model)
        let (info, classes) = try session.classify(imageAt: url.path, top: 3)
        XCTAssertEqual(info.width, 40)
        XCTAssertEqual(classes, try session.classify(image: Image(contentsOf: url), top: 3))
    }

    // MARK: Bounded decoding, measured in child processes

    struct ChildRun {
        var status: Int32
        var stderr: String
        var maxRSS: Int
        var seconds: Double
    }

    /// Runs `executable` with `arguments` (through `/bin/sh -c` with `ulimit -v` when
    /// `virtualMemoryKiB` is given) and reports its own peak resident memory, from wait4.
    func runMeasured(_ executable: String, _ arguments: [String], virtualMemoryKiB: Int? = nil,
                     environment: [String: String] = [:]) throws -> ChildRun {
        var argv = [executable] + arguments
        var path = executable
        if let limit = virtualMemoryKiB {
            path = "/bin/sh"
            argv = ["/bin/sh", "-c", "ulimit -v \(limit) && exec \"$0\" \"$@\""] + argv
        }
        let dir = try temporaryDirectory(self)
        let errPath = dir.appendingPathComponent("stderr.txt").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cEnv { free(p) } }
        var pid = pid_t()
        let start = Date()
        let spawned = posix_spawn(&pid, path, &actions, nil, cArgs, cEnv)
        guard spawned == 0 else { throw XCTSkip("cannot start \(path): error \(spawned)") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let seconds = Date().timeIntervalSince(start)
        #if canImport(Darwin)
        let rss = Int(usage.ru_maxrss)
        #else
        let rss = Int(usage.ru_maxrss) * 1024
        #endif
        let exit = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return ChildRun(status: exit, stderr: err, maxRSS: rss, seconds: seconds)
    }

    /// Each hostile file is classified by the `mnv3` tool in its own process; its peak memory
    /// and time are compared with those of refusing a 40-byte file (same start-up: the
    /// built-in model and a session). Refused by default, corrupt with the limit raised, the
    /// all-zero PNG classified with the limit raised: all within 64 MiB and 1 s more. The
    /// processes also run with 1 GB of address space, so that a large allocation fails even
    /// where its pages would never be touched (and so not show in the resident memory):
    /// nothing large may be allocated before pixel data arrives. The exception is a
    /// progressive JPEG with the limit raised past its claim: libjpeg reserves the
    /// coefficient buffers for the claimed size before it reads the first scan (it touches
    /// only what the scans fill).
    func testHostileFilesThroughTheCLI() throws {
        guard let binary = CLITests.binary?.path else {
            throw XCTSkip("the mnv3 executable was not found next to the tests; run `swift build` first")
        }
        let dir = try temporaryDirectory(self)
        let junk = dir.appendingPathComponent("junk.png")
        try write(Array(RawPNG.encode(width: 2, height: 2, bitDepth: 8, colorType: 0, samples: [1, 2, 3, 4]).prefix(40)), to: junk)
        let common = ["classify", "--model", "builtin:small", "--top", "1"]
        var virtualMemory: Int? = FileManager.default.isExecutableFile(atPath: "/bin/sh") ? 1_000_000 : nil
        if let limit = virtualMemory, try runMeasured(binary, common + [junk.path], virtualMemoryKiB: limit).stderr
            .contains("junk.png") == false {
            virtualMemory = nil // the tool cannot even start in 1 GB here
        }
        // The best of a few runs, so that a slow start on a busy machine does not count.
        var base = try runMeasured(binary, common + [junk.path], virtualMemoryKiB: virtualMemory)
        for _ in 0..<2 {
            let again = try runMeasured(binary, common + [junk.path], virtualMemoryKiB: virtualMemory)
            base.seconds = min(base.seconds, again.seconds)
            base.maxRSS = min(base.maxRSS, again.maxRSS)
        }
        XCTAssertEqual(base.status, 1, base.stderr)
        for file in Self.hostileFiles {
            let url = dir.appendingPathComponent(file.name)
            try write(file.bytes, to: url)
            let pixels = "\(file.width * file.height)"
            for (limit, expect) in [(nil, "too large"), (pixels, file.name == "zero-16384.png" ? "" : "corrupt")] {
                let reserves = limit != nil && file.name.hasPrefix("progressive")
                let run = try runMeasured(binary, common + (limit.map { ["--max-pixels", $0] } ?? []) + [url.path],
                                          virtualMemoryKiB: reserves ? nil : virtualMemory)
                let what = "\(file.name) with --max-pixels \(limit ?? "default")"
                if expect.isEmpty {
                    XCTAssertEqual(run.status, 0, "\(what): \(run.stderr)")
                    // A valid 268-megapixel image takes its time to decode; its memory is bounded.
                    XCTAssertLessThanOrEqual(run.maxRSS - base.maxRSS, Self.memoryBound, "\(what): \(run.maxRSS >> 20) MiB")
                    continue
                }
                XCTAssertEqual(run.status, 1, what)
                XCTAssert(run.stderr.contains(expect), "\(what): \(run.stderr)")
                XCTAssertLessThanOrEqual(run.maxRSS - base.maxRSS, Self.memoryBound,
                                         "\(what): peak \(run.maxRSS >> 20) MiB, baseline \(base.maxRSS >> 20) MiB")
                XCTAssertLessThanOrEqual(run.seconds - base.seconds, Self.timeBound,
                                         "\(what): \(run.seconds) s, baseline \(base.seconds) s")
            }
        }
    }

    /// Decoding whole holds the image; a progressive JPEG also holds its coefficients while
    /// its rows are decoded. Both together stay within 4 bytes per pixel of the limit (64 MiB
    /// by default), measured in child processes that decode a file with `Image(path:)` and
    /// classify it with `Model.classify(image:)`: a 33 KB valid progressive 4:2:0 JPEG
    /// claiming 4096 x 4096, the default limit, would take 48 MiB of coefficients beside
    /// 48 MiB of pixels, and is refused with a message saying to decode it row by row (which
    /// classifies it within bounds); one of 2896 x 2896 (24 + 24 MiB) decodes whole.
    func testWholeDecodeMemoryIsBounded() throws {
        let argv0 = CommandLine.arguments[0]
        guard argv0.hasSuffix(".xctest"), FileManager.default.isExecutableFile(atPath: argv0) else {
            throw XCTSkip("the test bundle cannot be run as a child process here (\(argv0))")
        }
        let child = ["MobileNetV3Tests.ImageTests/testWholeDecodeChild"]
        let dir = try temporaryDirectory(self)
        let tiny = dir.appendingPathComponent("tiny.png")
        try write(RawPNG.encode(width: 8, height: 8, bitDepth: 8, colorType: 0, samples: [Int](repeating: 9, count: 64)),
                  to: tiny)
        var base = try runMeasured(argv0, child, environment: ["MNV3_WHOLE_DECODE_CHILD": tiny.path])
        XCTAssertEqual(base.status, 0, base.stderr)
        XCTAssert(base.stderr.contains("decoded 8x8"), base.stderr)
        for _ in 0..<2 {
            let again = try runMeasured(argv0, child, environment: ["MNV3_WHOLE_DECODE_CHILD": tiny.path])
            base.maxRSS = min(base.maxRSS, again.maxRSS)
        }
        let hostile = HostileImages.blankProgressiveJPEG(width: 4096, height: 4096, components: 3, subsampled: true)
        XCTAssertLessThanOrEqual(hostile.count, 64 << 10)
        let fits = HostileImages.blankProgressiveJPEG(width: 2896, height: 2896, components: 3, subsampled: true)
        for (name, bytes, expect) in [("p4096.jpg", hostile, "refused: image too large"), ("p2896.jpg", fits, "decoded 2896x2896")] {
            let url = dir.appendingPathComponent(name)
            try write(bytes, to: url)
            let run = try runMeasured(argv0, child, environment: ["MNV3_WHOLE_DECODE_CHILD": url.path])
            XCTAssertEqual(run.status, 0, "\(name): \(run.stderr)")
            XCTAssert(run.stderr.contains(expect), "\(name): \(run.stderr)")
            XCTAssertLessThanOrEqual(run.maxRSS - base.maxRSS, Self.memoryBound,
                                     "\(name): peak \(run.maxRSS >> 20) MiB, baseline \(base.maxRSS >> 20) MiB")
        }
        XCTAssertThrowsError(try Image(data: hostile, name: "p4096.jpg")) { error in
            let e = error as? MobileNetV3Error
            XCTAssertEqual(e?.code, .imageTooLarge)
            for text in ["p4096.jpg", "decoded whole", "48 MiB", "64 MiB", "16777216", "row by row"] {
                XCTAssert(e?.message.contains(text) == true, "\(text): \(e?.message ?? "")")
            }
        }
        // Row by row, the same file classifies within the bound.
        let model = try Model.builtin(arch: .small, classes: 3)
        let (info, _) = try assertBounded("p4096.jpg row by row", seconds: 10) {
            try Image.preprocess(data: hostile, name: "p4096.jpg", for: model)
        }
        XCTAssertEqual(info.width, 4096)
    }

    /// The child half of testWholeDecodeMemoryIsBounded: with MNV3_WHOLE_DECODE_CHILD set,
    /// decodes that file whole, classifies it and says what happened on standard error
    /// (nothing to do otherwise).
    func testWholeDecodeChild() throws {
        guard let path = ProcessInfo.processInfo.environment["MNV3_WHOLE_DECODE_CHILD"] else { return }
        let model = try Model.builtin(arch: .small, classes: 3)
        let line: String
        do throws(MobileNetV3Error) {
            let image = try Image(path: path)
            let top = try model.classify(image: image, top: 1)
            line = "decoded \(image.width)x\(image.height), class \(top[0].index)"
        } catch {
            line = "refused: \(error.code): \(error.message)"
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// A failed allocation in the decoder is reported as out of memory, not as corrupt data:
    /// a progressive JPEG claiming 30000 x 30000 (2.6 GB of coefficients) with the limit
    /// raised, in a process limited to 1.5 GB of address space.
    func testOutOfMemoryIsReportedAsSuch() throws {
        guard let binary = CLITests.binary?.path else {
            throw XCTSkip("the mnv3 executable was not found next to the tests; run `swift build` first")
        }
        guard FileManager.default.isExecutableFile(atPath: "/bin/sh") else { throw XCTSkip("no /bin/sh") }
        let dir = try temporaryDirectory(self)
        let url = dir.appendingPathComponent("p.jpg")
        try write(HostileImages.truncatedJPEG(width: 30000, height: 30000, progressive: true), to: url)
        let run = try runMeasured(binary, ["classify", "--model", "builtin:small", "--max-pixels", "900000000", url.path],
                                  virtualMemoryKiB: 1_500_000)
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssert(run.stderr.contains("out of memory"), run.stderr)
        XCTAssertFalse(run.stderr.contains("corrupt"), run.stderr)
    }
}

// MARK: Hostile images, built byte by byte

enum HostileImages {
    /// A JPEG that claims width x height (3 components, 4:2:0) and ends a few MCUs into its
    /// first scan: 259 bytes progressive (SOF2, a DC scan), 639 bytes baseline (SOF0).
    static func truncatedJPEG(width: Int, height: Int, progressive: Bool) -> [UInt8] {
        var out: [UInt8] = [0xFF, 0xD8]
        out += [0xFF, 0xDB, 0x00, 0x43, 0x00] + [UInt8](repeating: 1, count: 64)          // DQT, all ones
        out += [0xFF, progressive ? 0xC2 : 0xC0, 0x00, 0x11, 0x08,
                UInt8(height >> 8), UInt8(height & 0xFF), UInt8(width >> 8), UInt8(width & 0xFF), 3,
                1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0]                                          // SOF
        let table: [UInt8] = [1] + [UInt8](repeating: 0, count: 15) + [0]                     // one 1-bit code: symbol 0
        out += [0xFF, 0xC4, 0x00, 0x14, 0x00] + table                                          // DHT: DC 0
        if !progressive { out += [0xFF, 0xC4, 0x00, 0x14, 0x10] + table }                     // DHT: AC 0 (EOB)
        out += [0xFF, 0xDA, 0x00, 0x0C, 3, 1, 0x00, 2, 0x00, 3, 0x00, 0, progressive ? 0 : 63, 0] // SOS
        let total = progressive ? 259 : 639
        out += [UInt8](repeating: 0, count: total - out.count)                                 // zero blocks, then the end
        return out
    }

    /// A valid 1-bit grayscale PNG, all zero, compressed with one dynamic-Huffman deflate
    /// block of 258-byte matches (2 bits each): 16384 x 16384 is about 32 KB.
    static func zeroGrayPNG(width: Int, height: Int) -> [UInt8] {
        let total = height * (1 + (width + 7) / 8) // filter byte + packed row, all zero
        var bits = BitWriter()
        bits.put(1, 1) // BFINAL
        bits.put(2, 2) // BTYPE: dynamic Huffman
        bits.put(286 - 257, 5) // HLIT
        bits.put(1 - 1, 5)     // HDIST
        bits.put(18 - 4, 4)    // HCLEN
        // Code-length code: symbols 0, 1, 2 and 18 get 2 bits each (codes 00, 01, 10, 11).
        let order = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1]
        for symbol in order { bits.put([0, 1, 2, 18].contains(symbol) ? 2 : 0, 3) }
        func length(_ symbol: Int) { bits.putCode([0: 0, 1: 1, 2: 2, 18: 3][symbol]!, 2) }
        func zeros(_ count: Int) { length(18); bits.put(count - 11, 7) }
        // Literal/length lengths: 0 -> 2, 256 (end) -> 2, 285 (length 258) -> 1; distance 0 -> 1.
        length(2); zeros(138); zeros(117)   // literal 0; 1...255
        length(2); zeros(28)                // 256; 257...284
        length(1)                           // 285
        length(1)                           // distance code 0 (distance 1)
        // Canonical codes: 285 -> 0, literal 0 -> 10, end -> 11; distance 0 -> 0.
        bits.putCode(0b10, 2) // the first zero byte, a literal
        for _ in 0..<((total - 1) / 258) { bits.putCode(0, 1); bits.putCode(0, 1) } // 258 zeros at distance 1
        for _ in 0..<((total - 1) % 258) { bits.putCode(0b10, 2) }
        bits.putCode(0b11, 2) // end of block
        bits.flush()
        let adler = UInt32(total % 65521) << 16 | 1
        let zlib = [0x78, 0x01] + bits.bytes + RawPNG.be32(adler)
        let ihdr = RawPNG.be32(UInt32(width)) + RawPNG.be32(UInt32(height)) + [1, 0, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + RawPNG.chunk("IHDR", ihdr)
            + RawPNG.chunk("IDAT", zlib) + RawPNG.chunk("IEND", [])
    }

    /// 69 bytes: an 8-bit RGBA header claiming width x height, 12 bytes of a zlib stream
    /// that stops at once, and IEND.
    static func headerOnlyPNG(width: Int, height: Int) -> [UInt8] {
        let ihdr = RawPNG.be32(UInt32(width)) + RawPNG.be32(UInt32(height)) + [8, 6, 0, 0, 0]
        let idat: [UInt8] = [0x78, 0x01, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0, 0, 0, 0, 0]
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + RawPNG.chunk("IHDR", ihdr)
            + RawPNG.chunk("IDAT", idat) + RawPNG.chunk("IEND", [])
    }

    /// A valid progressive JPEG, flat gray (128), with `components` components at full
    /// resolution (or, `subsampled`, 4:2:0: the first at full resolution, the others at half
    /// in each direction) and a single scan: the DC of the first component, 1 bit per block.
    static func blankProgressiveJPEG(width: Int, height: Int, components: Int,
                                     subsampled: Bool = false) -> [UInt8] {
        var out: [UInt8] = [0xFF, 0xD8]
        out += [0xFF, 0xDB, 0x00, 0x43, 0x00] + [UInt8](repeating: 1, count: 64)
        out += [0xFF, 0xC2, 0x00, UInt8(8 + 3 * components), 0x08,
                UInt8(height >> 8), UInt8(height & 0xFF), UInt8(width >> 8), UInt8(width & 0xFF), UInt8(components)]
        for c in 1...components { out += [UInt8(c), subsampled && c == 1 ? 0x22 : 0x11, 0] }
        out += [0xFF, 0xC4, 0x00, 0x14, 0x00, 1] + [UInt8](repeating: 0, count: 15) + [0]
        out += [0xFF, 0xDA, 0x00, 0x08, 1, 1, 0x00, 0, 0, 0]
        let blocks = ((width + 7) / 8) * ((height + 7) / 8)
        out += [UInt8](repeating: 0, count: (blocks + 7) / 8)
        return out + [0xFF, 0xD9]
    }

    /// An 8 x 8 gray progressive JPEG, all zero coefficients (flat 128), with a valid
    /// progression of 2 + 2 * acCoefficients scans: DC first and refinement, then for each
    /// of the first AC coefficients a first scan and a refinement.
    static func progressiveJPEG(acCoefficients: Int) -> [UInt8] {
        var out: [UInt8] = [0xFF, 0xD8]
        out += [0xFF, 0xDB, 0x00, 0x43, 0x00] + [UInt8](repeating: 1, count: 64)
        out += [0xFF, 0xC2, 0x00, 0x0B, 0x08, 0, 8, 0, 8, 1, 1, 0x11, 0]
        let table: [UInt8] = [1] + [UInt8](repeating: 0, count: 15) + [0]
        out += [0xFF, 0xC4, 0x00, 0x14, 0x00] + table // DC: category 0
        out += [0xFF, 0xC4, 0x00, 0x14, 0x10] + table // AC: end of block
        func scan(_ start: Int, _ end: Int, _ high: Int, _ low: Int) {
            // One block: a 0 bit (the only code, or the refinement bit), padded with ones.
            out += [0xFF, 0xDA, 0x00, 0x08, 1, 1, 0x00, UInt8(start), UInt8(end), UInt8(high << 4 | low), 0x7F]
        }
        scan(0, 0, 0, 1)
        scan(0, 0, 1, 0)
        for k in 1...acCoefficients {
            scan(k, k, 0, 1)
            scan(k, k, 1, 0)
        }
        return out + [0xFF, 0xD9]
    }
}

/// Bits for a deflate stream: values least significant bit first, Huffman codes most
/// significant bit first.
struct BitWriter {
    var bytes: [UInt8] = []
    private var current: UInt8 = 0
    private var used = 0

    mutating func put(_ value: Int, _ count: Int) {
        for i in 0..<count { bit((value >> i) & 1) }
    }

    mutating func putCode(_ code: Int, _ length: Int) {
        for i in stride(from: length - 1, through: 0, by: -1) { bit((code >> i) & 1) }
    }

    mutating func flush() {
        if used > 0 { bytes.append(current) }
        current = 0
        used = 0
    }

    private mutating func bit(_ b: Int) {
        current |= UInt8(b) << used
        used += 1
        if used == 8 { flush() }
    }
}
