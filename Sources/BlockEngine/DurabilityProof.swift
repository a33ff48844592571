// Whether the record that ended the WAL scan had been made durable (docs/ENGINE.md,
// "Recovery: torn tail or corruption"). Every record header carries the highest LSN that was
// durable when the record was written, so an intact later record of the same log whose hint
// reaches the failed LSN proves that the failed record had been flushed (and so may have been
// acknowledged): the damage is then corruption, never a torn tail to cut.
//
// The proof need not be the failed record's successor: a record written before the failed
// one was synced carries a lower hint, and only a later one the higher. So the search walks
// the chain of records after the failure. Where a header is intact and carries the next LSN,
// its length says where the next record starts; where it is not (damaged too, or left from
// something else), the next intact record of the chain is looked for within one maximal
// record length (a run of damage longer than that ends the search), and at the start of the
// next lap (after a damaged PAD).
//
// Intact records that are not part of this log must never count:
// - leftovers of an earlier lap carry LSNs below the failed one (and hints below those);
// - leftovers of an earlier session beyond its torn tail fail the session rule: from the
//   session start LSN on, records carry the superblock's session id;
// - a chain record carries the next LSN (or, after a gap of n slots of 64 bytes, at most n
//   more), an epoch between the previous record's and the superblock's, and fits the ring.

/// The first intact later record of the log that shows a failed record had been durable.
struct DurabilityProof {
    let lsn: UInt64
    /// Logical ring position of its header.
    let position: UInt64
}

struct DurabilityProofSearch {
    let superblock: Superblock
    /// The LSN the scan expected where it stopped.
    let failedLSN: UInt64
    /// The scan's bound: one lap of the ring from the tail.
    let lapEnd: UInt64
    /// Epoch of the last record accepted before the failure: later records carry at least it.
    var epochFloor: UInt64

    private var ringSize: UInt64 { superblock.walSizeBytes }
    private var slotBytes: UInt64 { UInt64(WALRecord.alignmentBytes) }
    private var maxRecordBytes: UInt64 {
        UInt64(WALRecord.recordBytes(payloadLength: WALLayout.maxPayloadBytes(
            walSizeBytes: ringSize, blockSizeBytes: Int(superblock.blockSizeBytes))))
    }

    /// Walks the records after the failed one at `failedPosition` (whose length is known when
    /// its header was intact) and returns the first whose durable hint covers the failed LSN.
    mutating func find(after failedPosition: UInt64, knownLength: Int?, file: any VolumeFileIO,
                       window: inout WindowReader) throws(BlockError) -> DurabilityProof? {
        var expected = failedLSN + 1
        var next: UInt64? = knownLength.map { failedPosition + UInt64($0) }
        var gapStart = failedPosition
        // Each step lands on a later position than the one before (a record is at least one
        // 64-byte slot), and every position stays below lapEnd: at most one lap of steps.
        while true {
            var found: (header: WALRecordHeader, position: UInt64)?
            if let exact = next {
                if let header = try chainRecord(at: exact, lsns: expected...expected, file: file, window: &window) {
                    found = (header, exact)
                } else {
                    gapStart = exact
                }
            }
            if found == nil {
                found = try search(after: gapStart, expected: expected, file: file, window: &window)
            }
            guard let (header, position) = found else { return nil }
            if header.durableHintLSN >= failedLSN { return DurabilityProof(lsn: header.lsn, position: position) }
            epochFloor = header.epoch
            if header.kind == .pad {
                // A PAD carries the LSN of the record that starts the next lap.
                expected = header.lsn
                next = (position / ringSize + 1) * ringSize
            } else {
                expected = header.lsn + 1
                next = position + UInt64(header.recordBytes)
            }
        }
    }

    /// The first chain record after the unreadable one at `gapStart`: within one maximal
    /// record length, or at the start of the next lap.
    private func search(after gapStart: UInt64, expected: UInt64, file: any VolumeFileIO,
                                 window: inout WindowReader) throws(BlockError) -> (WALRecordHeader, UInt64)? {
        var candidates = stride(from: gapStart + slotBytes, through: min(gapStart + maxRecordBytes, lapEnd - 1),
                                by: Int(slotBytes)).map { $0 }
        let nextLap = (gapStart / ringSize + 1) * ringSize
        if candidates.last.map({ $0 < nextLap }) ?? true, nextLap < lapEnd { candidates.append(nextLap) }
        for candidate in candidates {
            // Each record skipped in the gap took at least one slot, and a PAD takes no LSN.
            let skippedAtMost = (candidate - gapStart) / slotBytes
            if let header = try chainRecord(at: candidate, lsns: expected...(expected + skippedAtMost),
                                            file: file, window: &window) {
                return (header, candidate)
            }
        }
        return nil
    }

    /// The header at `position` when it is intact and can belong to this log after the
    /// failure: LSN in `lsns`, the session rule, epochs, and a place in the ring that fits.
    private func chainRecord(at position: UInt64, lsns: ClosedRange<UInt64>, file: any VolumeFileIO,
                             window: inout WindowReader) throws(BlockError) -> WALRecordHeader? {
        guard position < lapEnd else { return nil }
        let offset = position % ringSize
        let bytes = try window.bytes(file: file, superblock: superblock, ringOffset: offset, count: WALRecord.headerBytes)
        guard case let .valid(header) = bytes.withUnsafeBytes({ WALRecordHeader.decode($0) }) else { return nil }
        guard lsns.contains(header.lsn) else { return nil }
        guard header.lsn < superblock.sessionStartLSN || header.sessionID == superblock.sessionID else { return nil }
        guard header.epoch >= epochFloor else { return nil }
        guard header.epoch <= superblock.epoch else { return nil }
        guard header.durableHintLSN < header.lsn else { return nil }
        let length = UInt64(header.recordBytes)
        guard offset + length <= ringSize else { return nil }
        guard position + length <= lapEnd else { return nil }
        if header.kind == .pad {
            guard offset + length == ringSize else { return nil }
        } else {
            guard header.lba < superblock.blockCount else { return nil }
            guard UInt64(header.blockCount) <= superblock.blockCount - header.lba else { return nil }
        }
        return header
    }
}
