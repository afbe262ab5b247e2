import CMNV3Image
import Foundation
import XCTest
import MobileNetV3

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
}
