// The values that cross the boundary between a transport (iSCSI) and the command layer:
// who sent a command, the command itself, and its outcome.
//
// Invariants: a result with CHECK CONDITION carries sense data and nothing else carries sense
// data; `dataIn` never exceeds the command's allocation length (the transport still truncates
// it to the expected data transfer length and reports the residual).

import NIOCore

/// An I_T nexus: one initiator port (iSCSI: initiator name plus ISID) talking to one target
/// port (iSCSI: target name plus portal group tag). The same initiator port logged in to two
/// targets is two nexuses: registrations, reservations, unit attentions and task aborts of
/// one never touch the other.
public struct ITNexus: Hashable, Sendable, CustomStringConvertible {
    /// The iSCSI initiator name, as given at login.
    public var initiatorName: String
    /// The ISID (48 bits).
    public var initiatorSessionID: UInt64
    /// The iSCSI target name the session logged in to.
    public var targetName: String
    /// The target portal group tag of the session.
    public var targetPortalGroupTag: UInt16

    public init(initiatorName: String, initiatorSessionID: UInt64, targetName: String, targetPortalGroupTag: UInt16) {
        self.initiatorName = initiatorName
        self.initiatorSessionID = initiatorSessionID & 0xFFFF_FFFF_FFFF
        self.targetName = targetName
        self.targetPortalGroupTag = targetPortalGroupTag
    }

    /// The iSCSI initiator port name: `name,i,0x<12 hex digits of ISID>` (RFC 7143 section 10.19).
    public var initiatorPortName: String {
        initiatorName + ",i,0x" + hexDigits(initiatorSessionID, width: 12)
    }

    /// The iSCSI target port name: `name,t,0x<4 hex digits of TPGT>` (RFC 7143 section 10.19).
    public var targetPortName: String {
        targetName + ",t,0x" + hexDigits(UInt64(targetPortalGroupTag), width: 4)
    }

    public var description: String { initiatorPortName + " -> " + targetPortName }
}

/// SCSI status codes (SAM-5 table 39).
public enum SCSIStatus: UInt8, Sendable {
    case good = 0x00
    case checkCondition = 0x02
    case conditionMet = 0x04
    case busy = 0x08
    case reservationConflict = 0x18
    case taskSetFull = 0x28
    case acaActive = 0x30
    case taskAborted = 0x40
}

/// The outcome of one command.
public struct SCSIResult: Sendable {
    public var status: SCSIStatus
    /// Fixed-format sense data (response code 70h), without the 2-byte iSCSI length prefix.
    public var senseData: ByteBuffer?
    /// Data for the initiator, already cut to the command's allocation length. It may be
    /// longer than the transport's expected length: the transport truncates it and reports
    /// the residual overflow.
    public var dataIn: ByteBuffer?

    public init(status: SCSIStatus, senseData: ByteBuffer? = nil, dataIn: ByteBuffer? = nil) {
        self.status = status
        self.senseData = senseData
        self.dataIn = dataIn
    }

    /// GOOD, optionally with data.
    public static func good(_ dataIn: ByteBuffer? = nil) -> SCSIResult {
        SCSIResult(status: .good, dataIn: dataIn)
    }

    /// CHECK CONDITION with `sense`.
    public static func checkCondition(_ sense: SenseData) -> SCSIResult {
        SCSIResult(status: .checkCondition, senseData: ByteBuffer(bytes: sense.fixedFormatBytes()))
    }

    /// The sense data decoded, for callers that want the key and codes.
    public var sense: SenseData? {
        senseData.flatMap { SenseData(fixedFormat: Array($0.readableBytesView)) }
    }
}

/// One SCSI command as the transport received it.
public struct SCSICommandRequest: Sendable {
    /// 6 to 16 bytes (longer with an extended CDB); bytes past the command's length are ignored.
    public var cdb: ByteBuffer
    public var nexus: ITNexus
    public var lun: UInt64
    /// The expected data transfer length from the transport, in bytes.
    public var expectedDataTransferLength: Int
    /// The complete Data-Out the initiator sent (at most the expected length).
    public var dataOut: ByteBuffer?
    public var taskTag: UInt32

    public init(cdb: ByteBuffer, nexus: ITNexus, lun: UInt64, expectedDataTransferLength: Int,
                dataOut: ByteBuffer? = nil, taskTag: UInt32) {
        self.cdb = cdb
        self.nexus = nexus
        self.lun = lun
        self.expectedDataTransferLength = expectedDataTransferLength
        self.dataOut = dataOut
        self.taskTag = taskTag
    }
}

func hexDigits(_ value: UInt64, width: Int) -> String {
    let text = String(value, radix: 16)
    return String(repeating: "0", count: max(0, width - text.count)) + text
}
