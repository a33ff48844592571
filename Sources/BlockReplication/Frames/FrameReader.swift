// Reads frames off one direction of a connection: bounds, checksum, MAC, sequence and phase,
// then the payload. Pure (a ByteBuffer in, messages out), so tests and fuzzers drive it
// without NIO channels; ReplicationFrameDecoder wraps it.
//
// Invariants:
// - A frame is consumed only whole and valid; a frame that is not yet all there consumes
//   nothing, and holds at most `limits.maxFrameBytes` (a longer one is refused from its
//   header, before its payload is buffered).
// - Checks run in this order: header prefix (magic, version, type, flags, length), CRC,
//   MAC, sequence, phase, payload. So a replayed frame (valid MAC) is a sequence error and
//   a forged one (any change without the key) a MAC error.
// - Before `establish` only handshake frames with a zero MAC are accepted; after it only
//   other frames, with the inbound key's MAC.
// - After the first error every call throws it again: a stream is never resynchronized.

import NIOCore

/// Decodes one direction of a connection.
public struct FrameReader: Sendable {
    public let limits: WireLimits
    /// The sequence number the next frame must carry.
    public private(set) var nextSequence: UInt64 = 0
    /// nil until the handshake completes.
    private var key: FrameKey?
    private var failure: WireError?

    public init(limits: WireLimits = WireLimits()) {
        self.limits = limits
    }

    /// True once `establish` was called.
    public var isEstablished: Bool { key != nil }

    /// Switches to the session's inbound key: every later frame must be a data frame with
    /// its MAC.
    public mutating func establish(_ key: FrameKey) {
        precondition(self.key == nil, "the reader is already established")
        self.key = key
    }

    /// Decodes and consumes the frame at the front of `buffer`; nil (nothing consumed) while
    /// it is not all there.
    public mutating func read(from buffer: inout ByteBuffer) throws(WireError) -> ReplicationMessage? {
        if let failure { throw failure }
        do throws(WireError) {
            return try readFrame(from: &buffer)
        } catch {
            failure = error
            throw error
        }
    }

    /// At the end of the stream: bytes of a frame left over mean the stream was cut.
    public mutating func finish(_ buffer: ByteBuffer) throws(WireError) {
        if let failure { throw failure }
        guard buffer.readableBytes == 0 else {
            failure = .truncatedFrame(bufferedBytes: buffer.readableBytes)
            throw failure!
        }
    }

    private mutating func readFrame(from buffer: inout ByteBuffer) throws(WireError) -> ReplicationMessage? {
        guard let payloadBytes = try FrameHeader.checkPrefix(buffer, limits: limits) else { return nil }
        let frameBytes = FrameHeader.sizeBytes + payloadBytes
        guard buffer.readableBytes >= frameBytes else { return nil }
        let start = buffer.readerIndex
        let sequence = buffer.getInteger(at: start + FrameHeader.sequenceOffset, endianness: .little, as: UInt64.self)!
        let storedCRC = buffer.getInteger(at: start + FrameHeader.crcOffset, endianness: .little, as: UInt32.self)!
        guard FrameHeader.checksum(buffer, frameAt: start, payloadBytes: payloadBytes) == storedCRC else {
            throw .badChecksum(sequence: sequence)
        }
        let storedMAC = buffer.getBytes(at: start + FrameHeader.macOffset, length: FrameHeader.macBytes)!
        let expectedMAC = (key ?? .unauthenticated).mac(of: buffer, frameAt: start, payloadBytes: payloadBytes)
        guard constantTimeEqual(storedMAC, expectedMAC) else { throw .badMAC(sequence: sequence) }
        guard sequence == nextSequence else { throw .sequenceOutOfOrder(expected: nextSequence, received: sequence) }
        let type = FrameHeader.type(of: buffer)
        guard type.isHandshake == (key == nil) else {
            throw .unexpectedFrame(type, state: key == nil ? "before the handshake completed" : "after the handshake")
        }
        var payload = buffer.getSlice(at: start + FrameHeader.sizeBytes, length: payloadBytes)!
        let message = try ReplicationMessage.decode(type: type, payload: &payload)
        precondition(nextSequence < .max, "sequence numbers exhausted")
        nextSequence += 1
        buffer.moveReaderIndex(forwardBy: frameBytes)
        return message
    }

    /// Bytes of the frame at the front of `buffer` once its length is known (and allowed).
    public func frameBytes(of buffer: ByteBuffer) -> Int? {
        guard let payloadBytes = try? FrameHeader.checkPrefix(buffer, limits: limits) else { return nil }
        return FrameHeader.sizeBytes + payloadBytes
    }
}
