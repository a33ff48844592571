// ParameterListFuzzer seeds: short command sequences whose Data-Out is well formed (see the
// record format in ParameterListFuzzer.swift), covering every parameter list the logical unit
// parses and the reservation state machine across nexuses. The volume has 512-byte blocks.

enum ParameterListSeeds {
    static let (a, b, c, aElsewhere) = (0, 1, 2, 3)
    static let blockBytes = 512
    static let keyA: UInt64 = 0xAAAA, keyB: UInt64 = 0xBBBB, keyC: UInt64 = 0xCCCC

    /// One record: `nexus` sends `cdb` with `data`; `loop` takes the event-loop path first.
    static func record(_ nexus: Int, _ cdb: [UInt8], _ data: [UInt8] = [], loop: Bool = false) -> [UInt8] {
        [UInt8(nexus) | (loop ? 0x04 : 0), UInt8(cdb.count)] + cdb + be(UInt64(data.count), 2) + data
    }

    /// PERSISTENT RESERVE OUT with its 24-byte parameter list.
    static func reserveOut(_ nexus: Int, _ action: UInt8, type: UInt8 = 0, key: UInt64, serviceActionKey: UInt64 = 0,
                           flags: UInt8 = 0) -> [UInt8] {
        let list = be(key, 8) + be(serviceActionKey, 8) + [0, 0, 0, 0, flags, 0, 0, 0]
        return record(nexus, CDB.reserveOut(action, type: type), list)
    }

    static func block(_ fill: UInt8, count: Int = 1) -> [UInt8] { [UInt8](repeating: fill, count: count * blockBytes) }
    static func write(_ nexus: Int, lba: UInt64, _ data: [UInt8]) -> [UInt8] {
        record(nexus, CDB.ten(0x2A, lba: lba, length: UInt64(data.count / blockBytes)), data)
    }
    static func unmapList(_ extents: [(UInt64, UInt64)]) -> [UInt8] {
        be(UInt64(6 + 16 * extents.count), 2) + be(UInt64(16 * extents.count), 2) + [0, 0, 0, 0]
            + extents.flatMap { be($0.0, 8) + be($0.1, 4) + [0, 0, 0, 0] }
    }
    static func cachingPage(writeCache: Bool) -> [UInt8] { [0x08, 0x12, writeCache ? 0x04 : 0] + [UInt8](repeating: 0, count: 17) }
    static let controlPage: [UInt8] = [0x0A, 0x0A, 0x02, 0x10, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0]
    static func modeSelect6(_ list: [UInt8], flags: UInt8 = 0x10) -> [UInt8] { record(a, CDB.modeSelect6(length: list.count, flags: flags), list) }
    static func modeSelect10(_ list: [UInt8]) -> [UInt8] { record(a, CDB.modeSelect10(length: list.count), list) }
    static let header6: [UInt8] = [0, 0, 0, 0]
    static let header10: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0]
    /// A short block descriptor restating the geometry (2048 blocks of 512 bytes).
    static let shortDescriptor: [UInt8] = be(2048, 4) + [0] + be(512, 3)
    static let longDescriptor: [UInt8] = be(2048, 8) + [0, 0, 0, 0] + be(512, 4)

    static let all: [Seed] = reservations + provisioning + modeSelect + dataChecks

    static let reservations: [Seed] = [
        Seed("pr-register-reserve-conflict", reserveOut(a, 0, key: 0, serviceActionKey: keyA)
             + reserveOut(a, 1, type: 1, key: keyA) + write(b, lba: 1, block(0x11)) + record(b, CDB.reserveIn(1))),
        Seed("pr-preempt-and-abort", reserveOut(a, 0, key: 0, serviceActionKey: keyA)
             + reserveOut(b, 0, key: 0, serviceActionKey: keyB) + reserveOut(a, 1, type: 3, key: keyA)
             + reserveOut(b, 5, type: 3, key: keyB, serviceActionKey: keyA) + record(a, CDB.six(0x00))),
        Seed("pr-preempt-registration-only", reserveOut(a, 0, key: 0, serviceActionKey: keyA)
             + reserveOut(b, 0, key: 0, serviceActionKey: keyB) + reserveOut(b, 4, key: keyB, serviceActionKey: keyA)
             + record(a, CDB.reserveIn(0))),
        Seed("pr-register-and-ignore", reserveOut(a, 6, key: 0, serviceActionKey: keyA)
             + reserveOut(a, 6, key: 0, serviceActionKey: keyC) + reserveOut(a, 0, key: keyC, serviceActionKey: 0)),
        Seed("pr-clear", reserveOut(a, 0, key: 0, serviceActionKey: keyA) + reserveOut(b, 0, key: 0, serviceActionKey: keyB)
             + reserveOut(a, 1, type: 5, key: keyA) + reserveOut(b, 3, key: keyB) + record(a, CDB.six(0x00))),
        Seed("pr-release-wrong-type", reserveOut(a, 0, key: 0, serviceActionKey: keyA)
             + reserveOut(a, 1, type: 1, key: keyA) + reserveOut(a, 2, type: 3, key: keyA) + reserveOut(a, 2, type: 1, key: keyA)),
        Seed("pr-all-registrants", reserveOut(a, 0, key: 0, serviceActionKey: keyA)
             + reserveOut(b, 0, key: 0, serviceActionKey: keyB) + reserveOut(c, 0, key: 0, serviceActionKey: keyC)
             + reserveOut(a, 1, type: 8, key: keyA) + reserveOut(c, 4, type: 3, key: keyC, serviceActionKey: 0)
             + record(c, CDB.reserveIn(3))),
        Seed("pr-register-aptpl", reserveOut(a, 0, key: 0, serviceActionKey: keyA, flags: 0x01) + record(a, CDB.reserveIn(2))),
        Seed("pr-spec-i-pt-refused", reserveOut(a, 0, key: 0, serviceActionKey: keyA, flags: 0x08)),
        Seed("pr-all-target-ports-refused", reserveOut(a, 0, key: 0, serviceActionKey: keyA, flags: 0x04)),
        Seed("pr-other-target-port", reserveOut(a, 0, key: 0, serviceActionKey: keyA)
             + reserveOut(a, 1, type: 5, key: keyA) + write(aElsewhere, lba: 2, block(0x22))
             + reserveOut(aElsewhere, 0, key: 0, serviceActionKey: keyB) + write(aElsewhere, lba: 2, block(0x23))),
        Seed("pr-out-short-list", record(a, CDB.reserveOut(0, length: 16), be(0, 8) + be(keyA, 8))),
        Seed("reserve6-conflict", record(a, CDB.six(0x16)) + write(b, lba: 3, block(0x33)) + record(a, CDB.six(0x17))
             + write(b, lba: 3, block(0x34))),
    ]

    static let provisioning: [Seed] = [
        Seed("unmap-two-extents", write(a, lba: 16, block(0x44, count: 4))
             + record(a, CDB.unmap(length: 40), unmapList([(16, 2), (19, 1)])) + record(a, CDB.getLBAStatus(lba: 16, allocation: 72))),
        Seed("unmap-out-of-range", record(a, CDB.unmap(length: 24), unmapList([(2047, 2)]))),
        Seed("unmap-header-only", record(a, CDB.unmap(length: 8), unmapList([]))),
        Seed("unmap-stated-longer", record(a, CDB.unmap(length: 24), be(38, 2) + be(32, 2) + [0, 0, 0, 0] + be(5, 8) + be(1, 4) + [0, 0, 0, 0])),
        Seed("write-same10", record(a, CDB.ten(0x41, lba: 32, length: 8), block(0x5A))),
        Seed("write-same16-unmap", record(a, CDB.sixteen(0x93, flags: 0x08, lba: 32, length: 4), block(0)) +
             record(a, CDB.getLBAStatus(lba: 32, allocation: 40), loop: true)),
        Seed("write-same16-ndob", record(a, CDB.sixteen(0x93, flags: 0x01, lba: 40, length: 3))),
        Seed("write-same10-to-the-end", record(a, CDB.ten(0x41, lba: 2040, length: 0), block(0x77))),
    ]

    static let modeSelect: [Seed] = [
        Seed("mode-select6-write-cache-off", modeSelect6(header6 + cachingPage(writeCache: false))
             + write(a, lba: 4, block(0x66)) + record(b, CDB.six(0x00))),
        Seed("mode-select10-write-cache-on", modeSelect10(header10 + cachingPage(writeCache: true))),
        Seed("mode-select6-block-descriptor", modeSelect6([0, 0, 0, 8] + shortDescriptor + cachingPage(writeCache: true))),
        Seed("mode-select10-long-descriptor", modeSelect10([0, 0, 0, 0, 0x01, 0, 0, 16] + longDescriptor + controlPage)),
        Seed("mode-select6-control-page", modeSelect6(header6 + controlPage)),
        Seed("mode-select6-two-pages", modeSelect6(header6 + cachingPage(writeCache: false) + controlPage)),
        Seed("mode-select6-bad-page-length", modeSelect6(header6 + [0x08, 0x10] + [UInt8](repeating: 0, count: 16))),
        Seed("mode-select6-save-pages", modeSelect6(header6 + cachingPage(writeCache: true), flags: 0x11)),
        Seed("mode-select6-no-page-format", modeSelect6(header6 + cachingPage(writeCache: true), flags: 0x00)),
    ]

    static let dataChecks: [Seed] = [
        Seed("compare-and-write-match", write(a, lba: 8, block(0x10))
             + record(a, CDB.compareAndWrite(lba: 8, blocks: 1), block(0x10) + block(0x20))),
        Seed("compare-and-write-miscompare", write(a, lba: 9, block(0x10))
             + record(a, CDB.compareAndWrite(lba: 9, blocks: 1), block(0x99) + block(0x20))),
        Seed("compare-and-write-two-blocks", record(a, CDB.compareAndWrite(lba: 10, blocks: 2), block(0, count: 2) + block(0x30, count: 2))),
        Seed("verify-bytchk1", write(a, lba: 12, block(0x12, count: 2))
             + record(a, CDB.ten(0x2F, flags: 0x02, lba: 12, length: 2), block(0x12, count: 2))),
        Seed("verify-bytchk3-miscompare", record(a, CDB.sixteen(0x8F, flags: 0x06, lba: 12, length: 3), block(0x12))),
        Seed("write-and-verify10", record(a, CDB.ten(0x2E, flags: 0x02, lba: 14, length: 1), block(0x14))),
        Seed("orwrite16", write(a, lba: 15, block(0x0F)) + record(a, CDB.sixteen(0x8B, lba: 15, length: 1), block(0xF0))),
        Seed("write10-short-data", record(a, CDB.ten(0x2A, lba: 20, length: 2), [UInt8](repeating: 0x2E, count: 700), loop: true)),
        Seed("write10-event-loop", record(a, CDB.ten(0x2A, lba: 21, length: 1), block(0x21), loop: true)
             + record(a, CDB.ten(0x28, lba: 21, length: 1), loop: true)),
    ]
}
