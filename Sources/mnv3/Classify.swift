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

            Examples:
              mnv3 classify --model mobilenet_v3_small.mnv3 cat.png
              mnv3 classify --model model.mnv3 --top 3 a.jpg b.ppm
            """
    )

    @Option(help: "A .mnv3 model file, or builtin:large|small[:WIDTH].")
    var model: String

    @Argument(help: "Image files.")
    var images: [String]

    @Option(help: "How many classes to print per image.")
    var top: Int = 5

    @Option(help: "Worker threads.")
    var threads: Int = 1

    func validate() throws {
        guard !images.isEmpty else { throw ValidationError("give at least one image") }
        guard top >= 1 else { throw ValidationError("--top must be at least 1") }
    }

    func run() throws {
        let model = try loadModel(self.model)
        let session = try Session(model: model, options: .init(threads: threads))
        var failed = 0
        for path in images {
            do {
                let image = try Image(path: path)
                let result = try session.classify(image: image, top: top)
                print("\(path) (\(image.width)x\(image.height) \(image.format)):")
                for c in result {
                    print("  " + String(format: "%.4f", c.probability) + "  " + col("\(c.index)", 5, right: true) + "  " + c.label)
                }
            } catch {
                printError("Error: \(error)")
                failed += 1
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }
}
