// Role and epoch changes of an open volume (VolumeRole.swift has the rules).
//
// Order of effects: a change that closes the gate (demotion, fencing) closes it in memory
// first, so no write or flush is acknowledged from that moment, then persists; a change
// that opens it (promotion, a higher epoch) persists first, so a crash never leaves a
// volume that acknowledged writes in a role or epoch its superblock does not have. The
// epoch records carry changes under the sequencer lock, so record epochs never go
// backwards in LSN order, whatever writes run meanwhile.

import DequeModule

extension VolumeCore {
    /// The longest lease (a year): far from the monotonic clock's overflow.
    static let maxLeaseMs = 365 * 24 * 3_600_000

    /// Takes `role` at `epoch` (blocking: may write the superblock; call it off the
    /// cooperative pool). The same role at the same epoch renews the lease without a write.
    func assign(role: VolumeRole, epoch newEpoch: UInt64, leaseMs: Int?) throws(BlockError) {
        if let leaseMs, leaseMs <= 0 || leaseMs > Self.maxLeaseMs {
            throw .invalidArgument("lease \(leaseMs) ms is outside 1...\(Self.maxLeaseMs)")
        }
        if role != .primary, leaseMs != nil { throw .invalidArgument("only a primary holds a lease") }
        try assignment.withLock { (_: inout Void) throws(BlockError) in
            if let failure { throw failure }
            let current = sequencer.withLock { $0.gate }
            if let refusal = current.assignmentRefusal(role: role, epoch: newEpoch) { throw refusal }
            let changes = current.role != role || current.epoch != newEpoch
            let closes = role != .primary && role != .standalone
            if changes && closes {
                apply(role: role, epoch: current.epoch, leaseMs: nil)
            }
            if changes {
                _ = try superblocks.update { superblock in
                    superblock.role = role
                    superblock.epoch = newEpoch
                }
            }
            apply(role: role, epoch: newEpoch, leaseMs: leaseMs)
        }
    }

    /// The gate as the sequencer has it now.
    var gate: WriteGate { sequencer.withLock { $0.gate } }

    /// Why a write or flush may not be acknowledged now, or nil.
    func acknowledgementRefusal() -> BlockError? {
        sequencer.withLock { Self.gateRefusal($0.gate) }
    }

    /// Sets the gate and the ring's epoch together; writers waiting for ring space that the
    /// gate no longer admits fail at once.
    private func apply(role: VolumeRole, epoch newEpoch: UInt64, leaseMs: Int?) {
        let refused: [(SpaceWaiter, BlockError)] = sequencer.withLock { state in
            state.gate.role = role
            state.gate.epoch = newEpoch
            state.gate.assigned = true
            state.gate.leaseDeadlineNs = leaseMs.map { monotonicNowNs() + UInt64($0) * 1_000_000 }
            state.ring.adopt(epoch: newEpoch)
            epoch.store(newEpoch, ordering: .releasing)
            let verdicts = state.spaceWaiters.map { Self.admissionRefusal(state, $0.replicated) }
            var refused: [(SpaceWaiter, BlockError)] = []
            var admitted = Deque<SpaceWaiter>()
            for (waiter, verdict) in zip(state.spaceWaiters, verdicts) {
                if let verdict { refused.append((waiter, verdict)) } else { admitted.append(waiter) }
            }
            state.spaceWaiters = admitted
            return refused
        }
        for (waiter, refusal) in refused { waiter.continuation.resume(returning: .failure(refusal)) }
    }
}
