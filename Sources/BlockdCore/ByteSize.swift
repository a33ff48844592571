/// A byte count written the way people write sizes: `4096`, `64MiB`, `1.5GiB`, `2T`.
/// Suffixes are binary (KiB = 1024 bytes); `K`, `M`, `G`, `T` mean the same as `KiB`...
public struct ByteSize: Sendable, Equatable, CustomStringConvertible {
    public var bytes: UInt64

    public init(bytes: UInt64) { self.bytes = bytes }

    static let units: [(name: String, suffixes: [String], multiplier: UInt64)] = [
        ("B", ["", "b"], 1),
        ("KiB", ["k", "kib"], 1 << 10),
        ("MiB", ["m", "mib"], 1 << 20),
        ("GiB", ["g", "gib"], 1 << 30),
        ("TiB", ["t", "tib"], 1 << 40),
    ]

    /// Parses `text`; the error message says what was wrong.
    public init(parsing text: String) throws(ByteSizeError) {
        let trimmed = text.trimmingWhitespace()
        guard let numberEnd = trimmed.firstIndex(where: { !($0.isNumber || $0 == ".") }) ?? Optional(trimmed.endIndex) else {
            throw ByteSizeError(text: text, reason: "missing number")
        }
        let number = String(trimmed[..<numberEnd])
        let suffix = String(trimmed[numberEnd...]).trimmingWhitespace().lowercased()
        guard let unit = Self.units.first(where: { $0.suffixes.contains(suffix) }) else {
            throw ByteSizeError(text: text, reason: "unknown unit '\(suffix)' (use B, KiB, MiB, GiB or TiB)")
        }
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard !number.isEmpty, parts.count <= 2, let whole = UInt64(parts[0].isEmpty ? "0" : String(parts[0])) else {
            throw ByteSizeError(text: text, reason: "not a number")
        }
        let (wholeBytes, overflow) = whole.multipliedReportingOverflow(by: unit.multiplier)
        guard !overflow else { throw ByteSizeError(text: text, reason: "too large") }
        var total = wholeBytes
        if parts.count == 2 {
            let digits = String(parts[1])
            guard !digits.isEmpty, digits.count <= 9, let fraction = UInt64(digits) else {
                throw ByteSizeError(text: text, reason: "not a number")
            }
            var scale: UInt64 = 1
            for _ in 0..<digits.count { scale *= 10 }
            let (product, overflow) = fraction.multipliedReportingOverflow(by: unit.multiplier)
            guard !overflow, product % scale == 0 else {
                throw ByteSizeError(text: text, reason: "is not a whole number of bytes")
            }
            total += product / scale
        }
        bytes = total
    }

    /// The largest exact binary unit: `64MiB`, `1536KiB`, `4097B`.
    public var description: String {
        for unit in Self.units.reversed() where unit.multiplier > 1 && bytes >= unit.multiplier && bytes % unit.multiplier == 0 {
            return "\(bytes / unit.multiplier)\(unit.name)"
        }
        return "\(bytes)B"
    }
}

/// A size that could not be parsed.
public struct ByteSizeError: Error, Sendable, Equatable, CustomStringConvertible {
    public var text: String
    public var reason: String
    public var description: String { "invalid size '\(text)': \(reason)" }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var result = Substring(self)
        while let first = result.first, first.isWhitespace { result.removeFirst() }
        while let last = result.last, last.isWhitespace { result.removeLast() }
        return String(result)
    }
}
