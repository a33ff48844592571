// MODE SENSE and MODE SELECT: pages, page control, block descriptors, changeable bits, and
// the unit attention a change raises for other nexuses.

import Testing
@testable import BlockSCSI

@Suite struct ModePageTests {
    @Test func modeSense6AllPagesWithBlockDescriptor() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        let data = await fixture.send(CDB.modeSense6(page: 0x3F)).data
        #expect(Int(data[0]) == data.count - 1)          // MODE DATA LENGTH
        #expect(data[2] == 0x10)                         // DPOFUA, not write protected
        #expect(data[3] == 8)                            // one short block descriptor
        #expect(data.loadBigEndian(UInt32.self, at: 4) == UInt32(Fixture.blockCount))
        #expect(Array(data[9..<12]) == [0x00, 0x10, 0x00])  // 4096
        #expect(Array(data[12..<14]) == [0x08, 0x12])   // caching page
        #expect(data[14] & 0x04 == 0x04)                 // WCE
        #expect(Array(data[32..<34]) == [0x0A, 0x0A])   // control page
        #expect(data[34] & 0x04 == 0)                    // D_SENSE 0: fixed-format sense
        let expectedCount = 4 + 8 + 20 + 12
        #expect(data.count == expectedCount)

        let noDescriptor = await fixture.send(CDB.modeSense6(page: 0x08, dbd: true)).data
        #expect(noDescriptor[3] == 0)
        let expectedBare = 24
        #expect(noDescriptor.count == expectedBare)
        let cut = await fixture.send(CDB.modeSense6(page: 0x3F, allocation: 4))
        #expect(cut.data.count == 4)
        #expect(cut.data[0] == data[0])                  // the length is not cut
        try await fixture.close()
    }

    @Test func modeSense10WithLongDescriptorAndPageControl() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        let long = await fixture.send(CDB.modeSense10(page: 0x0A, llbaa: true)).data
        #expect(long.loadBigEndian(UInt16.self, at: 0) == UInt16(long.count - 2))
        #expect(long[4] & 0x01 == 1)                     // LONGLBA
        #expect(long.loadBigEndian(UInt16.self, at: 6) == 16)
        #expect(long.loadBigEndian(UInt64.self, at: 8) == Fixture.blockCount)
        #expect(long.loadBigEndian(UInt32.self, at: 20) == 4096)

        let changeable = await fixture.send(CDB.modeSense10(page: 0x08, control: 1, dbd: true)).data
        #expect(changeable[8 + 2] == 0x04)               // only WCE is changeable
        #expect(changeable[8...].enumerated().allSatisfy { $0.offset == 2 || $0.offset < 2 || $0.element == 0 })
        let defaults = await fixture.send(CDB.modeSense6(page: 0x08, control: 2, dbd: true)).data
        #expect(defaults[4 + 2] & 0x04 == 0x04)
        expectSense(await fixture.send(CDB.modeSense6(page: 0x08, control: 3)), .savingParametersNotSupported)
        expectSense(await fixture.send(CDB.modeSense6(page: 0x1C)), .invalidFieldInCDB)
        expectSense(await fixture.send(CDB.modeSense6(page: 0x08, subpage: 0x01)), .invalidFieldInCDB)
        expectGood(await fixture.send(CDB.modeSense6(page: 0x3F, subpage: 0xFF)))
        try await fixture.close()
    }

    @Test func modeSelectChangesWriteCacheAndNotifiesOtherNexuses() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions(nexusA)
        await fixture.clearAttentions(nexusB)
        let off = CDB.cachingPageList6(writeCache: false)
        expectGood(await fixture.send(CDB.modeSelect6(length: UInt8(off.count)), data: off))
        #expect(!fixture.unit.modeParameters.writeCacheEnabled)
        let current = await fixture.send(CDB.modeSense6(page: 0x08, dbd: true)).data
        #expect(current[6] & 0x04 == 0)
        // A changes it, B hears about it, A does not.
        expectGood(await fixture.send(CDB.testUnitReady(), from: nexusA))
        expectSense(await fixture.send(CDB.testUnitReady(), from: nexusB), .modeParametersChanged)
        expectGood(await fixture.send(CDB.testUnitReady(), from: nexusB))

        // Selecting the same values again changes nothing and raises nothing.
        expectGood(await fixture.send(CDB.modeSelect6(length: UInt8(off.count)), data: off))
        expectGood(await fixture.send(CDB.testUnitReady(), from: nexusB))

        // MODE SELECT(10) with a header of 8 bytes.
        let on = [0, 0, 0, 0, 0, 0, 0, 0] + Array(CDB.cachingPageList6(writeCache: true)[4...])
        expectGood(await fixture.send(CDB.modeSelect10(length: UInt16(on.count)), data: on))
        #expect(fixture.unit.modeParameters.writeCacheEnabled)
        try await fixture.close()
    }

    @Test func modeSelectRejectsWhatCannotChange() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        // The control page sent back unchanged is accepted (libiscsi's SWP helpers do this).
        let sensed = await fixture.send(CDB.modeSense6(page: 0x0A, dbd: true)).data
        let control = [0, 0, 0, 0] + Array(sensed[4...])
        expectGood(await fixture.send(CDB.modeSelect6(length: UInt8(control.count)), data: control))
        // SWP is not changeable.
        var swp = control
        swp[4 + 4] |= 0x08
        let refused = await fixture.send(CDB.modeSelect6(length: UInt8(swp.count)), data: swp)
        expectSense(refused, .invalidFieldInParameterList)
        #expect(refused.sense?.fieldPointer == SenseFieldPointer(inCDB: false, byteOffset: 8))
        // Other caching bits are not changeable either.
        var rcd = CDB.cachingPageList6(writeCache: true)
        rcd[4 + 2] |= 0x01
        expectSense(await fixture.send(CDB.modeSelect6(length: UInt8(rcd.count)), data: rcd), .invalidFieldInParameterList)
        // A wrong page length, an unknown page, a truncated list, SP=1, PF=0.
        var badLength = CDB.cachingPageList6(writeCache: true)
        badLength[5] = 0x10
        expectSense(await fixture.send(CDB.modeSelect6(length: UInt8(badLength.count)), data: badLength),
                    .invalidFieldInParameterList)
        let unknown: [UInt8] = [0, 0, 0, 0, 0x1C, 0x0A] + [UInt8](repeating: 0, count: 10)
        expectSense(await fixture.send(CDB.modeSelect6(length: UInt8(unknown.count)), data: unknown),
                    .invalidFieldInParameterList)
        let truncated = Array(CDB.cachingPageList6(writeCache: false).prefix(12))
        expectSense(await fixture.send(CDB.modeSelect6(length: UInt8(truncated.count)), data: truncated),
                    .parameterListLengthError)
        let list = CDB.cachingPageList6(writeCache: false)
        expectSense(await fixture.send(CDB.modeSelect6(length: UInt8(list.count), save: true), data: list), .invalidFieldInCDB)
        expectSense(await fixture.send(CDB.modeSelect6(length: UInt8(list.count), pageFormat: false), data: list),
                    .invalidFieldInCDB)
        // A block descriptor may restate the geometry, not change the block size.
        var descriptor: [UInt8] = [0, 0, 0, 8, 0, 0, 0, 0, 0, 0x00, 0x10, 0x00]
        expectGood(await fixture.send(CDB.modeSelect6(length: UInt8(descriptor.count)), data: descriptor))
        descriptor[10] = 0x02
        expectSense(await fixture.send(CDB.modeSelect6(length: UInt8(descriptor.count)), data: descriptor),
                    .invalidFieldInParameterList)
        #expect(fixture.unit.modeParameters.writeCacheEnabled)  // nothing applied by failures
        try await fixture.close()
    }
}
