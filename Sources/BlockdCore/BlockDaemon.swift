// `blockd serve`: opens every volume in the data directory, serves each as an iSCSI target
// with one LUN, runs the admin API (docs/ADMIN.md) when configured, and shuts down
// gracefully (admin API first, then sessions closed, WAL written back, volumes closed) on
// SIGINT/SIGTERM through swift-service-lifecycle.

import BlockEngine
import BlockISCSI
import BlockSCSI
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The serving daemon, a `Service` for a `ServiceGroup`.
public final class BlockDaemon: Service, Sendable {
    public let configuration: ServeConfiguration
    let logger: Logger
    /// The registry `GET /metrics` renders; served volumes report into it.
    public let metrics: DaemonMetrics
    let replication: any ReplicationControl
    private let started: AsyncStream<Int>.Continuation
    /// Yields the bound iSCSI port once the portal (and the admin API, when configured)
    /// listens (tests use port 0).
    public let boundPorts: AsyncStream<Int>
    private let running = Mutex<(server: ISCSIServer?, adminPort: Int?)>((nil, nil))

    /// The target names served now.
    public var servedTargets: [String] { running.withLock { $0.server?.targets.map(\.name) ?? [] } }

    /// The admin API's bound port, once it listens.
    public var adminPort: Int? { running.withLock { $0.adminPort } }

    public init(configuration: ServeConfiguration, logger: Logger, metrics: DaemonMetrics = DaemonMetrics(),
                replication: any ReplicationControl = NoReplication()) {
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        self.replication = replication
        (boundPorts, started) = AsyncStream.makeStream(of: Int.self)
    }

    public func run() async throws {
        // A start that fails ends `boundPorts` too, so nobody waits for a port forever.
        defer { started.finish() }
        // Before anything is created or opened: a CHAP setting that would not be applied
        // leaves its target open, so it stops the start.
        for warning in try configuration.checkCHAP(volumeNames: volumeNamesToServe()) {
            logger.warning("weak CHAP setting", metadata: ["setting": "\(warning)"])
        }
        if let admin = configuration.admin, admin.token == nil, !admin.isLoopback {
            logger.warning("the admin API listens beyond this machine without a token (--admin-token-file)",
                           metadata: ["address": "\(admin.host):\(admin.port)"])
        }
        let openFileLimit = ProcessLimits.raiseOpenFileLimit()
        logger.debug("open file limit", metadata: ["limit": "\(openFileLimit)"])
        let options = try volumeOptions()
        let server = ISCSIServer(configuration: configuration.serverConfiguration(logger: logger), targets: [])
        let volumes = ServedVolumes(configuration: configuration, options: options, server: server,
                                   replication: replication, logger: logger)
        for (name, volume) in try await openVolumes(options: options) {
            do {
                try await volumes.adopt(name: name, volume: volume)
            } catch {
                logger.error("cannot serve volume", metadata: ["volume": "\(name)", "error": "\(error)"])
                try? await volume.close()
            }
        }
        let iscsiPort: Int
        do {
            let address = try await server.start()
            logger.info("serving", metadata: ["targets": "\(server.targets.map(\.name))", "portal": "\(address)"])
            running.withLock { $0.server = server }
            iscsiPort = address.port ?? configuration.port
        } catch {
            await volumes.closeAll()
            throw ServeError.startFailed("cannot listen on \(configuration.host):\(configuration.port): \(error)")
        }
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            if let admin = configuration.admin {
                do {
                    try await startAdmin(admin, volumes: volumes, tasks: &tasks)
                } catch {
                    tasks.cancelAll()
                    await server.shutdown()
                    await volumes.closeAll()
                    throw ServeError.startFailed("cannot serve the admin API on \(admin.host):\(admin.port): \(error)")
                }
            }
            started.yield(iscsiPort)
            started.finish()
            try? await gracefulShutdown()
            logger.info("shutting down")
            // The admin API stops with the same graceful shutdown; no change starts after it.
            while await tasks.nextResult() != nil {}
        }
        await server.shutdown()
        await volumes.closeAll()
        logger.info("stopped")
    }

    /// Starts the admin API as a task of `tasks` and returns once it listens; throws when it
    /// cannot (the port is taken, say).
    private func startAdmin(_ admin: AdminConfiguration, volumes: ServedVolumes,
                            tasks: inout ThrowingTaskGroup<Void, any Error>) async throws {
        let (listening, listeningContinuation) = AsyncStream.makeStream(of: Int.self)
        let responder = AdminResponder(volumes: volumes, metrics: metrics, replication: replication,
                                       configuration: admin, logger: logger)
        let application = AdminServer.application(responder: responder, configuration: admin, logger: logger) { port in
            listeningContinuation.yield(port)
            listeningContinuation.finish()
        }
        let failure = Mutex<(any Error)?>(nil)
        tasks.addTask {
            // Ends `listening` if the server stops before it listens, with its error kept.
            defer { listeningContinuation.finish() }
            do {
                try await application.run()
            } catch {
                failure.withLock { $0 = error }
                // Before it listened, the start fails with this error; after, serving goes on.
                if self.adminPort != nil { self.logger.error("the admin API stopped", metadata: ["error": "\(error)"]) }
                throw error
            }
        }
        var ports = listening.makeAsyncIterator()
        guard let port = await ports.next() else {
            throw failure.withLock { $0 } ?? ServeError.startFailed("the admin server stopped before it listened")
        }
        running.withLock { $0.adminPort = port }
        logger.info("admin API listening", metadata: ["address": "\(admin.host):\(port)",
                                                      "authentication": "\(admin.token == nil ? "none" : "bearer token")"])
    }

    /// How served volumes are opened: event-loop callers, one memory budget, this daemon's
    /// metrics.
    func volumeOptions() throws -> VolumeOptions {
        // Commands run on the connections' event loops, which must not block in a device
        // flush: durability waits stay with each volume's log writer thread.
        var options = VolumeOptions(logger: logger, callerMaySync: false)
        // One budget for every served volume: the server's ring memory follows the writes in
        // flight, not the number of volumes.
        options.memoryBudget = try MemoryBudget(limitBytes: configuration.memoryLimitBytes)
        options.metricsFactory = metrics.factory
        return options
    }

    /// Opens every `*.blk` file; a volume that fails is reported and left untouched.
    func openVolumes(options: VolumeOptions) async throws -> [(String, Volume)] {
        let directory = configuration.dataDirectory
        // Synced: a data directory lost to a power cut would take its volumes with it.
        try DurableDirectory.create(atPath: directory)
        for (name, sizeBytes) in configuration.creates {
            let path = configuration.volumePath(name)
            guard !FileManager.default.fileExists(atPath: path) else { continue }
            var geometry = configuration.newVolume
            geometry.sizeBytes = sizeBytes
            var createOptions = options
            createOptions.metricsLabel = name
            do {
                let volume = try await Volume.create(at: path, configuration: geometry, options: createOptions)
                try await volume.close()
                logger.info("created volume", metadata: ["volume": "\(name)", "size_bytes": "\(sizeBytes)"])
            } catch {
                logger.error("cannot create volume", metadata: ["volume": "\(name)", "error": "\(error)"])
            }
        }
        let files = (try FileManager.default.contentsOfDirectory(atPath: directory))
            .filter { $0.hasSuffix(VolumeNames.fileExtension) }.sorted()
        var volumes: [(String, Volume)] = []
        for file in files {
            let name = String(file.dropLast(VolumeNames.fileExtension.count))
            guard VolumeNames.isValid(name) else {
                logger.error("skipping volume with an unusable name", metadata: ["file": "\(file)"])
                continue
            }
            var volumeOptions = options
            volumeOptions.metricsLabel = name
            do {
                volumes.append((name, try await Volume.open(at: configuration.volumePath(name), options: volumeOptions)))
            } catch {
                logger.error("volume failed to open; left untouched", metadata: ["volume": "\(name)", "error": "\(error)"])
            }
        }
        return volumes
    }

    /// The volumes `run` would serve: the valid names of the volume files in the data
    /// directory (which may not exist yet) and the volumes `--create` makes.
    func volumeNamesToServe() -> Set<String> {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: configuration.dataDirectory)) ?? []
        let existing = files.filter { $0.hasSuffix(VolumeNames.fileExtension) }
            .map { String($0.dropLast(VolumeNames.fileExtension.count)) }
        return Set(existing.filter(VolumeNames.isValid) + configuration.creates.map(\.name))
    }
}
