// A peer that stops reading its socket cannot make the target queue answers without bound:
// the connection stops taking commands (and pings) while its outbound side is over the
// watermark or its executing reads hold the read budget, and goes on once the peer reads.

import NIOCore
import Testing
@testable import BlockISCSI

@Suite("Session: flow control")
struct FlowControlTests {
    @Test("While the channel is not writable no command is taken; they all run once it is writable again")
    func unwritableChannelHoldsInput() async throws {
        try await withEmbeddedSession { initiator, transport in
            try await initiator.clearUnitAttentions()
            try await transport.setWritable(false)
            var reads: [WirePDU] = []
            for lba in 0..<4 {
                let read = initiator.commandPDU(cdb: TestCDB.read10(lba: UInt32(lba), blocks: 1), read: true,
                                                expectedLength: blockBytes)
                reads.append(read)
                try await initiator.send(read)
            }
            let ping = initiator.nopOutPDU(data: [1, 2, 3], immediate: true)
            try await initiator.send(ping)
            #expect(try await initiator.receiveIfAvailable() == nil, "nothing runs while the peer does not read")

            try await transport.setWritable(true)
            for read in reads {
                let outcome = try await initiator.collect(read)
                #expect(outcome.status == 0 && outcome.data.count == blockBytes)
            }
            let answer = try await initiator.receive("the NOP-In")
            #expect(answer.opcode == Op.nopIn && answer.initiatorTaskTag == ping.initiatorTaskTag)
        }
    }

    @Test("A peer that sends 1 MiB READs and never reads makes the target hold at most its read budget and watermark")
    func bigReadsWithoutReading() async throws {
        let configuration = testServerConfiguration {
            $0.maxDataInBytesPerConnection = 2 << 20
            $0.maxQueuedResponseBytesPerConnection = 1 << 20
        }
        try await withTCPServer(configuration) { fixture in
            let initiator = try await fixture.connect(smallReceiveBuffer: true)
            try await initiator.login(target: diskTargetName)
            try await initiator.clearUnitAttentions()
            let transport = try #require(initiator.transport as? TCPTransport)
            try await transport.setReading(false)

            let readBytes = 1 << 20
            var reads: [WirePDU] = []
            for index in 0..<48 {
                let lba = UInt32(index % 15 * readBytes / blockBytes)
                let read = initiator.commandPDU(cdb: TestCDB.read10(lba: lba, blocks: UInt16(readBytes / blockBytes)),
                                                read: true, expectedLength: readBytes)
                reads.append(read)
                try await initiator.send(read)
            }
            var peakBytes = 0
            for _ in 0..<40 {
                peakBytes = max(peakBytes, try await fixture.heldForPeersBytes())
                try await Task.sleep(for: .milliseconds(25))
            }
            // Watermark (1 MiB) + read budget (2 MiB) + the one read that may pass it (1 MiB).
            #expect(peakBytes <= 4 << 20, "held \(peakBytes) bytes for a peer that does not read")

            try await transport.setReading(true)
            for read in reads {
                let outcome = try await initiator.collect(read)
                #expect(outcome.status == 0 && outcome.data.count == readBytes)
            }
            #expect(initiator.sequenceViolations == [])
        }
    }

    @Test("A flood of immediate NOP-Outs with ping data from a peer that never reads is held back too")
    func pingFloodWithoutReading() async throws {
        let configuration = testServerConfiguration { $0.maxQueuedResponseBytesPerConnection = 1 << 20 }
        try await withTCPServer(configuration) { fixture in
            let initiator = try await fixture.connect(smallReceiveBuffer: true)
            try await initiator.login(target: diskTargetName)
            let transport = try #require(initiator.transport as? TCPTransport)
            try await transport.setReading(false)

            let data = [UInt8](repeating: 0x5C, count: 64 << 10)
            let pings = (0..<200).map { _ in initiator.nopOutPDU(data: data, immediate: true) }
            // The target stops reading too, so these sends finish only once the test reads.
            let bytes = pings.flatMap { $0.encoded(headerDigest: false, dataDigest: false) }
            let sending = Task { try await transport.send(bytes) }
            var peakBytes = 0
            for _ in 0..<40 {
                peakBytes = max(peakBytes, try await fixture.heldForPeersBytes())
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(peakBytes <= 2 << 20, "held \(peakBytes) bytes of ping answers for a peer that does not read")

            try await transport.setReading(true)
            try await sending.value
            for ping in pings {
                let answer = try await initiator.receive("NOP-In")
                #expect(answer.opcode == Op.nopIn && answer.initiatorTaskTag == ping.initiatorTaskTag
                    && answer.data.count == data.count)
            }
        }
    }
}

extension EmbeddedTransport {
    /// Makes the channel report itself (not) writable, as a socket whose peer stops reading does.
    func setWritable(_ writable: Bool) async throws {
        channel.isWritable = writable
        try await channel.testingEventLoop.executeInContext {
            self.channel.pipeline.fireChannelWritabilityChanged()
        }
    }
}

extension TCPTargetFixture {
    /// What the server holds for its peers now: answers queued on the channels plus the read
    /// data of executing commands, over every logged-in connection.
    func heldForPeersBytes() async throws -> Int {
        var total = 0
        for connection in server.context.registry.allConnections() {
            let handler = connection.handler
            total += try await connection.channel.getOption(.bufferedWritableBytes).get()
            total += try await connection.channel.eventLoop.submit { handler.value.dataInReservedBytes }.get()
        }
        return total
    }
}
