// The SecurityNegotiation stage of one login (RFC 7143 sections 6.3 and 12.1): AuthMethod
// list negotiation, then the CHAP exchange when the target requires authentication.
//
// Invariants:
// - When authentication is required, the stage completes only after a verified CHAP
//   response; AuthMethod=None is never selected then.
// - Without required authentication, AuthMethod=None is selected when offered and CHAP
//   keys are answered Irrelevant.
// - Every CHAP key arriving out of order fails the login with 0x0201.

/// The security stage state of one login.
struct SecurityNegotiation {
    /// The keys this stage handles.
    static let keys: Set<String> = ["AuthMethod", "CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R"]

    private enum State {
        case awaitingMethod
        case chap(CHAPAuthenticator)
        case complete
    }

    let authentication: LoginAuthentication
    private var state: State = .awaitingMethod
    /// The CHAP name the initiator proved, once authenticated.
    private(set) var authenticatedUsername: String?

    init(authentication: LoginAuthentication) {
        self.authentication = authentication
    }

    /// True when the initiator may leave the security stage.
    var isComplete: Bool {
        if case .complete = state { return true }
        return !authentication.requiresCHAP
    }

    /// True while a CHAP exchange is under way.
    var isExchanging: Bool {
        if case .chap = state { return true }
        return false
    }

    /// Handles the security keys of one text (`values` holds only keys of `Self.keys`):
    /// AuthMethod first, then CHAP_A, then the CHAP response. Returns the pairs to answer
    /// with. During a CHAP exchange a text without the next CHAP step fails the login.
    mutating func process(
        _ values: [String: String], using generator: inout some RandomNumberGenerator
    ) -> Result<[TextKeyValues.Pair], LoginStatus> {
        assert(values.keys.allSatisfy { Self.keys.contains($0) })
        if values.isEmpty, case .chap = state { return .failure(.authenticationFailure) }
        var answer: [TextKeyValues.Pair] = []
        if let offered = values["AuthMethod"] {
            guard case .awaitingMethod = state else { return .failure(.initiatorError) }
            if let initiatorCredentials = authentication.initiatorCredentials {
                guard NegotiationRules.list(offered: offered, supported: ["CHAP"]) != nil else {
                    return .failure(.authenticationFailure)
                }
                state = .chap(CHAPAuthenticator(initiatorCredentials: initiatorCredentials, targetCredentials: authentication.targetCredentials))
                answer.append(.init(key: "AuthMethod", value: "CHAP"))
            } else if NegotiationRules.list(offered: offered, supported: ["None"]) != nil {
                state = .complete
                answer.append(.init(key: "AuthMethod", value: "None"))
            } else {
                answer.append(.init(key: "AuthMethod", value: "Reject"))
            }
        }

        let chapKeys = ["CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R"].filter { values[$0] != nil }
        guard !chapKeys.isEmpty else { return .success(answer) }
        guard case .chap(var chap) = state else {
            // CHAP keys without CHAP: fatal when CHAP is required, irrelevant otherwise.
            guard !authentication.requiresCHAP else { return .failure(.authenticationFailure) }
            return .success(answer + chapKeys.map { .init(key: $0, value: "Irrelevant") })
        }
        if let algorithms = values["CHAP_A"] {
            guard chapKeys == ["CHAP_A"] else { return .failure(.authenticationFailure) }
            switch chap.selectAlgorithm(offered: algorithms, using: &generator) {
            case .success(let pairs): answer += pairs
            case .failure(let status): return .failure(status)
            }
            state = .chap(chap)
            return .success(answer)
        }
        switch chap.verify(name: values["CHAP_N"], response: values["CHAP_R"], identifier: values["CHAP_I"], challenge: values["CHAP_C"]) {
        case .success(let pairs):
            authenticatedUsername = chap.initiatorCredentials.username
            state = .complete
            return .success(answer + pairs)
        case .failure(let status):
            return .failure(status)
        }
    }
}
