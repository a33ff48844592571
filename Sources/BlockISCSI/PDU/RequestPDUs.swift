// Typed views of the PDUs an initiator sends (RFC 7143 section 11). Each view reads fields
// from the header on demand; building one never fails, validation is the session's job.

import NIOCore

/// SCSI Command (0x01), section 11.3.
public struct SCSICommandPDU: Sendable {
    public let pdu: ISCSIPDU
    public init(_ pdu: ISCSIPDU) { self.pdu = pdu }

    var header: BasicHeaderSegment { pdu.header }
    public var immediate: Bool { header.immediate }
    public var final: Bool { header.final }
    public var read: Bool { header[byte: 1] & 0x40 != 0 }
    public var write: Bool { header[byte: 1] & 0x20 != 0 }
    /// Task attribute (0 untagged, 1 simple, 2 ordered, 3 head of queue, 4 ACA).
    public var taskAttribute: UInt8 { header[byte: 1] & 0x07 }
    public var lunField: UInt64 { header.lunField }
    public var initiatorTaskTag: UInt32 { header.initiatorTaskTag }
    public var expectedDataTransferLength: Int { Int(header.uint32(at: 20)) }
    public var cmdSN: UInt32 { header.uint32(at: 24) }
    public var expStatSN: UInt32 { header.uint32(at: 28) }
    /// Immediate data carried by the command itself.
    public var immediateData: ByteBuffer { pdu.data }

    /// The CDB: 16 header bytes, extended by an Extended-CDB AHS (type 1) when present.
    /// Nil when an AHS is malformed.
    public var cdb: ByteBuffer? {
        var cdb = ByteBuffer()
        cdb.reserveCapacity(16)
        header.write(32..<48, to: &cdb)
        guard var ahs = pdu.additionalHeaderSegments else { return cdb }
        // Each AHS: 2-byte length (of the specific part), 1-byte type, the specific part, padded
        // to 4 bytes.
        var remaining = 255 // at most 255 words of AHS, so at most 255 segments
        while ahs.readableBytes > 0 && remaining > 0 {
            remaining -= 1
            // AHSLength counts the AHS-specific bytes after the type (RFC 7143 11.2.2).
            guard let length = ahs.readInteger(as: UInt16.self), let type = ahs.readInteger(as: UInt8.self),
                  length >= 1, let body = ahs.readSlice(length: Int(length)) else { return nil }
            let padding = (4 - (3 + Int(length)) % 4) % 4
            guard ahs.readableBytes >= padding else { return nil }
            ahs.moveReaderIndex(forwardBy: padding)
            if type == 1 {
                // Extended CDB: a reserved byte, then the CDB bytes beyond the first 16.
                guard var extended = body.getSlice(at: body.readerIndex, length: body.readableBytes),
                      extended.readableBytes >= 1 else { return nil }
                extended.moveReaderIndex(forwardBy: 1)
                cdb.writeBuffer(&extended)
            }
        }
        return cdb
    }
}

/// SCSI Data-Out (0x05), section 11.7.
public struct DataOutPDU: Sendable {
    public let pdu: ISCSIPDU
    public init(_ pdu: ISCSIPDU) { self.pdu = pdu }

    public var final: Bool { pdu.header.final }
    public var lunField: UInt64 { pdu.header.lunField }
    public var initiatorTaskTag: UInt32 { pdu.header.initiatorTaskTag }
    public var targetTransferTag: UInt32 { pdu.header.uint32(at: 20) }
    public var expStatSN: UInt32 { pdu.header.uint32(at: 28) }
    public var dataSN: UInt32 { pdu.header.uint32(at: 36) }
    public var bufferOffset: Int { Int(pdu.header.uint32(at: 40)) }
    public var data: ByteBuffer { pdu.data }
}

/// NOP-Out (0x00), section 11.18.
public struct NOPOutPDU: Sendable {
    public let pdu: ISCSIPDU
    public init(_ pdu: ISCSIPDU) { self.pdu = pdu }

    public var immediate: Bool { pdu.header.immediate }
    public var lunField: UInt64 { pdu.header.lunField }
    public var initiatorTaskTag: UInt32 { pdu.header.initiatorTaskTag }
    public var targetTransferTag: UInt32 { pdu.header.uint32(at: 20) }
    public var cmdSN: UInt32 { pdu.header.uint32(at: 24) }
    public var expStatSN: UInt32 { pdu.header.uint32(at: 28) }
    public var pingData: ByteBuffer { pdu.data }
}

/// Task management functions (section 11.5.1).
public enum TaskManagementFunction: UInt8, Sendable {
    case abortTask = 1
    case abortTaskSet = 2
    case clearACA = 3
    case clearTaskSet = 4
    case logicalUnitReset = 5
    case targetWarmReset = 6
    case targetColdReset = 7
    case taskReassign = 8
}

/// Task Management Function Request (0x02), section 11.5.
public struct TaskManagementRequestPDU: Sendable {
    public let pdu: ISCSIPDU
    public init(_ pdu: ISCSIPDU) { self.pdu = pdu }

    public var immediate: Bool { pdu.header.immediate }
    public var functionValue: UInt8 { pdu.header[byte: 1] & 0x7F }
    public var function: TaskManagementFunction? { TaskManagementFunction(rawValue: functionValue) }
    public var lunField: UInt64 { pdu.header.lunField }
    public var initiatorTaskTag: UInt32 { pdu.header.initiatorTaskTag }
    public var referencedTaskTag: UInt32 { pdu.header.uint32(at: 20) }
    public var cmdSN: UInt32 { pdu.header.uint32(at: 24) }
    public var expStatSN: UInt32 { pdu.header.uint32(at: 28) }
    public var refCmdSN: UInt32 { pdu.header.uint32(at: 32) }
}

/// Logout Request (0x06), section 11.14.
public struct LogoutRequestPDU: Sendable {
    public let pdu: ISCSIPDU
    public init(_ pdu: ISCSIPDU) { self.pdu = pdu }

    public var immediate: Bool { pdu.header.immediate }
    /// 0 close the session, 1 close the connection, 2 remove the connection for recovery.
    public var reasonCode: UInt8 { pdu.header[byte: 1] & 0x7F }
    public var initiatorTaskTag: UInt32 { pdu.header.initiatorTaskTag }
    public var connectionID: UInt16 { pdu.header.uint16(at: 20) }
    public var cmdSN: UInt32 { pdu.header.uint32(at: 24) }
    public var expStatSN: UInt32 { pdu.header.uint32(at: 28) }
}

/// Text Request (0x04), section 11.10.
public struct TextRequestPDU: Sendable {
    public let pdu: ISCSIPDU
    public init(_ pdu: ISCSIPDU) { self.pdu = pdu }

    public var immediate: Bool { pdu.header.immediate }
    public var final: Bool { pdu.header.final }
    public var continues: Bool { pdu.header[byte: 1] & 0x40 != 0 }
    public var initiatorTaskTag: UInt32 { pdu.header.initiatorTaskTag }
    public var targetTransferTag: UInt32 { pdu.header.uint32(at: 20) }
    public var cmdSN: UInt32 { pdu.header.uint32(at: 24) }
    public var expStatSN: UInt32 { pdu.header.uint32(at: 28) }
    public var text: ByteBuffer { pdu.data }
}

/// Login Request (0x03), section 11.12.
public struct LoginRequestPDU: Sendable {
    public let pdu: ISCSIPDU
    public init(_ pdu: ISCSIPDU) { self.pdu = pdu }

    public var transit: Bool { pdu.header[byte: 1] & 0x80 != 0 }
    public var continues: Bool { pdu.header[byte: 1] & 0x40 != 0 }
    public var currentStageValue: UInt8 { (pdu.header[byte: 1] >> 2) & 0x03 }
    public var nextStageValue: UInt8 { pdu.header[byte: 1] & 0x03 }
    public var versionMax: UInt8 { pdu.header[byte: 2] }
    public var versionMin: UInt8 { pdu.header[byte: 3] }
    /// The 48-bit ISID.
    public var isid: UInt64 { pdu.header.uint64(at: 8) >> 16 }
    public var tsih: UInt16 { pdu.header.uint16(at: 14) }
    public var initiatorTaskTag: UInt32 { pdu.header.initiatorTaskTag }
    public var connectionID: UInt16 { pdu.header.uint16(at: 20) }
    public var cmdSN: UInt32 { pdu.header.uint32(at: 24) }
    public var expStatSN: UInt32 { pdu.header.uint32(at: 28) }
    public var text: ByteBuffer { pdu.data }
}
