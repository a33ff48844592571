// TEST UNIT READY, REQUEST SENSE, READ CAPACITY, REPORT LUNS, REPORT SUPPORTED OPERATION
// CODES, START STOP UNIT, PREVENT ALLOW MEDIUM REMOVAL and READ DEFECT DATA. REPORT TARGET
// PORT GROUPS and the ALUA states: AsymmetricAccessTests.swift.

import Testing
@testable import BlockSCSI

@Suite struct InformationCommandTests {
    @Test func readCapacity() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        let ten = await fixture.send(CDB.readCapacity10()).data
        #expect(ten.loadBigEndian(UInt32.self, at: 0) == UInt32(Fixture.blockCount - 1))
        #expect(ten.loadBigEndian(UInt32.self, at: 4) == 4096)
        let sixteen = await fixture.send(CDB.readCapacity16()).data
        #expect(sixteen.count == 32)
        #expect(sixteen.loadBigEndian(UInt64.self, at: 0) == Fixture.blockCount - 1)
        #expect(sixteen.loadBigEndian(UInt32.self, at: 8) == 4096)
        #expect(sixteen[12] == 0)                        // no protection information
        #expect(sixteen[14] & 0xC0 == 0xC0)              // LBPME, LBPRZ
        for length: UInt32 in [0, 8, 15] {
            let cut = await fixture.send(CDB.readCapacity16(allocation: length))
            expectGood(cut)
            #expect(cut.data == Array(sixteen.prefix(Int(length))))
        }
        expectSense(await fixture.send([0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0]), .invalidFieldInCDB)
        try await fixture.close()
    }

    @Test func reportLUNsListsTheConfiguredLUNs() async throws {
        let fixture = try await Fixture.make { $0.reportedLUNs = [0, 1, 300] }
        let data = await fixture.send(CDB.reportLUNs()).data  // no unit attention for REPORT LUNS
        #expect(data.loadBigEndian(UInt32.self, at: 0) == 24)
        #expect(Array(data[8..<10]) == [0x00, 0x00])
        #expect(Array(data[16..<18]) == [0x00, 0x01])
        #expect(Array(data[24..<26]) == [0x41, 0x2C])    // flat space addressing for 300
        expectSense(await fixture.send([0xA0, 0, 0x03, 0, 0, 0, 0, 0, 16, 0, 0, 0]), .invalidFieldInCDB)
        try await fixture.close()
    }

    @Test func reportSupportedOperationCodes() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        let all = await fixture.send(CDB.reportOpcodes(options: 0)).data
        #expect(Int(all.loadBigEndian(UInt32.self, at: 0)) == all.count - 4)
        var offset = 4
        var entries: [(opcode: UInt8, action: UInt16, serviceActionValid: Bool, length: UInt16)] = []
        while offset < all.count {
            entries.append((all[offset], all.loadBigEndian(UInt16.self, at: offset + 2), all[offset + 5] & 0x01 != 0,
                            all.loadBigEndian(UInt16.self, at: offset + 6)))
            #expect(all[offset + 5] & 0x02 == 0)         // no timeouts descriptor unless RCTD
            offset += 8
        }
        #expect(entries.count == CommandCatalog.all.count)
        #expect(entries.allSatisfy { $0.serviceActionValid || $0.action == 0 })
        #expect(entries.contains { $0.opcode == 0x89 && $0.length == 16 })
        #expect(entries.contains { $0.opcode == 0x9E && $0.action == 0x12 && $0.serviceActionValid })

        for entry in entries {
            let one = await fixture.send(CDB.reportOpcodes(options: entry.serviceActionValid ? 2 : 1, opcode: entry.opcode,
                                                           serviceAction: entry.action))
            expectGood(one)
            #expect(one.data[1] & 0x07 == 0x03)          // supported as the standard says
            #expect(one.data.loadBigEndian(UInt16.self, at: 2) == entry.length)
            #expect(one.data[4] == entry.opcode)
            let wrongForm = await fixture.send(CDB.reportOpcodes(options: entry.serviceActionValid ? 1 : 2,
                                                                 opcode: entry.opcode, serviceAction: entry.action))
            expectSense(wrongForm, .invalidFieldInCDB)
        }
        // DPO and FUA appear in the usage data of READ(10) and WRITE(16).
        #expect(await fixture.send(CDB.reportOpcodes(options: 1, opcode: 0x28)).data[5] & 0x18 == 0x18)
        #expect(await fixture.send(CDB.reportOpcodes(options: 1, opcode: 0x8A)).data[5] & 0x18 == 0x18)
        // Unsupported: SUPPORT 001b.
        let unsupported = await fixture.send(CDB.reportOpcodes(options: 1, opcode: 0x83))
        #expect(unsupported.data == [0, 0x01, 0, 0])
        // RCTD: every descriptor has a 12-byte timeouts descriptor of length 0Ah.
        let timed = await fixture.send(CDB.reportOpcodes(options: 0, timeouts: true)).data
        #expect(timed.count == 4 + 20 * CommandCatalog.all.count)
        #expect(timed[4 + 5] & 0x02 == 0x02)
        #expect(timed.loadBigEndian(UInt16.self, at: 4 + 8) == 0x0A)
        try await fixture.close()
    }

    @Test func smallCommands() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        expectGood(await fixture.send(CDB.testUnitReady()))
        let sense = await fixture.send(CDB.requestSense())
        expectGood(sense)
        #expect(SenseData(fixedFormat: sense.data)?.code == .noSense)
        #expect(sense.data.count == 18)
        expectSense(await fixture.send([0x03, 0x01, 0, 0, 18, 0]), .invalidFieldInCDB)   // descriptor format
        expectGood(await fixture.send([0x1B, 0x01, 0, 0, 0x01, 0]))                      // START, IMMED
        expectGood(await fixture.send([0x1B, 0, 0, 0, 0x30, 0]))                         // a power condition
        expectGood(await fixture.send([0x1E, 0, 0, 0, 0x01, 0]))                         // PREVENT
        expectGood(await fixture.send([0x1E, 0, 0, 0, 0x00, 0]))                         // ALLOW
        let defects = await fixture.send([0x37, 0, 0x05, 0, 0, 0, 0, 0, 32, 0])
        expectGood(defects)
        #expect(defects.data == [0, 0x1D, 0, 0])
        #expect(await fixture.send([0xB7, 0x04, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]).data.count == 8)
        expectSense(await fixture.send([0x04, 0, 0, 0, 0, 0]), .invalidOpcode)            // FORMAT UNIT
        expectSense(await fixture.send([0x9C] + [UInt8](repeating: 0, count: 15)), .invalidOpcode)  // WRITE ATOMIC
        expectSense(await fixture.send([]), .invalidFieldInCDB)
        try await fixture.close()
    }
}

@Suite struct AbsentLogicalUnitTests {
    private func answer(_ cdb: [UInt8]) -> Response {
        Response(AbsentLogicalUnit.result(for: request(cdb), reportedLUNs: [0, 2]))
    }

    @Test func answersForAnAbsentLUN() {
        let inquiry = answer(CDB.inquiry(allocation: 96))
        expectGood(inquiry)
        #expect(inquiry.data.first == 0x7F)
        #expect(inquiry.data.count == 36)
        let luns = answer(CDB.reportLUNs())
        #expect(luns.data.loadBigEndian(UInt32.self, at: 0) == 16)
        #expect(Array(luns.data[16..<18]) == [0x00, 0x02])
        #expect(SenseData(fixedFormat: answer(CDB.requestSense()).data)?.code == .logicalUnitNotSupported)
        expectSense(answer(CDB.testUnitReady()), .logicalUnitNotSupported)
        expectSense(answer(CDB.read10(lba: 0, blocks: 1)), .logicalUnitNotSupported)
        expectSense(answer(CDB.inquiry(evpd: true, page: 0x80)), .logicalUnitNotSupported)
        expectSense(answer([0xC0] + [UInt8](repeating: 0, count: 15)), .invalidOpcode)
    }
}
