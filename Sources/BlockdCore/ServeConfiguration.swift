// What `blockd serve` serves: every volume in a data directory as its own iSCSI target.

import BlockEngine
import BlockISCSI
import Logging

/// Settings of `blockd serve`.
public struct ServeConfiguration: Sendable {
    /// Directory holding `NAME.blk` volume files.
    public var dataDirectory: String
    public var host: String
    public var port: Int
    /// Target names are `PREFIX:NAME`.
    public var iqnPrefix: String
    /// Volumes to create when missing: name and size.
    public var creates: [(name: String, sizeBytes: UInt64)]
    /// Geometry of volumes `creates` makes.
    public var newVolume: VolumeConfiguration
    /// CHAP the initiator must pass, per volume name (`*` for every target). Checked at
    /// start-up by `checkCHAP`.
    public var initiatorCHAP: [String: CHAPCredentials]
    /// The target's own CHAP identity for mutual CHAP, per volume name (`*` for every target).
    public var targetCHAP: [String: CHAPCredentials]
    public var discoveryCHAP: CHAPCredentials?
    /// The memory every served volume's WAL ring may hold together (records not yet written
    /// back); writers wait while it is used up.
    public var memoryLimitBytes: UInt64 = ServeConfiguration.defaultMemoryLimitBytes
    /// This server's ALUA target port group, also its relative target port: every server
    /// that holds copies of the same volumes needs its own (docs/ISCSI.md, ALUA).
    public var targetPortGroup: UInt16 = 1

    public static let defaultMemoryLimitBytes: UInt64 = 1 << 30
    /// Connections the portal holds at once, logged in or not; more are closed at accept.
    public var maxConnections: Int
    /// Connections one remote address may hold at once.
    public var maxConnectionsPerHost: Int
    /// The admin API (docs/ADMIN.md); nil: none. `blockd serve` always has one
    /// (`--admin`, default `AdminConfiguration.defaultHost:defaultPort`).
    public var admin: AdminConfiguration?

    public init(dataDirectory: String, host: String = "127.0.0.1", port: Int = 3260,
                iqnPrefix: String = ServeConfiguration.defaultIQNPrefix,
                creates: [(name: String, sizeBytes: UInt64)] = [],
                newVolume: VolumeConfiguration = VolumeConfiguration(sizeBytes: 1 << 30),
                initiatorCHAP: [String: CHAPCredentials] = [:], targetCHAP: [String: CHAPCredentials] = [:],
                discoveryCHAP: CHAPCredentials? = nil,
                maxConnections: Int = ServeConfiguration.defaultMaxConnections,
                maxConnectionsPerHost: Int = ServeConfiguration.defaultMaxConnectionsPerHost) {
        self.dataDirectory = dataDirectory
        self.host = host
        self.port = port
        self.iqnPrefix = iqnPrefix
        self.creates = creates
        self.newVolume = newVolume
        self.initiatorCHAP = initiatorCHAP
        self.targetCHAP = targetCHAP
        self.discoveryCHAP = discoveryCHAP
        self.maxConnections = maxConnections
        self.maxConnectionsPerHost = maxConnectionsPerHost
    }

    public static let defaultIQNPrefix = "iqn.2026-11.org.swift-block"
    public static let defaultMaxConnections = ISCSIServerConfiguration().maxConnections
    public static let defaultMaxConnectionsPerHost = ISCSIServerConfiguration().maxConnectionsPerHost

    /// `--max-connections` and `--max-connections-per-host`: each at least 1 when given.
    public mutating func applyConnectionLimits(maxConnections: Int?, maxConnectionsPerHost: Int?) throws(ServeError) {
        if let maxConnections {
            guard maxConnections >= 1 else { throw .invalidArgument("--max-connections must be at least 1") }
            self.maxConnections = maxConnections
        }
        if let maxConnectionsPerHost {
            guard maxConnectionsPerHost >= 1 else { throw .invalidArgument("--max-connections-per-host must be at least 1") }
            self.maxConnectionsPerHost = maxConnectionsPerHost
        }
    }

    /// What the iSCSI server is started with: the portal, discovery CHAP and the connection
    /// limits; everything else keeps the server's defaults.
    public func serverConfiguration(logger: Logger) -> ISCSIServerConfiguration {
        var server = ISCSIServerConfiguration(host: host, port: port, maxConnections: maxConnections,
                                              maxConnectionsPerHost: maxConnectionsPerHost, logger: logger)
        if let discoveryCHAP {
            server.discoveryAuthentication = LoginAuthentication(initiatorCredentials: discoveryCHAP)
        }
        return server
    }

    /// The target name for the volume called `name`.
    public func targetName(forVolume name: String) -> String {
        "\(iqnPrefix):\(VolumeNames.iqnComponent(name))"
    }

    func authentication(forVolume name: String) -> LoginAuthentication {
        LoginAuthentication(initiatorCredentials: initiatorCHAP[name] ?? initiatorCHAP["*"],
                            targetCredentials: targetCHAP[name] ?? targetCHAP["*"])
    }
}

/// Volume names as they appear in files and target names.
public enum VolumeNames {
    static let fileExtension = ".blk"

    /// Letters, digits, `-`, `_` and `.`, 1 to 64 characters, not starting with `.`.
    public static func isValid(_ name: String) -> Bool {
        guard (1...64).contains(name.count), !name.hasPrefix(".") else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    /// An iSCSI name component: lower case, `_` becomes `-` (RFC 3720 allows `-`, `.`, `:`).
    static func iqnComponent(_ name: String) -> String {
        String(name.lowercased().map { $0 == "_" ? "-" : $0 })
    }

    /// `NAME:SIZE` from the command line.
    public static func parseCreate(_ text: String) throws(ServeError) -> (name: String, sizeBytes: UInt64) {
        guard let colon = text.lastIndex(of: ":") else {
            throw .invalidArgument("--create expects NAME:SIZE, got '\(text)'")
        }
        let name = String(text[..<colon])
        guard isValid(name) else {
            throw .invalidArgument("invalid volume name '\(name)' (letters, digits, '-', '_', '.'; at most 64)")
        }
        do {
            return (name, try ByteSize(parsing: String(text[text.index(after: colon)...])).bytes)
        } catch {
            throw .invalidArgument(error.description)
        }
    }
}

/// Errors of `blockd serve`.
public enum ServeError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalidArgument(String)
    case startFailed(String)

    public var description: String {
        switch self {
        case let .invalidArgument(message): return message
        case let .startFailed(message): return message
        }
    }
}
