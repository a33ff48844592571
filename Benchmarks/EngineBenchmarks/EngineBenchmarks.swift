// BlockEngine benchmarks for package-benchmark. From Benchmarks/:
//   swift package --disable-sandbox benchmark                     # full run
//   BLOCK_BENCH_SMOKE=1 swift package --disable-sandbox benchmark # seconds, for CI
// or ../scripts/benchmark-engine.sh [--smoke|--check|--update-thresholds]. Throughput is
// I/Os per second (4 KiB rows: 1000 I/Os per iteration) or iterations per second (1 MiB rows:
// 8 I/Os per iteration, one per queue slot; recovery: one open per iteration).

import Benchmark
import BlockEngine

// Names have no spaces: package-benchmark 1.38.1 writes threshold files with spaces turned
// into underscores but looks them up with the names as they are.
let benchmarks: @Sendable () -> Void = {
    let profile = Profile.current
    let spanBlocks = profile.volumeSizeBytes / 4096
    // A working set of a quarter of the WAL stays there while write-back is off.
    let walSetBlocks = profile.walSizeBytes / 4 / 4096

    func shape(_ operation: Operation, _ access: Access, bytes: Int, depth: Int,
               span: UInt64 = spanBlocks) -> Workload {
        Workload(operation: operation, access: access, ioBytes: bytes, queueDepth: depth, spanBlocks: span)
    }

    // Writes go to a fully written volume (as fio's laid-out file): no file-system block
    // allocation on write-back, and no fragmented sparse file.
    let filled: @Sendable (VolumeFixture) async throws -> Void = { try await $0.fillDataRegion() }
    registerIO("Write-4KiB-random-QD1", shape(.write, .random, bytes: 4096, depth: 1), profile, prepare: filled)
    registerIO("Write-4KiB-random-QD32", shape(.write, .random, bytes: 4096, depth: 32), profile, prepare: filled)
    registerIO("Durable-write-4KiB-random-QD1-(write+flush)", shape(.writeFlush, .random, bytes: 4096, depth: 1),
               profile, prepare: filled)
    registerIO("Durable-write-4KiB-random-QD32-(FUA)", shape(.writeFUA, .random, bytes: 4096, depth: 32), profile,
               prepare: filled)
    registerIO("Read-4KiB-random-QD32-from-WAL", shape(.read, .random, bytes: 4096, depth: 32, span: walSetBlocks),
               profile, backgroundWriteBack: false) { try await $0.fillWAL(blockCount: walSetBlocks) }
    registerIO("Read-4KiB-random-QD32-from-data-region", shape(.read, .random, bytes: 4096, depth: 32), profile,
               prepare: filled)
    registerIO("Write-1MiB-sequential-QD8", shape(.write, .sequential, bytes: 1 << 20, depth: 8), profile,
               ios: 8, scalingFactor: .one, prepare: filled)
    registerIO("Read-1MiB-sequential-QD8-from-data-region", shape(.read, .sequential, bytes: 1 << 20, depth: 8),
               profile, ios: 8, scalingFactor: .one, prepare: filled)
    registerRecovery("Recovery-of-a-full-WAL", profile)
}

/// One benchmark of `ios` I/Os per iteration on a fresh volume, after `prepare` (not measured).
func registerIO(_ name: String, _ workload: Workload, _ profile: Profile, ios: Int = 1_000,
                scalingFactor: BenchmarkScalingFactor = .kilo, backgroundWriteBack: Bool = true,
                prepare: @escaping @Sendable (VolumeFixture) async throws -> Void = { _ in }) {
    precondition(scalingFactor == .one || scalingFactor.rawValue == ios, "throughput must count I/Os or iterations")
    let fixture = VolumeFixture(profile: profile, workload: workload)
    Benchmark(name, configuration: profile.configuration(scalingFactor: scalingFactor)) { _ async throws in
        try await fixture.runIteration(ios: ios)
    } setup: {
        try await fixture.create(backgroundWriteBack: backgroundWriteBack)
        try await prepare(fixture)
    } teardown: {
        try await fixture.remove()
    }
}

func registerRecovery(_ name: String, _ profile: Profile) {
    let recovery = RecoveryFixture(profile: profile)
    let configuration = profile.configuration(scalingFactor: .one, maxIterations: profile.recoveryMaxIterations)
    Benchmark(name, configuration: configuration) { benchmark async throws in
        try await recovery.measureOpen(start: benchmark.startMeasurement, stop: benchmark.stopMeasurement)
    } setup: {
        try await recovery.prepare()
    } teardown: {
        try await recovery.fixture.remove()
    }
}
