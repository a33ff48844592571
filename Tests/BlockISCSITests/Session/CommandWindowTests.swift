// The CmdSN window as an initiator sees it (RFC 7143 sections 3.2.2.1 and 4.2.2.1):
// commands outside [ExpCmdSN, MaxCmdSN] are ignored silently, the window shrinks while
// commands are in flight and reopens as they finish, and MaxCmdSN never goes back.

import Testing
@testable import BlockISCSI

@Suite("Session: CmdSN window")
struct CommandWindowTests {
    @Test("Commands below ExpCmdSN, above MaxCmdSN or repeated are ignored without an answer")
    func outOfWindowIgnored() async throws {
        let configuration = testServerConfiguration { $0.commandWindow = 4 }
        try await withEmbeddedSession(configuration) { initiator, _ in
            let first = initiator.cmdSN
            let tooHigh = initiator.nopOutPDU(data: [1], cmdSN: first &+ 4)
            let tooLow = initiator.nopOutPDU(data: [2], cmdSN: first &- 1)
            let valid = initiator.nopOutPDU(data: [3], cmdSN: first)
            for pdu in [tooHigh, tooLow, valid] { try await initiator.send(pdu) }
            let answer = try await initiator.receive("the NOP-In for the valid CmdSN")
            #expect(answer.opcode == Op.nopIn && answer.initiatorTaskTag == valid.initiatorTaskTag,
                    "the first answer is to the only command inside the window")
            #expect(answer.expCmdSN == first &+ 1 && answer.maxCmdSN == first &+ 4)

            let repeated = initiator.nopOutPDU(data: [4], cmdSN: first)
            let next = initiator.nopOutPDU(data: [5], cmdSN: first &+ 1)
            for pdu in [repeated, next] { try await initiator.send(pdu) }
            let second = try await initiator.receive("the NOP-In for the next CmdSN")
            #expect(second.initiatorTaskTag == next.initiatorTaskTag, "a repeated CmdSN is not executed twice")
            #expect(second.expCmdSN == first &+ 2)
        }
    }

    @Test("The window closes while commands are in flight, ignores what lies beyond, and reopens when one ends")
    func windowClosesAndReopens() async throws {
        let configuration = testServerConfiguration { $0.commandWindow = 2 }
        let keys = operationalKeys(["ImmediateData": "No"])
        try await withEmbeddedSession(configuration, keys: keys) { initiator, _ in
            try await initiator.clearUnitAttentions()
            let base = initiator.cmdSN
            let data = testPattern(tag: 9, bytes: blockBytes)
            let writeA = initiator.commandPDU(cdb: TestCDB.write10(lba: 1, blocks: 1), write: true, expectedLength: blockBytes)
            try await initiator.send(writeA)
            let r2tA = try await initiator.receive("R2T A")
            #expect(r2tA.opcode == Op.r2t && r2tA.expCmdSN == base &+ 1 && r2tA.maxCmdSN == base &+ 1)
            let writeB = initiator.commandPDU(cdb: TestCDB.write10(lba: 2, blocks: 1), write: true, expectedLength: blockBytes)
            try await initiator.send(writeB)
            let r2tB = try await initiator.receive("R2T B")
            #expect(r2tB.opcode == Op.r2t && r2tB.expCmdSN == base &+ 2)
            #expect(r2tB.maxCmdSN == base &+ 1, "window full: MaxCmdSN = ExpCmdSN - 1")

            // Beyond MaxCmdSN: silently ignored.
            let early = initiator.nopOutPDU(data: [7], cmdSN: base &+ 2)
            try await initiator.send(early)
            try await initiator.sendDataOut(for: r2tA, lun: 0, from: data, segment: blockBytes)
            let doneA = try await initiator.receive("the response to write A")
            #expect(doneA.opcode == Op.scsiResponse && doneA.initiatorTaskTag == writeA.initiatorTaskTag,
                    "nothing answered the NOP-Out sent beyond MaxCmdSN")
            #expect(doneA.maxCmdSN == base &+ 2, "a finished command reopens one slot")

            // The same CmdSN, now inside the window, is accepted.
            let again = initiator.nopOutPDU(data: [8], cmdSN: base &+ 2)
            try await initiator.send(again)
            let answer = try await initiator.receive("the NOP-In")
            #expect(answer.initiatorTaskTag == again.initiatorTaskTag && answer.expCmdSN == base &+ 3)
            try await initiator.sendDataOut(for: r2tB, lun: 0, from: data, segment: blockBytes)
            let doneB = try await initiator.receive("the response to write B")
            #expect(doneB.initiatorTaskTag == writeB.initiatorTaskTag && doneB.bhs[3] == 0)
        }
    }

    /// A command lost to a data digest error leaves a gap in CmdSN; the initiator goes on
    /// with the next commands (in CmdSN order, within the MaxCmdSN it was given) and resends
    /// the lost one (RFC 7143 sections 3.2.2.1 and 7.8). Every one of them must be answered
    /// and MaxCmdSN must not go back.
    @Test("A CmdSN gap (command discarded for a digest error) neither shrinks MaxCmdSN nor drops commands inside it")
    func gapDoesNotShrinkWindow() async throws {
        let configuration = testServerConfiguration { $0.commandWindow = 4 }
        let keys = operationalKeys(["DataDigest": "CRC32C,None", "ImmediateData": "No"])
        try await withEmbeddedSession(configuration, keys: keys) { initiator, _ in
            try await initiator.clearUnitAttentions()
            let e = initiator.cmdSN
            let advertised = try #require(initiator.highestMaxCmdSN)
            #expect(advertised == e &+ 3)

            let lost = initiator.nopOutPDU(data: [0xAA], cmdSN: e)
            try await initiator.send(lost, corruptDataDigest: true)
            let write = initiator.commandPDU(cdb: TestCDB.write10(lba: 3, blocks: 1), write: true,
                                             expectedLength: blockBytes, cmdSN: e &+ 1)
            let nopA = initiator.nopOutPDU(data: [0xA1], cmdSN: e &+ 2)
            let nopB = initiator.nopOutPDU(data: [0xB2], cmdSN: e &+ 3)
            for pdu in [write, nopA, nopB, lost] { try await initiator.send(pdu) }
            initiator.cmdSN = e &+ 4

            // Collect until the write's R2T and the answer to an immediate barrier ping.
            var seen: [WirePDU] = []
            var r2t: WirePDU?
            while r2t == nil {
                let pdu = try await initiator.receive("R2T")
                if pdu.opcode == Op.r2t { r2t = pdu } else { seen.append(pdu) }
            }
            try await initiator.sendDataOut(for: try #require(r2t), lun: 0, from: testPattern(tag: 10, bytes: blockBytes),
                                            segment: blockBytes)
            // The write's status (it runs asynchronously), then an immediate barrier ping:
            // whatever answers the NOP-Outs was written before the barrier's answer.
            while !seen.contains(where: { $0.initiatorTaskTag == write.initiatorTaskTag }) {
                seen.append(try await initiator.receive("the write's SCSI Response"))
            }
            let barrier = initiator.nopOutPDU(immediate: true)
            try await initiator.send(barrier)
            while true {
                let pdu = try await initiator.receive("the barrier NOP-In")
                if pdu.initiatorTaskTag == barrier.initiatorTaskTag { break }
                seen.append(pdu)
            }
            #expect(seen.contains { $0.opcode == Op.reject && $0.bhs[2] == 0x02 }, "digest error rejected")
            let answered = Set(seen.filter { $0.opcode == Op.nopIn }.map(\.initiatorTaskTag))
            #expect(answered == [lost.initiatorTaskTag, nopA.initiatorTaskTag, nopB.initiatorTaskTag],
                    "every NOP-Out with a CmdSN inside the advertised window is answered")
            #expect(seen.contains { $0.opcode == Op.scsiResponse && $0.initiatorTaskTag == write.initiatorTaskTag })
            #expect(r2t.map { !serialLess($0.maxCmdSN, advertised) } == true,
                    "R2T MaxCmdSN \(r2t?.maxCmdSN ?? 0) below the advertised \(advertised)")
            let final = try await initiator.ping(immediate: true)
            #expect(final.expCmdSN == e &+ 4, "ExpCmdSN past every command sent")
        }
    }
}
