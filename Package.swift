// swift-tools-version: 6.1
// The block-storage engine and its frontends. See README.md and docs/.
import PackageDescription

let package = Package(
    name: "swift-block",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "BlockEngine", targets: ["BlockEngine"]),
        .library(name: "BlockSCSI", targets: ["BlockSCSI"]),
        .library(name: "BlockISCSI", targets: ["BlockISCSI"]),
        .library(name: "BlockReplication", targets: ["BlockReplication"]),
        .executable(name: "blockd", targets: ["blockd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // The admin API of `blockd serve` (HTTP) and its /metrics exposition. Hummingbird's
        // default traits (swift-configuration, full Foundation) are not needed.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.0.0", traits: []),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.0"),
    ],
    targets: [
        // A tiny opaque wrapper over liburing (liburing's headers clash with Glibc when
        // imported into Swift directly).
        .target(
            name: "CURing",
            linkerSettings: [.linkedLibrary("uring")]
        ),
        // CRC32C (Castagnoli) with the SSE4.2 instruction when the CPU has it, and the few
        // Linux calls the Swift Glibc module does not export.
        .target(name: "CBlockSupport"),
        .target(
            name: "BlockEngine",
            dependencies: [
                "CURing", "CBlockSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // SBC/SPC command set over an engine volume, independent of any transport.
        .target(
            name: "BlockSCSI",
            dependencies: [
                "BlockEngine", "CBlockSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The iSCSI target (RFC 7143) on SwiftNIO, serving BlockSCSI logical units.
        .target(
            name: "BlockISCSI",
            dependencies: [
                "BlockEngine", "BlockSCSI", "CBlockSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The replication wire: frames, their codec, the authenticated handshake and thin NIO
        // handlers (docs/REPLICATION.md).
        .target(
            name: "BlockReplication",
            dependencies: [
                "BlockEngine", "CBlockSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // Everything the daemon does that tests can import: argument parsing helpers,
        // volume commands, the admin API and its metrics.
        .target(
            name: "BlockdCore",
            dependencies: [
                "BlockEngine", "BlockSCSI", "BlockISCSI", "BlockReplication",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "blockd",
            dependencies: [
                "BlockdCore", "BlockEngine", "BlockISCSI", "BlockReplication",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The engine side of the comparison benchmark (Benchmarks/README.md).
        .executableTarget(
            name: "block-bench",
            dependencies: ["BlockEngine"],
            path: "Benchmarks/EngineDriver"
        ),
        .testTarget(
            name: "BlockEngineTests",
            dependencies: [
                "BlockEngine", "CBlockSupport",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "BlockSCSITests",
            dependencies: [
                "BlockSCSI", "BlockEngine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "BlockISCSITests",
            dependencies: [
                "BlockISCSI", "BlockSCSI", "BlockEngine",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "BlockReplicationTests",
            dependencies: [
                "BlockReplication", "BlockEngine",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "BlockdCoreTests",
            dependencies: [
                "BlockdCore", "BlockEngine", "BlockISCSI", "BlockReplication",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
