// Write-back: moves WAL-resident blocks to the data region and advances the checkpoint.
//
// One cycle:
// 1. take the oldest completed records (a prefix of the log, invariant 3 in docs/ENGINE.md);
// 2. compute, for every block they touch, the newest version *within the batch* (a newer
//    record outside the batch must not stand in for it: it may not survive a crash);
// 3. make the batch durable in the WAL if the log writer has not yet (a torn in-place write
//    is repaired only by replaying a durable record), then copy those versions from the
//    in-memory ring and write them, sorted and coalesced, with io_uring; punch holes for trims;
// 4. fdatasync, drop the index entries the batch covered (newer entries stay), persist the
//    superblock with the new checkpoint and tail, and only then free the ring space.
// The checkpoint therefore never passes a record that is not durable in the data region.
// Checked in every build (a few comparisons per cycle): a batch starts right after the
// checkpoint and is complete; the checkpoint never passes a record that is not durable in
// the WAL; checkpoint and tail only grow.
//
// A full file system (ENOSPC or EDQUOT placing data-region blocks) does not fail the volume:
// the batch stays in the log, which is durable and preallocated, and the cycle is retried
// every spaceRetryMs. Meanwhile writes that fit the log, reads and flushes go on; writers
// that find the log full and `checkpoint()` fail at once with `noSpace` (`spaceStall`).

import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

struct WriteBackState {
    var requested = false
    var urgent = false
    /// Another volume waits for the memory budget this one holds: write back everything
    /// complete, background write-back or not.
    var memoryPressure = false
    /// When the next pass runs by itself (monotonic ns; `.max`: only when woken).
    var nextPassNs: UInt64 = .max
    /// The write-back's aligned staging buffer, kept between passes while they write.
    var staging = StagingBuffer()
    var stopping = false
    /// `checkpoint()` callers: resumed once the checkpoint reaches their LSN.
    var drainWaiters: [DurableWaiter] = []
    var runs: UInt64 = 0
    var bytesWritten: UInt64 = 0
    /// The loop is past its last look for work and waits (or is about to) for a request,
    /// the timer or a stop (tests wait for it).
    var waitingForWork = false
}

extension VolumeCore {
    /// Largest single write the write-back issues.
    static let maxWriteBackIOBytes = 1 << 20

    /// Asks for everything complete to be written back, so the memory budget gets this
    /// volume's ring pages back (another volume's writers wait for it).
    func requestWriteBackForMemory() {
        writeBack.withLock { state in
            state.requested = true
            state.memoryPressure = true
        }
        wakeWriteBack()
    }

    func requestWriteBack(urgent: Bool = false) {
        writeBack.withLock { state in
            state.requested = true
            if urgent { state.urgent = true }
        }
        wakeWriteBack()
    }

    /// Returns once every record written before the call is in the data region and the
    /// checkpoint says so.
    func drainWriteBack() async throws(BlockError) {
        // Records a replica still needs stay in the log (they survive a close and a reopen).
        let (target, checkpoint, stall) = sequencer.withLock { state in
            (min(state.ring.lastAllocatedLSN, retentionLimit(&state, nowNs: monotonicNowNs())),
             state.ring.checkpointLSN, state.spaceStall)
        }
        if checkpoint >= target { return }
        if let stall { throw stall }
        let result: Result<Void, BlockError> = await withCheckedContinuation { continuation in
            let immediate: Result<Void, BlockError>? = writeBack.withLock { state in
                if let failure { return .failure(failure) }
                if state.stopping { return .failure(.closed) }
                state.drainWaiters.append(DurableWaiter(lsn: target, continuation: continuation))
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) } else { wakeWriteBack() }
        }
        try result.get()
    }

    /// The write-back thread's body; returns when asked to stop.
    func writeBackStep() -> JobNext {
        let intervalNs = options.backgroundWriteBack ? UInt64(options.flushIntervalMs) * 1_000_000 : nil
        // While the file system is full, only the retry interval (or the stop) starts a
        // retry: a request per refused writer would spin on failing writes.
        let stalled = sequencer.withLock { $0.spaceStall != nil }
        let now = monotonicNowNs()
        let work: (stop: Bool, drainTarget: UInt64?, memoryPressure: Bool, staging: StagingBuffer)? =
            writeBack.withLock { state in
                let timerDue = now >= state.nextPassNs
                guard state.stopping || timerDue || (!stalled && (state.requested || !state.drainWaiters.isEmpty)) else {
                    state.waitingForWork = true
                    return nil
                }
                state.waitingForWork = false
                state.requested = false
                state.urgent = false
                defer {
                    state.memoryPressure = false
                    state.staging = StagingBuffer()
                }
                return (state.stopping, state.drainWaiters.map(\.lsn).max(), state.memoryPressure, state.staging)
            }
        guard let work else { return nextWriteBackWake(stalled: stalled, intervalNs: intervalNs) }
        var staging = work.staging
        if work.stop {
            staging.release()
            let leftovers = writeBack.withLock { state in
                defer { state.drainWaiters.removeAll() }
                return state.drainWaiters
            }
            for waiter in leftovers { waiter.continuation.resume(returning: .failure(failure ?? .closed)) }
            return .finished
        }
        var cycles = 0
        if failure == nil {
            do {
                if let drainTarget = work.drainTarget { _ = try waitForCompletion(atLeast: drainTarget).get() }
                // In background mode a wake writes back what was complete when it woke
                // (large batches, not a trickle of small cycles that compete with group
                // commit for fdatasync); otherwise only what waiting writers or
                // checkpoint() need, so a simulation sees deterministic I/O. Each cycle
                // releases at least one record, so the loop ends.
                let everything = options.backgroundWriteBack || stalled || work.memoryPressure
                let target = everything ? sequencer.withLock { $0.ring.completedLSN } : 0
                while sequencer.withLock({ $0.ring.checkpointLSN }) < target || hasWaitingDemand() {
                    guard try writeBackCycle(staging: &staging) else { break }
                    cycles += 1
                    resumeDrainWaiters()
                }
            } catch .noSpace(let reason) {
                beginSpaceStall(.noSpace(reason))
            } catch {
                fail(error)
            }
        }
        resumeDrainWaiters()
        // A pass with nothing to write back (the timer of an idle volume) gives the staging
        // buffer back: idle volumes hold none, busy ones keep theirs.
        if cycles == 0 { staging.release() }
        let stalledNow = sequencer.withLock { $0.spaceStall != nil }
        let delayNs = stalledNow ? Self.spaceRetryMs * 1_000_000 : intervalNs
        writeBack.withLock { state in
            state.staging = staging
            state.nextPassNs = delayNs.map { monotonicNowNs() + $0 } ?? .max
        }
        return .again
    }

    /// When an idle write-back runs next: at its pass time while records wait to be written
    /// back (or the file system is full), otherwise only when woken. A volume with nothing
    /// to write back so costs no timer wake; its next completed record sets one
    /// (`noteRecordsForWriteBack`).
    private func nextWriteBackWake(stalled: Bool, intervalNs: UInt64?) -> JobNext {
        // Set before looking, so a record reserved after the look finds it set and wakes us.
        writeBackSleepsEmpty.store(true, ordering: .sequentiallyConsistent)
        let pending = sequencer.withLock { $0.ring.lastAllocatedLSN > $0.ring.checkpointLSN }
        guard stalled || (pending && intervalNs != nil) else {
            writeBack.withLock { state in
                state.nextPassNs = .max
                state.staging.release()  // an idle volume holds no staging buffer
            }
            return .idle
        }
        writeBackSleepsEmpty.store(false, ordering: .relaxed)
        return writeBack.withLock { state in
            if state.nextPassNs == .max {
                state.nextPassNs = monotonicNowNs() + (stalled ? Self.spaceRetryMs * 1_000_000 : intervalNs!)
            }
            return .at(deadlineNs: state.nextPassNs)
        }
    }

    /// A record completed: a write-back that sleeps with nothing to do gets its pass time.
    /// One atomic load per record otherwise.
    func noteRecordsForWriteBack() {
        guard options.backgroundWriteBack, writeBackSleepsEmpty.load(ordering: .sequentiallyConsistent),
              writeBackSleepsEmpty.exchange(false, ordering: .sequentiallyConsistent) else { return }
        let deadline = monotonicNowNs() + UInt64(options.flushIntervalMs) * 1_000_000
        writeBack.withLock { state in
            if state.nextPassNs == .max { state.nextPassNs = deadline }
        }
        runtime.writeBack.wake(writeBackJob, notLaterThanNs: deadline)
    }

    private func hasWaitingDemand() -> Bool {
        !sequencer.withLock { $0.spaceWaiters.isEmpty } || !writeBack.withLock { $0.drainWaiters.isEmpty }
    }

    private func resumeDrainWaiters() {
        let (checkpoint, stall) = sequencer.withLock { ($0.ring.checkpointLSN, $0.spaceStall) }
        let error = failure ?? stall
        let ready: [DurableWaiter] = writeBack.withLock { state in
            let (done, pending) = partition(state.drainWaiters) { error != nil || $0.lsn <= checkpoint }
            state.drainWaiters = pending
            return done
        }
        for waiter in ready { waiter.continuation.resume(returning: error.map { .failure($0) } ?? .success(())) }
    }

    static let spaceRetryMs: UInt64 = 1000

    /// The write-back found the file system full: refuse the writers waiting for log space
    /// (and later ones, while it lasts) with `error`, and retry later.
    private func beginSpaceStall(_ error: BlockError) {
        let (refused, first): ([SpaceWaiter], Bool) = sequencer.withLock { state in
            let first = state.spaceStall == nil
            state.spaceStall = error
            defer { state.spaceWaiters.removeAll() }
            return (Array(state.spaceWaiters), first)
        }
        if first {
            metrics.writeBackNoSpace.record(1)
            options.logger.warning("file system full: write-back stalled, writes fail once the log is full",
                                   metadata: ["path": "\(path)", "error": "\(error)"])
        }
        for waiter in refused { waiter.continuation.resume(returning: .failure(error)) }
    }

    /// A cycle succeeded after a stall (the stall was cleared with the space it freed).
    private func noteSpaceStallEnded() {
        metrics.writeBackNoSpace.record(0)
        options.logger.notice("write-back resumed: the file system has room again", metadata: ["path": "\(path)"])
    }

    func stopWriteBack() {
        writeBack.withLock { $0.stopping = true }
        wakeWriteBack()
    }

    /// Wakes threads blocked on the write-back state and schedules the write-back job.
    func wakeWriteBack() {
        writeBack.broadcast()
        runtime.writeBack.wake(writeBackJob)
    }

    /// Runs one write-back cycle; returns false when no completed record was waiting.
    func writeBackCycle(staging: inout StagingBuffer) throws(BlockError) -> Bool {
        let (batch, checkpointLSN, completedLSN) = sequencer.withLock { state in
            let limit = retentionLimit(&state, nowNs: monotonicNowNs())
            return (state.ring.flushBatch(maxBytes: options.flusherMaxBatchBytes, throughLSN: limit),
                    state.ring.checkpointLSN, state.ring.completedLSN)
        }
        guard let first = batch.first, let last = batch.last else { return false }
        precondition(first.lsn == checkpointLSN + 1, "a write-back batch starts right after the checkpoint")
        precondition(last.lsn <= completedLSN, "a write-back batch holds only completed records")
        // The batch's records must be durable in the WAL before their blocks are overwritten
        // in place: a torn data-region write is repaired only by replaying a durable record.
        try waitLocallyDurableBlocking(last.lsn)
        var newest = RangeMap(blockSizeBytes: geometry.blockSizeBytes)
        for record in batch {
            newest.insert(lba: record.lba, blockCount: record.blockCount, lsn: record.lsn,
                          location: record.kind == .write ? .wal(position: record.payloadPosition) : .trimmed)
        }
        let extents = newest.allExtents()
        let plan = WriteBackPlan(extents: extents, geometry: geometry, maxIOBytes: Self.maxWriteBackIOBytes)
        let buffer = staging.buffer(atLeast: plan.stagedBytes)
        plan.copySources(from: mirror, into: buffer)
        do throws(BlockError) {
            try file.writeBatch(plan.writes(from: buffer))
            for hole in plan.holes {
                try file.punchHole(at: hole.offset, lengthBytes: hole.lengthBytes)
            }
        } catch .io(let operation, let code) where code == ENOSPC || code == EDQUOT {
            // Nothing is checkpointed: the batch stays in the log and is written again later.
            throw .noSpace("\(operation): \(errnoName(code))")
        }
        try file.sync()
        precondition(durableLSN.load(ordering: .acquiring) >= last.lsn, "the checkpoint passes a record not durable in the WAL")
        // In bounded pieces (a batch of large trims touches many chunks): readers see each
        // block either still in the ring (not yet released) or in the synced data region.
        for group in RangeMap.chunkGroups(extents, maxChunks: Self.maxIndexChunksPerLock) {
            index.withLock { $0.remove(group, maxLSN: last.lsn) }
        }
        try superblocks.update { superblock in
            precondition(superblock.checkpointLSN < last.lsn, "the checkpoint only grows")
            precondition(superblock.walTailPosition < last.endPosition, "the log tail only grows")
            superblock.checkpointLSN = last.lsn
            superblock.checkpointEpoch = last.epoch
            superblock.walTailPosition = last.endPosition
        }
        let (ready, used, lag, stallEnded, credit):
            ([(SpaceWaiter, Result<RecordSlot, BlockError>)], UInt64, UInt64, Bool, UInt64) =
            sequencer.withLock { state in
                state.ring.release(throughLSN: last.lsn)
                // Room again: cleared with the space this cycle frees, so no writer sees one without the other.
                let stallEnded = state.spaceStall != nil
                state.spaceStall = nil
                tailPosition.store(state.ring.tailPosition, ordering: .releasing)
                let credit = releaseRingPages(&state)
                state.writeBackSignaled = false
                let ready = reserveForSpaceWaiters(&state)
                return (ready, state.ring.usedBytes, state.ring.lastAllocatedLSN - state.ring.checkpointLSN, stallEnded,
                        credit)
            }
        if stallEnded { noteSpaceStallEnded() }
        for (waiter, slot) in ready { waiter.continuation.resume(returning: slot) }
        if credit > 0 { options.memoryBudget?.credit(credit, for: self) }
        writeBack.withLock { state in
            state.runs += 1
            state.bytesWritten += UInt64(plan.stagedBytes)
        }
        metrics.flusherRuns.increment()
        metrics.flusherBytes.increment(by: plan.stagedBytes)
        metrics.walUsedBytes.record(used)
        metrics.flusherLagRecords.record(lag)
        return true
    }
}

/// The I/O of one write-back cycle: copies of the newest versions from the ring into one
/// staging buffer (aligned, as O_DIRECT wants), writes of LBA-contiguous runs to the data
/// region, and holes.
struct WriteBackPlan {
    struct Source { var stagingOffset: Int; var lengthBytes: Int; var ringPosition: UInt64 }
    struct Piece { var stagingOffset: Int; var lengthBytes: Int; var fileOffset: UInt64 }
    struct Hole { var offset: UInt64; var lengthBytes: UInt64 }

    private(set) var sources: [Source] = []
    private(set) var runs: [Piece] = []
    private(set) var holes: [Hole] = []
    private(set) var stagedBytes = 0

    init(extents: [IndexExtent], geometry: VolumeGeometry, maxIOBytes: Int) {
        let blockBytes = UInt64(geometry.blockSizeBytes)
        var previousEnd: UInt64? = nil
        for extent in extents {
            let length = Int(extent.blockCount * blockBytes)
            let target = geometry.dataFileOffset(extent.lba)
            switch extent.location {
            case .trimmed:
                if let last = holes.last, last.offset + last.lengthBytes == target {
                    holes[holes.count - 1].lengthBytes += UInt64(length)
                } else {
                    holes.append(Hole(offset: target, lengthBytes: UInt64(length)))
                }
                previousEnd = nil
            case let .wal(position):
                sources.append(Source(stagingOffset: stagedBytes, lengthBytes: length, ringPosition: position))
                // Adjacent blocks (in LBA and so in the staging buffer) join one run.
                if previousEnd == extent.lba, let last = runs.last, last.lengthBytes + length <= maxIOBytes {
                    runs[runs.count - 1].lengthBytes += length
                } else {
                    runs.append(Piece(stagingOffset: stagedBytes, lengthBytes: length, fileOffset: target))
                }
                stagedBytes += length
                previousEnd = extent.endLBA
            }
        }
    }

    func copySources(from mirror: WALMirror, into buffer: UnsafeMutableRawBufferPointer) {
        for source in sources {
            mirror.load(into: UnsafeMutableRawBufferPointer(
                rebasing: buffer[source.stagingOffset..<(source.stagingOffset + source.lengthBytes)]),
                        from: source.ringPosition)
        }
    }

    func writes(from buffer: UnsafeMutableRawBufferPointer) -> [IOTransfer] {
        runs.map { run in
            IOTransfer(buffer: UnsafeMutableRawBufferPointer(
                rebasing: buffer[run.stagingOffset..<(run.stagingOffset + run.lengthBytes)]),
                       offset: run.fileOffset)
        }
    }
}

/// A page-aligned buffer the write-back reuses between cycles.
struct StagingBuffer {
    private var storage: UnsafeMutableRawBufferPointer?

    mutating func buffer(atLeast bytes: Int) -> UnsafeMutableRawBufferPointer {
        if let storage, storage.count >= bytes { return storage }
        storage?.deallocate()
        let size = max(bytes, 1 << 20)
        let fresh = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 4096)
        storage = fresh
        return fresh
    }

    mutating func release() {
        storage?.deallocate()
        storage = nil
    }
}
