// `blockd serve`'s replication: the ReplicationControl the admin API drives, built on
// BlockReplication. A volume assigned `primary` with replicas ships its log to them (one
// PrimaryReplication per volume); every served volume can be found by the replication
// listener (`--replication-listen`), which applies a primary's log to the ones that are
// replicas (docs/REPLICATION.md, "In blockd").
//
// Invariants:
// - At most one PrimaryReplication per volume; a role change away from primary, or a
//   different replica list, stops the old one before anything else starts.
// - The listener's lookup reads a registry under a lock and never waits (it runs on an
//   event loop); a volume leaves the registry before the daemon closes it.

import BlockEngine
import BlockReplication
import Logging
import NIOCore
import NIOPosix
import Synchronization

public final class ShippingReplication: ReplicationControl {
    private struct Shipping {
        let replicas: [String]
        let replication: PrimaryReplication
    }

    let options: ReplicationOptions
    let group: EventLoopGroup
    private let registry = Mutex<[String: Volume]>([:])
    private let shipping = Mutex<[String: Shipping]>([:])
    private let listener = Mutex<ReplicationListener?>(nil)

    public init(options: ReplicationOptions, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.options = options
        self.group = group
    }

    /// Starts the replication listener; returns the port it is bound to.
    public func listen(host: String, port: Int) async throws -> Int {
        let registry = self.registryLookup()
        let started = try await ReplicationListener(host: host, port: port, options: options, group: group,
                                                    lookup: registry)
        listener.withLock { $0 = started }
        return started.boundPort
    }

    private func registryLookup() -> ReplicationListener.VolumeLookup {
        { [weak self] name in self?.registry.withLock { $0[name] } }
    }

    /// Stops shipping for every volume and closes the listener.
    public func stop() async {
        let all = shipping.withLock { state in defer { state.removeAll() }; return Array(state.values) }
        for entry in all { await entry.replication.stop() }
        await listener.withLock { $0 }?.close()
    }

    public func volumeServed(name: String, volume: Volume) {
        registry.withLock { $0[name] = volume }
    }

    public func roleChanged(name: String, volume: Volume, role: VolumeRole, replicas: [String]) async throws {
        registry.withLock { $0[name] = volume }
        let current = shipping.withLock { $0[name] }
        if role == .primary, current?.replicas == replicas { return }
        if let current {
            shipping.withLock { $0[name] = nil }
            await current.replication.stop()
        }
        guard role == .primary, !replicas.isEmpty else { return }
        // Checked by the admin API (AssignRoleRequest.checked) with the same parser.
        let addresses = try replicas.map { text throws(ServeError) -> ReplicaAddress in
            let (host, port) = try NetworkAddress.parse(text, what: "a replica")
            return ReplicaAddress(host: host, port: port)
        }
        let replication = PrimaryReplication(volume: volume, volumeName: name, replicas: addresses, options: options,
                                             group: group)
        shipping.withLock { $0[name] = Shipping(replicas: replicas, replication: replication) }
    }

    public func volumeClosing(name: String) async {
        registry.withLock { $0[name] = nil }
        let current = shipping.withLock { state in defer { state[name] = nil }; return state[name] }
        await current?.replication.stop()
    }

    public func replicaStatus(name: String) -> [ReplicaStatus] {
        guard let current = shipping.withLock({ $0[name] }) else { return [] }
        return current.replication.replicaStatus.map {
            ReplicaStatus(address: $0.address, state: $0.state.rawValue, durableLSN: $0.durableLSN,
                          shippedBytes: $0.shippedBytes)
        }
    }
}
