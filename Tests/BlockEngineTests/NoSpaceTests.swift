import Foundation
import Testing
@testable import BlockEngine

/// The file system fills up under the volume: the write-back stalls, the volume does not fail.
@Suite("A full file system")
struct NoSpaceTests {
    let configuration = VolumeConfiguration(sizeBytes: 4 << 20, blockSizeBytes: 4096, walSizeBytes: 256 * 1024)

    func isNoSpace(_ error: (any Error)?) -> Bool {
        if case .noSpace = error as? BlockError { return true }
        return false
    }

    /// Expects `operation` (named `what`) to fail with `noSpace`.
    func expectNoSpace(_ what: String, _ operation: () async throws -> Void) async {
        do {
            try await operation()
            Issue.record("\(what) succeeded with the write-back stalled")
        } catch {
            #expect(isNoSpace(error), "\(what) failed with \(error)")
        }
    }

    /// Expects every LBA in `written` to read back what `writeUntilRefused` wrote there.
    func expectWritten(_ written: [UInt64], in volume: Volume) async throws {
        for lba in written {
            #expect(try await volume.read(at: lba, blockCount: 1) == pattern(tag: 1, lba: lba, blockSize: 4096))
        }
    }

    /// A volume on a file that can be made full; returns both.
    func openOnFillableFile(_ directory: TemporaryDirectory) async throws -> (Volume, FaultInjectingFile) {
        let path = directory.file("v.blk")
        try await Volume.create(at: path, configuration: configuration, options: testOptions()).close()
        let file = try FaultInjectingFile(path: path)
        return (try Volume.open(file: file, path: path, options: testOptions()), file)
    }

    /// Writes distinct blocks from LBA 0 on until one is refused; returns the LBAs written
    /// and the refusal.
    func writeUntilRefused(_ volume: Volume) async -> ([UInt64], BlockError?) {
        var written: [UInt64] = []
        for lba in 0..<UInt64(1024) {
            do {
                try await volume.write(at: lba, pattern(tag: 1, lba: lba, blockSize: 4096))
                written.append(lba)
            } catch {
                return (written, error)
            }
        }
        return (written, nil)
    }

    @Test("writes that find the log full fail with noSpace at once; reads and flushes go on; with room again the write-back resumes")
    func writeBackStallsAndResumes() async throws {
        let directory = TemporaryDirectory()
        let (volume, file) = try await openOnFillableFile(directory)
        file.full.store(true, ordering: .relaxed)
        let (written, refusal) = await writeUntilRefused(volume)
        #expect(isNoSpace(refusal), "refused with \(String(describing: refusal))")
        #expect(written.count > 8 && written.count < 64, "the 256 KiB log took \(written.count) blocks")
        try await volume.flush()
        try await expectWritten(written, in: volume)
        await expectNoSpace("checkpoint") { try await volume.checkpoint() }
        #expect(volume.info().failure == nil, "the volume did not fail")
        #expect(isNoSpace(volume.info().spaceStall))

        file.full.store(false, ordering: .relaxed)
        // The write-back retries every second; bounded wait for the first write that fits.
        var resumed = false
        for _ in 0..<200 where !resumed {
            do {
                try await volume.write(at: 1000, pattern(tag: 2, lba: 1000, blockSize: 4096))
                resumed = true
            } catch {
                #expect(isNoSpace(error))
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        #expect(resumed)
        #expect(volume.info().spaceStall == nil)
        try await volume.checkpoint()
        try await volume.close()
        let reopened = try await Volume.open(at: directory.file("v.blk"), options: testOptions())
        try await expectWritten(written, in: reopened)
        #expect(try await reopened.read(at: 1000, blockCount: 1) == pattern(tag: 2, lba: 1000, blockSize: 4096))
        try await reopened.close()
    }

    @Test("a volume closed while the file system is full reports noSpace and keeps every write in the log for the next open")
    func closeWhileFull() async throws {
        let directory = TemporaryDirectory()
        let (volume, file) = try await openOnFillableFile(directory)
        file.full.store(true, ordering: .relaxed)
        let (written, _) = await writeUntilRefused(volume)
        await expectNoSpace("close") { try await volume.close() }
        let reopened = try await Volume.open(at: directory.file("v.blk"), options: testOptions())
        try await expectWritten(written, in: reopened)
        try await reopened.checkpoint()
        try await reopened.close()
    }
}
