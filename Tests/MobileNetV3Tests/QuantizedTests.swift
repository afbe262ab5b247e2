import Foundation
import XCTest
import CMobileNetV3
import MobileNetV3

/// int8 models: the built-in int8 networks, precision and quantization reporting, float and
/// quantized input, and (when ../shared is present) TFLite's int8 and uint8 models.
final class QuantizedTests: XCTestCase {
    func testPrecisionReported() throws {
        let float = try Model.builtin(arch: .small, widthMultiplier: 0.5, classes: 10)
        XCTAssertEqual(float.precision, .float32)
        XCTAssertNil(float.inputQuantization)
        XCTAssertNil(float.logitsQuantization)

        let int8 = try Model.builtin(arch: .small, widthMultiplier: 0.5, classes: 10, precision: .int8)
        XCTAssertEqual(int8.precision, .int8)
        let input = try XCTUnwrap(int8.inputQuantization)
        let logits = try XCTUnwrap(int8.logitsQuantization)
        XCTAssertEqual(input.type, .int8)
        XCTAssertEqual(logits.type, .int8)
        XCTAssert(input.scale > 0 && input.scale.isFinite)
        XCTAssert(Quantization.ElementType.int8.range.contains(input.zeroPoint))
        // The same architecture: only the arithmetic differs.
        XCTAssertEqual(int8.parameters, float.parameters)
        XCTAssertEqual(int8.layerCount, float.layerCount)
        XCTAssertEqual(try int8.macs(), try float.macs())

        XCTAssertEqual(Precision(name: "INT8"), .int8)
        XCTAssertEqual(Precision(name: "fp32"), .float32)
        XCTAssertNil(Precision(name: "int4"))
    }

    func testBuiltinInt8GivesFiniteLogits() throws {
        for arch in [Architecture.large, .small] {
            let model = try Model.builtin(arch: arch, precision: .int8)
            let session = try Session(model: model, options: .init(height: 96, width: 96))
            let logits = try session.logits(for: randomFloats(session.inputShape.reduce(1, *), seed: 5))
            XCTAssertEqual(logits.count, 1000)
            XCTAssert(logits.allSatisfy(\.isFinite), "\(arch)")
            // Quantized logits take more than one value: the network is not saturated.
            XCTAssertGreaterThan(Set(logits).count, 10, "\(arch)")
        }
    }

    func testQuantizedInputEqualsFloatPath() throws {
        let model = try Model.builtin(arch: .small, widthMultiplier: 0.75, classes: 100, seed: 3,
                                      precision: .int8)
        let q = try XCTUnwrap(model.inputQuantization)
        for layout in [Layout.nchw, .nhwc] {
            let session = try Session(model: model, options: .init(batch: 2, height: 64, width: 80,
                                                                    layout: layout))
            // Beyond the input's range too: both paths clamp alike.
            let x = randomFloats(session.inputShape.reduce(1, *), seed: 9).map { $0 * 3 }
            let viaFloat = try session.logits(for: x)
            let quantized = QuantizedInput(x, quantization: q)
            XCTAssertEqual(quantized.count, x.count)
            let viaBytes = try session.predict(quantized: quantized)
            XCTAssertEqual(viaBytes.logits.shape, [2, 100])
            XCTAssertEqual(viaBytes.logits.data, viaFloat, "\(layout)")
            let lq = try XCTUnwrap(model.logitsQuantization)
            XCTAssertEqual(viaBytes.quantization, lq)
            XCTAssertEqual(viaBytes.quantizedLogits.count, 200)
            XCTAssertEqual(viaBytes.quantizedLogits.map(lq.dequantize), viaFloat)
            guard case .int8(let bytes) = quantized else { return XCTFail("an int8 model takes int8 input") }
            XCTAssertEqual(try session.predict(quantized: bytes).logits.data, viaFloat)
        }
    }

    func testQuantizeMatchesTFLiteRounding() {
        let q = Quantization(type: .int8, scale: 0.5, zeroPoint: -3)
        XCTAssertEqual(q.quantize(0.25), -2)    // half away from zero
        XCTAssertEqual(q.quantize(-0.25), -4)
        XCTAssertEqual(q.quantize(1000), 127)
        XCTAssertEqual(q.quantize(-1000), -128)
        XCTAssertEqual(q.quantize(.nan), -128)
        XCTAssertEqual(q.dequantize(-3), 0)
        let u = Quantization(type: .uint8, scale: 1.0 / 127, zeroPoint: 128)
        XCTAssertEqual(u.quantize(-2), 0)
        XCTAssertEqual(u.quantize(0), 128)
    }

    func testQuantizedInputErrors() throws {
        let float = try Model.builtin(arch: .small, widthMultiplier: 0.5, classes: 10)
        let fs = try Session(model: float, options: .init(height: 64, width: 64))
        let n = fs.inputShape.reduce(1, *)
        XCTAssertThrowsError(try fs.predict(quantized: [Int8](repeating: 0, count: n))) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .unsupported)
        }
        let int8 = try Model.builtin(arch: .small, widthMultiplier: 0.5, classes: 10, precision: .int8)
        let s = try Session(model: int8, options: .init(height: 64, width: 64))
        XCTAssertThrowsError(try s.predict(quantized: [UInt8](repeating: 0, count: n))) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .invalidArgument)
        }
        XCTAssertThrowsError(try s.predict(quantized: [Int8](repeating: 0, count: n - 1))) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .shape)
        }
        let image = try Image(width: 8, height: 8, channels: 3, pixels: [UInt8](repeating: 7, count: 192))
        XCTAssertThrowsError(try fs.preprocessQuantized(image)) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .unsupported)
        }
    }

    func testQuantizedPreprocessing() throws {
        let model = try Model.builtin(arch: .small, widthMultiplier: 0.5, classes: 10, precision: .int8)
        let q = try XCTUnwrap(model.inputQuantization)
        let pixels = (0..<(48 * 40 * 3)).map { UInt8(($0 * 37) % 256) }
        let image = try Image(width: 40, height: 48, channels: 3, pixels: pixels)
        for (size, layout) in [(64, Layout.nchw), (64, .nhwc), (40, .nhwc)] {
            let session = try Session(model: model, options: .init(height: size, width: size, layout: layout))
            let bytes = try session.preprocessQuantized(image)
            guard case .int8(let got) = bytes, case .int8(let want) = QuantizedInput(try session.preprocess(image),
                                                                                      quantization: q) else {
                return XCTFail("an int8 model takes int8 input")
            }
            XCTAssertEqual(got.count, want.count)
            XCTAssertEqual(got, want, "\(size) \(layout)")
            XCTAssertNoThrow(try session.predict(quantized: bytes))
        }
    }

    func testInt8SerializeRoundTrip() throws {
        let model = try Model.builtin(arch: .small, widthMultiplier: 0.5, classes: 10, seed: 4, precision: .int8)
        let bytes = try model.serialized()
        let back = try Model(bytes: bytes)
        XCTAssertEqual(back.precision, .int8)
        XCTAssertEqual(back.inputQuantization, model.inputQuantization)
        XCTAssertEqual(back.logitsQuantization, model.logitsQuantization)
        XCTAssertEqual(try back.serialized(), bytes)
        let x = randomFloats(3 * 64 * 64, seed: 2)
        let a = try Session(model: model, options: .init(height: 64, width: 64)).logits(for: x)
        let b = try Session(model: back, options: .init(height: 64, width: 64)).logits(for: x)
        XCTAssertEqual(a, b)
        // Deterministic: the same arguments give the same network.
        let again = try Model.builtin(arch: .small, widthMultiplier: 0.5, classes: 10, seed: 4, precision: .int8)
        XCTAssertEqual(try again.serialized(), bytes)
    }

    /// TFLite's full-int8 Small and the shipped uint8 Small, imported at test time: the
    /// quantized logits equal those of TFLite's reference kernels, byte for byte.
    func testSharedModelsMatchTFLiteReference() throws {
        guard let shared = sharedDirectory else {
            throw XCTSkip("../shared is absent: skipping the TFLite int8 reference test")
        }
        let dir = try temporaryDirectory(self)
        for name in ["mobilenet_v3_small_int8_seed1", "mobilenet_v3_small_1.0_224_uint8"] {
            let tflite = shared.appendingPathComponent("models/\(name).tflite")
            guard FileManager.default.fileExists(atPath: tflite.path) else {
                throw XCTSkip("\(tflite.lastPathComponent) is missing from ../shared: skipping")
            }
            let url = dir.appendingPathComponent("\(name).mnv3")
            try importTFLite(tflite, to: url)
            let model = try Model(contentsOf: url)
            XCTAssertEqual(model.precision, .int8)
            let q = try XCTUnwrap(model.inputQuantization)
            XCTAssertEqual(q.type, name.hasSuffix("uint8") ? .uint8 : .int8)
            let session = try Session(model: model, options: .init(layout: .nhwc))
            for image in ["chelsea", "coffee"] {
                let base = shared.appendingPathComponent("reference/\(name)__\(image)__")
                let input = try readByteArray(base.path + "input.npy")
                let reference = try readByteArray(base.path + "ref_logits.npy")
                let got = try session.predict(quantized: q.type == .uint8 ? .uint8(input.bytes)
                                                  : .int8(input.bytes.map { Int8(bitPattern: $0) }))
                let want = reference.bytes.map { reference.signed ? Int(Int8(bitPattern: $0)) : Int($0) }
                XCTAssertEqual(got.quantizedLogits, want, "\(name) on \(image)")
            }
        }
    }

    /// classify on a built-in int8 model goes from the pixels to the model's input bytes and
    /// gives exactly the float path's classes and probabilities: decoded images and files
    /// (PNG, resized row by row; PPM, decoded whole), both layouts, a padded batch.
    func testClassifyQuantizedEqualsFloatPathBuiltin() throws {
        let model = try Model.builtin(arch: .small, widthMultiplier: 0.75, classes: 100, seed: 6,
                                      precision: .int8)
        let dir = try temporaryDirectory(self)
        var images: [Image] = []
        var files: [String] = []
        for (i, (w, h)) in [(70, 50), (33, 90), (64, 64)].enumerated() {
            let pixels = (0..<(w * h * 3)).map { UInt8(($0 * (37 + 14 * i) + $0 / (3 * w) * 11) % 256) }
            images.append(try Image(width: w, height: h, channels: 3, pixels: pixels))
            let url = dir.appendingPathComponent("image\(i).\(i == 1 ? "ppm" : "png")")
            if i == 1 {
                try write(Array("P6 \(w) \(h) 255\n".utf8) + pixels, to: url)
            } else {
                try write(RawPNG.encode(width: w, height: h, bitDepth: 8, colorType: 2, samples: pixels.map(Int.init)),
                          to: url)
            }
            files.append(url.path)
        }
        for layout in [Layout.nchw, .nhwc] {
            let session = try Session(model: model, options: .init(batch: 2, height: 64, width: 56, layout: layout))
            let want = try classifiedByFloats(session, try images.map { try session.preprocess($0) }, top: 4)
            XCTAssertEqual(try session.classify(images: images, top: 4), want, "\(layout)")
            let single = try Session(model: model, options: .init(height: 64, width: 56, layout: layout))
            XCTAssertEqual(try single.classify(image: images[0], top: 4), want[0], "\(layout)")
            for (file, expected) in zip(files, want) {
                XCTAssertEqual(try session.classify(imageAt: file, top: 4).classes, expected, "\(file) \(layout)")
            }
        }
    }

    /// The same on the shipped uint8 MobileNetV3-Small and the sample photos.
    func testClassifyQuantizedEqualsFloatPathShippedModel() throws {
        guard let shared = sharedDirectory else {
            throw XCTSkip("../shared is absent: skipping the shipped uint8 model's classify test")
        }
        let tflite = shared.appendingPathComponent("models/mobilenet_v3_small_1.0_224_uint8.tflite")
        let photos = ["chelsea", "coffee"].map { shared.appendingPathComponent("images/\($0).png") }
        for f in [tflite] + photos where !FileManager.default.fileExists(atPath: f.path) {
            throw XCTSkip("\(f.lastPathComponent) is missing from ../shared: skipping")
        }
        let url = try temporaryDirectory(self).appendingPathComponent("small_uint8.mnv3")
        try importTFLite(tflite, to: url)
        let model = try Model(contentsOf: url)
        XCTAssertEqual(model.inputQuantization?.type, .uint8)
        let images = try photos.map { try Image(contentsOf: $0) }
        for layout in [Layout.nhwc, .nchw] {
            let session = try Session(model: model, options: .init(layout: layout))
            let want = try classifiedByFloats(session, try images.map { try session.preprocess($0) }, top: 5)
            XCTAssertEqual(try session.classify(images: images, top: 5), want, "\(layout)")
            for (photo, expected) in zip(photos, want) {
                XCTAssertEqual(try session.classify(imageAt: photo.path, top: 5).classes, expected,
                               "\(photo.lastPathComponent) \(layout)")
            }
        }
    }

    /// What classify gives through floats: preprocessed inputs run `batch` at a time
    /// (zeros after a short last batch), softmax and top-k of each image's logits.
    private func classifiedByFloats(_ session: Session, _ inputs: [[Float]], top: Int) throws -> [[Classification]] {
        let classes = session.model.classCount
        let per = session.inputShape.reduce(1, *) / session.batch
        var results: [[Classification]] = []
        for start in stride(from: 0, to: inputs.count, by: session.batch) {
            let chunk = inputs[start..<min(start + session.batch, inputs.count)]
            let batch = chunk.flatMap { $0 } + [Float](repeating: 0, count: (session.batch - chunk.count) * per)
            let logits = try session.logits(for: batch)
            var probs = logits
            XCTAssertEqual(mnv3_softmax(logits, &probs, session.batch, classes), MNV3_OK)
            for i in 0..<chunk.count {
                var indices = [UInt32](repeating: 0, count: top)
                XCTAssertEqual(mnv3_top_k(Array(logits[(i * classes)..<((i + 1) * classes)]), classes,
                                          UInt32(top), &indices), MNV3_OK)
                results.append(indices.map {
                    Classification(label: session.model.label(Int($0)), index: Int($0),
                                   probability: probs[i * classes + Int($0)])
                })
            }
        }
        return results
    }

    /// The data of a version-1 `.npy` file of int8 (`|i1`) or uint8 (`|u1`) values.
    private func readByteArray(_ path: String) throws -> (bytes: [UInt8], signed: Bool) {
        let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        guard data.count >= 10, data.starts(with: [0x93] + Array("NUMPY".utf8)) else {
            throw XCTSkip("\(path) is not an .npy file")
        }
        let headerLength = Int(data[8]) | Int(data[9]) << 8
        let header = String(decoding: data[10..<min(data.count, 10 + headerLength)], as: UTF8.self)
        guard header.contains("|i1") || header.contains("|u1") else { throw XCTSkip("\(path): not 8-bit data") }
        return (Array(data[(10 + headerLength)...]), header.contains("|i1"))
    }
}
