// Recovery: find the newest valid superblock, then scan the WAL forward from the checkpoint
// while records validate, and rebuild the read index. It only reads; the caller decides
// whether to write anything afterwards (invariant 6 in docs/ENGINE.md: a volume that fails
// to open is never modified).
//
// The scan accepts a record only if its header and payload checksums match, its LSN is the
// next one expected, its fields fit the volume, and — for LSNs from the current session on —
// it carries the session id in the superblock (so stale records beyond an earlier torn tail
// never come back). The first record that fails ends the log: a torn tail. It is corruption
// instead when a later intact record of the log proves (through its durable-LSN hint) that
// the failed record had been made durable (DurabilityProof.swift); then open fails and says
// where.

/// The result of reading a volume's metadata and log.
struct RecoveredState {
    var superblock: Superblock
    /// What the other superblock slot holds (for inspection).
    var otherSlot: Superblock.SlotContent
    var records: [RecordSlot]
    /// Logical WAL position where the next record goes.
    var headPosition: UInt64
    var index: RangeMap
    /// Why the scan stopped, in words.
    var scanStop: String
    var fileSizeBytes: UInt64

    var nextLSN: UInt64 { superblock.checkpointLSN + 1 + UInt64(records.count) }
}

enum Recovery {
    /// Reads and validates everything needed to open the volume in `file`.
    static func recover(file: any VolumeFileIO, path: String) throws(BlockError) -> RecoveredState {
        let fileSize = try file.sizeBytes()
        let (superblock, other) = try loadSuperblock(file: file, path: path, fileSizeBytes: fileSize)
        guard fileSize >= superblock.requiredFileSizeBytes else {
            throw .truncated(expectedBytes: superblock.requiredFileSizeBytes, actualBytes: fileSize)
        }
        var scanner = WALScanner(file: file, superblock: superblock)
        try scanner.scan()
        return RecoveredState(superblock: superblock, otherSlot: other, records: scanner.records,
                              headPosition: scanner.position, index: scanner.index,
                              scanStop: scanner.stopReason, fileSizeBytes: fileSize)
    }

    /// Picks the valid slot with the highest sequence number. A slot of another format
    /// version refuses the open even next to a valid one: a newer binary wrote it, its
    /// sequence cannot be read, and the valid slot may be the stale one; opening that would
    /// replay an old state and overwrite the newer slot.
    static func loadSuperblock(file: any VolumeFileIO, path: String,
                               fileSizeBytes: UInt64) throws(BlockError) -> (Superblock, Superblock.SlotContent) {
        var slots: [Superblock.SlotContent] = []
        for slot in 0..<Superblock.slotCount {
            let offset = UInt64(slot * Superblock.slotSizeBytes)
            let available = Int(min(UInt64(Superblock.slotSizeBytes), fileSizeBytes > offset ? fileSizeBytes - offset : 0))
            var bytes = [UInt8](repeating: 0, count: available)
            if available > 0 {
                try bytes.withMutableBytes { (buffer) throws(BlockError) in try file.read(into: buffer, at: offset) }
            }
            slots.append(Superblock.decode(bytes))
        }
        for content in slots {
            if case let .unsupportedVersion(version) = content {
                throw .unsupportedVersion(found: version, supported: Superblock.formatVersion)
            }
        }
        let valid = slots.enumerated().compactMap { index, content -> (Int, Superblock)? in
            if case let .valid(superblock) = content { return (index, superblock) }
            return nil
        }
        if let (index, newest) = valid.max(by: { $0.1.sequence < $1.1.sequence }) {
            return (newest, slots[1 - index])
        }
        if slots.allSatisfy({ $0 == .blank }) {
            if fileSizeBytes < UInt64(Superblock.slotSizeBytes) && fileSizeBytes > 0 {
                var head = [UInt8](repeating: 0, count: Int(fileSizeBytes))
                try head.withMutableBytes { (buffer) throws(BlockError) in try file.read(into: buffer, at: 0) }
                if head.starts(with: Superblock.magic) {
                    throw .truncated(expectedBytes: UInt64(Superblock.slotSizeBytes * 2), actualBytes: fileSizeBytes)
                }
            }
            throw .notAVolume(path: path)
        }
        let reasons = slots.enumerated().map { index, content -> String in
            switch content {
            case let .corrupt(reason): return "slot \(index): \(reason)"
            case .blank: return "slot \(index): blank"
            default: return "slot \(index): unusable"
            }
        }
        if fileSizeBytes < UInt64(Superblock.slotSizeBytes * Superblock.slotCount) {
            throw .truncated(expectedBytes: UInt64(Superblock.slotSizeBytes * Superblock.slotCount),
                             actualBytes: fileSizeBytes)
        }
        throw .corrupt(location: "superblock", reason: reasons.joined(separator: "; "))
    }
}

/// Walks the WAL ring from the checkpoint. Reads through a window so a full WAL costs a few
/// large reads, not two per record.
struct WALScanner {
    let file: any VolumeFileIO
    let superblock: Superblock
    private(set) var records: [RecordSlot] = []
    private(set) var index: RangeMap
    private(set) var position: UInt64
    private(set) var stopReason = ""
    private var window = WindowReader()
    private var lastEpoch: UInt64 = 0

    init(file: any VolumeFileIO, superblock: Superblock) {
        self.file = file
        self.superblock = superblock
        self.index = RangeMap(blockSizeBytes: Int(superblock.blockSizeBytes))
        self.position = superblock.walTailPosition
    }

    private var ringSize: UInt64 { superblock.walSizeBytes }
    private var expectedLSN: UInt64 { superblock.checkpointLSN + 1 + UInt64(records.count) }

    /// Why a record at a position is not accepted.
    private enum Verdict {
        case accept(WALRecordHeader)
        /// The log ends here. `knownLength` is the record's length when its header was intact.
        case end(String, knownLength: Int?)
    }

    mutating func scan() throws(BlockError) {
        let lapEnd = superblock.walTailPosition + ringSize
        var recordStart = position
        // Each iteration advances by at least one 64-byte record, so the loop is bounded by
        // one lap of the ring.
        while position < lapEnd {
            let verdict = try examine(at: position, lapEnd: lapEnd)
            switch verdict {
            case let .end(reason, knownLength):
                stopReason = reason
                try checkForCorruption(at: position, knownLength: knownLength, lapEnd: lapEnd)
                // A PAD whose record did not survive belongs to nothing: the log ends where
                // the PAD began, and the next writer pads again with its own session.
                position = recordStart
                return
            case let .accept(header):
                let offset = position % ringSize
                if header.kind == .pad {
                    position += ringSize - offset
                    continue
                }
                let end = position + UInt64(header.recordBytes)
                let slot = RecordSlot(lsn: header.lsn, epoch: header.epoch, startPosition: recordStart, headerPosition: position,
                                      endPosition: end, kind: header.kind, lba: header.lba,
                                      blockCount: UInt64(header.blockCount), completed: true)
                index.insert(lba: header.lba, blockCount: UInt64(header.blockCount), lsn: header.lsn,
                             location: header.kind == .write ? .wal(position: slot.payloadPosition) : .trimmed)
                records.append(slot)
                lastEpoch = header.epoch
                position = end
                recordStart = end
            }
        }
        stopReason = "scanned one full lap of the ring"
    }

    private mutating func examine(at logical: UInt64, lapEnd: UInt64) throws(BlockError) -> Verdict {
        let offset = logical % ringSize
        let headerBytes = try window.bytes(file: file, superblock: superblock, ringOffset: offset,
                                           count: WALRecord.headerBytes)
        let decoded = headerBytes.withUnsafeBytes { WALRecordHeader.decode($0) }
        let header: WALRecordHeader
        switch decoded {
        case .noRecord:
            return .end("no record at ring offset \(offset)", knownLength: nil)
        case let .invalid(reason):
            return .end("invalid record header at ring offset \(offset): \(reason)", knownLength: nil)
        case let .valid(valid):
            header = valid
        }
        let expected = expectedLSN
        guard header.lsn == expected else {
            return .end("LSN \(header.lsn) at ring offset \(offset) where \(expected) was expected", knownLength: nil)
        }
        if header.lsn >= superblock.sessionStartLSN && header.sessionID != superblock.sessionID {
            return .end("record \(header.lsn) belongs to an earlier session", knownLength: nil)
        }
        guard header.epoch <= superblock.epoch && header.epoch >= lastEpoch else {
            return .end("record \(header.lsn) has epoch \(header.epoch) outside \(lastEpoch)...\(superblock.epoch)",
                        knownLength: nil)
        }
        let length = header.recordBytes
        guard offset + UInt64(length) <= ringSize, logical + UInt64(length) <= lapEnd else {
            return .end("record \(header.lsn) would cross the end of the ring", knownLength: nil)
        }
        switch header.kind {
        case .pad:
            guard header.blockCount == 0, offset + UInt64(length) == ringSize else {
                return .end("PAD record \(header.lsn) does not end at the end of the ring", knownLength: nil)
            }
            return .accept(header)
        case .trim:
            guard header.payloadLength == 0 else {
                return .end("TRIM record \(header.lsn) carries a payload", knownLength: nil)
            }
        case .write:
            guard UInt64(header.payloadLength) == UInt64(header.blockCount) * UInt64(superblock.blockSizeBytes) else {
                return .end("WRITE record \(header.lsn) payload length mismatch", knownLength: nil)
            }
        }
        guard header.blockCount > 0, header.lba < superblock.blockCount,
              UInt64(header.blockCount) <= superblock.blockCount - header.lba else {
            return .end("record \(header.lsn) addresses blocks outside the volume", knownLength: nil)
        }
        guard header.durableHintLSN < header.lsn else {
            return .end("record \(header.lsn) claims durability of itself", knownLength: nil)
        }
        if header.payloadLength > 0 {
            let payload = try window.bytes(file: file, superblock: superblock,
                                           ringOffset: offset + UInt64(WALRecord.headerBytes),
                                           count: Int(header.payloadLength))
            let crc = payload.withUnsafeBytes { CRC32C.checksum($0) }
            guard crc == header.payloadCRC else {
                return .end("record \(header.lsn) payload checksum mismatch", knownLength: length)
            }
        } else if header.payloadCRC != 0 {
            return .end("record \(header.lsn) has a checksum for an empty payload", knownLength: length)
        }
        return .accept(header)
    }

    /// A record that fails is a torn tail unless a later intact record of the same log says it
    /// had been made durable (DurabilityProof.swift); then the volume is refused, untouched.
    private mutating func checkForCorruption(at logical: UInt64, knownLength: Int?,
                                             lapEnd: UInt64) throws(BlockError) {
        let failedLSN = expectedLSN
        var search = DurabilityProofSearch(superblock: superblock, failedLSN: failedLSN, lapEnd: lapEnd,
                                           epochFloor: lastEpoch)
        guard let proof = try search.find(after: logical, knownLength: knownLength, file: file, window: &window)
        else { return }
        let fileOffset = superblock.walOffsetBytes + logical % ringSize
        let proofOffset = superblock.walOffsetBytes + proof.position % ringSize
        throw .corrupt(location: "WAL record \(failedLSN) at file offset \(fileOffset)",
                       reason: "\(stopReason), but record \(proof.lsn) at file offset \(proofOffset) "
                           + "shows it had been made durable")
    }
}

/// Serves small reads of the ring from a 1 MiB window that slides forward.
struct WindowReader {
    private var bytes: [UInt8] = []
    private var start: UInt64 = 0
    static let windowBytes = 1 << 20

    mutating func bytes(file: any VolumeFileIO, superblock: Superblock, ringOffset: UInt64,
                        count: Int) throws(BlockError) -> ArraySlice<UInt8> {
        precondition(ringOffset + UInt64(count) <= superblock.walSizeBytes, "read past the ring")
        if ringOffset >= start && ringOffset + UInt64(count) <= start + UInt64(bytes.count) {
            let from = Int(ringOffset - start)
            return bytes[from..<(from + count)]
        }
        let length = Int(min(UInt64(max(count, Self.windowBytes)), superblock.walSizeBytes - ringOffset))
        if bytes.count != length { bytes = [UInt8](repeating: 0, count: length) }
        start = ringOffset
        try bytes.withMutableBytes { (buffer) throws(BlockError) in
            try file.read(into: buffer, at: superblock.walOffsetBytes + ringOffset)
        }
        return bytes[0..<count]
    }
}
