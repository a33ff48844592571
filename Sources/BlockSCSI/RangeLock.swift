// An asynchronous lock over LBA ranges: every command that changes blocks holds the range it
// changes, so COMPARE AND WRITE (read, compare, write) is atomic against every other write to
// an overlapping range, from any session.
//
// Invariants:
// - No two granted ranges overlap.
// - Waiters are served first come, first served among overlapping ranges: a range is granted
//   only when it overlaps neither a granted range nor an earlier waiter, so no writer starves.
// - Holders plus waiters never exceed `capacity`; `acquire` refuses beyond it (the command then
//   answers TASK SET FULL) instead of queueing without bound.
// - Continuations are resumed exactly once, and never while the state lock is held by code
//   that could re-enter it.

import Synchronization

final class RangeLock: Sendable {
    /// Proof of a granted range; give it back with `release`.
    struct Grant: Sendable {
        fileprivate let id: UInt64
        fileprivate let range: Range<UInt64>
    }

    private struct Waiter {
        let id: UInt64
        let range: Range<UInt64>
        let continuation: CheckedContinuation<UInt64?, Never>
    }

    private struct State {
        var nextID: UInt64 = 0
        var granted: [UInt64: Range<UInt64>] = [:]
        var waiters: [Waiter] = []
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        precondition(capacity > 0, "a range lock needs room for at least one holder")
        self.capacity = capacity
    }

    /// Waits until `range` (non-empty) overlaps no granted range and no earlier waiter, then
    /// grants it. Returns nil without waiting when `capacity` holders and waiters exist.
    func acquire(_ range: Range<UInt64>) async -> Grant? {
        precondition(!range.isEmpty, "lock a non-empty range")
        // One critical section decides and, if needed, enqueues: no window in which a later
        // caller could overtake. A continuation resumed before the closure returns does not
        // suspend the task.
        let id: UInt64? = await withCheckedContinuation { (continuation: CheckedContinuation<UInt64?, Never>) in
            let immediate: UInt64?? = state.withLock { state in
                guard state.granted.count + state.waiters.count < capacity else { return .some(nil) }
                let id = state.nextID
                state.nextID += 1
                if Self.isFree(range, in: state, beforeWaiter: state.waiters.count) {
                    state.granted[id] = range
                    return .some(id)
                }
                state.waiters.append(Waiter(id: id, range: range, continuation: continuation))
                return .none
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
        return id.map { Grant(id: $0, range: range) }
    }

    /// Grants `range` (non-empty) if that needs no waiting: it overlaps no granted range and
    /// no waiter, and `capacity` allows. Nil otherwise.
    func tryAcquire(_ range: Range<UInt64>) -> Grant? {
        precondition(!range.isEmpty, "lock a non-empty range")
        let id: UInt64? = state.withLock { state in
            guard state.granted.count + state.waiters.count < capacity,
                  Self.isFree(range, in: state, beforeWaiter: state.waiters.count) else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.granted[id] = range
            return id
        }
        return id.map { Grant(id: $0, range: range) }
    }

    /// Returns a granted range and wakes the waiters that can now proceed.
    func release(_ grant: Grant) {
        let ready: [(CheckedContinuation<UInt64?, Never>, UInt64)] = state.withLock { state in
            let removed = state.granted.removeValue(forKey: grant.id)
            precondition(removed == grant.range, "release of a range that is not held")
            var ready: [(CheckedContinuation<UInt64?, Never>, UInt64)] = []
            var index = 0
            while index < state.waiters.count {
                let waiter = state.waiters[index]
                if Self.isFree(waiter.range, in: state, beforeWaiter: index) {
                    state.granted[waiter.id] = waiter.range
                    state.waiters.remove(at: index)
                    ready.append((waiter.continuation, waiter.id))
                } else {
                    index += 1
                }
            }
            assert(Self.grantsAreDisjoint(state), "granted ranges overlap")
            return ready
        }
        for (continuation, id) in ready { continuation.resume(returning: id) }
    }

    /// Runs `body` while holding `range`; an empty range needs no lock. Returns nil when the
    /// lock is full.
    func withRange<T>(_ range: Range<UInt64>, _ body: () async -> T) async -> T? {
        guard !range.isEmpty else { return await body() }
        guard let grant = await acquire(range) else { return nil }
        let result = await body()
        release(grant)
        return result
    }

    /// Holders and waiters right now (for tests and metrics).
    var occupancy: Int { state.withLock { $0.granted.count + $0.waiters.count } }

    private static func isFree(_ range: Range<UInt64>, in state: State, beforeWaiter limit: Int) -> Bool {
        for held in state.granted.values where held.overlaps(range) { return false }
        for waiter in state.waiters[..<limit] where waiter.range.overlaps(range) { return false }
        return true
    }

    private static func grantsAreDisjoint(_ state: State) -> Bool {
        let ranges = state.granted.values.sorted { $0.lowerBound < $1.lowerBound }
        return zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound <= $1.lowerBound }
    }
}
