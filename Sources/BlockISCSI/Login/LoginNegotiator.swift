// The login phase of one connection (RFC 7143 section 6): stages and their transitions,
// text that spans PDUs in both directions (the C bit), the leading keys that pick the
// target, and the hand-off to the connection handler that binds the session.
//
//   [Security] --T=1, authenticated--> [Operational] --T=1, no offer pending--> [Full feature]
//   A login may start in either stage; it starts in Operational only without authentication.
//
// Invariants:
// - `process` never traps on any request: every malformed or unexpected input becomes a
//   failure response (T=0, no text) and `failed` turns true, after which every request
//   gets a failure response too.
// - The ISID, TSIH and CID of every request equal those of the first; the CSG of every
//   request equals the stage the login is in; the version is 0.
// - The login is bounded: at most `maximumRequestCount` requests, at most
//   `TextKeyValues.maximumTextBytes` of text per C-bit sequence, response text in segments
//   of at most `maximumResponseSegmentBytes`.
// - Each key is negotiated once per login; InitiatorName, InitiatorAlias, SessionType and
//   TargetName may be declared again only with the same value (libiscsi repeats them).
// - `bindSession` is called exactly once, when the response that enters the full feature
//   phase is produced; `outcome` is set only if it succeeds.

/// The login negotiation of one connection. Feed it every Login Request of the connection
/// in order and send back each response it returns.
public struct LoginNegotiator: Sendable {
    /// The bound on Login Requests in one login (a CHAP login takes four).
    public static let maximumRequestCount = 64
    /// Response text is split into segments of this size (the RFC default
    /// MaxRecvDataSegmentLength, which holds until the login ends).
    public static let maximumResponseSegmentBytes = 8192
    /// iSCSI names are at most 223 bytes (RFC 7143 section 4.2.7.1).
    public static let maximumNameBytes = 223

    static let leadingKeys: Set<String> = ["InitiatorName", "InitiatorAlias", "SessionType", "TargetName"]

    private enum Phase: Sendable, Equatable { case awaitingFirstText, negotiating, complete, failed }

    private struct Identity: Sendable, Equatable {
        var isid: UInt64
        var tsih: UInt16
        var connectionID: UInt16
    }

    /// A response text being sent in segments, and the flags of its last segment.
    private struct PendingResponse: Sendable {
        var bytes: [UInt8]
        var offset: Int
        var transit: Bool
        var nextStage: LoginStage
    }

    private let catalog: any LoginTargetCatalog
    private let limits: TargetLimits
    private let portalGroupTag: UInt16

    private var phase: Phase = .awaitingFirstText
    private var stage: LoginStage?
    private var identity: Identity?
    private var requestCount = 0
    private var pendingText: [UInt8] = []
    private var pendingResponse: PendingResponse?

    private var sessionType: SessionType = .normal
    private var initiatorName = ""
    private var initiatorAlias: String?
    private var target: LoginTarget?
    private var declarations: [String: String] = [:]
    private var keysNegotiated: Set<String> = []
    private var security = SecurityNegotiation(authentication: .none)
    private var operational: OperationalNegotiation

    /// The negotiated parameters, once the login has entered the full feature phase.
    public private(set) var outcome: SessionParameters?
    /// The status of the failure response, once one was produced.
    public private(set) var failureStatus: LoginStatus?
    /// True once a failure response was produced: the connection must close after sending it.
    public var failed: Bool { phase == .failed }

    /// A negotiator for a connection that arrived on a portal of group `portalGroupTag`.
    /// `limits` must be valid (`TargetLimits.isValid`).
    public init(catalog: any LoginTargetCatalog, limits: TargetLimits, portalGroupTag: UInt16) {
        precondition(limits.isValid, "invalid TargetLimits: \(limits)")
        self.catalog = catalog
        self.limits = limits
        self.portalGroupTag = portalGroupTag
        operational = OperationalNegotiation(limits: limits, sessionType: .normal)
    }

    /// Processes one Login Request and returns the response to send. When the response
    /// enters the full feature phase it first calls `bindSession`, which returns the TSIH
    /// to report or the status to fail the login with; `outcome` is then set.
    public mutating func process(
        _ request: LoginRequest, bindSession: (LoginSessionBinding) -> Result<UInt16, LoginStatus>
    ) -> LoginResponse {
        var generator = SystemRandomNumberGenerator()
        return process(request, using: &generator, bindSession: bindSession)
    }

    /// `process` with the random source for CHAP challenges supplied (tests, fuzzing).
    public mutating func process(
        _ request: LoginRequest, using generator: inout some RandomNumberGenerator,
        bindSession: (LoginSessionBinding) -> Result<UInt16, LoginStatus>
    ) -> LoginResponse {
        switch phase {
        case .complete: return LoginResponse.failure(to: request, status: .invalidDuringLogin)
        case .failed: return LoginResponse.failure(to: request, status: failureStatus ?? .initiatorError)
        case .awaitingFirstText, .negotiating: break
        }
        requestCount += 1
        guard requestCount <= Self.maximumRequestCount else { return fail(request, .initiatorError) }
        if let status = checkHeader(request) { return fail(request, status) }
        if pendingResponse != nil { return continueResponse(request, bindSession: bindSession) }

        guard pendingText.count + request.data.count <= TextKeyValues.maximumTextBytes else {
            return fail(request, .initiatorError)
        }
        pendingText += request.data
        if request.continues {
            return response(to: request, transit: false, continues: false, nextStage: .securityNegotiation, data: [])
        }
        let bytes = pendingText
        pendingText = []
        let text: TextKeyValues
        do {
            text = try TextKeyValues.parse(bytes)
        } catch {
            return fail(request, error.loginStatus)
        }
        switch negotiate(request, text, using: &generator) {
        case .failure(let status):
            return fail(request, status)
        case .success(let (reply, transit, nextStage)):
            pendingResponse = PendingResponse(bytes: reply.encoded(), offset: 0, transit: transit, nextStage: nextStage)
            return continueResponse(request, bindSession: bindSession)
        }
    }

    // MARK: - Header checks

    private mutating func checkHeader(_ request: LoginRequest) -> LoginStatus? {
        guard request.versionMin == 0 else { return .unsupportedVersion }
        let requestIdentity = Identity(isid: request.isid, tsih: request.tsih, connectionID: request.connectionID)
        if let identity, identity != requestIdentity { return .initiatorError }
        identity = requestIdentity
        guard request.currentStage != .fullFeaturePhase else { return .initiatorError }
        if request.transit && (request.continues || request.nextStage <= request.currentStage) {
            return .initiatorError
        }
        if let stage, stage != request.currentStage { return .initiatorError }
        stage = request.currentStage
        return nil
    }

    // MARK: - One complete text

    private mutating func negotiate(
        _ request: LoginRequest, _ text: TextKeyValues, using generator: inout some RandomNumberGenerator
    ) -> Result<(TextKeyValues, Bool, LoginStage), LoginStatus> {
        var reply = TextKeyValues()
        if phase == .awaitingFirstText {
            if let status = acceptLeadingKeys(text, stage: request.currentStage) { return .failure(status) }
            phase = .negotiating
            if sessionType == .normal, let target {
                reply.append(key: "TargetPortalGroupTag", value: String(portalGroupTag))
                if let alias = target.alias, !alias.isEmpty, !alias.utf8.contains(0) {
                    reply.append(key: "TargetAlias", value: alias)
                }
            }
        }

        let inSecurity = request.currentStage == .securityNegotiation
        var answers = [KeyAnswer](repeating: .notUnderstood, count: text.count)
        var securityValues: [String: String] = [:]
        var operationalIndices: [Int] = []
        var operationalPairs: [(key: OperationalKey, value: String)] = []
        for (index, pair) in text.pairs.enumerated() {
            if Self.leadingKeys.contains(pair.key) {
                if let status = redeclare(pair) { return .failure(status) }
                answers[index] = .none
                continue
            }
            let securityKey = SecurityNegotiation.keys.contains(pair.key)
            let operationalKey = OperationalKey(rawValue: pair.key)
            guard (inSecurity && securityKey) || (!inSecurity && operationalKey != nil) else { continue }
            guard keysNegotiated.insert(pair.key).inserted else { return .failure(.initiatorError) }
            answers[index] = .none
            if securityKey {
                securityValues[pair.key] = pair.value
            } else if let operationalKey {
                operationalIndices.append(index)
                operationalPairs.append((operationalKey, pair.value))
            }
        }

        var transit = false
        var nextStage = LoginStage.securityNegotiation
        if inSecurity {
            switch security.process(securityValues, using: &generator) {
            case .failure(let status): return .failure(status)
            case .success(let pairs): add(pairs, to: &reply)
            }
            if request.transit {
                if security.isComplete {
                    (transit, nextStage) = (true, .operationalNegotiation)
                } else if !security.isExchanging {
                    return .failure(.authenticationFailure)  // leaving without authenticating
                }
            }
        } else {
            let offersWerePending = !operational.outstandingOffers.isEmpty
            switch operational.answer(operationalPairs) {
            case .failure(let status): return .failure(status)
            case .success(let operationalAnswers):
                for (index, answer) in zip(operationalIndices, operationalAnswers) { answers[index] = answer }
            }
            add(operational.targetPairs(), to: &reply)
            if request.transit {
                if operational.outstandingOffers.isEmpty {
                    (transit, nextStage) = (true, .fullFeaturePhase)
                } else if offersWerePending {
                    return .failure(.initiatorError)  // our offers were left unanswered
                }
            }
        }
        for (pair, answer) in zip(text.pairs, answers) {
            if let value = answer.text { add([.init(key: pair.key, value: value)], to: &reply) }
        }
        return .success((reply, transit, nextStage))
    }

    /// Appends pairs whose keys the reply does not hold yet (the target's declarations win
    /// over answers to the same key, which only a misbehaving initiator can cause).
    private func add(_ pairs: [TextKeyValues.Pair], to reply: inout TextKeyValues) {
        for pair in pairs where reply[pair.key] == nil { reply.append(key: pair.key, value: pair.value) }
    }

    /// Reads the keys that must come in the first text: they pick the session type, the
    /// target and so the authentication.
    private mutating func acceptLeadingKeys(_ text: TextKeyValues, stage: LoginStage) -> LoginStatus? {
        guard let name = text["InitiatorName"] else { return .missingParameter }
        guard Self.isValidName(name) else { return .initiatorError }
        initiatorName = name
        initiatorAlias = text["InitiatorAlias"]
        switch text["SessionType"] {
        case nil, SessionType.normal.rawValue?: sessionType = .normal
        case SessionType.discovery.rawValue?: sessionType = .discovery
        default: return .sessionTypeNotSupported
        }
        for key in Self.leadingKeys { declarations[key] = text[key] }
        declarations["SessionType"] = sessionType.rawValue

        let authentication: LoginAuthentication
        if sessionType == .normal {
            guard let targetName = text["TargetName"] else { return .missingParameter }
            guard let found = catalog.target(named: targetName), found.portalGroupTag == portalGroupTag else {
                return .targetNotFound
            }
            target = found
            authentication = found.authentication
        } else {
            authentication = catalog.discoveryAuthentication
        }
        guard stage == .securityNegotiation || !authentication.requiresCHAP else { return .authenticationFailure }
        security = SecurityNegotiation(authentication: authentication)
        operational = OperationalNegotiation(limits: limits, sessionType: sessionType)
        return nil
    }

    /// A leading key after the first text: the same value again is tolerated; a new
    /// InitiatorAlias, or a TargetName in a discovery session, is recorded.
    private mutating func redeclare(_ pair: TextKeyValues.Pair) -> LoginStatus? {
        if let declared = declarations[pair.key] { return declared == pair.value ? nil : .initiatorError }
        guard pair.key == "InitiatorAlias" || (pair.key == "TargetName" && sessionType == .discovery) else {
            return .initiatorError
        }
        declarations[pair.key] = pair.value
        if pair.key == "InitiatorAlias" { initiatorAlias = pair.value }
        return nil
    }

    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= maximumNameBytes
    }

    // MARK: - Responses

    /// Sends the next segment of the pending response text; the last segment carries the
    /// transition and, when it enters the full feature phase, binds the session.
    private mutating func continueResponse(
        _ request: LoginRequest, bindSession: (LoginSessionBinding) -> Result<UInt16, LoginStatus>
    ) -> LoginResponse {
        guard var pending = pendingResponse else { return fail(request, .targetError) }
        if pending.offset > 0 && (!request.data.isEmpty || request.continues) {
            return fail(request, .initiatorError)  // the initiator must fetch our text with empty requests
        }
        let end = min(pending.bytes.count, pending.offset + Self.maximumResponseSegmentBytes)
        let segment = Array(pending.bytes[pending.offset..<end])
        guard end == pending.bytes.count else {
            pending.offset = end
            pendingResponse = pending
            return response(to: request, transit: false, continues: true, nextStage: .securityNegotiation, data: segment)
        }
        pendingResponse = nil
        guard pending.transit else {
            return response(to: request, transit: false, continues: false, nextStage: .securityNegotiation, data: segment)
        }
        stage = pending.nextStage
        guard pending.nextStage == .fullFeaturePhase else {
            return response(to: request, transit: true, continues: false, nextStage: pending.nextStage, data: segment)
        }

        var parameters = operational.parameters
        parameters.sessionType = sessionType
        parameters.initiatorName = initiatorName
        parameters.initiatorAlias = initiatorAlias
        parameters.targetName = sessionType == .normal ? target?.name : nil
        parameters.authenticatedUsername = security.authenticatedUsername
        let binding = LoginSessionBinding(
            isid: request.isid, requestedTSIH: request.tsih, connectionID: request.connectionID,
            initiatorName: initiatorName, targetName: parameters.targetName, parameters: parameters)
        switch bindSession(binding) {
        case .failure(let status):
            return fail(request, status.isSuccess ? .targetError : status)
        case .success(let tsih):
            guard tsih != 0 else { return fail(request, .targetError) }  // 0 is reserved
            outcome = parameters
            phase = .complete
            var final = response(to: request, transit: true, continues: false, nextStage: .fullFeaturePhase, data: segment)
            final.tsih = tsih
            return final
        }
    }

    private func response(
        to request: LoginRequest, transit: Bool, continues: Bool, nextStage: LoginStage, data: [UInt8]
    ) -> LoginResponse {
        assert(data.count <= Self.maximumResponseSegmentBytes)
        return LoginResponse(
            transit: transit, continues: continues, currentStage: request.currentStage, nextStage: nextStage,
            isid: request.isid, tsih: request.tsih, initiatorTaskTag: request.initiatorTaskTag,
            statusClass: 0, statusDetail: 0, data: data)
    }

    private mutating func fail(_ request: LoginRequest, _ status: LoginStatus) -> LoginResponse {
        assert(!status.isSuccess)
        failureStatus = status
        phase = .failed
        pendingResponse = nil
        pendingText = []
        return LoginResponse.failure(to: request, status: status)
    }
}
