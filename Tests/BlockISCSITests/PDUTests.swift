import NIOCore
import Testing
@testable import BlockISCSI

@Suite("PDU views")
struct PDUTests {
    func command(ahs: [UInt8]) -> SCSICommandPDU {
        var header = BasicHeaderSegment()
        header.opcodeValue = ISCSIOpcode.scsiCommand.rawValue
        for index in 0..<16 { header[byte: 32 + index] = UInt8(index) }
        return SCSICommandPDU(ISCSIPDU(header: header, additionalHeaderSegments: ByteBuffer(bytes: ahs)))
    }

    @Test("an Extended-CDB AHS appends the bytes after its reserved byte")
    func extendedCDB() {
        // Length 5 (reserved byte + 4 CDB bytes), type 1, reserved, 4 bytes; 1 byte padding.
        let cdb = command(ahs: [0, 5, 1, 0, 0xA, 0xB, 0xC, 0xD]).cdb
        #expect(cdb.map { Array($0.readableBytesView) } == Array(0..<16) + [0xA, 0xB, 0xC, 0xD])
    }

    @Test("a malformed AHS gives no CDB instead of trapping (found by the PDU fuzzer)")
    func malformedAHS() {
        #expect(command(ahs: [0, 0, 1, 0]).cdb == nil, "Extended CDB without even its reserved byte")
        #expect(command(ahs: [0, 9, 1, 0]).cdb == nil, "length beyond the AHS")
        #expect(command(ahs: [0, 1, 1]).cdb == nil, "truncated AHS")
        #expect(command(ahs: [0, 1, 1, 0]).cdb?.readableBytes == 16, "only the reserved byte: nothing added")
    }
}
