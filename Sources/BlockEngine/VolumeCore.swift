// The shared internals of an open volume: the sequencer, the read index, the foreground
// write and read paths. The background loops live in VolumeCore+LogWriter.swift (the log
// writer, group commit) and VolumeCore+WriteBack.swift.
//
// Write path (invariant 1 in docs/ENGINE.md): reserve LSN and ring space under the sequencer
// lock, copy the record into the in-memory ring (WALMirror), insert it into the index, then
// mark it complete and tell the log writer, which writes completed ranges to the file. A
// record enters the index only after its bytes are in the ring, and the log writer and the
// flusher only see the completed prefix, so a read, a log write or a checkpoint never
// depends on bytes not yet copied (invariant 3 in docs/ENGINE.md).
//
// Read path: look up the index, copy WAL pieces from the ring and read data-region gaps,
// then confirm that the WAL space read was not recycled meanwhile (the tail did not pass
// it); otherwise retry.

import DequeModule
import Dispatch
import Logging
import Metrics
import Synchronization

/// Fixed facts about an open volume's file.
struct VolumeGeometry: Sendable {
    let blockSizeBytes: Int
    let blockCount: UInt64
    let walOffsetBytes: UInt64
    let walSizeBytes: UInt64
    let dataOffsetBytes: UInt64
    let maxPayloadBytes: Int

    init(_ superblock: Superblock) {
        blockSizeBytes = Int(superblock.blockSizeBytes)
        blockCount = superblock.blockCount
        walOffsetBytes = superblock.walOffsetBytes
        walSizeBytes = superblock.walSizeBytes
        dataOffsetBytes = superblock.dataOffsetBytes
        maxPayloadBytes = WALLayout.maxPayloadBytes(walSizeBytes: walSizeBytes, blockSizeBytes: blockSizeBytes)
    }

    func dataFileOffset(_ lba: UInt64) -> UInt64 { dataOffsetBytes + lba * UInt64(blockSizeBytes) }
}

/// A writer waiting for ring space (back-pressure, invariant 8 in docs/ENGINE.md).
struct SpaceWaiter {
    let id: UInt64
    let kind: WALRecordKind
    let lba: UInt64
    let blockCount: UInt64
    let payloadLength: Int
    /// Set for a replica applying its primary's record (LSN and epoch kept).
    let replicated: ReplicatedIdentity?
    let continuation: CheckedContinuation<Result<RecordSlot, BlockError>, Never>
}

struct SequencerState {
    var ring: WALRing
    /// Role, epoch and lease: checked where an LSN is handed out (VolumeRole.swift).
    var gate: WriteGate
    /// FIFO: while anyone waits, new writers queue behind them.
    var spaceWaiters = Deque<SpaceWaiter>()
    var nextWaiterID: UInt64 = 0
    var failure: BlockError?
    /// Threads blocked until the completed prefix reaches some LSN.
    var completionWaiters = 0
    /// The write-back was already told the ring passed its threshold.
    var writeBackSignaled = false
    /// Writers that had to wait for ring space.
    var walFullWaits: UInt64 = 0
    /// Set while the write-back cannot place data because the file system is full: a writer
    /// that finds no ring space then fails with it at once instead of waiting.
    var spaceStall: BlockError?
    /// Ring pages before this logical position were given back to the kernel (or never
    /// touched); a multiple of the page size, at most the tail rounded down.
    var releasedThroughPosition: UInt64
    /// The resident ring span charged to the memory budget (0 without a budget).
    var chargedBytes: UInt64 = 0
    /// The last reservation failed for the memory budget, not for ring space.
    var budgetShort = false
    /// Log readers waiting for records past an LSN (`Volume.waitForLog`).
    var logWaiters: [LogWaiter] = []
    /// Where a rebuild of this replica stands (VolumeCore+Rebuild.swift).
    var rebuild: RebuildPhase = .none
    /// Holds on the log for replicas (`Volume.holdLog`), by id.
    var logHolds: [UInt64: LogHoldState] = [:]
    var nextLogHoldID: UInt64 = 1
}

final class VolumeCore: Sendable {
    let path: String
    let file: any VolumeFileIO
    /// The WAL ring's bytes; the file's WAL region follows it through the log writer.
    let mirror: WALMirror
    let geometry: VolumeGeometry
    let options: VolumeOptions
    let metrics: EngineMetrics
    /// The session id new records carry; changes only when the log is truncated (with the
    /// jobs paused and the new id persisted first).
    let sessionID: Atomic<UInt64>
    let superblocks: SuperblockStore
    let sequencer: ConditionLock<SequencerState>
    let index: ConditionLock<RangeMap>
    /// Mirrors the ring tail so readers can check it without the sequencer lock.
    let tailPosition: Atomic<UInt64>
    /// Every record up to this LSN is durable on local storage.
    let durableLSN: Atomic<UInt64>
    /// The highest LSN a flush or FUA write was acknowledged at in this session (a replica
    /// promoted in this volume's place must hold every record up to it).
    let committedLSN = Atomic<UInt64>(0)
    /// Mirrors the gate's epoch for readers that take no lock; records take theirs from
    /// the ring, under the sequencer lock.
    let epoch: Atomic<UInt64>
    /// Serializes role and epoch changes (check, persist, apply), held on an offload thread.
    let assignment = ConditionLock<Void>(())
    let commit: ConditionLock<CommitState>
    let writeBack: ConditionLock<WriteBackState>
    let barrier: Mutex<(any ReplicaBarrier)?>
    /// The pools this volume's log writer and write-back run on.
    let runtime: EngineRuntime
    let logWriterJob: PoolJob
    let writeBackJob: PoolJob
    /// The write-back sleeps without a timer (nothing to write back): the next completed
    /// record gives it one.
    let writeBackSleepsEmpty = Atomic<Bool>(false)

    init(path: String, file: any VolumeFileIO, mirror: WALMirror, recovered: RecoveredState,
         superblock: Superblock, options: VolumeOptions) {
        precondition(mirror.sizeBytes == superblock.walSizeBytes, "the mirror is the WAL's size")
        self.path = path
        self.file = file
        self.mirror = mirror
        self.options = options
        geometry = VolumeGeometry(superblock)
        metrics = EngineMetrics(volume: options.metricsLabel ?? path.split(separator: "/").last.map(String.init) ?? path,
                                factory: options.metricsFactory ?? MetricsSystem.factory)
        sessionID = Atomic(superblock.sessionID)
        superblocks = SuperblockStore(file: file, current: superblock)
        let ring = WALRing(sizeBytes: superblock.walSizeBytes, checkpointLSN: superblock.checkpointLSN,
                           tailPosition: superblock.walTailPosition, headPosition: recovered.headPosition,
                           recovered: recovered.records, epoch: superblock.epoch)
        var sequencerState = SequencerState(ring: ring,
                                            gate: WriteGate(persistedRole: superblock.role, epoch: superblock.epoch),
                                            releasedThroughPosition: WALMirror.alignDown(superblock.walTailPosition))
        if superblock.imageIncomplete { sequencerState.rebuild = .copying }
        // A primary reopened with records its replicas may still need keeps them (bounded
        // like any hold) until replication takes its own holds and releases this one.
        if superblock.role == .primary && !recovered.records.isEmpty {
            sequencerState.logHolds[Self.recoveredLogHoldID] = LogHoldState(lsn: superblock.checkpointLSN + 1,
                                                                            sinceNs: monotonicNowNs(), broken: nil)
        }
        sequencer = ConditionLock(sequencerState)
        index = ConditionLock(recovered.index)
        tailPosition = Atomic(superblock.walTailPosition)
        // Opening synced the file (new session superblock), so every recovered record is durable.
        durableLSN = Atomic(recovered.nextLSN - 1)
        epoch = Atomic(superblock.epoch)
        commit = ConditionLock(CommitState(writtenPosition: recovered.headPosition,
                                            flushedPosition: recovered.headPosition))
        writeBack = ConditionLock(WriteBackState())
        barrier = Mutex(nil)
        runtime = options.runtime ?? .shared
        logWriterJob = PoolJob(name: "log")
        writeBackJob = PoolJob(name: "write-back")
        // Weak: the pools never keep a volume alive; the Volume waits for both jobs to finish
        // before it lets go of its core.
        logWriterJob.bind { [weak self] in self?.logWriterStep() ?? .finished }
        writeBackJob.bind { [weak self] in self?.writeBackStep() ?? .finished }
        if let budget = options.memoryBudget {
            // What recovery loaded into the ring is resident already: charged even past the limit.
            budget.register(self)
            let span = sequencer.withLock { state in
                state.chargedBytes = residentSpanBytes(state, headPosition: state.ring.headPosition)
                return state.chargedBytes
            }
            _ = budget.tryCharge(span, for: self, force: true)
        }
    }

    deinit { options.memoryBudget?.unregister(self) }

    var blockBytes: UInt64 { UInt64(geometry.blockSizeBytes) }

    /// The id of the hold a primary reopened with retained records starts with.
    static let recoveredLogHoldID: UInt64 = 0

    /// The most blocks one TRIM record covers: 64 read-index chunks (1 GiB of 4 KiB blocks),
    /// so entering it into the index holds the index lock for a bounded time.
    static let maxTrimBlocksPerRecord: UInt64 = 64 << RangeMap.chunkShift
    /// The most read-index chunks one hold of the index lock updates in bulk (the write-back
    /// retiring a batch), so readers and writers never wait behind a whole batch.
    static let maxIndexChunksPerLock = 64

    // MARK: - Validation

    func checkRange(lba: UInt64, blockCount: UInt64) throws(BlockError) {
        guard blockCount > 0 else { throw .invalidArgument("a request must cover at least one block") }
        guard lba < geometry.blockCount, blockCount <= geometry.blockCount - lba else {
            throw .outOfRange(lba: lba, blockCount: blockCount, volumeBlocks: geometry.blockCount)
        }
    }

    func blocks(inBytes count: Int) throws(BlockError) -> UInt64 {
        guard count % geometry.blockSizeBytes == 0 else {
            throw .misaligned(what: "buffer length", value: UInt64(count), alignmentBytes: blockBytes)
        }
        return UInt64(count / geometry.blockSizeBytes)
    }

    // MARK: - Failure

    /// Puts the volume into the failed state: after a write or sync error the page cache may
    /// not match the disk, so nothing more is acknowledged until a reopen recovers from disk.
    func fail(_ error: BlockError) {
        let failure: BlockError
        if case .failed = error { failure = error } else { failure = .failed(error.description) }
        let waiters: [SpaceWaiter] = sequencer.withLock { state in
            if state.failure == nil {
                state.failure = failure
                options.logger.error("volume failed", metadata: ["path": "\(path)", "error": "\(error)"])
            }
            defer { state.spaceWaiters.removeAll() }
            return Array(state.spaceWaiters)
        }
        sequencer.broadcast()
        let durableWaiters = commit.withLock { state in
            if state.failure == nil { state.failure = failure }
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        wakeLogWriter()
        wakeWriteBack()
        endAllLogWaits()
        for waiter in waiters { waiter.continuation.resume(returning: .failure(failure)) }
        for waiter in durableWaiters { waiter.continuation.resume(returning: .failure(failure)) }
    }

    var failure: BlockError? { sequencer.withLock { $0.failure } }

    // MARK: - Appending records

    /// Appends one record and returns its LSN once its bytes are in the ring and indexed.
    /// The payload is `source` bytes `[payloadOffset, payloadOffset + payloadLength)`, read
    /// only after ring space is reserved (never across a suspension).
    func append(kind: WALRecordKind, lba: UInt64, blockCount: UInt64, source: some BlockWriteSource,
                payloadOffset: Int, payloadLength: Int,
                replicated: ReplicatedIdentity? = nil) async throws(BlockError) -> UInt64 {
        precondition(payloadLength <= geometry.maxPayloadBytes, "record payload too large")
        precondition(payloadOffset >= 0, "payload starts before the source")
        precondition(payloadOffset + payloadLength <= source.byteCount, "payload ends after the source")
        let slot = try await reserve(kind: kind, lba: lba, blockCount: blockCount, payloadLength: payloadLength,
                                     replicated: replicated)
        fill(slot, source: source, payloadOffset: payloadOffset, payloadLength: payloadLength)
        return slot.lsn
    }

    /// `append` when ring space is free now; returns nil (nothing reserved) when the writer
    /// would have to wait for it.
    func appendWithoutWaiting(kind: WALRecordKind, lba: UInt64, blockCount: UInt64, source: some BlockWriteSource,
                              payloadOffset: Int, payloadLength: Int) throws(BlockError) -> UInt64? {
        precondition(payloadLength <= geometry.maxPayloadBytes, "record payload too large")
        precondition(payloadOffset >= 0, "payload starts before the source")
        precondition(payloadOffset + payloadLength <= source.byteCount, "payload ends after the source")
        guard let slot = try reserveNow(kind: kind, lba: lba, blockCount: blockCount, payloadLength: payloadLength,
                                        replicated: nil)
        else { return nil }
        fill(slot, source: source, payloadOffset: payloadOffset, payloadLength: payloadLength)
        return slot.lsn
    }

    /// Copies a reserved record into the ring, indexes it and marks it complete.
    private func fill(_ slot: RecordSlot, source: some BlockWriteSource, payloadOffset: Int, payloadLength: Int) {
        source.withUnsafeBytes { bytes in
            let payload = payloadLength == 0 ? UnsafeRawBufferPointer(start: nil, count: 0)
                : UnsafeRawBufferPointer(rebasing: bytes[payloadOffset..<(payloadOffset + payloadLength)])
            writeRecord(slot, payload: payload)
        }
        index.withLock { index in
            index.insert(lba: slot.lba, blockCount: slot.blockCount, lsn: slot.lsn,
                         location: slot.kind == .write ? .wal(position: slot.payloadPosition) : .trimmed)
        }
        let (wakeWaiters, wakeWriteBack, logReaders) = sequencer.withLock { state in
            let advanced = state.ring.complete(lsn: slot.lsn)
            let readers = advanced ? takeLogWaiters(&state) : []
            return (advanced && state.completionWaiters > 0, advanced && !state.spaceWaiters.isEmpty, readers)
        }
        if wakeWaiters { sequencer.broadcast() }
        for (reader, completed) in logReaders { reader.continuation.resume(returning: completed) }
        // Writers still wait for log space, and the oldest records may have been the ones a
        // write-back cycle could not take (writers handed space, copying in): it can go on.
        if wakeWriteBack { requestWriteBack(urgent: true) }
        noteRecordsCompleted()
        noteRecordsForWriteBack()
    }

    /// Copies the record (and the pad before it, if any) into the ring.
    private func writeRecord(_ slot: RecordSlot, payload: UnsafeRawBufferPointer) {
        let payloadCRC = payload.count > 0
            ? mirror.storeComputingCRC(payload, at: slot.headerPosition + UInt64(WALRecord.headerBytes)) : 0
        let header = WALRecordHeader(kind: slot.kind, lsn: slot.lsn, epoch: slot.epoch,
                                     sessionID: sessionID.load(ordering: .relaxed), lba: slot.lba,
                                     blockCount: UInt32(slot.blockCount),
                                     payloadLength: UInt32(payload.count),
                                     durableHintLSN: min(durableLSN.load(ordering: .acquiring), slot.lsn - 1),
                                     payloadCRC: payloadCRC)
        withUnsafeTemporaryAllocation(byteCount: WALRecord.headerBytes, alignment: 64) { buffer in
            if slot.hasPad {
                // The skipped bytes go to the file too: zeros, not what an earlier lap left.
                mirror.zero(from: slot.startPosition + UInt64(WALRecord.headerBytes), to: slot.headerPosition)
                let padPayload = slot.headerPosition - slot.startPosition - UInt64(WALRecord.headerBytes)
                let pad = WALRecordHeader(kind: .pad, lsn: slot.lsn, epoch: header.epoch, sessionID: header.sessionID,
                                          lba: 0, blockCount: 0, payloadLength: UInt32(padPayload),
                                          durableHintLSN: header.durableHintLSN, payloadCRC: 0)
                pad.encode(into: buffer)
                mirror.store(UnsafeRawBufferPointer(buffer), at: slot.startPosition)
            }
            header.encode(into: buffer)
            mirror.store(UnsafeRawBufferPointer(buffer), at: slot.headerPosition)
        }
    }

    /// Reserves ring space, waiting (FIFO, bounded by `walFullTimeoutMs`) while the ring is full.
    private func reserve(kind: WALRecordKind, lba: UInt64, blockCount: UInt64,
                         payloadLength: Int, replicated: ReplicatedIdentity?) async throws(BlockError) -> RecordSlot {
        if let slot = try reserveNow(kind: kind, lba: lba, blockCount: blockCount, payloadLength: payloadLength,
                                     replicated: replicated) {
            return slot
        }
        metrics.walFullWaits.increment()
        let result = await withCheckedContinuation { continuation in
            enqueueSpaceWaiter(kind: kind, lba: lba, blockCount: blockCount, payloadLength: payloadLength,
                               replicated: replicated, continuation: continuation)
        }
        return try result.get()
    }

    /// Reserves ring space if it is free now and nobody waits for it; nil otherwise.
    private func reserveNow(kind: WALRecordKind, lba: UInt64, blockCount: UInt64,
                            payloadLength: Int, replicated: ReplicatedIdentity?) throws(BlockError) -> RecordSlot? {
        let threshold = UInt64(Double(geometry.walSizeBytes) * options.flushThresholdFraction)
        let (slot, signal): (RecordSlot?, Bool) = try sequencer.withLock { (state) throws(BlockError) in
            if let failure = state.failure { throw failure }
            if let refusal = Self.admissionRefusal(state, replicated) { throw refusal }
            guard state.spaceWaiters.isEmpty,
                  let slot = reserveWithinBudget(&state, kind: kind, lba: lba, blockCount: blockCount,
                                                 payloadLength: payloadLength, replicated: replicated)
            else { return (nil, false) }
            let signal = options.backgroundWriteBack && !state.writeBackSignaled && state.ring.usedBytes >= threshold
            if signal { state.writeBackSignaled = true }
            return (slot, signal)
        }
        if signal { requestWriteBack() }
        return slot
    }

    private func enqueueSpaceWaiter(kind: WALRecordKind, lba: UInt64, blockCount: UInt64, payloadLength: Int,
                                    replicated: ReplicatedIdentity?,
                                    continuation: CheckedContinuation<Result<RecordSlot, BlockError>, Never>) {
        let immediate: Result<RecordSlot, BlockError>? = sequencer.withLock { state in
            if let failure = state.failure { return .failure(failure) }
            if let refusal = Self.admissionRefusal(state, replicated) { return .failure(refusal) }
            if state.spaceWaiters.isEmpty,
               let slot = reserveWithinBudget(&state, kind: kind, lba: lba, blockCount: blockCount,
                                              payloadLength: payloadLength, replicated: replicated) {
                return .success(slot)
            }
            if let stall = state.spaceStall { return .failure(stall) }
            state.walFullWaits += 1
            let id = state.nextWaiterID
            state.nextWaiterID += 1
            state.spaceWaiters.append(SpaceWaiter(id: id, kind: kind, lba: lba, blockCount: blockCount,
                                                  payloadLength: payloadLength, replicated: replicated,
                                                  continuation: continuation))
            let timeoutMs = options.walFullTimeoutMs
            // Weak: a pending timer must not keep a dropped volume (its file, its lock, its
            // ring memory) alive for the whole timeout.
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(timeoutMs)) { [weak self] in
                self?.expireSpaceWaiter(id: id, waitedMs: timeoutMs)
            }
            return nil
        }
        if let immediate {
            continuation.resume(returning: immediate)
        } else {
            requestWriteBack(urgent: true)
            promoteBudgetWriteBack()
        }
    }

    // MARK: - Ring memory

    /// The ring bytes resident (charged) with the head at `headPosition`: the pages from
    /// the last release through the head's page, at most the ring.
    func residentSpanBytes(_ state: SequencerState, headPosition: UInt64) -> UInt64 {
        min(geometry.walSizeBytes, WALMirror.alignUp(headPosition) - state.releasedThroughPosition)
    }

    /// Reserves ring space for a record and charges the pages it newly touches to the
    /// memory budget; nil (nothing reserved) when either is short.
    func reserveWithinBudget(_ state: inout SequencerState, kind: WALRecordKind, lba: UInt64, blockCount: UInt64,
                             payloadLength: Int, replicated: ReplicatedIdentity?) -> RecordSlot? {
        guard let budget = options.memoryBudget else {
            return state.ring.reserve(kind: kind, lba: lba, blockCount: blockCount, payloadLength: payloadLength,
                                      replicated: replicated)
        }
        guard let head = state.ring.headPositionAfterReserving(payloadLength: payloadLength) else { return nil }
        let span = residentSpanBytes(state, headPosition: head)
        let extra = span > state.chargedBytes ? span - state.chargedBytes : 0
        guard budget.tryCharge(extra, for: self) else {
            state.budgetShort = true
            return nil
        }
        state.budgetShort = false
        state.chargedBytes += extra
        guard let slot = state.ring.reserve(kind: kind, lba: lba, blockCount: blockCount,
                                            payloadLength: payloadLength, replicated: replicated) else {
            preconditionFailure("the ring refused a reservation it had room for")
        }
        return slot
    }

    /// After the tail moved: gives the ring pages wholly behind the new tail back to the
    /// kernel and returns the bytes to credit to the budget (invariant 11 in
    /// docs/ENGINE.md). Call under the sequencer lock, after the tail is published (a reader
    /// that copied a released page then sees the tail passed and rereads) and before any
    /// writer can be handed that space.
    func releaseRingPages(_ state: inout SequencerState) -> UInt64 {
        let tail = state.ring.tailPosition
        let head = state.ring.headPosition
        let end = WALMirror.alignDown(tail)
        // Pages that also hold live records of the next lap stay (possible when the ring is
        // nearly full: the head's bytes are one lap ahead of the released ones).
        let liveLapStart = head > geometry.walSizeBytes ? WALMirror.alignUp(head - geometry.walSizeBytes) : 0
        let start = max(state.releasedThroughPosition, liveLapStart)
        // A busy ring keeps its pages (its writers reuse them within a lap; each released
        // page costs the next writer a page fault: 4 KiB writes at QD32 took twice as long
        // when every cycle released) unless the volume went idle or the budget runs short.
        // Small releases wait for company: each is a system call under the sequencer lock.
        let idle = tail == head
        guard idle || options.memoryBudget?.isUnderPressure == true else { return 0 }
        guard end >= start + Self.minimumPageReleaseBytes || (idle && end > start) else { return 0 }
        mirror.releasePages(from: start, to: end)
        state.releasedThroughPosition = end
        guard options.memoryBudget != nil else { return 0 }
        let span = residentSpanBytes(state, headPosition: head)
        let credit = state.chargedBytes > span ? state.chargedBytes - span : 0
        state.chargedBytes -= credit
        return credit
    }

    static let minimumPageReleaseBytes: UInt64 = 256 << 10

    /// A writer waits for the memory budget: the volumes holding the most write back.
    private func promoteBudgetWriteBack() {
        guard let budget = options.memoryBudget, sequencer.withLock({ $0.budgetShort }) else { return }
        for holder in budget.largestHolders(excluding: self) { holder.requestWriteBackForMemory() }
    }

    /// Serves waiting writers in order while ring space and budget allow (the budget got
    /// memory back from some volume).
    func retrySpaceWaiters() {
        let ready = sequencer.withLock { reserveForSpaceWaiters(&$0) }
        for (waiter, slot) in ready { waiter.continuation.resume(returning: slot) }
    }

    /// Takes waiting writers off the queue, in order, while their records fit; a waiter the
    /// gate no longer admits (the role changed while it waited) leaves with the refusal.
    func reserveForSpaceWaiters(_ state: inout SequencerState) -> [(SpaceWaiter, Result<RecordSlot, BlockError>)] {
        var ready: [(SpaceWaiter, Result<RecordSlot, BlockError>)] = []
        // Bounded by the queue: each turn serves one waiter or stops.
        while let waiter = state.spaceWaiters.first {
            if let refusal = Self.admissionRefusal(state, waiter.replicated) {
                state.spaceWaiters.removeFirst()
                ready.append((waiter, .failure(refusal)))
                continue
            }
            guard let slot = reserveWithinBudget(&state, kind: waiter.kind, lba: waiter.lba,
                                                 blockCount: waiter.blockCount, payloadLength: waiter.payloadLength,
                                                 replicated: waiter.replicated) else { break }
            state.spaceWaiters.removeFirst()
            ready.append((waiter, .success(slot)))
        }
        return ready
    }

    /// The gate's refusal of a write now; reads the clock only for a leased primary.
    static func gateRefusal(_ gate: WriteGate) -> BlockError? {
        gate.role == .standalone ? nil : gate.writeRefusal(nowNs: monotonicNowNs())
    }

    /// Why a record may not take the next LSN now: for a local write, the gate's refusal;
    /// for a replicated record, a role other than replica, an LSN that is not the next one or
    /// an epoch outside the ring's (checked here, under the lock that hands the LSN out,
    /// because the record came from the network: a wrong one is refused, never trapped on).
    static func admissionRefusal(_ state: SequencerState, _ replicated: ReplicatedIdentity?) -> BlockError? {
        guard let replicated else { return gateRefusal(state.gate) }
        guard state.gate.role == .replica else {
            return .notPrimary("records from a primary are applied only by a replica (this copy is \(state.gate.role))")
        }
        guard state.rebuild != .copying else {
            return .invalidArgument("a rebuild is copying the image; records are applied after its log reset")
        }
        guard replicated.lsn == state.ring.nextLSN else {
            return .invalidArgument("replicated record \(replicated.lsn) is not the next LSN \(state.ring.nextLSN)")
        }
        guard replicated.epoch <= state.ring.epoch, replicated.epoch >= state.ring.lastRecordEpoch else {
            return .invalidArgument("replicated record \(replicated.lsn) has epoch \(replicated.epoch), outside "
                + "\(state.ring.lastRecordEpoch)...\(state.ring.epoch)")
        }
        return nil
    }

    private func expireSpaceWaiter(id: UInt64, waitedMs: Int) {
        let expired: SpaceWaiter? = sequencer.withLock { state in
            guard let position = state.spaceWaiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.spaceWaiters.remove(at: position)
        }
        expired?.continuation.resume(returning: .failure(.walFullTimeout(waitedMs: waitedMs)))
    }

    /// Blocks the calling (background) thread until every record up to `lsn` is complete.
    func waitForCompletion(atLeast lsn: UInt64) -> Result<UInt64, BlockError> {
        sequencer.withLock { $0.completionWaiters += 1 }
        return sequencer.withLock(waitingUntil: { $0.ring.completedLSN >= lsn || $0.failure != nil }) { state, _ in
            state.completionWaiters -= 1
            if let failure = state.failure { return .failure(failure) }
            return .success(state.ring.completedLSN)
        }
    }

    // MARK: - Reading

    /// Reads whole blocks at `lba` into `buffer`: at most a few I/Os per request. What the page
    /// cache holds is read at once; the rest goes through io_uring and the caller suspends,
    /// so concurrent readers reach the device concurrently.
    func read(lba: UInt64, into buffer: UnsafeMutableRawBufferPointer, askPageCache: Bool = true) async throws(BlockError) {
        // Each retry means a write-back cycle recycled WAL space under this read; after it the
        // index no longer points there, so a retry almost never repeats.
        for attempt in 0..<Self.maxReadAttempts {
            let plan = planRead(lba: lba, into: buffer)
            var pending: [IOTransfer] = []
            for transfer in plan.transfers {
                let cached = askPageCache || attempt > 0 ? try file.readCached(into: transfer.buffer, at: transfer.offset) : 0
                if cached < transfer.buffer.count {
                    pending.append(IOTransfer(buffer: UnsafeMutableRawBufferPointer(rebasing: transfer.buffer[cached...]),
                                              offset: transfer.offset + UInt64(cached)))
                }
            }
            if !pending.isEmpty { try await file.readAsync(pending) }
            if walPiecesStillValid(plan.lowestWALPosition) { return }
        }
        throw .failed("read of LBA \(lba) raced the write-back \(Self.maxReadAttempts) times")
    }

    /// `read(lba:into:)` when every block is in memory (the ring, or the page cache for the
    /// data region); returns false as soon as a block would need the device.
    func readFromMemory(lba: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockError) -> Bool {
        for _ in 0..<Self.maxReadAttempts {
            let plan = planRead(lba: lba, into: buffer)
            for transfer in plan.transfers {
                guard try file.readCached(into: transfer.buffer, at: transfer.offset) == transfer.buffer.count else {
                    return false
                }
            }
            if walPiecesStillValid(plan.lowestWALPosition) { return true }
        }
        return false
    }

    /// `read(lba:into:)` on the calling thread, blocking while the device reads.
    func readBlocking(lba: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockError) {
        for _ in 0..<Self.maxReadAttempts {
            let plan = planRead(lba: lba, into: buffer)
            for transfer in plan.transfers { try file.read(into: transfer.buffer, at: transfer.offset) }
            if walPiecesStillValid(plan.lowestWALPosition) { return }
        }
        throw .failed("read of LBA \(lba) raced the write-back \(Self.maxReadAttempts) times")
    }

    static let maxReadAttempts = 16

    /// Whether the ring bytes a read copied from `lowestPosition` on were still the log's:
    /// the tail had not passed them, so no writer could have reused them.
    /// Fills the WAL pieces of `buffer` from the ring (a piece lies inside one record) and
    /// zeroes trimmed blocks; returns the reads of the data-region runs between them.
    private func planRead(lba: UInt64, into buffer: UnsafeMutableRawBufferPointer)
        -> (transfers: [IOTransfer], lowestWALPosition: UInt64) {
        let blockCount = UInt64(buffer.count) / blockBytes
        var pieces: [IndexExtent] = []
        index.withLock { $0.lookup(lba: lba, blockCount: blockCount, into: &pieces) }
        var transfers: [IOTransfer] = []
        transfers.reserveCapacity(pieces.count + 1)
        var lowestWALPosition = UInt64.max
        var cursor = lba
        func dataRun(_ from: UInt64, _ to: UInt64) {
            transfers.append(IOTransfer(buffer: slice(buffer, start: lba, lba: from, count: to - from),
                                        offset: geometry.dataFileOffset(from)))
        }
        for piece in pieces {
            if cursor < piece.lba { dataRun(cursor, piece.lba) }
            let target = slice(buffer, start: lba, lba: piece.lba, count: piece.blockCount)
            switch piece.location {
            case .trimmed:
                target.initializeMemory(as: UInt8.self, repeating: 0)
            case let .wal(position):
                mirror.load(into: target, from: position)
                lowestWALPosition = min(lowestWALPosition, position)
            }
            cursor = piece.endLBA
        }
        if cursor < lba + blockCount { dataRun(cursor, lba + blockCount) }
        return (transfers, lowestWALPosition)
    }

    private func slice(_ buffer: UnsafeMutableRawBufferPointer, start: UInt64, lba: UInt64,
                       count: UInt64) -> UnsafeMutableRawBufferPointer {
        let from = Int((lba - start) * blockBytes)
        return UnsafeMutableRawBufferPointer(rebasing: buffer[from..<(from + Int(count * blockBytes))])
    }
}
