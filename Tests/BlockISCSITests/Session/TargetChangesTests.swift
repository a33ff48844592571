// Targets added and removed while the server runs (blockd's admin API creates and deletes
// volumes this way): an added target takes logins at once; a removed one refuses new logins,
// closes its sessions, and `removeTarget` returns only once their commands have ended, so the
// caller may close the volume behind it.

import Testing
@testable import BlockISCSI

@Suite("Server: targets added and removed at run time")
struct TargetChangesTests {
    static let addedTargetName = "iqn.2026-01.org.example:added"

    @Test("An added target serves I/O; removing it closes its sessions (whatever case they logged in with) and refuses logins")
    func addThenRemove() async throws {
        let logicalUnit = try await TestLogicalUnit.make()
        try await withTCPServer { fixture in
            let bystander = try await Bystander.start(fixture)
            fixture.server.addTarget(ISCSITargetDefinition(name: Self.addedTargetName, logicalUnits: [0: logicalUnit.unit]))

            let initiator = try await fixture.connect()
            // iSCSI names compare case-insensitively; removal must find this session too.
            try await initiator.login(target: Self.addedTargetName.uppercased())
            try await initiator.clearUnitAttentions()
            let block = testPattern(tag: 0x3C, bytes: blockBytes)
            #expect(try await initiator.write(lba: 9, data: block, immediateBytes: blockBytes).status == 0)
            #expect(try await initiator.read(lba: 9, blocks: 1).data == block)

            #expect(await fixture.server.removeTarget(named: Self.addedTargetName))
            #expect(try await initiator.waitForClose(), "the session on the removed target is closed")
            #expect(!fixture.server.targets.contains { $0.name == Self.addedTargetName })
            #expect(await !fixture.server.removeTarget(named: Self.addedTargetName), "a second removal finds nothing")

            let late = try await fixture.connect()
            await #expect(throws: InitiatorError.self, "no login to a removed target") {
                try await late.login(target: Self.addedTargetName)
            }
            try await bystander.expectReadWorks("after another target was removed")
        }
        // Nothing reaches the unit's volume any more: it closes cleanly.
        try await logicalUnit.volume.close()
    }

    @Test("removeTarget returns only once the removed target's executing write has ended")
    func removalWaitsForRunningCommands() async throws {
        let gate = WriteGate()
        try await withTCPServer(gate: gate) { fixture in
            let initiator = try await fixture.loggedIn()
            gate.close()
            try await initiator.send(initiator.commandPDU(cdb: TestCDB.write10(lba: 3, blocks: 1), write: true,
                                                          expectedLength: blockBytes,
                                                          immediateData: testPattern(tag: 0x71, bytes: blockBytes)))
            try await gate.waitUntilHeld(1)

            let server = fixture.server
            let removal = Task { await server.removeTarget(named: diskTargetName) }
            try await Task.sleep(for: .milliseconds(300))
            #expect(gate.heldCount == 1, "the write is still held")
            gate.open()
            #expect(await removal.value, "removal completes once the write has ended")
            #expect(try await initiator.waitForClose())
        }
    }
}
