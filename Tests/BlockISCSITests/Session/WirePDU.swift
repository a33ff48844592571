// PDUs as the test initiator sees them: raw bytes built and parsed here, independently of
// the codec under test (RFC 7143 section 11 layouts, CRC32C per RFC 7143 section 13.1 /
// RFC 3720 appendix B.4, little-endian on the wire).

/// One PDU: the 48-byte BHS and its data segment (no AHS is ever sent or expected).
struct WirePDU: CustomStringConvertible {
    var bhs = [UInt8](repeating: 0, count: 48)
    var data: [UInt8] = []

    init(opcode: UInt8, immediate: Bool = false, flags: UInt8 = 0x80) {
        bhs[0] = opcode | (immediate ? 0x40 : 0)
        bhs[1] = flags
    }

    init(bhs: [UInt8], data: [UInt8]) {
        precondition(bhs.count == 48)
        self.bhs = bhs
        self.data = data
    }

    var opcode: UInt8 { bhs[0] & 0x3F }
    var flags: UInt8 { bhs[1] }
    var final: Bool { bhs[1] & 0x80 != 0 }
    var dataSegmentLength: Int { Int(u32(4) & 0x00FF_FFFF) }
    var initiatorTaskTag: UInt32 { u32(16) }
    var targetTransferTag: UInt32 { u32(20) }
    var statSN: UInt32 { u32(24) }
    var expCmdSN: UInt32 { u32(28) }
    var maxCmdSN: UInt32 { u32(32) }

    func u16(_ offset: Int) -> UInt16 { UInt16(bhs[offset]) << 8 | UInt16(bhs[offset + 1]) }
    func u32(_ offset: Int) -> UInt32 { bhs[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) } }
    func u64(_ offset: Int) -> UInt64 { bhs[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) } }

    mutating func set16(_ value: UInt16, at offset: Int) {
        bhs[offset] = UInt8(value >> 8)
        bhs[offset + 1] = UInt8(truncatingIfNeeded: value)
    }

    mutating func set32(_ value: UInt32, at offset: Int) {
        for index in 0..<4 { bhs[offset + index] = UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32(index))) }
    }

    mutating func set64(_ value: UInt64, at offset: Int) {
        for index in 0..<8 { bhs[offset + index] = UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64(index))) }
    }

    /// The wire bytes: BHS (with DataSegmentLength filled in), header digest, data padded
    /// to 4 bytes, data digest. `corruptDataDigest`/`corruptHeaderDigest` flip a digest bit.
    func encoded(headerDigest: Bool, dataDigest: Bool, corruptHeaderDigest: Bool = false,
                 corruptDataDigest: Bool = false) -> [UInt8] {
        var header = bhs
        header[4] = 0
        header[5] = UInt8(truncatingIfNeeded: data.count >> 16)
        header[6] = UInt8(truncatingIfNeeded: data.count >> 8)
        header[7] = UInt8(truncatingIfNeeded: data.count)
        var bytes = header
        if headerDigest { bytes += littleEndian(CRC32C.checksum(header) ^ (corruptHeaderDigest ? 1 : 0)) }
        if !data.isEmpty {
            let padded = data + [UInt8](repeating: 0, count: (4 - data.count % 4) % 4)
            bytes += padded
            if dataDigest { bytes += littleEndian(CRC32C.checksum(padded) ^ (corruptDataDigest ? 1 : 0)) }
        }
        return bytes
    }

    var description: String {
        "PDU(opcode 0x\(String(opcode, radix: 16)), flags 0x\(String(flags, radix: 16)), ITT \(initiatorTaskTag), "
            + "data \(data.count) bytes)"
    }
}

private func littleEndian(_ value: UInt32) -> [UInt8] {
    (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) }
}

/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: slow and obviously right.
enum CRC32C {
    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }
}

/// Why the byte stream from the target could not be parsed.
struct WireFormatError: Error, CustomStringConvertible {
    var description: String
}

/// Splits the target's byte stream into PDUs, checking digests when they are on.
struct WireParser {
    var headerDigest = false
    var dataDigest = false
    private var pending: [UInt8] = []

    mutating func append(_ bytes: [UInt8]) { pending += bytes }

    var bufferedBytes: Int { pending.count }

    /// The next complete PDU, nil when more bytes are needed. Throws on a bad digest or an AHS.
    mutating func next() throws -> WirePDU? {
        guard pending.count >= 48 else { return nil }
        let ahsBytes = Int(pending[4]) * 4
        guard ahsBytes == 0 else { throw WireFormatError(description: "target sent an AHS") }
        let dataLength = Int(pending[5]) << 16 | Int(pending[6]) << 8 | Int(pending[7])
        let padded = (dataLength + 3) & ~3
        let headerDigestBytes = headerDigest ? 4 : 0
        let dataDigestBytes = dataDigest && dataLength > 0 ? 4 : 0
        let total = 48 + headerDigestBytes + padded + dataDigestBytes
        guard pending.count >= total else { return nil }
        let bhs = Array(pending[0..<48])
        if headerDigest {
            let received = Self.littleEndianValue(pending[48..<52])
            guard received == CRC32C.checksum(bhs) else {
                throw WireFormatError(description: "bad header digest from the target")
            }
        }
        let dataStart = 48 + headerDigestBytes
        let paddedData = Array(pending[dataStart..<dataStart + padded])
        if dataDigestBytes > 0 {
            let received = Self.littleEndianValue(pending[(dataStart + padded)..<(dataStart + padded + 4)])
            guard received == CRC32C.checksum(paddedData) else {
                throw WireFormatError(description: "bad data digest from the target")
            }
        }
        guard paddedData[dataLength...].allSatisfy({ $0 == 0 }) else {
            throw WireFormatError(description: "non-zero padding from the target")
        }
        pending.removeFirst(total)
        return WirePDU(bhs: bhs, data: Array(paddedData[0..<dataLength]))
    }

    private static func littleEndianValue(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
}

/// Opcodes (RFC 7143 section 11.2.1.2), spelled out here rather than taken from the code under test.
enum Op {
    static let nopOut: UInt8 = 0x00
    static let scsiCommand: UInt8 = 0x01
    static let taskManagement: UInt8 = 0x02
    static let login: UInt8 = 0x03
    static let text: UInt8 = 0x04
    static let dataOut: UInt8 = 0x05
    static let logout: UInt8 = 0x06
    static let nopIn: UInt8 = 0x20
    static let scsiResponse: UInt8 = 0x21
    static let taskManagementResponse: UInt8 = 0x22
    static let loginResponse: UInt8 = 0x23
    static let textResponse: UInt8 = 0x24
    static let dataIn: UInt8 = 0x25
    static let logoutResponse: UInt8 = 0x26
    static let r2t: UInt8 = 0x31
    static let asyncMessage: UInt8 = 0x32
    static let reject: UInt8 = 0x3F

    /// Whether a target PDU carries a StatSN that advances the status sequence.
    static func carriesStatus(_ pdu: WirePDU) -> Bool {
        switch pdu.opcode {
        case dataIn: return pdu.flags & 0x01 != 0
        case r2t: return false
        case nopIn: return pdu.initiatorTaskTag != 0xFFFF_FFFF
        default: return true
        }
    }
}

/// `key=value\0` text.
enum LoginText {
    static func encode(_ pairs: [(String, String)]) -> [UInt8] {
        pairs.flatMap { Array("\($0.0)=\($0.1)".utf8) + [0] }
    }

    static func decode(_ bytes: [UInt8]) -> [String: String] {
        var result: [String: String] = [:]
        for item in bytes.split(separator: 0) {
            let parts = String(decoding: item, as: UTF8.self).split(separator: "=", maxSplits: 1,
                                                                     omittingEmptySubsequences: false)
            result[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        return result
    }
}

/// SCSI CDBs the tests send.
enum TestCDB {
    static func testUnitReady() -> [UInt8] { [0x00, 0, 0, 0, 0, 0] }

    static func inquiry(evpd: Bool = false, page: UInt8 = 0, allocationLength: UInt16) -> [UInt8] {
        [0x12, evpd ? 1 : 0, page, UInt8(allocationLength >> 8), UInt8(truncatingIfNeeded: allocationLength), 0]
    }

    static func read10(lba: UInt32, blocks: UInt16) -> [UInt8] { rw10(0x28, lba: lba, blocks: blocks) }
    static func write10(lba: UInt32, blocks: UInt16) -> [UInt8] { rw10(0x2A, lba: lba, blocks: blocks) }

    private static func rw10(_ opcode: UInt8, lba: UInt32, blocks: UInt16) -> [UInt8] {
        [opcode, 0, UInt8(lba >> 24), UInt8(truncatingIfNeeded: lba >> 16), UInt8(truncatingIfNeeded: lba >> 8),
         UInt8(truncatingIfNeeded: lba), 0, UInt8(blocks >> 8), UInt8(truncatingIfNeeded: blocks), 0]
    }
}

/// Block contents that identify their writer and position.
func testPattern(tag: UInt8, bytes: Int) -> [UInt8] {
    (0..<bytes).map { UInt8(truncatingIfNeeded: Int(tag) &* 29 &+ $0 / 4096 &* 13 &+ $0 % 253) }
}
