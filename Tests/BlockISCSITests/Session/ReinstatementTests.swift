// Session reinstatement and TSIH checks at login (RFC 7143 sections 6.3.5 and 11.13.5).

import Testing
@testable import BlockISCSI

@Suite("Server: session reinstatement")
struct ReinstatementTests {
    @Test("A new login with the same initiator name and ISID replaces the session and closes the old connection")
    func sameISIDReinstates() async throws {
        try await withTCPServer { fixture in
            let bystander = try await Bystander.start(fixture)
            let isid: UInt64 = 0x8000_0000_7777
            let old = try await fixture.connect(isid: isid)
            try await old.login(target: diskTargetName)
            try await old.clearUnitAttentions()
            #expect(try await old.read(lba: 0, blocks: 1).status == 0)

            let new = try await fixture.connect(isid: isid)
            try await new.login(target: diskTargetName)
            #expect(new.tsih != 0 && new.tsih != old.tsih, "a new session")
            #expect(try await old.waitForClose(), "the old connection is closed")
            try await new.clearUnitAttentions()
            #expect(try await new.read(lba: 0, blocks: 1).status == 0)
            try await bystander.expectReadWorks("after")
        }
    }

    @Test("A login naming an unknown TSIH is refused with 0x020A; an existing one with 0x0206 (MaxConnections=1)")
    func unknownTSIHRefused() async throws {
        try await withTCPServer { fixture in
            let bystander = try await Bystander.start(fixture)
            let unknown = try await fixture.connect()
            unknown.tsih = bystander.initiator.tsih &+ 0x1234
            await #expect(throws: InitiatorError.self) { try await unknown.login(target: diskTargetName) }
            let refusal = try #require(unknown.received.last)
            #expect(refusal.opcode == Op.loginResponse && refusal.bhs[36] == 0x02 && refusal.bhs[37] == 0x0A,
                    "SESSION DOES NOT EXIST")
            #expect(try await unknown.waitForClose())

            let extra = try await fixture.connect(isid: bystander.initiator.isid)
            extra.tsih = bystander.initiator.tsih
            await #expect(throws: InitiatorError.self) { try await extra.login(target: diskTargetName) }
            let tooMany = try #require(extra.received.last)
            #expect(tooMany.bhs[36] == 0x02 && tooMany.bhs[37] == 0x06, "TOO MANY CONNECTIONS")
            #expect(try await extra.waitForClose())
            try await bystander.expectReadWorks("after")
        }
    }
}

/// Reinstatement must not let the old session's writes land after the new session's: the new
/// login is answered only once none of the old session's tasks can still reach the volume.
@Suite("Server: reinstatement waits for the old session's writes")
struct ReinstatementOrderingTests {
    @Test("A reinstating login is answered only after the old session's executing write has ended",
          arguments: [false, true])
    func loginWaitsForOldWrites(oldConnectionClosedFirst: Bool) async throws {
        let gate = WriteGate()
        try await withTCPServer(gate: gate) { fixture in
            let isid: UInt64 = 0x8000_0000_4444
            let old = try await fixture.connect(isid: isid)
            try await old.login(target: diskTargetName)
            try await old.clearUnitAttentions()
            gate.close()
            let stale = testPattern(tag: 0xA1, bytes: blockBytes)
            try await old.send(old.commandPDU(cdb: TestCDB.write10(lba: 5, blocks: 1), write: true,
                                              expectedLength: blockBytes, immediateData: stale))
            try await gate.waitUntilHeld(1)
            if oldConnectionClosedFirst {
                // The initiator gave up on the connection; its write still executes.
                await old.transport.closeConnection()
            }

            let new = try await fixture.connect(isid: isid)
            try await new.startLogin(target: diskTargetName)
            await #expect(throws: InitiatorError.self, "no login answer while the old write runs") {
                try await new.receive("a Login Response", timeout: .milliseconds(300))
            }
            gate.open()
            let response = try await new.receive("the Login Response")
            #expect(response.opcode == Op.loginResponse && response.bhs[36] == 0, "login succeeds once the old write ended")

            try await new.completeLogin(after: response)
            try await new.clearUnitAttentions()
            let fresh = testPattern(tag: 0xB2, bytes: blockBytes)
            #expect(try await new.write(lba: 5, data: fresh, immediateBytes: blockBytes).status == 0)
            #expect(try await new.read(lba: 5, blocks: 1).data == fresh, "the new session's write is the last")
        }
    }
}

extension ByteTransport {
    /// Closes the connection from the initiator's side.
    func closeConnection() async {
        if let tcp = self as? TCPTransport { await tcp.close() }
        if let embedded = self as? EmbeddedTransport { await embedded.close() }
    }
}
