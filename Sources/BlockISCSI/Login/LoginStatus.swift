// Login Response status (RFC 7143 section 11.13.5): a class and a detail byte.
//
// Invariants:
// - Class 0 is success and has detail 0; any other class ends the login and the target
//   closes the connection after sending the response.

/// A Login Response Status-Class and Status-Detail.
public struct LoginStatus: Error, Sendable, Equatable, Hashable, CustomStringConvertible {
    public var statusClass: UInt8
    public var statusDetail: UInt8

    public init(statusClass: UInt8, statusDetail: UInt8) {
        self.statusClass = statusClass
        self.statusDetail = statusDetail
    }

    /// The status as the 16-bit value libraries print (class << 8 | detail).
    public var code: UInt16 { UInt16(statusClass) << 8 | UInt16(statusDetail) }

    public var isSuccess: Bool { statusClass == 0 }

    public static let success = LoginStatus(statusClass: 0x00, statusDetail: 0x00)
    public static let targetMovedTemporarily = LoginStatus(statusClass: 0x01, statusDetail: 0x01)
    public static let targetMovedPermanently = LoginStatus(statusClass: 0x01, statusDetail: 0x02)
    /// Miscellaneous initiator error: malformed text, a protocol violation.
    public static let initiatorError = LoginStatus(statusClass: 0x02, statusDetail: 0x00)
    public static let authenticationFailure = LoginStatus(statusClass: 0x02, statusDetail: 0x01)
    public static let authorizationFailure = LoginStatus(statusClass: 0x02, statusDetail: 0x02)
    public static let targetNotFound = LoginStatus(statusClass: 0x02, statusDetail: 0x03)
    public static let targetRemoved = LoginStatus(statusClass: 0x02, statusDetail: 0x04)
    public static let unsupportedVersion = LoginStatus(statusClass: 0x02, statusDetail: 0x05)
    public static let tooManyConnections = LoginStatus(statusClass: 0x02, statusDetail: 0x06)
    public static let missingParameter = LoginStatus(statusClass: 0x02, statusDetail: 0x07)
    public static let cannotIncludeInSession = LoginStatus(statusClass: 0x02, statusDetail: 0x08)
    public static let sessionTypeNotSupported = LoginStatus(statusClass: 0x02, statusDetail: 0x09)
    public static let sessionDoesNotExist = LoginStatus(statusClass: 0x02, statusDetail: 0x0A)
    /// A request that is not a Login Request arrived during login.
    public static let invalidDuringLogin = LoginStatus(statusClass: 0x02, statusDetail: 0x0B)
    public static let targetError = LoginStatus(statusClass: 0x03, statusDetail: 0x00)
    public static let serviceUnavailable = LoginStatus(statusClass: 0x03, statusDetail: 0x01)
    public static let outOfResources = LoginStatus(statusClass: 0x03, statusDetail: 0x02)

    public var description: String {
        let hex = String(code, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}
