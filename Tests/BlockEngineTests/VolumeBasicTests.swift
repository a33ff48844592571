import Foundation
import Testing
@testable import BlockEngine

@Suite("Volume basics")
struct VolumeBasicTests {
    @Test("write, read back, flush, reopen", arguments: [512, 4096])
    func roundTrip(blockSize: Int) async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let volume = try await Volume.create(
            at: path, configuration: VolumeConfiguration(sizeBytes: 4 << 20, blockSizeBytes: blockSize,
                                                         walSizeBytes: 256 << 10),
            options: testOptions())
        let first = patterns(tag: 1, lba: 10, blockCount: 3, blockSize: blockSize)
        try await volume.write(at: 10, first)
        #expect(try await volume.read(at: 10, blockCount: 3) == first)
        // Unwritten blocks read as zeros.
        #expect(try await volume.read(at: 0, blockCount: 2) == [UInt8](repeating: 0, count: 2 * blockSize))
        // A read spanning written and unwritten blocks.
        let span = try await volume.read(at: 9, blockCount: 5)
        #expect(Array(span[blockSize..<(4 * blockSize)]) == first)
        try await volume.flush()
        try await volume.close()

        let reopened = try await Volume.open(at: path, options: testOptions())
        #expect(try await reopened.read(at: 10, blockCount: 3) == first)
        #expect(reopened.blockSizeBytes == blockSize)
        try await reopened.close()
    }

    @Test("overwrites: the newest write wins, in the WAL and after write-back")
    func overwrite() async throws {
        let directory = TemporaryDirectory()
        let volume = try await makeVolume(in: directory, sizeBytes: 1 << 20, walSizeBytes: 256 << 10, background: false)
        try await volume.write(at: 0, patterns(tag: 1, lba: 0, blockCount: 8, blockSize: 4096))
        try await volume.write(at: 2, patterns(tag: 2, lba: 2, blockCount: 2, blockSize: 4096))
        var expected = patterns(tag: 1, lba: 0, blockCount: 8, blockSize: 4096)
        expected.replaceSubrange(2 * 4096..<4 * 4096, with: patterns(tag: 2, lba: 2, blockCount: 2, blockSize: 4096))
        #expect(try await volume.read(at: 0, blockCount: 8) == expected)
        try await volume.checkpoint()
        #expect(volume.info().walUsedBytes == 0)
        #expect(try await volume.read(at: 0, blockCount: 8) == expected)
        try await volume.close()
    }

    @Test("requests outside the volume or not block-aligned are refused")
    func badRequests() async throws {
        let directory = TemporaryDirectory()
        let volume = try await makeVolume(in: directory, sizeBytes: 64 * 4096, walSizeBytes: 256 << 10)
        await #expect(throws: BlockError.outOfRange(lba: 64, blockCount: 1, volumeBlocks: 64)) {
            try await volume.write(at: 64, [UInt8](repeating: 1, count: 4096))
        }
        await #expect(throws: BlockError.outOfRange(lba: 63, blockCount: 2, volumeBlocks: 64)) {
            _ = try await volume.read(at: 63, blockCount: 2)
        }
        await #expect(throws: BlockError.misaligned(what: "buffer length", value: 100, alignmentBytes: 4096)) {
            try await volume.write(at: 0, [UInt8](repeating: 1, count: 100))
        }
        await #expect(throws: BlockError.outOfRange(lba: UInt64.max, blockCount: 1, volumeBlocks: 64)) {
            try await volume.trim(at: UInt64.max, blockCount: 1)
        }
        try await volume.close()
        await #expect(throws: BlockError.closed) { try await volume.flush() }
    }

    @Test("a write larger than one record is split and reads back whole")
    func largeWrite() async throws {
        let directory = TemporaryDirectory()
        let volume = try await makeVolume(in: directory, sizeBytes: 8 << 20, walSizeBytes: 256 << 10)
        // 1 MiB against a 256 KiB ring: several records, with waits for write-back between.
        let data = patterns(tag: 7, lba: 100, blockCount: 256, blockSize: 4096)
        try await volume.write(at: 100, data, fua: true)
        #expect(try await volume.read(at: 100, blockCount: 256) == data)
        try await volume.close()
    }

    @Test("writes and reads without waiting: served from the log and the page cache, refused when they would wait")
    func withoutWaiting() async throws {
        let directory = TemporaryDirectory()
        let volume = try await makeVolume(in: directory, sizeBytes: 8 << 20, walSizeBytes: 256 << 10, background: false)
        let data = patterns(tag: 3, lba: 20, blockCount: 4, blockSize: 4096)
        #expect(try volume.writeWithoutWaiting(at: 20, data))
        var read = [UInt8](repeating: 0xEE, count: 6 * 4096)
        // Blocks 19 and 24 come from the data region: once a read put them in the page cache,
        // the whole range is served from memory.
        _ = try await volume.read(at: 19, blockCount: 6)
        #expect(try read.withUnsafeMutableBytes { try volume.readWithoutWaiting(at: 19, into: $0) })
        #expect(Array(read[4096..<(5 * 4096)]) == data)
        #expect(read[0..<4096].allSatisfy { $0 == 0 } && read[(5 * 4096)...].allSatisfy { $0 == 0 })
        // After a failed attempt the caller may skip the page cache: the same bytes arrive.
        let again = UnsafeMutableRawBufferPointer.allocate(byteCount: 6 * 4096, alignment: 4096)
        defer { again.deallocate() }
        again.initializeMemory(as: UInt8.self, repeating: 0xEE)
        try await volume.read(at: 19, into: again, pageCacheChecked: true)
        #expect(Array(again) == read)

        // More than one record's payload is never written without waiting.
        let huge = [UInt8](repeating: 7, count: 1 << 20)
        #expect(try volume.writeWithoutWaiting(at: 0, huge) == false)
        // Fill the ring (no background write-back): the write that does not fit is refused
        // and writes nothing; after a checkpoint frees the ring it goes in.
        let block = [UInt8](repeating: 9, count: 32 << 10)
        var accepted = 0
        while try volume.writeWithoutWaiting(at: 100, block) {
            accepted += 1
            guard accepted < 8 else {
                Issue.record("a 256 KiB ring took 8 records of 32 KiB")
                break
            }
        }
        #expect(accepted >= 1)
        let refused = patterns(tag: 4, lba: 100, blockCount: 8, blockSize: 4096)
        #expect(try volume.writeWithoutWaiting(at: 100, refused) == false)
        #expect(try await volume.read(at: 100, blockCount: 8) == block)
        try await volume.checkpoint()
        #expect(try volume.writeWithoutWaiting(at: 100, refused))
        #expect(try await volume.read(at: 100, blockCount: 8) == refused)
        await #expect(throws: BlockError.outOfRange(lba: 2048, blockCount: 1, volumeBlocks: 2048)) {
            _ = try volume.writeWithoutWaiting(at: 2048, [UInt8](repeating: 0, count: 4096))
        }
        try await volume.close()
        #expect(throws: BlockError.closed) {
            _ = try volume.writeWithoutWaiting(at: 20, data)
        }
    }
}

@Suite("Block status")
struct BlockStatusTests {
    @Test("written blocks are mapped, trimmed and never-written ones deallocated, in the WAL and after write-back")
    func status() async throws {
        let directory = TemporaryDirectory()
        let volume = try await makeVolume(in: directory, sizeBytes: 4 << 20, walSizeBytes: 1 << 20, background: false)
        try await volume.write(at: 10, patterns(tag: 1, lba: 10, blockCount: 20, blockSize: 4096))
        try await volume.trim(at: 15, blockCount: 5)
        let expected = [
            BlockStatusExtent(lba: 0, blockCount: 10, provisioning: .deallocated),
            BlockStatusExtent(lba: 10, blockCount: 5, provisioning: .mapped),
            BlockStatusExtent(lba: 15, blockCount: 5, provisioning: .deallocated),
            BlockStatusExtent(lba: 20, blockCount: 10, provisioning: .mapped),
            BlockStatusExtent(lba: 30, blockCount: 70, provisioning: .deallocated),
        ]
        #expect(try volume.blockStatus(at: 0, blockCount: 100) == expected)
        try await volume.checkpoint()
        #expect(try volume.blockStatus(at: 0, blockCount: 100) == expected)
        #expect(try volume.blockStatus(at: 12, blockCount: 1) == [BlockStatusExtent(lba: 12, blockCount: 1, provisioning: .mapped)])
        try await volume.close()
    }
}

@Suite("Volume file")
struct VolumeFileTests {
    @Test("on a file without O_DIRECT (every write through the page cache) a volume keeps every flushed write across WAL laps, write-back and recovery")
    func bufferedFileKeepsEveryWrite() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let blockCount: UInt64 = 512
        let tags = try await writeBuffered(at: path, blockCount: blockCount)
        // Dropped without close: the last records come back from the log, the rest from
        // the data region the write-back wrote.
        let reopened = try await Volume.open(at: path, options: testOptions())
        for lba in 0..<blockCount {
            let tag = tags[Int(lba)]
            let expected = tag == 0 ? [UInt8](repeating: 0, count: 4096) : pattern(tag: tag, lba: lba, blockSize: 4096)
            #expect(try await reopened.read(at: lba, blockCount: 1) == expected, "LBA \(lba)")
        }
        try await reopened.close()
    }

    /// Writes 400 writes of 1-4 blocks (several laps of a 256 KiB log) to a new volume whose
    /// file has no O_DIRECT; every tenth is FUA, every fiftieth is followed by a flush, and
    /// the last one too. Drops the volume without closing it; returns each block's tag.
    private func writeBuffered(at path: String, blockCount: UInt64) async throws -> [UInt64] {
        let file = try PosixVolumeFile(path: path, create: true, directIO: false)
        try Volume.format(file: file, configuration: VolumeConfiguration(sizeBytes: blockCount * 4096, blockSizeBytes: 4096,
                                                                         walSizeBytes: 256 * 1024))
        // Write-back only when the log is full, so the last records are always left to recovery.
        let volume = try Volume.open(file: file, path: path, options: testOptions(background: false))
        var generator = SeededGenerator(seed: 7)
        var tags = [UInt64](repeating: 0, count: Int(blockCount))
        for round in 1...400 {
            let lba = generator.next() % (blockCount - 4)
            let count = Int(generator.next() % 4) + 1
            let tag = UInt64(round)
            try await volume.write(at: lba, patterns(tag: tag, lba: lba, blockCount: count, blockSize: 4096),
                                   fua: round % 10 == 0)
            for block in 0..<count { tags[Int(lba) + block] = tag }
            if round % 50 == 0 { try await volume.flush() }
        }
        #expect(volume.info().writeBackRuns > 0)
        #expect(volume.info().checkpointLSN < volume.info().lastLSN, "some records are recovered from the log")
        return tags
    }

    @Test("writeThrough (the log writer's O_DIRECT write, durable with RWF_DSYNC or not) stores exactly its bytes")
    func writeThroughRoundTrip() throws {
        let directory = TemporaryDirectory()
        let file = try PosixVolumeFile(path: directory.file("v.blk"), create: true)
        defer { file.close() }
        try file.setSize(1 << 20)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 3 * 4096, alignment: 4096)
        defer { buffer.deallocate() }
        for (round, durable) in [false, true].enumerated() {
            let bytes = pattern(tag: UInt64(round), lba: 0, blockSize: buffer.count)
            buffer.copyBytes(from: bytes)
            let offset = UInt64(8192 + round * 65536)
            try file.writeThrough(UnsafeRawBufferPointer(buffer), at: offset, durable: durable)
            var readBack = [UInt8](repeating: 0, count: buffer.count)
            try readBack.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
            #expect(readBack == bytes, "durable: \(durable)")
        }
        // The bytes around the writes are untouched (the file is sparse: zeros).
        var before = [UInt8](repeating: 1, count: 8192)
        try before.withUnsafeMutableBytes { try file.read(into: $0, at: 0) }
        #expect(before.allSatisfy { $0 == 0 })
    }
}
