// The fields of the Login Request and Login Response PDUs (RFC 7143 sections 11.12, 11.13)
// that the login negotiation reads and writes. The connection handler maps PDUs to and
// from these values; StatSN, ExpCmdSN and MaxCmdSN belong to the connection.
//
// Invariants:
// - A stage is 0, 1 or 3. The reserved code 2 never becomes a `LoginStage`: decoding a
//   flags byte that carries it (as CSG, or as NSG with T=1) fails explicitly.
// - The ISID is 48 bits: `isid >> 48 == 0` in everything this module produces.

/// A login stage code (CSG/NSG field, RFC 7143 section 11.12.3).
public enum LoginStage: UInt8, Sendable, Comparable {
    case securityNegotiation = 0
    case operationalNegotiation = 1
    case fullFeaturePhase = 3

    public static func < (lhs: LoginStage, rhs: LoginStage) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The flag bits of byte 1 of a Login Request or Response: T, C, CSG and NSG.
public struct LoginFlags: Sendable, Equatable {
    public var transit: Bool
    public var continues: Bool
    public var currentStage: LoginStage
    /// Meaningful only when `transit` is true; otherwise reserved.
    public var nextStage: LoginStage

    public init(transit: Bool, continues: Bool, currentStage: LoginStage, nextStage: LoginStage) {
        self.transit = transit
        self.continues = continues
        self.currentStage = currentStage
        self.nextStage = nextStage
    }

    /// Decodes byte 1 of a Login Request. A reserved stage code (2) as CSG, a CSG of
    /// FullFeaturePhase, or a reserved NSG with T=1 is an initiator error (0x0200). With
    /// T=0 the NSG field is reserved and decodes as the current stage.
    public static func decodeRequest(_ byte: UInt8) -> Result<LoginFlags, LoginStatus> {
        let transit = byte & 0x80 != 0
        let continues = byte & 0x40 != 0
        guard let current = LoginStage(rawValue: (byte >> 2) & 0x03), current != .fullFeaturePhase else {
            return .failure(.initiatorError)
        }
        let nextValue = byte & 0x03
        guard transit else {
            return .success(LoginFlags(transit: false, continues: continues, currentStage: current, nextStage: current))
        }
        guard let next = LoginStage(rawValue: nextValue) else { return .failure(.initiatorError) }
        return .success(LoginFlags(transit: true, continues: continues, currentStage: current, nextStage: next))
    }

    /// Byte 1 of a Login Response (or Request) with these flags.
    public var encoded: UInt8 {
        var byte = (currentStage.rawValue << 2) | nextStage.rawValue
        if transit { byte |= 0x80 }
        if continues { byte |= 0x40 }
        return byte
    }
}

/// The fields of a Login Request PDU (RFC 7143 section 11.12).
public struct LoginRequest: Sendable, Equatable {
    /// T: the initiator is ready to leave the current stage for `nextStage`.
    public var transit: Bool
    /// C: the text continues in the next Login Request.
    public var continues: Bool
    public var currentStage: LoginStage
    /// Meaningful only when `transit` is true.
    public var nextStage: LoginStage
    public var versionMax: UInt8
    public var versionMin: UInt8
    /// The 48-bit initiator session ID.
    public var isid: UInt64
    /// 0 for a new session.
    public var tsih: UInt16
    public var initiatorTaskTag: UInt32
    public var connectionID: UInt16
    public var cmdSN: UInt32
    public var expStatSN: UInt32
    /// The data segment: `key=value\0` text (possibly a part of it when `continues`).
    public var data: [UInt8]

    public init(
        transit: Bool, continues: Bool = false, currentStage: LoginStage, nextStage: LoginStage,
        versionMax: UInt8 = 0, versionMin: UInt8 = 0, isid: UInt64, tsih: UInt16 = 0,
        initiatorTaskTag: UInt32 = 0, connectionID: UInt16 = 0, cmdSN: UInt32 = 0, expStatSN: UInt32 = 0,
        data: [UInt8] = []
    ) {
        self.transit = transit
        self.continues = continues
        self.currentStage = currentStage
        self.nextStage = nextStage
        self.versionMax = versionMax
        self.versionMin = versionMin
        self.isid = isid & 0xFFFF_FFFF_FFFF
        self.tsih = tsih
        self.initiatorTaskTag = initiatorTaskTag
        self.connectionID = connectionID
        self.cmdSN = cmdSN
        self.expStatSN = expStatSN
        self.data = data
    }

    /// A request whose T, C, CSG and NSG come from decoded flags.
    public init(
        flags: LoginFlags, versionMax: UInt8, versionMin: UInt8, isid: UInt64, tsih: UInt16,
        initiatorTaskTag: UInt32, connectionID: UInt16, cmdSN: UInt32, expStatSN: UInt32, data: [UInt8]
    ) {
        self.init(
            transit: flags.transit, continues: flags.continues, currentStage: flags.currentStage,
            nextStage: flags.nextStage, versionMax: versionMax, versionMin: versionMin, isid: isid, tsih: tsih,
            initiatorTaskTag: initiatorTaskTag, connectionID: connectionID, cmdSN: cmdSN,
            expStatSN: expStatSN, data: data)
    }
}

/// The fields of a Login Response PDU (RFC 7143 section 11.13), without the sequence
/// numbers, which the connection fills in.
public struct LoginResponse: Sendable, Equatable {
    public var transit: Bool
    public var continues: Bool
    public var currentStage: LoginStage
    /// Meaningful only when `transit` is true; `.securityNegotiation` (0) otherwise.
    public var nextStage: LoginStage
    /// Always 0: the only version this target speaks.
    public var versionMax: UInt8
    /// Always 0.
    public var versionActive: UInt8
    public var isid: UInt64
    public var tsih: UInt16
    public var initiatorTaskTag: UInt32
    public var statusClass: UInt8
    public var statusDetail: UInt8
    /// `key=value\0` text.
    public var data: [UInt8]

    public init(
        transit: Bool, continues: Bool, currentStage: LoginStage, nextStage: LoginStage,
        versionMax: UInt8 = 0, versionActive: UInt8 = 0, isid: UInt64, tsih: UInt16,
        initiatorTaskTag: UInt32, statusClass: UInt8, statusDetail: UInt8, data: [UInt8]
    ) {
        self.transit = transit
        self.continues = continues
        self.currentStage = currentStage
        self.nextStage = nextStage
        self.versionMax = versionMax
        self.versionActive = versionActive
        self.isid = isid
        self.tsih = tsih
        self.initiatorTaskTag = initiatorTaskTag
        self.statusClass = statusClass
        self.statusDetail = statusDetail
        self.data = data
    }

    /// The status as one value.
    public var status: LoginStatus { LoginStatus(statusClass: statusClass, statusDetail: statusDetail) }

    /// Byte 1 of the response PDU.
    public var flags: LoginFlags {
        LoginFlags(transit: transit, continues: continues, currentStage: currentStage, nextStage: nextStage)
    }

    /// The response that refuses `request` with `status` (T=0, C=0, no text). After sending
    /// it the target closes the connection (RFC 7143 section 11.13.5).
    public static func failure(to request: LoginRequest, status: LoginStatus) -> LoginResponse {
        LoginResponse(
            transit: false, continues: false, currentStage: request.currentStage, nextStage: .securityNegotiation,
            isid: request.isid, tsih: request.tsih, initiatorTaskTag: request.initiatorTaskTag,
            statusClass: status.statusClass, statusDetail: status.statusDetail, data: [])
    }
}
