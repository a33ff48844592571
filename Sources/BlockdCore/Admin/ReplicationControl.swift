// The seam between the daemon and replication. The admin API assigns roles and reports
// replicas; shipping the log (docs/ENGINE.md, "The log for replication") implements
// `ReplicationControl`. Until then `NoReplication` stands in: it ships nothing and reports
// no replicas.
//
// Invariants (kept by `ServedVolumes`):
// - `roleChanged` is called only after `Volume.assignRole` succeeded: the role is persisted
//   and in force when replication hears of it.
// - `volumeClosing` is called before the daemon closes a volume (delete, shutdown); after
//   it returns, the implementation no longer uses that `Volume`.
// - Calls for one volume never overlap (they run under the volume's name lock); calls for
//   different volumes may.

import BlockEngine

/// What replication knows about one replica of a volume (`GET /v1/volumes/{name}`).
public struct ReplicaStatus: Sendable, Codable, Equatable {
    /// `HOST:PORT`, as the role assignment named it.
    public var address: String
    /// Where the replica stands: `inSync`, `catchingUp`, `rebuilding` or `disconnected`.
    public var state: String
    /// The highest LSN the replica confirmed durable.
    public var durableLSN: UInt64
    /// Record and rebuild bytes sent to the replica since this primary started shipping to
    /// it (what catch-ups and rebuilds moved).
    public var shippedBytes: UInt64

    public init(address: String, state: String, durableLSN: UInt64, shippedBytes: UInt64 = 0) {
        self.address = address
        self.state = state
        self.durableLSN = durableLSN
        self.shippedBytes = shippedBytes
    }
}

/// What the daemon tells replication, and asks it.
public protocol ReplicationControl: Sendable {
    /// `volume`, served as `name`, took `role` at `volume.epoch`. For a primary, `replicas`
    /// are its replicas' `HOST:PORT` addresses (checked for syntax; empty for other roles).
    /// Called after every successful assignment, lease renewals included (the replica list
    /// may change with one). A throw is reported to the API's caller (500); the role stays
    /// assigned, and the caller may assign it again.
    func roleChanged(name: String, volume: Volume, role: VolumeRole, replicas: [String]) async throws

    /// The daemon serves `volume` as `name` (opened at start, or created): replication may
    /// apply a primary's records to it when it is a replica.
    func volumeServed(name: String, volume: Volume)

    /// The volume is about to be closed (deleted, or the daemon stops): stop using it.
    func volumeClosing(name: String) async

    /// The volume's replicas now. Read for every status request and metrics scrape: must
    /// answer from memory, without waiting.
    func replicaStatus(name: String) -> [ReplicaStatus]
}

/// No replication: roles are only recorded in the engine, nothing is shipped.
public struct NoReplication: ReplicationControl {
    public init() {}

    public func roleChanged(name: String, volume: Volume, role: VolumeRole, replicas: [String]) async throws {}

    public func volumeServed(name: String, volume: Volume) {}

    public func volumeClosing(name: String) async {}

    public func replicaStatus(name: String) -> [ReplicaStatus] { [] }
}
