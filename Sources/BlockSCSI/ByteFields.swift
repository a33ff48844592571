// Big-endian field access for SCSI structures (every multi-byte SCSI field is big-endian;
// the reservation sidecar file is little-endian and has its own helpers).
//
// Invariant: stores and loads check their bounds with a precondition: an encoder that writes
// outside its buffer is a bug, never a condition to tolerate.

extension Array where Element == UInt8 {
    /// Writes `value` big-endian at `offset`.
    mutating func storeBigEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        let size = MemoryLayout<T>.size
        precondition(offset >= 0 && offset + size <= count, "field outside buffer")
        for index in 0..<size {
            self[offset + index] = UInt8(truncatingIfNeeded: value >> ((size - 1 - index) * 8))
        }
    }

    /// Writes the low `byteCount` bytes of `value` big-endian at `offset` (for 3-byte fields).
    mutating func storeBigEndian(_ value: UInt64, at offset: Int, byteCount: Int) {
        precondition(offset >= 0 && byteCount <= 8 && offset + byteCount <= count, "field outside buffer")
        for index in 0..<byteCount {
            self[offset + index] = UInt8(truncatingIfNeeded: value >> ((byteCount - 1 - index) * 8))
        }
    }

    /// Reads a big-endian integer at `offset`.
    func loadBigEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        let size = MemoryLayout<T>.size
        precondition(offset >= 0 && offset + size <= count, "field outside buffer")
        var value: T = 0
        for index in 0..<size { value = value << 8 | T(self[offset + index]) }
        return value
    }

    /// Appends `value` big-endian.
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        let size = MemoryLayout<T>.size
        for index in 0..<size { append(UInt8(truncatingIfNeeded: value >> ((size - 1 - index) * 8))) }
    }

    /// Appends `text` as ASCII, cut or padded with spaces to exactly `width` bytes (SPC-4 4.3.1
    /// left-aligned fields). Non-printable characters become spaces.
    mutating func appendPaddedASCII(_ text: String, width: Int) {
        var written = 0
        for byte in text.utf8 where written < width {
            append((0x20...0x7E).contains(byte) ? byte : 0x20)
            written += 1
        }
        append(contentsOf: repeatElement(0x20, count: width - written))
    }

    /// The first `allocationLength` bytes (SPC-4 4.2.5.6: the response is cut, never padded).
    func truncated(to allocationLength: Int) -> [UInt8] {
        allocationLength >= count ? self : Array(self[..<Swift.max(0, allocationLength)])
    }
}
