// What both sides of a rebuild compute over a volume: segment digests (SHA-256 of each
// segment's blocks as a reader sees them now) and the conversions between the engine's log
// records and shipped records.

import BlockEngine
import Crypto
import NIOCore

enum VolumeSegments {
    /// Blocks per segment a rebuild compares and copies: 1 MiB of 4 KiB blocks.
    static let segmentBytes = 1 << 20
    /// Segments per digest request (a reply carries 32 bytes per segment).
    static let segmentsPerRequest: UInt32 = 64

    static func blocksPerSegment(_ volume: Volume) -> UInt32 { UInt32(segmentBytes / volume.blockSizeBytes) }

    static func segmentCount(_ volume: Volume) -> UInt64 {
        let per = UInt64(blocksPerSegment(volume))
        return (volume.blockCount + per - 1) / per
    }

    /// The blocks of segment `index` (the last one may be short) and their first LBA.
    static func segment(_ index: UInt64, of volume: Volume, blocksPerSegment: UInt32) -> (lba: UInt64, count: Int) {
        let lba = index * UInt64(blocksPerSegment)
        return (lba, Int(min(UInt64(blocksPerSegment), volume.blockCount - lba)))
    }

    /// SHA-256 of each segment in `range`, read through the volume (log and data region). A
    /// segment with no storage behind it (never written or trimmed: it reads as zeros) is
    /// not read: its digest is that of zeros.
    static func digests(_ volume: Volume, range: SegmentRange) async throws -> [[UInt8]] {
        var digests: [[UInt8]] = []
        digests.reserveCapacity(Int(range.segmentCount))
        var zeros = ZeroDigests()
        for index in range.firstSegment..<(range.firstSegment + UInt64(range.segmentCount)) {
            let (lba, count) = segment(index, of: volume, blocksPerSegment: range.blocksPerSegment)
            if try isDeallocated(volume, lba: lba, blockCount: count) {
                digests.append(zeros.digest(bytes: count * volume.blockSizeBytes))
                continue
            }
            let bytes = try await volume.read(at: lba, blockCount: count)
            digests.append(Array(SHA256.hash(data: bytes)))
        }
        return digests
    }

    /// Whether the blocks have no storage behind them now (they read as zeros), from the
    /// index and the data region's holes; false when unsure.
    static func isDeallocated(_ volume: Volume, lba: UInt64, blockCount: Int) throws -> Bool {
        let status = try volume.blockStatus(at: lba, blockCount: UInt64(blockCount))
        return status.allSatisfy { $0.provisioning == .deallocated }
    }

    /// SHA-256 of a run of zero bytes, per length (a volume has at most two segment lengths).
    struct ZeroDigests {
        private var known: [Int: [UInt8]] = [:]

        mutating func digest(bytes: Int) -> [UInt8] {
            if let digest = known[bytes] { return digest }
            let digest = Array(SHA256.hash(data: [UInt8](repeating: 0, count: bytes)))
            known[bytes] = digest
            return digest
        }
    }

    /// Whether every byte is zero.
    static func isAllZero(_ buffer: ByteBuffer) -> Bool {
        buffer.withUnsafeReadableBytes { bytes in
            var index = 0
            var accumulated: UInt64 = 0
            // Bounded by the buffer; tests the accumulator every 64 bytes.
            while index + 64 <= bytes.count {
                for word in 0..<8 { accumulated |= bytes.loadUnaligned(fromByteOffset: index + word * 8, as: UInt64.self) }
                if accumulated != 0 { return false }
                index += 64
            }
            while index < bytes.count {
                if bytes[index] != 0 { return false }
                index += 1
            }
            return true
        }
    }

    /// The segment's blocks as they read now, in a buffer a frame can carry without a copy.
    static func read(_ volume: Volume, lba: UInt64, blockCount: Int) async throws -> ByteBuffer {
        let bytes = blockCount * volume.blockSizeBytes
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
        defer { storage.deallocate() }
        try await volume.read(at: lba, into: storage)
        return ByteBuffer(bytes: UnsafeRawBufferPointer(storage))
    }
}

/// A frame's bytes handed to the engine as they are (no copy into an array first).
struct ByteBufferSource: BlockWriteSource {
    let buffer: ByteBuffer

    var byteCount: Int { buffer.readableBytes }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeReadableBytes(body)
    }
}

extension ShippedRecord {
    init(_ record: LogRecord) {
        self.init(lsn: record.lsn, epoch: record.epoch, kind: record.kind == .write ? .write : .trim, lba: record.lba,
                  blockCount: record.blockCount, payloadCRC: record.payloadCRC,
                  payload: ByteBuffer(bytes: record.payload))
    }
}

extension LogRecord {
    init(_ record: ShippedRecord) {
        self.init(lsn: record.lsn, epoch: record.epoch, kind: record.kind == .write ? .write : .trim, lba: record.lba,
                  blockCount: record.blockCount, payload: Array(record.payload.readableBytesView),
                  payloadCRC: record.payloadCRC)
    }
}
