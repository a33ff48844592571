// Field coding for frame payloads: little-endian integers, fixed-size byte strings and
// length-prefixed UTF-8 text, read with typed throws so a short or malformed payload is a
// `WireError`, never a trap.

import NIOCore

/// A frame payload: one frame type's fields.
public protocol FramePayload: Sendable, Equatable {
    static var frameType: FrameType { get }
    /// Appends the payload's bytes. Preconditions guard the bounds the decoder enforces, so
    /// whatever encodes also decodes.
    func encode(into buffer: inout ByteBuffer)
    /// Reads the payload's fields from the front of `buffer`. The frame reader then
    /// refuses bytes left over (`WireError.trailingBytes`).
    static func decode(from buffer: inout ByteBuffer) throws(WireError) -> Self
}

extension ByteBuffer {
    mutating func readLE<T: FixedWidthInteger>(_: T.Type, in type: FrameType) throws(WireError) -> T {
        guard let value = readInteger(endianness: .little, as: T.self) else { throw .truncatedPayload(type) }
        return value
    }

    mutating func writeLE<T: FixedWidthInteger>(_ value: T) {
        writeInteger(value, endianness: .little)
    }

    /// Exactly `count` bytes (nonces, proofs, digests, UUIDs).
    mutating func readFixedBytes(_ count: Int, in type: FrameType) throws(WireError) -> [UInt8] {
        guard let bytes = readBytes(length: count) else { throw .truncatedPayload(type) }
        return bytes
    }

    /// A slice of `count` bytes sharing this buffer's storage (record and chunk data).
    mutating func readPayloadSlice(_ count: Int, in type: FrameType) throws(WireError) -> ByteBuffer {
        guard count >= 0, let slice = readSlice(length: count) else { throw .truncatedPayload(type) }
        return slice
    }

    /// UTF-8 text behind a length of `prefixBytes` (1 or 2) bytes, at most `maxBytes` long.
    mutating func readText(prefixBytes: Int, maxBytes: Int, field: String, allowEmpty: Bool,
                           in type: FrameType) throws(WireError) -> String {
        let length = prefixBytes == 1 ? Int(try readLE(UInt8.self, in: type)) : Int(try readLE(UInt16.self, in: type))
        guard length <= maxBytes, allowEmpty || length > 0 else {
            throw .invalidField(type, field: field + " length", value: UInt64(length))
        }
        guard let bytes = readBytes(length: length) else { throw .truncatedPayload(type) }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalidText(type, field: field) }
        return text
    }

    mutating func writeText(_ text: String, prefixBytes: Int, maxBytes: Int) {
        let bytes = Array(text.utf8)
        precondition(bytes.count <= maxBytes, "text over its bound")
        if prefixBytes == 1 { writeLE(UInt8(bytes.count)) } else { writeLE(UInt16(bytes.count)) }
        writeBytes(bytes)
    }
}

/// An enum field's raw value, or the error naming it.
func decodeEnum<E: RawRepresentable>(_: E.Type, _ raw: E.RawValue, field: String,
                                     in type: FrameType) throws(WireError) -> E where E.RawValue: FixedWidthInteger {
    guard let value = E(rawValue: raw) else { throw .invalidField(type, field: field, value: UInt64(raw)) }
    return value
}
