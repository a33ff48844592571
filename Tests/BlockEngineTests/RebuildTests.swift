// A replica rebuilt from its primary while the primary goes on writing: a fuzzy copy of the
// segments that differ, then the primary's log from the cut; also under power cuts.

import Foundation
import Testing
@testable import BlockEngine

@Suite("Rebuilding a replica")
struct RebuildTests {
    static let blockCount: UInt64 = 128
    static let segmentBlocks: UInt64 = 16

    func fill(_ volume: Volume, tag: UInt64, seed: UInt64, writes: Int) async throws {
        var generator = SeededGenerator(seed: seed)
        for step in 0..<writes {
            let lba = UInt64.random(in: 0..<(Self.blockCount - 2), using: &generator)
            try await volume.write(at: lba, patterns(tag: tag << 16 | UInt64(step), lba: lba, blockCount: 2, blockSize: 4096))
        }
    }

    /// Copies the primary's segments that differ into the rebuilding replica; returns the
    /// blocks copied. The primary may be written meanwhile (`during` runs between segments).
    func copyDiffering(from primary: Volume, to replica: Volume, during: (UInt64) async throws -> Void) async throws -> UInt64 {
        var copied: UInt64 = 0
        for segment in stride(from: 0, to: Self.blockCount, by: Int(Self.segmentBlocks)) {
            try await during(segment)
            let source = try await primary.read(at: segment, blockCount: Int(Self.segmentBlocks))
            let target = try await replica.read(at: segment, blockCount: Int(Self.segmentBlocks))
            if source != target {
                try await replica.writeImage(at: segment, source)
                copied += Self.segmentBlocks
            }
        }
        return copied
    }

    @Test("a fuzzy copy of the differing segments plus the log from the cut gives the primary's content and identity")
    func rebuildsWhilePrimaryWrites() async throws {
        let directory = TemporaryDirectory()
        let configuration = VolumeConfiguration(sizeBytes: Self.blockCount * 4096, blockSizeBytes: 4096,
                                                walSizeBytes: 1 << 20)
        let primary = try await Volume.create(at: directory.file("p.blk"), configuration: configuration,
                                              options: testOptions())
        let replicaPath = directory.file("r.blk")
        let replica = try await Volume.create(at: replicaPath, configuration: configuration, options: testOptions())
        try await primary.assignRole(.primary, epoch: 3)
        try await fill(primary, tag: 1, seed: 1, writes: 100)
        // The replica once had part of it and then diverged.
        try await fill(replica, tag: 9, seed: 1, writes: 40)
        try await replica.assignRole(.replica, epoch: 3)

        try await replica.beginRebuild(identity: primary.uuid)
        #expect(replica.imageIncomplete)
        #expect(replica.uuid == primary.uuid)
        let cut = primary.logPositions.completedLSN
        let hold = primary.holdLog(from: cut + 1)
        var step = 0
        let copied = try await copyDiffering(from: primary, to: replica) { segment in
            // The primary goes on writing while the copy runs (the copy is fuzzy).
            step += 1
            try await primary.write(at: segment + 3, patterns(tag: 7 << 16 | UInt64(step), lba: segment + 3,
                                                             blockCount: 1, blockSize: 4096))
        }
        #expect(copied > 0 && copied <= Self.blockCount)
        await #expect(throws: BlockError.self, "records wait for the log reset") {
            guard case let .records(records) = try primary.readLog(from: cut + 1), let first = records.first else { return }
            try await replica.applyReplicated(first)
        }
        try await replica.resetLog(toCheckpoint: cut)
        #expect(replica.logPositions.lastLSN == cut)
        guard case let .records(records) = try primary.readLog(from: cut + 1, maxBytes: 1 << 30) else {
            Issue.record("the held records were recycled")
            return
        }
        for record in records { try await replica.applyReplicated(record) }
        #expect(try await replica.syncLog() == primary.logPositions.lastLSN)
        primary.release(hold)
        #expect(try await replica.read(at: 0, blockCount: Int(Self.blockCount))
                == (try await primary.read(at: 0, blockCount: Int(Self.blockCount))))
        try await replica.endRebuild()
        #expect(!replica.imageIncomplete)
        await #expect(throws: BlockError.self, "image writes end with the copy") {
            try await replica.writeImage(at: 0, [UInt8](repeating: 1, count: 4096))
        }
        try await replica.close()
        let reopened = try await Volume.open(at: replicaPath, options: testOptions())
        #expect(!reopened.imageIncomplete && reopened.uuid == primary.uuid)
        #expect(try await reopened.read(at: 0, blockCount: Int(Self.blockCount))
                == (try await primary.read(at: 0, blockCount: Int(Self.blockCount))))
        try await reopened.close()
        try await primary.close()
    }

    @Test("a replica reopened in the middle of a rebuild knows its image is incomplete and copies again")
    func interruptedRebuild() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let replica = try await makeVolume(in: directory, sizeBytes: Self.blockCount * 4096, walSizeBytes: 256 << 10)
        try await replica.assignRole(.replica, epoch: 1)
        await #expect(throws: BlockError.self, "no copy running") {
            try await replica.writeImage(at: 0, [UInt8](repeating: 1, count: 4096))
        }
        try await replica.beginRebuild()
        try await replica.writeImage(at: 0, [UInt8](repeating: 1, count: 4096))
        try await replica.close()
        let reopened = try await Volume.open(at: path, options: testOptions())
        #expect(reopened.imageIncomplete)
        try await reopened.assignRole(.replica, epoch: 1)
        try await reopened.writeImage(at: 1, [UInt8](repeating: 2, count: 4096))
        try await reopened.resetLog(toCheckpoint: 50)
        try await reopened.endRebuild()
        #expect(reopened.logPositions.lastLSN == 50)
        #expect(try await reopened.read(at: 0, blockCount: 2)
                == [UInt8](repeating: 1, count: 4096) + [UInt8](repeating: 2, count: 4096))
        try await reopened.close()
    }

    @Test("power cuts during a rebuild: until its end is durable the image says it is incomplete; after, it is the primary's")
    func rebuildCrashes() async throws {
        var generator = SeededGenerator(seed: 51)
        let directory = TemporaryDirectory()
        let primary = try await makeVolume(in: directory, sizeBytes: Self.blockCount * 4096, walSizeBytes: 1 << 20)
        try await primary.assignRole(.primary, epoch: 1)
        try await fill(primary, tag: 2, seed: 2, writes: 80)
        let file = SimulatedFile()
        try Volume.format(file: file, configuration: VolumeConfiguration(sizeBytes: Self.blockCount * 4096,
                                                                         walSizeBytes: 256 << 10))
        let replica = try Volume.open(file: file, path: "sim", options: testOptions(background: false))
        try await fill(replica, tag: 8, seed: 3, writes: 30)
        try await replica.flush()
        let before = try await replica.read(at: 0, blockCount: Int(Self.blockCount))
        try await replica.assignRole(.replica, epoch: 1)
        file.resetHistory()
        try await replica.beginRebuild(identity: primary.uuid)
        let cut = primary.logPositions.completedLSN
        _ = try await copyDiffering(from: primary, to: replica) { _ in }
        try await replica.resetLog(toCheckpoint: cut)
        let ending = file.historyCount
        try await replica.endRebuild()
        let ended = file.historyCount
        let final = try await primary.read(at: 0, blockCount: Int(Self.blockCount))
        for _ in 0..<40 {
            let point = Int.random(in: 0...ended, using: &generator)
            let image = file.crashImage(at: point, using: &generator)
            let recovered = try Volume.open(file: SimulatedFile(image: image), path: "sim",
                                            options: testOptions(background: false))
            let content = try await recovered.read(at: 0, blockCount: Int(Self.blockCount))
            if point >= ended {
                #expect(!recovered.imageIncomplete && content == final, "point \(point): the rebuild ended")
            } else if !recovered.imageIncomplete {
                // Before the rebuild's start was durable, or after its end was (inside endRebuild).
                #expect(content == before || (point >= ending && content == final),
                        "point \(point): a complete image that is neither the old one nor the primary's")
            }
            try await recovered.close()
        }
        try await replica.close()
        try await primary.close()
    }
}
