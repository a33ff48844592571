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

/// A write that is still receiving its data.
struct WriteCollection {
    /// EDTL bytes, filled at their buffer offsets.
    var buffer: ByteBuffer
    var receivedBytes = 0
    /// Data below this offset arrives unsolicited (immediate data and Data-Out with TTT 0xffffffff).
    let unsolicitedEnd: Int
    var unsolicitedNextOffset: Int
    var unsolicitedNextDataSN: UInt32 = 0
    /// The next offset to solicit with an R2T.
    var nextSolicitOffset: Int
    var r2tSN: UInt32 = 0
    var outstanding: [UInt32: SolicitedSequence] = [:]
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
    /// Run when the task ends (task management waiting for an abort to finish).
    var endWaiters: [() -> Void] = []
}

/// The rest of a Text response that did not fit one PDU.
struct TextContinuation {
    let initiatorTaskTag: UInt32
    let targetTransferTag: UInt32
    var remaining: ByteBuffer
}
