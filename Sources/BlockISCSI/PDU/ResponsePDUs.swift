// Builders for the PDUs a target sends (RFC 7143 section 11). The sequence numbers
// (StatSN, ExpCmdSN, MaxCmdSN) are stamped by the connection as it sends, see
// `ISCSIPDU.stamp(statSN:expCmdSN:maxCmdSN:)`.

import NIOCore

/// Residual reporting of a SCSI Response or final Data-In (section 11.4.5).
public enum Residual: Sendable, Equatable {
    case none
    /// The target transferred fewer bytes than expected.
    case underflow(Int)
    /// The command wanted more bytes than expected.
    case overflow(Int)

    var flags: UInt8 {
        switch self {
        case .none: return 0
        case .underflow: return 0x02
        case .overflow: return 0x04
        }
    }

    var count: UInt32 {
        switch self {
        case .none: return 0
        case let .underflow(count), let .overflow(count): return UInt32(clamping: count)
        }
    }
}

extension ISCSIPDU {
    /// Writes StatSN (bytes 24-27), ExpCmdSN and MaxCmdSN into a response header.
    public mutating func stamp(statSN: UInt32, expCmdSN: UInt32, maxCmdSN: UInt32) {
        header.setUInt32(statSN, at: 24)
        header.setUInt32(expCmdSN, at: 28)
        header.setUInt32(maxCmdSN, at: 32)
    }

    /// Whether this response carries (and so consumes) a StatSN.
    public var carriesStatus: Bool {
        switch opcode {
        case .dataIn: return header[byte: 1] & 0x01 != 0
        case .readyToTransfer: return false
        case .nopIn: return header.initiatorTaskTag != 0xFFFF_FFFF
        default: return true
        }
    }

    /// SCSI Response (0x21).
    public static func scsiResponse(initiatorTaskTag: UInt32, status: UInt8, sense: ByteBuffer?,
                                    residual: Residual, expDataSN: UInt32) -> ISCSIPDU {
        var data = ByteBuffer()
        if let sense, sense.readableBytes > 0 {
            data.reserveCapacity(2 + sense.readableBytes)
            data.writeInteger(UInt16(sense.readableBytes))
            var copy = sense
            data.writeBuffer(&copy)
        }
        var pdu = ISCSIPDU(opcode: .scsiResponse, data: data)
        pdu.header[byte: 1] = 0x80 | residual.flags
        pdu.header[byte: 2] = 0x00 // command completed at target
        pdu.header[byte: 3] = status
        pdu.header.initiatorTaskTag = initiatorTaskTag
        pdu.header.setUInt32(expDataSN, at: 36)
        pdu.header.setUInt32(residual.count, at: 44)
        return pdu
    }

    /// SCSI Data-In (0x25). With `status`, the PDU is final and carries the command status.
    public static func dataIn(initiatorTaskTag: UInt32, lunField: UInt64, data: ByteBuffer, dataSN: UInt32,
                              bufferOffset: Int, final: Bool, status: UInt8?, residual: Residual) -> ISCSIPDU {
        precondition(status == nil || final, "status only in the final Data-In")
        var pdu = ISCSIPDU(opcode: .dataIn, data: data)
        var flags: UInt8 = final ? 0x80 : 0
        if let status {
            flags |= 0x01 | residual.flags
            pdu.header[byte: 3] = status
            pdu.header.setUInt32(residual.count, at: 44)
        }
        pdu.header[byte: 1] = flags
        pdu.header.lunField = lunField
        pdu.header.initiatorTaskTag = initiatorTaskTag
        pdu.header.setUInt32(0xFFFF_FFFF, at: 20)
        pdu.header.setUInt32(dataSN, at: 36)
        pdu.header.setUInt32(UInt32(bufferOffset), at: 40)
        return pdu
    }

    /// Ready To Transfer (0x31).
    public static func readyToTransfer(initiatorTaskTag: UInt32, lunField: UInt64, targetTransferTag: UInt32,
                                       r2tSN: UInt32, bufferOffset: Int, desiredLengthBytes: Int) -> ISCSIPDU {
        var pdu = ISCSIPDU(opcode: .readyToTransfer)
        pdu.header[byte: 1] = 0x80
        pdu.header.lunField = lunField
        pdu.header.initiatorTaskTag = initiatorTaskTag
        pdu.header.setUInt32(targetTransferTag, at: 20)
        pdu.header.setUInt32(r2tSN, at: 36)
        pdu.header.setUInt32(UInt32(bufferOffset), at: 40)
        pdu.header.setUInt32(UInt32(desiredLengthBytes), at: 44)
        return pdu
    }

    /// NOP-In (0x20): an answer to a NOP-Out (its ITT) or, with ITT 0xffffffff and a TTT, a ping.
    public static func nopIn(initiatorTaskTag: UInt32, targetTransferTag: UInt32, lunField: UInt64,
                             data: ByteBuffer) -> ISCSIPDU {
        var pdu = ISCSIPDU(opcode: .nopIn, data: data)
        pdu.header[byte: 1] = 0x80
        pdu.header.lunField = lunField
        pdu.header.initiatorTaskTag = initiatorTaskTag
        pdu.header.setUInt32(targetTransferTag, at: 20)
        return pdu
    }

    /// Task Management Function Response (0x22); `response` per section 11.6.1.
    public static func taskManagementResponse(initiatorTaskTag: UInt32, response: UInt8) -> ISCSIPDU {
        var pdu = ISCSIPDU(opcode: .taskManagementResponse)
        pdu.header[byte: 1] = 0x80
        pdu.header[byte: 2] = response
        pdu.header.initiatorTaskTag = initiatorTaskTag
        return pdu
    }

    /// Logout Response (0x26).
    public static func logoutResponse(initiatorTaskTag: UInt32, response: UInt8, time2WaitSeconds: UInt16,
                                      time2RetainSeconds: UInt16) -> ISCSIPDU {
        var pdu = ISCSIPDU(opcode: .logoutResponse)
        pdu.header[byte: 1] = 0x80
        pdu.header[byte: 2] = response
        pdu.header.initiatorTaskTag = initiatorTaskTag
        pdu.header.setUInt16(time2WaitSeconds, at: 40)
        pdu.header.setUInt16(time2RetainSeconds, at: 42)
        return pdu
    }

    /// Text Response (0x24).
    public static func textResponse(initiatorTaskTag: UInt32, targetTransferTag: UInt32, final: Bool,
                                    continues: Bool, data: ByteBuffer) -> ISCSIPDU {
        var pdu = ISCSIPDU(opcode: .textResponse, data: data)
        pdu.header[byte: 1] = (final ? 0x80 : 0) | (continues ? 0x40 : 0)
        pdu.header.initiatorTaskTag = initiatorTaskTag
        pdu.header.setUInt32(targetTransferTag, at: 20)
        return pdu
    }

    /// Login Response (0x23).
    public static func loginResponse(transit: Bool, continues: Bool, currentStage: UInt8, nextStage: UInt8,
                                     versionMax: UInt8, versionActive: UInt8, isid: UInt64, tsih: UInt16,
                                     initiatorTaskTag: UInt32, statusClass: UInt8, statusDetail: UInt8,
                                     data: ByteBuffer) -> ISCSIPDU {
        var pdu = ISCSIPDU(opcode: .loginResponse, data: data)
        pdu.header[byte: 1] = (transit ? 0x80 : 0) | (continues ? 0x40 : 0) | (currentStage & 3) << 2 | (nextStage & 3)
        pdu.header[byte: 2] = versionMax
        pdu.header[byte: 3] = versionActive
        pdu.header.setUInt64((isid & 0xFFFF_FFFF_FFFF) << 16 | UInt64(tsih), at: 8)
        pdu.header.initiatorTaskTag = initiatorTaskTag
        pdu.header[byte: 36] = statusClass
        pdu.header[byte: 37] = statusDetail
        return pdu
    }

    /// Reject (0x3F): the rejected PDU's header goes back as data.
    public static func reject(reason: RejectReason, rejectedHeader: BasicHeaderSegment) -> ISCSIPDU {
        var pdu = ISCSIPDU(opcode: .reject, data: ByteBuffer(bytes: rejectedHeader.bytes))
        pdu.header[byte: 1] = 0x80
        pdu.header[byte: 2] = reason.rawValue
        pdu.header.initiatorTaskTag = 0xFFFF_FFFF
        return pdu
    }

    /// Asynchronous Message (0x32); event 1 asks the initiator to log out within
    /// `parameter3` seconds.
    public static func asyncMessage(event: UInt8, parameter1: UInt16 = 0, parameter2: UInt16 = 0,
                                    parameter3: UInt16 = 0) -> ISCSIPDU {
        var pdu = ISCSIPDU(opcode: .asyncMessage)
        pdu.header[byte: 1] = 0x80
        pdu.header.initiatorTaskTag = 0xFFFF_FFFF
        pdu.header[byte: 36] = event
        pdu.header.setUInt16(parameter1, at: 38)
        pdu.header.setUInt16(parameter2, at: 40)
        pdu.header.setUInt16(parameter3, at: 42)
        return pdu
    }
}
