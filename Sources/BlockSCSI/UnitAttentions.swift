// Unit attention conditions per I_T nexus (SAM-5 5.14, SPC-4 5.14).
//
// Invariants:
// - A nexus is known from its first command until `forget` (session ended); its first
//   command finds POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (29/00) pending.
// - A reset condition (ASC 29h) replaces everything pending for that nexus: it tells the
//   initiator to re-read all state anyway (SAM-5 5.14: higher-precedence conditions may clear
//   lower ones).
// - Per nexus at most `maxPendingPerNexus` distinct conditions are queued, oldest reported
//   first; at most `maxNexuses` nexuses are tracked. Beyond either bound new conditions are
//   dropped (and the caller logs it): bounded memory over a perfect report.
// - A value type, guarded by the logical unit's lock.

struct UnitAttentionTable: Sendable {
    static let maxPendingPerNexus = 16
    static let maxNexuses = 4096

    private var pending: [ITNexus: [SenseCode]] = [:]

    /// Registers `nexus` if it is new. Returns false when the table is full and the nexus is
    /// not tracked (it then never sees unit attentions).
    mutating func observe(_ nexus: ITNexus) -> Bool {
        if pending[nexus] != nil { return true }
        guard pending.count < Self.maxNexuses else { return false }
        pending[nexus] = [.powerOnResetOccurred]
        return true
    }

    /// Ends tracking of `nexus` (I_T nexus loss): a later command starts it again with 29/00.
    mutating func forget(_ nexus: ITNexus) {
        pending[nexus] = nil
    }

    /// Every tracked nexus.
    var nexuses: [ITNexus] { Array(pending.keys) }

    /// Queues `code` for every tracked nexus for which `include` is true.
    mutating func establish(_ code: SenseCode, where include: (ITNexus) -> Bool) {
        precondition(code.key == .unitAttention, "only unit attentions are queued")
        for nexus in pending.keys where include(nexus) {
            establish(code, for: nexus)
        }
    }

    /// Queues `code` for `nexus` if it is tracked.
    mutating func establish(_ code: SenseCode, for nexus: ITNexus) {
        precondition(code.key == .unitAttention, "only unit attentions are queued")
        guard var queue = pending[nexus] else { return }
        if code.asc == 0x29 {
            queue = [code]
        } else if !queue.contains(code) && queue.count < Self.maxPendingPerNexus {
            queue.append(code)
        }
        pending[nexus] = queue
        assert(queue.count <= Self.maxPendingPerNexus, "unit attention queue over its bound")
    }

    /// Removes and returns the oldest condition pending for `nexus`.
    mutating func takeNext(for nexus: ITNexus) -> SenseCode? {
        guard var queue = pending[nexus], !queue.isEmpty else { return nil }
        let first = queue.removeFirst()
        pending[nexus] = queue
        return first
    }

    /// The conditions pending for `nexus`, oldest first (for tests).
    func peek(_ nexus: ITNexus) -> [SenseCode] { pending[nexus] ?? [] }
}
