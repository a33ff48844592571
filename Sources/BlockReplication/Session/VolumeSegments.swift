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

    /// SHA-256 of each segment in `range`, read through the volume (log and data region).
    static func digests(_ volume: Volume, range: SegmentRange) async throws -> [[UInt8]] {
        var digests: [[UInt8]] = []
        digests.reserveCapacity(Int(range.segmentCount))
        for index in range.firstSegment..<(range.firstSegment + UInt64(range.segmentCount)) {
            let (lba, count) = segment(index, of: volume, blocksPerSegment: range.blocksPerSegment)
            let bytes = try await volume.read(at: lba, blockCount: count)
            digests.append(Array(SHA256.hash(data: bytes)))
        }
        return digests
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
