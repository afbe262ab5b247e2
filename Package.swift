// swift-tools-version: 6.0
//
// Swift package for mnv3. The C library is compiled straight from csrc/ and include/ (the
// same sources the Makefile builds); nothing is copied. Threads use the POSIX backend.
import PackageDescription

let package = Package(
    name: "mnv3",
    products: [
        .library(name: "MobileNetV3", targets: ["MobileNetV3"]),
        .executable(name: "mnv3", targets: ["mnv3"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // The C library: every .c file under csrc/, public header(s) in include/.
        .target(
            name: "CMobileNetV3",
            path: ".",
            sources: ["csrc"],
            publicHeadersPath: "include",
            cSettings: [
                .define("MNV3_THREADS_PTHREAD", to: "1"),
                // Internal preconditions are assertions in debug builds only.
                .define("NDEBUG", .when(configuration: .release)),
                .headerSearchPath("csrc"),
            ],
            linkerSettings: [
                .linkedLibrary("pthread", .when(platforms: [.linux, .android, .openbsd])),
                .linkedLibrary("m", .when(platforms: [.linux, .android, .openbsd])),
            ]
        ),
        .systemLibrary(
            name: "CPNG",
            path: "Sources/CPNG",
            pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"]), .brew(["libpng"])]
        ),
        .systemLibrary(
            name: "CJPEG",
            path: "Sources/CJPEG",
            pkgConfig: "libjpeg",
            providers: [.apt(["libjpeg62-turbo-dev"]), .brew(["jpeg-turbo"])]
        ),
        // Image decoding shims (libjpeg reports errors through longjmp, which Swift cannot).
        .target(
            name: "CMNV3Image",
            dependencies: ["CPNG", "CJPEG"],
            path: "Sources/CMNV3Image"
        ),
        // Helpers for the command-line tool: the FMA peak measurement.
        .target(
            name: "CMNV3Tools",
            path: "Sources/CMNV3Tools"
        ),
        .target(
            name: "MobileNetV3",
            dependencies: ["CMobileNetV3", "CMNV3Image"],
            path: "Sources/MobileNetV3"
        ),
        .executableTarget(
            name: "mnv3",
            dependencies: [
                "MobileNetV3",
                "CMobileNetV3",
                "CMNV3Tools",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/mnv3"
        ),
        .testTarget(
            name: "MobileNetV3Tests",
            dependencies: ["MobileNetV3", "CMobileNetV3", "CMNV3Image"],
            path: "Tests/MobileNetV3Tests"
        ),
    ],
    swiftLanguageModes: [.v6],
    cLanguageStandard: .c99
)
