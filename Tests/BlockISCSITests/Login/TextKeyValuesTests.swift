// The key=value text parser and encoder, and the value encodings.

import Testing
@testable import BlockISCSI

@Suite("Text keys")
struct TextKeyValuesTests {
    func parse(_ bytes: [UInt8]) -> Result<TextKeyValues, TextKeyError> {
        Result { () throws(TextKeyError) in try TextKeyValues.parse(bytes) }
    }

    @Test("Parses pairs in order, values may contain '=' and be empty, and encodes back")
    func roundTrip() throws {
        let bytes = text([("HeaderDigest", "CRC32C,None"), ("X-a", "b=c"), ("Empty", "")])
        let parsed = try TextKeyValues.parse(bytes)
        #expect(parsed.pairs == [.init(key: "HeaderDigest", value: "CRC32C,None"), .init(key: "X-a", value: "b=c"), .init(key: "Empty", value: "")])
        #expect(parsed["X-a"] == "b=c" && parsed["Missing"] == nil)
        #expect(parsed.encoded() == bytes)
        #expect(try TextKeyValues.parse([]).isEmpty)
        #expect(try TextKeyValues.parse([0, 0]).isEmpty)
        #expect(try TextKeyValues.parse(bytes + [0, 0, 0]) == parsed)  // trailing padding
    }

    @Test("Malformed text gives a precise error that maps to 0x0200")
    func errors() {
        #expect(parse(Array("A=1".utf8)) == .failure(.missingTerminator))
        #expect(parse(Array("A=1\0B\0".utf8)) == .failure(.missingEquals(offset: 4)))
        #expect(parse(Array("A=1\0\0B=2\0".utf8)) == .failure(.missingEquals(offset: 4)))
        #expect(parse(Array("=1\0".utf8)) == .failure(.emptyKey(offset: 0)))
        #expect(parse(text([("A", "1"), ("A", "2")])) == .failure(.duplicateKey("A")))
        #expect(parse(text([(String(repeating: "K", count: 64), "1")])) == .failure(.keyTooLong(offset: 0)))
        #expect(parse(text([(String(repeating: "K", count: 63), "1")])).map(\.count) == .success(1))
        #expect(parse(text([("A", String(repeating: "v", count: 256))])) == .failure(.valueTooLong(key: "A")))
        #expect(parse(text([("A", String(repeating: "v", count: 255))])).map(\.count) == .success(1))
        #expect(parse(text([("CHAP_C", "0x" + String(repeating: "ab", count: 1024))])).map(\.count) == .success(1))
        #expect(parse(text([("CHAP_C", "0x" + String(repeating: "ab", count: 1025))])) == .failure(.valueTooLong(key: "CHAP_C")))
        #expect(parse([0x41, 0x3D, 0xFF, 0xFE, 0x00]) == .failure(.invalidUTF8(offset: 0)))
        #expect(parse([0xC3, 0x3D, 0x31, 0x00]) == .failure(.invalidUTF8(offset: 0)))
        #expect(parse([UInt8](repeating: 0x41, count: 65_537)) == .failure(.textTooLong))
        let many = (0..<257).map { ("K\($0)", "1") }
        #expect(parse(text(many)) == .failure(.tooManyPairs))
        #expect(TextKeyError.missingTerminator.loginStatus == .initiatorError)
        #expect(TextKeyError.duplicateKey("A").rejectReasonCode == 0x04)
    }

    @Test("Numbers: decimal, hex and base64 below 2^64")
    func numbers() {
        #expect(TextValueCoding.number("262144") == 262_144)
        #expect(TextValueCoding.number("0") == 0)
        #expect(TextValueCoding.number("0x40000") == 262_144)
        #expect(TextValueCoding.number("0X1f") == 31)
        #expect(TextValueCoding.number("0bAAQAAA==") == 262_144)
        #expect(TextValueCoding.number("18446744073709551615") == UInt64.max)
        #expect(TextValueCoding.number("18446744073709551616") == nil)
        #expect(TextValueCoding.number("0x10000000000000000") == nil)
        #expect(TextValueCoding.number("-1") == nil)
        #expect(TextValueCoding.number("1e3") == nil)
        #expect(TextValueCoding.number("0x") == nil)
        #expect(TextValueCoding.number("") == nil)
    }

    @Test("Binary values: hex (odd digits padded) and base64, at most 1024 bytes")
    func binary() {
        #expect(TextValueCoding.binary("0x0102ff") == [1, 2, 255])
        #expect(TextValueCoding.binary("0XABC") == [0x0A, 0xBC])
        #expect(TextValueCoding.binary("0bAQID") == [1, 2, 3])
        #expect(TextValueCoding.binary("0bAQI=") == [1, 2])
        #expect(TextValueCoding.binary("0bAQ==") == [1])
        #expect(TextValueCoding.binary("0bAQ=I") == nil)
        #expect(TextValueCoding.binary("0bAQI") == nil)
        #expect(TextValueCoding.binary("0x12g4") == nil)
        #expect(TextValueCoding.binary("1234") == nil)
        #expect(TextValueCoding.binary("0x" + String(repeating: "00", count: 1024))?.count == 1024)
        #expect(TextValueCoding.binary("0x" + String(repeating: "00", count: 1025)) == nil)
        let bytes: [UInt8] = [0, 15, 16, 255]
        #expect(TextValueCoding.hex(bytes) == "0x000f10ff")
        #expect(TextValueCoding.binary(TextValueCoding.hex(bytes)) == bytes)
    }
}
