import BlockEngine
import NIOCore
import Testing
@testable import BlockReplication

/// Two sides of a handshake wired back to back through their frame readers and writers.
struct Pair {
    var dialer: DialerHandshake
    var listener: ListenerHandshake
    var dialerReader = FrameReader()
    var dialerWriter = FrameWriter()
    var listenerReader = FrameReader()
    var listenerWriter = FrameWriter()

    init(dialer: ReplicationAuthentication, listener: ReplicationAuthentication, seed: UInt64 = 1) {
        var random = generator(seed)
        self.dialer = DialerHandshake(authentication: dialer, volumeName: "vol1", volumeUUID: testUUID, role: .primary,
                                      epoch: 5, committedLSN: 100, using: &random)
        self.listener = ListenerHandshake(authentication: listener, using: &random)
    }

    static func encode(_ message: ReplicationMessage, _ writer: inout FrameWriter) -> ByteBuffer {
        var buffer = ByteBuffer()
        try! writer.write(message, into: &buffer)
        return buffer
    }

    /// The hello on the wire.
    mutating func helloFrame() -> ByteBuffer { Self.encode(.hello(dialer.hello), &dialerWriter) }

    /// Listener: reads the hello frame, answers `answer`; returns the helloAck frame.
    mutating func answer(_ helloFrame: ByteBuffer, _ answer: ListenerHandshake.Answer = .init(
        status: .ok, epoch: 5, durableLSN: 90, receivedLSN: 95, durableRecordEpoch: 4)) throws -> ByteBuffer {
        var buffer = helloFrame
        let message = try listenerReader.read(from: &buffer)!
        switch try listener.receive(message) {
        case .answerNeeded:
            return Self.encode(.helloAck(listener.answer(answer)), &listenerWriter)
        case let .refuse(ack):
            return Self.encode(.helloAck(ack), &listenerWriter)
        case .established:
            Issue.record("established on a hello")
            return ByteBuffer()
        }
    }

    /// Dialer: reads the helloAck frame.
    mutating func dialerTakes(_ ackFrame: ByteBuffer) throws -> DialerHandshake.Outcome {
        var buffer = ackFrame
        return try dialer.receive(try dialerReader.read(from: &buffer)!)
    }

    /// Listener: reads the auth frame.
    mutating func listenerTakes(_ authFrame: ByteBuffer) throws -> ListenerHandshake.Event {
        var buffer = authFrame
        return try listener.receive(try listenerReader.read(from: &buffer)!)
    }

    /// Runs the whole handshake; returns both sides' keys.
    mutating func run() throws -> (dialer: SessionKeys, listener: SessionKeys) {
        let ackFrame = try answer(helloFrame())
        #expect(listener.isEstablished == false)
        guard case let .established(_, auth, dialerKeys) = try dialerTakes(ackFrame) else {
            throw WireError.authenticationFailed("dialer did not establish")
        }
        let authFrame = Self.encode(.auth(auth), &dialerWriter)
        dialerWriter.establish(dialerKeys.outbound)
        dialerReader.establish(dialerKeys.inbound)
        guard case let .established(hello, listenerKeys) = try listenerTakes(authFrame) else {
            throw WireError.authenticationFailed("listener did not establish")
        }
        #expect(hello == dialer.hello)
        listenerReader.establish(listenerKeys.inbound)
        listenerWriter.establish(listenerKeys.outbound)
        return (dialerKeys, listenerKeys)
    }
}

@Suite("Handshake")
struct HandshakeTests {
    let decision = ReplicationMessage.decision(Decision(mode: .stream, fromLSN: 101, truncateAfterLSN: nil))
    let ack = ReplicationMessage.ack(Ack(receivedLSN: 101, durableLSN: 101))

    @Test("with the shared secret both sides agree on per-direction keys and frames flow both ways")
    func success() throws {
        var pair = Pair(dialer: .sharedSecret(groupSecret), listener: .sharedSecret(groupSecret))
        let keys = try pair.run()
        #expect(keys.dialer.outbound.isSame(as: keys.listener.inbound))
        #expect(keys.dialer.inbound.isSame(as: keys.listener.outbound))
        #expect(!keys.dialer.outbound.isSame(as: keys.dialer.inbound), "one key per direction")
        #expect(keys.dialer.outbound.authenticates)
        var toListener = Pair.encode(decision, &pair.dialerWriter)
        #expect(try pair.listenerReader.read(from: &toListener) == decision)
        var toDialer = Pair.encode(ack, &pair.listenerWriter)
        #expect(try pair.dialerReader.read(from: &toDialer) == ack)
        #expect(pair.listener.isEstablished)
    }

    @Test("two connections get different nonces, proofs and keys")
    func freshPerConnection() throws {
        var first = Pair(dialer: .sharedSecret(groupSecret), listener: .sharedSecret(groupSecret), seed: 1)
        var second = Pair(dialer: .sharedSecret(groupSecret), listener: .sharedSecret(groupSecret), seed: 2)
        #expect(first.dialer.hello.clientNonce != second.dialer.hello.clientNonce)
        let a = try first.run()
        let b = try second.run()
        #expect(!a.dialer.outbound.isSame(as: b.dialer.outbound))
    }

    @Test("none mode on both sides: zero proofs, zero MACs")
    func unauthenticated() throws {
        var pair = Pair(dialer: .none, listener: .none)
        let keys = try pair.run()
        #expect(!keys.dialer.outbound.authenticates && !keys.listener.outbound.authenticates)
        var toListener = Pair.encode(decision, &pair.dialerWriter)
        #expect(Array(toListener.readableBytesView[24..<40]) == bytes(16, 0))
        #expect(try pair.listenerReader.read(from: &toListener) == decision)
    }

    @Test("a listener with another secret: the dialer refuses its proof and sends nothing")
    func wrongListenerSecret() throws {
        var pair = Pair(dialer: .sharedSecret(groupSecret), listener: .sharedSecret(foreignSecret))
        let ackFrame = try pair.answer(pair.helloFrame())
        #expect(throws: WireError.authenticationFailed("the listener's proof does not verify")) {
            try pair.dialerTakes(ackFrame)
        }
    }

    @Test("a dialer with another secret cannot pass: the listener refuses its proof")
    func wrongDialerSecret() throws {
        // An attacker that ignores the listener's bad proof and answers with its own secret.
        var pair = Pair(dialer: .sharedSecret(foreignSecret), listener: .sharedSecret(groupSecret))
        let helloFrame = pair.helloFrame()
        var ackFrame = try pair.answer(helloFrame)
        guard case let .helloAck(ack) = try pair.dialerReader.read(from: &ackFrame) else {
            Issue.record("no helloAck")
            return
        }
        let transcript = HandshakeCrypto.transcript(hello: pair.dialer.hello, ack: ack)
        let forged = Auth(clientProof: HandshakeCrypto.clientProof(foreignSecret, transcript: transcript))
        #expect(throws: WireError.authenticationFailed("the dialer's proof does not verify")) {
            try pair.listenerTakes(Pair.encode(.auth(forged), &pair.dialerWriter))
        }
        #expect(!pair.listener.isEstablished)
    }

    @Test("authentication modes must match: a listener with a secret refuses none, and the other way round")
    func modeMismatch() throws {
        for (dialer, listener) in [(ReplicationAuthentication.none, ReplicationAuthentication.sharedSecret(groupSecret)),
                                   (.sharedSecret(groupSecret), .none)] {
            var pair = Pair(dialer: dialer, listener: listener)
            var helloFrame = pair.helloFrame()
            guard case let .refuse(ack) = try pair.listener.receive(try pair.listenerReader.read(from: &helloFrame)!) else {
                Issue.record("the listener did not refuse")
                continue
            }
            #expect(ack.status == .authFailed && ack.serverProof == bytes(32, 0) && ack.epoch == 0)
            #expect(throws: WireError.peerRefusedAuthentication) {
                try pair.dialerTakes(Pair.encode(.helloAck(ack), &pair.listenerWriter))
            }
        }
    }

    @Test("a refusal is verified before it is acted on; a tampered one is not")
    func verifiedRefusal() throws {
        var pair = Pair(dialer: .sharedSecret(groupSecret), listener: .sharedSecret(groupSecret))
        let refusal = ListenerHandshake.Answer(status: .staleEpoch, epoch: 9, durableLSN: 0, receivedLSN: 0,
                                               durableRecordEpoch: 0)
        let ackFrame = try pair.answer(pair.helloFrame(), refusal)
        var tampered = Pair(dialer: .sharedSecret(groupSecret), listener: .sharedSecret(groupSecret))
        var copy = ackFrame
        guard case var .helloAck(ack) = try tampered.dialerReader.read(from: &copy) else { return }
        ack.epoch = 10  // an attacker's newer epoch, to make the primary fence itself
        #expect(throws: WireError.authenticationFailed("the listener's proof does not verify")) {
            try tampered.dialer.receive(.helloAck(ack))
        }
        guard case let .refused(verified) = try pair.dialerTakes(ackFrame) else {
            Issue.record("not refused")
            return
        }
        #expect(verified.status == .staleEpoch && verified.epoch == 9)
    }

    @Test("an unsupported protocol version is refused with a proof")
    func unsupportedVersion() throws {
        var pair = Pair(dialer: .sharedSecret(groupSecret), listener: .sharedSecret(groupSecret))
        var hello = pair.dialer.hello
        hello.protocolVersion = 1
        guard case let .refuse(ack) = try pair.listener.receive(.hello(hello)) else {
            Issue.record("not refused")
            return
        }
        #expect(ack.status == .unsupportedVersion)
        let transcript = HandshakeCrypto.transcript(hello: hello, ack: ack)
        #expect(ack.serverProof == HandshakeCrypto.serverProof(groupSecret, transcript: transcript))
    }

    @Test("a tampered hello changes the transcript: the dialer refuses the listener's proof")
    func tamperedHello() throws {
        var pair = Pair(dialer: .sharedSecret(groupSecret), listener: .sharedSecret(groupSecret))
        var hello = pair.dialer.hello
        hello.epoch += 1  // on the path, CRC fixed
        let ackFrame = try pair.answer(Pair.encode(.hello(hello), &pair.dialerWriter))
        #expect(throws: WireError.authenticationFailed("the listener's proof does not verify")) {
            try pair.dialerTakes(ackFrame)
        }
    }

    @Test("an auth replayed from an earlier connection fails: the listener's nonce differs")
    func replayedAuth() throws {
        var first = Pair(dialer: .sharedSecret(groupSecret), listener: .sharedSecret(groupSecret), seed: 1)
        let ackFrame = try first.answer(first.helloFrame())
        guard case let .established(_, auth, _) = try first.dialerTakes(ackFrame) else { return }
        // The same hello (recorded and replayed) to a new listener, then the recorded auth.
        var random = generator(99)
        var listener = ListenerHandshake(authentication: .sharedSecret(groupSecret), using: &random)
        _ = try listener.receive(.hello(first.dialer.hello))
        _ = listener.answer(.init(status: .ok, epoch: 5, durableLSN: 90, receivedLSN: 95, durableRecordEpoch: 4))
        #expect(throws: WireError.authenticationFailed("the dialer's proof does not verify")) {
            try listener.receive(.auth(auth))
        }
    }

    @Test("data frames: a replay is a sequence error, tampering and reflection MAC errors, an old session's frame too")
    func dataFrames() throws {
        var pair = Pair(dialer: .sharedSecret(groupSecret), listener: .sharedSecret(groupSecret))
        let keys = try pair.run()
        let first = Pair.encode(decision, &pair.dialerWriter)
        var stream = first
        #expect(try pair.listenerReader.read(from: &stream) == decision)
        var replay = first
        var replayReader = pair.listenerReader
        #expect(throws: WireError.sequenceOutOfOrder(expected: 3, received: 2)) { try replayReader.read(from: &replay) }
        // Tampered on the path: a payload byte changed, the CRC fixed.
        var tampered = Pair.encode(ack, &pair.dialerWriter)
        let payloadBytes = tampered.readableBytes - FrameHeader.sizeBytes
        tampered.setInteger(UInt8(0x7F), at: FrameHeader.sizeBytes)
        tampered.setInteger(FrameHeader.checksum(tampered, frameAt: 0, payloadBytes: payloadBytes), at: FrameHeader.crcOffset,
                            endianness: .little)
        var tamperedReader = pair.listenerReader
        #expect(throws: WireError.badMAC(sequence: 3)) { try tamperedReader.read(from: &tampered) }
        // Reflected: the listener's own frame sent back to it.
        var reflected = frame(ack, sequence: 3, key: keys.listener.outbound)
        var reflectedReader = pair.listenerReader
        #expect(throws: WireError.badMAC(sequence: 3)) { try reflectedReader.read(from: &reflected) }
        // From another session with the same secret and the same sequence number.
        var other = Pair(dialer: .sharedSecret(groupSecret), listener: .sharedSecret(groupSecret), seed: 7)
        let otherKeys = try other.run()
        var stale = frame(ack, sequence: 3, key: otherKeys.dialer.outbound)
        #expect(throws: WireError.badMAC(sequence: 3)) { try pair.listenerReader.read(from: &stale) }
    }

    @Test("frames out of turn: data before auth, a second hello, an ack to a listener, a hello to a dialer")
    func outOfTurn() throws {
        var pair = Pair(dialer: .sharedSecret(groupSecret), listener: .sharedSecret(groupSecret))
        _ = try pair.answer(pair.helloFrame())
        // The dialer's decision before its auth: the reader is still in the handshake phase.
        var early = frame(decision, sequence: 1, key: .unauthenticated)
        var reader = pair.listenerReader
        #expect(throws: WireError.unexpectedFrame(.decision, state: "before the handshake completed")) {
            try reader.read(from: &early)
        }
        var listener = pair.listener
        #expect(throws: WireError.unexpectedFrame(.hello, state: "listener handshake")) {
            try listener.receive(.hello(pair.dialer.hello))
        }
        var fresh = Pair(dialer: .sharedSecret(groupSecret), listener: .sharedSecret(groupSecret))
        #expect(throws: WireError.unexpectedFrame(.auth, state: "listener handshake")) {
            try fresh.listener.receive(.auth(Samples.auth))
        }
        #expect(throws: WireError.unexpectedFrame(.helloAck, state: "listener handshake")) {
            try fresh.listener.receive(.helloAck(Samples.helloAck))
        }
        #expect(throws: WireError.unexpectedFrame(.hello, state: "dialer handshake")) {
            try fresh.dialer.receive(.hello(Samples.hello))
        }
        #expect(throws: WireError.unexpectedFrame(.helloAck, state: "dialer handshake"), "a failed dialer takes nothing") {
            try fresh.dialer.receive(.helloAck(Samples.helloAck))
        }
        // After the handshake the machines take nothing more.
        var done = Pair(dialer: .sharedSecret(groupSecret), listener: .sharedSecret(groupSecret))
        _ = try done.run()
        #expect(throws: WireError.unexpectedFrame(.auth, state: "listener handshake")) {
            try done.listener.receive(.auth(Samples.auth))
        }
    }
}
