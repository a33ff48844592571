// One write-ahead-log record: a 64-byte header and its payload (docs/FORMAT.md).
//
// Invariants:
// - A record validates itself: the header CRC covers header bytes [0, 60), the payload CRC
//   covers the payload. A record is accepted only if both match (invariant 2 in
//   docs/ENGINE.md).
// - Records start on 64-byte boundaries and never straddle the end of the ring: a PAD record
//   fills the rest of the ring and the next record starts at physical offset 0.
// - A PAD record carries the LSN of the record that follows it and consumes no LSN.

/// The kinds of WAL record.
enum WALRecordKind: UInt8, Sendable {
    /// Payload = the blocks written at `lba`.
    case write = 1
    /// No payload: `blockCount` blocks at `lba` read as zeros from now on.
    case trim = 2
    /// Skips `payloadLength` bytes to the end of the ring.
    case pad = 3
}

/// The fixed-size header of a WAL record.
struct WALRecordHeader: Equatable, Sendable {
    var kind: WALRecordKind
    var lsn: UInt64
    var epoch: UInt64
    var sessionID: UInt64
    var lba: UInt64
    var blockCount: UInt32
    var payloadLength: UInt32
    /// The highest LSN known durable when this record was written: if this record survives,
    /// every record up to this LSN must have survived too (lets recovery tell corruption
    /// from a torn tail).
    var durableHintLSN: UInt64
    var payloadCRC: UInt32

    static let magic: UInt32 = 0x4345_5257 // "WREC" little-endian
    static let version: UInt8 = 1

    func encode(into header: UnsafeMutableRawBufferPointer) {
        precondition(header.count >= WALRecord.headerBytes, "header buffer too small")
        header.storeLE(Self.magic, at: 0)
        header[4] = Self.version
        header[5] = kind.rawValue
        header.storeLE(UInt16(0), at: 6)
        header.storeLE(lsn, at: 8)
        header.storeLE(epoch, at: 16)
        header.storeLE(sessionID, at: 24)
        header.storeLE(lba, at: 32)
        header.storeLE(blockCount, at: 40)
        header.storeLE(payloadLength, at: 44)
        header.storeLE(durableHintLSN, at: 48)
        header.storeLE(payloadCRC, at: 56)
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: header[0..<60]))
        header.storeLE(crc, at: 60)
    }

    enum Decoded: Equatable {
        case valid(WALRecordHeader)
        /// Not a record header at all (no magic): typically never-written space.
        case noRecord
        case invalid(String)
    }

    /// Decodes and checks a header. Never traps on any input.
    static func decode(_ bytes: UnsafeRawBufferPointer) -> Decoded {
        guard bytes.count >= WALRecord.headerBytes else {
            return .invalid("header truncated to \(bytes.count) bytes")
        }
        guard bytes.loadLE(UInt32.self, at: 0) == magic else { return .noRecord }
        let stored = bytes.loadLE(UInt32.self, at: 60)
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<60]))
        guard stored == computed else { return .invalid("header checksum mismatch") }
        guard bytes[4] == version else { return .invalid("record version \(bytes[4])") }
        guard let kind = WALRecordKind(rawValue: bytes[5]) else {
            return .invalid("unknown record kind \(bytes[5])")
        }
        guard bytes.loadLE(UInt16.self, at: 6) == 0 else { return .invalid("reserved flags set") }
        let header = WALRecordHeader(
            kind: kind,
            lsn: bytes.loadLE(UInt64.self, at: 8),
            epoch: bytes.loadLE(UInt64.self, at: 16),
            sessionID: bytes.loadLE(UInt64.self, at: 24),
            lba: bytes.loadLE(UInt64.self, at: 32),
            blockCount: bytes.loadLE(UInt32.self, at: 40),
            payloadLength: bytes.loadLE(UInt32.self, at: 44),
            durableHintLSN: bytes.loadLE(UInt64.self, at: 48),
            payloadCRC: bytes.loadLE(UInt32.self, at: 56))
        return .valid(header)
    }

    /// Bytes the record occupies in the ring, header included.
    var recordBytes: Int { WALRecord.recordBytes(payloadLength: Int(payloadLength)) }
}

enum WALRecord {
    static let headerBytes = 64
    static let alignmentBytes = 64

    static func recordBytes(payloadLength: Int) -> Int {
        let raw = headerBytes + payloadLength
        return (raw + alignmentBytes - 1) / alignmentBytes * alignmentBytes
    }
}

/// Size limits of the WAL region.
enum WALLayout {
    static let minimumSizeBytes: UInt64 = 64 * 1024
    static let maximumSizeBytes: UInt64 = 64 * 1024 * 1024 * 1024
    static let defaultSizeBytes: UInt64 = 64 * 1024 * 1024

    /// The largest payload one record may carry: a quarter of the ring, at most 4 MiB, so a
    /// record always fits once the flusher has drained the ring. Larger writes are split.
    static func maxPayloadBytes(walSizeBytes: UInt64, blockSizeBytes: Int) -> Int {
        let quarter = Int(min(walSizeBytes / 4, 4 * 1024 * 1024)) - WALRecord.headerBytes
        return quarter / blockSizeBytes * blockSizeBytes
    }
}
