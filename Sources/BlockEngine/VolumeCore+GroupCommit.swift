// Group commit: one thread turns many flush requests into one fdatasync.
//
// Invariants:
// - durableLSN only grows, and only to a completed prefix that an fdatasync started after.
// - A waiter is resumed successfully only when durableLSN >= its LSN.
// - Requests that arrive while a sync runs share the next sync; a batch may wait at most
//   groupCommitMaxDelayMicros for company, and stops waiting at groupCommitMaxBatch.

/// A caller waiting for its records to be durable locally.
struct DurableWaiter {
    let lsn: UInt64
    let continuation: CheckedContinuation<Result<Void, BlockError>, Never>
}

struct CommitState {
    var waiters: [DurableWaiter] = []
    var stopping = false
    var failure: BlockError?
    var syncCount: UInt64 = 0
    var waitersServed: UInt64 = 0
    var largestBatch = 0
}

extension VolumeCore {
    /// Returns once every record up to `lsn` is durable on local storage.
    func waitLocallyDurable(_ lsn: UInt64) async throws(BlockError) {
        if lsn <= durableLSN.load(ordering: .acquiring) { return }
        let result: Result<Void, BlockError> = await withCheckedContinuation { continuation in
            let immediate: Result<Void, BlockError>? = commit.withLock { state in
                if let failure = state.failure { return .failure(failure) }
                if state.stopping { return .failure(.closed) }
                if lsn <= durableLSN.load(ordering: .acquiring) { return .success(()) }
                state.waiters.append(DurableWaiter(lsn: lsn, continuation: continuation))
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) } else { commit.broadcast() }
        }
        try result.get()
    }

    /// The group-commit thread's body; returns when asked to stop.
    func runGroupCommitLoop() {
        let delayNs = UInt64(options.groupCommitMaxDelayMicros) * 1000
        let maxBatch = options.groupCommitMaxBatch
        while true {
            let proceed = commit.withLock(waitingUntil: { !$0.waiters.isEmpty || $0.stopping }) { state, _ in
                !state.waiters.isEmpty && state.failure == nil
            }
            if !proceed {
                let (stopping, stranded) = commit.withLock { state in
                    defer { state.waiters.removeAll() }
                    return (state.stopping, state.waiters)
                }
                let error = failure ?? .closed
                for waiter in stranded { waiter.continuation.resume(returning: .failure(error)) }
                if stopping { break }
                continue
            }
            if delayNs > 0 {
                commit.withLock(waitingUntil: { $0.waiters.count >= maxBatch || $0.stopping }, timeoutNs: delayNs) { _, _ in }
            }
            let target = commit.withLock { state in state.waiters.map(\.lsn).max() ?? 0 }
            let outcome = syncThrough(target)
            let ready: [DurableWaiter] = commit.withLock { state in
                switch outcome {
                case let .success(durable):
                    let (done, pending) = partition(state.waiters) { $0.lsn <= durable }
                    state.waiters = pending
                    state.syncCount += 1
                    state.waitersServed += UInt64(done.count)
                    state.largestBatch = max(state.largestBatch, done.count)
                    return done
                case let .failure(error):
                    if state.failure == nil { state.failure = error }
                    defer { state.waiters.removeAll() }
                    return state.waiters
                }
            }
            if case .success = outcome {
                metrics.groupCommitSyncs.increment()
                metrics.groupCommitBatchSize.record(ready.count)
            }
            let result: Result<Void, BlockError> = outcome.map { _ in () }
            for waiter in ready { waiter.continuation.resume(returning: result) }
        }
        let leftovers = commit.withLock { state in
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in leftovers { waiter.continuation.resume(returning: .failure(.closed)) }
    }

    /// Waits for every record up to `target` to be written, syncs, and publishes how far
    /// durability now reaches.
    private func syncThrough(_ target: UInt64) -> Result<UInt64, BlockError> {
        switch waitForCompletion(atLeast: target) {
        case let .failure(error):
            return .failure(error)
        case let .success(completed):
            do {
                try file.sync()
            } catch {
                fail(error)
                return .failure(.failed(error.description))
            }
            publishDurable(completed)
            return .success(completed)
        }
    }

    /// Raises durableLSN to `lsn` (never lowers it): call only after a sync that started
    /// when every record up to `lsn` was complete.
    func publishDurable(_ lsn: UInt64) {
        var current = durableLSN.load(ordering: .relaxed)
        while current < lsn {
            let (exchanged, original) = durableLSN.compareExchange(expected: current, desired: lsn, ordering: .releasing)
            if exchanged { break }
            current = original
        }
    }

    func stopGroupCommit() {
        commit.withLock { $0.stopping = true }
        commit.broadcast()
    }
}

func partition<T>(_ items: [T], _ isFirst: (T) -> Bool) -> ([T], [T]) {
    var first: [T] = [], second: [T] = []
    for item in items {
        if isFirst(item) { first.append(item) } else { second.append(item) }
    }
    return (first, second)
}
