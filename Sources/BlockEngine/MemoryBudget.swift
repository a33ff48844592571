// A memory budget shared by the volumes of one server: the resident part of their WAL
// rings (the pages that hold log records not yet written back) is charged to it, so the
// memory a server holds follows the writes in flight, not the number of volumes.
//
// Invariants:
// - usedBytes is the sum of what the registered volumes hold (each charges before it
//   touches ring memory and credits after it gave the pages back to the kernel).
// - A charge succeeds while usedBytes + bytes <= limitBytes, or when nothing is held at all
//   (so one write larger than the whole budget still goes through, alone: no deadlock).
// - A volume whose writers wait for the budget is told when any volume credits (FIFO by
//   the order in which volumes started waiting); waiting is bounded by the volume's
//   `walFullTimeoutMs`.
// - Under pressure the volumes holding the most are asked to write back (at most
//   `maxPromptedHolders` per failed charge), which is what frees the budget.

import Synchronization

/// Bounds the WAL ring memory of every volume opened with it (`VolumeOptions.memoryBudget`).
public final class MemoryBudget: Sendable {
    /// The most memory the volumes' rings may hold together.
    public let limitBytes: UInt64

    private struct State {
        var usedBytes: UInt64 = 0
        var peakBytes: UInt64 = 0
        /// Bytes held per volume, by the volume's identity.
        var holders: [ObjectIdentifier: Holder] = [:]
        /// Volumes with writers waiting for the budget, in the order they started waiting.
        var waiting: [ObjectIdentifier] = []
        var failedCharges: UInt64 = 0
    }

    private struct Holder {
        weak var core: VolumeCore?
        var heldBytes: UInt64
    }

    private let state = Mutex(State())

    /// The smallest limit accepted: a few records of the largest size a write can have.
    public static let minimumLimitBytes: UInt64 = 16 << 20
    static let maxPromptedHolders = 8

    /// A budget of `limitBytes` (at least `minimumLimitBytes`).
    public init(limitBytes: UInt64) throws(BlockError) {
        guard limitBytes >= Self.minimumLimitBytes else {
            throw .invalidArgument("a memory budget of \(limitBytes) bytes is below the minimum of \(Self.minimumLimitBytes)")
        }
        self.limitBytes = limitBytes
    }

    /// Bytes held now by every volume together.
    public var usedBytes: UInt64 { state.withLock { $0.usedBytes } }
    /// The most held at once since the budget was created.
    public var peakBytes: UInt64 { state.withLock { $0.peakBytes } }
    /// Half the budget is used, or a volume waits for it: volumes then give back ring pages
    /// after every write-back cycle, not only when they go idle.
    var isUnderPressure: Bool {
        state.withLock { $0.usedBytes >= limitBytes / 2 || !$0.waiting.isEmpty }
    }
    /// Charges refused (a writer then waited).
    public var failedCharges: UInt64 { state.withLock { $0.failedCharges } }

    func register(_ core: VolumeCore) {
        state.withLock { $0.holders[ObjectIdentifier(core)] = Holder(core: core, heldBytes: 0) }
    }

    /// Forgets a closing volume and gives back what it held.
    func unregister(_ core: VolumeCore) {
        let id = ObjectIdentifier(core)
        let held = state.withLock { state -> UInt64 in
            let held = state.holders.removeValue(forKey: id)?.heldBytes ?? 0
            state.waiting.removeAll { $0 == id }
            return held
        }
        if held > 0 { credit(held, from: id) }
    }

    /// Takes `bytes` for `core` if the budget has room (or holds nothing), or always when
    /// `force`; otherwise records that `core` waits, to be told at the next credit. Takes
    /// only the budget's own lock (callers hold their sequencer lock).
    func tryCharge(_ bytes: UInt64, for core: VolumeCore, force: Bool = false) -> Bool {
        guard bytes > 0 else { return true }
        let id = ObjectIdentifier(core)
        return state.withLock { state -> Bool in
            guard force || state.usedBytes == 0 || state.usedBytes + bytes <= limitBytes else {
                state.failedCharges += 1
                if !state.waiting.contains(id) { state.waiting.append(id) }
                return false
            }
            state.usedBytes += bytes
            state.peakBytes = max(state.peakBytes, state.usedBytes)
            state.holders[id, default: Holder(core: core, heldBytes: 0)].heldBytes += bytes
            return true
        }
    }

    /// The volumes holding the most, for a writer that found the budget full to prompt
    /// (outside every lock).
    func largestHolders(excluding core: VolumeCore) -> [VolumeCore] {
        let id = ObjectIdentifier(core)
        return state.withLock { state in
            state.holders.filter { $0.key != id && $0.value.heldBytes > 0 }
                .sorted { $0.value.heldBytes > $1.value.heldBytes }
                .prefix(Self.maxPromptedHolders)
                .compactMap { $0.value.core }
        }
    }

    /// Gives back `bytes` that `core` held, and tells the volumes waiting for the budget.
    func credit(_ bytes: UInt64, for core: VolumeCore) {
        credit(bytes, from: ObjectIdentifier(core))
    }

    private func credit(_ bytes: UInt64, from id: ObjectIdentifier) {
        guard bytes > 0 else { return }
        let waiting: [VolumeCore] = state.withLock { state in
            precondition(state.usedBytes >= bytes, "the memory budget credited more than it charged")
            state.usedBytes -= bytes
            if var holder = state.holders[id] {
                holder.heldBytes -= min(holder.heldBytes, bytes)
                state.holders[id] = holder
            }
            let cores = state.waiting.compactMap { state.holders[$0]?.core }
            state.waiting.removeAll()
            return cores
        }
        // Each retries its waiters in order and waits again (re-registering) if still short.
        for core in waiting { core.retrySpaceWaiters() }
    }
}
