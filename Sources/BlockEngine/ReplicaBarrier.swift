// The barrier a flush asks of replicas. BlockReplication implements `ReplicaBarrier`; the
// engine owns the policy that turns the replicas' answers into success or a distinct error.

/// What the replicas answered to one barrier request.
public struct ReplicaBarrierResult: Sendable, Equatable {
    /// Replicas that confirmed every record up to the requested LSN is durable on them.
    public var durableReplicas: Int
    /// One line per replica that did not confirm, for the error message.
    public var failures: [String]

    public init(durableReplicas: Int, failures: [String] = []) {
        precondition(durableReplicas >= 0, "negative replica count")
        self.durableReplicas = durableReplicas
        self.failures = failures
    }
}

/// Makes records durable on the replicas. Implemented by replication; attached to a volume
/// with `Volume.attachBarrier(_:)`.
public protocol ReplicaBarrier: Sendable {
    /// Asks every replica whether all records with an LSN up to and including `lsn` are
    /// durable on it. Returns as soon as `required` replicas confirmed (a quorum must not wait
    /// for a replica that is gone), or once every replica has answered or timed out.
    func barrier(upTo lsn: UInt64, required: Int) async -> ReplicaBarrierResult
}

/// When a flush may complete given the replicas' answer (docs/ENGINE.md, "Durability modes
/// and replica barriers"), separate from any I/O so it can be tested alone.
enum BarrierPolicy {
    /// Whether a flush whose local part is durable may complete, given the mode, the volume's
    /// replica factor and the replicas' answer (`nil`: no barrier attached).
    static func evaluate(mode: DurabilityMode, replicaFactor: Int,
                         result: ReplicaBarrierResult?) -> BlockError? {
        let required = mode.requiredReplicas(replicaFactor: replicaFactor)
        guard required > 0 else { return nil }
        guard let result else {
            return mode == .syncQuorum
                ? .quorumLost(durableCopies: 1, requiredCopies: required + 1)
                : .barrierFailed("\(mode) needs \(required) replica(s) and none is attached")
        }
        if result.durableReplicas >= required { return nil }
        switch mode {
        case .bestEffort:
            return nil
        case .syncAll:
            let detail = result.failures.isEmpty ? "" : ": " + result.failures.joined(separator: "; ")
            return .barrierFailed("\(result.durableReplicas) of \(required) replicas durable\(detail)")
        case .syncQuorum:
            return .quorumLost(durableCopies: 1 + result.durableReplicas, requiredCopies: required + 1)
        }
    }
}
