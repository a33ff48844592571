// swift-tools-version: 6.1
// Engine benchmarks (package-benchmark), kept apart from the main package so that its
// build stays light. Run from this directory:
//   swift package --disable-sandbox benchmark
// or through ../scripts/benchmark-engine.sh (--smoke for a few-second CI run).
// See ../docs/BENCHMARKS.md.
import PackageDescription

let package = Package(
    name: "swift-block-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "swift-block", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "EngineBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "BlockEngine", package: "swift-block"),
            ],
            path: "EngineBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
