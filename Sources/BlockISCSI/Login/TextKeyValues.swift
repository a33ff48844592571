// The `key=value\0` text of Login and Text PDUs (RFC 7143 section 6.1): parsing with the
// RFC's limits, and encoding.
//
// Invariants:
// - `parse` never traps, on any bytes; its work is linear in the input, which it refuses
//   beyond `maximumTextBytes`.
// - A parsed `TextKeyValues` has at most `maximumPairCount` pairs, distinct non-empty keys
//   of at most 63 bytes, values within `maximumValueBytes(forKey:)`, all valid UTF-8 with
//   no NUL, and no '=' in a key. `append` keeps the same shape (asserted), so `encoded()`
//   always parses back to the same pairs.

/// Why a key=value text was refused. In a Login Request every case maps to the login status
/// 0x0200 (initiator error); in a Text Request to a Reject PDU with reason 0x04 (protocol
/// error).
public enum TextKeyError: Error, Sendable, Equatable, Hashable {
    /// The text (all PDUs of one C-bit sequence together) exceeds `maximumTextBytes`.
    case textTooLong
    /// More than `maximumPairCount` pairs.
    case tooManyPairs
    /// The last pair is not followed by a NUL.
    case missingTerminator
    /// A pair at this byte offset has no '='.
    case missingEquals(offset: Int)
    /// A pair at this byte offset starts with '='.
    case emptyKey(offset: Int)
    /// The key at this byte offset is longer than 63 bytes.
    case keyTooLong(offset: Int)
    /// The value of this key exceeds its limit (255 bytes unless the RFC allows more).
    case valueTooLong(key: String)
    /// The pair at this byte offset is not valid UTF-8.
    case invalidUTF8(offset: Int)
    /// The same key appears twice in one text.
    case duplicateKey(String)

    /// The Login Response status for a Login Request carrying such text.
    public var loginStatus: LoginStatus { .initiatorError }
    /// The Reject reason for a Text Request carrying such text (0x04, protocol error).
    public var rejectReasonCode: UInt8 { 0x04 }
}

/// An ordered list of key=value pairs with distinct keys.
public struct TextKeyValues: Sendable, Equatable {
    /// One key=value pair.
    public struct Pair: Sendable, Equatable {
        public var key: String
        public var value: String
        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    /// Key names are at most 63 bytes (RFC 7143 section 6.1, standard-label).
    public static let maximumKeyBytes = 63
    /// Values are at most 255 bytes unless a key allows more.
    public static let maximumSimpleValueBytes = 255
    /// CHAP_C and CHAP_R carry up to 1024 binary bytes; hex is the longest encoding.
    public static let maximumCHAPValueBytes = 2 + 2 * 1024
    /// The bound on one text (one Login or Text negotiation step, all its PDUs together).
    public static let maximumTextBytes = 65_536
    /// The bound on the number of pairs in one text; a login uses about 25 keys.
    public static let maximumPairCount = 256

    /// The pairs in order.
    public private(set) var pairs: [Pair]

    public init() { pairs = [] }

    /// Pairs from trusted code; keys must be distinct and well formed (asserted).
    public init(_ pairs: [Pair]) {
        self.pairs = []
        for pair in pairs { append(key: pair.key, value: pair.value) }
    }

    /// The limit on the value of `key`, in bytes.
    public static func maximumValueBytes(forKey key: String) -> Int {
        key == "CHAP_C" || key == "CHAP_R" ? maximumCHAPValueBytes : maximumSimpleValueBytes
    }

    /// The value of `key`, if present.
    public subscript(key: String) -> String? {
        pairs.first(where: { $0.key == key })?.value
    }

    public var isEmpty: Bool { pairs.isEmpty }
    public var count: Int { pairs.count }

    /// Appends a pair. The key must be new and well formed, and the value must hold no NUL.
    public mutating func append(key: String, value: String) {
        assert(!key.isEmpty && key.utf8.count <= Self.maximumKeyBytes, "malformed key \(key)")
        assert(!key.utf8.contains(0) && !key.utf8.contains(UInt8(ascii: "=")), "malformed key \(key)")
        assert(!value.utf8.contains(0), "NUL in the value of \(key)")
        assert(self[key] == nil, "duplicate key \(key)")
        pairs.append(Pair(key: key, value: value))
    }

    /// The wire form: `key=value\0` for each pair.
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(pairs.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 2 })
        for pair in pairs {
            bytes.append(contentsOf: pair.key.utf8)
            bytes.append(UInt8(ascii: "="))
            bytes.append(contentsOf: pair.value.utf8)
            bytes.append(0)
        }
        return bytes
    }

    /// Parses one complete text. Empty input is an empty list. Trailing NUL bytes after the
    /// last pair are tolerated as padding; an empty pair anywhere else is `missingEquals`.
    public static func parse(_ bytes: [UInt8]) throws(TextKeyError) -> TextKeyValues {
        guard bytes.count <= maximumTextBytes else { throw .textTooLong }
        var contentEnd = bytes.count  // one past the last non-NUL byte
        while contentEnd > 0 && bytes[contentEnd - 1] == 0 { contentEnd -= 1 }
        guard contentEnd > 0 else { return TextKeyValues() }
        guard contentEnd < bytes.count else { throw .missingTerminator }

        var result = TextKeyValues()
        var start = 0
        while start < contentEnd {  // each turn consumes at least one byte
            var stop = start
            while bytes[stop] != 0 { stop += 1 }  // bytes[contentEnd] == 0 bounds this scan
            let pair = try parsePair(bytes[start..<stop], offset: start)
            guard result.pairs.count < maximumPairCount else { throw .tooManyPairs }
            guard result[pair.key] == nil else { throw .duplicateKey(pair.key) }
            result.pairs.append(pair)
            start = stop + 1
        }
        return result
    }

    private static func parsePair(_ bytes: ArraySlice<UInt8>, offset: Int) throws(TextKeyError) -> Pair {
        guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else { throw .missingEquals(offset: offset) }
        let keyBytes = bytes[bytes.startIndex..<equals]
        let valueBytes = bytes[(equals + 1)..<bytes.endIndex]
        guard !keyBytes.isEmpty else { throw .emptyKey(offset: offset) }
        guard keyBytes.count <= maximumKeyBytes else { throw .keyTooLong(offset: offset) }
        guard let key = String(validating: keyBytes, as: UTF8.self) else { throw .invalidUTF8(offset: offset) }
        guard valueBytes.count <= maximumValueBytes(forKey: key) else { throw .valueTooLong(key: key) }
        guard let value = String(validating: valueBytes, as: UTF8.self) else { throw .invalidUTF8(offset: offset) }
        return Pair(key: key, value: value)
    }
}
