// PDUFuzzer seeds: streams of well-formed initiator PDUs (RFC 7143 section 11). The fuzzer
// reads the stream's first byte, the first PDU's opcode byte, as the digest settings (bit 0
// header, bit 1 data digest), so each stream carries the digests its first opcode implies.

enum PDUSeeds {
    /// One request PDU: its 48-byte BHS, AHS and data.
    struct PDU {
        var bhs = [UInt8](repeating: 0, count: 48)
        var ahs: [UInt8] = []
        var data: [UInt8] = []

        init(_ opcode: UInt8, flags: UInt8, itt: UInt32 = 1, fields: [(offset: Int, bytes: [UInt8])] = [],
             ahs: [UInt8] = [], data: [UInt8] = []) {
            bhs[0] = opcode
            bhs[1] = flags
            bhs.replaceSubrange(16..<20, with: be(UInt64(itt), 4))
            for field in fields { bhs.replaceSubrange(field.offset..<(field.offset + field.bytes.count), with: field.bytes) }
            self.ahs = padded(ahs)
            self.data = data
            bhs[4] = UInt8(self.ahs.count / 4)
            bhs.replaceSubrange(5..<8, with: be(UInt64(data.count), 3))
        }

        func encoded(headerDigest: Bool, dataDigest: Bool) -> [UInt8] {
            var bytes = bhs + ahs
            if headerDigest { bytes += le32(crc32c(bytes)) }
            let body = padded(data)
            bytes += body
            if dataDigest && !data.isEmpty { bytes += le32(crc32c(body)) }
            return bytes
        }
    }

    /// The PDUs as one stream, with the digests the first opcode byte selects.
    static func stream(_ pdus: [PDU]) -> [UInt8] {
        let first = pdus[0].bhs[0]
        return pdus.flatMap { $0.encoded(headerDigest: first & 1 != 0, dataDigest: first & 2 != 0) }
    }

    static func scsiCommand(_ cdb: [UInt8], flags: UInt8, expectedLength: UInt64, cmdSN: UInt64 = 1, itt: UInt32 = 1,
                            ahs: [UInt8] = [], data: [UInt8] = []) -> PDU {
        let cdbField = Array((cdb + [UInt8](repeating: 0, count: 16)).prefix(16))
        return PDU(0x01, flags: flags, itt: itt, fields: [(20, be(expectedLength, 4)), (24, be(cmdSN, 4)), (32, cdbField)],
                   ahs: ahs, data: data)
    }

    static func login(flags: UInt8, _ pairs: [(String, String)], immediate: Bool = true) -> PDU {
        PDU(immediate ? 0x43 : 0x03, flags: flags, fields: [(2, [0, 0]), (8, [0x40, 0, 0x01, 0x37, 0, 1])], data: textData(pairs))
    }

    static func text(_ pairs: [(String, String)], continues: Bool = false) -> PDU {
        PDU(0x04, flags: continues ? 0x40 : 0x80, fields: [(20, be(0xFFFF_FFFF, 4)), (24, be(1, 4))], data: textData(pairs))
    }

    static func nopOut(data: [UInt8] = [], immediate: Bool = false) -> PDU {
        PDU(immediate ? 0x40 : 0x00, flags: 0x80, fields: [(20, be(0xFFFF_FFFF, 4)), (24, be(1, 4))], data: data)
    }

    static func dataOut(ttt: UInt32 = 0xFFFF_FFFF, dataSN: UInt64 = 0, offset: UInt64, data: [UInt8], final: Bool = true) -> PDU {
        PDU(0x05, flags: final ? 0x80 : 0, fields: [(20, be(UInt64(ttt), 4)), (36, be(dataSN, 4)), (40, be(offset, 4))], data: data)
    }

    static func taskManagement(_ function: UInt8, referenced: UInt32 = 1, immediate: Bool = true) -> PDU {
        PDU(immediate ? 0x42 : 0x02, flags: 0x80 | function, itt: 9,
            fields: [(20, be(UInt64(referenced), 4)), (24, be(2, 4)), (32, be(1, 4))])
    }

    static func logout(reason: UInt8 = 0, immediate: Bool = false) -> PDU {
        PDU(immediate ? 0x46 : 0x06, flags: 0x80 | reason, itt: 7, fields: [(24, be(3, 4))])
    }

    static let read10: [UInt8] = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]
    static let write10: [UInt8] = [0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0]
    static let block = [UInt8](repeating: 0xA5, count: 512)
    static let initiator = [("InitiatorName", "iqn.2026-11.org.swift-block:seed"), ("SessionType", "Normal"),
                            ("TargetName", "iqn.2026-11.org.swift-block:demo")]

    static let all: [Seed] = [
        Seed("nop-out", stream([nopOut()])),
        Seed("nop-out-ping-data", stream([nopOut(data: Array("ping".utf8) + [1, 2, 3])])),
        Seed("nop-out-immediate", stream([nopOut(immediate: true)])),
        Seed("login-security-chap", stream([login(flags: 0x81, initiator + [("AuthMethod", "CHAP,None")])])),
        Seed("login-operational", stream([login(flags: 0x87, [("HeaderDigest", "CRC32C,None"), ("DataDigest", "None"),
                                                              ("MaxRecvDataSegmentLength", "65536"), ("ImmediateData", "Yes")])])),
        Seed("login-two-steps", stream([login(flags: 0x81, initiator + [("AuthMethod", "None")]),
                                        login(flags: 0x87, [("MaxBurstLength", "262144")])])),
        Seed("login-not-immediate", stream([login(flags: 0x87, initiator, immediate: false)])),
        Seed("text-send-targets", stream([text([("SendTargets", "All")])])),
        Seed("text-continued", stream([text([("SendTargets", "All")], continues: true), text([])])),
        Seed("scsi-read10", stream([scsiCommand(read10, flags: 0xC0, expectedLength: 512)])),
        Seed("scsi-write10-immediate", stream([scsiCommand(write10, flags: 0xA0, expectedLength: 512, data: block)])),
        Seed("scsi-write10-then-data-out", stream([scsiCommand(write10, flags: 0xA0, expectedLength: 512),
                                                   dataOut(offset: 0, data: block)])),
        Seed("scsi-write-two-data-outs", stream([scsiCommand(write10, flags: 0xA0, expectedLength: 512),
                                                 dataOut(offset: 0, data: Array(block[..<256]), final: false),
                                                 dataOut(dataSN: 1, offset: 256, data: Array(block[256...]))])),
        Seed("scsi-extended-cdb-ahs", stream([scsiCommand([0x7F, 0, 0, 0, 0, 0, 0, 0x18] + [UInt8](repeating: 0, count: 8),
                                                          flags: 0x80, expectedLength: 0,
                                                          ahs: be(17, 2) + [0x01, 0] + [UInt8](repeating: 0x5C, count: 16))])),
        Seed("scsi-read16-simple-attribute", stream([scsiCommand([0x88, 0] + be(8, 8) + be(2, 4) + [0, 0], flags: 0xC1,
                                                                 expectedLength: 1024)])),
        Seed("scsi-inquiry-then-logout", stream([scsiCommand([0x12, 0, 0, 0, 96, 0], flags: 0xC0, expectedLength: 96),
                                                 logout()])),
        Seed("data-out-unsolicited", stream([dataOut(offset: 0, data: block)])),
        Seed("data-out-solicited", stream([dataOut(ttt: 0x10, offset: 512, data: block)])),
        Seed("task-abort-task", stream([taskManagement(1)])),
        Seed("task-abort-task-set", stream([taskManagement(2, immediate: false)])),
        Seed("task-lun-reset", stream([taskManagement(5)])),
        Seed("task-target-warm-reset", stream([taskManagement(6)])),
        Seed("logout-close-session", stream([logout()])),
        Seed("logout-close-connection", stream([logout(reason: 1, immediate: true)])),
        Seed("snack-status", stream([PDU(0x10, flags: 0x81, fields: [(20, be(0, 4)), (40, be(0, 4))])])),
        Seed("nop-then-read-then-logout", stream([nopOut(immediate: true), scsiCommand(read10, flags: 0xC0, expectedLength: 512),
                                                  logout()])),
        Seed("bad-header-digest", { var bytes = stream([scsiCommand(read10, flags: 0xC0, expectedLength: 512)])
                                    bytes[48] ^= 0xFF; return bytes }()),
        Seed("bad-data-digest", { var bytes = stream([login(flags: 0x81, initiator)]); bytes[bytes.count - 1] ^= 0xFF
                                  return bytes }()),
        Seed("declared-longer-than-sent", Array(stream([nopOut(data: block)]).prefix(100))),
        Seed("unknown-opcode", stream([PDU(0x1F, flags: 0x80)])),
    ]
}
