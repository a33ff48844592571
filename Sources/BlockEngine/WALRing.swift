// The sequencer's state: LSN allocation, ring space, and which records are complete.
// It is a plain value (no I/O, no locks) so its rules can be tested alone; `Volume` keeps it
// inside one lock, which is what makes LSN order, WAL order and ship order one order
// (invariant 1 in docs/ENGINE.md).
//
// Invariants:
// - `records` holds every record with LSN in (checkpointLSN, nextLSN) in LSN order, and their
//   ring positions increase with their LSNs.
// - tailPosition <= headPosition <= tailPosition + sizeBytes (logical positions only grow).
// - completedLSN is a prefix: every record up to it is written and indexed.
// - The tail moves only when the flusher releases a prefix it made durable (invariant 3 in
//   docs/ENGINE.md).
// - Record epochs never decrease in LSN order: a record takes the ring's epoch when it takes
//   its LSN, and the ring's epoch only grows (recovery cuts the log where an epoch goes
//   backwards, so a regression would lose acknowledged writes).

import DequeModule

/// The LSN and epoch a replicated record keeps from its primary.
struct ReplicatedIdentity: Equatable, Sendable {
    var lsn: UInt64
    var epoch: UInt64
}

/// One reserved record and where it sits in the ring.
struct RecordSlot: Equatable, Sendable {
    var lsn: UInt64
    /// The fencing epoch the record carries, taken with its LSN.
    var epoch: UInt64
    /// Where the reservation began: a PAD record may sit here, before the record itself.
    var startPosition: UInt64
    /// Logical position of the record header.
    var headerPosition: UInt64
    /// Logical position just after the record.
    var endPosition: UInt64
    var kind: WALRecordKind
    var lba: UInt64
    var blockCount: UInt64
    var completed: Bool

    var hasPad: Bool { headerPosition != startPosition }
    var payloadPosition: UInt64 { headerPosition + UInt64(WALRecord.headerBytes) }
}

struct WALRing: Sendable {
    let sizeBytes: UInt64
    private(set) var nextLSN: UInt64
    private(set) var headPosition: UInt64
    private(set) var tailPosition: UInt64
    private(set) var checkpointLSN: UInt64
    private(set) var completedLSN: UInt64
    /// Logical ring position just after the record `completedLSN` (where the completed
    /// prefix of the log ends).
    private(set) var completedEndPosition: UInt64
    private(set) var records: Deque<RecordSlot>
    /// The epoch new records carry.
    private(set) var epoch: UInt64
    /// The epoch of the newest record (0 before any): a replicated record may not be older.
    private(set) var lastRecordEpoch: UInt64

    /// A ring whose log ends at `headPosition`, with `recovered` records already complete.
    init(sizeBytes: UInt64, checkpointLSN: UInt64, tailPosition: UInt64, headPosition: UInt64,
         recovered: [RecordSlot], epoch: UInt64 = 0) {
        precondition(sizeBytes % UInt64(WALRecord.alignmentBytes) == 0, "ring size must be record-aligned")
        precondition(headPosition >= tailPosition, "the head is behind the tail")
        precondition(headPosition - tailPosition <= sizeBytes, "the log is longer than the ring")
        self.sizeBytes = sizeBytes
        self.checkpointLSN = checkpointLSN
        self.tailPosition = tailPosition
        self.headPosition = headPosition
        self.records = Deque(recovered)
        self.epoch = epoch
        self.lastRecordEpoch = recovered.last?.epoch ?? 0
        self.nextLSN = checkpointLSN + 1 + UInt64(recovered.count)
        self.completedLSN = nextLSN - 1
        self.completedEndPosition = headPosition
        precondition(recovered.allSatisfy(\.completed), "recovered records are complete")
        for (offset, slot) in recovered.enumerated() {
            precondition(slot.lsn == checkpointLSN + 1 + UInt64(offset), "recovered records follow the checkpoint without a gap")
            precondition(slot.epoch <= epoch, "a recovered record is from a later epoch than the volume's")
        }
    }

    var usedBytes: UInt64 { headPosition - tailPosition }
    var freeBytes: UInt64 { sizeBytes - usedBytes }
    var lastAllocatedLSN: UInt64 { nextLSN - 1 }

    /// Physical offset within the ring of a logical position.
    func physical(_ position: UInt64) -> UInt64 { position % sizeBytes }

    /// Where the head would be after `reserve` of a record with `payloadLength` payload
    /// bytes, or nil when the ring has no room for it yet (reserves nothing).
    func headPositionAfterReserving(payloadLength: Int) -> UInt64? {
        let size = UInt64(WALRecord.recordBytes(payloadLength: payloadLength))
        let offset = physical(headPosition)
        let pad = offset + size > sizeBytes ? sizeBytes - offset : 0
        guard pad + size <= freeBytes else { return nil }
        return headPosition + pad + size
    }

    /// Reserves space and an LSN for a record with `payloadLength` payload bytes, or returns
    /// nil when the ring has no room for it yet. A `replicated` record (a replica applying
    /// its primary's log) keeps the primary's LSN and epoch: the LSN must be the next one,
    /// the epoch no higher than the ring's and no lower than the last record's.
    mutating func reserve(kind: WALRecordKind, lba: UInt64, blockCount: UInt64,
                          payloadLength: Int, replicated: ReplicatedIdentity? = nil) -> RecordSlot? {
        let size = UInt64(WALRecord.recordBytes(payloadLength: payloadLength))
        precondition(size <= sizeBytes / 2, "record larger than half the ring")
        let offset = physical(headPosition)
        let pad = offset + size > sizeBytes ? sizeBytes - offset : 0
        guard pad + size <= freeBytes else { return nil }
        if let replicated {
            precondition(replicated.lsn == nextLSN, "a replicated record out of LSN order")
            precondition(replicated.epoch <= epoch && replicated.epoch >= lastRecordEpoch,
                         "a replicated record's epoch outside the ring's")
        }
        let slot = RecordSlot(lsn: nextLSN, epoch: replicated?.epoch ?? epoch, startPosition: headPosition,
                              headerPosition: headPosition + pad,
                              endPosition: headPosition + pad + size, kind: kind, lba: lba,
                              blockCount: blockCount, completed: false)
        // One comparison per record, kept in release builds: a gap would make the checkpoint
        // and recovery skip a record.
        precondition(slot.lsn == (records.last?.lsn ?? checkpointLSN) + 1, "LSN gap")
        nextLSN += 1
        headPosition = slot.endPosition
        lastRecordEpoch = slot.epoch
        records.append(slot)
        return slot
    }

    /// Records reserved from now on carry `newEpoch` (never lower than the current one).
    mutating func adopt(epoch newEpoch: UInt64) {
        precondition(newEpoch >= epoch, "the epoch went backwards")
        epoch = newEpoch
    }

    /// Forgets every record after `lsn` (all complete, none checkpointed): the head moves
    /// back to the end of record `lsn` (or to the tail), and LSNs after it are handed out
    /// again.
    mutating func truncate(after lsn: UInt64) {
        precondition(lsn >= checkpointLSN && lsn <= completedLSN, "truncating outside the completed log")
        precondition(completedLSN == nextLSN - 1, "truncating with records in flight")
        while let last = records.last, last.lsn > lsn { records.removeLast() }
        headPosition = records.last?.endPosition ?? tailPosition
        nextLSN = lsn + 1
        completedLSN = lsn
        completedEndPosition = headPosition
        lastRecordEpoch = records.last?.epoch ?? 0
    }

    /// Ring bytes from the end of record `lsn` to the head: what a copy durable up to `lsn`
    /// lacks of this log. Nil when `lsn` is before the checkpoint (its successors were
    /// written back: the copy lacks more than the log holds).
    func bytes(after lsn: UInt64) -> UInt64? {
        if lsn == checkpointLSN { return headPosition - tailPosition }
        guard lsn > checkpointLSN, let first = records.first, lsn >= first.lsn else { return nil }
        let index = Int(lsn - first.lsn)
        guard index < records.count else { return 0 }
        return headPosition - records[index].endPosition
    }

    /// Marks a reserved record as written and indexed; returns true when the completed
    /// prefix advanced.
    mutating func complete(lsn: UInt64) -> Bool {
        guard let first = records.first, lsn >= first.lsn else {
            preconditionFailure("completing LSN \(lsn) that is not pending")
        }
        let index = Int(lsn - first.lsn)
        precondition(index < records.count, "completing LSN \(lsn) that was never reserved")
        precondition(!records[index].completed, "double completion of \(lsn)")
        records[index].completed = true
        let before = completedLSN
        var next = Int(completedLSN + 1 - first.lsn)
        while next < records.count && records[next].completed {
            completedLSN += 1
            completedEndPosition = records[next].endPosition
            next += 1
        }
        return completedLSN != before
    }

    /// The oldest complete records not yet checkpointed, up to about `maxBytes` of ring
    /// (at least one record when any is ready) and none after `throughLSN` (records that
    /// must stay in the log for a replica, `LogRetention`).
    func flushBatch(maxBytes: UInt64, throughLSN: UInt64 = .max) -> [RecordSlot] {
        var batch: [RecordSlot] = []
        guard let first = records.first else { return batch }
        for slot in records {
            guard slot.lsn <= completedLSN, slot.lsn <= throughLSN else { break }
            if !batch.isEmpty && slot.endPosition - first.startPosition > maxBytes { break }
            batch.append(slot)
        }
        return batch
    }

    /// Forgets every record up to `lsn` (its data is durable in the data region and the
    /// superblock says so) and frees its ring space.
    mutating func release(throughLSN lsn: UInt64) {
        precondition(lsn <= completedLSN, "releasing an incomplete record")
        while let first = records.first, first.lsn <= lsn {
            tailPosition = first.endPosition
            records.removeFirst()
        }
        if records.isEmpty { tailPosition = headPosition }
        checkpointLSN = lsn
        precondition((records.first?.lsn ?? nextLSN) == lsn + 1, "checkpoint is a prefix")
    }
}
