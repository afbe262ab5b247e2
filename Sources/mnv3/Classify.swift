import ArgumentParser
import Foundation
import MobileNetV3

struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify PNG, JPEG, PPM (P6) or PGM (P5) images.",
        discussion: """
            Each image is decoded to 8-bit RGB (gray replicated, alpha dropped, 16-bit reduced), \
            resized and normalised as the model's metadata says, and the top classes are printed \
            with softmax probabilities.

            An image with more than --max-pixels pixels (default 16777216, e.g. 4096 x 4096) \
            is refused before it is decoded. PNG and JPEG images are resized while they are \
            decoded, so memory is a few rows of the image plus the network input, except for \
            interlaced PNG (the whole image, 3 bytes per pixel) and progressive JPEG (its \
            coefficients, 2 to 6 bytes per pixel, at most 3 bytes per pixel of the limit, \
            else the image is refused). A corrupt or truncated JPEG is refused at the first \
            bad data.

            --precision as for `mnv3 bench`: fp32 or fp16-weights convert a float model's \
            weights, relaxed allows float16 or bf16 products where the CPU has them, int8 \
            asks for a quantized model.

            Examples:
              mnv3 classify --model mobilenet_v3_small.mnv3 cat.png
              mnv3 classify --model model.mnv3 --top 3 a.jpg b.ppm
              mnv3 classify --model model.mnv3 --max-pixels 50000000 panorama.jpg
              mnv3 classify --model model.mnv3 --precision relaxed cat.png
            """
    )

    @Option(help: "A .mnv3 model file, or builtin:large|small[:WIDTH][:int8].")
    var model: String

    @Argument(help: "Image files.")
    var images: [String]

    @Option(help: "How many classes to print per image.")
    var top: Int = 5

    @Option(help: "Worker threads.")
    var threads: Int = 1

    @Option(help: "Refuse images with more pixels than this.")
    var maxPixels: Int = Image.defaultMaxPixels

    @Option(help: "Kernel set: auto, scalar, avx2, avx512 or neon.")
    var isa: String?

    @Option(help: precisionHelp)
    var precision: PrecisionChoice?

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
        guard maxPixels >= 1 else { throw ValidationError("--max-pixels must be at least 1") }
    }

    func run() throws {
        let (model, mode) = try applyPrecision(precision, to: try loadModel(self.model))
        let session = try Session(model: model, options: .init(threads: threads, isa: try parseISA(isa),
                                                                precision: mode))
        var failed = 0
        for path in images {
            do throws(MobileNetV3Error) {
                let (image, result) = try session.classify(imageAt: path, top: top, maxPixels: maxPixels)
                print("\(path) (\(image.width)x\(image.height) \(image.format)):")
                for c in result {
                    print("  " + String(format: "%.4f", c.probability) + "  " + col("\(c.index)", 5, right: true) + "  " + c.label)
                }
            } catch {
                let hint = error.code == .imageTooLarge ? " (--max-pixels raises the limit)" : ""
                printError("Error: \(error)\(hint)")
                failed += 1
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }
}
