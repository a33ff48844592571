// Task management (RFC 7143 section 11.5): ABORT TASK of a write that waits for its
// Data-Out.

import Testing
@testable import BlockISCSI

@Suite("Session: task management")
struct TaskManagementTests {
    @Test("ABORT TASK of a write waiting for Data-Out: FUNCTION COMPLETE, late Data-Out ignored, no SCSI Response")
    func abortTaskWaitingForData() async throws {
        let keys = operationalKeys(["ImmediateData": "No"])
        try await withEmbeddedSession(keys: keys) { initiator, _ in
            try await initiator.clearUnitAttentions()
            let data = testPattern(tag: 11, bytes: 2 * blockBytes)
            let write = initiator.commandPDU(cdb: TestCDB.write10(lba: 30, blocks: 2), write: true,
                                             expectedLength: data.count)
            try await initiator.send(write)
            let r2t = try await initiator.receive("R2T")
            #expect(r2t.opcode == Op.r2t && r2t.initiatorTaskTag == write.initiatorTaskTag)

            let abort = initiator.taskManagementPDU(function: 1, referencedITT: write.initiatorTaskTag)
            try await initiator.send(abort)
            let response = try await initiator.receive("the TMF response")
            #expect(response.opcode == Op.taskManagementResponse)
            #expect(response.initiatorTaskTag == abort.initiatorTaskTag && response.final)
            #expect(response.bhs[2] == 0, "FUNCTION COMPLETE")
            #expect(response.maxCmdSN == r2t.maxCmdSN &+ 1, "the aborted write left the window")

            // The Data-Out the initiator had already sent for the aborted task, then a ping:
            // the next PDU must be the ping's answer.
            try await initiator.sendDataOut(for: r2t, lun: 0, from: data, segment: blockBytes)
            let request = initiator.nopOutPDU(data: [0x5A])
            try await initiator.send(request)
            let next = try await initiator.receive("the ping answer after the late Data-Out")
            #expect(next.opcode == Op.nopIn && next.initiatorTaskTag == request.initiatorTaskTag,
                    "no SCSI Response or Reject for the aborted task, got \(next)")

            let read = try await initiator.read(lba: 30, blocks: 2)
            #expect(read.data == [UInt8](repeating: 0, count: data.count), "the aborted write wrote nothing")

            let unknown = initiator.taskManagementPDU(function: 1, referencedITT: write.initiatorTaskTag)
            try await initiator.send(unknown)
            let missing = try await initiator.receive("the TMF response for an unknown task")
            #expect(missing.opcode == Op.taskManagementResponse && missing.bhs[2] == 1, "TASK DOES NOT EXIST")
        }
    }

    /// RFC 7143 section 11.5.1, ABORT TASK b): when the Referenced Task Tag names no task
    /// but RefCmdSN lies inside the CmdSN window (below the TMF's own CmdSN), the target
    /// must consider that CmdSN received and answer FUNCTION COMPLETE. This is how an
    /// initiator closes the hole a command discarded for a digest error leaves.
    @Test("ABORT TASK of a command lost to a digest error (RefCmdSN in the window): FUNCTION COMPLETE and the CmdSN counts as received")
    func abortTaskOfLostCommandFillsCmdSN() async throws {
        let keys = operationalKeys(["DataDigest": "CRC32C,None"])
        try await withEmbeddedSession(keys: keys) { initiator, _ in
            try await initiator.clearUnitAttentions()
            let lostCmdSN = initiator.cmdSN
            let lost = initiator.commandPDU(cdb: TestCDB.write10(lba: 50, blocks: 1), write: true,
                                            expectedLength: blockBytes,
                                            immediateData: testPattern(tag: 13, bytes: blockBytes))
            try await initiator.send(lost, corruptDataDigest: true)
            let reject = try await initiator.receive("the Reject")
            #expect(reject.opcode == Op.reject && reject.bhs[2] == 0x02)
            #expect(reject.expCmdSN == lostCmdSN, "the discarded command left a hole")

            var abort = initiator.taskManagementPDU(function: 1, referencedITT: lost.initiatorTaskTag)
            abort.set32(lostCmdSN, at: 32)  // RefCmdSN
            try await initiator.send(abort)
            let response = try await initiator.receive("the TMF response")
            #expect(response.opcode == Op.taskManagementResponse && response.initiatorTaskTag == abort.initiatorTaskTag)
            #expect(response.bhs[2] == 0, "FUNCTION COMPLETE, got response \(response.bhs[2])")
            #expect(response.expCmdSN == lostCmdSN &+ 1, "CmdSN \(lostCmdSN) considered received")

            let next = try await initiator.ping()
            #expect(next.expCmdSN == lostCmdSN &+ 2, "ExpCmdSN moves past the hole")
        }
    }
}

/// Resets reach every session of the target and answer only once nothing the reset aborted
/// can still reach the volume (RFC 7143 section 11.5.1, SAM-5 task management).
@Suite("Server: resets wait for other sessions' executing writes")
struct ResetOrderingTests {
    @Test("LOGICAL UNIT RESET and TARGET WARM RESET answer only after another session's executing write ended",
          arguments: [UInt8(5), UInt8(6)])
    func resetWaitsForOtherSessions(function: UInt8) async throws {
        let gate = WriteGate()
        try await withTCPServer(gate: gate) { fixture in
            let writer = try await fixture.loggedIn()
            let resetter = try await fixture.loggedIn()
            gate.close()
            let write = writer.commandPDU(cdb: TestCDB.write10(lba: 9, blocks: 1), write: true, expectedLength: blockBytes,
                                          immediateData: testPattern(tag: 0x9A, bytes: blockBytes))
            try await writer.send(write)
            try await gate.waitUntilHeld(1)

            let reset = resetter.taskManagementPDU(function: function)
            try await resetter.send(reset)
            await #expect(throws: InitiatorError.self, "no reset answer while the aborted write runs") {
                try await resetter.receive("the TMF response", timeout: .milliseconds(300))
            }
            gate.open()
            let response = try await resetter.receive("the TMF response")
            #expect(response.opcode == Op.taskManagementResponse && response.initiatorTaskTag == reset.initiatorTaskTag)
            #expect(response.bhs[2] == 0, "FUNCTION COMPLETE")

            // The aborted write never answers: the writer's next PDU is its ping's answer.
            let ping = try await writer.ping([1])
            #expect(ping.data == [1])
        }
    }
}

/// Writes waiting for the connection's write budget are admitted as soon as budget frees,
/// whether the write holding it finished or was aborted.
@Suite("Session: write admission")
struct WriteAdmissionTests {
    @Test("A queued write gets its R2T when the write before it completes, and the next when that one is aborted")
    func queuedWritesAdmittedOnCompletionAndAbort() async throws {
        let configuration = testServerConfiguration { $0.maxSolicitedBytesPerConnection = 2 * blockBytes }
        let keys = operationalKeys(["ImmediateData": "No"])
        try await withEmbeddedSession(configuration, keys: keys) { initiator, _ in
            try await initiator.clearUnitAttentions()
            let data = testPattern(tag: 0x21, bytes: 2 * blockBytes)
            let writes = (0..<3).map { index in
                initiator.commandPDU(cdb: TestCDB.write10(lba: UInt32(40 + 2 * index), blocks: 2), write: true,
                                     expectedLength: data.count)
            }
            for write in writes { try await initiator.send(write) }
            let first = try await initiator.receive("the first R2T")
            #expect(first.opcode == Op.r2t && first.initiatorTaskTag == writes[0].initiatorTaskTag)
            #expect(try await initiator.receiveIfAvailable() == nil, "the others wait for the budget")

            try await initiator.sendDataOut(for: first, lun: 0, from: data, segment: data.count)
            var second: WirePDU?
            for _ in 0..<2 {
                let pdu = try await initiator.receive("the first write's status and the second R2T")
                if pdu.opcode == Op.r2t { second = pdu }
            }
            let secondR2T = try #require(second, "completing the first write admits the second")
            #expect(secondR2T.initiatorTaskTag == writes[1].initiatorTaskTag)

            let abort = initiator.taskManagementPDU(function: 1, referencedITT: writes[1].initiatorTaskTag)
            try await initiator.send(abort)
            var third: WirePDU?
            for _ in 0..<2 {
                let pdu = try await initiator.receive("the abort's answer and the third R2T")
                if pdu.opcode == Op.r2t { third = pdu }
            }
            let thirdR2T = try #require(third, "aborting the second write admits the third")
            #expect(thirdR2T.initiatorTaskTag == writes[2].initiatorTaskTag)
            try await initiator.sendDataOut(for: thirdR2T, lun: 0, from: data, segment: data.count)
            let done = try await initiator.receive("the third write's status")
            #expect(done.opcode == Op.scsiResponse && done.bhs[3] == 0)
        }
    }
}
