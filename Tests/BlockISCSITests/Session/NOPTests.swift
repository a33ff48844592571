// NOP-Out pings from the initiator and NOP-In pings from the target (RFC 7143 sections
// 11.18, 11.19). Target pings are driven by the testing loop's virtual clock.

import Testing
@testable import BlockISCSI

@Suite("Session: NOP")
struct NOPTests {
    @Test("A NOP-Out ping is answered with the same ITT and data, TTT 0xffffffff, and a StatSN")
    func pingAnswered() async throws {
        try await withEmbeddedSession { initiator, _ in
            let payload = Array("ping with thirteen".utf8.prefix(13))
            let request = initiator.nopOutPDU(data: payload)
            try await initiator.send(request)
            let answer = try await initiator.receive("NOP-In")
            #expect(answer.opcode == Op.nopIn && answer.final)
            #expect(answer.initiatorTaskTag == request.initiatorTaskTag)
            #expect(answer.targetTransferTag == 0xFFFF_FFFF)
            #expect(answer.data == payload)
            #expect(answer.expCmdSN == request.u32(24) &+ 1, "a non-immediate NOP-Out takes its CmdSN")

            let immediate = try await initiator.ping([9, 9], immediate: true)
            #expect(immediate.data == [9, 9])
            #expect(immediate.expCmdSN == answer.expCmdSN, "an immediate NOP-Out does not advance ExpCmdSN")
            #expect(immediate.statSN == answer.statSN &+ 1)
        }
    }

    /// Polls the target, advancing virtual time by one liveness period per round (bounded).
    static func awaitTargetPDU(_ initiator: TestInitiator, _ transport: EmbeddedTransport) async throws -> WirePDU? {
        for _ in 0..<500 {
            if let pdu = try await initiator.receiveIfAvailable() { return pdu }
            if await transport.isClosed() { return nil }
            await transport.advanceTime(by: .milliseconds(100))
            try await Task.sleep(for: .milliseconds(2))
        }
        return nil
    }

    @Test("An idle connection gets a NOP-In ping (ITT 0xffffffff, a TTT, StatSN not advanced); the answer keeps it open")
    func targetPingsIdleInitiator() async throws {
        let configuration = testServerConfiguration { $0.nopInIntervalMs = 1 }
        try await withEmbeddedSession(configuration) { initiator, transport in
            initiator.answersPings = false
            let before = try await initiator.ping()
            let ping = try #require(try await Self.awaitTargetPDU(initiator, transport), "no NOP-In ping arrived")
            #expect(ping.opcode == Op.nopIn && ping.final)
            #expect(ping.initiatorTaskTag == 0xFFFF_FFFF)
            #expect(ping.targetTransferTag != 0xFFFF_FFFF)
            #expect(ping.statSN == before.statSN &+ 1, "carries the next StatSN without taking it")
            #expect(ping.data.isEmpty)

            try await initiator.answerPing(ping)
            let after = try await initiator.ping()
            #expect(after.statSN == before.statSN &+ 1, "the ping did not use a StatSN")
            #expect(await transport.isClosed() == false)
        }
    }

    @Test("A NOP-In ping left unanswered past nopInTimeoutMs closes the connection")
    func unansweredPingCloses() async throws {
        let configuration = testServerConfiguration {
            $0.nopInIntervalMs = 1
            $0.nopInTimeoutMs = 1
        }
        try await withEmbeddedSession(configuration) { initiator, transport in
            initiator.answersPings = false
            let ping = try #require(try await Self.awaitTargetPDU(initiator, transport), "no NOP-In ping arrived")
            #expect(ping.opcode == Op.nopIn && ping.initiatorTaskTag == 0xFFFF_FFFF)
            let next = try await Self.awaitTargetPDU(initiator, transport)
            #expect(next == nil, "no further PDU: \(String(describing: next))")
            #expect(await transport.isClosed(), "connection closed after the ping timed out")
        }
    }
}
