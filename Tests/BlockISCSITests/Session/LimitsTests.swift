// Limits a peer cannot talk its way past: immediate commands beside the CmdSN window, PDUs
// that stop halfway, connections per server and per host, and the session table's pools
// (discovery and unauthenticated logins cannot take authenticated sessions' places).

import NIOCore
import Testing
@testable import BlockISCSI

@Suite("Server: limits")
struct LimitsTests {
    @Test("Immediate commands beyond maxImmediateCommands get Reject 0x06; one more is taken once one ends")
    func immediateCommandsBounded() async throws {
        let configuration = testServerConfiguration { $0.maxImmediateCommands = 2 }
        let keys = operationalKeys(["ImmediateData": "No"])
        try await withEmbeddedSession(configuration, keys: keys) { initiator, _ in
            try await initiator.clearUnitAttentions()
            let data = testPattern(tag: 0x61, bytes: blockBytes)
            let writes = (0..<3).map { index in
                initiator.commandPDU(cdb: TestCDB.write10(lba: UInt32(70 + index), blocks: 1), write: true,
                                     expectedLength: blockBytes, immediate: true)
            }
            for write in writes { try await initiator.send(write) }
            var r2ts: [WirePDU] = []
            var rejects: [WirePDU] = []
            for _ in 0..<3 {
                let pdu = try await initiator.receive("R2Ts and a Reject")
                if pdu.opcode == Op.r2t { r2ts.append(pdu) } else if pdu.opcode == Op.reject { rejects.append(pdu) }
            }
            #expect(r2ts.map(\.initiatorTaskTag) == [writes[0].initiatorTaskTag, writes[1].initiatorTaskTag])
            #expect(rejects.count == 1 && rejects.first?.bhs[2] == 0x06, "IMMEDIATE COMMAND REJECT")

            try await initiator.sendDataOut(for: r2ts[0], lun: 0, from: data, segment: blockBytes)
            let done = try await initiator.receive("the first write's status")
            #expect(done.opcode == Op.scsiResponse && done.bhs[3] == 0)
            let again = initiator.commandPDU(cdb: TestCDB.write10(lba: 72, blocks: 1), write: true,
                                             expectedLength: blockBytes, immediate: true)
            try await initiator.send(again)
            let r2t = try await initiator.receive("the R2T for the retried write")
            #expect(r2t.opcode == Op.r2t && r2t.initiatorTaskTag == again.initiatorTaskTag)
        }
    }

    @Test("A PDU that stops arriving halfway closes the connection after pduTimeoutMs; whole PDUs do not")
    func halfSentPDUTimesOut() async throws {
        let configuration = testServerConfiguration {
            $0.pduTimeoutMs = 10_000
            $0.nopInIntervalMs = 4_000
            $0.nopInTimeoutMs = 600_000
        }
        try await withEmbeddedSession(configuration) { initiator, transport in
            initiator.answersPings = true
            let ping = initiator.nopOutPDU(data: [9], immediate: true)
            let bytes = ping.encoded(headerDigest: false, dataDigest: false)
            try await transport.send(Array(bytes.prefix(20)))
            await transport.advanceTime(by: .seconds(6))
            #expect(await transport.isClosed() == false, "still inside the timeout")
            await transport.advanceTime(by: .seconds(6))
            #expect(await transport.isClosed(), "the half PDU waited longer than pduTimeoutMs")
        }
    }

    @Test("Whole PDUs between long idle times keep the connection")
    func idleWithoutPartialPDUStays() async throws {
        let configuration = testServerConfiguration {
            $0.pduTimeoutMs = 10_000
            $0.nopInIntervalMs = 600_000
        }
        try await withEmbeddedSession(configuration) { initiator, transport in
            for _ in 0..<3 {
                await transport.advanceTime(by: .seconds(20))
                let answer = try await initiator.ping([3])
                #expect(answer.data == [3])
            }
            #expect(await transport.isClosed() == false)
        }
    }

    @Test("Connections beyond maxConnectionsPerHost are closed at once; a place frees when one closes")
    func connectionsPerHostBounded() async throws {
        let configuration = testServerConfiguration { $0.maxConnectionsPerHost = 2 }
        try await withTCPServer(configuration) { fixture in
            let first = try await fixture.loggedIn()
            let second = try await fixture.connect()
            let third = try await fixture.connect()
            #expect(try await third.waitForClose(), "the third connection from this host is refused")
            try await second.login(target: diskTargetName)
            await second.transport.closeConnection()
            try await waitUntil { fixture.server.connectionCount == 1 }
            let again = try await fixture.connect()
            try await again.login(target: diskTargetName)
            #expect(again.tsih != 0)
            #expect(try await first.ping([1]).data == [1])
        }
    }

    @Test("Connections beyond maxConnections are closed at once")
    func connectionsPerServerBounded() async throws {
        let configuration = testServerConfiguration { $0.maxConnections = 1 }
        try await withTCPServer(configuration) { fixture in
            let first = try await fixture.loggedIn()
            let second = try await fixture.connect()
            #expect(try await second.waitForClose())
            #expect(try await first.ping([1]).data == [1])
        }
    }

    @Test("Discovery sessions have their own pool: when it is full a discovery login fails with 0x0302, normal logins go on")
    func discoveryPoolBounded() async throws {
        let configuration = testServerConfiguration { $0.maxDiscoverySessions = 1 }
        try await withTCPServer(configuration) { fixture in
            let first = try await fixture.connect()
            try TestInitiator.requireSuccess(try await first.discoveryLogin())
            let second = try await fixture.connect()
            let refused = try await second.discoveryLogin()
            #expect(refused.bhs[36] == 0x03 && refused.bhs[37] == 0x02, "OUT OF RESOURCES")
            let normal = try await fixture.loggedIn()
            #expect(normal.tsih != 0)
        }
    }

    @Test("Unauthenticated sessions cannot take authenticated sessions' places")
    func unauthenticatedPoolBounded() async throws {
        let configuration = testServerConfiguration { $0.maxUnauthenticatedSessions = 1 }
        try await withTCPServer(configuration) { fixture in
            _ = try await fixture.loggedIn()
            let second = try await fixture.connect()
            await #expect(throws: InitiatorError.self) { try await second.login(target: diskTargetName) }
            #expect(second.received.last?.bhs[36] == 0x03 && second.received.last?.bhs[37] == 0x02)
            let alice = try await fixture.connect()
            try await alice.login(target: secureTargetName, chap: (TCPTargetFixture.chapUser.username,
                                                                   TCPTargetFixture.chapUser.secret))
            #expect(alice.tsih != 0, "an authenticated login still gets in")
        }
    }

    @Test("One initiator name holds at most maxSessionsPerInitiator sessions")
    func sessionsPerInitiatorBounded() async throws {
        let configuration = testServerConfiguration { $0.maxSessionsPerInitiator = 2 }
        try await withTCPServer(configuration) { fixture in
            _ = try await fixture.loggedIn()
            _ = try await fixture.loggedIn()
            let third = try await fixture.connect()
            await #expect(throws: InitiatorError.self) { try await third.login(target: diskTargetName) }
            let other = try await fixture.connect(initiatorName: "iqn.2026-01.org.example:other")
            try await other.login(target: diskTargetName)
            #expect(other.tsih != 0)
        }
    }
}

/// Polls `condition` every 10 ms for at most 5 s.
func waitUntil(_ condition: () -> Bool) async throws {
    for _ in 0..<500 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    guard condition() else { throw InitiatorError.timeout("a condition") }
}

extension TestInitiator {
    /// A one-step discovery login; returns the Login Response, whatever its status.
    func discoveryLogin() async throws -> WirePDU {
        try await loginStep(csg: 1, nsg: 3, transit: true, [
            ("InitiatorName", initiatorName), ("SessionType", "Discovery"),
            ("HeaderDigest", "None"), ("DataDigest", "None"),
        ])
    }
}
