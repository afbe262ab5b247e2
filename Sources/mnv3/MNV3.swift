import ArgumentParser
import MobileNetV3

@main
struct MNV3: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mnv3",
        abstract: "MobileNetV3 inference: inspect, classify, run, validate and benchmark models.",
        discussion: """
            MODEL is a .mnv3 file, or builtin:ARCH[:WIDTH][:PRECISION] for a built-in \
            architecture with pseudo-random weights (ARCH is large or small, PRECISION float32 \
            or int8), e.g. builtin:small:0.75 or builtin:large:int8.

            Examples:
              mnv3 info model.mnv3
              mnv3 classify --model model.mnv3 cat.png --top 3
              mnv3 bench --arch large --threads 2 --runs 20
              mnv3 bench --arch large --precision int8
              mnv3 selfcheck
            """,
        version: libraryVersion,
        subcommands: [Info.self, Classify.self, Run.self, Validate.self, Bench.self, Selfcheck.self]
    )
}
