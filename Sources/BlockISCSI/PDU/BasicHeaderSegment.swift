// The 48-byte Basic Header Segment of every iSCSI PDU (RFC 7143 section 11.2), held inline
// (no allocation) with big-endian field accessors. Field meanings per opcode live in the
// typed PDU views (RequestPDUs.swift, ResponsePDUs.swift).

import NIOCore

/// The Basic Header Segment: 48 bytes, network byte order.
public struct BasicHeaderSegment: Sendable, Equatable {
    public static let sizeBytes = 48
    private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)

    public init() {}

    public static func == (lhs: BasicHeaderSegment, rhs: BasicHeaderSegment) -> Bool {
        lhs.words.0 == rhs.words.0 && lhs.words.1 == rhs.words.1 && lhs.words.2 == rhs.words.2
            && lhs.words.3 == rhs.words.3 && lhs.words.4 == rhs.words.4 && lhs.words.5 == rhs.words.5
    }

    /// Reads 48 bytes from `buffer` (which must have them).
    init(reading buffer: inout ByteBuffer) {
        precondition(buffer.readableBytes >= Self.sizeBytes, "BHS needs 48 bytes")
        withUnsafeMutableBytes(of: &words) { raw in
            _ = buffer.readWithUnsafeReadableBytes { source in
                raw.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<Self.sizeBytes]))
                return Self.sizeBytes
            }
        }
    }

    /// The header as bytes, e.g. for the data segment of a Reject.
    public var bytes: [UInt8] { withUnsafeBytes(of: words) { Array($0) } }

    func write(to buffer: inout ByteBuffer) {
        withUnsafeBytes(of: words) { _ = buffer.writeBytes($0) }
    }

    /// Appends header bytes `range` to `buffer` (no intermediate array).
    func write(_ range: Range<Int>, to buffer: inout ByteBuffer) {
        precondition(range.lowerBound >= 0 && range.upperBound <= Self.sizeBytes, "BHS range")
        withUnsafeBytes(of: words) { _ = buffer.writeBytes(UnsafeRawBufferPointer(rebasing: $0[range])) }
    }

    public subscript(byte index: Int) -> UInt8 {
        get {
            precondition(index >= 0 && index < Self.sizeBytes, "BHS byte out of range")
            return withUnsafeBytes(of: words) { $0[index] }
        }
        set {
            precondition(index >= 0 && index < Self.sizeBytes, "BHS byte out of range")
            withUnsafeMutableBytes(of: &words) { $0[index] = newValue }
        }
    }

    func uint16(at offset: Int) -> UInt16 {
        UInt16(self[byte: offset]) << 8 | UInt16(self[byte: offset + 1])
    }

    mutating func setUInt16(_ value: UInt16, at offset: Int) {
        self[byte: offset] = UInt8(value >> 8)
        self[byte: offset + 1] = UInt8(truncatingIfNeeded: value)
    }

    func uint24(at offset: Int) -> UInt32 {
        UInt32(self[byte: offset]) << 16 | UInt32(uint16(at: offset + 1))
    }

    mutating func setUInt24(_ value: UInt32, at offset: Int) {
        precondition(value < 1 << 24, "24-bit field overflow")
        self[byte: offset] = UInt8(value >> 16)
        setUInt16(UInt16(truncatingIfNeeded: value), at: offset + 1)
    }

    func uint32(at offset: Int) -> UInt32 {
        withUnsafeBytes(of: words) { UInt32(bigEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    }

    mutating func setUInt32(_ value: UInt32, at offset: Int) {
        withUnsafeMutableBytes(of: &words) { $0.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt32.self) }
    }

    func uint64(at offset: Int) -> UInt64 {
        withUnsafeBytes(of: words) { UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
    }

    mutating func setUInt64(_ value: UInt64, at offset: Int) {
        withUnsafeMutableBytes(of: &words) { $0.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt64.self) }
    }

    // MARK: Fields common to every PDU

    /// Bit 6 of byte 0: an immediate command.
    public var immediate: Bool {
        get { self[byte: 0] & 0x40 != 0 }
        set { self[byte: 0] = (self[byte: 0] & ~0x40) | (newValue ? 0x40 : 0) }
    }

    /// The 6-bit opcode.
    public var opcodeValue: UInt8 {
        get { self[byte: 0] & 0x3F }
        set { self[byte: 0] = (self[byte: 0] & 0xC0) | (newValue & 0x3F) }
    }

    /// Bit 7 of byte 1 (the F bit for most PDUs).
    public var final: Bool {
        get { self[byte: 1] & 0x80 != 0 }
        set { self[byte: 1] = (self[byte: 1] & 0x7F) | (newValue ? 0x80 : 0) }
    }

    /// AHS length in 4-byte words.
    public var totalAHSLengthWords: UInt8 {
        get { self[byte: 4] }
        set { self[byte: 4] = newValue }
    }

    public var dataSegmentLength: Int {
        get { Int(uint24(at: 5)) }
        set { setUInt24(UInt32(newValue), at: 5) }
    }

    /// Bytes 8-15: the LUN for most PDUs, raw (SAM LUN format).
    public var lunField: UInt64 {
        get { uint64(at: 8) }
        set { setUInt64(newValue, at: 8) }
    }

    public var initiatorTaskTag: UInt32 {
        get { uint32(at: 16) }
        set { setUInt32(newValue, at: 16) }
    }
}
