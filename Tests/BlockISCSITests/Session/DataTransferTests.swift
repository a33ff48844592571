// Data movement of SCSI commands: Data-In split by the initiator's
// MaxRecvDataSegmentLength, immediate data, R2T-solicited Data-Out within MaxBurstLength,
// and residual reporting.

import Testing
@testable import BlockISCSI

@Suite("Session: data transfer")
struct DataTransferTests {
    @Test("READ Data-In is split by the initiator's MaxRecvDataSegmentLength, sequences by MaxBurstLength, status in the last PDU")
    func readSplitIntoDataIn() async throws {
        let keys = operationalKeys(["MaxRecvDataSegmentLength": "4096", "MaxBurstLength": "8192",
                                    "FirstBurstLength": "8192"])
        try await withEmbeddedSession(keys: keys) { initiator, _ in
            try await initiator.clearUnitAttentions()
            let pattern = testPattern(tag: 1, bytes: 4 * blockBytes)
            let written = try await initiator.write(lba: 8, data: pattern)
            #expect(written.status == 0)

            let read = try await initiator.read(lba: 8, blocks: 4)
            #expect(read.response == nil, "no separate SCSI Response")
            #expect(read.status == 0)
            #expect(read.data == pattern)
            #expect(read.dataIns.map(\.data.count) == [4096, 4096, 4096, 4096])
            #expect(read.dataIns.map { $0.u32(40) } == [0, 4096, 8192, 12288], "buffer offsets")
            #expect(read.dataIns.map { $0.u32(36) } == [0, 1, 2, 3], "DataSN")
            #expect(read.dataIns.map(\.final) == [false, true, false, true], "F ends each 8 KiB burst")
            #expect(read.dataIns.map { $0.flags & 0x01 != 0 } == [false, false, false, true], "S only on the last")
            #expect(read.dataIns.allSatisfy { $0.targetTransferTag == 0xFFFF_FFFF })
            let last = try #require(read.dataIns.last)
            let next = try await initiator.ping()
            #expect(next.statSN == last.statSN &+ 1, "only the status-carrying Data-In took a StatSN")
        }
    }

    @Test("WRITE with all its data immediate needs no R2T; with part immediate the R2T asks for the rest")
    func writeWithImmediateData() async throws {
        try await withEmbeddedSession { initiator, _ in
            try await initiator.clearUnitAttentions()
            let whole = testPattern(tag: 2, bytes: 2 * blockBytes)
            let immediate = try await initiator.write(lba: 0, data: whole, immediateBytes: whole.count)
            #expect(immediate.r2ts.isEmpty)
            #expect(immediate.response?.bhs[3] == 0)
            #expect(try await initiator.read(lba: 0, blocks: 2).data == whole)

            let partial = testPattern(tag: 3, bytes: 4 * blockBytes)
            let mixed = try await initiator.write(lba: 16, data: partial, immediateBytes: blockBytes)
            #expect(mixed.status == 0)
            #expect(mixed.r2ts.count == 1)
            #expect(mixed.r2ts.first?.u32(40) == UInt32(blockBytes), "R2T starts after the immediate data")
            #expect(mixed.r2ts.first?.u32(44) == UInt32(3 * blockBytes))
            #expect(try await initiator.read(lba: 16, blocks: 4).data == partial)
        }
    }

    @Test("WRITE without immediate data is solicited by R2Ts of at most MaxBurstLength with increasing R2TSN")
    func writeSolicitedByR2T() async throws {
        let keys = operationalKeys(["MaxBurstLength": "8192", "FirstBurstLength": "8192", "ImmediateData": "No"])
        try await withEmbeddedSession(keys: keys) { initiator, _ in
            try await initiator.clearUnitAttentions()
            let data = testPattern(tag: 4, bytes: 6 * blockBytes)
            let outcome = try await initiator.write(lba: 40, data: data, dataOutSegment: 4096)
            #expect(outcome.status == 0)
            #expect(outcome.r2ts.map { $0.u32(40) } == [0, 8192, 16384], "R2T buffer offsets")
            #expect(outcome.r2ts.map { $0.u32(44) } == [8192, 8192, 8192], "desired lengths = MaxBurstLength")
            #expect(outcome.r2ts.map { $0.u32(36) } == [0, 1, 2], "R2TSN")
            let tags = outcome.r2ts.map(\.targetTransferTag)
            #expect(Set(tags).count == 3 && !tags.contains(0xFFFF_FFFF), "a fresh TTT per R2T")
            #expect(outcome.r2ts.allSatisfy { $0.u64(8) == 0 && $0.final })
            #expect(try await initiator.read(lba: 40, blocks: 6).data == data)
        }
    }

    @Test("With MaxOutstandingR2T=2 two R2Ts are outstanding at once and the third follows a completed sequence")
    func twoOutstandingR2Ts() async throws {
        let configuration = testServerConfiguration { $0.limits.maxOutstandingR2T = 4 }
        let keys = operationalKeys(["MaxBurstLength": "8192", "FirstBurstLength": "8192", "ImmediateData": "No",
                                    "MaxOutstandingR2T": "2"])
        try await withEmbeddedSession(configuration, keys: keys) { initiator, _ in
            try await initiator.clearUnitAttentions()
            #expect(initiator.negotiated["MaxOutstandingR2T"] == "2")
            let data = testPattern(tag: 5, bytes: 6 * blockBytes)
            let command = initiator.commandPDU(cdb: TestCDB.write10(lba: 60, blocks: 6), write: true,
                                               expectedLength: data.count)
            try await initiator.send(command)
            let first = try await initiator.receive("R2T 0")
            let second = try await initiator.receive("R2T 1")
            #expect(first.opcode == Op.r2t && second.opcode == Op.r2t)
            #expect([first.u32(36), second.u32(36)] == [0, 1])
            #expect([first.u32(40), second.u32(40)] == [0, 8192])
            try await initiator.sendDataOut(for: first, lun: 0, from: data, segment: 8192)
            let third = try await initiator.receive("R2T 2")
            #expect(third.opcode == Op.r2t && third.u32(36) == 2 && third.u32(40) == 16384 && third.u32(44) == 8192)
            try await initiator.sendDataOut(for: second, lun: 0, from: data, segment: 8192)
            try await initiator.sendDataOut(for: third, lun: 0, from: data, segment: 8192)
            let outcome = try await initiator.collect(command)
            #expect(outcome.response?.bhs[3] == 0)
            #expect(try await initiator.read(lba: 60, blocks: 6).data == data)
        }
    }

    @Test("Residuals: U and O flags with the residual count, data never beyond the expected length")
    func residuals() async throws {
        try await withEmbeddedSession { initiator, _ in
            try await initiator.clearUnitAttentions()
            let blocks = testPattern(tag: 6, bytes: 2 * blockBytes)
            #expect(try await initiator.write(lba: 90, data: blocks, immediateBytes: blocks.count).status == 0)

            let readUnder = try await initiator.read(lba: 90, blocks: 1, expectedLength: 2 * blockBytes)
            #expect(readUnder.status == 0 && readUnder.underflow && !readUnder.overflow)
            #expect(readUnder.residualCount == UInt32(blockBytes))
            #expect(readUnder.data == Array(blocks[0..<blockBytes]))

            let readOver = try await initiator.read(lba: 90, blocks: 2, expectedLength: blockBytes)
            #expect(readOver.status == 0 && readOver.overflow && !readOver.underflow)
            #expect(readOver.residualCount == UInt32(blockBytes))
            #expect(readOver.data == Array(blocks[0..<blockBytes]), "only EDTL bytes come back")

            let one = testPattern(tag: 7, bytes: blockBytes)
            let writeOver = try await initiator.execute(cdb: TestCDB.write10(lba: 92, blocks: 2), write: true,
                                                        expectedLength: blockBytes, writeData: one,
                                                        immediateBytes: blockBytes)
            #expect(writeOver.status == 0 && writeOver.overflow && writeOver.residualCount == UInt32(blockBytes))

            let two = testPattern(tag: 8, bytes: 2 * blockBytes)
            let writeUnder = try await initiator.execute(cdb: TestCDB.write10(lba: 94, blocks: 1), write: true,
                                                         expectedLength: two.count, writeData: two,
                                                         immediateBytes: two.count)
            #expect(writeUnder.status == 0 && writeUnder.underflow && writeUnder.residualCount == UInt32(blockBytes))

            let exact = try await initiator.read(lba: 90, blocks: 2)
            #expect(!exact.underflow && !exact.overflow && exact.residualCount == 0)
        }
    }
}
