import NIOCore
import NIOEmbedded
import Testing
@testable import BlockReplication

/// The top of a test pipeline: keeps what reaches it.
final class Recorder: ChannelInboundHandler {
    typealias InboundIn = ReplicationMessage
    var messages: [ReplicationMessage] = []
    var events: [ReplicationHandshakeEvent] = []
    var errors: [any Error] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        messages.append(unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ReplicationHandshakeEvent { events.append(event) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
    }

    var wireErrors: [WireError] { errors.compactMap { $0 as? WireError } }
}

/// One end of a replication connection on an embedded channel.
struct End {
    let channel = EmbeddedChannel()
    let recorder = Recorder()

    init(_ side: ReplicationHandshakeHandler.Side, remote: String = "127.0.0.1", limits: WireLimits = WireLimits()) throws {
        try ReplicationFraming.addHandlers(to: channel.pipeline.syncOperations, side: side, limits: limits,
                                           handshakeTimeoutMs: 1000)
        try channel.pipeline.syncOperations.addHandler(recorder)
        let address = try SocketAddress(ipAddress: remote, port: 7000)
        channel.remoteAddress = address
        try channel.connect(to: address).wait()
    }

    func send(_ message: ReplicationMessage) -> EventLoopFuture<Void> {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        channel.pipeline.syncOperations.writeAndFlush(NIOAny(message), promise: promise)
        return promise.futureResult
    }
}

/// Moves bytes between two ends until neither has anything to send (bounded).
func shuttle(_ a: End, _ b: End) throws {
    for _ in 0..<100 {
        var moved = false
        while let bytes = try a.channel.readOutbound(as: ByteBuffer.self) {
            moved = true
            if b.channel.isActive { try b.channel.writeInbound(bytes) }
        }
        while let bytes = try b.channel.readOutbound(as: ByteBuffer.self) {
            moved = true
            if a.channel.isActive { try a.channel.writeInbound(bytes) }
        }
        if !moved { return }
    }
    Issue.record("the ends never went quiet")
}

func dialerSide(_ authentication: ReplicationAuthentication, epoch: UInt64 = 5) -> ReplicationHandshakeHandler.Side {
    var random = SystemRandomNumberGenerator()
    return .dialer(DialerHandshake(authentication: authentication, volumeName: "vol1", volumeUUID: testUUID, role: .primary,
                                   epoch: epoch, committedLSN: 100, using: &random))
}

func listenerSide(_ authentication: ReplicationAuthentication,
                  status: HelloStatus = .ok) -> ReplicationHandshakeHandler.Side {
    var random = SystemRandomNumberGenerator()
    return .listener(ListenerHandshake(authentication: authentication, using: &random)) { hello in
        ListenerHandshake.Answer(status: status, epoch: max(hello.epoch, 6), durableLSN: 90, receivedLSN: 95,
                                 durableRecordEpoch: 4)
    }
}

@Suite("NIO handlers")
struct ChannelTests {
    let decision = ReplicationMessage.decision(Decision(mode: .catchUp, fromLSN: 91, truncateAfterLSN: 90))
    let ack = ReplicationMessage.ack(Ack(receivedLSN: 91, durableLSN: 91))

    @Test("the handshake runs on channels, then data frames flow both ways with MACs")
    func handshake() throws {
        let dialer = try End(dialerSide(.sharedSecret(groupSecret)))
        let listener = try End(listenerSide(.sharedSecret(groupSecret)))
        try shuttle(dialer, listener)
        guard case let .dialerEstablished(ack)? = dialer.recorder.events.first,
              case let .listenerEstablished(hello)? = listener.recorder.events.first else {
            Issue.record("not established: \(dialer.recorder.errors) \(listener.recorder.errors)")
            return
        }
        #expect(ack.durableLSN == 90 && hello.volumeName == "vol1")
        #expect(dialer.recorder.messages.isEmpty && listener.recorder.messages.isEmpty, "handshake frames stay below")
        _ = dialer.send(decision)
        _ = listener.send(self.ack)
        try shuttle(dialer, listener)
        #expect(listener.recorder.messages == [decision])
        #expect(dialer.recorder.messages == [self.ack])
        #expect(dialer.recorder.errors.isEmpty && listener.recorder.errors.isEmpty)
    }

    @Test("frames arrive one byte at a time")
    func byteByByte() throws {
        let dialer = try End(dialerSide(.sharedSecret(groupSecret)))
        let listener = try End(listenerSide(.sharedSecret(groupSecret)))
        try shuttle(dialer, listener)
        _ = dialer.send(.records(Samples.records))
        var bytes: [UInt8] = []
        while let buffer = try dialer.channel.readOutbound(as: ByteBuffer.self) { bytes += buffer.readableBytesView }
        for byte in bytes { try listener.channel.writeInbound(ByteBuffer(bytes: [byte])) }
        #expect(listener.recorder.messages == [.records(Samples.records)])
    }

    @Test("a data frame written before the handshake completes fails its write and sends nothing")
    func writeBeforeHandshake() throws {
        let dialer = try End(dialerSide(.sharedSecret(groupSecret)))
        _ = try dialer.channel.readOutbound(as: ByteBuffer.self)  // the hello
        let written = dialer.send(decision)
        #expect(throws: WireError.unexpectedFrame(.decision, state: "before the handshake completed")) { try written.wait() }
        #expect(try dialer.channel.readOutbound(as: ByteBuffer.self) == nil)
    }

    @Test("a verified refusal reaches the dialer, and both ends close")
    func refusal() throws {
        let dialer = try End(dialerSide(.sharedSecret(groupSecret)))
        let listener = try End(listenerSide(.sharedSecret(groupSecret), status: .staleEpoch))
        try shuttle(dialer, listener)
        guard case let .refusedByListener(ack)? = dialer.recorder.events.first else {
            Issue.record("no refusal: \(dialer.recorder.errors)")
            return
        }
        #expect(ack.status == .staleEpoch && ack.epoch == 6)
        #expect(!dialer.channel.isActive && !listener.channel.isActive)
        #expect(listener.recorder.events.isEmpty)
    }

    @Test("a wrong secret ends the handshake with an authentication error")
    func wrongSecret() throws {
        let dialer = try End(dialerSide(.sharedSecret(groupSecret)))
        let listener = try End(listenerSide(.sharedSecret(foreignSecret)))
        try shuttle(dialer, listener)
        #expect(dialer.recorder.wireErrors == [.authenticationFailed("the listener's proof does not verify")])
        #expect(!dialer.channel.isActive && dialer.recorder.events.isEmpty && listener.recorder.events.isEmpty)
    }

    @Test("a listener with a secret refuses a dialer without one")
    func modeMismatch() throws {
        let dialer = try End(dialerSide(.none))
        let listener = try End(listenerSide(.sharedSecret(groupSecret)))
        try shuttle(dialer, listener)
        #expect(dialer.recorder.wireErrors == [.peerRefusedAuthentication])
        #expect(!listener.channel.isActive && listener.recorder.events.isEmpty)
    }

    @Test("none mode works on loopback and is refused for other peers")
    func unauthenticatedPeers() throws {
        let dialer = try End(dialerSide(.none), remote: "::1")
        let listener = try End(listenerSide(.none))
        try shuttle(dialer, listener)
        #expect(dialer.recorder.events.count == 1 && listener.recorder.events.count == 1)
        let remote = try End(listenerSide(.none), remote: "10.1.2.3")
        #expect(remote.recorder.wireErrors.first.map { "\($0)" }?.contains("10.1.2.3") == true)
        #expect(!remote.channel.isActive)
        let withSecret = try End(listenerSide(.sharedSecret(groupSecret)), remote: "10.1.2.3")
        #expect(withSecret.channel.isActive, "a secret is fine for any peer")
    }

    @Test("a handshake that does not complete in time closes the channel")
    func timeout() throws {
        let dialer = try End(dialerSide(.sharedSecret(groupSecret)))
        dialer.channel.embeddedEventLoop.advanceTime(by: .milliseconds(999))
        #expect(dialer.channel.isActive)
        dialer.channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(dialer.recorder.wireErrors == [.handshakeTimedOut(timeoutMs: 1000)])
        #expect(!dialer.channel.isActive)
        let done = try End(dialerSide(.sharedSecret(groupSecret)))
        let listener = try End(listenerSide(.sharedSecret(groupSecret)))
        try shuttle(done, listener)
        done.channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(done.channel.isActive && done.recorder.errors.isEmpty, "no timeout after the handshake")
    }

    @Test("an oversized frame is refused from its header and closes the channel")
    func oversized() throws {
        let listener = try End(listenerSide(.sharedSecret(groupSecret)), limits: WireLimits(maxPayloadBytes: 4096))
        try listener.channel.writeInbound(rawFrame(type: 1, payload: [], length: 1 << 30).getSlice(at: 0, length: 12)!)
        #expect(listener.recorder.wireErrors == [.payloadTooLarge(lengthBytes: 1 << 30, limitBytes: 4096)])
        #expect(!listener.channel.isActive)
    }

    @Test("a stream cut inside a frame is reported at the end")
    func cutStream() throws {
        let listener = try End(listenerSide(.sharedSecret(groupSecret)))
        try listener.channel.writeInbound(ByteBuffer(bytes: [0x42, 0x52, 0x50]))
        listener.channel.pipeline.fireChannelInactive()
        #expect(listener.recorder.wireErrors == [.truncatedFrame(bufferedBytes: 3)])
    }
}
