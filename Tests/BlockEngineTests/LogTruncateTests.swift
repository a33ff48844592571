// A replica truncating a divergent suffix of its log, then taking a new primary's records
// at the same LSNs; also under power cuts.

import Foundation
import Testing
@testable import BlockEngine

@Suite("Truncating a replica's log")
struct LogTruncateTests {
    static let blockSize = 4096
    static let blockCount: UInt64 = 64

    /// Records of one branch of history and the volume's content after each LSN.
    struct Branch {
        var records: [LogRecord] = []
        var contentAfter: [UInt64: [UInt8]] = [:]
    }

    /// `count` records from `firstLSN` at `epoch`, starting from `content`.
    static func branch(from firstLSN: UInt64, count: Int, epoch: UInt64, tag: UInt64, content start: [UInt8],
                       generator: inout SeededGenerator) -> Branch {
        var branch = Branch()
        var content = start
        for offset in 0..<count {
            let lsn = firstLSN + UInt64(offset)
            let lba = UInt64.random(in: 0..<(blockCount - 3), using: &generator)
            let payload = patterns(tag: tag << 16 | lsn, lba: lba, blockCount: 2, blockSize: blockSize)
            let start = Int(lba) * blockSize
            content.replaceSubrange(start..<(start + payload.count), with: payload)
            branch.records.append(LogRecord(lsn: lsn, epoch: epoch, kind: .write, lba: lba, blockCount: 2,
                                            payload: payload, payloadCRC: payload.withUnsafeBytes { CRC32C.checksum($0) }))
            branch.contentAfter[lsn] = content
        }
        return branch
    }

    @Test("a truncated suffix is gone, the new primary's records take its LSNs, and a reopen agrees")
    func truncatesAndTakesNewRecords() async throws {
        var generator = SeededGenerator(seed: 41)
        let zero = [UInt8](repeating: 0, count: Int(Self.blockCount) * Self.blockSize)
        let old = Self.branch(from: 1, count: 10, epoch: 1, tag: 1, content: zero, generator: &generator)
        let new = Self.branch(from: 7, count: 5, epoch: 2, tag: 2, content: old.contentAfter[6]!, generator: &generator)
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let replica = try await makeVolume(in: directory, sizeBytes: Self.blockCount * 4096, walSizeBytes: 1 << 20,
                                           background: false)
        try await replica.assignRole(.replica, epoch: 1)
        for record in old.records { try await replica.applyReplicated(record) }
        #expect(try await replica.syncLog() == 10)

        try await replica.truncateLog(after: 6)
        #expect(replica.logPositions.lastLSN == 6)
        #expect(replica.logPositions.durableLSN == 6)
        #expect(try await replica.read(at: 0, blockCount: Int(Self.blockCount)) == old.contentAfter[6]!)
        try await replica.assignRole(.replica, epoch: 2)
        for record in new.records { try await replica.applyReplicated(record) }
        #expect(try await replica.syncLog() == 11)
        #expect(try await replica.read(at: 0, blockCount: Int(Self.blockCount)) == new.contentAfter[11]!)
        try await replica.close()

        let reopened = try await Volume.open(at: path, options: testOptions())
        #expect(reopened.logPositions.lastLSN == 11)
        #expect(try await reopened.read(at: 0, blockCount: Int(Self.blockCount)) == new.contentAfter[11]!)
        try await reopened.close()
    }

    @Test("truncation is refused below the checkpoint and on a copy that takes writes")
    func refusals() async throws {
        let directory = TemporaryDirectory()
        let volume = try await makeVolume(in: directory, sizeBytes: 1 << 20, walSizeBytes: 256 << 10, background: false)
        for lba in 0..<UInt64(4) { try await volume.write(at: lba, pattern(tag: 1, lba: lba, blockSize: 4096)) }
        await #expect(throws: BlockError.self, "standalone") { try await volume.truncateLog(after: 2) }
        try await volume.checkpoint()
        try await volume.fence()
        await #expect(throws: BlockError.self, "below the checkpoint") { try await volume.truncateLog(after: 2) }
        try await volume.truncateLog(after: 4)
        try await volume.close()
    }

    @Test("power cuts around a truncation: the log is one branch or the other, never a mix, and never short of what was acknowledged")
    func truncationCrashes() async throws {
        var generator = SeededGenerator(seed: 43)
        let zero = [UInt8](repeating: 0, count: Int(Self.blockCount) * Self.blockSize)
        let old = Self.branch(from: 1, count: 40, epoch: 1, tag: 1, content: zero, generator: &generator)
        let new = Self.branch(from: 26, count: 30, epoch: 2, tag: 2, content: old.contentAfter[25]!, generator: &generator)
        let file = SimulatedFile()
        try Volume.format(file: file, configuration: VolumeConfiguration(sizeBytes: Self.blockCount * UInt64(Self.blockSize),
                                                                         walSizeBytes: 1 << 20))
        let replica = try Volume.open(file: file, path: "sim", options: testOptions(background: false))
        try await replica.assignRole(.replica, epoch: 1)
        file.resetHistory()
        var acknowledged: [(point: Int, lsn: UInt64)] = []
        for record in old.records {
            try await replica.applyReplicated(record)
            if record.lsn % 8 == 0 {
                let durable = try await replica.syncLog()
                acknowledged.append((file.historyCount, durable))
            }
        }
        let truncating = file.historyCount
        try await replica.truncateLog(after: 25)
        let truncatedAt = file.historyCount
        try await replica.assignRole(.replica, epoch: 2)
        for record in new.records {
            try await replica.applyReplicated(record)
            if record.lsn % 8 == 0 {
                let durable = try await replica.syncLog()
                acknowledged.append((file.historyCount, durable))
            }
        }
        let historyLength = file.historyCount
        for _ in 0..<60 {
            let point = Int.random(in: 0...historyLength, using: &generator)
            let image = file.crashImage(at: point, using: &generator)
            let recovered = try Volume.open(file: SimulatedFile(image: image), path: "sim",
                                            options: testOptions(background: false))
            let last = recovered.logPositions.lastLSN
            let content = try await recovered.read(at: 0, blockCount: Int(Self.blockCount))
            let expectedOld = last == 0 ? zero : old.contentAfter[last]
            let expectedNew = last <= 25 ? expectedOld : new.contentAfter[last]
            // What was acknowledged durable on the point's branch survives (the truncation
            // withdrew the old branch's records after 25 on purpose).
            let before = acknowledged.last(where: { $0.point <= point })?.lsn ?? 0
            let afterCut = acknowledged.filter { $0.point >= truncatedAt && $0.point <= point }.map(\.lsn).max()
            let onOldBranch = content == expectedOld && last >= before
            let onNewBranch = content == expectedNew && last >= (afterCut ?? min(before, 25))
            if point >= truncatedAt {
                #expect(onNewBranch, "point \(point) after the truncation: not the new branch at \(last) (acknowledged \(before))")
            } else if point < truncating {
                #expect(onOldBranch, "point \(point) before the truncation: not the old branch at \(last) (acknowledged \(before))")
            } else {
                // Cut while truncating: before its superblock was durable or after.
                #expect(onOldBranch || onNewBranch, "point \(point) during the truncation: neither branch at \(last)")
            }
            try await recovered.close()
        }
        try await replica.close()
    }
}
