// The handshake fuzzer: a genuine dialer and a genuine listener, each with its frame reader
// and writer, talk through an attacker that the input drives. The attacker forwards, drops,
// tampers with (and may then fix the CRC of), replays or forges frames, and sends raw
// bytes; it holds the group's secret only when the input says so.
//
// Input: [config, seed (8 bytes), operations...]. Config bits 0-1: the listener's verdict
// (ok, stale epoch, busy, ok); bit 2: the listener has no secret; bit 3: the dialer has no
// secret; bit 4: the attacker holds the secret. The seed drives both sides' nonces.
// Operations are one byte (the value modulo 14) and their arguments:
//   0 / 1   forward the dialer's / the listener's next frame
//   2 / 3   the same, with one byte xored (position u16, mask u8, fix-CRC u8)
//   4 / 5   drop the dialer's / the listener's next frame
//   6 / 7   replay a frame the listener / the dialer was sent before (index u8)
//   8 / 9   forge a frame for the listener / the dialer (kind u8, then its fields)
//   10 / 11 raw bytes for the listener / the dialer (length u8, bytes)
//   12 / 13 the dialer / the listener sends a data frame (kind u8, fields)
//
// Invariants checked (those about forgeries only when the attacker lacks the secret and
// the side involved has one):
// - A listener that completes the handshake took the genuine dialer's hello and auth, and
//   the dialer accepted exactly the helloAck the listener sent for it.
// - A dialer that accepts a helloAck (to go on or to act on a refusal) got it from the
//   genuine listener, for its own hello.
// - When both complete, each side's inbound key is the other side's outbound key.
// - A data frame a side accepts is the one its genuine peer sent with that sequence number.
// - Nothing traps.

import BlockEngine
import Crypto
import NIOCore

extension ReplicationFuzzing {
    static let groupSecret = try! ReplicationSecret(bytes: Array("replication-fuzz-group-secret-1".utf8))
    static let otherSecret = try! ReplicationSecret(bytes: Array("an-attacker-guess-at-the-secret".utf8))
    /// Operations per input: each reads at least one byte, and this caps the rest.
    static let maxOperations = 256
    /// Frames an outbox keeps for the attacker; a side that sends more drops the oldest.
    static let maxOutboxFrames = 16

    /// Runs one handshake-fuzzer input.
    public static func handshake(_ bytes: [UInt8]) {
        _ = runHandshake(bytes)
    }

    /// Runs one input and returns the world it left (tests look at it).
    static func runHandshake(_ bytes: [UInt8]) -> World {
        var input = FuzzInput(bytes)
        let config = input.byte()
        var generator = SeededGenerator(seed: input.uint64())
        let listenerSecret = config & 4 == 0
        let dialerSecret = config & 8 == 0
        let attackerKnows = config & 16 != 0
        let verdict: HelloStatus = [.ok, .staleEpoch, .busy, .ok][Int(config & 3)]
        var world = World(
            dialer: Side(authentication: dialerSecret ? .sharedSecret(groupSecret) : .none),
            listener: Side(authentication: listenerSecret ? .sharedSecret(groupSecret) : .none),
            dialerHandshake: DialerHandshake(
                authentication: dialerSecret ? .sharedSecret(groupSecret) : .none, volumeName: "fuzz",
                volumeUUID: VolumeUUID(bytes: Array(repeating: 7, count: 16)), role: .primary, epoch: 5,
                committedLSN: 100, using: &generator),
            listenerHandshake: ListenerHandshake(
                authentication: listenerSecret ? .sharedSecret(groupSecret) : .none, using: &generator),
            verdict: verdict,
            attackerSecret: attackerKnows ? groupSecret : otherSecret)
        world.dialer.send(.hello(world.dialerHandshake.hello))
        var operations = 0
        while !input.isEmpty && operations < maxOperations {
            operations += 1
            world.step(&input)
        }
        world.checkKeys(attackerKnows: attackerKnows)
        return world
    }

    /// Bytes of the input, read front to back; zeros once it runs out.
    struct FuzzInput {
        private let bytes: [UInt8]
        private var offset = 0

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
        }

        var isEmpty: Bool { offset >= bytes.count }

        mutating func byte() -> UInt8 {
            guard offset < bytes.count else { return 0 }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in byte() } }

        mutating func uint64() -> UInt64 { bytes(8).reduce(0) { $0 << 8 | UInt64($1) } }

        mutating func uint16() -> Int { Int(byte()) << 8 | Int(byte()) }
    }

    /// One side's framing: what it reads and what it has sent.
    struct Side {
        let authentication: ReplicationAuthentication
        var reader = FrameReader(limits: WireLimits(maxPayloadBytes: 64 * 1024))
        var writer = FrameWriter(limits: WireLimits(maxPayloadBytes: 64 * 1024))
        var inbound = ByteBuffer()
        /// Frames sent and not yet taken by the attacker.
        var outbox: [[UInt8]] = []
        /// Data frames sent, by sequence number, to check what the peer accepts.
        var sentData: [UInt64: ReplicationMessage] = [:]
        /// Frames delivered to this side, for replays (at most `maxOperations`).
        var delivered: [[UInt8]] = []
        var closed = false
        var keys: SessionKeys?

        init(authentication: ReplicationAuthentication) {
            self.authentication = authentication
        }

        mutating func send(_ message: ReplicationMessage) {
            guard !closed else { return }
            let sequence = writer.nextSequence
            var buffer = ByteBuffer()
            do throws(WireError) {
                try writer.write(message, into: &buffer)
            } catch {
                preconditionFailure("a genuine side could not write its frame: \(error)")
            }
            if !message.type.isHandshake { sentData[sequence] = message }
            if outbox.count == maxOutboxFrames { outbox.removeFirst() }
            outbox.append(buffer.bytes)
        }

        var authenticates: Bool {
            if case .sharedSecret = authentication { return true }
            return false
        }
    }

    struct World {
        var dialer: Side
        var listener: Side
        var dialerHandshake: DialerHandshake
        var listenerHandshake: ListenerHandshake
        let verdict: HelloStatus
        let attackerSecret: ReplicationSecret
        /// What the dialer accepted (established or a verified refusal).
        var dialerAccepted: HelloAck?
        /// The hello the listener answered and the helloAck it sent.
        var listenerHello: Hello?
        var listenerAck: HelloAck?
        var listenerEstablished = false
        /// Data frames each side accepted.
        var dataAcceptedByListener = 0
        var dataAcceptedByDialer = 0

        var attackerKnows: Bool { attackerSecret.key == groupSecret.key }

        mutating func step(_ input: inout FuzzInput) {
            switch input.byte() % 14 {
            case 0: forward(toListener: true, tamper: nil)
            case 1: forward(toListener: false, tamper: nil)
            case 2: forward(toListener: true, tamper: (input.uint16(), input.byte(), input.byte() & 1 != 0))
            case 3: forward(toListener: false, tamper: (input.uint16(), input.byte(), input.byte() & 1 != 0))
            case 4: if !dialer.outbox.isEmpty { dialer.outbox.removeFirst() }
            case 5: if !listener.outbox.isEmpty { listener.outbox.removeFirst() }
            case 6: replay(toListener: true, index: Int(input.byte()))
            case 7: replay(toListener: false, index: Int(input.byte()))
            case 8: forgeForListener(&input)
            case 9: forgeForDialer(&input)
            case 10: deliver(input.bytes(Int(input.byte())), toListener: true)
            case 11: deliver(input.bytes(Int(input.byte())), toListener: false)
            case 12: if dialer.writer.isEstablished { dialer.send(dataFrame(&input, fromDialer: true)) }
            default: if listener.writer.isEstablished { listener.send(dataFrame(&input, fromDialer: false)) }
            }
        }

        mutating func forward(toListener: Bool, tamper: (position: Int, mask: UInt8, fixCRC: Bool)?) {
            var frame: [UInt8]
            if toListener {
                guard !dialer.outbox.isEmpty else { return }
                frame = dialer.outbox.removeFirst()
            } else {
                guard !listener.outbox.isEmpty else { return }
                frame = listener.outbox.removeFirst()
            }
            if let tamper {
                frame[tamper.position % frame.count] ^= tamper.mask
                if tamper.fixCRC && frame.count >= FrameHeader.sizeBytes {
                    // What anyone on the path can do: the CRC is no authentication.
                    var buffer = ByteBuffer(bytes: frame)
                    let crc = FrameHeader.checksum(buffer, frameAt: 0, payloadBytes: frame.count - FrameHeader.sizeBytes)
                    buffer.setInteger(crc, at: FrameHeader.crcOffset, endianness: .little)
                    frame = buffer.bytes
                }
            }
            deliver(frame, toListener: toListener)
        }

        mutating func replay(toListener: Bool, index: Int) {
            let delivered = toListener ? listener.delivered : dialer.delivered
            guard !delivered.isEmpty else { return }
            deliver(delivered[index % delivered.count], toListener: toListener)
        }

        mutating func deliver(_ bytes: [UInt8], toListener: Bool) {
            guard !bytes.isEmpty else { return }
            if toListener {
                guard !listener.closed else { return }
                listener.delivered.append(bytes)
                listener.inbound.writeBytes(bytes)
                readListener()
            } else {
                guard !dialer.closed else { return }
                dialer.delivered.append(bytes)
                dialer.inbound.writeBytes(bytes)
                readDialer()
            }
        }

        /// The listener reads and handles every whole frame it has.
        mutating func readListener() {
            // Bounded: each turn consumes a whole frame or leaves.
            while !listener.closed {
                let message: ReplicationMessage
                do throws(WireError) {
                    guard let next = try listener.reader.read(from: &listener.inbound) else { return }
                    message = next
                    if !message.type.isHandshake {
                        checkData(message, sequence: listener.reader.nextSequence - 1, from: dialer, at: listener)
                        dataAcceptedByListener += 1
                        continue
                    }
                    switch try listenerHandshake.receive(message) {
                    case let .answerNeeded(hello):
                        listenerHello = hello
                        let ack = listenerHandshake.answer(ListenerHandshake.Answer(
                            status: verdict, epoch: 6, durableLSN: 90, receivedLSN: 95, durableRecordEpoch: 5))
                        listenerAck = ack
                        listener.send(.helloAck(ack))
                        if ack.status != .ok { listener.closed = true }
                    case let .refuse(ack):
                        listener.send(.helloAck(ack))
                        listener.closed = true
                    case let .established(hello, keys):
                        listenerEstablished = true
                        listener.keys = keys
                        listener.reader.establish(keys.inbound)
                        listener.writer.establish(keys.outbound)
                        checkListenerEstablished(hello)
                    }
                } catch {
                    listener.closed = true
                }
            }
        }

        /// The dialer reads and handles every whole frame it has.
        mutating func readDialer() {
            // Bounded: each turn consumes a whole frame or leaves.
            while !dialer.closed {
                do throws(WireError) {
                    guard let message = try dialer.reader.read(from: &dialer.inbound) else { return }
                    if !message.type.isHandshake {
                        checkData(message, sequence: dialer.reader.nextSequence - 1, from: listener, at: dialer)
                        dataAcceptedByDialer += 1
                        continue
                    }
                    switch try dialerHandshake.receive(message) {
                    case let .established(ack, auth, keys):
                        dialerAccepted = ack
                        checkDialerAccepted(ack)
                        dialer.send(.auth(auth))
                        dialer.keys = keys
                        dialer.reader.establish(keys.inbound)
                        dialer.writer.establish(keys.outbound)
                    case let .refused(ack):
                        dialerAccepted = ack
                        checkDialerAccepted(ack)
                        dialer.closed = true
                    }
                } catch {
                    dialer.closed = true
                }
            }
        }

        func checkListenerEstablished(_ hello: Hello) {
            guard listener.authenticates && !attackerKnows else { return }
            precondition(hello == dialerHandshake.hello, "the listener took a hello the dialer never sent")
            precondition(dialerAccepted != nil && dialerAccepted == listenerAck,
                         "the listener completed a handshake the dialer did not")
        }

        func checkDialerAccepted(_ ack: HelloAck) {
            guard dialer.authenticates && !attackerKnows else { return }
            precondition(listenerHello == dialerHandshake.hello && listenerAck == ack,
                         "the dialer accepted a helloAck the listener did not send for its hello")
        }

        /// A data frame a side accepted must be the one its peer sent with that sequence.
        func checkData(_ message: ReplicationMessage, sequence: UInt64, from peer: Side, at side: Side) {
            guard side.authenticates && !attackerKnows else { return }
            precondition(peer.sentData[sequence] == message, "a side accepted a data frame its peer never sent")
        }

        func checkKeys(attackerKnows: Bool) {
            guard let dialerKeys = dialer.keys, let listenerKeys = listener.keys,
                  dialer.authenticates, listener.authenticates, !attackerKnows else { return }
            precondition(dialerKeys.outbound.isSame(as: listenerKeys.inbound)
                         && dialerKeys.inbound.isSame(as: listenerKeys.outbound), "the two sides derived different keys")
        }

        /// A data frame from a genuine side.
        func dataFrame(_ input: inout FuzzInput, fromDialer: Bool) -> ReplicationMessage {
            let kind = input.byte()
            let value = UInt64(input.byte())
            if fromDialer {
                switch kind % 3 {
                case 0: return .decision(Decision(mode: .stream, fromLSN: value, truncateAfterLSN: nil))
                case 1: return .barrier(Barrier(requestID: value, lsn: value + 1))
                default:
                    let data = ByteBuffer(bytes: input.bytes(512))
                    return .records(RecordBatch(records: [.write(lsn: value + 1, epoch: 5, lba: value, blockCount: 1,
                                                                 payload: data)]))
                }
            }
            switch kind % 3 {
            case 0: return .ack(Ack(receivedLSN: value + 1, durableLSN: value))
            case 1: return .barrierReply(BarrierReply(requestID: value, status: .durable, durableLSN: value))
            default: return .epochNotice(EpochNotice(epoch: value, reason: "newer"))
            }
        }

        /// The attacker's frame for the listener, built with the attacker's secret.
        mutating func forgeForListener(_ input: inout FuzzInput) {
            let kind = input.byte()
            let useExpectedSequence = kind & 0x80 == 0
            let message: ReplicationMessage
            var key = FrameKey.unauthenticated
            switch kind % 4 {
            case 0:
                message = .hello(Hello(authMode: input.byte() & 1 == 0 ? .hmacSHA256 : .none, role: .primary,
                                       epoch: UInt64(input.byte()), committedLSN: UInt64(input.byte()),
                                       volumeUUID: VolumeUUID(bytes: input.bytes(16)),
                                       clientNonce: input.bytes(ReplicationProtocol.nonceBytes), volumeName: "fuzz"))
            case 1:
                // A proof over what the listener saw, with the attacker's secret.
                guard let hello = listenerHello, let ack = listenerAck else { return }
                let transcript = HandshakeCrypto.transcript(hello: hello, ack: ack)
                message = .auth(Auth(clientProof: HandshakeCrypto.clientProof(attackerSecret, transcript: transcript)))
            default:
                message = dataFrame(&input, fromDialer: true)
                if kind % 4 == 3, let hello = listenerHello, let ack = listenerAck {
                    key = HandshakeCrypto.keys(attackerSecret, transcript: HandshakeCrypto.transcript(hello: hello, ack: ack))
                        .dialerToListener
                }
            }
            let sequence = useExpectedSequence ? listener.reader.nextSequence : UInt64(input.byte())
            deliver(Self.forge(message, sequence: sequence, key: key), toListener: true)
        }

        /// The attacker's frame for the dialer, built with the attacker's secret.
        mutating func forgeForDialer(_ input: inout FuzzInput) {
            let kind = input.byte()
            let useExpectedSequence = kind & 0x80 == 0
            let message: ReplicationMessage
            var key = FrameKey.unauthenticated
            switch kind % 3 {
            case 0:
                let status = HelloStatus(rawValue: input.byte() % 7) ?? .ok
                var ack = HelloAck(status: status, epoch: UInt64(input.byte()) + 10, durableLSN: 1, receivedLSN: 2,
                                   durableRecordEpoch: 3, serverNonce: input.bytes(ReplicationProtocol.nonceBytes),
                                   serverProof: HandshakeCrypto.zeroProof)
                if input.byte() & 1 == 0 {
                    let transcript = HandshakeCrypto.transcript(hello: dialerHandshake.hello, ack: ack)
                    ack.serverProof = HandshakeCrypto.serverProof(attackerSecret, transcript: transcript)
                }
                message = .helloAck(ack)
            default:
                message = dataFrame(&input, fromDialer: false)
                if kind % 3 == 2, let ack = dialerAccepted {
                    key = HandshakeCrypto.keys(attackerSecret,
                                               transcript: HandshakeCrypto.transcript(hello: dialerHandshake.hello, ack: ack))
                        .listenerToDialer
                }
            }
            let sequence = useExpectedSequence ? dialer.reader.nextSequence : UInt64(input.byte())
            deliver(Self.forge(message, sequence: sequence, key: key), toListener: false)
        }

        static func forge(_ message: ReplicationMessage, sequence: UInt64, key: FrameKey) -> [UInt8] {
            var buffer = ByteBuffer()
            do throws(WireError) {
                try FrameWriter.encode(message, sequence: sequence, key: key, limits: WireLimits(), into: &buffer)
            } catch {
                preconditionFailure("a forged frame did not encode: \(error)")
            }
            return buffer.bytes
        }
    }
}
