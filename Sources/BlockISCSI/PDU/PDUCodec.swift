// Framing of iSCSI PDUs on a TCP stream (RFC 7143 sections 11.1-11.2): BHS, AHS, header
// digest, data segment padded to 4 bytes, data digest. Digests are CRC32C, sent
// little-endian, and switch on only after login, so both directions share one settings
// object that the connection handler changes at the end of login.
//
// The decoder frames every PDU it can delimit and reports a data digest mismatch so the
// connection can answer with a Reject. Two things end the stream: a header digest mismatch
// (after which no length can be trusted) and a data segment longer than we declared, which is
// refused from the header alone, before a byte of it is buffered (otherwise a peer could make
// the connection hold a 16 MiB segment per PDU).

import CBlockSupport
import NIOCore

/// Digest and size settings of one connection; owned by its event loop.
public final class ISCSIFramingSettings {
    public var headerDigest = false
    public var dataDigest = false
    /// The largest data segment we accept (our declared MaxRecvDataSegmentLength; 8192
    /// during login per RFC 7143 section 12.12).
    public var maxRecvDataSegmentLengthBytes = 8192

    public init() {}
}

/// Problems with a framed PDU that the connection answers without dropping the stream.
public enum PDUFramingProblem: Sendable, Equatable {
    case dataDigestMismatch
}

/// A PDU off the wire, with what framing found wrong with it.
public struct InboundPDU: Sendable {
    public var pdu: ISCSIPDU
    public var problem: PDUFramingProblem?
}

/// Errors after which the byte stream cannot be parsed any further.
public enum ISCSIFramingError: Error, Sendable, Equatable {
    case headerDigestMismatch
    /// The header declares a data segment beyond our MaxRecvDataSegmentLength.
    case dataSegmentTooLong(header: BasicHeaderSegment, limitBytes: Int)
}

/// Splits the byte stream into PDUs.
public final class ISCSIPDUDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = InboundPDU
    private let settings: ISCSIFramingSettings

    public init(settings: ISCSIFramingSettings) {
        self.settings = settings
    }

    /// The bytes of the PDU starting at the buffer's reader index (header, AHS, digests,
    /// padded data), once its basic header segment is there; nil before.
    public func framedLengthBytes(of buffer: ByteBuffer) -> Int? {
        guard buffer.readableBytes >= BasicHeaderSegment.sizeBytes else { return nil }
        let start = buffer.readerIndex
        let ahsBytes = Int(buffer.getInteger(at: start + 4, as: UInt8.self)!) * 4
        let dataLength = Int(buffer.getInteger(at: start + 5, as: UInt32.self)! >> 8)
        return framedLengthBytes(ahsBytes: ahsBytes, dataLength: dataLength)
    }

    private func framedLengthBytes(ahsBytes: Int, dataLength: Int) -> Int {
        let headerDigestBytes = settings.headerDigest ? 4 : 0
        let dataDigestBytes = settings.dataDigest && dataLength > 0 ? 4 : 0
        return BasicHeaderSegment.sizeBytes + ahsBytes + headerDigestBytes + ((dataLength + 3) & ~3) + dataDigestBytes
    }

    public func decode(buffer: inout ByteBuffer) throws -> InboundPDU? {
        guard buffer.readableBytes >= BasicHeaderSegment.sizeBytes else { return nil }
        let start = buffer.readerIndex
        let ahsBytes = Int(buffer.getInteger(at: start + 4, as: UInt8.self)!) * 4
        let dataLength = Int(buffer.getInteger(at: start + 5, as: UInt32.self)! >> 8)
        guard dataLength <= settings.maxRecvDataSegmentLengthBytes else {
            var headerBytes = buffer.getSlice(at: start, length: BasicHeaderSegment.sizeBytes)!
            throw ISCSIFramingError.dataSegmentTooLong(header: BasicHeaderSegment(reading: &headerBytes),
                                                       limitBytes: settings.maxRecvDataSegmentLengthBytes)
        }
        let headerDigestBytes = settings.headerDigest ? 4 : 0
        let paddedDataBytes = (dataLength + 3) & ~3
        let dataDigestBytes = settings.dataDigest && dataLength > 0 ? 4 : 0
        let totalBytes = framedLengthBytes(ahsBytes: ahsBytes, dataLength: dataLength)
        guard buffer.readableBytes >= totalBytes else { return nil }

        if settings.headerDigest {
            let covered = BasicHeaderSegment.sizeBytes + ahsBytes
            let computed = buffer.withUnsafeReadableBytes { ccrc32c_extend(0, $0.baseAddress, covered) }
            let received = buffer.getInteger(at: start + covered, endianness: .little, as: UInt32.self)!
            guard computed == received else { throw ISCSIFramingError.headerDigestMismatch }
        }
        let header = BasicHeaderSegment(reading: &buffer)
        let ahs = ahsBytes > 0 ? buffer.readSlice(length: ahsBytes) : nil
        buffer.moveReaderIndex(forwardBy: headerDigestBytes)
        var problem: PDUFramingProblem? = nil
        if settings.dataDigest && dataLength > 0 {
            let computed = buffer.withUnsafeReadableBytes { ccrc32c_extend(0, $0.baseAddress, paddedDataBytes) }
            let received = buffer.getInteger(at: buffer.readerIndex + paddedDataBytes, endianness: .little,
                                             as: UInt32.self)!
            if computed != received { problem = .dataDigestMismatch }
        }
        let data = buffer.readSlice(length: dataLength)!
        buffer.moveReaderIndex(forwardBy: paddedDataBytes - dataLength + dataDigestBytes)
        assert(buffer.readerIndex == start + totalBytes, "framing consumed exactly one PDU")
        return InboundPDU(pdu: ISCSIPDU(header: header, additionalHeaderSegments: ahs, data: data), problem: problem)
    }

    public func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> InboundPDU? {
        try decode(buffer: &buffer)
    }
}

/// Writes PDUs with padding and digests. Large data segments go out as their own buffer
/// (gathered by the socket write) instead of being copied behind the header.
public final class ISCSIPDUEncoder: ChannelOutboundHandler {
    public typealias OutboundIn = ISCSIPDU
    public typealias OutboundOut = ByteBuffer
    private let settings: ISCSIFramingSettings

    public init(settings: ISCSIFramingSettings) {
        self.settings = settings
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        Self.encode(unwrapOutboundIn(data), settings: settings, allocator: context.channel.allocator) { buffer, last in
            context.write(wrapOutboundOut(buffer), promise: last ? promise : nil)
        }
    }

    /// Data segments up to this size are copied behind the header (one buffer, one write).
    static let copyThresholdBytes = 2048
    private static let zeros: [UInt8] = [0, 0, 0]

    /// Frames `pdu` into one to three buffers, passed to `emit` in order (`last` marks the
    /// final one): header (with AHS, digests and, for small segments, the data), then a
    /// large data segment as it is, then its padding and digest.
    static func encode(_ pdu: ISCSIPDU, settings: ISCSIFramingSettings, allocator: ByteBufferAllocator,
                       emit: (ByteBuffer, _ last: Bool) -> Void) {
        var pdu = pdu
        let dataLength = pdu.data.readableBytes
        let ahsBytes = pdu.additionalHeaderSegments?.readableBytes ?? 0
        precondition(ahsBytes % 4 == 0 && ahsBytes / 4 <= 255, "AHS must be whole words")
        pdu.header.dataSegmentLength = dataLength
        pdu.header.totalAHSLengthWords = UInt8(ahsBytes / 4)
        let padding = (4 - dataLength % 4) % 4
        let inline = dataLength <= copyThresholdBytes
        var head = allocator.buffer(
            capacity: BasicHeaderSegment.sizeBytes + ahsBytes + 4 + (inline ? dataLength + padding + 4 : 0))
        pdu.header.write(to: &head)
        if var ahs = pdu.additionalHeaderSegments { head.writeBuffer(&ahs) }
        if settings.headerDigest {
            let crc = head.withUnsafeReadableBytes { ccrc32c_extend(0, $0.baseAddress, $0.count) }
            head.writeInteger(crc, endianness: .little)
        }
        let dataCRC: UInt32? = settings.dataDigest && dataLength > 0
            ? pdu.data.withUnsafeReadableBytes { bytes in
                zeros.withUnsafeBytes { ccrc32c_extend(ccrc32c_extend(0, bytes.baseAddress, bytes.count), $0.baseAddress, padding) }
            }
            : nil
        if inline {
            head.writeBuffer(&pdu.data)
            head.writeBytes(zeros[0..<padding])
            if let dataCRC { head.writeInteger(dataCRC, endianness: .little) }
            emit(head, true)
            return
        }
        emit(head, false)
        guard padding > 0 || dataCRC != nil else {
            emit(pdu.data, true)
            return
        }
        emit(pdu.data, false)
        var tail = allocator.buffer(capacity: padding + 4)
        tail.writeBytes(zeros[0..<padding])
        if let dataCRC { tail.writeInteger(dataCRC, endianness: .little) }
        emit(tail, true)
    }
}
