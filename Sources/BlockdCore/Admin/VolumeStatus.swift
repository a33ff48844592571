// The status object of the admin API (docs/ADMIN.md): what a served volume is, its role and
// where its log stands. Keys are camelCase, as `blockd volume inspect --json` has them.

import BlockEngine

/// One served volume, as `GET /v1/volumes/{name}` reports it.
public struct VolumeStatus: Sendable, Codable, Equatable {
    /// Log positions (docs/ENGINE.md, "The log for replication").
    public struct LogPositions: Sendable, Codable, Equatable {
        /// The last LSN handed out.
        public var head: UInt64
        /// Every record up to it is durable locally.
        public var durable: UInt64
        /// Every record up to it is in the data region.
        public var checkpoint: UInt64
        /// The highest LSN a flush or FUA write was acknowledged at since the volume opened.
        public var committed: UInt64
    }

    public var name: String
    /// The iSCSI target the volume is served as.
    public var target: String
    public var uuid: String
    public var sizeBytes: UInt64
    public var blockSizeBytes: Int
    /// `best_effort`, `sync_all` or `sync_quorum`.
    public var durability: String
    public var replicaFactor: Int
    /// `primary`, `replica`, `fenced` or `none` (see `reportedRole`).
    public var role: String
    public var epoch: UInt64
    public var lsn: LogPositions
    public var replicas: [ReplicaStatus]

    public init(name: String, target: String, volume: Volume, replicas: [ReplicaStatus]) {
        let positions = volume.logPositions
        self.name = name
        self.target = target
        uuid = volume.uuid.description
        sizeBytes = volume.sizeBytes
        blockSizeBytes = volume.blockSizeBytes
        durability = volume.durability.description
        replicaFactor = volume.replicaFactor
        role = Self.reportedRole(volume.role)
        epoch = volume.epoch
        lsn = LogPositions(head: positions.lastLSN, durable: positions.durableLSN,
                           checkpoint: positions.checkpointLSN, committed: positions.committedLSN)
        self.replicas = replicas
    }

    /// The role as the API names it. The engine's `standalone` (not replicated, accepts
    /// writes without an assignment) is reported as `primary`: to whoever assigns roles it
    /// is the copy that takes writes. The first assignment replaces it for good.
    public static func reportedRole(_ role: VolumeRole) -> String {
        role == .standalone ? VolumeRole.primary.description : role.description
    }
}
