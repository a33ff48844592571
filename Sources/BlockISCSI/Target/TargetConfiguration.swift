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
    /// Immediate SCSI commands a connection may have in flight besides the window; more are
    /// rejected (Reject 0x06, RFC 7143 section 11.17.1).
    public var maxImmediateCommands: Int
    /// Largest data transfer one command may ask for; larger ones get CHECK CONDITION.
    public var maxTransferBytes: Int
    /// Solicited write data a connection may have outstanding in R2Ts at once.
    public var maxSolicitedBytesPerConnection: Int
    /// Read data a connection's executing commands may produce before it stops taking
    /// commands (one command may go over it).
    public var maxDataInBytesPerConnection: Int
    /// Answers a connection may queue for a peer that does not read before it stops taking
    /// input (the channel's high write watermark).
    public var maxQueuedResponseBytesPerConnection: Int
    /// After this long without traffic the target pings with a NOP-In.
    public var nopInIntervalMs: Int64
    /// A ping unanswered this long closes the connection.
    public var nopInTimeoutMs: Int64
    /// A login that has not completed after this long is dropped.
    public var loginTimeoutMs: Int64
    /// A PDU whose bytes stop arriving halfway is dropped (with its connection) after this long.
    public var pduTimeoutMs: Int64
    /// Connections the server accepts at once, logged in or not; more are closed at accept.
    public var maxConnections: Int
    /// Connections one remote address may have open at once.
    public var maxConnectionsPerHost: Int
    /// Sessions one initiator name may have at once.
    public var maxSessionsPerInitiator: Int
    /// Discovery sessions at once (kept apart, so discovery cannot fill the session table).
    public var maxDiscoverySessions: Int
    /// Normal sessions that logged in without authentication at once.
    public var maxUnauthenticatedSessions: Int
    /// Normal sessions that authenticated (CHAP) at once.
    public var maxAuthenticatedSessions: Int
    public var logger: Logger

    public init(host: String = "127.0.0.1", port: Int = 3260, portalGroupTag: UInt16 = 1,
                limits: TargetLimits = TargetLimits(), discoveryAuthentication: LoginAuthentication = LoginAuthentication(),
                commandWindow: Int = 128, maxImmediateCommands: Int = 8, maxTransferBytes: Int = 16 << 20,
                maxSolicitedBytesPerConnection: Int = 32 << 20, maxDataInBytesPerConnection: Int = 32 << 20,
                maxQueuedResponseBytesPerConnection: Int = 4 << 20, nopInIntervalMs: Int64 = 5_000,
                nopInTimeoutMs: Int64 = 30_000, loginTimeoutMs: Int64 = 30_000, pduTimeoutMs: Int64 = 30_000,
                maxConnections: Int = 256, maxConnectionsPerHost: Int = 64, maxSessionsPerInitiator: Int = 64,
                maxDiscoverySessions: Int = 64, maxUnauthenticatedSessions: Int = 1024,
                maxAuthenticatedSessions: Int = 2048, logger: Logger = Logger(label: "BlockISCSI")) {
        self.host = host
        self.port = port
        self.portalGroupTag = portalGroupTag
        self.limits = limits
        self.discoveryAuthentication = discoveryAuthentication
        self.commandWindow = commandWindow
        self.maxImmediateCommands = maxImmediateCommands
        self.maxTransferBytes = maxTransferBytes
        self.maxSolicitedBytesPerConnection = maxSolicitedBytesPerConnection
        self.maxDataInBytesPerConnection = maxDataInBytesPerConnection
        self.maxQueuedResponseBytesPerConnection = maxQueuedResponseBytesPerConnection
        self.nopInIntervalMs = nopInIntervalMs
        self.nopInTimeoutMs = nopInTimeoutMs
        self.loginTimeoutMs = loginTimeoutMs
        self.pduTimeoutMs = pduTimeoutMs
        self.maxConnections = maxConnections
        self.maxConnectionsPerHost = maxConnectionsPerHost
        self.maxSessionsPerInitiator = maxSessionsPerInitiator
        self.maxDiscoverySessions = maxDiscoverySessions
        self.maxUnauthenticatedSessions = maxUnauthenticatedSessions
        self.maxAuthenticatedSessions = maxAuthenticatedSessions
        self.logger = logger
    }
}
