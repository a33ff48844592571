// The log writer: one thread writes the ring's completed records from memory (WALMirror) to
// the file, and turns many flush requests into one fdatasync (group commit).
//
// Each round it takes what waits, writes the ring range [written, completed end) rounded
// out to 4 KiB blocks with O_DIRECT, and syncs only when someone waits for durability.
// Writing records soon after they complete (not only on flush) overlaps the device write
// with the caller's next step (an iSCSI flush arrives a round trip later and pays only the
// device flush) and keeps unwritten log small; a round that served no flush is followed by
// one for new records only eagerWriteDelayNs later, so a stream of writes goes out in
// larger writes.
//
// Invariants (the ones a few comparisons per round can check are preconditions, kept in
// release builds):
// - durableLSN only grows (publishDurable), and only to a completed prefix that was written
//   before an fdatasync that started after the write, or by one RWF_DSYNC write when every
//   earlier write of the log was already flushed (with a FUA-capable device that write
//   flushes nothing else; the crash simulator models exactly that).
// - flushedPosition <= writtenPosition <= the completed end, and both only grow
//   (writeLogRound); one round runs at a time (roundInProgress).
// - A waiter is resumed successfully only when durableLSN >= its LSN.
// - The block holding the completed end is rewritten by the next round; its earlier bytes
//   are unchanged in the ring, so a torn rewrite cannot damage a durable record. Its bytes
//   beyond the completed end may be half-copied records: recovery cuts them as a torn tail.
// - Requests that arrive during a round share the next round; a round may wait at most
//   groupCommitMaxDelayMicros for company, and stops waiting at groupCommitMaxBatch.

/// A caller waiting for its records to be durable locally.
struct DurableWaiter {
    let lsn: UInt64
    let continuation: CheckedContinuation<Result<Void, BlockError>, Never>
}

struct CommitState {
    var waiters: [DurableWaiter] = []
    /// The highest LSN a blocked thread (the write-back) needs durable.
    var blockingTargetLSN: UInt64 = 0
    /// Records completed since the log writer last looked.
    var unwrittenRecords = false
    /// The log writer sleeps and must be woken for new records (once its eager-write delay
    /// passed; see `takeLogWork`).
    var writerIdle = false
    /// Before this time (monotonic clock) new records alone do not start a round: set after
    /// a round that served no flush (see `takeLogWork`).
    var eagerWriteNotBeforeNs: UInt64 = 0
    /// Ring position up to which the file holds the log (owned by the log writer).
    var writtenPosition: UInt64
    /// Ring position up to which the file's log is on stable storage (a cache flush or a
    /// sync covered it); at most `writtenPosition`.
    var flushedPosition: UInt64
    /// A round (the thread's, or a caller's leading one) is writing the log: one at a time.
    var roundInProgress = false
    var stopping = false
    var stopped = false
    var failure: BlockError?
    var syncCount: UInt64 = 0
    var waitersServed: UInt64 = 0
    var largestBatch = 0
}

extension VolumeCore {
    /// Returns once every record up to `lsn` is durable on local storage.
    func waitLocallyDurable(_ lsn: UInt64) async throws(BlockError) {
        if lsn <= durableLSN.load(ordering: .acquiring) { return }
        if try leadRoundIfIdle(lsn) { return }
        let result: Result<Void, BlockError> = await withCheckedContinuation { continuation in
            let immediate: Result<Void, BlockError>? = commit.withLock { state in
                if let failure = state.failure { return .failure(failure) }
                if state.stopping { return .failure(.closed) }
                if lsn <= durableLSN.load(ordering: .acquiring) { return .success(()) }
                state.waiters.append(DurableWaiter(lsn: lsn, continuation: continuation))
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) } else { wakeLogWriter() }
        }
        try result.get()
    }

    /// When no round runs and nobody else waits, the caller writes and syncs the log itself:
    /// a lone synchronous writer then pays neither the wake-up of the log writer thread nor
    /// the resumption of its task from that thread (about 15-20 µs each here). Under load
    /// someone already waits or a round runs, so the caller queues and batching is intact.
    /// Returns whether it led (and `lsn` is durable).
    private func leadRoundIfIdle(_ lsn: UInt64) throws(BlockError) -> Bool {
        guard options.callerMaySync else { return false }
        // Never block on records that are not complete yet: one may belong to a task that
        // waits for a thread (a writer given ring space while suspended), and this caller
        // holds one.
        guard sequencer.withLock({ $0.ring.completedLSN }) >= lsn else { return false }
        let lead = commit.withLock { state in
            guard state.failure == nil, !state.stopping, !state.roundInProgress, state.waiters.isEmpty else { return false }
            state.roundInProgress = true
            return true
        }
        guard lead else { return false }
        let outcome = writeLogRound(syncThrough: lsn)
        commit.withLock { state in
            state.roundInProgress = false
            // Nobody else queued for durability during the round: a lone synchronous writer.
            state.eagerWriteNotBeforeNs = afterSyncedRoundNs(loneWriter: state.waiters.isEmpty)
        }
        switch outcome {
        case let .success(synced):
            // Waiters that queued meanwhile share this sync if it covers them; the rest are
            // the log writer's again.
            resumeDurableWaiters(synced: synced, leader: true)
            return true
        case let .failure(error):
            fail(error)
            throw failure ?? error
        }
    }

    /// Blocks the calling (background) thread until every record up to `lsn` is durable.
    func waitLocallyDurableBlocking(_ lsn: UInt64) throws(BlockError) {
        if lsn <= durableLSN.load(ordering: .acquiring) { return }
        commit.withLock { $0.blockingTargetLSN = max($0.blockingTargetLSN, lsn) }
        wakeLogWriter()
        let outcome: BlockError? = commit.withLock(waitingUntil: { state in
            lsn <= durableLSN.load(ordering: .acquiring) || state.failure != nil || state.stopped
        }) { state, _ in
            if lsn <= durableLSN.load(ordering: .acquiring) { return nil }
            return state.failure ?? .closed
        }
        if let outcome { throw outcome }
    }

    /// Tells the log writer that records completed (called by every append).
    func noteRecordsCompleted() {
        let wake = commit.withLock { state in
            state.unwrittenRecords = true
            return state.writerIdle && monotonicNowNs() >= state.eagerWriteNotBeforeNs
        }
        if wake { wakeLogWriter() }
    }

    /// One turn of the log writer, run by the runtime's log-writer pool: a round when there
    /// is a reason for one, otherwise when to look again. Ends (`.finished`) after the
    /// round that wrote and synced every completed record at the stop.
    func logWriterStep() -> JobNext {
        let delayNs = UInt64(options.groupCommitMaxDelayMicros) * 1000
        let maxBatch = options.groupCommitMaxBatch
        guard let (stopping, failed, syncTarget) = takeLogWork() else { return nextLogWriterWake() }
        defer { commit.withLock { $0.roundInProgress = false } }
        if failed {
            failWaiters(with: failure ?? .closed)
            // A failed volume writes nothing more; it waits for the stop.
            return stopping ? finishLogWriter() : .idle
        }
        var target = syncTarget
        if target > durableLSN.load(ordering: .acquiring) && delayNs > 0 {
            commit.withLock(waitingUntil: { $0.waiters.count >= maxBatch || $0.stopping }, timeoutNs: delayNs) { _, _ in }
            target = max(target, commit.withLock { $0.waiters.map(\.lsn).max() ?? 0 })
        }
        if stopping { target = sequencer.withLock { $0.ring.completedLSN } }
        var synced = false
        var served = 0
        switch writeLogRound(syncThrough: target) {
        case let .success(didSync):
            synced = didSync
            served = resumeDurableWaiters(synced: didSync)
        case let .failure(error):
            fail(error)
            failWaiters(with: failure ?? error)
        }
        commit.withLock { state in
            state.eagerWriteNotBeforeNs = synced ? afterSyncedRoundNs(loneWriter: served <= 1)
                : monotonicNowNs() + Self.eagerWriteDelayNs
        }
        return stopping ? finishLogWriter() : .again
    }

    private func finishLogWriter() -> JobNext {
        commit.withLock {
            $0.stopped = true
            $0.roundInProgress = false
        }
        commit.broadcast()
        failWaiters(with: failure ?? .closed)
        return .finished
    }

    /// Takes a reason for a round, if there is one: a flush or the write-back waits for
    /// durability, the volume stops, or records completed and either the last round served
    /// a flush or it ended at least `eagerWriteDelayNs` ago. Under a steady stream of writes
    /// without flushes the log so goes out in fewer, larger writes (each costs a syscall and
    /// a device request), while a write after a flush (the next I/O of a synchronous
    /// client) starts at once. Returns (stopping, failed, highest LSN someone needs durable).
    private func takeLogWork() -> (Bool, Bool, UInt64)? {
        let now = monotonicNowNs()
        return commit.withLock { state in
            let ready = !state.roundInProgress
                && (!state.waiters.isEmpty || state.stopping || state.blockingTargetLSN > durableLSN.load(ordering: .relaxed)
                    || (state.unwrittenRecords && now >= state.eagerWriteNotBeforeNs))
            guard ready else {
                // Appenders wake an idle writer once its eager-write delay passed.
                state.writerIdle = true
                return nil
            }
            state.roundInProgress = true
            state.writerIdle = false
            state.unwrittenRecords = false
            let target = max(state.waiters.map(\.lsn).max() ?? 0, state.blockingTargetLSN)
            return (state.stopping, state.failure != nil, target)
        }
    }

    /// Without a reason for a round now: records that wait for the eager-write delay run at
    /// its end; anything else wakes the job (`wakeLogWriter`).
    private func nextLogWriterWake() -> JobNext {
        commit.withLock { state in
            guard state.unwrittenRecords && !state.roundInProgress else { return .idle }
            return .at(deadlineNs: state.eagerWriteNotBeforeNs)
        }
    }

    /// Wakes threads blocked on the commit state and schedules the log-writer job.
    func wakeLogWriter() {
        commit.broadcast()
        runtime.logWriters.wake(logWriterJob)
    }

    static let eagerWriteDelayNs: UInt64 = 1_000_000

    /// When new records alone may start a round after a synced one. A lone writer that may
    /// sync (a synchronous writer on its own thread) flushes microseconds after its write and
    /// then writes and syncs in one RWF_DSYNC write itself; an eager round in between would
    /// take that from it (a write, then an fdatasync, and two thread hand-offs). Under
    /// concurrent durable writers, and for an event loop's flush (a network round trip
    /// later), writing new records at once overlaps the device with the next flush.
    private func afterSyncedRoundNs(loneWriter: Bool) -> UInt64 {
        options.callerMaySync && loneWriter ? monotonicNowNs() + Self.callerFlushGraceNs : 0
    }

    static let callerFlushGraceNs: UInt64 = 100_000

    /// Writes every completed record to the file; if `target` is not yet durable, waits for
    /// the records up to it to complete and syncs. Returns whether it synced.
    private func writeLogRound(syncThrough target: UInt64) -> Result<Bool, BlockError> {
        let mustSync = target > durableLSN.load(ordering: .acquiring)
        if mustSync, case let .failure(error) = waitForCompletion(atLeast: target) { return .failure(error) }
        let (completedLSN, completedEnd) = sequencer.withLock { ($0.ring.completedLSN, $0.ring.completedEndPosition) }
        do {
            let (from, flushed) = commit.withLock { ($0.writtenPosition, $0.flushedPosition) }
            precondition(flushed <= from, "the log is flushed beyond what was written")
            precondition(from <= completedEnd, "the file holds log beyond the completed records")
            if completedEnd > from {
                let pieces = mirror.pieces(from: WALMirror.alignDown(from), to: WALMirror.alignUp(completedEnd))
                // A write with RWF_DSYNC makes only its own bytes durable when the device takes
                // FUA writes (the kernel then skips the cache flush), so it is the round's sync
                // only if it is the round's one write and every earlier write is flushed.
                let dsyncWrite = mustSync && pieces.count == 1 && flushed == from
                for piece in pieces {
                    try file.writeThrough(UnsafeRawBufferPointer(piece),
                                          at: geometry.walOffsetBytes + mirror.ringOffset(of: piece), durable: dsyncWrite)
                }
                if mustSync && !dsyncWrite { try file.sync() }
                commit.withLock { state in
                    precondition(state.writtenPosition <= completedEnd, "the written log position only grows")
                    state.writtenPosition = completedEnd
                }
            } else if mustSync {
                try file.sync()
            }
            if mustSync {
                commit.withLock { state in
                    precondition(state.flushedPosition <= state.writtenPosition, "the flushed log position only grows")
                    precondition(state.writtenPosition >= completedEnd, "a sync makes durable only what was written")
                    state.flushedPosition = state.writtenPosition
                }
                publishDurable(completedLSN)
            }
            return .success(mustSync)
        } catch {
            return .failure(.failed(error.description))
        }
    }

    /// Resumes the waiters whose records are durable now and wakes a blocked write-back.
    /// A round that `synced` is counted as one group commit of the waiters it served (plus
    /// the caller itself when a `leader` ran it).
    @discardableResult
    private func resumeDurableWaiters(synced: Bool, leader: Bool = false) -> Int {
        let durable = durableLSN.load(ordering: .acquiring)
        let (ready, batch): ([DurableWaiter], Int) = commit.withLock { state in
            let (done, pending) = partition(state.waiters) { $0.lsn <= durable }
            state.waiters = pending
            let batch = synced ? done.count + (leader ? 1 : 0) : 0
            if batch > 0 {
                state.syncCount += 1
                state.waitersServed += UInt64(batch)
                state.largestBatch = max(state.largestBatch, batch)
            }
            return (done, batch)
        }
        // Also the job: a caller-led round may end with waiters queued for the next one.
        wakeLogWriter()
        if batch > 0 {
            metrics.groupCommitSyncs.increment()
            metrics.groupCommitBatchSize.record(batch)
        }
        for waiter in ready { waiter.continuation.resume(returning: .success(())) }
        return batch
    }

    private func failWaiters(with error: BlockError) {
        let stranded = commit.withLock { state in
            if state.failure == nil, case .failed = error { state.failure = error }
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        commit.broadcast()
        for waiter in stranded { waiter.continuation.resume(returning: .failure(error)) }
    }

    /// Raises durableLSN to `lsn`: call only after a sync that started when every record up
    /// to `lsn` was written. Only the round in progress publishes, and each publishes the
    /// completed LSN it read after the previous round's, so a lower value is a bug.
    func publishDurable(_ lsn: UInt64) {
        precondition(lsn >= durableLSN.load(ordering: .relaxed), "the durable LSN only grows")
        durableLSN.store(lsn, ordering: .releasing)
    }

    func stopLogWriter() {
        commit.withLock { $0.stopping = true }
        wakeLogWriter()
    }
}

func partition<T>(_ items: [T], _ isFirst: (T) -> Bool) -> ([T], [T]) {
    var first: [T] = [], second: [T] = []
    for item in items {
        if isFirst(item) { first.append(item) } else { second.append(item) }
    }
    return (first, second)
}
