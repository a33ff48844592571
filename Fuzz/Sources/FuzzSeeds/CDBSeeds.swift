// CDBFuzzer seeds: one well-formed CDB for each command the logical unit decodes, with its
// common variants, and a few near misses (truncated, NACA set, unknown opcode).

enum CDB {
    static func six(_ opcode: UInt8, _ b1: UInt8 = 0, _ b2: UInt8 = 0, _ b3: UInt8 = 0, _ b4: UInt8 = 0) -> [UInt8] {
        [opcode, b1, b2, b3, b4, 0]
    }

    /// A 10-byte CDB with a 32-bit LBA at 2 and a 16-bit length at 7.
    static func ten(_ opcode: UInt8, flags: UInt8 = 0, lba: UInt64 = 0, length: UInt64 = 0) -> [UInt8] {
        [opcode, flags] + be(lba, 4) + [0] + be(length, 2) + [0]
    }

    /// A 12-byte CDB with a 32-bit LBA at 2 and a 32-bit length at 6.
    static func twelve(_ opcode: UInt8, flags: UInt8 = 0, lba: UInt64 = 0, length: UInt64 = 0) -> [UInt8] {
        [opcode, flags] + be(lba, 4) + be(length, 4) + [0, 0]
    }

    /// A 16-byte CDB with a 64-bit LBA at 2 and a 32-bit length at 10.
    static func sixteen(_ opcode: UInt8, flags: UInt8 = 0, lba: UInt64 = 0, length: UInt64 = 0) -> [UInt8] {
        [opcode, flags] + be(lba, 8) + be(length, 4) + [0, 0]
    }

    static func compareAndWrite(lba: UInt64, blocks: UInt8, flags: UInt8 = 0) -> [UInt8] {
        [0x89, flags] + be(lba, 8) + [0, 0, 0, blocks, 0, 0]
    }

    static func unmap(length: Int) -> [UInt8] { [0x42, 0, 0, 0, 0, 0, 0] + be(UInt64(length), 2) + [0] }
    static func modeSelect6(length: Int, flags: UInt8 = 0x10) -> [UInt8] { six(0x15, flags, 0, 0, UInt8(length)) }
    static func modeSelect10(length: Int, flags: UInt8 = 0x10) -> [UInt8] { ten(0x55, flags: flags, length: UInt64(length)) }
    static func modeSense6(page: UInt8, dbd: Bool = false) -> [UInt8] { six(0x1A, dbd ? 0x08 : 0, page, 0, 255) }
    static func modeSense10(page: UInt8, llbaa: Bool = false) -> [UInt8] {
        [0x5A, llbaa ? 0x10 : 0, page, 0, 0, 0, 0, 0x01, 0, 0]
    }
    static func getLBAStatus(lba: UInt64, allocation: UInt64) -> [UInt8] {
        [0x9E, 0x12] + be(lba, 8) + be(allocation, 4) + [0, 0]
    }
    static func reserveIn(_ action: UInt8) -> [UInt8] { [0x5E, action, 0, 0, 0, 0, 0, 0x20, 0, 0] }
    /// PERSISTENT RESERVE OUT with the basic 24-byte parameter list.
    static func reserveOut(_ action: UInt8, type: UInt8 = 0, length: UInt64 = 24) -> [UInt8] {
        [0x5F, action, type, 0, 0] + be(length, 4) + [0]
    }
    static func reportOpcodes(options: UInt8, opcode: UInt8 = 0, serviceAction: UInt64 = 0) -> [UInt8] {
        [0xA3, 0x0C, options, opcode] + be(serviceAction, 2) + be(512, 4) + [0, 0]
    }
    static func inquiry(page: UInt8?) -> [UInt8] { [0x12, page == nil ? 0 : 1, page ?? 0, 0, 255, 0] }
}

enum CDBSeeds {
    static let all: [Seed] = [
        Seed("test-unit-ready", CDB.six(0x00)),
        Seed("request-sense", CDB.six(0x03, 0, 0, 0, 252)),
        Seed("inquiry", CDB.inquiry(page: nil)),
        Seed("inquiry-vpd-00", CDB.inquiry(page: 0x00)),
        Seed("inquiry-vpd-80", CDB.inquiry(page: 0x80)),
        Seed("inquiry-vpd-83", CDB.inquiry(page: 0x83)),
        Seed("inquiry-vpd-b0", CDB.inquiry(page: 0xB0)),
        Seed("inquiry-vpd-b1", CDB.inquiry(page: 0xB1)),
        Seed("inquiry-vpd-b2", CDB.inquiry(page: 0xB2)),
        Seed("read6", CDB.six(0x08, 0, 0, 8, 4)),
        Seed("read10-fua", CDB.ten(0x28, flags: 0x08, lba: 16, length: 8)),
        Seed("read12", CDB.twelve(0xA8, lba: 32, length: 2)),
        Seed("read16", CDB.sixteen(0x88, lba: 64, length: 1)),
        Seed("write6", CDB.six(0x0A, 0, 0, 1, 1)),
        Seed("write10", CDB.ten(0x2A, lba: 1, length: 1)),
        Seed("write12-fua", CDB.twelve(0xAA, flags: 0x08, lba: 2, length: 2)),
        Seed("write16", CDB.sixteen(0x8A, lba: 3, length: 1)),
        Seed("verify10-medium", CDB.ten(0x2F, lba: 0, length: 4)),
        Seed("verify10-bytchk1", CDB.ten(0x2F, flags: 0x02, lba: 0, length: 1)),
        Seed("verify16-bytchk3", CDB.sixteen(0x8F, flags: 0x06, lba: 0, length: 4)),
        Seed("write-and-verify10", CDB.ten(0x2E, flags: 0x02, lba: 5, length: 1)),
        Seed("write-and-verify16", CDB.sixteen(0x8E, lba: 5, length: 1)),
        Seed("write-same10", CDB.ten(0x41, lba: 8, length: 4)),
        Seed("write-same16-unmap", CDB.sixteen(0x93, flags: 0x08, lba: 8, length: 4)),
        Seed("write-same16-ndob", CDB.sixteen(0x93, flags: 0x01, lba: 12, length: 2)),
        Seed("compare-and-write", CDB.compareAndWrite(lba: 1, blocks: 1)),
        Seed("orwrite16", CDB.sixteen(0x8B, lba: 1, length: 1)),
        Seed("synchronize-cache10", CDB.ten(0x35)),
        Seed("synchronize-cache16", CDB.sixteen(0x91, lba: 0, length: 16)),
        Seed("prefetch10", CDB.ten(0x34, lba: 0, length: 8)),
        Seed("prefetch16", CDB.sixteen(0x90, lba: 0, length: 8)),
        Seed("unmap", CDB.unmap(length: 24)),
        Seed("get-lba-status", CDB.getLBAStatus(lba: 0, allocation: 4096)),
        Seed("read-capacity10", CDB.ten(0x25)),
        Seed("read-capacity16", [0x9E, 0x10] + be(0, 8) + be(32, 4) + [0, 0]),
        Seed("mode-sense6-caching", CDB.modeSense6(page: 0x08)),
        Seed("mode-sense6-all-dbd", CDB.modeSense6(page: 0x3F, dbd: true)),
        Seed("mode-sense10-control-llbaa", CDB.modeSense10(page: 0x0A, llbaa: true)),
        Seed("mode-sense10-changeable", CDB.modeSense10(page: 0x48)),
        Seed("mode-select6", CDB.modeSelect6(length: 24)),
        Seed("mode-select10", CDB.modeSelect10(length: 28)),
        Seed("start-stop-unit", CDB.six(0x1B, 0, 0, 0, 0x01)),
        Seed("prevent-allow", CDB.six(0x1E, 0, 0, 0, 0x01)),
        Seed("report-luns", [0xA0, 0, 0, 0, 0, 0] + be(4096, 4) + [0, 0]),
        Seed("report-opcodes-all", CDB.reportOpcodes(options: 0)),
        Seed("report-opcodes-one", CDB.reportOpcodes(options: 1, opcode: 0x28)),
        Seed("report-opcodes-service-action", CDB.reportOpcodes(options: 2, opcode: 0x9E, serviceAction: 0x10)),
        Seed("report-target-port-groups", [0xA3, 0x0A, 0, 0, 0, 0] + be(1024, 4) + [0, 0]),
        Seed("pr-in-read-keys", CDB.reserveIn(0)),
        Seed("pr-in-read-full-status", CDB.reserveIn(3)),
        Seed("pr-out-register", CDB.reserveOut(0)),
        Seed("pr-out-preempt-and-abort", CDB.reserveOut(5, type: 3)),
        Seed("reserve6", CDB.six(0x16)),
        Seed("release10", CDB.ten(0x57)),
        Seed("read-defect-data10", [0x37, 0, 0x08, 0, 0, 0, 0, 0x02, 0, 0]),
        Seed("read-defect-data12", [0xB7, 0x08] + be(0, 4) + be(512, 4) + [0, 0]),
        Seed("truncated-read16", Array(CDB.sixteen(0x88, lba: 0, length: 1).prefix(9))),
        Seed("naca-set", [0x00, 0, 0, 0, 0, 0x04]),
        Seed("unknown-opcode", [0xFF, 0, 0, 0, 0, 0]),
    ]
}
