import Foundation
import Testing
@testable import BlockEngine

@Suite("WAL wrap-around, back-pressure and space")
struct WALPressureTests {
    @Test("the WAL wraps hundreds of times and every block stays correct")
    func manyWraps() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let blockSize = 4096
        let blocks: UInt64 = 256
        let volume = try await Volume.create(
            at: path, configuration: VolumeConfiguration(sizeBytes: blocks * 4096, blockSizeBytes: blockSize,
                                                         walSizeBytes: 64 * 1024),
            options: testOptions())
        var generator = SeededGenerator(seed: 42)
        var expected = [[UInt8]](repeating: [UInt8](repeating: 0, count: blockSize), count: Int(blocks))
        var writtenBytes = 0
        var tag: UInt64 = 1
        while writtenBytes < 24 << 20 {
            let lba = UInt64.random(in: 0..<blocks, using: &generator)
            let count = Int.random(in: 1...Int(min(8, blocks - lba)), using: &generator)
            try await volume.write(at: lba, patterns(tag: tag, lba: lba, blockCount: count, blockSize: blockSize))
            for offset in 0..<count { expected[Int(lba) + offset] = pattern(tag: tag, lba: lba + UInt64(offset), blockSize: blockSize) }
            writtenBytes += count * blockSize
            tag += 1
        }
        let info = volume.info()
        #expect(info.writeBackRuns > 20)
        #expect(UInt64(writtenBytes) > 300 * info.walSizeBytes, "the ring wrapped at least 300 times")
        #expect(try await volume.read(at: 0, blockCount: Int(blocks)) == expected.flatMap { $0 })
        try await volume.close()
        let reopened = try await Volume.open(at: path, options: testOptions())
        #expect(try await reopened.read(at: 0, blockCount: Int(blocks)) == expected.flatMap { $0 })
        try await reopened.close()
    }

    @Test("writers wait for a slow write-back instead of failing or spinning")
    func backPressure() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let configuration = VolumeConfiguration(sizeBytes: 2 << 20, blockSizeBytes: 4096, walSizeBytes: 64 * 1024)
        try await Volume.create(at: path, configuration: configuration, options: testOptions()).close()
        let volume = try Volume.open(file: try FaultInjectingFile(path: path, batchDelayMicros: 20_000), path: path,
                                     options: testOptions())
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    for step in 0..<32 {
                        let lba = UInt64(writer * 128 + step * 4)
                        try await volume.write(at: lba, patterns(tag: UInt64(writer), lba: lba, blockCount: 4, blockSize: 4096))
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(volume.info().walFullWaits > 0, "a 64 KiB ring cannot absorb 2 MiB without waiting")
        for writer in 0..<4 {
            let lba = UInt64(writer * 128)
            #expect(try await volume.read(at: lba, blockCount: 128) == patterns(tag: UInt64(writer), lba: lba, blockCount: 128, blockSize: 4096))
        }
        try await volume.close()
    }

    @Test("a writer gives up with walFullTimeout when the write-back stalls past the bound")
    func walFullTimeout() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let configuration = VolumeConfiguration(sizeBytes: 2 << 20, blockSizeBytes: 4096, walSizeBytes: 64 * 1024)
        try await Volume.create(at: path, configuration: configuration, options: testOptions()).close()
        let volume = try Volume.open(file: try FaultInjectingFile(path: path, batchDelayMicros: 1_500_000), path: path,
                                     options: testOptions(walFullTimeoutMs: 100))
        var timedOut = false
        for step in 0..<64 {
            do {
                try await volume.write(at: UInt64(step * 3), patterns(tag: 1, lba: 0, blockCount: 3, blockSize: 4096))
            } catch {
                #expect(error == .walFullTimeout(waitedMs: 100))
                timedOut = true
                break
            }
        }
        #expect(timedOut)
        try await volume.close()
    }

    @Test("TRIM reads zeros at once and gives the space back after write-back")
    func trimFreesSpace() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let volume = try await Volume.create(
            at: path, configuration: VolumeConfiguration(sizeBytes: 16 << 20, blockSizeBytes: 4096, walSizeBytes: 1 << 20),
            options: testOptions(background: false))
        let data = patterns(tag: 3, lba: 0, blockCount: 1024, blockSize: 4096)
        try await volume.write(at: 0, data)
        try await volume.checkpoint()
        let allocatedFull = try allocatedBytes(path)
        try await volume.trim(at: 0, blockCount: 1024)
        #expect(try await volume.read(at: 0, blockCount: 1024) == [UInt8](repeating: 0, count: 1024 * 4096))
        try await volume.checkpoint()
        let allocatedTrimmed = try allocatedBytes(path)
        #expect(allocatedFull - allocatedTrimmed >= 4 << 20 - 64 << 10, "at least the 4 MiB written was released")
        #expect(try await volume.read(at: 0, blockCount: 1024) == [UInt8](repeating: 0, count: 1024 * 4096))
        try await volume.close()
    }

    @Test("reopen after a clean close replays nothing and loses nothing")
    func cleanReopen() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let volume = try await Volume.create(
            at: path, configuration: VolumeConfiguration(sizeBytes: 4 << 20, blockSizeBytes: 4096, walSizeBytes: 1 << 20),
            options: testOptions(background: false))
        let data = patterns(tag: 5, lba: 7, blockCount: 100, blockSize: 4096)
        try await volume.write(at: 7, data)
        let lastLSN = volume.info().lastLSN
        try await volume.close()
        let reopened = try await Volume.open(at: path, options: testOptions())
        let info = reopened.info()
        #expect(info.checkpointLSN == lastLSN, "close wrote everything back")
        #expect(info.walUsedBytes == 0 && info.indexExtents == 0, "nothing to replay")
        #expect(try await reopened.read(at: 7, blockCount: 100) == data)
        try await reopened.close()
    }

    func allocatedBytes(_ path: String) throws -> UInt64 {
        var info = stat()
        guard stat(path, &info) == 0 else { throw BlockError.io(operation: "stat", errno: errno) }
        return UInt64(info.st_blocks) * 512
    }
}
