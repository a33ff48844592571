// The result functions of RFC 7143 section 6.2 (text-mode negotiation) as pure functions
// on key values: list negotiation, numerical minimum and maximum, Boolean AND and OR, and
// declarations; plus the check of an answer to one of our own offers.
//
// Invariants:
// - A responder's selection never contradicts the offer: `minimum` never exceeds the
//   offered value, `maximum` is never below it, AND is No when the offer is No, OR is Yes
//   when the offer is Yes, a list result is one of the offered values.
// - nil means the offer is malformed or out of range: the responder answers `Reject`.
// - Loops run over at most one text value (255 bytes), so they are bounded.

/// The answer a responder sends for one offered key (RFC 7143 section 6.2).
enum KeyAnswer: Sendable, Equatable {
    /// A selected or declared value.
    case value(String)
    /// The key is not known, or not accepted from the initiator at this point.
    case notUnderstood
    /// The key does not apply in this session or context.
    case irrelevant
    /// The offered value is malformed, out of range, or has nothing in common with ours.
    case reject
    /// A declaration, or an answer to one of our offers: nothing to send.
    case none

    /// The value text to send, or nil for `.none`.
    var text: String? {
        switch self {
        case .value(let value): return value
        case .notUnderstood: return "NotUnderstood"
        case .irrelevant: return "Irrelevant"
        case .reject: return "Reject"
        case .none: return nil
        }
    }
}

/// How a negotiated key's outcome is computed from the offer and the responder's value.
enum NegotiationFunction: Sendable, Equatable {
    /// The first offered value the responder supports.
    case list
    /// The smaller of the two values, within a range.
    case minimum(ClosedRange<UInt64>)
    /// The larger of the two values, within a range.
    case maximum(ClosedRange<UInt64>)
    /// Boolean AND.
    case and
    /// Boolean OR.
    case or
    /// Each side declares its own value; no answer.
    case declarative(ClosedRange<UInt64>)
}

/// RFC 7143 section 6.2 result functions.
enum NegotiationRules {
    /// At most this many values in an offered list are considered (a 255-byte value holds
    /// at most 128).
    static let maximumListValues = 128

    /// The values of a list offer, in order of the originator's preference.
    static func listValues(_ offered: String) -> [Substring] {
        Array(offered.split(separator: ",", omittingEmptySubsequences: false).prefix(maximumListValues))
    }

    /// List negotiation: the first offered value that `supported` contains, or nil (Reject).
    static func list(offered: String, supported: [String]) -> String? {
        for value in listValues(offered) where supported.contains(where: { $0 == value }) {
            return String(value)
        }
        return nil
    }

    /// Numerical minimum: min(offered, ours), or nil if the offer is malformed or out of range.
    static func minimum(offered: String, ours: UInt64, range: ClosedRange<UInt64>) -> UInt64? {
        guard let value = TextValueCoding.number(offered), range.contains(value) else { return nil }
        return min(value, ours)
    }

    /// Numerical maximum: max(offered, ours), or nil if the offer is malformed or out of range.
    static func maximum(offered: String, ours: UInt64, range: ClosedRange<UInt64>) -> UInt64? {
        guard let value = TextValueCoding.number(offered), range.contains(value) else { return nil }
        return max(value, ours)
    }

    /// Boolean AND, or nil if the offer is not Yes/No.
    static func and(offered: String, ours: Bool) -> Bool? {
        TextValueCoding.boolean(offered).map { $0 && ours }
    }

    /// Boolean OR, or nil if the offer is not Yes/No.
    static func or(offered: String, ours: Bool) -> Bool? {
        TextValueCoding.boolean(offered).map { $0 || ours }
    }

    /// A declared number, or nil if malformed or out of range.
    static func declared(_ offered: String, range: ClosedRange<UInt64>) -> UInt64? {
        guard let value = TextValueCoding.number(offered), range.contains(value) else { return nil }
        return value
    }

    /// How a responder's answer to one of our offers came out.
    enum OfferOutcome: Sendable, Equatable {
        /// The answer is a valid selection: use it.
        case selected(String)
        /// Reject or Irrelevant: the key keeps its default value.
        case keepsDefault
        /// The answer contradicts the offer or is malformed: a protocol error.
        case invalid
    }

    /// Checks the responder's `answer` to our offer `offered` under `function`.
    static func checkAnswer(_ answer: String, toOffer offered: String, function: NegotiationFunction) -> OfferOutcome {
        if answer == "Reject" || answer == "Irrelevant" { return .keepsDefault }
        switch function {
        case .list:
            return listValues(offered).contains(where: { $0 == answer }) ? .selected(answer) : .invalid
        case .minimum(let range):
            guard let ours = TextValueCoding.number(offered), let theirs = TextValueCoding.number(answer),
                  range.contains(theirs), theirs <= ours else { return .invalid }
            return .selected(String(theirs))
        case .maximum(let range):
            guard let ours = TextValueCoding.number(offered), let theirs = TextValueCoding.number(answer),
                  range.contains(theirs), theirs >= ours else { return .invalid }
            return .selected(String(theirs))
        case .and:
            guard let ours = TextValueCoding.boolean(offered), let theirs = TextValueCoding.boolean(answer),
                  ours || !theirs else { return .invalid }
            return .selected(TextValueCoding.text(theirs))
        case .or:
            guard let ours = TextValueCoding.boolean(offered), let theirs = TextValueCoding.boolean(answer),
                  !ours || theirs else { return .invalid }
            return .selected(TextValueCoding.text(theirs))
        case .declarative:
            return .invalid  // declarations are never answered
        }
    }
}
