// One iSCSI PDU as it travels: header, optional additional header segments, data segment.
// Padding and digests are the codec's business (PDUCodec.swift).

import NIOCore

/// iSCSI opcodes (RFC 7143 section 11.2.1.2).
public enum ISCSIOpcode: UInt8, Sendable {
    case nopOut = 0x00
    case scsiCommand = 0x01
    case taskManagementRequest = 0x02
    case loginRequest = 0x03
    case textRequest = 0x04
    case dataOut = 0x05
    case logoutRequest = 0x06
    case snackRequest = 0x10
    case nopIn = 0x20
    case scsiResponse = 0x21
    case taskManagementResponse = 0x22
    case loginResponse = 0x23
    case textResponse = 0x24
    case dataIn = 0x25
    case logoutResponse = 0x26
    case readyToTransfer = 0x31
    case asyncMessage = 0x32
    case reject = 0x3F
}

/// A PDU: the Basic Header Segment, the additional header segments and the data segment
/// (without padding or digests).
public struct ISCSIPDU: Sendable {
    public var header: BasicHeaderSegment
    public var additionalHeaderSegments: ByteBuffer?
    public var data: ByteBuffer

    public init(header: BasicHeaderSegment, additionalHeaderSegments: ByteBuffer? = nil, data: ByteBuffer = ByteBuffer()) {
        self.header = header
        self.additionalHeaderSegments = additionalHeaderSegments
        self.data = data
    }

    /// The opcode, or nil for a value RFC 7143 does not define.
    public var opcode: ISCSIOpcode? { ISCSIOpcode(rawValue: header.opcodeValue) }

    /// A PDU with an empty header for `opcode`.
    public init(opcode: ISCSIOpcode, data: ByteBuffer = ByteBuffer()) {
        var header = BasicHeaderSegment()
        header.opcodeValue = opcode.rawValue
        self.init(header: header, data: data)
    }
}

/// Reasons in a Reject PDU (RFC 7143 section 11.17.1).
public enum RejectReason: UInt8, Sendable {
    case dataDigestError = 0x02
    case snackReject = 0x03
    case protocolError = 0x04
    case commandNotSupported = 0x05
    case immediateCommandReject = 0x06
    case taskInProgress = 0x07
    case invalidDataAck = 0x08
    case invalidPDUField = 0x09
    case outOfResources = 0x0A
    case waitingForLogout = 0x0C
}
