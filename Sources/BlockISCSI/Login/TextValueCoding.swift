// Value encodings of key=value text (RFC 7143 section 6.1): numbers (decimal, hex `0x`,
// base64 `0b`), booleans (`Yes`/`No`) and binary strings (hex `0x`, base64 `0b`).
//
// Invariants:
// - Every decoder returns nil for malformed input and never traps; each loop runs at most
//   once per input byte, and inputs are bounded by the text parser (2050 bytes at most).
// - Binary values decode to at most `maximumBinaryBytes` bytes (the CHAP limit).
// - Encoders produce what the decoders accept: `binary(hex(b)) == b`.

/// Decoders and encoders for the value types of iSCSI text keys.
enum TextValueCoding {
    /// CHAP_C and CHAP_R are at most 1024 bytes (RFC 7143 section 12.1.3).
    static let maximumBinaryBytes = 1024

    /// A numerical value: decimal, `0x`/`0X` hex or `0b`/`0B` base64, below 2^64.
    static func number(_ text: String) -> UInt64? {
        let utf8 = Array(text.utf8)
        guard !utf8.isEmpty else { return nil }
        if utf8.count > 2 && utf8[0] == UInt8(ascii: "0") {
            switch utf8[1] {
            case UInt8(ascii: "x"), UInt8(ascii: "X"):
                return hexNumber(utf8[2...])
            case UInt8(ascii: "b"), UInt8(ascii: "B"):
                guard let bytes = base64(utf8[2...]), bytes.count <= 8 else { return nil }
                return bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            default:
                break
            }
        }
        guard utf8.count <= 20 else { return nil }  // 2^64 - 1 has 20 digits
        var value: UInt64 = 0
        for byte in utf8 {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflow1 && !overflow2 else { return nil }
            value = sum
        }
        return value
    }

    /// `Yes` or `No`, exactly (keys and values are case sensitive).
    static func boolean(_ text: String) -> Bool? {
        switch text {
        case "Yes": return true
        case "No": return false
        default: return nil
        }
    }

    static func text(_ value: Bool) -> String { value ? "Yes" : "No" }

    /// A binary value: `0x`/`0X` hex (an odd digit count implies a leading zero nibble) or
    /// `0b`/`0B` base64. Nil when malformed, empty, or longer than `maximumBinaryBytes`.
    static func binary(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count > 2 && utf8[0] == UInt8(ascii: "0") else { return nil }
        let bytes: [UInt8]?
        switch utf8[1] {
        case UInt8(ascii: "x"), UInt8(ascii: "X"): bytes = hexBytes(utf8[2...])
        case UInt8(ascii: "b"), UInt8(ascii: "B"): bytes = base64(utf8[2...])
        default: bytes = nil
        }
        guard let bytes, !bytes.isEmpty, bytes.count <= maximumBinaryBytes else { return nil }
        return bytes
    }

    /// `0x` followed by two lowercase hex digits per byte.
    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = [UInt8(ascii: "0"), UInt8(ascii: "x")]
        out.reserveCapacity(2 + 2 * bytes.count)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Helpers

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    private static func hexNumber(_ digits: ArraySlice<UInt8>) -> UInt64? {
        var value: UInt64 = 0
        for digit in digits {
            guard let n = nibble(digit), value >> 60 == 0 else { return nil }
            value = value << 4 | UInt64(n)
        }
        return value
    }

    private static func hexBytes(_ digits: ArraySlice<UInt8>) -> [UInt8]? {
        guard digits.count <= 2 * maximumBinaryBytes else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity((digits.count + 1) / 2)
        var pending: UInt8? = digits.count % 2 == 1 ? 0 : nil
        for digit in digits {
            guard let n = nibble(digit) else { return nil }
            if let high = pending {
                bytes.append(high << 4 | n)
                pending = nil
            } else {
                pending = n
            }
        }
        return bytes
    }

    private static func base64Value(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return byte - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return byte - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        default: return nil
        }
    }

    /// RFC 4648 base64 with padding: a multiple of 4 characters, '=' only at the end.
    private static func base64(_ chars: ArraySlice<UInt8>) -> [UInt8]? {
        guard !chars.isEmpty, chars.count % 4 == 0, chars.count <= 4 * (maximumBinaryBytes / 3 + 1) else {
            return nil
        }
        let padding = chars.suffix(2).filter { $0 == UInt8(ascii: "=") }.count
        guard padding == 0 || chars.last == UInt8(ascii: "=") else { return nil }
        guard padding < 2 || chars[chars.endIndex - 2] == UInt8(ascii: "=") else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(chars.count / 4 * 3)
        var accumulator: UInt32 = 0
        var bitCount = 0
        for char in chars.dropLast(padding) {
            guard let value = base64Value(char) else { return nil }
            accumulator = (accumulator << 6 | UInt32(value)) & 0xFFFFFF
            bitCount += 6
            if bitCount >= 8 {
                bitCount -= 8
                bytes.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bitCount)))
            }
        }
        return bytes
    }
}
