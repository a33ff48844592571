// A volume's role in replication and the write gate it implies (docs/ENGINE.md, "Roles,
// epochs and the write gate"). A plain value kept inside the sequencer lock, so that the
// gate is checked in the same critical section that hands out an LSN: once a role change
// or a lease expiry is seen there, no later record is reserved.
//
// Invariants:
// - The epoch only grows; a role change to primary or replica needs a higher epoch than the
//   volume has, except renewing the same role at the same epoch (docs/ENGINE.md).
// - Role and epoch are persisted in the superblock before the gate opens with them; a
//   volume opened from disk keeps its role but accepts no writes as primary until it is
//   assigned again in this session (a restarted old primary cannot write before whoever
//   assigns roles has spoken to it).
// - Only `standalone` and an assigned `primary` with an unexpired lease accept writes.

/// What a volume is to replication. Persisted in the superblock (one byte, docs/FORMAT.md).
public enum VolumeRole: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Not replicated (replica factor 1, no assignment): accepts writes, needs no lease.
    case standalone = 0
    /// Accepts writes while assigned in this session and its lease runs.
    case primary = 1
    /// Takes records from a primary only; refuses writes from initiators.
    case replica = 2
    /// Was primary or replica and learned of a newer epoch, or was demoted: no writes until
    /// assigned again with a higher epoch.
    case fenced = 3
    /// Assigned no role (a copy waiting for one): no writes.
    case none = 4

    public var description: String {
        switch self {
        case .standalone: "standalone"
        case .primary: "primary"
        case .replica: "replica"
        case .fenced: "fenced"
        case .none: "none"
        }
    }
}

/// The write gate: role, epoch and lease as the sequencer sees them.
struct WriteGate: Sendable, Equatable {
    var role: VolumeRole
    var epoch: UInt64
    /// The role was assigned (or renewed) in this session; false after open.
    var assigned: Bool
    /// Monotonic deadline of a primary's lease; nil: no lease (it does not run out).
    var leaseDeadlineNs: UInt64?

    /// The gate of a volume just opened with a persisted role and epoch.
    init(persistedRole role: VolumeRole, epoch: UInt64) {
        self.role = role
        self.epoch = epoch
        assigned = false
        leaseDeadlineNs = nil
    }

    /// Why a write may not be reserved now, or nil when it may.
    func writeRefusal(nowNs: UInt64) -> BlockError? {
        switch role {
        case .standalone:
            return nil
        case .primary:
            guard assigned else {
                return .leaseExpired("primary at epoch \(epoch) since before this open: waiting to be assigned again")
            }
            if let deadline = leaseDeadlineNs, nowNs >= deadline {
                return .leaseExpired("the primary's lease at epoch \(epoch) ran out without renewal")
            }
            return nil
        case .replica:
            return .notPrimary("a replica at epoch \(epoch) takes writes from its primary only")
        case .none:
            return .notPrimary("no role assigned at epoch \(epoch)")
        case .fenced:
            return .fenced("fenced at epoch \(epoch): a newer epoch exists")
        }
    }

    /// Whether an assignment of `newRole` at `newEpoch` may replace this one; the error
    /// says why not. Renewing the same role at the same epoch is allowed; any other change
    /// to primary, replica or standalone needs a higher epoch (a promotion at an equal
    /// epoch could make two primaries of one epoch); fencing and `none` may keep the epoch.
    func assignmentRefusal(role newRole: VolumeRole, epoch newEpoch: UInt64) -> BlockError? {
        if newEpoch < epoch { return .staleEpoch(current: epoch, offered: newEpoch) }
        if newEpoch > epoch || newRole == role { return nil }
        switch newRole {
        case .fenced, .none:
            return nil
        case .standalone, .primary, .replica:
            return .staleEpoch(current: epoch, offered: newEpoch)
        }
    }
}
