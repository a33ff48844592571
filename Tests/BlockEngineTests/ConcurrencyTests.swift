import Foundation
import Synchronization
import Testing
@testable import BlockEngine

@Suite("Concurrent callers")
struct ConcurrencyTests {
    static let blockSize = 4096
    static let blocks: UInt64 = 512

    @Test("writers on their own stripes read their newest write; flushed data survives reopen")
    func stripes() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let volume = try await Volume.create(
            at: path, configuration: VolumeConfiguration(sizeBytes: Self.blocks * 4096, blockSizeBytes: Self.blockSize,
                                                         walSizeBytes: 256 * 1024),
            options: testOptions())
        let writers = 8
        let stripe = Self.blocks / UInt64(writers)
        // The newest completed write of every block (a writer owns its stripe, so this is exact).
        let newest = Shared([UInt64](repeating: 0, count: Int(Self.blocks)))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var generator = SeededGenerator(seed: UInt64(writer) + 100)
                    let base = UInt64(writer) * stripe
                    for step in 0..<150 {
                        let lba = base + UInt64.random(in: 0..<stripe, using: &generator)
                        let count = UInt64.random(in: 1...min(16, base + stripe - lba), using: &generator)
                        let tag = UInt64(writer) << 32 | UInt64(step + 1)
                        try await volume.write(at: lba, patterns(tag: tag, lba: lba, blockCount: Int(count), blockSize: Self.blockSize),
                                               fua: step % 7 == 0)
                        newest.withLock { for block in lba..<(lba + count) { $0[Int(block)] = tag } }
                        let back = try await volume.read(at: lba, blockCount: Int(count))
                        #expect(back == patterns(tag: tag, lba: lba, blockCount: Int(count), blockSize: Self.blockSize),
                                "read after write must see the write")
                        if step % 10 == 0 { try await volume.flush() }
                    }
                }
            }
            // Readers scan across every stripe while the writers run: each block holds the
            // newest or an older version of its own writer's data, never a mix.
            for reader in 0..<2 {
                group.addTask {
                    var generator = SeededGenerator(seed: UInt64(reader) + 900)
                    for _ in 0..<200 {
                        let lba = UInt64.random(in: 0..<(Self.blocks - 32), using: &generator)
                        let before = newest.withLock { Array($0[Int(lba)..<Int(lba + 32)]) }
                        let bytes = try await volume.read(at: lba, blockCount: 32)
                        for offset in 0..<32 {
                            let block = Array(bytes[(offset * Self.blockSize)..<((offset + 1) * Self.blockSize)])
                            let tagBefore = before[offset]
                            if tagBefore == 0 { continue }
                            let owner = tagBefore >> 32
                            let matches = ((tagBefore & 0xFFFF_FFFF)...1000).contains { step in
                                block == pattern(tag: owner << 32 | step, lba: lba + UInt64(offset), blockSize: Self.blockSize)
                            }
                            #expect(matches, "block \(lba + UInt64(offset)) regressed below a completed write")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        try await volume.flush()
        let final = try await volume.read(at: 0, blockCount: Int(Self.blocks))
        let tags = newest.withLock { $0 }
        for block in 0..<Int(Self.blocks) where tags[block] != 0 {
            #expect(Array(final[(block * Self.blockSize)..<((block + 1) * Self.blockSize)])
                    == pattern(tag: tags[block], lba: UInt64(block), blockSize: Self.blockSize))
        }
        try await volume.close()
        let reopened = try await Volume.open(at: path, options: testOptions())
        #expect(try await reopened.read(at: 0, blockCount: Int(Self.blocks)) == final)
        try await reopened.close()
    }

    @Test("a volume dropped without close keeps every flushed write (recovered from the WAL)")
    func dropWithoutClose() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let data = patterns(tag: 11, lba: 0, blockCount: 64, blockSize: Self.blockSize)
        do {
            let volume = try await Volume.create(
                at: path, configuration: VolumeConfiguration(sizeBytes: 1 << 20, blockSizeBytes: Self.blockSize,
                                                             walSizeBytes: 1 << 20),
                options: testOptions(background: false))
            try await volume.write(at: 0, data)
            try await volume.flush()
            #expect(volume.info().walUsedBytes > 0, "the data is still only in the WAL")
        }
        let reopened = try await Volume.open(at: path, options: testOptions(background: false))
        #expect(reopened.info().indexExtents > 0, "recovery replayed the WAL")
        #expect(try await reopened.read(at: 0, blockCount: 64) == data)
        try await reopened.close()
    }

    @Test("overlapping writers: every block is one whole write, and reads agree after reopen")
    func overlapping() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let volume = try await Volume.create(
            at: path, configuration: VolumeConfiguration(sizeBytes: 64 * 4096, blockSizeBytes: Self.blockSize,
                                                         walSizeBytes: 128 * 1024),
            options: testOptions())
        let written = Shared([Set<UInt64>](repeating: [0], count: 64))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<6 {
                group.addTask {
                    var generator = SeededGenerator(seed: UInt64(writer) + 7)
                    for step in 0..<120 {
                        let lba = UInt64.random(in: 0..<60, using: &generator)
                        let count = UInt64.random(in: 1...4, using: &generator)
                        let tag = UInt64(writer) << 32 | UInt64(step + 1)
                        written.withLock { for block in lba..<(lba + count) { $0[Int(block)].insert(tag) } }
                        if step % 9 == 0 {
                            try await volume.trim(at: lba, blockCount: count)
                        } else {
                            try await volume.write(at: lba, patterns(tag: tag, lba: lba, blockCount: Int(count), blockSize: Self.blockSize))
                        }
                        if step % 13 == 0 { try await volume.flush() }
                    }
                }
            }
            group.addTask {
                for _ in 0..<100 {
                    let bytes = try await volume.read(at: 0, blockCount: 64)
                    let candidates = written.withLock { $0 }
                    for block in 0..<64 {
                        let content = Array(bytes[(block * Self.blockSize)..<((block + 1) * Self.blockSize)])
                        let whole = content.allSatisfy { $0 == 0 } || candidates[block].contains {
                            content == pattern(tag: $0, lba: UInt64(block), blockSize: Self.blockSize)
                        }
                        #expect(whole, "block \(block) is not one whole write")
                    }
                }
            }
            try await group.waitForAll()
        }
        try await volume.flush()
        let before = try await volume.read(at: 0, blockCount: 64)
        try await volume.close()
        let reopened = try await Volume.open(at: path, options: testOptions())
        #expect(try await reopened.read(at: 0, blockCount: 64) == before)
        try await reopened.close()
    }

    @Test("concurrent FUA writes share fdatasyncs (group commit)")
    func groupCommit() async throws {
        let directory = TemporaryDirectory()
        // Every flush goes through the log writer, which waits up to 5 ms for company: on a
        // loaded 2-core machine the writers' tasks may otherwise run one at a time, each
        // finding the log idle (seen: 640 syncs for 640 writes while compilers ran).
        var options = testOptions()
        options.callerMaySync = false
        options.groupCommitMaxDelayMicros = 5_000
        let volume = try await Volume.create(
            at: directory.file("v.blk"),
            configuration: VolumeConfiguration(sizeBytes: 8 << 20, blockSizeBytes: 4096, walSizeBytes: 4 << 20),
            options: options)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<32 {
                group.addTask {
                    for step in 0..<20 {
                        let lba = UInt64(writer * 64 + step)
                        try await volume.write(at: lba, patterns(tag: 9, lba: lba, blockCount: 1, blockSize: 4096), fua: true)
                    }
                }
            }
            try await group.waitForAll()
        }
        let info = volume.info()
        // A FUA write whose record an already-started sync covered needs no wait of its own.
        #expect(info.groupCommitWaitersServed <= 640)
        #expect(info.groupCommitSyncs < 640, "32 concurrent FUA writers must share syncs")
        #expect(info.groupCommitLargestBatch > 1)
        #expect(info.durableLSN == info.lastLSN)
        try await volume.close()
    }
}
