// CRC32C header and data digests once negotiated (RFC 7143 sections 7.8 and 13.1): every
// PDU after the login carries them, a data digest error is answered with Reject 0x02 and
// the PDU discarded (it may be sent again), a header digest error ends the connection.

import Testing
@testable import BlockISCSI

@Suite("Session: digests")
struct DigestTests {
    static let digestKeys = operationalKeys(["HeaderDigest": "CRC32C,None", "DataDigest": "CRC32C,None"])

    @Test("The test's CRC32C matches the RFC 3720 B.4 check values")
    func crc32cCheckValues() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
    }

    @Test("Negotiated digests cover every later PDU both ways: NOP, padded INQUIRY data, a gathered READ, a write")
    func digestsOnEveryPDU() async throws {
        try await withEmbeddedSession(keys: Self.digestKeys) { initiator, _ in
            #expect(initiator.negotiated["HeaderDigest"] == "CRC32C" && initiator.negotiated["DataDigest"] == "CRC32C")
            // The parser now rejects any PDU whose header or data digest is wrong.
            let answer = try await initiator.ping(Array("odd length".utf8))
            #expect(answer.data == Array("odd length".utf8))
            try await initiator.clearUnitAttentions()
            let inquiry = try await initiator.execute(cdb: TestCDB.inquiry(allocationLength: 5), read: true,
                                                      expectedLength: 5)
            #expect(inquiry.status == 0 && inquiry.data.count == 5)
            let data = testPattern(tag: 12, bytes: 3 * blockBytes)
            #expect(try await initiator.write(lba: 5, data: data, immediateBytes: data.count).status == 0)
            let read = try await initiator.read(lba: 5, blocks: 3)
            #expect(read.status == 0 && read.data == data)
        }
    }

    @Test("A data digest error gets Reject 0x02 with the rejected header; the same PDU sent again is executed")
    func dataDigestErrorRejected() async throws {
        try await withEmbeddedSession(keys: Self.digestKeys) { initiator, transport in
            let request = initiator.nopOutPDU(data: Array("corrupted".utf8))
            try await initiator.send(request, corruptDataDigest: true)
            let reject = try await initiator.receive("the Reject")
            #expect(reject.opcode == Op.reject && reject.final)
            #expect(reject.bhs[2] == 0x02, "reason: data (payload) digest error")
            #expect(reject.initiatorTaskTag == 0xFFFF_FFFF)
            let echoed = Array(request.encoded(headerDigest: false, dataDigest: false).prefix(48))
            #expect(reject.data == echoed, "the rejected PDU's header comes back")
            #expect(reject.expCmdSN == request.u32(24), "the discarded PDU did not take its CmdSN")

            try await initiator.send(request)
            let answer = try await initiator.receive("the NOP-In for the resent PDU")
            #expect(answer.opcode == Op.nopIn && answer.initiatorTaskTag == request.initiatorTaskTag)
            #expect(answer.expCmdSN == request.u32(24) &+ 1)
            #expect(await transport.isClosed() == false)
        }
    }

    @Test("A header digest error closes the connection")
    func headerDigestErrorCloses() async throws {
        try await withEmbeddedSession(keys: Self.digestKeys) { initiator, transport in
            try await initiator.send(initiator.nopOutPDU(data: [1, 2, 3]), corruptHeaderDigest: true)
            #expect(try await initiator.waitForClose())
            #expect(await transport.isClosed())
        }
    }

    /// RFC 7143 section 7.8: for a Data-Out discarded for a data digest error the target MUST
    /// request the data again with a recovery R2T or end the task with CHECK CONDITION,
    /// ABORTED COMMAND, PROTOCOL SERVICE CRC ERROR (0B/47/05); either party may instead
    /// escalate to session recovery (drop the connection). Leaving the task waiting forever
    /// is none of these.
    @Test("A Data-Out with a data digest error: Reject 0x02, then a recovery R2T, CHECK CONDITION 0B/47/05, or a dropped connection")
    func dataOutDigestErrorEndsTask() async throws {
        let keys = operationalKeys(["DataDigest": "CRC32C,None", "ImmediateData": "No"])
        try await withEmbeddedSession(keys: keys) { initiator, transport in
            try await initiator.clearUnitAttentions()
            let data = testPattern(tag: 14, bytes: blockBytes)
            let write = initiator.commandPDU(cdb: TestCDB.write10(lba: 70, blocks: 1), write: true,
                                             expectedLength: blockBytes)
            try await initiator.send(write)
            let r2t = try await initiator.receive("R2T")
            #expect(r2t.opcode == Op.r2t)
            let dataOut = try #require(initiator.dataOutPDUs(for: r2t, lun: 0, from: data, segment: blockBytes).first)
            try await initiator.send(dataOut, corruptDataDigest: true)
            let reject = try await initiator.receive("the Reject")
            #expect(reject.opcode == Op.reject && reject.bhs[2] == 0x02)

            var outcome = "nothing within 5 s: the write waits forever for data the target discarded"
            do {
                let next = try await initiator.receive("the target's recovery", timeout: .seconds(5))
                if next.opcode == Op.r2t && next.initiatorTaskTag == write.initiatorTaskTag && next.u32(40) == 0 {
                    outcome = "recovery R2T"
                } else if next.opcode == Op.scsiResponse && next.initiatorTaskTag == write.initiatorTaskTag {
                    let sense = SCSIOutcome(response: next).senseCode
                    outcome = next.bhs[3] == 0x02 && sense?.key == 0x0B && sense?.asc == 0x47 && sense?.ascq == 0x05
                        ? "CHECK CONDITION 0B/47/05" : "wrong SCSI Response \(next) sense \(String(describing: sense))"
                } else {
                    outcome = "unexpected \(next)"
                }
            } catch InitiatorError.closed {
                outcome = "connection dropped"
            } catch InitiatorError.timeout {
            }
            #expect(["recovery R2T", "CHECK CONDITION 0B/47/05", "connection dropped"].contains(outcome), "\(outcome)")
            _ = transport
        }
    }
}
