// INQUIRY: standard data, every VPD page at its SBC-4/SPC-4 byte offsets, identity unique per
// volume and stable across reopening.

import BlockEngine
import Testing
@testable import BlockSCSI

@Suite struct InquiryTests {
    @Test func standardData() async throws {
        let fixture = try await Fixture.make()
        let response = await fixture.send(CDB.inquiry(allocation: 260))
        expectGood(response)
        let data = response.data
        #expect(data.count == 96)
        #expect(data[0] == 0x00)                      // direct-access block device
        #expect(data[2] == 0x06)                      // SPC-4
        #expect(data[3] == 0x12)                      // HISUP, response data format 2
        #expect(Int(data[4]) == data.count - 5)
        #expect(data[5] & 0x30 == 0x10)               // TPGS: implicit ALUA
        #expect(data[7] & 0x02 == 0x02)               // CMDQUE
        #expect(String(decoding: data[8..<16], as: UTF8.self) == "SWBLOCK ")
        #expect(String(decoding: data[16..<32], as: UTF8.self) == "VOLUME          ")
        #expect(String(decoding: data[32..<36], as: UTF8.self) == "0001")
        let descriptors = stride(from: 58, to: 74, by: 2).map { UInt16(data[$0]) << 8 | UInt16(data[$0 + 1]) }
        #expect(descriptors.contains(0x0460) && descriptors.contains(0x04C0))  // SPC-4, SBC-3
        try await fixture.close()
    }

    @Test func allocationLengthCutsWithoutPadding() async throws {
        let fixture = try await Fixture.make()
        let full = await fixture.send(CDB.inquiry(allocation: 512)).data
        for length: UInt16 in [0, 1, 5, 36, 95, 96, 511] {
            let response = await fixture.send(CDB.inquiry(allocation: length))
            expectGood(response)
            #expect(response.data == Array(full.prefix(Int(length))))
        }
        let vpd = await fixture.send(CDB.inquiry(evpd: true, page: 0xB0, allocation: 10))
        #expect(vpd.data.count == 10)
        try await fixture.close()
    }

    @Test func supportedPagesAreAscendingAndAllAnswer() async throws {
        let fixture = try await Fixture.make()
        let list = await fixture.send(CDB.inquiry(evpd: true, page: 0x00)).data
        let pages = Array(list[4...])
        #expect(pages == [0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2])
        #expect(Int(list[3]) == pages.count)
        for page in pages {
            let response = await fixture.send(CDB.inquiry(evpd: true, page: page))
            expectGood(response)
            #expect(response.data[1] == page)
            #expect(Int(response.data[2]) << 8 | Int(response.data[3]) == response.data.count - 4)
        }
        expectSense(await fixture.send(CDB.inquiry(evpd: true, page: 0x86)), .invalidFieldInCDB)
        expectSense(await fixture.send(CDB.inquiry(evpd: false, page: 0x80)), .invalidFieldInCDB)
        try await fixture.close()
    }

    @Test func blockLimitsFieldsAtSBC4Offsets() async throws {
        let fixture = try await Fixture.make()
        let page = await fixture.send(CDB.inquiry(evpd: true, page: 0xB0)).data
        #expect(page.count == 64)
        #expect(page[3] == 0x3C)
        #expect(page[4] & 0x01 == 0)                                            // WSNZ
        #expect(page[5] == 255)                                                 // MAXIMUM COMPARE AND WRITE LENGTH
        #expect(page.loadBigEndian(UInt32.self, at: 8) == UInt32((16 << 20) / 4096))   // MAXIMUM TRANSFER LENGTH
        #expect(page.loadBigEndian(UInt32.self, at: 20) == 1 << 20)             // MAXIMUM UNMAP LBA COUNT
        #expect(page.loadBigEndian(UInt32.self, at: 24) == 256)                 // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
        #expect(page.loadBigEndian(UInt32.self, at: 28) == 1)                   // OPTIMAL UNMAP GRANULARITY
        #expect(page.loadBigEndian(UInt32.self, at: 32) == 0x8000_0000)         // UGAVALID, alignment 0
        #expect(page.loadBigEndian(UInt64.self, at: 36) == UInt64((8 << 20) / 4096))   // MAXIMUM WRITE SAME LENGTH
        #expect(page.loadBigEndian(UInt32.self, at: 44) == 0)                   // no atomic writes
        try await fixture.close()
    }

    @Test func provisioningAndCharacteristicsPages() async throws {
        let fixture = try await Fixture.make()
        let provisioning = await fixture.send(CDB.inquiry(evpd: true, page: 0xB2)).data
        #expect(provisioning.count == 8)
        #expect(provisioning[3] == 4)
        #expect(provisioning[5] & 0x80 != 0)     // LBPU
        #expect(provisioning[5] & 0x40 != 0)     // LBPWS
        #expect(provisioning[5] & 0x20 != 0)     // LBPWS10
        #expect(provisioning[5] & 0x1C == 0x04)  // LBPRZ 001b
        #expect(provisioning[5] & 0x02 == 0)     // ANC_SUP
        #expect(provisioning[6] & 0x07 == 0x02)  // thin
        let characteristics = await fixture.send(CDB.inquiry(evpd: true, page: 0xB1)).data
        #expect(characteristics.count == 64)
        #expect(characteristics.loadBigEndian(UInt16.self, at: 4) == 1)  // non-rotating
        try await fixture.close()

        let thick = try await Fixture.make { $0.thinProvisioning = false }
        let pages = await thick.send(CDB.inquiry(evpd: true, page: 0x00)).data
        #expect(!pages[4...].contains(0xB2))
        let limits = await thick.send(CDB.inquiry(evpd: true, page: 0xB0)).data
        #expect(limits.loadBigEndian(UInt32.self, at: 20) == 0)
        try await thick.close()
    }

    @Test func identityIsUniquePerVolumeAndStableAcrossReopen() async throws {
        let first = try await Fixture.make()
        let second = try await Fixture.make()
        let serialA = await first.send(CDB.inquiry(evpd: true, page: 0x80)).data
        let serialB = await second.send(CDB.inquiry(evpd: true, page: 0x80)).data
        let idA = await first.send(CDB.inquiry(evpd: true, page: 0x83)).data
        let idB = await second.send(CDB.inquiry(evpd: true, page: 0x83)).data
        #expect(serialA != serialB)
        #expect(idA != idB)
        #expect(String(decoding: serialA[4...], as: UTF8.self)
                == first.volume.uuid.description.replacingOccurrences(of: "-", with: ""))
        // NAA 6 designator first: binary, logical unit, NAA, 16 bytes, NAA nibble 6.
        #expect(Array(idA[4..<8]) == [0x01, 0x03, 0x00, 0x10])
        #expect(idA[8] >> 4 == 0x6)
        #expect(Array(idA[8..<24]) != Array(idB[8..<24]))

        // Reopen the same volume: same serial, same designators.
        let path = first.volume.path
        try await first.close()
        let reopened = try await Volume.open(at: path, options: testVolumeOptions())
        let unit = try SCSILogicalUnit(volume: reopened, configuration: Fixture.configuration(first.directory))
        let again = Fixture(directory: first.directory, volume: reopened, unit: unit)
        #expect(await again.send(CDB.inquiry(evpd: true, page: 0x80)).data == serialA)
        #expect(await again.send(CDB.inquiry(evpd: true, page: 0x83)).data == idA)
        try await again.close()
        try await second.close()
    }

    @Test func deviceIdentificationDesignators() async throws {
        let fixture = try await Fixture.make { $0.relativeTargetPort = 3; $0.targetPortGroup = 7 }
        let page = await fixture.send(CDB.inquiry(evpd: true, page: 0x83)).data
        var offset = 4
        var types: [UInt8: [UInt8]] = [:]
        while offset + 4 <= page.count {
            let length = Int(page[offset + 3])
            types[page[offset + 1] & 0x0F] = Array(page[(offset + 4)..<(offset + 4 + length)])
            offset += 4 + length
        }
        #expect(offset == page.count)
        #expect(types[0x4] == [0, 0, 0, 3])                  // relative target port
        #expect(types[0x5] == [0, 0, 0, 7])                  // target port group
        #expect(types[0x1].map { String(decoding: $0.prefix(8), as: UTF8.self) } == "SWBLOCK ")
        #expect(types[0x8].map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } == "iqn.2024-01.test:target")
        try await fixture.close()
    }
}
