// Every way the replication wire can refuse bytes or a handshake (docs/REPLICATION.md).
// Decoders throw these and never trap, whatever the input; after one, the stream is not
// read any further (FrameReader keeps the first error).

/// Why a frame, a payload or a handshake step was refused.
public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
    // Framing: the byte stream cannot be read any further.
    /// The first four bytes of a frame are not the frame magic.
    case badMagic(UInt32)
    /// A frame format version this build does not read.
    case unsupportedFrameVersion(UInt8)
    /// A frame type byte this build does not know.
    case unknownFrameType(UInt8)
    /// Flags are reserved and must be 0.
    case reservedFlagsSet(UInt16)
    /// The header announces a payload above the reader's limit (refused from the header,
    /// before the payload is buffered).
    case payloadTooLarge(lengthBytes: UInt32, limitBytes: Int)
    /// The frame's CRC32C does not match its header and payload.
    case badChecksum(sequence: UInt64)
    /// The frame's MAC does not match (or is not zero where it must be).
    case badMAC(sequence: UInt64)
    /// A frame arrived out of order: replayed, dropped or reordered.
    case sequenceOutOfOrder(expected: UInt64, received: UInt64)
    /// The stream ended inside a frame.
    case truncatedFrame(bufferedBytes: Int)

    // Payloads.
    /// The payload ends before its fields do.
    case truncatedPayload(FrameType)
    /// The payload has bytes after its last field.
    case trailingBytes(FrameType, count: Int)
    /// A field holds a value the protocol does not allow (unknown enum value, a length or
    /// count over its bound, a rule between fields broken).
    case invalidField(FrameType, field: String, value: UInt64)
    /// A text field is not UTF-8.
    case invalidText(FrameType, field: String)
    /// The records of one frame do not follow each other LSN by LSN.
    case nonContiguousRecords(expectedLSN: UInt64, receivedLSN: UInt64)
    /// A record's payload does not match its CRC32C.
    case badRecordChecksum(lsn: UInt64)
    /// A rebuild chunk's data does not match its CRC32C.
    case badChunkChecksum(offsetBlocks: UInt64)

    // Handshake.
    /// A frame that is not allowed at this point: a data frame before the handshake
    /// completed, a handshake frame after it, or a handshake frame out of turn.
    case unexpectedFrame(FrameType, state: String)
    /// The hello's protocol version is not one this build speaks.
    case unsupportedProtocolVersion(UInt16)
    /// The peer's proof does not verify: it does not hold our secret, or the handshake
    /// was tampered with.
    case authenticationFailed(String)
    /// The listener refused our authentication mode (one side has a secret, the other
    /// none). Not verifiable, so it only ends the connection.
    case peerRefusedAuthentication
    /// An unauthenticated (`.none`) handshake on a connection that is not loopback.
    case unauthenticatedRemotePeer(String)
    /// The handshake did not complete in time.
    case handshakeTimedOut(timeoutMs: Int)

    public var description: String {
        switch self {
        case let .badMagic(magic): "not a replication frame (magic 0x\(String(magic, radix: 16)))"
        case let .unsupportedFrameVersion(version): "unsupported frame version \(version)"
        case let .unknownFrameType(type): "unknown frame type \(type)"
        case let .reservedFlagsSet(flags): "reserved frame flags set (0x\(String(flags, radix: 16)))"
        case let .payloadTooLarge(length, limit): "frame payload of \(length) bytes is over the limit of \(limit)"
        case let .badChecksum(sequence): "frame \(sequence): checksum mismatch"
        case let .badMAC(sequence): "frame \(sequence): authentication code mismatch"
        case let .sequenceOutOfOrder(expected, received): "frame \(received) arrived where \(expected) was expected"
        case let .truncatedFrame(buffered): "the stream ended inside a frame (\(buffered) bytes buffered)"
        case let .truncatedPayload(type): "\(type) payload truncated"
        case let .trailingBytes(type, count): "\(type) payload has \(count) bytes after its last field"
        case let .invalidField(type, field, value): "\(type): invalid \(field) \(value)"
        case let .invalidText(type, field): "\(type): \(field) is not UTF-8"
        case let .nonContiguousRecords(expected, received): "records frame: LSN \(received) where \(expected) was expected"
        case let .badRecordChecksum(lsn): "record \(lsn): payload checksum mismatch"
        case let .badChunkChecksum(offset): "rebuild chunk at block \(offset): checksum mismatch"
        case let .unexpectedFrame(type, state): "unexpected \(type) frame (\(state))"
        case let .unsupportedProtocolVersion(version): "unsupported replication protocol version \(version)"
        case let .authenticationFailed(reason): "authentication failed: \(reason)"
        case .peerRefusedAuthentication: "the listener refused our authentication mode"
        case let .unauthenticatedRemotePeer(peer): "unauthenticated replication refused for non-loopback peer \(peer)"
        case let .handshakeTimedOut(timeoutMs): "the replication handshake did not complete within \(timeoutMs) ms"
        }
    }
}
