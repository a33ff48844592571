// Login into the full feature phase, the first SCSI commands, and logout, on the real
// connection pipeline without sockets.

import Testing
@testable import BlockISCSI

@Suite("Session: login, commands, logout")
struct LoginAndCommandTests {
    @Test("Login without authentication enters the full feature phase with a TSIH and the CmdSN window")
    func loginWithoutAuthentication() async throws {
        let configuration = testServerConfiguration { $0.commandWindow = 8 }
        try await withEmbeddedTarget(configuration) { context in
            let transport = try await EmbeddedTransport.connect(context)
            let initiator = TestInitiator(transport: transport)
            initiator.cmdSN = 0x55
            initiator.expStatSN = 0x1234
            let response = try await initiator.login(target: diskTargetName)
            #expect(response.opcode == Op.loginResponse)
            #expect(response.bhs[36] == 0 && response.bhs[37] == 0, "status")
            #expect(response.flags == 0x80 | 1 << 2 | 3, "T=1, CSG=operational, NSG=full feature")
            #expect(response.u64(8) >> 16 == initiator.isid, "ISID echoed")
            #expect(response.u16(14) != 0, "TSIH assigned")
            #expect(response.initiatorTaskTag == 1)
            #expect(response.expCmdSN == 0x55, "the login CmdSN is the first command's")
            #expect(response.maxCmdSN == 0x55 + 8 - 1, "window of commandWindow commands")
            #expect(initiator.negotiated["MaxRecvDataSegmentLength"] == "262144", "target declares its limit")
            #expect(initiator.negotiated["HeaderDigest"] == "None" && initiator.negotiated["DataDigest"] == "None")

            // The first command in the full feature phase uses the login's CmdSN.
            let answer = try await initiator.ping([1, 2, 3])
            #expect(answer.statSN == response.statSN &+ 1)
            #expect(answer.expCmdSN == 0x56 && answer.maxCmdSN == 0x56 + 8 - 1)
            #expect(initiator.sequenceViolations == [])
            await transport.close()
        }
    }

    @Test("TEST UNIT READY reports the new nexus' unit attention, then GOOD; INQUIRY returns standard data")
    func testUnitReadyAndInquiry() async throws {
        try await withEmbeddedSession { initiator, _ in
            let first = try await initiator.execute(cdb: TestCDB.testUnitReady(), expectedLength: 0)
            let response = try #require(first.response)
            #expect(first.dataIns.isEmpty)
            #expect(response.bhs[2] == 0, "command completed at target")
            #expect(response.bhs[3] == 0x02, "CHECK CONDITION")
            #expect(first.senseCode?.key == 0x06 && first.senseCode?.asc == 0x29 && first.senseCode?.ascq == 0x00,
                    "POWER ON, RESET OCCURRED")

            let second = try await initiator.execute(cdb: TestCDB.testUnitReady(), expectedLength: 0)
            #expect(second.response?.bhs[3] == 0x00 && second.response?.data.isEmpty == true)
            #expect(second.response?.u32(36) == 0, "ExpDataSN: no Data-In")

            let inquiry = try await initiator.execute(cdb: TestCDB.inquiry(allocationLength: 96), read: true,
                                                      expectedLength: 96)
            #expect(inquiry.status == 0)
            #expect(inquiry.response == nil, "status in the last Data-In")
            let data = inquiry.data
            try #require(data.count >= 36)
            #expect(data[0] == 0x00, "connected direct-access block device")
            #expect(String(decoding: data[8..<16], as: UTF8.self) == "SWBLOCK ")
            #expect(data.count == min(96, Int(data[4]) + 5))
            #expect(data.count + (inquiry.underflow ? Int(inquiry.residualCount) : 0) == 96, "residual accounts for the rest")
            #expect(inquiry.dataIns.allSatisfy { $0.u64(8) == 0 && $0.targetTransferTag == 0xFFFF_FFFF })
        }
    }

    @Test("Logout is answered with the same ITT and the connection closes")
    func logout() async throws {
        try await withEmbeddedSession { initiator, transport in
            _ = try await initiator.ping()
            let request = initiator.logoutPDU(reason: 0)
            try await initiator.send(request)
            let response = try await initiator.receive("the Logout Response")
            #expect(response.opcode == Op.logoutResponse)
            #expect(response.initiatorTaskTag == request.initiatorTaskTag)
            #expect(response.final && response.bhs[2] == 0, "connection or session closed successfully")
            #expect(response.expCmdSN == request.u32(24) &+ 1)
            #expect(try await initiator.waitForClose(), "target closes after the Logout Response")
            #expect(await transport.isClosed())
        }
    }
}
