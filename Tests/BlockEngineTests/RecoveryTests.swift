// Recovery's rule for a record that fails to validate (docs/ENGINE.md, "Recovery: torn tail
// or corruption"), on logs written record by record with exact damage.

import Testing
@testable import BlockEngine

@Suite("Recovery: torn tail or corruption")
struct RecoveryTests {
    static let recordBytes = UInt64(WALRecord.recordBytes(payloadLength: LogImage.blockSizeBytes))
    static let payloadOffset = WALRecord.headerBytes + 100
    static let headerOffset = 20

    @Test("a damaged record is corruption when a later record of its chain, not its successor, proves it durable")
    func proofAfterTheSuccessor() async throws {
        var log = try LogImage()
        log.write(lsn: 1, lba: 0, hint: 0)
        let damaged = log.write(lsn: 2, lba: 1, hint: 0)
        log.write(lsn: 3, lba: 2, hint: 1)
        log.write(lsn: 4, lba: 3, hint: 3)
        log.damage(recordAt: damaged, offset: Self.payloadOffset)
        await expectCorruption(log, lsn: 2, provenBy: 4)
    }

    @Test("a record with a damaged header (its length unknown) is corruption when a later record proves it durable")
    func proofAfterDamagedHeader() async throws {
        var log = try LogImage()
        log.write(lsn: 1, lba: 0, hint: 0)
        let damaged = log.write(lsn: 2, lba: 1, blocks: 3, hint: 1)
        log.write(lsn: 3, lba: 5, hint: 1)
        log.write(lsn: 4, lba: 6, hint: 2)
        log.damage(recordAt: damaged, offset: Self.headerOffset)
        await expectCorruption(log, lsn: 2, provenBy: 4)
    }

    @Test("two damaged records in a row (a bad sector) are corruption when a record after both proves the first durable")
    func proofAfterTwoDamagedRecords() async throws {
        var log = try LogImage()
        log.write(lsn: 1, lba: 0, hint: 0)
        let first = log.write(lsn: 2, lba: 1, hint: 1)
        let second = log.write(lsn: 3, lba: 2, hint: 1)
        log.write(lsn: 4, lba: 3, hint: 1)
        log.write(lsn: 5, lba: 4, hint: 3)
        log.damage(recordAt: first, offset: Self.headerOffset)
        log.damage(recordAt: second, offset: Self.headerOffset)
        await expectCorruption(log, lsn: 2, provenBy: 5)
    }

    @Test("the chain follows a PAD into the next lap to find the proof")
    func proofAcrossThePad() async throws {
        let lastSlot = LogImage.walSizeBytes / Self.recordBytes - 1
        var log = try LogImage(tailPosition: lastSlot * Self.recordBytes)
        let damaged = log.write(lsn: 1, lba: 0, hint: 0)
        log.pad(lsn: 2, hint: 0)
        log.write(lsn: 2, lba: 1, hint: 0)
        log.write(lsn: 3, lba: 2, hint: 1)
        log.damage(recordAt: damaged, offset: Self.payloadOffset)
        await expectCorruption(log, lsn: 1, provenBy: 3)
    }

    @Test("a torn group-commit write (damaged records among intact ones, none claiming them durable) is a torn tail")
    func tornGroupCommit() async throws {
        var log = try LogImage(checkpointLSN: 100, tailPosition: LogImage.walSizeBytes)
        // Leftovers of the previous lap beyond where this one ends: intact, same session,
        // but older LSNs, so never part of this log.
        log.move(to: 12 * Self.recordBytes)
        for lsn in UInt64(60)..<70 { log.write(lsn: lsn, lba: lsn % 8, hint: lsn - 1) }
        log.move(to: LogImage.walSizeBytes)
        log.write(lsn: 101, lba: 0, hint: 100)
        log.write(lsn: 102, lba: 1, hint: 100)
        let torn = log.write(lsn: 103, lba: 2, hint: 102)
        log.write(lsn: 104, lba: 3, hint: 102)
        let tornToo = log.write(lsn: 105, lba: 4, hint: 102)
        log.write(lsn: 106, lba: 5, hint: 102)
        log.damage(recordAt: torn, offset: Self.payloadOffset)
        log.damage(recordAt: tornToo, offset: Self.headerOffset)
        try await expectTornTail(log, lastLSN: 102)
    }

    @Test("a stale record of an earlier session that claims the damaged record durable is not proof")
    func staleSessionIsNoProof() async throws {
        var log = try LogImage(sessionStartLSN: 3)
        let earlier: UInt64 = 0xEA21_1E55
        log.write(lsn: 1, lba: 0, hint: 0, sessionID: earlier)
        log.write(lsn: 2, lba: 1, hint: 1, sessionID: earlier)
        let damaged = log.write(lsn: 3, lba: 2, hint: 2)
        // Beyond the earlier session's torn tail at LSN 3, left where this session now writes.
        log.write(lsn: 4, lba: 3, hint: 3, sessionID: earlier)
        log.write(lsn: 5, lba: 4, hint: 4, sessionID: earlier)
        log.damage(recordAt: damaged, offset: Self.payloadOffset)
        try await expectTornTail(log, lastLSN: 2)
    }

    /// Open fails with `corrupt` naming `lsn` and the proving record; the file is untouched.
    func expectCorruption(_ log: LogImage, lsn: UInt64, provenBy proof: UInt64,
                          sourceLocation: SourceLocation = #_sourceLocation) async {
        let file = SimulatedFile(image: log.bytes)
        do {
            let volume = try Volume.open(file: file, path: "image", options: CrashSimulationTests.options())
            Issue.record("opened a log with a damaged durable record", sourceLocation: sourceLocation)
            try? await volume.close()
        } catch {
            guard case let .corrupt(location, reason) = error else {
                Issue.record("unexpected error: \(error)", sourceLocation: sourceLocation)
                return
            }
            #expect(location.hasPrefix("WAL record \(lsn) "), "\(location)", sourceLocation: sourceLocation)
            #expect(reason.contains("record \(proof) "), "\(reason)", sourceLocation: sourceLocation)
            #expect(file.historyCount == 0, "a volume that fails to open is not written", sourceLocation: sourceLocation)
        }
    }

    /// Open succeeds, keeps every record up to `lastLSN` and nothing after it.
    func expectTornTail(_ log: LogImage, lastLSN: UInt64,
                        sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let state = try Recovery.recover(file: SimulatedFile(image: log.bytes), path: "image")
        #expect(state.nextLSN - 1 == lastLSN, "stopped: \(state.scanStop)", sourceLocation: sourceLocation)
        let volume = try Volume.open(file: SimulatedFile(image: log.bytes), path: "image",
                                     options: CrashSimulationTests.options())
        try await volume.close()
    }
}
