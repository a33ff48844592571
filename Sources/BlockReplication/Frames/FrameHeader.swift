// The fixed 40-byte header in front of every replication frame (docs/REPLICATION.md,
// "Frame header"). Little-endian, like the volume format.
//
// Invariants:
// - The header's field offsets never change within a frame version; magic and version sit
//   first so any future version is reported as "unsupported version", not as garbage.
// - A payload length above the reader's limit is refused from the first 12 bytes, before
//   any byte of the payload is buffered (`FrameHeader.checkPrefix`).
// - The CRC covers header bytes [0, 20) and the payload; the MAC covers header bytes
//   [0, 24) (the CRC included) and the payload.

import CBlockSupport
import NIOCore

/// The type byte of a frame.
public enum FrameType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case hello = 1
    case helloAck = 2
    case auth = 3
    case decision = 4
    case records = 5
    case ack = 6
    case barrier = 7
    case barrierReply = 8
    case epochNotice = 9
    case rebuildChunk = 10
    case rebuildDigestRequest = 11
    case rebuildDigestReply = 12
    case rebuildDone = 13
    case goodbye = 14
    case committed = 15

    /// Frames of the handshake: the only ones allowed before it completes, and never after.
    public var isHandshake: Bool { self == .hello || self == .helloAck || self == .auth }

    public var description: String {
        switch self {
        case .hello: "hello"
        case .helloAck: "helloAck"
        case .auth: "auth"
        case .decision: "decision"
        case .records: "records"
        case .ack: "ack"
        case .barrier: "barrier"
        case .barrierReply: "barrierReply"
        case .epochNotice: "epochNotice"
        case .rebuildChunk: "rebuildChunk"
        case .rebuildDigestRequest: "rebuildDigestRequest"
        case .rebuildDigestReply: "rebuildDigestReply"
        case .rebuildDone: "rebuildDone"
        case .goodbye: "goodbye"
        case .committed: "committed"
        }
    }
}

/// Bounds a reader enforces. Both ends of a connection must use the same
/// `maxPayloadBytes`: a writer refuses (precondition) to build a frame above its own.
public struct WireLimits: Sendable, Equatable {
    /// 8 MiB of block data plus room for the record headers around it.
    public static let defaultMaxPayloadBytes = 8 * 1024 * 1024 + 64 * 1024
    /// The largest handshake payload (a hello with a 255-byte name) must always fit.
    public static let minimumMaxPayloadBytes = 1024
    /// Far below what the 32-bit length field could say, so a frame always fits an `Int`
    /// buffer on every platform.
    public static let maximumMaxPayloadBytes = 256 * 1024 * 1024

    /// The largest payload a frame may announce.
    public var maxPayloadBytes: Int

    public init(maxPayloadBytes: Int = WireLimits.defaultMaxPayloadBytes) {
        precondition((Self.minimumMaxPayloadBytes...Self.maximumMaxPayloadBytes).contains(maxPayloadBytes),
                     "maxPayloadBytes out of range")
        self.maxPayloadBytes = maxPayloadBytes
    }

    /// The most bytes one frame occupies on the wire.
    public var maxFrameBytes: Int { FrameHeader.sizeBytes + maxPayloadBytes }
}

/// Layout of the frame header.
enum FrameHeader {
    static let magic: UInt32 = 0x4C50_5242  // "BRPL" as bytes
    static let version: UInt8 = 1
    static let sizeBytes = 40
    static let macBytes = 16

    static let typeOffset = 5
    static let flagsOffset = 6
    static let lengthOffset = 8
    static let sequenceOffset = 12
    static let crcOffset = 20
    static let macOffset = 24
    /// Bytes of the header the CRC covers (everything before the CRC).
    static let crcCoveredBytes = crcOffset
    /// Bytes of the header the MAC covers (everything before the MAC).
    static let macCoveredBytes = macOffset

    /// The frame type of a header that passed `checkPrefix`.
    static func type(of buffer: ByteBuffer) -> FrameType {
        FrameType(rawValue: buffer.getInteger(at: buffer.readerIndex + typeOffset, as: UInt8.self)!)!
    }

    /// Checks the header fields already buffered (the frame starts at the reader index):
    /// magic, version, type, flags, payload length, each as soon as its bytes are there.
    /// Returns the payload length once it is known and allowed.
    static func checkPrefix(_ buffer: ByteBuffer, limits: WireLimits) throws(WireError) -> Int? {
        let start = buffer.readerIndex
        let available = buffer.readableBytes
        if available >= 4, let magic = buffer.getInteger(at: start, endianness: .little, as: UInt32.self),
           magic != Self.magic {
            throw .badMagic(magic)
        }
        if available >= 5, let version = buffer.getInteger(at: start + 4, as: UInt8.self), version != Self.version {
            throw .unsupportedFrameVersion(version)
        }
        if available >= 6, let type = buffer.getInteger(at: start + typeOffset, as: UInt8.self),
           FrameType(rawValue: type) == nil {
            throw .unknownFrameType(type)
        }
        if available >= 8, let flags = buffer.getInteger(at: start + flagsOffset, endianness: .little, as: UInt16.self),
           flags != 0 {
            throw .reservedFlagsSet(flags)
        }
        guard available >= 12,
              let length = buffer.getInteger(at: start + lengthOffset, endianness: .little, as: UInt32.self) else {
            return nil
        }
        guard length <= limits.maxPayloadBytes else {
            throw .payloadTooLarge(lengthBytes: length, limitBytes: limits.maxPayloadBytes)
        }
        return Int(length)
    }

    /// CRC32C of the header's first 20 bytes and the payload, for the frame at `start`.
    static func checksum(_ buffer: ByteBuffer, frameAt start: Int, payloadBytes: Int) -> UInt32 {
        buffer.withUnsafeReadableBytes { bytes in
            let offset = start - buffer.readerIndex
            let base = bytes.baseAddress! + offset
            let head = ccrc32c_extend(0, base, crcCoveredBytes)
            return ccrc32c_extend(head, base + sizeBytes, payloadBytes)
        }
    }
}

/// CRC32C (the project's shared implementation in CBlockSupport) of readable bytes.
func crc32c(_ buffer: ByteBuffer) -> UInt32 {
    buffer.withUnsafeReadableBytes { ccrc32c_extend(0, $0.baseAddress, $0.count) }
}
