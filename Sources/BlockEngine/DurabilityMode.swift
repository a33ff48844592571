// Durability modes (docs/ENGINE.md, "Durability modes and replica barriers"). The mode is
// persisted in the superblock and decides when a flush (SYNCHRONIZE CACHE, FUA write) may
// complete. RF counts copies including the primary. A strict mode never quietly acts as
// local-only.

/// When a flush is allowed to complete.
public enum DurabilityMode: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// The local WAL is durable; replicas receive the log asynchronously.
    case bestEffort = 0
    /// The local WAL and every configured replica (RF - 1 of them) are durable.
    case syncAll = 1
    /// The local WAL plus enough replicas for a majority of RF are durable; needs RF >= 3.
    case syncQuorum = 2

    /// The canonical name: `best_effort`, `sync_all` or `sync_quorum`.
    public var description: String {
        switch self {
        case .bestEffort: return "best_effort"
        case .syncAll: return "sync_all"
        case .syncQuorum: return "sync_quorum"
        }
    }

    /// Parses a canonical name (also accepts `-` for `_`, any case).
    public init(parsing text: String) throws(BlockError) {
        let normalized = String(text.lowercased().map { $0 == "-" ? "_" : $0 })
        guard let mode = DurabilityMode.allCases.first(where: { $0.description == normalized }) else {
            let names = DurabilityMode.allCases.map(\.description).joined(separator: ", ")
            throw .invalidArgument("unknown durability mode '\(text)' (expected one of \(names))")
        }
        self = mode
    }

    /// True for the modes that fail a flush rather than degrade to local-only.
    public var isStrict: Bool { self != .bestEffort }

    /// The largest replica factor the engine accepts.
    public static let maxReplicaFactor = 9

    /// Checks that this mode makes sense with `replicaFactor` copies (including the primary).
    public func validate(replicaFactor: Int) throws(BlockError) {
        guard (1...Self.maxReplicaFactor).contains(replicaFactor) else {
            throw .invalidArgument("replica factor \(replicaFactor) is outside 1...\(Self.maxReplicaFactor)")
        }
        if self == .syncQuorum && replicaFactor < 3 {
            throw .invalidArgument("sync_quorum needs a replica factor of at least 3, got \(replicaFactor)")
        }
    }

    /// Replicas (not counting the primary) that must acknowledge a flush, and that must
    /// exist when the volume is created: 0, RF - 1, or RF / 2.
    public func requiredReplicas(replicaFactor: Int) -> Int {
        switch self {
        case .bestEffort: return 0
        case .syncAll: return max(replicaFactor - 1, 0)
        case .syncQuorum: return replicaFactor / 2
        }
    }
}
