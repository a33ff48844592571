// What an iSCSI server serves: targets (an IQN each) with their logical units and
// authentication, the portal, and the limits sessions negotiate against.

import BlockSCSI
import Logging
import NIOCore

/// One iSCSI target: a name, its logical units by LUN, and who may log in.
public struct ISCSITargetDefinition: Sendable {
    /// The iSCSI qualified name, e.g. `iqn.2026-11.org.example:disk0`.
    public var name: String
    public var alias: String?
    /// Logical units by LUN number.
    public var logicalUnits: [UInt64: SCSILogicalUnit]
    public var authentication: LoginAuthentication

    public init(name: String, alias: String? = nil, logicalUnits: [UInt64: SCSILogicalUnit],
                authentication: LoginAuthentication = LoginAuthentication()) {
        self.name = name
        self.alias = alias
        self.logicalUnits = logicalUnits
        self.authentication = authentication
    }
}

/// How the server listens and behaves.
public struct ISCSIServerConfiguration: Sendable {
    /// Address to listen on; 127.0.0.1 keeps the target private to this machine.
    public var host: String
    public var port: Int
    public var portalGroupTag: UInt16
    /// What this target offers in login negotiation.
    public var limits: TargetLimits
    public var discoveryAuthentication: LoginAuthentication
    /// Commands a session may have in flight (the CmdSN window).
    public var commandWindow: Int
    /// Largest data transfer one command may ask for; larger ones get CHECK CONDITION.
    public var maxTransferBytes: Int
    /// Solicited write data a connection may have outstanding in R2Ts at once.
    public var maxSolicitedBytesPerConnection: Int
    /// After this long without traffic the target pings with a NOP-In.
    public var nopInIntervalMs: Int64
    /// A ping unanswered this long closes the connection.
    public var nopInTimeoutMs: Int64
    /// A login that has not completed after this long is dropped.
    public var loginTimeoutMs: Int64
    public var logger: Logger

    public init(host: String = "127.0.0.1", port: Int = 3260, portalGroupTag: UInt16 = 1,
                limits: TargetLimits = TargetLimits(), discoveryAuthentication: LoginAuthentication = LoginAuthentication(),
                commandWindow: Int = 128, maxTransferBytes: Int = 16 << 20,
                maxSolicitedBytesPerConnection: Int = 64 << 20, nopInIntervalMs: Int64 = 5_000,
                nopInTimeoutMs: Int64 = 30_000, loginTimeoutMs: Int64 = 30_000,
                logger: Logger = Logger(label: "BlockISCSI")) {
        self.host = host
        self.port = port
        self.portalGroupTag = portalGroupTag
        self.limits = limits
        self.discoveryAuthentication = discoveryAuthentication
        self.commandWindow = commandWindow
        self.maxTransferBytes = maxTransferBytes
        self.maxSolicitedBytesPerConnection = maxSolicitedBytesPerConnection
        self.nopInIntervalMs = nopInIntervalMs
        self.nopInTimeoutMs = nopInTimeoutMs
        self.loginTimeoutMs = loginTimeoutMs
        self.logger = logger
    }
}
