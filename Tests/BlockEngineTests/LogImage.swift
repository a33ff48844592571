// A volume image whose log a test writes record by record, so recovery can be shown exact
// damage: a flipped payload byte, a lost header, a stale record of an earlier session.

@testable import BlockEngine

struct LogImage {
    static let blockSizeBytes = 512
    static let blockCount: UInt64 = 64
    static let walSizeBytes: UInt64 = 64 * 1024
    static let sessionID: UInt64 = 0x5E55_1011

    private(set) var bytes: [UInt8]
    private(set) var superblock: Superblock
    /// Logical ring position of the next record.
    private(set) var position: UInt64

    /// A formatted volume whose superblock says the log starts at `tailPosition` after
    /// `checkpointLSN`, in the session `sessionID` that began at `sessionStartLSN`.
    init(checkpointLSN: UInt64 = 0, tailPosition: UInt64 = 0, sessionStartLSN: UInt64 = 1) throws {
        let file = SimulatedFile()
        try Volume.format(file: file, configuration: VolumeConfiguration(
            sizeBytes: Self.blockCount * UInt64(Self.blockSizeBytes), blockSizeBytes: Self.blockSizeBytes,
            walSizeBytes: Self.walSizeBytes))
        bytes = file.image
        // Format writes sequence 1, into slot 1; this superblock (sequence 2) goes to slot 0.
        guard case var .valid(superblock) = Superblock.decode(
            Array(bytes[Superblock.slotSizeBytes..<(2 * Superblock.slotSizeBytes)])) else {
            throw BlockError.notAVolume(path: "image")
        }
        superblock.sequence += 1
        superblock.checkpointLSN = checkpointLSN
        superblock.walTailPosition = tailPosition
        superblock.sessionID = Self.sessionID
        superblock.sessionStartLSN = sessionStartLSN
        self.superblock = superblock
        position = tailPosition
        store(superblock.encoded(), atFileOffset: superblock.slotOffsetBytes)
    }

    /// Appends a WRITE record of `blocks` blocks at `lba` (contents: `pattern(tag: lsn, ...)`);
    /// returns its logical position.
    @discardableResult
    mutating func write(lsn: UInt64, lba: UInt64, blocks: UInt32 = 1, hint: UInt64,
                        sessionID: UInt64 = LogImage.sessionID) -> UInt64 {
        let payload = patterns(tag: lsn, lba: lba, blockCount: Int(blocks), blockSize: Self.blockSizeBytes)
        let header = WALRecordHeader(kind: .write, lsn: lsn, epoch: 0, sessionID: sessionID, lba: lba,
                                     blockCount: blocks, payloadLength: UInt32(payload.count),
                                     durableHintLSN: hint, payloadCRC: CRC32C.checksum(payload))
        return place(header, payload: payload)
    }

    /// Fills the rest of the ring with a PAD record carrying `lsn` (that of the record after
    /// it); the next record starts the next lap.
    mutating func pad(lsn: UInt64, hint: UInt64) {
        let rest = Self.walSizeBytes - position % Self.walSizeBytes
        let header = WALRecordHeader(kind: .pad, lsn: lsn, epoch: 0, sessionID: Self.sessionID, lba: 0,
                                     blockCount: 0, payloadLength: UInt32(rest) - UInt32(WALRecord.headerBytes),
                                     durableHintLSN: hint, payloadCRC: 0)
        place(header, payload: [UInt8](repeating: 0, count: Int(rest) - WALRecord.headerBytes))
    }

    /// Moves the write position (to lay out stale records somewhere else).
    mutating func move(to logicalPosition: UInt64) { position = logicalPosition }

    /// Flips one byte of the record at `logicalPosition`, `offset` bytes into it (0..<64
    /// damages the header, later offsets the payload).
    mutating func damage(recordAt logicalPosition: UInt64, offset: Int) {
        bytes[Int(fileOffset(logicalPosition)) + offset] ^= 0x40
    }

    func fileOffset(_ logicalPosition: UInt64) -> UInt64 {
        superblock.walOffsetBytes + logicalPosition % Self.walSizeBytes
    }

    @discardableResult
    private mutating func place(_ header: WALRecordHeader, payload: [UInt8]) -> UInt64 {
        let start = position
        var headerBytes = [UInt8](repeating: 0, count: WALRecord.headerBytes)
        headerBytes.withUnsafeMutableBytes { header.encode(into: $0) }
        store(headerBytes + payload, atFileOffset: fileOffset(start))
        position = start + UInt64(header.recordBytes)
        return start
    }

    private mutating func store(_ data: [UInt8], atFileOffset offset: UInt64) {
        bytes.replaceSubrange(Int(offset)..<(Int(offset) + data.count), with: data)
    }
}
