// Fixed-format sense data (SPC-4 4.5.3): the 18 bytes behind every CHECK CONDITION.
//
// Layout (response code 70h, current error):
//   0      VALID (bit 7) | response code 70h
//   2      sense key (bits 3..0)
//   3..6   INFORMATION (big-endian; meaningful only when VALID is set)
//   7      additional sense length = 10
//   8..11  command-specific information
//   12,13  ASC, ASCQ
//   15..17 sense-key specific: SKSV (bit 7), C/D (bit 6), BPV (bit 3), bit pointer (2..0),
//          field pointer (bytes 16..17)
// Invariant: encoding then decoding returns the same value.

/// Where in the CDB or parameter list an ILLEGAL REQUEST points.
public struct SenseFieldPointer: Sendable, Equatable {
    /// True when the field is in the CDB, false when it is in the parameter data.
    public var inCDB: Bool
    public var byteOffset: UInt16
    /// The bit (0...7) within the byte, when one bit is at fault.
    public var bitIndex: UInt8?

    public init(inCDB: Bool, byteOffset: UInt16, bitIndex: UInt8? = nil) {
        precondition(bitIndex.map { $0 < 8 } ?? true, "a bit index is 0...7")
        self.inCDB = inCDB
        self.byteOffset = byteOffset
        self.bitIndex = bitIndex
    }
}

/// The sense data of one CHECK CONDITION.
public struct SenseData: Sendable, Equatable, CustomStringConvertible {
    public var code: SenseCode
    /// The INFORMATION field (for example the offset of a miscompare); nil leaves VALID clear.
    public var information: UInt32?
    public var fieldPointer: SenseFieldPointer?

    public static let fixedFormatLengthBytes = 18

    public init(_ code: SenseCode, information: UInt32? = nil, fieldPointer: SenseFieldPointer? = nil) {
        self.code = code
        self.information = information
        self.fieldPointer = fieldPointer
    }

    /// The 18 bytes of fixed-format sense data.
    public func fixedFormatBytes() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.fixedFormatLengthBytes)
        bytes[0] = 0x70 | (information == nil ? 0 : 0x80)
        bytes[2] = code.key.rawValue & 0x0F
        if let information { bytes.storeBigEndian(information, at: 3) }
        bytes[7] = UInt8(Self.fixedFormatLengthBytes - 8)
        bytes[12] = code.asc
        bytes[13] = code.ascq
        if let pointer = fieldPointer {
            var flags: UInt8 = 0x80 | (pointer.inCDB ? 0x40 : 0)
            if let bit = pointer.bitIndex { flags |= 0x08 | bit }
            bytes[15] = flags
            bytes.storeBigEndian(pointer.byteOffset, at: 16)
        }
        assert(SenseData(fixedFormat: bytes) == self, "sense encoding must round-trip")
        return bytes
    }

    /// Decodes fixed-format sense data; nil when `bytes` is not fixed format or names an
    /// unknown sense key.
    public init?(fixedFormat bytes: [UInt8]) {
        guard bytes.count >= 14, bytes[0] & 0x7E == 0x70,
              let key = SenseKey(rawValue: bytes[2] & 0x0F) else { return nil }
        code = SenseCode(key, asc: bytes[12], ascq: bytes[13])
        information = bytes[0] & 0x80 != 0 ? bytes.loadBigEndian(UInt32.self, at: 3) : nil
        if bytes.count >= 18, bytes[15] & 0x80 != 0 {
            fieldPointer = SenseFieldPointer(inCDB: bytes[15] & 0x40 != 0,
                                             byteOffset: bytes.loadBigEndian(UInt16.self, at: 16),
                                             bitIndex: bytes[15] & 0x08 != 0 ? bytes[15] & 0x07 : nil)
        } else {
            fieldPointer = nil
        }
    }

    public var description: String {
        var text = code.description
        if let information { text += " info=\(information)" }
        if let pointer = fieldPointer { text += " field=\(pointer.inCDB ? "cdb" : "data")[\(pointer.byteOffset)]" }
        return text
    }
}
