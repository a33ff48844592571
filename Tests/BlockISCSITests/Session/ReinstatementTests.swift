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
