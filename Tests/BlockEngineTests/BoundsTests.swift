// Work under a lock stays bounded, internal checks hold in release builds, and what the log
// writer puts into the file besides records is deterministic (zeros).

import Foundation
import Testing
@testable import BlockEngine

@Suite("Bounds, checks and padding")
struct BoundsTests {
    @Test("a trim of a whole 1 TiB volume goes into the log as records of at most 2^18 blocks, and reads zeros")
    func hugeTrimIsSplit() async throws {
        let directory = TemporaryDirectory()
        let blocks: UInt64 = (1 << 40) / 4096
        let volume = try await Volume.create(
            at: directory.file("big.blk"),
            configuration: VolumeConfiguration(sizeBytes: 1 << 40, blockSizeBytes: 4096, walSizeBytes: 1 << 20),
            options: testOptions(background: false))
        let edge = pattern(tag: 1, lba: 0, blockSize: 4096)
        try await volume.write(at: 0, edge)
        try await volume.write(at: blocks - 1, edge)
        let before = volume.info().lastLSN
        try await volume.trim(at: 0, blockCount: blocks)
        // Each record's index update (under the index lock) covers at most 64 chunks.
        #expect(volume.info().lastLSN - before == blocks >> 18)
        let zeros = [UInt8](repeating: 0, count: 4096)
        #expect(try await volume.read(at: 0, blockCount: 1) == zeros)
        #expect(try await volume.read(at: blocks - 1, blockCount: 1) == zeros)
        try await volume.checkpoint()
        #expect(volume.info().indexExtents == 0)
        #expect(try await volume.read(at: blocks - 1, blockCount: 1) == zeros)
        try await volume.close()
    }

    @Test("sorted extents split into groups of at most N index chunks, in order, covering all")
    func chunkGroups() {
        let chunkBlocks: UInt64 = 1 << RangeMap.chunkShift
        var map = RangeMap(blockSizeBytes: 4096)
        // Two extents in chunk 0, a trim over chunks 2...9, one in chunk 11.
        map.insert(lba: 1, blockCount: 2, lsn: 1, location: .wal(position: 0))
        map.insert(lba: 10, blockCount: 1, lsn: 2, location: .wal(position: 8192))
        map.insert(lba: 2 * chunkBlocks, blockCount: 8 * chunkBlocks, lsn: 3, location: .trimmed)
        map.insert(lba: 11 * chunkBlocks + 5, blockCount: 1, lsn: 4, location: .wal(position: 12288))
        let extents = map.allExtents()
        for maxChunks in 1...12 {
            let groups = RangeMap.chunkGroups(extents, maxChunks: maxChunks)
            #expect(groups.flatMap { $0 } == extents, "in order, all of them (max \(maxChunks))")
            for group in groups {
                var chunks = Set<UInt64>()
                for extent in group {
                    for chunk in (extent.lba >> RangeMap.chunkShift)...((extent.endLBA - 1) >> RangeMap.chunkShift) {
                        chunks.insert(chunk)
                    }
                }
                #expect(chunks.count <= maxChunks, "a group touches \(chunks.count) chunks (max \(maxChunks))")
            }
        }
    }

    @Test("an LSN gap in the ring stops the process, also in release builds (precondition)")
    func lsnGapTraps() async {
        await #expect(processExitsWith: .failure) {
            let slot = RecordSlot(lsn: 5, epoch: 0, startPosition: 0, headerPosition: 0, endPosition: 128, kind: .trim,
                                  lba: 0, blockCount: 1, completed: true)
            var ring = WALRing(sizeBytes: 64 * 1024, checkpointLSN: 0, tailPosition: 0, headPosition: 128,
                               recovered: [slot])
            _ = ring.reserve(kind: .trim, lba: 0, blockCount: 1, payloadLength: 0)
        }
    }

    @Test("a new WAL ring reads as zeros, even where freed memory was dirty")
    func ringStartsZeroed() throws {
        let size = 64 * 1024
        for _ in 0..<8 {
            let dirty = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
            dirty.initializeMemory(as: UInt8.self, repeating: 0xA5)
            dirty.deallocate()
        }
        let mirror = try WALMirror(sizeBytes: UInt64(size))
        var bytes = [UInt8](repeating: 0xFF, count: size)
        bytes.withUnsafeMutableBytes { mirror.load(into: $0, from: 0) }
        #expect(bytes.allSatisfy { $0 == 0 })
    }

    @Test("the bytes a PAD skips are written as zeros, not what an earlier lap left in the ring")
    func padBytesAreZeros() async throws {
        let file = SimulatedFile(image: try CloseTests.formattedImage(walSizeBytes: 64 * 1024))
        let volume = try Volume.open(file: file, path: "pad", options: testOptions(background: false))
        // Lap 1: fifteen 1-block records (4160 bytes each) end at 62400; the next one pads.
        for lba in 0..<16 { try await volume.write(at: UInt64(lba), pattern(tag: 1, lba: UInt64(lba), blockSize: 4096)) }
        try await volume.checkpoint()
        // Lap 2 starts at ring offset 4160: seven 2-block records (8256 bytes) end at 61952,
        // the eighth pads over [61952, 65536), where lap 1 left record bytes up to 62400.
        for index in 0..<8 {
            if index == 7 { try await volume.checkpoint() }
            let lba = UInt64(20 + 2 * index)
            try await volume.write(at: lba, patterns(tag: 2, lba: lba, blockCount: 2, blockSize: 4096))
        }
        try await volume.flush()
        let wal = Int(Superblock.walOffsetBytes)
        let image = file.image
        let padOffset = wal + 61952
        guard case let .valid(pad) = image[padOffset..<(padOffset + 64)].withUnsafeBytes({ WALRecordHeader.decode($0) })
        else {
            Issue.record("no record header at ring offset 61952")
            return
        }
        #expect(pad.kind == .pad)
        let skipped = image[(padOffset + 64)..<(wal + 64 * 1024)]
        #expect(skipped.allSatisfy { $0 == 0 }, "\(skipped.filter { $0 != 0 }.count) bytes are not zero")
        try await volume.close()
    }
}
