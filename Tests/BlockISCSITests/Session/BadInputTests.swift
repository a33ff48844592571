// Bad input over real TCP gets the answer RFC 7143 / SPC-4 prescribe, and a second
// session logged in at the same time keeps working (a READ succeeds before and after).

import Testing
@testable import BlockISCSI

@Suite("Server: bad input")
struct BadInputTests {
    @Test("An undefined opcode gets Reject 0x05 (command not supported) and the session goes on")
    func unknownOpcode() async throws {
        try await withTCPServer { fixture in
            let bystander = try await Bystander.start(fixture)
            let session = try await fixture.loggedIn()
            var bogus = WirePDU(opcode: 0x0F, immediate: true)
            bogus.set32(0x4242, at: 16)
            bogus.set32(session.cmdSN, at: 24)
            try await session.send(bogus)
            let reject = try await session.receive("the Reject")
            #expect(reject.opcode == Op.reject && reject.bhs[2] == 0x05)
            #expect(reject.data == bogus.encoded(headerDigest: false, dataDigest: false), "the header comes back")
            #expect(try await session.ping([1]).data == [1], "the session is still usable")
            try await bystander.expectReadWorks("after")
        }
    }

    @Test("A header declaring a data segment beyond MaxRecvDataSegmentLength gets Reject 0x04 and the connection closes, before the segment arrives")
    func dataSegmentTooLong() async throws {
        let configuration = testServerConfiguration { $0.limits.maxRecvDataSegmentLength = 8192 }
        try await withTCPServer(configuration) { fixture in
            let bystander = try await Bystander.start(fixture)
            let session = try await fixture.loggedIn()
            #expect(session.negotiated["MaxRecvDataSegmentLength"] == "8192")
            let oversized = session.nopOutPDU(data: [UInt8](repeating: 0x33, count: 1 << 20), immediate: true)
            // Only the header: the target must not wait for (and buffer) the megabyte.
            try await session.transport.send(Array(oversized.encoded(headerDigest: false, dataDigest: false).prefix(48)))
            let reject = try await session.receive("the Reject")
            #expect(reject.opcode == Op.reject && reject.bhs[2] == 0x04)
            #expect(reject.data == Array(oversized.encoded(headerDigest: false, dataDigest: false).prefix(48)))
            #expect(try await session.waitForClose(), "a stream with a broken length is not read further")
            try await bystander.expectReadWorks("after")
        }
    }

    @Test("A Data-Out longer than MaxRecvDataSegmentLength ends its write with the connection, not a hanging task")
    func dataOutTooLong() async throws {
        let configuration = testServerConfiguration { $0.limits.maxRecvDataSegmentLength = 8192 }
        let keys = operationalKeys(["ImmediateData": "No"])
        try await withTCPServer(configuration) { fixture in
            let bystander = try await Bystander.start(fixture)
            let session = try await fixture.loggedIn(keys: keys)
            let data = testPattern(tag: 0x44, bytes: 4 * blockBytes)
            let write = session.commandPDU(cdb: TestCDB.write10(lba: 60, blocks: 4), write: true, expectedLength: data.count)
            try await session.send(write)
            let r2t = try await session.receive("the R2T")
            #expect(r2t.opcode == Op.r2t)
            var dataOut = try #require(session.dataOutPDUs(for: r2t, lun: 0, from: data, segment: 1 << 20).first)
            dataOut.data = data  // 16 KiB in one PDU
            try await session.send(dataOut)
            let reject = try await session.receive("the Reject")
            #expect(reject.opcode == Op.reject && reject.bhs[2] == 0x04)
            #expect(try await session.waitForClose())
            try await bystander.expectReadWorks("after")
            #expect(try await bystander.initiator.read(lba: 60, blocks: 4).data == [UInt8](repeating: 0, count: data.count),
                    "nothing of the broken write landed")
        }
    }

    @Test("A wrong CHAP secret fails the login with 0x0201 and the target closes the connection")
    func wrongCHAPSecret() async throws {
        try await withTCPServer { fixture in
            let bystander = try await Bystander.start(fixture)
            let intruder = try await fixture.connect()
            await #expect(throws: InitiatorError.self) {
                try await intruder.login(target: secureTargetName, chap: ("alice", "not-the-secret"))
            }
            let failure = try #require(intruder.received.last)
            #expect(failure.opcode == Op.loginResponse)
            #expect(failure.bhs[36] == 0x02 && failure.bhs[37] == 0x01, "authentication failure")
            #expect(try await intruder.waitForClose())

            // The right secret gets in (so the failure above is the secret's doing).
            let alice = try await fixture.connect()
            try await alice.login(target: secureTargetName, chap: (TCPTargetFixture.chapUser.username,
                                                                   TCPTargetFixture.chapUser.secret))
            #expect(alice.tsih != 0)
            try await bystander.expectReadWorks("after")
        }
    }

    @Test("INQUIRY with EVPD=0 and a page code: CHECK CONDITION, ILLEGAL REQUEST, INVALID FIELD IN CDB (24/00)")
    func invalidFieldInCDB() async throws {
        try await withTCPServer { fixture in
            let bystander = try await Bystander.start(fixture)
            let session = try await fixture.loggedIn()
            let outcome = try await session.execute(cdb: TestCDB.inquiry(evpd: false, page: 0x80, allocationLength: 96),
                                                    read: true, expectedLength: 96)
            #expect(outcome.dataIns.isEmpty && outcome.response != nil)
            #expect(outcome.status == 0x02, "CHECK CONDITION")
            #expect(outcome.senseCode?.key == 0x05 && outcome.senseCode?.asc == 0x24 && outcome.senseCode?.ascq == 0x00)
            try await bystander.expectReadWorks("after")
        }
    }

    @Test("A command to a missing LUN: CHECK CONDITION 25/00; INQUIRY to it answers peripheral qualifier 3")
    func missingLUN() async throws {
        try await withTCPServer { fixture in
            let bystander = try await Bystander.start(fixture)
            let session = try await fixture.loggedIn()
            let read = try await session.execute(cdb: TestCDB.read10(lba: 0, blocks: 1), lun: 3, read: true,
                                                 expectedLength: blockBytes)
            #expect(read.status == 0x02 && read.dataIns.isEmpty)
            #expect(read.senseCode?.key == 0x05 && read.senseCode?.asc == 0x25 && read.senseCode?.ascq == 0x00,
                    "LOGICAL UNIT NOT SUPPORTED")
            let inquiry = try await session.execute(cdb: TestCDB.inquiry(allocationLength: 36), lun: 3, read: true,
                                                    expectedLength: 36)
            #expect(inquiry.status == 0)
            #expect(inquiry.data.first == 0x7F, "qualifier 011b, device type 1Fh")
            try await bystander.expectReadWorks("after")
        }
    }
}
