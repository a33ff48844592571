// The outcome of a login: the parameters a session runs with, and what the connection
// handler is told when it must bind the login to a session.
//
// Invariants:
// - firstBurstLength <= maxBurstLength.
// - targetName is nil exactly for discovery sessions.
// - Lengths are in 512...16_777_215; keys that were never negotiated hold their RFC 7143
//   defaults (section 13).

/// SessionType (RFC 7143 section 13.21).
public enum SessionType: String, Sendable, Equatable {
    case normal = "Normal"
    case discovery = "Discovery"
}

/// The parameters negotiated during login, used for the whole session.
public struct SessionParameters: Sendable, Equatable {
    public var sessionType: SessionType
    public var initiatorName: String
    public var initiatorAlias: String?
    /// Nil for a discovery session.
    public var targetName: String?
    /// CRC32C header digests.
    public var headerDigest: Bool
    /// CRC32C data digests.
    public var dataDigest: Bool
    /// The initiator's MaxRecvDataSegmentLength: the largest data segment the target may send.
    public var initiatorMaxRecvDataSegmentLength: Int
    /// The target's declared MaxRecvDataSegmentLength: the largest data segment it accepts.
    public var targetMaxRecvDataSegmentLength: Int
    public var maxBurstLength: Int
    public var firstBurstLength: Int
    public var initialR2T: Bool
    public var immediateData: Bool
    public var maxOutstandingR2T: Int
    public var dataPDUInOrder: Bool
    public var dataSequenceInOrder: Bool
    /// Seconds.
    public var defaultTime2Wait: Int
    /// Seconds.
    public var defaultTime2Retain: Int
    public var errorRecoveryLevel: Int
    public var maxConnections: Int
    /// The CHAP name the initiator authenticated with, nil without authentication.
    public var authenticatedUsername: String?

    /// RFC 7143 defaults for a session of this type and these names.
    public init(sessionType: SessionType, initiatorName: String, initiatorAlias: String? = nil, targetName: String?) {
        self.sessionType = sessionType
        self.initiatorName = initiatorName
        self.initiatorAlias = initiatorAlias
        self.targetName = targetName
        headerDigest = false
        dataDigest = false
        initiatorMaxRecvDataSegmentLength = 8192
        targetMaxRecvDataSegmentLength = 8192
        maxBurstLength = 262_144
        firstBurstLength = 65_536
        initialR2T = true
        immediateData = true
        maxOutstandingR2T = 1
        dataPDUInOrder = true
        dataSequenceInOrder = true
        defaultTime2Wait = 2
        defaultTime2Retain = 20
        errorRecoveryLevel = 0
        maxConnections = 1
        authenticatedUsername = nil
    }
}

/// What the login asks the connection handler to bind when the initiator enters the full
/// feature phase.
public struct LoginSessionBinding: Sendable, Equatable {
    /// The 48-bit initiator session ID.
    public var isid: UInt64
    /// The TSIH of the Login Request: 0 asks for a new session (or the reinstatement of
    /// the session with this ISID); non-zero names an existing session to add a connection to.
    public var requestedTSIH: UInt16
    public var connectionID: UInt16
    public var initiatorName: String
    /// Nil for a discovery session.
    public var targetName: String?
    public var parameters: SessionParameters

    public init(isid: UInt64, requestedTSIH: UInt16, connectionID: UInt16, initiatorName: String, targetName: String?, parameters: SessionParameters) {
        self.isid = isid
        self.requestedTSIH = requestedTSIH
        self.connectionID = connectionID
        self.initiatorName = initiatorName
        self.targetName = targetName
        self.parameters = parameters
    }
}
