// The operational keys of RFC 7143 section 13 and their negotiation for one login: the
// target's answers to the initiator's offers, the target's own declaration and offers,
// and the values that result.
//
// Invariants:
// - `parameters` holds RFC defaults until a key is negotiated, and every stored value is
//   inside its RFC range; firstBurstLength <= maxBurstLength after every step.
// - Each key is answered at most once (the login refuses repeated keys before they get
//   here), and the target offers at most once: only keys the initiator has not sent, only
//   when the RFC default exceeds the target's limits, only in normal sessions.
// - MaxBurstLength is settled before FirstBurstLength in the same text, so the
//   FirstBurstLength answer never exceeds the MaxBurstLength answer.

/// The operational keys this target understands.
enum OperationalKey: String, CaseIterable, Sendable {
    case headerDigest = "HeaderDigest"
    case dataDigest = "DataDigest"
    case maxConnections = "MaxConnections"
    case initialR2T = "InitialR2T"
    case immediateData = "ImmediateData"
    case maxRecvDataSegmentLength = "MaxRecvDataSegmentLength"
    case maxBurstLength = "MaxBurstLength"
    case firstBurstLength = "FirstBurstLength"
    case defaultTime2Wait = "DefaultTime2Wait"
    case defaultTime2Retain = "DefaultTime2Retain"
    case maxOutstandingR2T = "MaxOutstandingR2T"
    case dataPDUInOrder = "DataPDUInOrder"
    case dataSequenceInOrder = "DataSequenceInOrder"
    case errorRecoveryLevel = "ErrorRecoveryLevel"
    case ifMarker = "IFMarker"
    case ofMarker = "OFMarker"
    case ifMarkInt = "IFMarkInt"
    case ofMarkInt = "OFMarkInt"
    case taskReporting = "TaskReporting"

    static let lengthRange: ClosedRange<UInt64> = 512...16_777_215

    /// The result function (RFC 7143 section 13). Marker intervals are answered Irrelevant
    /// since markers are always No.
    var function: NegotiationFunction {
        switch self {
        case .headerDigest, .dataDigest, .taskReporting: return .list
        case .maxConnections, .maxOutstandingR2T: return .minimum(1...65_535)
        case .maxBurstLength, .firstBurstLength: return .minimum(Self.lengthRange)
        case .defaultTime2Retain: return .minimum(0...3600)
        case .defaultTime2Wait: return .maximum(0...3600)
        case .errorRecoveryLevel: return .minimum(0...2)
        case .initialR2T, .dataPDUInOrder, .dataSequenceInOrder: return .or
        case .immediateData, .ifMarker, .ofMarker: return .and
        case .maxRecvDataSegmentLength: return .declarative(Self.lengthRange)
        case .ifMarkInt, .ofMarkInt: return .declarative(1...65_535)
        }
    }

    /// Keys RFC 7143 marks "Irrelevant when SessionType=Discovery".
    var irrelevantInDiscovery: Bool {
        switch self {
        case .initialR2T, .immediateData, .maxBurstLength, .firstBurstLength, .maxOutstandingR2T,
             .dataPDUInOrder, .dataSequenceInOrder:
            return true
        default:
            return false
        }
    }
}

/// The operational negotiation state of one login.
struct OperationalNegotiation {
    let limits: TargetLimits
    let sessionType: SessionType
    /// The negotiated values (names are filled in by the login).
    private(set) var parameters: SessionParameters
    /// Our offers still waiting for the initiator's answer, with the value we offered.
    private(set) var outstandingOffers: [OperationalKey: String] = [:]
    private var keysReceived: Set<OperationalKey> = []
    private var declared = false
    private var offered = false

    init(limits: TargetLimits, sessionType: SessionType) {
        self.limits = limits
        self.sessionType = sessionType
        parameters = SessionParameters(sessionType: sessionType, initiatorName: "", targetName: nil)
    }

    /// Answers the initiator's operational pairs (offers, declarations, or answers to our
    /// offers), in the order given. Fails only when an answer to our offer is invalid.
    mutating func answer(_ pairs: [(key: OperationalKey, value: String)]) -> Result<[KeyAnswer], LoginStatus> {
        var answers = [KeyAnswer](repeating: .none, count: pairs.count)
        // MaxBurstLength first, so FirstBurstLength is clamped to its outcome.
        let order = pairs.indices.filter { pairs[$0].key == .maxBurstLength }
            + pairs.indices.filter { pairs[$0].key != .maxBurstLength }
        for index in order {
            let (key, value) = pairs[index]
            keysReceived.insert(key)
            if let ours = outstandingOffers.removeValue(forKey: key) {
                switch NegotiationRules.checkAnswer(value, toOffer: ours, function: key.function) {
                case .selected(let selected): store(key, selected)
                case .keepsDefault: break
                case .invalid: return .failure(.initiatorError)
                }
                continue
            }
            answers[index] = respond(to: key, offered: value)
        }
        parameters.firstBurstLength = min(parameters.firstBurstLength, parameters.maxBurstLength)
        return .success(answers)
    }

    /// The target's own pairs, sent once: its MaxRecvDataSegmentLength declaration, then
    /// offers for keys whose RFC default would exceed `limits` (normal sessions only).
    mutating func targetPairs() -> [TextKeyValues.Pair] {
        var pairs: [TextKeyValues.Pair] = []
        if !declared {
            declared = true
            parameters.targetMaxRecvDataSegmentLength = limits.maxRecvDataSegmentLength
            pairs.append(.init(key: OperationalKey.maxRecvDataSegmentLength.rawValue, value: String(limits.maxRecvDataSegmentLength)))
        }
        guard !offered, sessionType == .normal else { return pairs }
        offered = true
        var offers: [(OperationalKey, String)] = []
        if parameters.maxBurstLength > limits.maxBurstLength {
            offers.append((.maxBurstLength, String(limits.maxBurstLength)))
        }
        if parameters.firstBurstLength > limits.firstBurstLength {
            offers.append((.firstBurstLength, String(limits.firstBurstLength)))
        }
        if parameters.defaultTime2Wait < limits.defaultTime2Wait {
            offers.append((.defaultTime2Wait, String(limits.defaultTime2Wait)))
        }
        if parameters.defaultTime2Retain > limits.defaultTime2Retain {
            offers.append((.defaultTime2Retain, String(limits.defaultTime2Retain)))
        }
        if parameters.immediateData && !limits.immediateData {
            offers.append((.immediateData, "No"))
        }
        for (key, value) in offers where !keysReceived.contains(key) {
            outstandingOffers[key] = value
            pairs.append(.init(key: key.rawValue, value: value))
        }
        return pairs
    }

    // MARK: - Responder

    private mutating func respond(to key: OperationalKey, offered value: String) -> KeyAnswer {
        if sessionType == .discovery && key.irrelevantInDiscovery { return .irrelevant }
        switch key {
        case .headerDigest, .dataDigest:
            let supported = limits.allowsDigests ? ["None", "CRC32C"] : ["None"]
            guard let selected = NegotiationRules.list(offered: value, supported: supported) else { return .reject }
            store(key, selected)
            return .value(selected)
        case .taskReporting:
            guard let selected = NegotiationRules.list(offered: value, supported: ["RFC3720"]) else { return .reject }
            return .value(selected)
        case .ifMarkInt, .ofMarkInt:
            return .irrelevant
        case .maxRecvDataSegmentLength:
            guard let declared = NegotiationRules.declared(value, range: OperationalKey.lengthRange) else { return .reject }
            store(key, String(declared))
            return .none
        default:
            break
        }
        let answer: String?
        switch key.function {
        case .minimum(let range):
            var ours = UInt64(ourNumber(key))
            if key == .firstBurstLength { ours = min(ours, UInt64(parameters.maxBurstLength)) }
            answer = NegotiationRules.minimum(offered: value, ours: ours, range: range).map { String($0) }
        case .maximum(let range):
            answer = NegotiationRules.maximum(offered: value, ours: UInt64(ourNumber(key)), range: range).map { String($0) }
        case .and:
            answer = NegotiationRules.and(offered: value, ours: ourBoolean(key)).map(TextValueCoding.text)
        case .or:
            answer = NegotiationRules.or(offered: value, ours: ourBoolean(key)).map(TextValueCoding.text)
        case .list, .declarative:
            answer = nil  // handled above
        }
        guard let answer else { return .reject }
        store(key, answer)
        return .value(answer)
    }

    private func ourNumber(_ key: OperationalKey) -> Int {
        switch key {
        case .maxConnections: return limits.maxConnections
        case .maxBurstLength: return limits.maxBurstLength
        case .firstBurstLength: return limits.firstBurstLength
        case .defaultTime2Wait: return limits.defaultTime2Wait
        case .defaultTime2Retain: return limits.defaultTime2Retain
        case .maxOutstandingR2T: return limits.maxOutstandingR2T
        case .errorRecoveryLevel: return limits.errorRecoveryLevel
        default: return 0
        }
    }

    private func ourBoolean(_ key: OperationalKey) -> Bool {
        switch key {
        case .initialR2T: return limits.initialR2T
        case .immediateData: return limits.immediateData
        case .dataPDUInOrder, .dataSequenceInOrder: return true  // the session layer needs order
        default: return false  // markers
        }
    }

    /// Records a negotiated value. `value` was produced or validated by the rules, so it is
    /// well formed and in range.
    private mutating func store(_ key: OperationalKey, _ value: String) {
        let number = Int(TextValueCoding.number(value) ?? 0)
        let flag = value == "Yes"
        switch key {
        case .headerDigest: parameters.headerDigest = value == "CRC32C"
        case .dataDigest: parameters.dataDigest = value == "CRC32C"
        case .maxConnections: parameters.maxConnections = number
        case .initialR2T: parameters.initialR2T = flag
        case .immediateData: parameters.immediateData = flag
        case .maxRecvDataSegmentLength: parameters.initiatorMaxRecvDataSegmentLength = number
        case .maxBurstLength: parameters.maxBurstLength = number
        case .firstBurstLength: parameters.firstBurstLength = number
        case .defaultTime2Wait: parameters.defaultTime2Wait = number
        case .defaultTime2Retain: parameters.defaultTime2Retain = number
        case .maxOutstandingR2T: parameters.maxOutstandingR2T = number
        case .dataPDUInOrder: parameters.dataPDUInOrder = flag
        case .dataSequenceInOrder: parameters.dataSequenceInOrder = flag
        case .errorRecoveryLevel: parameters.errorRecoveryLevel = number
        case .ifMarker, .ofMarker, .ifMarkInt, .ofMarkInt, .taskReporting: break
        }
    }
}
