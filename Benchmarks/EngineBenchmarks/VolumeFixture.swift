// A volume in a private temporary directory for one benchmark: created (and prepared) in the
// benchmark's setup, used by its iterations, closed and removed in its teardown.

import BlockEngine
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

final class VolumeFixture: Sendable {
    let profile: Profile
    let workload: Workload
    private let state = Mutex(State())

    private struct State {
        var directory: String?
        var volume: Volume?
        var buffers: IOBuffers?
        var round = 0
    }

    init(profile: Profile, workload: Workload) {
        self.profile = profile
        self.workload = workload
    }

    var directory: String { state.withLock { $0.directory! } }
    var volume: Volume { state.withLock { $0.volume! } }

    /// Makes the directory and a new volume of `sizeBytes` (default: the profile's size).
    func create(sizeBytes: UInt64? = nil, backgroundWriteBack: Bool = true) async throws {
        let directory = try makeTemporaryDirectory(under: profile.directory)
        let configuration = VolumeConfiguration(
            sizeBytes: sizeBytes ?? profile.volumeSizeBytes, walSizeBytes: profile.walSizeBytes)
        let volume = try await Volume.create(
            at: directory + "/volume.blk", configuration: configuration,
            options: Self.options(backgroundWriteBack: backgroundWriteBack))
        let buffers = IOBuffers(count: workload.queueDepth, byteCount: workload.ioBytes)
        state.withLock { $0 = State(directory: directory, volume: volume, buffers: buffers) }
    }

    /// One measured iteration: `ios` I/Os of the workload.
    func runIteration(ios: Int) async throws {
        let (volume, buffers, round) = state.withLock { state in
            state.round += 1
            return (state.volume!, state.buffers!, state.round)
        }
        try await workload.run(ios: ios, round: round, on: volume, buffers: buffers)
    }

    /// Closes the volume (writing everything back) and removes the directory.
    func remove() async throws {
        let (volume, buffers, directory) = state.withLock { state in
            defer { state = State() }
            return (state.volume, state.buffers, state.directory)
        }
        try await volume?.close()
        buffers?.deallocate()
        if let directory { try FileManager.default.removeItem(atPath: directory) }
    }

    static func options(backgroundWriteBack: Bool) -> VolumeOptions {
        var options = VolumeOptions(backgroundWriteBack: backgroundWriteBack)
        options.logger.logLevel = .warning
        return options
    }
}

// MARK: - Preparing volumes

extension VolumeFixture {
    /// Writes blocks 0..<blockCount with `ioBytes` sequential writes at queue depth 8.
    func fill(blockCount: UInt64, ioBytes: Int) async throws {
        let filler = Workload(operation: .write, access: .sequential, ioBytes: ioBytes, queueDepth: 8,
                              spanBlocks: blockCount)
        let buffers = IOBuffers(count: filler.queueDepth, byteCount: ioBytes)
        defer { buffers.deallocate() }
        let ios = Int(blockCount / filler.blocksPerIO)
        try await filler.run(ios: ios, round: 0, on: volume, buffers: buffers)
    }

    /// Fills the whole volume and moves everything to the data region: reads then hit the
    /// data region, never the WAL.
    func fillDataRegion() async throws {
        try await fill(blockCount: volume.blockCount, ioBytes: 1 << 20)
        try await volume.checkpoint()
        precondition(volume.info().indexExtents == 0, "data still in the WAL after a checkpoint")
    }

    /// Writes `blockCount` blocks that stay in the WAL (the volume must have been created
    /// without background write-back).
    func fillWAL(blockCount: UInt64) async throws {
        try await fill(blockCount: blockCount, ioBytes: 64 << 10)
        let info = volume.info()
        precondition(info.writeBackRuns == 0 && info.indexExtents > 0, "the working set left the WAL")
    }
}

// MARK: - Files

func makeTemporaryDirectory(under parent: String) throws -> String {
    var template = Array((parent + "/engine-benchmarks.XXXXXX").utf8CString)
    guard let made = mkdtemp(&template) else {
        throw BenchmarkSetupError("mkdtemp under \(parent) failed, errno \(errno)")
    }
    return String(cString: made)
}

/// Copies a file and drops the copy from the page cache, so that the next read of it comes
/// from the disk.
func copyCold(from source: String, to destination: String) throws {
    try? FileManager.default.removeItem(atPath: destination)
    try FileManager.default.copyItem(atPath: source, toPath: destination)
    let descriptor = open(destination, O_RDONLY)
    guard descriptor >= 0 else { throw BenchmarkSetupError("open \(destination) failed, errno \(errno)") }
    defer { close(descriptor) }
    guard fsync(descriptor) == 0 else { throw BenchmarkSetupError("fsync \(destination) failed, errno \(errno)") }
    _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_DONTNEED)
}

struct BenchmarkSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
