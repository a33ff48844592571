// CDB builders for the tests, written from SPC-4/SBC-4 field tables.

enum CDB {
    static func be(_ value: UInt64, _ bytes: Int) -> [UInt8] {
        (0..<bytes).map { UInt8(truncatingIfNeeded: value >> (8 * (bytes - 1 - $0))) }
    }

    static func testUnitReady() -> [UInt8] { [0x00, 0, 0, 0, 0, 0] }
    static func requestSense(_ allocation: UInt8 = 252) -> [UInt8] { [0x03, 0, 0, 0, allocation, 0] }

    static func inquiry(evpd: Bool = false, page: UInt8 = 0, allocation: UInt16 = 255) -> [UInt8] {
        [0x12, evpd ? 1 : 0, page] + be(UInt64(allocation), 2) + [0]
    }

    static func read6(lba: UInt32, blocks: UInt8) -> [UInt8] {
        [0x08, UInt8((lba >> 16) & 0x1F), UInt8((lba >> 8) & 0xFF), UInt8(lba & 0xFF), blocks, 0]
    }

    static func write6(lba: UInt32, blocks: UInt8) -> [UInt8] {
        [0x0A, UInt8((lba >> 16) & 0x1F), UInt8((lba >> 8) & 0xFF), UInt8(lba & 0xFF), blocks, 0]
    }

    /// READ/WRITE/VERIFY/... (10): opcode, byte-1 flags, 32-bit LBA, 16-bit length.
    static func ten(_ opcode: UInt8, lba: UInt64, blocks: UInt64, flags: UInt8 = 0) -> [UInt8] {
        [opcode, flags] + be(lba, 4) + [0] + be(blocks, 2) + [0]
    }

    static func twelve(_ opcode: UInt8, lba: UInt64, blocks: UInt64, flags: UInt8 = 0) -> [UInt8] {
        [opcode, flags] + be(lba, 4) + be(blocks, 4) + [0, 0]
    }

    static func sixteen(_ opcode: UInt8, lba: UInt64, blocks: UInt64, flags: UInt8 = 0) -> [UInt8] {
        [opcode, flags] + be(lba, 8) + be(blocks, 4) + [0, 0]
    }

    static func read10(lba: UInt64, blocks: UInt64, flags: UInt8 = 0) -> [UInt8] { ten(0x28, lba: lba, blocks: blocks, flags: flags) }
    static func write10(lba: UInt64, blocks: UInt64, flags: UInt8 = 0) -> [UInt8] { ten(0x2A, lba: lba, blocks: blocks, flags: flags) }
    static func read16(lba: UInt64, blocks: UInt64, flags: UInt8 = 0) -> [UInt8] { sixteen(0x88, lba: lba, blocks: blocks, flags: flags) }
    static func write16(lba: UInt64, blocks: UInt64, flags: UInt8 = 0) -> [UInt8] { sixteen(0x8A, lba: lba, blocks: blocks, flags: flags) }

    static func compareAndWrite(lba: UInt64, blocks: UInt8, flags: UInt8 = 0) -> [UInt8] {
        [0x89, flags] + be(lba, 8) + [0, 0, 0, blocks, 0, 0]
    }

    static func writeSame10(lba: UInt64, blocks: UInt64, unmap: Bool = false, anchor: Bool = false) -> [UInt8] {
        ten(0x41, lba: lba, blocks: blocks, flags: (unmap ? 0x08 : 0) | (anchor ? 0x10 : 0))
    }

    static func writeSame16(lba: UInt64, blocks: UInt64, unmap: Bool = false, ndob: Bool = false) -> [UInt8] {
        sixteen(0x93, lba: lba, blocks: blocks, flags: (unmap ? 0x08 : 0) | (ndob ? 0x01 : 0))
    }

    static func synchronizeCache10(lba: UInt64 = 0, blocks: UInt64 = 0, immediate: Bool = false) -> [UInt8] {
        ten(0x35, lba: lba, blocks: blocks, flags: immediate ? 0x02 : 0)
    }

    static func unmap(parameterListLength: Int) -> [UInt8] {
        [0x42, 0, 0, 0, 0, 0, 0] + be(UInt64(parameterListLength), 2) + [0]
    }

    /// An UNMAP parameter list.
    static func unmapList(_ extents: [(lba: UInt64, blocks: UInt32)]) -> [UInt8] {
        var list = be(UInt64(6 + 16 * extents.count), 2) + be(UInt64(16 * extents.count), 2) + [0, 0, 0, 0]
        for extent in extents { list += be(extent.lba, 8) + be(UInt64(extent.blocks), 4) + [0, 0, 0, 0] }
        return list
    }

    static func getLBAStatus(lba: UInt64, allocation: UInt32 = 4096) -> [UInt8] {
        [0x9E, 0x12] + be(lba, 8) + be(UInt64(allocation), 4) + [0, 0]
    }

    static func readCapacity10() -> [UInt8] { [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0] }
    static func readCapacity16(allocation: UInt32 = 32) -> [UInt8] {
        [0x9E, 0x10] + [UInt8](repeating: 0, count: 8) + be(UInt64(allocation), 4) + [0, 0]
    }

    static func reportLUNs(allocation: UInt32 = 4096) -> [UInt8] { [0xA0, 0, 0, 0, 0, 0] + be(UInt64(allocation), 4) + [0, 0] }

    static func modeSense6(page: UInt8, control: UInt8 = 0, subpage: UInt8 = 0, dbd: Bool = false,
                           allocation: UInt8 = 255) -> [UInt8] {
        [0x1A, dbd ? 0x08 : 0, control << 6 | page, subpage, allocation, 0]
    }

    static func modeSense10(page: UInt8, control: UInt8 = 0, dbd: Bool = false, llbaa: Bool = false,
                            allocation: UInt16 = 1024) -> [UInt8] {
        [0x5A, (dbd ? 0x08 : 0) | (llbaa ? 0x10 : 0), control << 6 | page, 0, 0, 0, 0] + be(UInt64(allocation), 2) + [0]
    }

    static func modeSelect6(length: UInt8, pageFormat: Bool = true, save: Bool = false) -> [UInt8] {
        [0x15, (pageFormat ? 0x10 : 0) | (save ? 0x01 : 0), 0, 0, length, 0]
    }

    static func modeSelect10(length: UInt16) -> [UInt8] { [0x55, 0x10, 0, 0, 0, 0, 0] + be(UInt64(length), 2) + [0] }

    /// A MODE SELECT(6) parameter list with the caching page and WCE as given.
    static func cachingPageList6(writeCache: Bool) -> [UInt8] {
        var page = [UInt8](repeating: 0, count: 20)
        page[0] = 0x08
        page[1] = 0x12
        page[2] = writeCache ? 0x04 : 0
        return [0, 0, 0, 0] + page
    }

    static func persistentReserveIn(_ action: UInt8, allocation: UInt16 = 8192) -> [UInt8] {
        [0x5E, action, 0, 0, 0, 0, 0] + be(UInt64(allocation), 2) + [0]
    }

    static func persistentReserveOut(_ action: UInt8, type: UInt8 = 0, scope: UInt8 = 0, length: UInt32 = 24) -> [UInt8] {
        [0x5F, action, scope << 4 | type, 0, 0] + be(UInt64(length), 4) + [0]
    }

    static func reserveOutList(key: UInt64, serviceActionKey: UInt64 = 0, aptpl: Bool = false) -> [UInt8] {
        be(key, 8) + be(serviceActionKey, 8) + [0, 0, 0, 0, aptpl ? 1 : 0, 0, 0, 0]
    }

    static func reportOpcodes(options: UInt8, opcode: UInt8 = 0, serviceAction: UInt16 = 0, timeouts: Bool = false,
                              allocation: UInt32 = 65535) -> [UInt8] {
        [0xA3, 0x0C, (timeouts ? 0x80 : 0) | options, opcode] + be(UInt64(serviceAction), 2) + be(UInt64(allocation), 4) + [0, 0]
    }

    static func reportTargetPortGroups(allocation: UInt32 = 1024, extended: Bool = false) -> [UInt8] {
        [0xA3, (extended ? 0x20 : 0) | 0x0A, 0, 0, 0, 0] + be(UInt64(allocation), 4) + [0, 0]
    }

    static func reserve6() -> [UInt8] { [0x16, 0, 0, 0, 0, 0] }
    static func release6() -> [UInt8] { [0x17, 0, 0, 0, 0, 0] }
}

/// PERSISTENT RESERVE OUT service actions and types, by their SPC-4 values.
enum PR {
    static let register: UInt8 = 0, reserve: UInt8 = 1, release: UInt8 = 2, clear: UInt8 = 3
    static let preempt: UInt8 = 4, preemptAndAbort: UInt8 = 5, registerAndIgnore: UInt8 = 6
    static let readKeys: UInt8 = 0, readReservation: UInt8 = 1, reportCapabilities: UInt8 = 2, readFullStatus: UInt8 = 3
}
