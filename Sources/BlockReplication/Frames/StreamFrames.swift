// The payloads of an established connection's log stream: decision, records, ack, barrier,
// barrierReply, epochNotice and goodbye (docs/REPLICATION.md has their byte tables).
//
// Invariants:
// - A records frame holds 1 to 65,535 records whose LSNs follow each other (no gap, no
//   repeat), whose epochs never decrease, and whose payloads match their CRC32C; a PAD is
//   never shipped (it has no LSN of its own).
// - Every text field is bounded (1 KiB) and every count by its field and by the payload
//   length, so a decoder never allocates more than the frame it already holds.

import NIOCore

/// What the primary tells a replica to do after the handshake.
public struct Decision: FramePayload {
    public static let frameType = FrameType.decision

    public enum Mode: UInt8, Sendable {
        /// Records follow from `fromLSN` as they are written.
        case stream = 1
        /// Records from `fromLSN` are replayed from the primary's log, then streaming goes on.
        case catchUp = 2
        /// The replica's copy is rebuilt block by block (rebuild frames), then streaming.
        case rebuild = 3
    }

    public var mode: Mode
    /// The first LSN the primary will send.
    public var fromLSN: UInt64
    /// The replica drops its records after this LSN (they were never committed by this
    /// primary's history); nil: keep them all. On the wire nil is 2^64 - 1.
    public var truncateAfterLSN: UInt64?

    public init(mode: Mode, fromLSN: UInt64, truncateAfterLSN: UInt64?) {
        self.mode = mode
        self.fromLSN = fromLSN
        self.truncateAfterLSN = truncateAfterLSN
    }

    public func encode(into buffer: inout ByteBuffer) {
        precondition(truncateAfterLSN != .max, "2^64 - 1 means no truncation: use nil")
        buffer.writeLE(mode.rawValue)
        buffer.writeLE(fromLSN)
        buffer.writeLE(truncateAfterLSN ?? .max)
    }

    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> Decision {
        let type = frameType
        let mode = try decodeEnum(Mode.self, try buffer.readLE(UInt8.self, in: type), field: "mode", in: type)
        let from = try buffer.readLE(UInt64.self, in: type)
        let truncate = try buffer.readLE(UInt64.self, in: type)
        return Decision(mode: mode, fromLSN: from, truncateAfterLSN: truncate == .max ? nil : truncate)
    }
}

/// The kind of a shipped log record: the engine's WAL record kinds (docs/FORMAT.md) without
/// PAD, which carries no LSN of its own and is never shipped.
public enum ShippedRecordKind: UInt8, Sendable {
    case write = 1
    case trim = 2
}

/// One log record as shipped: the fields of its WAL header a replica needs, and its payload.
public struct ShippedRecord: Sendable, Equatable {
    /// Record header bytes on the wire, before the payload.
    public static let headerBytes = 37
    /// Block sizes a volume may have: a WRITE's payload is its block count times one of them.
    public static let blockSizesBytes: [UInt64] = [512, 4096]

    public var lsn: UInt64
    public var epoch: UInt64
    public var kind: ShippedRecordKind
    public var lba: UInt64
    public var blockCount: UInt32
    /// CRC32C of the payload, as in the WAL record (0 for a TRIM).
    public var payloadCRC: UInt32
    /// WRITE: the blocks; TRIM: empty.
    public var payload: ByteBuffer

    /// A record with its WAL checksum passed through (not recomputed).
    public init(lsn: UInt64, epoch: UInt64, kind: ShippedRecordKind, lba: UInt64, blockCount: UInt32,
                payloadCRC: UInt32, payload: ByteBuffer) {
        self.lsn = lsn
        self.epoch = epoch
        self.kind = kind
        self.lba = lba
        self.blockCount = blockCount
        self.payloadCRC = payloadCRC
        self.payload = payload
    }

    /// A WRITE record; its checksum is computed here.
    public static func write(lsn: UInt64, epoch: UInt64, lba: UInt64, blockCount: UInt32, payload: ByteBuffer) -> ShippedRecord {
        ShippedRecord(lsn: lsn, epoch: epoch, kind: .write, lba: lba, blockCount: blockCount,
                      payloadCRC: crc32c(payload), payload: payload)
    }

    public static func trim(lsn: UInt64, epoch: UInt64, lba: UInt64, blockCount: UInt32) -> ShippedRecord {
        ShippedRecord(lsn: lsn, epoch: epoch, kind: .trim, lba: lba, blockCount: blockCount, payloadCRC: 0,
                      payload: ByteBuffer())
    }

    /// Bytes this record takes in a records payload.
    public var encodedBytes: Int { Self.headerBytes + payload.readableBytes }

    /// Why the fields break a rule of docs/REPLICATION.md ("records"), or nil. The payload
    /// CRC is checked by the decoder only (it costs a pass over the data).
    func fieldRefusal() -> (field: String, value: UInt64)? {
        let payloadBytes = UInt64(payload.readableBytes)
        if lsn == 0 { return ("record LSN", 0) }
        if blockCount == 0 { return ("record block count", 0) }
        if lba > UInt64.max - UInt64(blockCount) { return ("record LBA", lba) }
        switch kind {
        case .write:
            guard Self.blockSizesBytes.contains(where: { payloadBytes == UInt64(blockCount) * $0 }) else {
                return ("write payload length", payloadBytes)
            }
        case .trim:
            if payloadBytes != 0 { return ("trim payload length", payloadBytes) }
            if payloadCRC != 0 { return ("trim payload CRC", UInt64(payloadCRC)) }
        }
        return nil
    }
}

/// A batch of LSN-contiguous log records (primary -> replica).
public struct RecordBatch: FramePayload {
    public static let frameType = FrameType.records
    public static let maxRecords = Int(UInt16.max)

    public var records: [ShippedRecord]

    public init(records: [ShippedRecord]) {
        self.records = records
    }

    public var firstLSN: UInt64 { records.first!.lsn }
    public var lastLSN: UInt64 { records.last!.lsn }

    /// The payload's size, to batch records under `WireLimits.maxPayloadBytes`.
    public var encodedBytes: Int { 2 + records.reduce(0) { $0 + $1.encodedBytes } }

    public func encode(into buffer: inout ByteBuffer) {
        precondition((1...Self.maxRecords).contains(records.count), "1 to 65,535 records")
        buffer.writeLE(UInt16(records.count))
        var previous: ShippedRecord? = nil
        for record in records {
            precondition(record.fieldRefusal() == nil, "record fields out of bounds")
            if let previous {
                precondition(record.lsn == previous.lsn &+ 1 && record.epoch >= previous.epoch,
                             "records must be LSN-contiguous with epochs that never decrease")
            }
            precondition(record.payload.readableBytes <= Int(UInt32.max), "record payload over 4 GiB")
            buffer.writeLE(record.lsn)
            buffer.writeLE(record.epoch)
            buffer.writeLE(record.kind.rawValue)
            buffer.writeLE(record.lba)
            buffer.writeLE(record.blockCount)
            buffer.writeLE(UInt32(record.payload.readableBytes))
            buffer.writeLE(record.payloadCRC)
            buffer.writeImmutableBuffer(record.payload)
            previous = record
        }
    }

    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> RecordBatch {
        let type = frameType
        let count = Int(try buffer.readLE(UInt16.self, in: type))
        guard count > 0 else { throw .invalidField(type, field: "record count", value: 0) }
        // Each record takes at least its header: a count the payload cannot hold is refused
        // before the array is reserved.
        guard count * ShippedRecord.headerBytes <= buffer.readableBytes else { throw .truncatedPayload(type) }
        var records: [ShippedRecord] = []
        records.reserveCapacity(count)
        for _ in 0..<count {  // bounded by the u16 count
            let lsn = try buffer.readLE(UInt64.self, in: type)
            let epoch = try buffer.readLE(UInt64.self, in: type)
            let kind = try decodeEnum(ShippedRecordKind.self, try buffer.readLE(UInt8.self, in: type),
                                      field: "record kind", in: type)
            let lba = try buffer.readLE(UInt64.self, in: type)
            let blockCount = try buffer.readLE(UInt32.self, in: type)
            let payloadLength = try buffer.readLE(UInt32.self, in: type)
            let payloadCRC = try buffer.readLE(UInt32.self, in: type)
            let payload = try buffer.readPayloadSlice(Int(payloadLength), in: type)
            let record = ShippedRecord(lsn: lsn, epoch: epoch, kind: kind, lba: lba, blockCount: blockCount,
                                       payloadCRC: payloadCRC, payload: payload)
            if let previous = records.last {
                guard previous.lsn < .max, lsn == previous.lsn + 1 else {
                    throw .nonContiguousRecords(expectedLSN: previous.lsn &+ 1, receivedLSN: lsn)
                }
                guard epoch >= previous.epoch else { throw .invalidField(type, field: "record epoch", value: epoch) }
            }
            if let (field, value) = record.fieldRefusal() { throw .invalidField(type, field: field, value: value) }
            if kind == .write, crc32c(payload) != payloadCRC { throw .badRecordChecksum(lsn: lsn) }
            records.append(record)
        }
        return RecordBatch(records: records)
    }
}

/// Where the replica's copy stands (replica -> primary).
public struct Ack: FramePayload {
    public static let frameType = FrameType.ack

    /// The highest LSN received (held, not necessarily durable).
    public var receivedLSN: UInt64
    /// The highest LSN durable; at most `receivedLSN`.
    public var durableLSN: UInt64

    public init(receivedLSN: UInt64, durableLSN: UInt64) {
        self.receivedLSN = receivedLSN
        self.durableLSN = durableLSN
    }

    public func encode(into buffer: inout ByteBuffer) {
        precondition(durableLSN <= receivedLSN, "durable LSN above the received LSN")
        buffer.writeLE(receivedLSN)
        buffer.writeLE(durableLSN)
    }

    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> Ack {
        let received = try buffer.readLE(UInt64.self, in: frameType)
        let durable = try buffer.readLE(UInt64.self, in: frameType)
        guard durable <= received else { throw .invalidField(frameType, field: "durable LSN", value: durable) }
        return Ack(receivedLSN: received, durableLSN: durable)
    }
}

/// "Tell me once everything up to `lsn` is durable" (primary -> replica).
public struct Barrier: FramePayload {
    public static let frameType = FrameType.barrier

    public var requestID: UInt64
    public var lsn: UInt64

    public init(requestID: UInt64, lsn: UInt64) {
        self.requestID = requestID
        self.lsn = lsn
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeLE(requestID)
        buffer.writeLE(lsn)
    }

    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> Barrier {
        Barrier(requestID: try buffer.readLE(UInt64.self, in: frameType), lsn: try buffer.readLE(UInt64.self, in: frameType))
    }
}

/// The answer to a barrier (replica -> primary).
public struct BarrierReply: FramePayload {
    public static let frameType = FrameType.barrierReply

    public enum Status: UInt8, Sendable {
        case durable = 0
        case staleEpoch = 1
        case failed = 2
    }

    public var requestID: UInt64
    public var status: Status
    /// The replica's durable LSN when it answered.
    public var durableLSN: UInt64

    public init(requestID: UInt64, status: Status, durableLSN: UInt64) {
        self.requestID = requestID
        self.status = status
        self.durableLSN = durableLSN
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeLE(requestID)
        buffer.writeLE(status.rawValue)
        buffer.writeLE(durableLSN)
    }

    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> BarrierReply {
        let type = frameType
        let id = try buffer.readLE(UInt64.self, in: type)
        let status = try decodeEnum(Status.self, try buffer.readLE(UInt8.self, in: type), field: "status", in: type)
        return BarrierReply(requestID: id, status: status, durableLSN: try buffer.readLE(UInt64.self, in: type))
    }
}

/// "I am at a newer epoch than you": sent by a replica that rejects an older primary, which
/// then fences itself.
public struct EpochNotice: FramePayload {
    public static let frameType = FrameType.epochNotice

    public var epoch: UInt64
    /// At most `ReplicationProtocol.maxReasonBytes` of UTF-8.
    public var reason: String

    public init(epoch: UInt64, reason: String) {
        self.epoch = epoch
        self.reason = reason
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeLE(epoch)
        buffer.writeText(reason, prefixBytes: 2, maxBytes: ReplicationProtocol.maxReasonBytes)
    }

    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> EpochNotice {
        let epoch = try buffer.readLE(UInt64.self, in: frameType)
        let reason = try buffer.readText(prefixBytes: 2, maxBytes: ReplicationProtocol.maxReasonBytes, field: "reason", allowEmpty: true,
                                         in: frameType)
        return EpochNotice(epoch: epoch, reason: reason)
    }
}

/// Why a side closes the connection. Unknown codes are kept as they are (a newer peer may
/// send codes this build does not name).
public struct GoodbyeReason: RawRepresentable, Sendable, Hashable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let normal = GoodbyeReason(rawValue: 0)
    public static let shuttingDown = GoodbyeReason(rawValue: 1)
    public static let protocolError = GoodbyeReason(rawValue: 2)
    public static let fenced = GoodbyeReason(rawValue: 3)
    public static let replaced = GoodbyeReason(rawValue: 4)
    public static let volumeFailed = GoodbyeReason(rawValue: 5)
}

/// The last frame of a connection, either way.
public struct Goodbye: FramePayload {
    public static let frameType = FrameType.goodbye

    public var reason: GoodbyeReason
    /// At most `ReplicationProtocol.maxReasonBytes` of UTF-8.
    public var message: String

    public init(reason: GoodbyeReason, message: String) {
        self.reason = reason
        self.message = message
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeLE(reason.rawValue)
        buffer.writeText(message, prefixBytes: 2, maxBytes: ReplicationProtocol.maxReasonBytes)
    }

    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> Goodbye {
        let code = try buffer.readLE(UInt16.self, in: frameType)
        let message = try buffer.readText(prefixBytes: 2, maxBytes: ReplicationProtocol.maxReasonBytes, field: "message", allowEmpty: true,
                                          in: frameType)
        return Goodbye(reason: GoodbyeReason(rawValue: code), message: message)
    }
}

/// The primary's committed LSN: the highest LSN a flush or FUA write was acknowledged at.
/// Sent whenever it grew, so a replica can show what a promotion must cover.
public struct Committed: FramePayload {
    public static let frameType = FrameType.committed

    public var lsn: UInt64

    public init(lsn: UInt64) {
        self.lsn = lsn
    }

    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeLE(lsn)
    }

    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> Committed {
        Committed(lsn: try buffer.readLE(UInt64.self, in: frameType))
    }
}
