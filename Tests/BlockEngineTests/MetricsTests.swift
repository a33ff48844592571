import Metrics
import MetricsTestKit
import Testing
@testable import BlockEngine

/// swift-metrics can be bootstrapped once per process; every test that reads metrics shares
/// this factory and tells its own volume apart by the `volume` dimension.
let sharedTestMetrics: TestMetrics = {
    let metrics = TestMetrics()
    MetricsSystem.bootstrap(metrics)
    return metrics
}()

@Suite("Metrics")
struct MetricsTests {
    @Test("I/O counters, group-commit batch sizes and WAL usage are exported")
    func exported() async throws {
        let metrics = sharedTestMetrics
        let directory = TemporaryDirectory()
        var options = testOptions()
        options.metricsLabel = "metrics-test"
        let volume = try await Volume.create(
            at: directory.file("v.blk"),
            configuration: VolumeConfiguration(sizeBytes: 4 << 20, blockSizeBytes: 4096, walSizeBytes: 1 << 20),
            options: options)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<16 {
                group.addTask {
                    try await volume.write(at: UInt64(writer), [UInt8](repeating: 1, count: 4096), fua: true)
                }
            }
            try await group.waitForAll()
        }
        _ = try await volume.read(at: 0, blockCount: 4)
        try await volume.checkpoint()
        let dimensions = [("volume", "metrics-test")]
        #expect(try metrics.expectCounter("blockengine_writes_total", dimensions).totalValue == 16)
        #expect(try metrics.expectCounter("blockengine_write_bytes_total", dimensions).totalValue == 16 * 4096)
        #expect(try metrics.expectCounter("blockengine_reads_total", dimensions).totalValue == 1)
        let batches = try metrics.expectRecorder("blockengine_group_commit_batch_size", dimensions).values
        // A writer whose record an earlier sync already covered waits for nothing and is in
        // no batch; nobody is counted twice.
        #expect(!batches.isEmpty && batches.reduce(0, +) <= 16, "FUA waiters are counted at most once")
        #expect(try metrics.expectCounter("blockengine_flusher_runs_total", dimensions).totalValue >= 1)
        #expect(try metrics.expectGauge("blockengine_wal_used_bytes", dimensions).lastValue == 0)
        try await volume.close()
    }

    @Test("a volume given a metrics factory reports there, not to the process's")
    func ownFactory() async throws {
        let own = TestMetrics()
        let directory = TemporaryDirectory()
        var options = testOptions()
        options.metricsLabel = "own-factory"
        options.metricsFactory = own
        let volume = try await Volume.create(
            at: directory.file("v.blk"),
            configuration: VolumeConfiguration(sizeBytes: 4 << 20, blockSizeBytes: 4096, walSizeBytes: 1 << 20),
            options: options)
        try await volume.write(at: 1, [UInt8](repeating: 7, count: 4096))
        #expect(try own.expectCounter("blockengine_writes_total", [("volume", "own-factory")]).totalValue == 1)
        #expect(throws: (any Error).self, "nothing went to the process's factory") {
            try sharedTestMetrics.expectCounter("blockengine_writes_total", [("volume", "own-factory")])
        }
        try await volume.close()
    }
}
