// `blockd serve`: opens every volume in the data directory, serves each as an iSCSI target
// with one LUN, and shuts down gracefully (sessions closed, WAL written back, volumes
// closed) on SIGINT/SIGTERM through swift-service-lifecycle.

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
    private let started: AsyncStream<Int>.Continuation
    /// Yields the bound port once the portal listens (tests use port 0).
    public let boundPorts: AsyncStream<Int>
    private let served = Mutex<[String]>([])

    /// The target names served, once the portal listens.
    public var servedTargets: [String] { served.withLock { $0 } }

    public init(configuration: ServeConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
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
        let openFileLimit = ProcessLimits.raiseOpenFileLimit()
        logger.debug("open file limit", metadata: ["limit": "\(openFileLimit)"])
        let volumes = try await openVolumes()
        var targets: [ISCSITargetDefinition] = []
        for (name, volume) in volumes {
            do {
                targets.append(try makeTarget(name: name, volume: volume))
            } catch {
                logger.error("cannot serve volume", metadata: ["volume": "\(name)", "error": "\(error)"])
            }
        }
        let server = ISCSIServer(configuration: configuration.serverConfiguration(logger: logger), targets: targets)
        do {
            let address = try await server.start()
            logger.info("serving", metadata: ["targets": "\(targets.map(\.name))", "portal": "\(address)"])
            served.withLock { $0 = targets.map(\.name) }
            started.yield(address.port ?? configuration.port)
        } catch {
            await closeAll(volumes)
            throw ServeError.startFailed("cannot listen on \(configuration.host):\(configuration.port): \(error)")
        }
        started.finish()
        try? await gracefulShutdown()
        logger.info("shutting down")
        await server.shutdown()
        await closeAll(volumes)
        logger.info("stopped")
    }

    /// Opens every `*.blk` file; a volume that fails is reported and left untouched.
    func openVolumes() async throws -> [(String, Volume)] {
        let directory = configuration.dataDirectory
        // Synced: a data directory lost to a power cut would take its volumes with it.
        try DurableDirectory.create(atPath: directory)
        // Commands run on the connections' event loops, which must not block in a device
        // flush: durability waits stay with each volume's log writer thread.
        var options = VolumeOptions(logger: logger, callerMaySync: false)
        // One budget for every served volume: the server's ring memory follows the writes in
        // flight, not the number of volumes.
        options.memoryBudget = try MemoryBudget(limitBytes: configuration.memoryLimitBytes)
        for (name, sizeBytes) in configuration.creates {
            let path = volumePath(name)
            guard !FileManager.default.fileExists(atPath: path) else { continue }
            var geometry = configuration.newVolume
            geometry.sizeBytes = sizeBytes
            do {
                let volume = try await Volume.create(at: path, configuration: geometry, options: options)
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
                volumes.append((name, try await Volume.open(at: volumePath(name), options: volumeOptions)))
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

    func makeTarget(name: String, volume: Volume) throws -> ISCSITargetDefinition {
        let targetName = configuration.targetName(forVolume: name)
        var unitConfiguration = SCSILogicalUnitConfiguration()
        unitConfiguration.targetName = targetName
        unitConfiguration.reservationFilePath = volumePath(name) + ".pr"
        unitConfiguration.logger = logger
        // QEMU 7.2 (Debian 12) asserts on 4096-byte LUNs that report LBPRZ; they still read
        // zeros from unmapped blocks, they just do not say so.
        unitConfiguration.reportsUnmappedReadZeros = volume.blockSizeBytes == 512
        let unit = try SCSILogicalUnit(volume: volume, configuration: unitConfiguration)
        return ISCSITargetDefinition(name: targetName, alias: name, logicalUnits: [0: unit],
                                     authentication: configuration.authentication(forVolume: name))
    }

    func volumePath(_ name: String) -> String {
        configuration.dataDirectory + "/" + name + VolumeNames.fileExtension
    }

    private func closeAll(_ volumes: [(String, Volume)]) async {
        for (name, volume) in volumes {
            do {
                try await volume.close()
            } catch {
                logger.error("volume did not close cleanly", metadata: ["volume": "\(name)", "error": "\(error)"])
            }
        }
    }
}
