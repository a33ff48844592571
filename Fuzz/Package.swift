// swift-tools-version: 6.1
// libFuzzer targets for every parser that takes bytes from the network. Built separately
// from the main package because a fuzzer has no `main` (libFuzzer provides it):
//   scripts/fuzz.sh [SECONDS]
// FuzzSeeds is an ordinary program that writes the committed seed corpora in Corpus/
// (scripts/fuzz-seeds.sh); it is never built with the fuzzer flags.
import PackageDescription

let package = Package(
    name: "swift-block-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-block", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
    ],
    targets: [
        .target(name: "FuzzDriver"),
        // What the fuzzers that execute commands share: a small volume, and running async
        // code from libFuzzer's synchronous callback.
        .target(
            name: "FuzzSupport",
            dependencies: [
                .product(name: "BlockSCSI", package: "swift-block"),
                .product(name: "BlockEngine", package: "swift-block"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Builds the replication seeds with the real frame writer (they need CRCs and MACs).
        .executableTarget(
            name: "FuzzSeeds",
            dependencies: [
                .product(name: "BlockReplication", package: "swift-block"),
                .product(name: "BlockEngine", package: "swift-block"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "PDUFuzzer",
            dependencies: [
                "FuzzDriver",
                .product(name: "BlockISCSI", package: "swift-block"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "LoginKeyFuzzer",
            dependencies: ["FuzzDriver", .product(name: "BlockISCSI", package: "swift-block")]
        ),
        .executableTarget(
            name: "ParameterListFuzzer",
            dependencies: [
                "FuzzDriver", "FuzzSupport",
                .product(name: "BlockSCSI", package: "swift-block"),
                .product(name: "BlockEngine", package: "swift-block"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "ConnectionFuzzer",
            dependencies: [
                "FuzzDriver", "FuzzSupport",
                .product(name: "BlockISCSI", package: "swift-block"),
                .product(name: "BlockSCSI", package: "swift-block"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "ReplicationFrameFuzzer",
            dependencies: ["FuzzDriver", .product(name: "BlockReplication", package: "swift-block")]
        ),
        .executableTarget(
            name: "ReplicationHandshakeFuzzer",
            dependencies: ["FuzzDriver", .product(name: "BlockReplication", package: "swift-block")]
        ),
        .executableTarget(
            name: "CDBFuzzer",
            dependencies: [
                "FuzzDriver",
                .product(name: "BlockSCSI", package: "swift-block"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
