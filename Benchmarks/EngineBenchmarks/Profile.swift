// How big and how long the engine benchmarks run. `BLOCK_BENCH_SMOKE=1` shrinks everything so
// the whole suite finishes in seconds (CI checks that it runs and produces numbers; it asserts
// no timing). `BLOCK_BENCH_DIR` picks the directory for the volume files (default: the system
// temporary directory); put it on the file system you want to measure.

import Benchmark
import Foundation

struct Profile: Sendable {
    let smoke: Bool
    let directory: String

    static let current = Profile(environment: ProcessInfo.processInfo.environment)

    init(environment: [String: String]) {
        smoke = environment["BLOCK_BENCH_SMOKE"].map { $0 != "0" && !$0.isEmpty } ?? false
        directory = environment["BLOCK_BENCH_DIR"] ?? FileManager.default.temporaryDirectory.path
    }

    /// Logical size of the volumes that random I/O spreads over.
    var volumeSizeBytes: UInt64 { smoke ? 64 << 20 : 1 << 30 }
    /// The engine's default WAL size (a quarter of it in a smoke run), so that write-back takes
    /// part in the write figures.
    var walSizeBytes: UInt64 { smoke ? 16 << 20 : 64 << 20 }
    /// Upper bounds per benchmark; whichever is reached first ends it.
    var maxDuration: Duration { smoke ? .milliseconds(150) : .seconds(5) }
    var maxIterations: Int { smoke ? 2 : 10_000 }
    var warmupIterations: Int { smoke ? 0 : 2 }
    /// Recovery opens a copied crash image per iteration; fewer of them.
    var recoveryMaxIterations: Int { smoke ? 1 : 20 }

    /// Tolerances used by `thresholds check` and `baseline check` (the p90 entries) on this
    /// noisy shared machine: time and throughput may move 30 %, allocation counts 10 %.
    static var thresholds: [BenchmarkMetric: BenchmarkThresholds] {
        [
            .wallClock: BenchmarkThresholds(relative: [.p50: 30, .p90: 30]),
            .throughput: BenchmarkThresholds(relative: [.p50: 30, .p90: 30]),
            .cpuTotal: BenchmarkThresholds(relative: [.p50: 30, .p90: 30]),
            .mallocCountTotal: BenchmarkThresholds(relative: [.p50: 10, .p90: 10]),
        ]
    }

    /// The configuration of one benchmark; `scalingFactor` is the number of I/Os per iteration.
    func configuration(scalingFactor: BenchmarkScalingFactor, maxIterations: Int? = nil) -> Benchmark.Configuration {
        Benchmark.Configuration(
            metrics: [.wallClock, .throughput, .cpuTotal, .mallocCountTotal],
            timeUnits: .microseconds,
            warmupIterations: warmupIterations,
            scalingFactor: scalingFactor,
            maxDuration: maxDuration,
            maxIterations: maxIterations ?? self.maxIterations,
            thresholds: Self.thresholds)
    }
}
