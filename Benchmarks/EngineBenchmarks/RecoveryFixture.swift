// Recovery time of a full WAL: the setup writes 4 KiB random writes until the WAL is nearly
// full (write-back switched off, so nothing leaves it), flushes, and copies the file while the
// volume is still open: the copy is what a crash right then leaves on disk. Each iteration
// copies that image afresh, drops it from the page cache, and times `Volume.open` on it (which
// scans the WAL and rebuilds the index).

import BlockEngine
import Foundation

final class RecoveryFixture: Sendable {
    let fixture: VolumeFixture
    /// Small, so that the per-iteration copy is cheap; the WAL has the profile's size (64 MiB,
    /// the engine's default, in a full run).
    static let volumeSizeBytes: UInt64 = 64 << 20
    static let recordBytes: UInt64 = 4096 + 64

    init(profile: Profile) {
        fixture = VolumeFixture(profile: profile, workload: Workload(
            operation: .write, access: .random, ioBytes: 4096, queueDepth: 32,
            spanBlocks: Self.volumeSizeBytes / 4096))
    }

    var imagePath: String { fixture.directory + "/crashed.blk" }
    var workPath: String { fixture.directory + "/recovering.blk" }

    func prepare() async throws {
        try await fixture.create(sizeBytes: Self.volumeSizeBytes, backgroundWriteBack: false)
        let volume = fixture.volume
        let walBytes = fixture.profile.walSizeBytes
        let roundIOs = Int(walBytes / Self.recordBytes / 32)
        // Stop two rounds short of full: a writer that finds the WAL full would start a write-back.
        while volume.info().walUsedBytes + 2 * UInt64(roundIOs) * Self.recordBytes <= walBytes {
            try await fixture.runIteration(ios: roundIOs)
        }
        try await volume.flush()
        precondition(volume.info().writeBackRuns == 0, "write-back ran while filling the WAL")
        try FileManager.default.copyItem(atPath: volume.path, toPath: imagePath)
    }

    /// Copies the image cold, then measures opening it.
    func measureOpen(start: () -> Void, stop: () -> Void) async throws {
        try copyCold(from: imagePath, to: workPath)
        start()
        let recovered = try await Volume.open(at: workPath, options: VolumeFixture.options(backgroundWriteBack: false))
        stop()
        let info = recovered.info()
        precondition(info.walUsedBytes * 4 >= info.walSizeBytes * 3, "the recovered WAL was not nearly full")
        // Dropped without close: nothing is written back, the next iteration copies afresh.
    }
}
