// Per-session and per-command state of a connection.

import BlockSCSI
import NIOCore

/// What a completed login established. A class: every command reads it, and copying the
/// value (parameters, names, the target) cost a retain and release per field each time.
final class SessionState {
    let tsih: UInt16
    let parameters: SessionParameters
    let nexus: ITNexus
    /// The target logged in to; nil for a discovery session.
    let target: ISCSITargetDefinition?
    let logicalUnits: [UInt64: SCSILogicalUnit]

    init(tsih: UInt16, parameters: SessionParameters, nexus: ITNexus, target: ISCSITargetDefinition?) {
        self.tsih = tsih
        self.parameters = parameters
        self.nexus = nexus
        self.target = target
        logicalUnits = target?.logicalUnits ?? [:]
    }

    var isDiscovery: Bool { target == nil }
}

/// One solicited (R2T) sequence of a write that is not complete yet.
struct SolicitedSequence {
    let start: Int
    let end: Int
    var nextOffset: Int
    var nextDataSN: UInt32
}

/// A write that is still receiving its data. Its buffer of the full expected length exists
/// only once the write is admitted against the connection's write budget (which also lets it
/// be solicited with R2Ts); before that, unsolicited data collects in a buffer of at most
/// FirstBurstLength.
struct WriteCollection {
    /// EDTL bytes, filled at their buffer offsets; nil until admitted.
    var buffer: ByteBuffer?
    /// Unsolicited bytes from offset 0 received before admission (FirstBurstLength at most).
    var early: ByteBuffer
    var receivedBytes: Int
    /// Data below this offset arrives unsolicited (immediate data and Data-Out with TTT 0xffffffff).
    let unsolicitedEnd: Int
    var unsolicitedNextOffset: Int
    var unsolicitedNextDataSN: UInt32 = 0
    /// The next offset to solicit with an R2T.
    var nextSolicitOffset: Int
    var r2tSN: UInt32 = 0
    var outstanding: [UInt32: SolicitedSequence] = [:]

    var admitted: Bool { buffer != nil }

    /// Stores unsolicited or solicited bytes at `offset` (checked by the caller against the
    /// sequence they belong to).
    mutating func store(_ payload: ByteBuffer, at offset: Int) {
        if let start = buffer?.readerIndex {
            buffer!.setBuffer(payload, at: start + offset)  // in place: no copy of the storage
        } else {
            precondition(offset == early.readableBytes, "unsolicited data before admission arrives in order")
            var bytes = payload
            early.writeBuffer(&bytes)
        }
        receivedBytes += payload.readableBytes
    }

    /// The write's data once every byte arrived.
    var data: ByteBuffer { buffer ?? early }
}

/// A SCSI command between its arrival and its response.
struct CommandTask {
    enum State {
        case collecting(WriteCollection)
        /// Data complete, waiting for lower CmdSNs to arrive before it may start.
        case parked(ByteBuffer?)
        case executing
        /// Aborted while executing: its response is dropped when it finishes.
        case aborted
    }

    /// Unique per connection, so a late completion never answers a reused ITT.
    let id: UInt64
    let initiatorTaskTag: UInt32
    let lun: UInt64?
    let lunField: UInt64
    let cdb: ByteBuffer
    let expectedLengthBytes: Int
    let read: Bool
    let write: Bool
    /// The CmdSN of a non-immediate command (it holds a window slot until it ends); nil for
    /// an immediate one.
    let cmdSN: UInt32?
    var countsInWindow: Bool { cmdSN != nil }
    var state: State
    /// Bytes of the connection's write budget this task holds (admitted, still collecting).
    var reservedWriteBytes = 0
    /// Bytes of the connection's read budget this task holds (executing a read).
    var reservedDataInBytes = 0
    /// Run when the task ends (task management waiting for an abort to finish).
    var endWaiters: [() -> Void] = []
}

/// The rest of a Text response that did not fit one PDU.
struct TextContinuation {
    let initiatorTaskTag: UInt32
    let targetTransferTag: UInt32
    var remaining: ByteBuffer
}
