import ArgumentParser
import BlockEngine
import BlockISCSI
import BlockdCore
import BlockReplication
import Foundation
import Logging
import ServiceLifecycle

@main
struct Blockd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blockd",
        abstract: "Crash-safe block volumes in files, served to initiators.",
        subcommands: [ServeCommand.self, VolumeCommand.self])
}

struct VolumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume",
        abstract: "Create and examine volume files.",
        subcommands: [CreateVolume.self, InspectVolume.self, CheckVolume.self])
}

extension ByteSize: ExpressibleByArgument {
    public init?(argument: String) {
        guard let size = try? ByteSize(parsing: argument) else { return nil }
        self = size
    }
}

extension DurabilityMode: ExpressibleByArgument {
    public init?(argument: String) {
        guard let mode = try? DurabilityMode(parsing: argument) else { return nil }
        self = mode
    }

    public static var allValueStrings: [String] { allCases.map(\.description) }
}

struct CreateVolume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a new volume file.")

    @Argument(help: "The volume file to create (must not exist).")
    var path: String

    @Option(help: "Logical size, e.g. 10GiB (suffixes KiB, MiB, GiB, TiB).")
    var size: ByteSize

    @Option(help: "Block size in bytes: 512 or 4096.")
    var blockSize: Int = 4096

    @Option(help: "Write-ahead-log size.")
    var walSize: ByteSize = ByteSize(bytes: 64 << 20)

    @Option(help: "When a flush completes: best_effort, sync_all or sync_quorum.")
    var durability: DurabilityMode = .bestEffort

    @Option(help: "Replica factor: copies of the data including this one (sync_quorum needs 3 or more).")
    var replicas: Int = 1

    func validate() throws {
        _ = try volumeConfiguration()
    }

    func volumeConfiguration() throws -> VolumeConfiguration {
        do {
            return try VolumeCommands.checkedConfiguration(sizeBytes: size.bytes, blockSizeBytes: blockSize,
                                                           walSizeBytes: walSize.bytes, durability: durability,
                                                           replicaFactor: replicas)
        } catch {
            throw ValidationError(error.description)
        }
    }

    func run() async throws {
        try emit(await VolumeCommands.create(path: path, configuration: try volumeConfiguration()))
    }
}

struct InspectVolume: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect",
                                                    abstract: "Describe a volume file (reads only).")

    @Argument(help: "The volume file.")
    var path: String

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        try emit(VolumeCommands.inspect(path: path, json: json))
    }
}

struct CheckVolume: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify a volume file: exit 0 when it opens cleanly, 1 with the reason otherwise (reads only).")

    @Argument(help: "The volume file.")
    var path: String

    func run() throws {
        try emit(VolumeCommands.check(path: path))
    }
}

/// Prints a command's output and exits with its status.
func emit(_ output: CommandOutput) throws {
    if !output.standardOutput.isEmpty { print(output.standardOutput, terminator: "") }
    if !output.standardError.isEmpty { FileHandle.standardError.write(Data(output.standardError.utf8)) }
    if output.exitCode != 0 { throw ExitCode(output.exitCode) }
}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve every volume in a directory as an iSCSI target (one LUN each).",
        discussion: """
            Each DIR/NAME.blk becomes target PREFIX:NAME with LUN 0. A volume that fails to open \
            is reported and left untouched; the others are served. SIGINT or SIGTERM shut down \
            gracefully: sessions end, the WAL is written back, volumes close.
            """)

    @Option(name: .long, help: "Directory of NAME.blk volume files (created if missing).")
    var dataDir: String

    @Option(name: .long, help: "Address and port to listen on.")
    var portal: String = "127.0.0.1:3260"

    @Option(name: .long, help: "Create volume NAME of SIZE if it is missing (repeatable), e.g. demo:1GiB.")
    var create: [String] = []

    @Option(name: .long, help: "Target name prefix; targets are PREFIX:NAME.")
    var iqnPrefix: String = ServeConfiguration.defaultIQNPrefix

    @Option(name: .long, help: "Block size of created volumes: 512 or 4096.")
    var blockSize: Int = 4096

    @Option(name: .long, help: "WAL size of created volumes.")
    var walSize: ByteSize = ByteSize(bytes: 64 << 20)

    @Option(name: .long, help: """
        CHAP an initiator must pass: [VOLUME=]USER:SECRET, or USER:@FILE to read the secret from FILE \
        (repeatable; no VOLUME = every volume).
        """)
    var chap: [String] = []

    @Option(name: .long, help: "The target's CHAP identity for mutual CHAP: [VOLUME=]USER:SECRET or USER:@FILE (repeatable).")
    var mutualChap: [String] = []

    @Option(name: .long, help: "CHAP for discovery sessions: USER:SECRET or USER:@FILE.")
    var discoveryChap: String?

    @Option(name: .long, help: """
        Memory all volumes' write-ahead logs may hold together (records not yet written back); \
        writers wait while it is used up. At least 16MiB.
        """)
    var memoryLimit: ByteSize = ByteSize(bytes: ServeConfiguration.defaultMemoryLimitBytes)

    @Option(name: .long, help: ArgumentHelp(
        "Connections served at once, logged in or not; more are closed at accept.",
        valueName: "N"))
    var maxConnections: Int = ServeConfiguration.defaultMaxConnections

    @Option(name: .long, help: ArgumentHelp("Connections one remote address may have open at once.", valueName: "N"))
    var maxConnectionsPerHost: Int = ServeConfiguration.defaultMaxConnectionsPerHost

    @Option(name: .long, help: ArgumentHelp(
        "Address of the admin API (HTTP: volumes, roles, /metrics; docs/ADMIN.md).", valueName: "HOST:PORT"))
    var admin: String = "\(AdminConfiguration.defaultHost):\(AdminConfiguration.defaultPort)"

    @Option(name: .long, help: ArgumentHelp(
        "File holding the admin API's bearer token (mode 600); every request must then send it.", valueName: "FILE"))
    var adminTokenFile: String?

    @Option(name: .long, help: ArgumentHelp(
        "Address to accept primaries on (WAL shipping to this server's replica volumes; docs/REPLICATION.md).",
        valueName: "HOST:PORT"))
    var replicationListen: String?

    @Option(name: .long, help: ArgumentHelp(
        "File holding the replication secret shared by all servers (16 to 4096 bytes, mode 600). Without it, replication works on loopback only.",
        valueName: "FILE"))
    var replicationSecretFile: String?

    @Option(name: .long, help: ArgumentHelp(
        "This server's ALUA target port group and relative port (1-65535): different on every server holding copies of the same volumes.",
        valueName: "N"))
    var targetPortGroup: Int = 1

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        _ = try serveConfiguration()
        _ = try replicationOptions(logger: Logger(label: "blockd"))
        if let replicationListen { _ = try NetworkAddress.parse(replicationListen, what: "--replication-listen") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown log level '\(logLevel)'") }
    }

    func serveConfiguration() throws -> ServeConfiguration {
        do {
            let (host, port) = try NetworkAddress.parse(portal, what: "--portal")
            var configuration = ServeConfiguration(dataDirectory: dataDir, host: host, port: port, iqnPrefix: iqnPrefix)
            let (adminHost, adminPort) = try NetworkAddress.parse(admin, what: "--admin")
            configuration.admin = AdminConfiguration(host: adminHost, port: adminPort,
                                                     token: try adminTokenFile.map { (path) throws(ServeError) in
                                                         try AdminConfiguration.readToken(path: path)
                                                     })
            configuration.creates = try create.map { (text) throws(ServeError) in try VolumeNames.parseCreate(text) }
            configuration.newVolume = VolumeConfiguration(sizeBytes: 1 << 30, blockSizeBytes: blockSize,
                                                          walSizeBytes: walSize.bytes)
            try configuration.applyCHAPOptions(chap: chap, mutualChap: mutualChap, discoveryChap: discoveryChap)
            guard memoryLimit.bytes >= MemoryBudget.minimumLimitBytes else {
                throw ServeError.invalidArgument("--memory-limit must be at least 16MiB")
            }
            configuration.memoryLimitBytes = memoryLimit.bytes
            guard (1...65_535).contains(targetPortGroup) else {
                throw ServeError.invalidArgument("--target-port-group must be within 1...65535")
            }
            configuration.targetPortGroup = UInt16(targetPortGroup)

            try configuration.applyConnectionLimits(maxConnections: maxConnections,
                                                    maxConnectionsPerHost: maxConnectionsPerHost)
            for (name, size) in configuration.creates {
                var geometry = configuration.newVolume
                geometry.sizeBytes = size
                do {
                    try geometry.validate()
                } catch {
                    throw ServeError.invalidArgument("--create \(name): \(error)")
                }
            }
            return configuration
        } catch let error as ServeError {
            throw ValidationError(error.description)
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "blockd")
        let configuration = try serveConfiguration()
        if let token = configuration.admin?.token, token.utf8.count < AdminConfiguration.recommendedTokenBytes {
            logger.warning("the admin token is short", metadata: [
                "bytes": "\(token.utf8.count)", "recommended": "\(AdminConfiguration.recommendedTokenBytes)"])
        }
        // Once per process: the engine's and every library's swift-metrics go to the
        // registry GET /metrics renders.
        let metrics = DaemonMetrics()
        metrics.bootstrapSwiftMetrics()
        let replication = ShippingReplication(options: try replicationOptions(logger: logger))
        if let replicationListen {
            let (host, port) = try NetworkAddress.parse(replicationListen, what: "--replication-listen")
            do {
                let bound = try await replication.listen(host: host, port: port)
                logger.info("replication listening", metadata: ["address": "\(host):\(bound)"])
            } catch {
                logger.error("cannot listen for replication", metadata: ["address": "\(replicationListen)", "error": "\(error)"])
                throw ExitCode(1)
            }
        }
        let daemon = BlockDaemon(configuration: configuration, logger: logger, metrics: metrics, replication: replication)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [.init(service: daemon)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
            await replication.stop()
        } catch {
            await replication.stop()
            logger.error("blockd stopped with an error", metadata: ["error": "\(error)"])
            throw ExitCode(1)
        }
    }

    /// Shipping options: the shared secret from `--replication-secret-file`, or none (then
    /// the channel refuses every peer that is not loopback).
    func replicationOptions(logger: Logger) throws -> ReplicationOptions {
        guard let replicationSecretFile else {
            var options = ReplicationOptions(authentication: .none)
            options.logger = logger
            return options
        }
        do {
            var options = ReplicationOptions(authentication: .sharedSecret(try ReplicationSecret(contentsOfFile: replicationSecretFile)))
            options.logger = logger
            return options
        } catch {
            throw ValidationError("--replication-secret-file: \(error)")
        }
    }
}
