// The volumes `blockd serve` serves, and the changes the admin API makes to them: create
// (and serve at once), assign a role, delete (stop serving, close, remove the file).
//
// Invariants:
// - A volume is in `entries` exactly while its target is in the iSCSI server's catalog and
//   the volume is open; it is added only once both hold and removed before either ends.
// - Changes to one name are serialized (`acquire`/`release`): two creates of one name never
//   both create, a delete never races a role change. Reads (`status`, `list`) never wait.
// - At most `maxWaiting` changes wait for a busy name at once; more are refused (503).
// - After `closeAll` began, no change starts (503), and it closes every volume only once
//   the changes under way have ended.

import BlockEngine
import BlockISCSI
import BlockSCSI
import Logging

#if canImport(Glibc)
import Glibc
#endif

public actor ServedVolumes {
    private struct Entry {
        let volume: Volume
        let targetName: String
    }

    private let configuration: ServeConfiguration
    /// How every volume is opened (memory budget, metrics), less its metrics label.
    private let options: VolumeOptions
    private let server: ISCSIServer
    private let replication: any ReplicationControl
    private let logger: Logger

    private var entries: [String: Entry] = [:]
    /// Names being changed, each with the changes waiting for it, first come first served.
    private var busy: [String: [CheckedContinuation<Void, Never>]] = [:]
    private var waiting = 0
    private var closing = false
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []

    static let maxWaiting = 256

    init(configuration: ServeConfiguration, options: VolumeOptions, server: ISCSIServer,
         replication: any ReplicationControl, logger: Logger) {
        self.configuration = configuration
        self.options = options
        self.server = server
        self.replication = replication
        self.logger = logger
    }

    // MARK: - Reads

    func list() -> [VolumeStatus] {
        entries.keys.sorted().map { status(of: $0, entries[$0]!) }
    }

    func status(name: String) throws(AdminError) -> VolumeStatus {
        guard let entry = entries[name] else { throw .notFound(volume: name) }
        return status(of: name, entry)
    }

    /// Every served volume, for the metrics scrape.
    func snapshot() -> [(name: String, volume: Volume)] {
        entries.keys.sorted().map { ($0, entries[$0]!.volume) }
    }

    private func status(of name: String, _ entry: Entry) -> VolumeStatus {
        VolumeStatus(name: name, target: entry.targetName, volume: entry.volume,
                     replicas: replication.replicaStatus(name: name))
    }

    // MARK: - Changes

    /// Serves a volume the daemon opened at start.
    func adopt(name: String, volume: Volume) throws {
        precondition(entries[name] == nil, "a volume is served once")
        try serve(name: name, volume: volume)
    }

    /// Creates the volume and serves it; an existing one with the same parameters is served
    /// as it is (`created` false), one with other parameters is a conflict.
    func create(_ request: CreateVolumeRequest) async throws(AdminError) -> (status: VolumeStatus, created: Bool) {
        let wanted = try request.configuration(defaults: configuration.newVolume)
        let name = request.name
        try await acquire(name)
        defer { release(name) }
        if let entry = entries[name] {
            try Self.requireSame(entry.volume, wanted, name: name)
            return (status(of: name, entry), false)
        }
        let path = configuration.volumePath(name)
        var options = self.options
        options.metricsLabel = name
        let volume: Volume
        var created = false
        if access(path, F_OK) == 0 {
            // A file the daemon does not serve: one that failed to open at start (the error
            // says why), or one made by `blockd volume create` since. Served if it matches.
            do {
                volume = try await Volume.open(at: path, options: options)
            } catch {
                throw .conflict("volume '\(name)' exists in the data directory but cannot be opened: \(error)")
            }
            do throws(AdminError) {
                try Self.requireSame(volume, wanted, name: name)
            } catch {
                try? await volume.close()
                throw error
            }
        } else {
            do throws(BlockError) {
                volume = try await Volume.create(at: path, configuration: wanted, options: options)
                created = true
            } catch {
                throw .engine(error, context: "cannot create volume '\(name)'")
            }
        }
        do {
            try serve(name: name, volume: volume)
        } catch {
            try? await volume.close()
            if created { _ = try? await Volume.remove(at: path) }
            throw AdminError(500, "cannot serve volume '\(name)': \(error)")
        }
        logger.info(created ? "created volume" : "serving existing volume",
                    metadata: ["volume": "\(name)", "size_bytes": "\(volume.sizeBytes)"])
        return (status(of: name, entries[name]!), created)
    }

    /// Assigns the role (persisted before it takes effect; the engine enforces the epoch
    /// rules), then tells replication.
    func assignRole(name: String, _ request: AssignRoleRequest) async throws(AdminError) -> VolumeStatus {
        let (role, replicas) = try request.checked()
        try await acquire(name)
        defer { release(name) }
        guard let entry = entries[name] else { throw .notFound(volume: name) }
        // A renewal (the same role and epoch, every few hundred ms from a control plane) is
        // logged at debug; a change at info.
        let renewal = entry.volume.role == role && entry.volume.epoch == request.epoch
        do throws(BlockError) {
            try await entry.volume.assignRole(role, epoch: request.epoch, leaseMs: request.leaseMs)
        } catch {
            throw .engine(error, context: "cannot assign \(role) at epoch \(request.epoch) to volume '\(name)'")
        }
        logger.log(level: renewal ? .debug : .info, "role assigned", metadata: ["volume": "\(name)", "role": "\(role)", "epoch": "\(request.epoch)"])
        do {
            try await replication.roleChanged(name: name, volume: entry.volume, role: role, replicas: replicas)
        } catch {
            logger.error("replication did not take the role", metadata: ["volume": "\(name)", "error": "\(error)"])
            throw AdminError(500, "volume '\(name)' is \(role) at epoch \(request.epoch), but replication failed: \(error)")
        }
        return status(of: name, entry)
    }

    /// Stops serving the volume (its sessions are closed once their commands ended), closes
    /// it and removes its files. A file the daemon does not serve is removed too, unless
    /// another process holds it (409).
    func delete(name: String) async throws(AdminError) {
        guard VolumeNames.isValid(name) else { throw .notFound(volume: name) }
        try await acquire(name)
        defer { release(name) }
        let path = configuration.volumePath(name)
        let served = entries[name] != nil
        if let entry = entries[name] {
            await server.removeTarget(named: entry.targetName)
            entries[name] = nil
            await replication.volumeClosing(name: name)
            do {
                try await entry.volume.close()
            } catch {
                // Its data is being deleted: a failed write-back does not stop that.
                logger.warning("deleted volume did not close cleanly", metadata: ["volume": "\(name)", "error": "\(error)"])
            }
        }
        let removed: Bool
        do throws(BlockError) {
            removed = try await Volume.remove(at: path)
        } catch {
            throw .engine(error, context: "cannot delete volume '\(name)'")
        }
        // Persistent reservations of the deleted volume (SCSILogicalUnit keeps them beside it).
        if unlink(path + ".pr") != 0 && errno != ENOENT {
            logger.warning("reservation file not removed", metadata: ["volume": "\(name)", "errno": "\(errno)"])
        }
        guard removed || served else { throw .notFound(volume: name) }
        logger.info("deleted volume", metadata: ["volume": "\(name)"])
    }

    /// At shutdown, after the iSCSI server stopped: waits for changes under way, then
    /// closes every volume.
    func closeAll() async {
        closing = true
        if !busy.isEmpty { await withCheckedContinuation { idleWaiters.append($0) } }
        for name in entries.keys.sorted() {
            let volume = entries.removeValue(forKey: name)!.volume
            await replication.volumeClosing(name: name)
            do {
                try await volume.close()
            } catch {
                logger.error("volume did not close cleanly", metadata: ["volume": "\(name)", "error": "\(error)"])
            }
        }
    }

    // MARK: - Helpers

    private func serve(name: String, volume: Volume) throws {
        let target = try configuration.makeTarget(name: name, volume: volume, logger: logger)
        server.addTarget(target)
        entries[name] = Entry(volume: volume, targetName: target.name)
        replication.volumeServed(name: name, volume: volume)
    }

    private static func requireSame(_ volume: Volume, _ wanted: VolumeConfiguration, name: String) throws(AdminError) {
        let have = (volume.sizeBytes, volume.blockSizeBytes, volume.durability, volume.replicaFactor)
        guard have == (wanted.sizeBytes, wanted.blockSizeBytes, wanted.durability, wanted.replicaFactor) else {
            throw .conflict("volume '\(name)' exists with other parameters: sizeBytes \(volume.sizeBytes), "
                + "blockSizeBytes \(volume.blockSizeBytes), durability \(volume.durability), "
                + "replicaFactor \(volume.replicaFactor)")
        }
    }

    /// Waits until no other change holds `name`, then holds it.
    private func acquire(_ name: String) async throws(AdminError) {
        guard !closing else { throw AdminError(503, "the daemon is shutting down") }
        guard busy[name] != nil else {
            busy[name] = []
            return
        }
        guard waiting < Self.maxWaiting else { throw AdminError(503, "too many changes wait for volume '\(name)'") }
        waiting += 1
        // `release` hands the name over: it stays busy, now held by this change.
        await withCheckedContinuation { busy[name, default: []].append($0) }
        waiting -= 1
    }

    private func release(_ name: String) {
        guard var waiters = busy[name] else { preconditionFailure("release of a name not held") }
        guard waiters.isEmpty else {
            let next = waiters.removeFirst()
            busy[name] = waiters
            next.resume()
            return
        }
        busy[name] = nil
        if busy.isEmpty {
            for waiter in idleWaiters { waiter.resume() }
            idleWaiters = []
        }
    }
}

extension ServeConfiguration {
    /// Where the volume called `name` lives.
    public func volumePath(_ name: String) -> String {
        dataDirectory + "/" + name + VolumeNames.fileExtension
    }

    /// The target serving `volume` as `name`: LUN 0, persistent reservations kept beside the
    /// volume file, the volume's CHAP settings.
    func makeTarget(name: String, volume: Volume, logger: Logger) throws -> ISCSITargetDefinition {
        let targetName = targetName(forVolume: name)
        var unitConfiguration = SCSILogicalUnitConfiguration()
        unitConfiguration.targetName = targetName
        unitConfiguration.reservationFilePath = volumePath(name) + ".pr"
        unitConfiguration.targetPortGroup = targetPortGroup
        unitConfiguration.relativeTargetPort = targetPortGroup
        unitConfiguration.logger = logger
        // QEMU 7.2 (Debian 12) asserts on 4096-byte LUNs that report LBPRZ; they still read
        // zeros from unmapped blocks, they just do not say so.
        unitConfiguration.reportsUnmappedReadZeros = volume.blockSizeBytes == 512
        let unit = try SCSILogicalUnit(volume: volume, configuration: unitConfiguration)
        return ISCSITargetDefinition(name: targetName, alias: name, logicalUnits: [0: unit],
                                     authentication: authentication(forVolume: name))
    }
}
