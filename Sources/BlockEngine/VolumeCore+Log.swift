// The log as replication sees it: reading completed records by LSN, waiting for new ones,
// and holds that keep records in the WAL until a replica has them (docs/ENGINE.md, "The log
// for replication").
//
// Invariants:
// - A read returns only completed records, LSN-contiguous from the LSN asked for, copied
//   from the ring and confirmed afterwards not to have been recycled (the tail did not pass
//   them), the way block reads are.
// - A hold keeps the write-back from freeing records at or after its LSN, until the records
//   held fill `logRetentionMaxFraction` of the WAL or the hold stops advancing for
//   `logRetentionMaxMs` with records behind it; then it breaks (its holder must rebuild)
//   and no longer limits anything. So a stopped replica never blocks writers for longer
//   than the bound.
// - At most `maxLogWaiters` readers wait at once; every wait ends (records, timeout, failure
//   or close).

import Dispatch
import Synchronization

struct LogWaiter {
    let id: UInt64
    let afterLSN: UInt64
    let continuation: CheckedContinuation<UInt64, Never>
}

struct LogHoldState {
    /// The first LSN the holder still needs.
    var lsn: UInt64
    /// When the hold last advanced, or last held nothing (monotonic ns).
    var sinceNs: UInt64
    /// Why it broke; nil while it holds.
    var broken: String?
}

extension VolumeCore {
    static let maxLogWaiters = 64

    // MARK: - Reading

    func readLog(from lsn: UInt64, maxBytes: Int) throws(BlockError) -> LogRead {
        precondition(maxBytes > 0, "a log read needs room for a record")
        enum Plan { case recycled(UInt64), slots([RecordSlot]) }
        let plan: Plan = try sequencer.withLock { (state) throws(BlockError) -> Plan in
            if let failure = state.failure { throw failure }
            if lsn <= state.ring.checkpointLSN { return .recycled(state.ring.checkpointLSN + 1) }
            guard let first = state.ring.records.first, lsn <= state.ring.completedLSN else { return .slots([]) }
            var slots: [RecordSlot] = []
            var bytes = 0
            var index = Int(lsn - first.lsn)
            // Bounded by the ring's records and by maxBytes.
            while index < state.ring.records.count, state.ring.records[index].lsn <= state.ring.completedLSN {
                let slot = state.ring.records[index]
                let payload = slot.kind == .write ? Int(slot.blockCount) * geometry.blockSizeBytes : 0
                if !slots.isEmpty && bytes + payload > maxBytes { break }
                slots.append(slot)
                bytes += payload
                index += 1
            }
            return .slots(slots)
        }
        let slots: [RecordSlot]
        switch plan {
        case let .recycled(oldest): return .recycled(oldestLSN: oldest)
        case let .slots(planned): slots = planned
        }
        guard let first = slots.first else { return .records([]) }
        var records: [LogRecord] = []
        records.reserveCapacity(slots.count)
        var headerBytes = [UInt8](repeating: 0, count: WALRecord.headerBytes)
        for slot in slots {
            headerBytes.withUnsafeMutableBytes { mirror.load(into: $0, from: slot.headerPosition) }
            guard case let .valid(header) = headerBytes.withUnsafeBytes({ WALRecordHeader.decode($0) }),
                  header.lsn == slot.lsn else { break } // recycled under us: the check below says so
            var payload = [UInt8](repeating: 0, count: Int(header.payloadLength))
            if !payload.isEmpty { payload.withUnsafeMutableBytes { mirror.load(into: $0, from: slot.payloadPosition) } }
            records.append(LogRecord(lsn: slot.lsn, epoch: slot.epoch, kind: slot.kind == .write ? .write : .trim,
                                     lba: slot.lba, blockCount: UInt32(slot.blockCount), payload: payload,
                                     payloadCRC: header.payloadCRC))
        }
        guard walPiecesStillValid(first.startPosition), records.count == slots.count else {
            return .recycled(oldestLSN: sequencer.withLock { $0.ring.checkpointLSN } + 1)
        }
        return .records(records)
    }

    /// Whether ring bytes read from `lowestPosition` on are still the records they were
    /// (the tail has not passed them).
    func walPiecesStillValid(_ lowestPosition: UInt64) -> Bool {
        // The copies from the ring must be ordered before the tail is checked.
        atomicMemoryFence(ordering: .acquiring)
        return lowestPosition >= tailPosition.load(ordering: .acquiring)
    }

    // MARK: - Waiting for records

    /// Returns the completed LSN once it passes `lsn`, or after `timeoutMs`, a failure or
    /// a close (then it may still be `lsn` or less).
    func waitForLog(after lsn: UInt64, timeoutMs: Int) async -> UInt64 {
        await withCheckedContinuation { (continuation: CheckedContinuation<UInt64, Never>) in
            let immediate: UInt64? = sequencer.withLock { state in
                let completed = state.ring.completedLSN
                if completed > lsn || state.failure != nil || state.logWaiters.count >= Self.maxLogWaiters {
                    return completed
                }
                let id = state.nextWaiterID
                state.nextWaiterID += 1
                state.logWaiters.append(LogWaiter(id: id, afterLSN: lsn, continuation: continuation))
                // Weak: a pending timer must not keep a dropped volume alive.
                DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(timeoutMs)) { [weak self] in
                    self?.endLogWait(id: id)
                }
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// The waiters the completed LSN has passed, taken off the list (call under the
    /// sequencer lock, then resume them outside it with the completed LSN).
    func takeLogWaiters(_ state: inout SequencerState) -> [(LogWaiter, UInt64)] {
        guard !state.logWaiters.isEmpty else { return [] }
        let completed = state.ring.completedLSN
        var ready: [(LogWaiter, UInt64)] = []
        var waiting: [LogWaiter] = []
        for waiter in state.logWaiters {
            if completed > waiter.afterLSN { ready.append((waiter, completed)) } else { waiting.append(waiter) }
        }
        state.logWaiters = waiting
        return ready
    }

    private func endLogWait(id: UInt64) {
        let ended: (LogWaiter, UInt64)? = sequencer.withLock { state in
            guard let position = state.logWaiters.firstIndex(where: { $0.id == id }) else { return nil }
            return (state.logWaiters.remove(at: position), state.ring.completedLSN)
        }
        if let (waiter, completed) = ended { waiter.continuation.resume(returning: completed) }
    }

    /// Ends every wait (the volume failed or closes).
    func endAllLogWaits() {
        let (waiters, completed) = sequencer.withLock { state in
            defer { state.logWaiters.removeAll() }
            return (state.logWaiters, state.ring.completedLSN)
        }
        for waiter in waiters { waiter.continuation.resume(returning: completed) }
    }

    // MARK: - Holds

    func holdLog(from lsn: UInt64) -> UInt64 {
        sequencer.withLock { state in
            let id = state.nextLogHoldID
            state.nextLogHoldID += 1
            let broken = lsn <= state.ring.checkpointLSN
                ? "LSN \(lsn) was already written back (the log starts at \(state.ring.checkpointLSN + 1))" : nil
            state.logHolds[id] = LogHoldState(lsn: lsn, sinceNs: monotonicNowNs(), broken: broken)
            return id
        }
    }

    /// Moves a hold forward to `lsn` (the holder has every record before it); returns why
    /// the hold broke, or nil while it holds.
    func advanceHold(_ id: UInt64, to lsn: UInt64) -> String? {
        let (broken, wake): (String?, Bool) = sequencer.withLock { state in
            guard var hold = state.logHolds[id] else { return ("no such hold", false) }
            if let broken = hold.broken { return (broken, false) }
            guard lsn > hold.lsn else { return (nil, false) }
            hold.lsn = lsn
            hold.sinceNs = monotonicNowNs()
            state.logHolds[id] = hold
            // Writers may wait for the space this hold kept.
            return (nil, !state.spaceWaiters.isEmpty)
        }
        if wake { requestWriteBack(urgent: true) }
        return broken
    }

    func holdState(_ id: UInt64) -> (lsn: UInt64, broken: String?)? {
        sequencer.withLock { state in state.logHolds[id].map { ($0.lsn, $0.broken) } }
    }

    func releaseHold(_ id: UInt64) {
        let wake = sequencer.withLock { state in
            state.logHolds[id] = nil
            return !state.spaceWaiters.isEmpty
        }
        if wake { requestWriteBack(urgent: true) }
    }

    /// The last LSN the write-back may free now: before the oldest unbroken hold. Breaks
    /// the holds past their bounds first (call under the sequencer lock).
    func retentionLimit(_ state: inout SequencerState, nowNs: UInt64) -> UInt64 {
        guard !state.logHolds.isEmpty else { return .max }
        let maxBytes = UInt64(Double(geometry.walSizeBytes) * options.logRetentionMaxFraction)
        let maxNs = UInt64(options.logRetentionMaxMs) * 1_000_000
        var limit = UInt64.max
        for (id, var hold) in state.logHolds where hold.broken == nil {
            let heldBytes = Self.bytesHeld(from: hold.lsn, in: state.ring)
            if hold.lsn > state.ring.completedLSN {
                // Nothing held: the clock starts when something is.
                hold.sinceNs = nowNs
            } else if heldBytes > maxBytes {
                hold.broken = "the records held reached \(heldBytes) bytes of the log (bound \(maxBytes))"
            } else if nowNs - min(nowNs, hold.sinceNs) > maxNs {
                hold.broken = "the hold did not advance for \(options.logRetentionMaxMs) ms"
            }
            state.logHolds[id] = hold
            if let reason = hold.broken {
                options.logger.warning("log hold broken", metadata: ["path": "\(path)", "reason": "\(reason)"])
                metrics.logHoldsBroken.increment()
                continue
            }
            limit = min(limit, hold.lsn - 1)
        }
        return limit
    }

    /// Ring bytes from the record `lsn` (or the oldest record, if older) to the head.
    static func bytesHeld(from lsn: UInt64, in ring: WALRing) -> UInt64 {
        guard let first = ring.records.first, lsn < ring.nextLSN else { return 0 }
        let index = lsn <= first.lsn ? 0 : Int(lsn - first.lsn)
        return ring.headPosition - ring.records[index].startPosition
    }
}
