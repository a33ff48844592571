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
