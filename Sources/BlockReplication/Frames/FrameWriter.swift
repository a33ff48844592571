// Builds frames: header, payload, CRC32C and MAC, with this direction's sequence number.
//
// Invariants:
// - Sequence numbers start at 0 and grow by one per frame written.
// - Before `establish`, only handshake frames are written, with a zero MAC; after it, only
//   other frames, with the outbound key's MAC.
// - A payload never exceeds `limits.maxPayloadBytes`: the peer would refuse it, so callers
//   batch under the limit (`RecordBatch.encodedBytes`).
// - A frame that breaks either rule is not written: the buffer and the sequence number are
//   left as they were and the caller gets the error (its own bug, not the peer's).

import NIOCore

/// Encodes one direction of a connection.
public struct FrameWriter: Sendable {
    public let limits: WireLimits
    /// The sequence number of the next frame.
    public private(set) var nextSequence: UInt64 = 0
    /// nil until the handshake completes.
    private var key: FrameKey?

    public init(limits: WireLimits = WireLimits()) {
        self.limits = limits
    }

    /// True once `establish` was called.
    public var isEstablished: Bool { key != nil }

    /// Switches to the session's outbound key: every later frame is a data frame with its MAC.
    public mutating func establish(_ key: FrameKey) {
        precondition(self.key == nil, "the writer is already established")
        self.key = key
    }

    /// Appends the frame of `message` to `buffer`. Throws, writing nothing, for a frame out
    /// of phase (`unexpectedFrame`) or over the payload limit (`payloadTooLarge`).
    public mutating func write(_ message: ReplicationMessage, into buffer: inout ByteBuffer) throws(WireError) {
        guard message.type.isHandshake == (key == nil) else {
            throw .unexpectedFrame(message.type, state: key == nil ? "before the handshake completed" : "after the handshake")
        }
        precondition(nextSequence < .max, "sequence numbers exhausted")
        try Self.encode(message, sequence: nextSequence, key: key ?? .unauthenticated, limits: limits, into: &buffer)
        nextSequence += 1
    }

    /// Appends one frame with the given sequence number and key (the fuzzers forge frames
    /// with it); writes nothing when the payload is over the limit.
    static func encode(_ message: ReplicationMessage, sequence: UInt64, key: FrameKey, limits: WireLimits,
                       into buffer: inout ByteBuffer) throws(WireError) {
        let start = buffer.writerIndex
        buffer.writeRepeatingByte(0, count: FrameHeader.sizeBytes)
        message.encodePayload(into: &buffer)
        let payloadBytes = buffer.writerIndex - start - FrameHeader.sizeBytes
        guard payloadBytes <= limits.maxPayloadBytes else {
            buffer.moveWriterIndex(to: start)
            throw .payloadTooLarge(lengthBytes: UInt32(clamping: payloadBytes), limitBytes: limits.maxPayloadBytes)
        }
        buffer.setInteger(FrameHeader.magic, at: start, endianness: .little)
        buffer.setInteger(FrameHeader.version, at: start + 4)
        buffer.setInteger(message.type.rawValue, at: start + FrameHeader.typeOffset)
        buffer.setInteger(UInt16(0), at: start + FrameHeader.flagsOffset, endianness: .little)
        buffer.setInteger(UInt32(payloadBytes), at: start + FrameHeader.lengthOffset, endianness: .little)
        buffer.setInteger(sequence, at: start + FrameHeader.sequenceOffset, endianness: .little)
        let crc = FrameHeader.checksum(buffer, frameAt: start, payloadBytes: payloadBytes)
        buffer.setInteger(crc, at: start + FrameHeader.crcOffset, endianness: .little)
        buffer.setBytes(key.mac(of: buffer, frameAt: start, payloadBytes: payloadBytes), at: start + FrameHeader.macOffset)
    }
}
