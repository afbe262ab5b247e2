import Foundation
import XCTest
import CMobileNetV3
import MobileNetV3

final class ModelTests: XCTestCase {
    func testBuiltinLargeInfo() throws {
        let model = try Model.builtin(arch: .large)
        XCTAssertEqual(model.arch, .large)
        XCTAssertEqual(model.flavor, .torchvision)
        XCTAssertEqual(model.classCount, 1000)
        XCTAssertEqual(model.featureDimension, 960)
        XCTAssertEqual(model.inputChannels, 3)
        // torchvision.models.mobilenet_v3_large() has 5,483,032 parameters.
        XCTAssertEqual(model.parameters, 5_483_032)
        XCTAssertEqual(model.preprocess.size, ImageSize(224))
        XCTAssertEqual(model.preprocess.channelOrder, "rgb")
        let macs = try model.macs()
        XCTAssert((200_000_000...240_000_000).contains(macs), "MACs \(macs)")
        let layers = try model.layers()
        XCTAssertEqual(layers.count, model.layerCount)
        XCTAssertEqual(layers.reduce(0) { $0 + $1.macs }, macs)
        XCTAssertEqual(layers.first?.kind, .conv)
        XCTAssertEqual(layers.last?.kind, .fullyConnected)
        XCTAssertFalse(model.hasLabels)
        XCTAssertEqual(model.label(3), "class 3")
    }

    func testBuiltinSmallInfo() throws {
        let model = try Model.builtin(arch: .small, classes: 10)
        XCTAssertEqual(model.arch, .small)
        XCTAssertEqual(model.classCount, 10)
        XCTAssertEqual(model.featureDimension, 576)
        let full = try Model.builtin(arch: .small)
        // torchvision.models.mobilenet_v3_small() has 2,542,856 parameters.
        XCTAssertEqual(full.parameters, 2_542_856)
        XCTAssertGreaterThan(try full.macs(at: ImageSize(320)), try full.macs())
    }

    func testArenaPlan() throws {
        let model = try Model.builtin(arch: .small)
        let plan = try model.arenaPlan()
        XCTAssertGreaterThan(plan.total, 0)
        // The arena is the context, scratch and activations; weights are the model's.
        XCTAssertEqual(plan.total, plan.activations + plan.scratch + plan.context)
        XCTAssertGreaterThanOrEqual(plan.activations, plan.activationLowerBound)
        XCTAssertGreaterThan(plan.modelWeights, 0) // a built-in model owns its weights
        let session = try Session(model: model)
        XCTAssertEqual(session.arenaPlan.total, plan.total)
        XCTAssertEqual(session.arenaPlan.packedWeights, plan.packedWeights)
    }

    func testPredictShapesAndBatch() throws {
        let model = try Model.builtin(arch: .small, seed: 3)
        let single = try Session(model: model)
        XCTAssertEqual(single.inputShape, [1, 3, 224, 224])
        let image = randomFloats(3 * 224 * 224, seed: 5)
        let one = try single.predict(Tensor(shape: [1, 3, 224, 224], data: image))
        XCTAssertEqual(one.logits.shape, [1, 1000])
        XCTAssertEqual(one.features.shape, [1, 576])

        let batch = try Session(model: model, options: .init(batch: 2))
        let other = randomFloats(3 * 224 * 224, seed: 6)
        let two = try batch.predict(Tensor(shape: [2, 3, 224, 224], data: image + other))
        XCTAssertEqual(two.logits.shape, [2, 1000])
        XCTAssertEqual(two.features.shape, [2, 576])
        XCTAssertLessThan(maxAbsDiff(Array(two.logits.row(0)), one.logits.data), 1e-4)
        XCTAssertGreaterThan(maxAbsDiff(Array(two.logits.row(1)), one.logits.data), 0)
    }

    func testLayoutsAgree() throws {
        let model = try Model.builtin(arch: .small, seed: 9)
        let input = try Tensor(shape: [1, 3, 96, 128], data: randomFloats(3 * 96 * 128, seed: 1))
        let nchw = try Session(model: model, options: .init(height: 96, width: 128))
        let nhwc = try Session(model: model, options: .init(height: 96, width: 128, layout: .nhwc))
        let a = try nchw.predict(input)
        let b = try nhwc.predict(input.converted(to: .nhwc))
        XCTAssertLessThan(maxAbsDiff(a.logits.data, b.logits.data), 1e-4)
        XCTAssertLessThan(maxAbsDiff(a.features.data, b.features.data), 1e-4)
    }

    func testThreadsAgree() throws {
        let model = try Model.builtin(arch: .small, seed: 2)
        let input = try Tensor(shape: [1, 3, 224, 224], data: randomFloats(3 * 224 * 224, seed: 4))
        let one = try Session(model: model, options: .init(threads: 1)).predict(input)
        let session = try Session(model: model, options: .init(threads: 2))
        XCTAssertEqual(session.threads, 2)
        let two = try session.predict(input)
        XCTAssertLessThan(maxAbsDiff(one.logits.data, two.logits.data), 1e-4)
    }

    func testScalarReferenceAgreesWithAuto() throws {
        let model = try Model.builtin(arch: .small, seed: 8)
        let input = try Tensor(shape: [1, 3, 224, 224], data: randomFloats(3 * 224 * 224, seed: 8))
        let scalar = try Session(model: model, options: .init(isa: .scalar))
        XCTAssertEqual(scalar.isa, .scalar)
        let auto = try Session(model: model)
        XCTAssertEqual(auto.isa, ISA.best)
        XCTAssertLessThan(maxAbsDiff(try scalar.predict(input).logits.data, try auto.predict(input).logits.data), 1e-4)
    }

    func testSharedModelAcrossTasks() async throws {
        let model = try Model.builtin(arch: .small, seed: 1)
        let input = randomFloats(3 * 224 * 224, seed: 12)
        let expected = try Session(model: model).logits(for: input)
        let results = try await withThrowingTaskGroup(of: [Float].self) { group in
            for _ in 0..<3 {
                group.addTask {
                    // One session per task; the model is shared.
                    try Session(model: model).logits(for: input)
                }
            }
            var all: [[Float]] = []
            for try await r in group { all.append(r) }
            return all
        }
        XCTAssertEqual(results.count, 3)
        for r in results { XCTAssertEqual(r, expected) }
    }

    func testSerializeRoundTrip() throws {
        let model = try Model.builtin(arch: .small, widthMultiplier: 0.5, classes: 7, seed: 4)
        let bytes = try model.serialized()
        let copy = try Model(bytes: bytes)
        XCTAssertEqual(copy.classCount, 7)
        XCTAssertEqual(copy.parameters, model.parameters)
        let dir = try temporaryDirectory(self)
        let url = dir.appendingPathComponent("m.mnv3")
        try model.save(to: url)
        let loaded = try Model(contentsOf: url)
        let input = randomFloats(3 * 224 * 224, seed: 2)
        let a = try Session(model: model).logits(for: input)
        XCTAssertEqual(try Session(model: copy).logits(for: input), a)
        XCTAssertEqual(try Session(model: loaded).logits(for: input), a)
    }

    func testClassifyTopK() throws {
        let model = try Model.builtin(arch: .small, classes: 20, seed: 5)
        let image = try Image(width: 50, height: 40, channels: 3,
                              pixels: (0..<(50 * 40 * 3)).map { UInt8($0 % 251) })
        let result = try model.classify(image: image, top: 5)
        XCTAssertEqual(result.count, 5)
        for (a, b) in zip(result, result.dropFirst()) { XCTAssertGreaterThanOrEqual(a.probability, b.probability) }
        XCTAssertEqual(result[0].label, "class \(result[0].index)")
        let session = try Session(model: model, options: .init(batch: 2))
        let many = try session.classify(images: [image, image, image], top: 30)
        XCTAssertEqual(many.count, 3)
        XCTAssertEqual(many[0].count, 20)
        XCTAssertEqual(many[2].map(\.index), many[0].map(\.index))
        XCTAssertEqual(Double(many[0].reduce(0) { $0 + $1.probability }), 1, accuracy: 1e-4)
    }

    // MARK: Errors

    func testMissingModelFile() {
        XCTAssertThrowsError(try Model(contentsOf: URL(fileURLWithPath: "/nonexistent/model.mnv3"))) { error in
            let e = error as? MobileNetV3Error
            XCTAssertEqual(e?.code, .io)
            XCTAssert(e?.message.contains("/nonexistent/model.mnv3") == true, e?.message ?? "")
        }
    }

    func testCorruptModelBytes() throws {
        XCTAssertThrowsError(try Model(bytes: [UInt8](repeating: 0x41, count: 200))) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .badMagic)
        }
        XCTAssertThrowsError(try Model(bytes: [])) { error in
            XCTAssertNotNil(error as? MobileNetV3Error)
        }
        let good = try Model.builtin(arch: .small, widthMultiplier: 0.25, classes: 3).serialized()
        XCTAssertThrowsError(try Model(bytes: Array(good.prefix(good.count / 2)))) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .fileTruncated)
        }
        var flipped = good
        flipped[flipped.count - 5] ^= 0xFF
        XCTAssertThrowsError(try Model(bytes: flipped)) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .checksum)
        }
    }

    func testWrongTensorShape() throws {
        let session = try Session(model: try Model.builtin(arch: .small, classes: 4))
        XCTAssertThrowsError(try session.predict(Tensor(shape: [1, 3, 100, 100], repeating: 0))) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .shape)
        }
        XCTAssertThrowsError(try session.predict(Tensor(shape: [1, 224, 224, 3], layout: .nhwc, repeating: 0))) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .shape)
        }
        var bad = try Tensor(shape: [1, 3, 224, 224], repeating: 0)
        bad.data.removeLast()
        XCTAssertThrowsError(try session.predict(bad)) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .shape)
        }
        XCTAssertThrowsError(try Tensor(shape: [2, 2], data: [1, 2, 3])) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .shape)
        }
    }

    func testInvalidOptions() throws {
        let model = try Model.builtin(arch: .small, classes: 4)
        for options in [Session.Options(threads: 0), .init(batch: 0), .init(height: 8), .init(width: 100_000)] {
            XCTAssertThrowsError(try Session(model: model, options: options)) { error in
                XCTAssertEqual((error as? MobileNetV3Error)?.code, .invalidArgument)
            }
        }
        XCTAssertThrowsError(try Model.builtin(classes: 0)) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .invalidArgument)
        }
        // The C library's limit, refused in Swift with a message that names it, for counts
        // that fit a UInt32 and for those that do not.
        XCTAssertEqual(Model.maxClasses, 100_000)
        XCTAssertEqual(Model.maxClasses, Int(MNV3_MAX_CLASSES))
        for classes in [Model.maxClasses + 1, Int(UInt32.max), Int(UInt32.max) + 1, Int.max, -1] {
            XCTAssertThrowsError(try Model.builtin(arch: .small, widthMultiplier: 0.25, classes: classes)) { error in
                let e = error as? MobileNetV3Error
                XCTAssertEqual(e?.code, .invalidArgument, "\(classes)")
                XCTAssert(e?.message.contains("MNV3_MAX_CLASSES") == true, e?.message ?? "")
                XCTAssert(e?.message.contains("1...100000") == true, e?.message ?? "")
                XCTAssert(e?.message.contains("got \(classes)") == true, e?.message ?? "")
            }
        }
        XCTAssertThrowsError(try Model.builtin(widthMultiplier: 9)) { error in
            XCTAssertEqual((error as? MobileNetV3Error)?.code, .invalidArgument)
        }
    }

    func testErrorDescriptions() {
        XCTAssertEqual(MobileNetV3Error.Code.io.rawValue, 7)
        XCTAssertFalse(MobileNetV3Error.Code.checksum.description.isEmpty)
        XCTAssertEqual(MobileNetV3Error(.shape, "").description, MobileNetV3Error.Code.shape.description)
        XCTAssertEqual(ISA(name: "AVX2"), .avx2)
        XCTAssertNil(ISA(name: "sse9"))
        XCTAssertTrue(ISA.scalar.isAvailable)
    }
}
