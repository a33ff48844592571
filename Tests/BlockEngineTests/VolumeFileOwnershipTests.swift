import Foundation
import Testing
@testable import BlockEngine

/// One writer per volume file, and creation that a crash cannot leave half done.
@Suite("Volume file ownership and atomic create")
struct VolumeFileOwnershipTests {
    let configuration = VolumeConfiguration(sizeBytes: 1 << 20, blockSizeBytes: 4096, walSizeBytes: 256 * 1024)

    @Test("a second writable open of an open volume fails with inUse and changes nothing; after close it opens")
    func secondOpenIsRefused() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let volume = try await Volume.create(at: path, configuration: configuration, options: testOptions())
        try await volume.write(at: 3, pattern(tag: 9, lba: 3, blockSize: 4096))
        try await volume.flush()
        await #expect(throws: BlockError.inUse(path: path)) {
            _ = try await Volume.open(at: path, options: testOptions())
        }
        // Read-only inspection takes no lock.
        #expect(try Volume.inspect(at: path).sizeBytes == 1 << 20)
        try await volume.close()
        let reopened = try await Volume.open(at: path, options: testOptions())
        #expect(try await reopened.read(at: 3, blockCount: 1) == pattern(tag: 9, lba: 3, blockSize: 4096))
        try await reopened.close()
    }

    @Test("remove refuses a volume a writer holds (inUse) and deletes it once closed; a missing file is false")
    func removeOnlyWhenUnused() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let volume = try await Volume.create(at: path, configuration: configuration, options: testOptions())
        await #expect(throws: BlockError.inUse(path: path)) { try await Volume.remove(at: path) }
        #expect(FileManager.default.fileExists(atPath: path))
        try await volume.close()
        #expect(try await Volume.remove(at: path))
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try await !Volume.remove(at: path), "nothing left to remove")
    }

    @Test("create removes a staging file that an interrupted create left, and the new volume works")
    func createAfterInterruptedCreate() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let staging = Volume.stagingPath(forCreating: path)
        // What a crash during formatting leaves: a partial file under the staging name only.
        _ = FileManager.default.createFile(atPath: staging, contents: Data(repeating: 0xA5, count: 12_345))
        await #expect(throws: (any Error).self) { _ = try await Volume.open(at: path, options: testOptions()) }
        let volume = try await Volume.create(at: path, configuration: configuration, options: testOptions())
        #expect(!FileManager.default.fileExists(atPath: staging))
        try await volume.write(at: 0, pattern(tag: 1, lba: 0, blockSize: 4096))
        #expect(try await volume.read(at: 0, blockCount: 1) == pattern(tag: 1, lba: 0, blockSize: 4096))
        try await volume.close()
    }

    @Test("create fails with inUse while another create holds the staging file, and leaves it alone")
    func concurrentCreateIsRefused() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let staging = Volume.stagingPath(forCreating: path)
        let other = try PosixVolumeFile(path: staging, create: true)
        await #expect(throws: BlockError.inUse(path: staging)) {
            _ = try await Volume.create(at: path, configuration: configuration, options: testOptions())
        }
        #expect(FileManager.default.fileExists(atPath: staging))
        #expect(!FileManager.default.fileExists(atPath: path))
        other.close()
    }

    @Test("open removes a staging name left as a second link to the volume (a crash between link and unlink)")
    func openRemovesStagingLink() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let staging = Volume.stagingPath(forCreating: path)
        try await Volume.create(at: path, configuration: configuration, options: testOptions()).close()
        #expect(link(path, staging) == 0)
        // A staging file that is a different file is not touched by open.
        let volume = try await Volume.open(at: path, options: testOptions())
        #expect(!FileManager.default.fileExists(atPath: staging))
        try await volume.close()
        _ = FileManager.default.createFile(atPath: staging, contents: Data([1]))
        try await Volume.open(at: path, options: testOptions()).close()
        #expect(FileManager.default.fileExists(atPath: staging))
    }

    @Test("a volume dropped without close releases its file at once, also after writers waited for log space")
    func droppedVolumeReleasesItsFile() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let waits = try await fillAndDrop(path)
        #expect(waits > 0, "the writes waited for log space (each wait arms a timeout)")
        // Nothing of the dropped volume holds the file: it opens for writing at once.
        let reopened = try await Volume.open(at: path, options: testOptions())
        #expect(try await reopened.read(at: 0, blockCount: 1) == pattern(tag: 99, lba: 0, blockSize: 4096))
        try await reopened.close()
    }

    /// Writes 200 blocks through a 256 KiB log with write-back only on demand (writers wait
    /// for space), flushes, and drops the volume; returns how many times writers waited.
    private func fillAndDrop(_ path: String) async throws -> UInt64 {
        let volume = try await Volume.create(at: path, configuration: configuration, options: testOptions(background: false))
        for round in 0..<200 {
            let lba = UInt64(round % 256)
            try await volume.write(at: lba, pattern(tag: lba == 0 ? 99 : 1, lba: lba, blockSize: 4096))
        }
        try await volume.flush()
        return volume.info().walFullWaits
    }
}
