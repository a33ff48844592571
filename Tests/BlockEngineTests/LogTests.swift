// The engine's side of replication: reading the log by LSN, waiting for records, holds
// that keep records for replicas, and a replica applying its primary's records (also under
// power cuts).

import Foundation
import Testing
@testable import BlockEngine

@Suite("The log for replication")
struct LogTests {
    static let blockSize = 4096

    func block(_ tag: UInt64, _ lba: UInt64) -> [UInt8] { pattern(tag: tag, lba: lba, blockSize: Self.blockSize) }

    func records(_ read: LogRead) -> [LogRecord] {
        if case let .records(records) = read { return records }
        Issue.record("expected records, got \(read)")
        return []
    }

    @Test("records read back in LSN order with their epoch, payload and CRC; reads are bounded and stop at the completed LSN")
    func readsRecords() async throws {
        let directory = TemporaryDirectory()
        let volume = try await makeVolume(in: directory, sizeBytes: 1 << 20, walSizeBytes: 256 << 10, background: false)
        try await volume.assignRole(.primary, epoch: 3)
        var lsns: [UInt64] = []
        for lba in 0..<UInt64(6) { lsns.append(try await volume.write(at: lba, block(1, lba))) }
        lsns.append(try await volume.trim(at: 2, blockCount: 2))
        #expect(lsns == Array(1...7), "LSNs are contiguous from 1")
        let all = records(try volume.readLog(from: 1))
        #expect(all.map(\.lsn) == Array(1...7))
        #expect(all.allSatisfy { $0.epoch == 3 })
        #expect(all[4].kind == .write && all[4].lba == 4 && all[4].payload == block(1, 4))
        #expect(all[4].payloadCRC == all[4].payload.withUnsafeBytes { CRC32C.checksum($0) })
        #expect(all[6].kind == .trim && all[6].blockCount == 2 && all[6].payload.isEmpty)
        let bounded = records(try volume.readLog(from: 3, maxBytes: 2 * Self.blockSize))
        #expect(bounded.map(\.lsn) == [3, 4])
        #expect(records(try volume.readLog(from: 8)).isEmpty)
        #expect(volume.logPositions.committedLSN == 0, "nothing flushed yet")
        #expect(try await volume.flush() == 7)
        #expect(volume.logPositions.committedLSN == 7)
        try await volume.checkpoint()
        #expect(try volume.readLog(from: 1) == .recycled(oldestLSN: 8))
        try await volume.close()
    }

    @Test("a reader waiting for the log wakes when a record completes, and after its timeout otherwise")
    func waitsForRecords() async throws {
        let directory = TemporaryDirectory()
        let volume = try await makeVolume(in: directory, sizeBytes: 1 << 20, walSizeBytes: 256 << 10)
        #expect(await volume.waitForLog(after: 0, timeoutMs: 20) == 0, "nothing written: the timeout ends the wait")
        async let woken = volume.waitForLog(after: 0, timeoutMs: 60_000)
        try await Task.sleep(for: .milliseconds(20))
        try await volume.write(at: 0, block(2, 0))
        #expect(await woken >= 1)
        try await volume.close()
    }

    @Test("logBytes: what a copy durable up to an LSN lacks of the log; nil before the checkpoint")
    func logBytesAfter() async throws {
        let directory = TemporaryDirectory()
        let volume = try await makeVolume(in: directory, sizeBytes: 1 << 20, walSizeBytes: 256 << 10)
        try await volume.assignRole(.primary, epoch: 1)
        let hold = volume.holdLog(from: 1)
        for lba in 0..<UInt64(3) { try await volume.write(at: lba, block(7, lba), fua: true) }
        let all = try #require(volume.logBytes(after: 0))
        let two = try #require(volume.logBytes(after: 1))
        #expect(all > two && two > 0, "each record takes its block and a header")
        #expect(all - two == two / 2, "three records of one block each are the same size")
        #expect(volume.logBytes(after: 3) == 0)
        volume.advance(hold, to: 3)
        try await volume.checkpoint()
        #expect(volume.logPositions.checkpointLSN == 2)
        #expect(volume.logBytes(after: 1) == nil, "written back: more than the log")
        #expect(volume.logBytes(after: 2) == all / 3)
        volume.release(hold)
        try await volume.close()
    }

    @Test("a reopened primary made a replica drops its recovered hold: it can be rebuilt")
    func replicaDropsRecoveredHold() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let volume = try await makeVolume(in: directory, sizeBytes: 1 << 20, walSizeBytes: 256 << 10)
        try await volume.assignRole(.primary, epoch: 1)
        let hold = volume.holdLog(from: 1)
        for lba in 0..<UInt64(3) { try await volume.write(at: lba, block(5, lba), fua: true) }
        try await volume.close()
        _ = hold

        let reopened = try await Volume.open(at: path, options: testOptions())
        #expect(reopened.recoveredLogHold != nil)
        try await reopened.assignRole(.replica, epoch: 2)
        #expect(reopened.recoveredLogHold == nil)
        try await reopened.beginRebuild()
        #expect(reopened.logPositions.checkpointLSN == 3, "the write-back took every record before the rebuild")
        try await reopened.close()
    }

    @Test("a hold keeps records in the log, across a close and reopen, until it advances")
    func holdKeepsRecords() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let volume = try await makeVolume(in: directory, sizeBytes: 1 << 20, walSizeBytes: 256 << 10)
        try await volume.assignRole(.primary, epoch: 1)
        #expect(volume.recoveredLogHold == nil)
        let hold = volume.holdLog(from: 1)
        for lba in 0..<UInt64(4) { try await volume.write(at: lba, block(3, lba), fua: true) }
        try await volume.checkpoint()
        #expect(volume.logPositions.checkpointLSN == 0, "the write-back left the held records alone")
        try await volume.close()

        // Reopened as primary, it holds what its log kept until replication takes over.
        let reopened = try await Volume.open(at: path, options: testOptions())
        let recovered = try #require(reopened.recoveredLogHold)
        try await reopened.checkpoint()
        #expect(records(try reopened.readLog(from: 1)).map(\.lsn) == [1, 2, 3, 4], "held records survived the close")
        let again = reopened.holdLog(from: 3)
        reopened.release(recovered)
        #expect(reopened.recoveredLogHold == nil)
        try await reopened.checkpoint()
        #expect(reopened.logPositions.checkpointLSN == 2)
        reopened.advance(again, to: 5)
        try await reopened.checkpoint()
        #expect(reopened.logPositions.checkpointLSN == 4)
        #expect(reopened.logHoldBroken(again) == nil)
        reopened.release(again)
        for lba in 0..<UInt64(4) { #expect(try await reopened.read(at: lba, blockCount: 1) == block(3, lba)) }
        try await reopened.close()
        _ = hold
    }

    @Test("a hold breaks once its records fill the bound, and writers go on")
    func holdBreaksOnBytes() async throws {
        let directory = TemporaryDirectory()
        var options = testOptions(walFullTimeoutMs: 5_000)
        options.logRetentionMaxFraction = 0.25
        let volume = try await Volume.create(
            at: directory.file("v.blk"),
            configuration: VolumeConfiguration(sizeBytes: 4 << 20, blockSizeBytes: 4096, walSizeBytes: 256 << 10),
            options: options)
        let hold = volume.holdLog(from: 1)
        // Four times the log: without the bound the writers would wait for space forever.
        for lba in 0..<UInt64(256) { try await volume.write(at: lba % 64, block(4, lba)) }
        #expect(volume.logHoldBroken(hold) != nil)
        #expect(volume.advance(hold, to: 10) != nil, "a broken hold stays broken")
        try await volume.close()
    }

    @Test("a hold that does not advance for the time bound breaks")
    func holdBreaksOnTime() async throws {
        let directory = TemporaryDirectory()
        var options = testOptions()
        options.logRetentionMaxMs = 30
        let volume = try await Volume.create(
            at: directory.file("v.blk"),
            configuration: VolumeConfiguration(sizeBytes: 1 << 20, blockSizeBytes: 4096, walSizeBytes: 256 << 10),
            options: options)
        let hold = volume.holdLog(from: 1)
        try await volume.write(at: 0, block(5, 0))
        try await Task.sleep(for: .milliseconds(60))
        try await volume.write(at: 1, block(5, 1))
        try await volume.checkpoint()
        #expect(volume.logHoldBroken(hold) != nil)
        #expect(volume.logPositions.checkpointLSN == 2)
        try await volume.close()
    }

    @Test("a replica applying its primary's log holds the same blocks, with the primary's LSNs and epochs")
    func replicaApplies() async throws {
        let directory = TemporaryDirectory()
        // A log four times what one round of shipping holds (the retention bound is half of it).
        let primary = try await Volume.create(
            at: directory.file("p.blk"),
            configuration: VolumeConfiguration(sizeBytes: 1 << 20, blockSizeBytes: 4096, walSizeBytes: 1 << 20),
            options: testOptions())
        // Write-back only when the replica's log fills, so its newest records stay to be read.
        let replica = try await Volume.create(
            at: directory.file("r.blk"),
            configuration: VolumeConfiguration(sizeBytes: 1 << 20, blockSizeBytes: 4096, walSizeBytes: 1 << 20),
            options: testOptions(background: false))
        try await primary.assignRole(.primary, epoch: 1)
        try await replica.assignRole(.replica, epoch: 1)
        let hold = primary.holdLog(from: 1)
        var generator = SeededGenerator(seed: 21)
        var shipped: UInt64 = 0
        for step in 0..<UInt64(300) {
            let lba = UInt64.random(in: 0..<250, using: &generator)
            if step % 7 == 6 {
                try await primary.trim(at: lba, blockCount: 3)
            } else {
                try await primary.write(at: lba, patterns(tag: step, lba: lba, blockCount: 2, blockSize: 4096))
            }
            if step == 150 { try await primary.assignRole(.primary, epoch: 2) }
            if step == 150 { try await replica.assignRole(.replica, epoch: 2) }
            if step % 20 == 19 {
                for record in records(try primary.readLog(from: shipped + 1, maxBytes: 1 << 30)) {
                    try await replica.applyReplicated(record)
                    shipped = record.lsn
                }
                primary.advance(hold, to: try await replica.syncLog() + 1)
                #expect(primary.logHoldBroken(hold) == nil)
            }
        }
        for record in records(try primary.readLog(from: shipped + 1, maxBytes: 1 << 30)) {
            try await replica.applyReplicated(record)
        }
        let durable = try await replica.syncLog()
        #expect(durable == primary.logPositions.lastLSN)
        #expect(try await replica.read(at: 0, blockCount: 256) == (try await primary.read(at: 0, blockCount: 256)))
        #expect(records(try replica.readLog(from: durable)).first?.epoch == 2)
        await #expect(throws: BlockError.self) { try await replica.write(at: 0, block(9, 0)) }
        try await replica.close()
        try await primary.close()
    }

    @Test("a replica refuses records out of LSN order, from a later epoch, with a bad checksum, or when it is not a replica")
    func replicaRefuses() async throws {
        let directory = TemporaryDirectory()
        let replica = try await makeVolume(in: directory, sizeBytes: 1 << 20, walSizeBytes: 256 << 10)
        let payload = block(6, 0)
        let crc = payload.withUnsafeBytes { CRC32C.checksum($0) }
        let first = LogRecord(lsn: 1, epoch: 1, kind: .write, lba: 0, blockCount: 1, payload: payload, payloadCRC: crc)
        await #expect(throws: BlockError.self, "standalone") { try await replica.applyReplicated(first) }
        try await replica.assignRole(.replica, epoch: 1)
        var gap = first
        gap.lsn = 2
        await #expect(throws: BlockError.self, "gap") { try await replica.applyReplicated(gap) }
        var later = first
        later.epoch = 2
        await #expect(throws: BlockError.self, "later epoch") { try await replica.applyReplicated(later) }
        var damaged = first
        damaged.payload[7] ^= 1
        await #expect(throws: BlockError.self, "checksum") { try await replica.applyReplicated(damaged) }
        try await replica.applyReplicated(first)
        await #expect(throws: BlockError.self, "duplicate") { try await replica.applyReplicated(first) }
        #expect(try await replica.syncLog() == 1)
        #expect(try await replica.read(at: 0, blockCount: 1) == payload)
        try await replica.close()
    }

    @Test("power cuts during a replica's apply: its log is a prefix of the primary's, covering every LSN it acknowledged durable")
    func replicaApplyCrashes() async throws {
        var generator = SeededGenerator(seed: 33)
        let blockCount: UInt64 = 64
        // The primary's records, and the content after each LSN (the model).
        var shippedRecords: [LogRecord] = []
        var contentAfter: [[[UInt8]]] = [Array(repeating: [UInt8](repeating: 0, count: Self.blockSize), count: Int(blockCount))]
        for lsn in 1...UInt64(120) {
            var content = contentAfter.last!
            let lba = UInt64.random(in: 0..<(blockCount - 4), using: &generator)
            if lsn % 9 == 0 {
                for block in lba..<(lba + 2) { content[Int(block)] = [UInt8](repeating: 0, count: Self.blockSize) }
                shippedRecords.append(LogRecord(lsn: lsn, epoch: 1, kind: .trim, lba: lba, blockCount: 2, payload: [],
                                                payloadCRC: 0))
            } else {
                let payload = patterns(tag: lsn, lba: lba, blockCount: 3, blockSize: Self.blockSize)
                for index in 0..<3 {
                    content[Int(lba) + index] = Array(payload[(index * Self.blockSize)..<((index + 1) * Self.blockSize)])
                }
                shippedRecords.append(LogRecord(lsn: lsn, epoch: 1, kind: .write, lba: lba, blockCount: 3,
                                                payload: payload,
                                                payloadCRC: payload.withUnsafeBytes { CRC32C.checksum($0) }))
            }
            contentAfter.append(content)
        }
        let file = SimulatedFile()
        try Volume.format(file: file, configuration: VolumeConfiguration(sizeBytes: blockCount * UInt64(Self.blockSize),
                                                                         walSizeBytes: WALLayout.minimumSizeBytes * 4))
        let replica = try Volume.open(file: file, path: "sim", options: testOptions(background: false))
        try await replica.assignRole(.replica, epoch: 1)
        file.resetHistory()
        // (history point, LSN acknowledged durable by then)
        var acknowledged: [(point: Int, lsn: UInt64)] = []
        for record in shippedRecords {
            try await replica.applyReplicated(record)
            if record.lsn % 5 == 0 {
                let durable = try await replica.syncLog()
                acknowledged.append((file.historyCount, durable))
            }
            if record.lsn % 40 == 0 { try await replica.checkpoint() }
        }
        let historyLength = file.historyCount
        for _ in 0..<40 {
            let point = Int.random(in: 0...historyLength, using: &generator)
            let promised = acknowledged.last(where: { $0.point <= point })?.lsn ?? 0
            let image = file.crashImage(at: point, using: &generator)
            let recovered = try Volume.open(file: SimulatedFile(image: image), path: "sim",
                                            options: testOptions(background: false))
            let last = recovered.logPositions.lastLSN
            #expect(last >= promised, "point \(point): recovered up to \(last), acknowledged \(promised)")
            #expect(recovered.role == .replica && recovered.epoch == 1)
            let blocks = try await recovered.read(at: 0, blockCount: Int(blockCount))
            let expected = contentAfter[Int(last)].flatMap { $0 }
            #expect(blocks == expected, "point \(point): the content is not the primary's at LSN \(last)")
            try await recovered.close()
        }
        try await replica.close()
    }
}
