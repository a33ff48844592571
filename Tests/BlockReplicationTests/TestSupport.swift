// Shared helpers: sample messages of every type, raw frames with arbitrary payloads (to
// build what a well-behaved writer never would), references to check against.

import BlockEngine
import Crypto
import NIOCore
@testable import BlockReplication

let testUUID = VolumeUUID(bytes: Array(0..<16))

func bytes(_ count: Int, _ value: UInt8) -> [UInt8] { [UInt8](repeating: value, count: count) }

func blockData(_ count: Int, seed: UInt8) -> ByteBuffer {
    ByteBuffer(bytes: (0..<count).map { UInt8(truncatingIfNeeded: $0) &+ seed })
}

enum Samples {
    static let hello = Hello(authMode: .hmacSHA256, role: .primary, epoch: 7, committedLSN: 1234, volumeUUID: testUUID,
                             clientNonce: bytes(32, 0xC1), volumeName: "vol-ä1")
    static let helloAck = HelloAck(status: .ok, epoch: 7, durableLSN: 1200, receivedLSN: 1210, durableRecordEpoch: 6,
                                   checkpointLSN: 1100, serverNonce: bytes(32, 0x5E), serverProof: bytes(32, 0x9F))
    static let auth = Auth(clientProof: bytes(32, 0xA7))
    static let records = RecordBatch(records: [
        .write(lsn: 41, epoch: 3, lba: 8, blockCount: 2, payload: blockData(1024, seed: 1)),
        .trim(lsn: 42, epoch: 3, lba: 100, blockCount: 1 << 18),
        .write(lsn: 43, epoch: 4, lba: 0, blockCount: 1, payload: blockData(4096, seed: 9)),
    ])

    /// One message of every frame type.
    static let all: [ReplicationMessage] = [
        .hello(hello),
        .helloAck(helloAck),
        .auth(auth),
        .decision(Decision(mode: .catchUp, fromLSN: 17, truncateAfterLSN: 16)),
        .decision(Decision(mode: .stream, fromLSN: 1, truncateAfterLSN: nil)),
        .records(records),
        .ack(Ack(receivedLSN: 50, durableLSN: 48)),
        .barrier(Barrier(requestID: 9, lsn: 48)),
        .barrierReply(BarrierReply(requestID: 9, status: .staleEpoch, durableLSN: 47)),
        .epochNotice(EpochNotice(epoch: 12, reason: "replica at epoch 12")),
        .rebuildChunk(RebuildChunk(offsetBlocks: 1 << 40, blockCount: 4, data: blockData(2048, seed: 3))),
        .rebuildDigestRequest(RebuildDigestRequest(range: SegmentRange(firstSegment: 3, segmentCount: 2,
                                                                       blocksPerSegment: 256))),
        .rebuildDigestReply(RebuildDigestReply(range: SegmentRange(firstSegment: 3, segmentCount: 2, blocksPerSegment: 256),
                                               digests: [bytes(32, 1), bytes(32, 2)])),
        .rebuildDone(RebuildDone(lsnCut: 4096)),
        .committed(Committed(lsn: 77)),
        .goodbye(Goodbye(reason: .shuttingDown, message: "bye")),
        .goodbye(Goodbye(reason: GoodbyeReason(rawValue: 999), message: "")),
    ]
}

/// A frame around any payload bytes, with a correct CRC and the MAC of `key` (override
/// any header field to break it).
func rawFrame(type: UInt8, payload: [UInt8], sequence: UInt64 = 0, key: FrameKey = .unauthenticated, magic: UInt32 = FrameHeader.magic,
              version: UInt8 = FrameHeader.version, flags: UInt16 = 0, length: UInt32? = nil) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger(magic, endianness: .little)
    buffer.writeInteger(version)
    buffer.writeInteger(type)
    buffer.writeInteger(flags, endianness: .little)
    buffer.writeInteger(length ?? UInt32(payload.count), endianness: .little)
    buffer.writeInteger(sequence, endianness: .little)
    buffer.writeRepeatingByte(0, count: 4 + 16)
    buffer.writeBytes(payload)
    let crc = FrameHeader.checksum(buffer, frameAt: 0, payloadBytes: payload.count)
    buffer.setInteger(crc, at: FrameHeader.crcOffset, endianness: .little)
    buffer.setBytes(key.mac(of: buffer, frameAt: 0, payloadBytes: payload.count), at: FrameHeader.macOffset)
    return buffer
}

/// The payload bytes `message` encodes to.
func payloadBytes(_ message: ReplicationMessage) -> [UInt8] {
    var buffer = ByteBuffer()
    message.encodePayload(into: &buffer)
    return Array(buffer.readableBytesView)
}

/// The frame `message` makes at `sequence` with `key`.
func frame(_ message: ReplicationMessage, sequence: UInt64 = 0, key: FrameKey = .unauthenticated) -> ByteBuffer {
    var buffer = ByteBuffer()
    try! FrameWriter.encode(message, sequence: sequence, key: key, limits: WireLimits(), into: &buffer)
    return buffer
}

/// A reader already past the handshake, with `key`.
func establishedReader(_ key: FrameKey = .unauthenticated, limits: WireLimits = WireLimits()) -> FrameReader {
    var reader = FrameReader(limits: limits)
    reader.establish(key)
    return reader
}

/// The error reading `buffer` gives, or nil.
func readError(_ buffer: ByteBuffer, reader: FrameReader = FrameReader()) -> WireError? {
    var reader = reader
    var buffer = buffer
    do {
        while try reader.read(from: &buffer) != nil {}
        try reader.finish(buffer)
        return nil
    } catch {
        return error
    }
}

/// The CRC32C of `bytes`, bit by bit: an implementation independent of the one under test.
func referenceCRC32C(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    }
    return ~crc
}

func hmacKey(_ fill: UInt8) -> FrameKey { .hmacSHA256(SymmetricKey(data: bytes(32, fill))) }
