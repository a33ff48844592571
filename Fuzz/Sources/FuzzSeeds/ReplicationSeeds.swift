// Seeds of the replication fuzzers. Frames are built with BlockReplication's own writer:
// they need CRCs and MACs (the frame fuzzer's established reader uses
// `ReplicationFuzzing.frameFuzzKey`). Handshake seeds are runs in the handshake fuzzer's
// operation language (Sources/BlockReplication/Fuzzing/HandshakeFuzzing.swift).

import BlockEngine
import BlockReplication
import NIOCore

enum ReplicationSeeds {
    // MARK: frames: [mode, chunk, stream...]

    /// Mode bits of the frame fuzzer.
    static let established: UInt8 = 1
    static let noKey: UInt8 = 2
    static let smallLimit: UInt8 = 4

    static let uuid = VolumeUUID(bytes: Array(0..<16))
    static let block = ByteBuffer(bytes: (0..<512).map { UInt8(truncatingIfNeeded: $0 * 7) })

    static let hello = Hello(authMode: .hmacSHA256, role: .primary, epoch: 3, committedLSN: 77, volumeUUID: uuid,
                             clientNonce: [UInt8](repeating: 0xC1, count: 32), volumeName: "vol1")
    static let helloAck = HelloAck(status: .ok, epoch: 3, durableLSN: 70, receivedLSN: 72, durableRecordEpoch: 2,
                                   serverNonce: [UInt8](repeating: 0x5E, count: 32),
                                   serverProof: [UInt8](repeating: 0x9F, count: 32))

    static let dataMessages: [(String, ReplicationMessage)] = [
        ("decision", .decision(Decision(mode: .catchUp, fromLSN: 71, truncateAfterLSN: 72))),
        ("records", .records(RecordBatch(records: [
            .write(lsn: 71, epoch: 3, lba: 8, blockCount: 1, payload: block),
            .trim(lsn: 72, epoch: 3, lba: 100, blockCount: 64),
        ]))),
        ("ack", .ack(Ack(receivedLSN: 72, durableLSN: 71))),
        ("barrier", .barrier(Barrier(requestID: 1, lsn: 72))),
        ("barrier-reply", .barrierReply(BarrierReply(requestID: 1, status: .durable, durableLSN: 72))),
        ("epoch-notice", .epochNotice(EpochNotice(epoch: 4, reason: "replica at epoch 4"))),
        ("rebuild-chunk", .rebuildChunk(RebuildChunk(offsetBlocks: 16, blockCount: 1, data: block))),
        ("digest-request", .rebuildDigestRequest(RebuildDigestRequest(
            range: SegmentRange(firstSegment: 0, segmentCount: 2, blocksPerSegment: 256)))),
        ("digest-reply", .rebuildDigestReply(RebuildDigestReply(
            range: SegmentRange(firstSegment: 0, segmentCount: 2, blocksPerSegment: 256),
            digests: [[UInt8](repeating: 1, count: 32), [UInt8](repeating: 2, count: 32)]))),
        ("rebuild-done", .rebuildDone(RebuildDone(lsnCut: 72))),
        ("committed", .committed(Committed(lsn: 72))),
        ("goodbye", .goodbye(Goodbye(reason: .shuttingDown, message: "bye"))),
    ]

    /// The frames of `messages` from sequence 0, established with `key` unless they are
    /// handshake frames.
    static func stream(_ messages: [ReplicationMessage], key: FrameKey?) -> [UInt8] {
        var writer = FrameWriter()
        if let key { writer.establish(key) }
        var buffer = ByteBuffer()
        for message in messages { try! writer.write(message, into: &buffer) }
        return Array(buffer.readableBytesView)
    }

    static var frames: [Seed] {
        let key = ReplicationFuzzing.frameFuzzKey
        let data = dataMessages.map(\.1)
        var seeds = [
            Seed("handshake-frames", [0, 0] + stream([.hello(hello), .helloAck(helloAck),
                                                      .auth(Auth(clientProof: [UInt8](repeating: 0xA7, count: 32)))],
                                                     key: nil)),
            Seed("all-data-keyed", [established, 0] + stream(data, key: key)),
            Seed("all-data-no-key", [established | noKey, 0] + stream(data, key: .unauthenticated)),
            Seed("all-data-keyed-split", [established, 13] + stream(data, key: key)),
            Seed("records-small-limit", [established | smallLimit, 0] + stream([data[1]], key: key)),
            Seed("cut-frame", [established, 0] + stream([data[0], data[2]], key: key).dropLast(9)),
        ]
        for (name, message) in dataMessages {
            seeds.append(Seed("one-" + name, [established, 0] + stream([message], key: key)))
        }
        return seeds
    }

    // MARK: handshakes: [config, seed (8 bytes), operations...]

    /// Config bits of the handshake fuzzer.
    static let listenerNone: UInt8 = 4
    static let dialerNone: UInt8 = 8
    static let attackerKnows: UInt8 = 16
    static let seed: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 42]

    // Operations.
    static let toListener: [UInt8] = [0]
    static let toDialer: [UInt8] = [1]
    static func tamper(toListener: Bool, at position: Int, mask: UInt8, fixCRC: Bool) -> [UInt8] {
        [toListener ? 2 : 3, UInt8(position >> 8), UInt8(position & 0xFF), mask, fixCRC ? 1 : 0]
    }
    static func replay(toListener: Bool, index: UInt8) -> [UInt8] { [toListener ? 6 : 7, index] }
    static func dialerSends(_ kind: UInt8, _ value: UInt8) -> [UInt8] {
        [12, kind, value] + (kind % 3 == 2 ? [UInt8](repeating: 0x3C, count: 512) : [])
    }
    static func listenerSends(_ kind: UInt8, _ value: UInt8) -> [UInt8] { [13, kind, value] }
    static func forgedHello(authMode: UInt8) -> [UInt8] {
        [8, 0, authMode, 9, 9] + [UInt8](repeating: 7, count: 16) + [UInt8](repeating: 0xF0, count: 32)
    }
    static let forgedAuth: [UInt8] = [8, 1]
    static func forgedData(withKey: Bool) -> [UInt8] { [8, withKey ? 3 : 2, 0, 5] }
    static func forgedAck(status: UInt8, proof: Bool) -> [UInt8] {
        [9, 0, status, 20] + [UInt8](repeating: 0xEE, count: 32) + [proof ? 0 : 1]
    }
    static func raw(toListener: Bool, _ bytes: [UInt8]) -> [UInt8] { [toListener ? 10 : 11, UInt8(bytes.count)] + bytes }

    static let honest = toListener + toDialer + toListener + dialerSends(0, 70) + toListener + listenerSends(0, 70)
        + toDialer + dialerSends(2, 71) + toListener + dialerSends(1, 72) + toListener + listenerSends(1, 72) + toDialer

    static var handshakes: [Seed] {
        [
            Seed("honest", [0] + seed + honest),
            Seed("honest-no-secret", [listenerNone | dialerNone] + seed + honest),
            Seed("stale-epoch", [1] + seed + toListener + toDialer),
            Seed("busy", [2] + seed + toListener + toDialer),
            Seed("dialer-without-secret", [dialerNone] + seed + toListener + toDialer),
            Seed("listener-without-secret", [listenerNone] + seed + toListener + toDialer),
            Seed("tampered-hello", [0] + seed + tamper(toListener: true, at: 44, mask: 1, fixCRC: true) + toDialer),
            Seed("tampered-ack", [0] + seed + toListener + tamper(toListener: false, at: 41, mask: 0x80, fixCRC: true)),
            Seed("tampered-data", [0] + seed + toListener + toDialer + toListener + dialerSends(0, 9)
                + tamper(toListener: true, at: 45, mask: 4, fixCRC: true)),
            Seed("replayed-data", [0] + seed + toListener + toDialer + toListener + dialerSends(0, 9) + toListener
                + replay(toListener: true, index: 2)),
            Seed("dropped-data", [0] + seed + toListener + toDialer + toListener + dialerSends(0, 9) + [4]
                + dialerSends(1, 9) + toListener),
            Seed("forged-hello-and-auth", [0] + seed + forgedHello(authMode: 0) + forgedAuth + forgedData(withKey: true)),
            Seed("forged-with-secret", [attackerKnows] + seed + forgedHello(authMode: 0) + forgedAuth
                + forgedData(withKey: true) + forgedData(withKey: false)),
            Seed("forged-ack", [0] + seed + forgedAck(status: 0, proof: true) + forgedAck(status: 2, proof: false)),
            Seed("forged-ack-with-secret", [attackerKnows | 1] + seed + forgedAck(status: 2, proof: true)),
            Seed("data-before-auth", [0] + seed + toListener + forgedData(withKey: false) + toDialer),
            Seed("raw-bytes", [0] + seed + raw(toListener: true, [0x42, 0x52, 0x50, 0x4C, 1, 5, 0, 0, 0xFF, 0xFF, 0, 0])
                + raw(toListener: false, [0x42, 0x52, 0x50])),
        ]
    }
}
