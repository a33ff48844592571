// What the login negotiation is configured with: the targets and their CHAP credentials,
// and the limits this target offers and declares.
//
// Invariants:
// - `TargetLimits.isValid`: every value is inside its RFC 7143 section 13 range,
//   firstBurstLength <= maxBurstLength, and errorRecoveryLevel is 0 (the only level the
//   session layer implements). `LoginNegotiator.init` requires it.
// - A `LoginAuthentication` with `initiatorCredentials == nil` means no authentication;
//   `targetCredentials` is then unused (iSCSI CHAP only authenticates the target after
//   the initiator has answered the target's challenge).

/// A CHAP name and secret (the secret is used as its UTF-8 bytes).
public struct CHAPCredentials: Sendable, Equatable {
    public var username: String
    public var secret: String
    public init(username: String, secret: String) {
        self.username = username
        self.secret = secret
    }
}

/// The authentication a target (or discovery sessions) requires.
///
/// - `initiatorCredentials == nil`: no authentication; `AuthMethod=None` is selected.
/// - `initiatorCredentials` set: the initiator must log in with CHAP (MD5) as this user.
///   If it also challenges the target (mutual CHAP), the target answers with
///   `targetCredentials`; without them such a login fails with 0x0201. Mutual CHAP is the
///   initiator's choice (RFC 7143 section 12.1.3), so it is allowed, not required. The two
///   secrets must differ (RFC 7143 section 9.2.1); a login whose response shows they are
///   the same fails.
public struct LoginAuthentication: Sendable, Equatable {
    public var initiatorCredentials: CHAPCredentials?
    public var targetCredentials: CHAPCredentials?

    public init(initiatorCredentials: CHAPCredentials? = nil, targetCredentials: CHAPCredentials? = nil) {
        self.initiatorCredentials = initiatorCredentials
        self.targetCredentials = targetCredentials
    }

    /// No authentication.
    public static let none = LoginAuthentication()

    /// True when the initiator must authenticate.
    public var requiresCHAP: Bool { initiatorCredentials != nil }
}

/// A target as the login sees it.
public struct LoginTarget: Sendable, Equatable {
    /// The iSCSI name (iqn./eui./naa.), at most 223 bytes.
    public var name: String
    /// Sent as TargetAlias in the first login response when set.
    public var alias: String?
    /// The portal group the target is reachable through. A login that arrives on a portal
    /// of another group is refused as "target not found".
    public var portalGroupTag: UInt16
    public var authentication: LoginAuthentication

    public init(name: String, alias: String? = nil, portalGroupTag: UInt16 = 1, authentication: LoginAuthentication = .none) {
        self.name = name
        self.alias = alias
        self.portalGroupTag = portalGroupTag
        self.authentication = authentication
    }
}

/// The targets a login can reach.
public protocol LoginTargetCatalog: Sendable {
    /// The target with this iSCSI name, or nil.
    func target(named name: String) -> LoginTarget?
    /// The authentication discovery sessions require.
    var discoveryAuthentication: LoginAuthentication { get }
}

/// What this target offers and declares during login. Values are in bytes, seconds or
/// counts as the RFC 7143 key of the same name.
public struct TargetLimits: Sendable, Equatable {
    /// Declared: the largest data segment this target accepts (512...16_777_215).
    public var maxRecvDataSegmentLength: Int
    /// Offered (minimum): the largest solicited or read burst (512...16_777_215).
    public var maxBurstLength: Int
    /// Offered (minimum): the largest unsolicited burst, at most `maxBurstLength`.
    public var firstBurstLength: Int
    /// Offered (minimum): R2Ts outstanding per task (1...65_535).
    public var maxOutstandingR2T: Int
    /// Offered (AND).
    public var immediateData: Bool
    /// Offered (OR): false lets the initiator send unsolicited Data-Out.
    public var initialR2T: Bool
    /// Offered (minimum): connections per session (1...65_535).
    public var maxConnections: Int
    /// Offered (minimum): must be 0, the only level the session layer implements.
    public var errorRecoveryLevel: Int
    /// Offered (maximum), seconds (0...3600).
    public var defaultTime2Wait: Int
    /// Offered (minimum), seconds (0...3600).
    public var defaultTime2Retain: Int
    /// Whether CRC32C header and data digests may be selected when the initiator offers them.
    public var allowsDigests: Bool

    /// Defaults chosen for throughput: 256 KiB data segments, 1 MiB bursts, immediate and
    /// unsolicited data allowed.
    public init(
        maxRecvDataSegmentLength: Int = 262_144, maxBurstLength: Int = 1_048_576, firstBurstLength: Int = 262_144,
        maxOutstandingR2T: Int = 1, immediateData: Bool = true, initialR2T: Bool = false, maxConnections: Int = 1,
        errorRecoveryLevel: Int = 0, defaultTime2Wait: Int = 2, defaultTime2Retain: Int = 20, allowsDigests: Bool = true
    ) {
        self.maxRecvDataSegmentLength = maxRecvDataSegmentLength
        self.maxBurstLength = maxBurstLength
        self.firstBurstLength = firstBurstLength
        self.maxOutstandingR2T = maxOutstandingR2T
        self.immediateData = immediateData
        self.initialR2T = initialR2T
        self.maxConnections = maxConnections
        self.errorRecoveryLevel = errorRecoveryLevel
        self.defaultTime2Wait = defaultTime2Wait
        self.defaultTime2Retain = defaultTime2Retain
        self.allowsDigests = allowsDigests
    }

    /// True when every value is in its RFC range and the values are consistent.
    public var isValid: Bool {
        let lengthRange = 512...16_777_215
        return lengthRange.contains(maxRecvDataSegmentLength) && lengthRange.contains(maxBurstLength)
            && lengthRange.contains(firstBurstLength) && firstBurstLength <= maxBurstLength
            && (1...65_535).contains(maxOutstandingR2T) && (1...65_535).contains(maxConnections)
            && errorRecoveryLevel == 0 && (0...3600).contains(defaultTime2Wait)
            && (0...3600).contains(defaultTime2Retain)
    }
}
