// The payloads of a rebuild: block data in chunks, segment digests to skip what already
// matches, and the LSN the rebuilt copy is consistent with (docs/REPLICATION.md).
//
// Invariants:
// - A chunk holds 1 or more whole blocks (512 or 4096 bytes each) that match its CRC32C,
//   and its block range does not overflow.
// - A digest reply holds 1 to `maxDigestsPerFrame` digests of 32 bytes, as many as its
//   count says.

import NIOCore

/// Blocks of the primary's copy (primary -> replica).
public struct RebuildChunk: FramePayload {
    public static let frameType = FrameType.rebuildChunk

    /// The first block, counted from the start of the volume.
    public var offsetBlocks: UInt64
    public var blockCount: UInt32
    /// CRC32C of `data`.
    public var dataCRC: UInt32
    /// `blockCount` whole blocks.
    public var data: ByteBuffer

    public init(offsetBlocks: UInt64, blockCount: UInt32, dataCRC: UInt32, data: ByteBuffer) {
        self.offsetBlocks = offsetBlocks
        self.blockCount = blockCount
        self.dataCRC = dataCRC
        self.data = data
    }

    /// A chunk whose checksum is computed here.
    public init(offsetBlocks: UInt64, blockCount: UInt32, data: ByteBuffer) {
        self.init(offsetBlocks: offsetBlocks, blockCount: blockCount, dataCRC: crc32c(data), data: data)
    }

    func fieldRefusal() -> (field: String, value: UInt64)? {
        if blockCount == 0 { return ("block count", 0) }
        if offsetBlocks > UInt64.max - UInt64(blockCount) { return ("offset", offsetBlocks) }
        let dataBytes = UInt64(data.readableBytes)
        guard ShippedRecord.blockSizesBytes.contains(where: { dataBytes == UInt64(blockCount) * $0 }) else {
            return ("data length", dataBytes)
        }
        return nil
    }

    public func encode(into buffer: inout ByteBuffer) {
        precondition(fieldRefusal() == nil, "rebuild chunk fields out of bounds")
        buffer.writeLE(offsetBlocks)
        buffer.writeLE(blockCount)
        buffer.writeLE(UInt32(data.readableBytes))
        buffer.writeLE(dataCRC)
        buffer.writeImmutableBuffer(data)
    }

    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> RebuildChunk {
        let type = frameType
        let offset = try buffer.readLE(UInt64.self, in: type)
        let count = try buffer.readLE(UInt32.self, in: type)
        let length = try buffer.readLE(UInt32.self, in: type)
        let crc = try buffer.readLE(UInt32.self, in: type)
        let data = try buffer.readPayloadSlice(Int(length), in: type)
        let chunk = RebuildChunk(offsetBlocks: offset, blockCount: count, dataCRC: crc, data: data)
        if let (field, value) = chunk.fieldRefusal() { throw .invalidField(type, field: field, value: value) }
        guard crc32c(data) == crc else { throw .badChunkChecksum(offsetBlocks: offset) }
        return chunk
    }
}

/// The segments a digest exchange covers: `segmentCount` segments of `blocksPerSegment`
/// blocks from segment `firstSegment` (segment n starts at block n x blocksPerSegment).
public struct SegmentRange: Sendable, Equatable {
    /// Digests one reply may carry (256 KiB of digests).
    public static let maxDigestsPerFrame = 8192

    public var firstSegment: UInt64
    public var segmentCount: UInt32
    public var blocksPerSegment: UInt32

    public init(firstSegment: UInt64, segmentCount: UInt32, blocksPerSegment: UInt32) {
        self.firstSegment = firstSegment
        self.segmentCount = segmentCount
        self.blocksPerSegment = blocksPerSegment
    }

    func fieldRefusal() -> (field: String, value: UInt64)? {
        if segmentCount == 0 || segmentCount > Self.maxDigestsPerFrame { return ("segment count", UInt64(segmentCount)) }
        if blocksPerSegment == 0 { return ("blocks per segment", 0) }
        if firstSegment > UInt64.max - UInt64(segmentCount) { return ("first segment", firstSegment) }
        return nil
    }

    func encode(into buffer: inout ByteBuffer) {
        precondition(fieldRefusal() == nil, "segment range out of bounds")
        buffer.writeLE(firstSegment)
        buffer.writeLE(segmentCount)
        buffer.writeLE(blocksPerSegment)
    }

    static func decode(from buffer: inout ByteBuffer, in type: FrameType) throws(WireError) -> SegmentRange {
        let range = SegmentRange(firstSegment: try buffer.readLE(UInt64.self, in: type),
                                 segmentCount: try buffer.readLE(UInt32.self, in: type),
                                 blocksPerSegment: try buffer.readLE(UInt32.self, in: type))
        if let (field, value) = range.fieldRefusal() { throw .invalidField(type, field: field, value: value) }
        return range
    }
}

/// "Send me your digests of these segments" (primary -> replica).
public struct RebuildDigestRequest: FramePayload {
    public static let frameType = FrameType.rebuildDigestRequest

    public var range: SegmentRange

    public init(range: SegmentRange) {
        self.range = range
    }

    public func encode(into buffer: inout ByteBuffer) {
        range.encode(into: &buffer)
    }

    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> RebuildDigestRequest {
        RebuildDigestRequest(range: try SegmentRange.decode(from: &buffer, in: frameType))
    }
}

/// One 32-byte digest per segment of the range (replica -> primary). The digest function is
/// the rebuild's business (SHA-256 of the segment's bytes is the intended one); the wire
/// only carries 32 bytes.
public struct RebuildDigestReply: FramePayload {
    public static let frameType = FrameType.rebuildDigestReply
    public static let digestBytes = 32

    public var range: SegmentRange
    /// `range.segmentCount` digests of 32 bytes.
    public var digests: [[UInt8]]

    public init(range: SegmentRange, digests: [[UInt8]]) {
        self.range = range
        self.digests = digests
    }

    public func encode(into buffer: inout ByteBuffer) {
        precondition(digests.count == Int(range.segmentCount), "one digest per segment")
        range.encode(into: &buffer)
        for digest in digests {
            precondition(digest.count == Self.digestBytes, "digests of 32 bytes")
            buffer.writeBytes(digest)
        }
    }

    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> RebuildDigestReply {
        let range = try SegmentRange.decode(from: &buffer, in: frameType)
        let count = Int(range.segmentCount)
        guard buffer.readableBytes >= count * digestBytes else { throw .truncatedPayload(frameType) }
        var digests: [[UInt8]] = []
        digests.reserveCapacity(count)
        for _ in 0..<count {  // bounded by maxDigestsPerFrame
            digests.append(try buffer.readFixedBytes(digestBytes, in: frameType))
        }
        return RebuildDigestReply(range: range, digests: digests)
    }
}

/// The rebuild is complete: the copy now matches the primary's log up to `lsnCut`, and
/// records after it follow (primary -> replica).
public struct RebuildDone: FramePayload {
    public static let frameType = FrameType.rebuildDone

    public var lsnCut: UInt64

    public init(lsnCut: UInt64) {
        self.lsnCut = lsnCut
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeLE(lsnCut)
    }

    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> RebuildDone {
        RebuildDone(lsnCut: try buffer.readLE(UInt64.self, in: frameType))
    }
}
