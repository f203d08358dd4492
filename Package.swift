// swift-tools-version: 6.1
// fashiond: a Kafka/Pub/Sub stream classifier for clothing images.
// Layout: one library target per capability, thin executables, C libraries wrapped as system libraries.
import PackageDescription

// Swift 6 language mode (below) turns on complete strict-concurrency checking for every target.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

// The shipped binaries link FoundationEssentials, not Foundation (whose ICU data alone is 34 MB). swift-crypto
// and TOMLKit still import Foundation, and without MemberImportVisibility its String extensions
// (replacingOccurrences, padding, range(of:)) would win overload resolution in every file of a target that
// links them, pulling full Foundation back in. With it, only what a file imports is visible.
let essentialsOnly: [SwiftSetting] = strict + [.enableUpcomingFeature("MemberImportVisibility")]

let package = Package(
    name: "fashiond",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fashiond", targets: ["fashiond"]),
        .executable(name: "fashionctl", targets: ["fashionctl"]),
        .executable(name: "fashion-bench", targets: ["fashion-bench"]),
        .executable(name: "fashion-mock-broker", targets: ["fashion-mock-broker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.28.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // MARK: C libraries (system packages, found with pkg-config)
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .target(name: "CCPUFeatures"),
        // CRC-32C with the SSE4.2 instruction (a per-function target attribute), chosen at run time.
        .target(name: "CChecksum"),
        // The engine's hot loops with AVX2/FMA (per-function target attributes), chosen at run time.
        .target(name: "CInferenceKernels"),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CMalloc"),  // glibc's <malloc.h>
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        // MARK: Libraries, one capability each
        .target(name: "Shared", swiftSettings: strict),
        .target(name: "Threads", swiftSettings: strict),
        .target(
            name: "Inference",
            dependencies: [
                "Shared", "Threads", "COpenBLAS", "CCPUFeatures", "CInferenceKernels",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict + [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .target(name: "Imaging", dependencies: ["Shared", "CPNG", "CTurboJPEG", "CDeflate"], swiftSettings: strict),
        .target(name: "Journal", dependencies: ["Shared", "CChecksum"], swiftSettings: strict),
        .target(name: "Messaging", dependencies: ["Shared", "Threads", "CRdKafka"], swiftSettings: strict),
        .target(name: "ControlClient", dependencies: ["Shared", "Threads"], swiftSettings: strict),
        // The local web page (`fashionctl web`): an HTTP server on loopback with embedded assets that proxies to
        // the control socket through ControlClient.
        .target(
            name: "WebConsole",
            dependencies: [
                "Shared", "ControlClient",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "PubSub",
            dependencies: [
                "Shared", "Threads", "CCurl",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: essentialsOnly
        ),
        .target(
            name: "Daemon",
            dependencies: [
                "Shared", "Threads", "Inference", "Imaging", "Journal", "Messaging", "PubSub", "CSystemd", "CMalloc",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: essentialsOnly
        ),

        // MARK: Executables (thin)
        .executableTarget(
            name: "fashiond",
            dependencies: [
                "Daemon", "Inference", "Shared", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: essentialsOnly
        ),
        .executableTarget(
            name: "fashionctl",
            dependencies: [
                "Shared", "Threads", "ControlClient", "WebConsole",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "fashion-bench",
            dependencies: [
                "Inference", "Imaging", "Daemon", "Shared", "ControlClient", "Journal",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "fashion-mock-broker",
            dependencies: [
                "Messaging", "Shared", "Threads", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: essentialsOnly
        ),

        // MARK: Tests
        // What every test target shares: the test tags, the process runner, `eventually` (Tests/TestSupport).
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "SharedTests", dependencies: ["Shared", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ThreadsTests", dependencies: ["Threads", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "TestSupport", "CZlib"], swiftSettings: strict),
        .testTarget(name: "JournalTests", dependencies: ["Journal", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "MessagingTests", dependencies: ["Messaging", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "DaemonTests",
            dependencies: [
                "Daemon", "Shared", "ControlClient", "Journal", "Messaging", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: strict),
        .testTarget(
            name: "WebConsoleTests", dependencies: ["WebConsole", "ControlClient", "TestSupport"], swiftSettings: strict
        ),
        .testTarget(
            name: "ControlClientTests", dependencies: ["ControlClient", "Shared", "Threads", "TestSupport"],
            swiftSettings: strict),
        .testTarget(name: "SystemdTests", dependencies: ["Shared", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "EndToEndTests", dependencies: ["Shared", "ControlClient", "Messaging", "Journal", "TestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "PubSubTests",
            dependencies: [
                "PubSub", "Shared", "TestSupport", .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
