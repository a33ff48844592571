// Unit attentions per I_T nexus: 29/00 once per new nexus, the three exempt commands, REQUEST
// SENSE reporting and clearing, resets, capacity changes, nexus loss, and RESERVE(6).

import Testing
@testable import BlockSCSI

@Suite struct UnitAttentionTests {
    @Test func powerOnResetOncePerNewNexus() async throws {
        let fixture = try await Fixture.make()
        expectSense(await fixture.send(CDB.testUnitReady(), from: nexusA), .powerOnResetOccurred)
        expectGood(await fixture.send(CDB.testUnitReady(), from: nexusA))
        expectGood(await fixture.send(CDB.read10(lba: 0, blocks: 1), from: nexusA))
        // Another nexus (same initiator name, another ISID counts as new) gets its own.
        let sameNameOtherSession = ITNexus(initiatorName: nexusA.initiatorName, initiatorSessionID: 99,
                                           targetName: testTargetName, targetPortalGroupTag: 1)
        expectSense(await fixture.send(CDB.read10(lba: 0, blocks: 1), from: sameNameOtherSession), .powerOnResetOccurred)
        expectGood(await fixture.send(CDB.read10(lba: 0, blocks: 1), from: sameNameOtherSession))
        try await fixture.close()
    }

    @Test func inquiryReportLUNsAndRequestSenseDoNotConsumeIt() async throws {
        let fixture = try await Fixture.make()
        expectGood(await fixture.send(CDB.inquiry(), from: nexusB))
        expectGood(await fixture.send(CDB.reportLUNs(), from: nexusB))
        expectGood(await fixture.send(CDB.inquiry(evpd: true, page: 0x83), from: nexusB))
        // REQUEST SENSE returns the pending condition as data and clears it.
        let sense = await fixture.send(CDB.requestSense(), from: nexusB)
        expectGood(sense)
        #expect(SenseData(fixedFormat: sense.data)?.code == .powerOnResetOccurred)
        expectGood(await fixture.send(CDB.testUnitReady(), from: nexusB))
        try await fixture.close()
    }

    @Test func resetCapacityAndNexusLoss() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions(nexusA)
        await fixture.clearAttentions(nexusB)
        fixture.unit.logicalUnitReset(initiatedBy: nexusA)
        #expect(await fixture.clearAttentions(nexusA) == [])     // the nexus that asked knows
        #expect(await fixture.clearAttentions(nexusB) == [.busDeviceResetOccurred])

        fixture.unit.capacityChanged()
        fixture.unit.capacityChanged()  // queued once
        #expect(await fixture.clearAttentions(nexusB) == [.capacityDataChanged])

        // A reset replaces lower-precedence conditions.
        fixture.unit.capacityChanged()
        fixture.unit.logicalUnitReset(initiatedBy: nexusB)
        #expect(await fixture.clearAttentions(nexusA) == [.busDeviceResetOccurred])

        // After the session ends the same nexus is new again.
        fixture.unit.nexusLost(nexusB)
        #expect(await fixture.clearAttentions(nexusB) == [.powerOnResetOccurred])
        try await fixture.close()
    }

    @Test func reserve6ConflictsAndIsDroppedByResetAndNexusLoss() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions(nexusA)
        await fixture.clearAttentions(nexusB)
        expectGood(await fixture.send(CDB.reserve6(), from: nexusA))
        expectGood(await fixture.send(CDB.reserve6(), from: nexusA))             // again: fine
        #expect(await fixture.send(CDB.reserve6(), from: nexusB).status == .reservationConflict)
        expectGood(await fixture.send(CDB.release6(), from: nexusB))             // not the holder: no-op
        #expect(await fixture.send(CDB.modeSense6(page: 0x3F), from: nexusB).status == .reservationConflict)
        #expect(await fixture.send(CDB.testUnitReady(), from: nexusB).status == .reservationConflict)
        #expect(await fixture.send(CDB.read10(lba: 0, blocks: 1), from: nexusB).status == .reservationConflict)
        expectGood(await fixture.send(CDB.inquiry(), from: nexusB))
        expectGood(await fixture.send(CDB.reportLUNs(), from: nexusB))
        expectGood(await fixture.send(CDB.modeSense6(page: 0x3F), from: nexusA))
        expectGood(await fixture.send(CDB.release6(), from: nexusA))
        expectGood(await fixture.send(CDB.reserve6(), from: nexusB))
        expectGood(await fixture.send(CDB.release6(), from: nexusB))

        expectGood(await fixture.send(CDB.reserve6(), from: nexusA))
        fixture.unit.logicalUnitReset(initiatedBy: nexusA)
        await fixture.clearAttentions(nexusB)
        expectGood(await fixture.send(CDB.reserve6(), from: nexusB))
        fixture.unit.nexusLost(nexusB)
        await fixture.clearAttentions(nexusA)
        expectGood(await fixture.send(CDB.reserve6(), from: nexusA))
        // RESERVE(10) is the same reservation.
        #expect(await fixture.send([0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0], from: nexusC).status == .checkCondition)  // 29/00 first
        #expect(await fixture.send([0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0], from: nexusC).status == .reservationConflict)
        try await fixture.close()
    }

    @Test func tableBoundsPendingConditions() {
        var table = UnitAttentionTable()
        let tracked = table.observe(nexusA)
        #expect(tracked)
        for ascq in 0..<40 { table.establish(SenseCode(.unitAttention, asc: 0x2A, ascq: UInt8(ascq)), for: nexusA) }
        #expect(table.peek(nexusA).count == UnitAttentionTable.maxPendingPerNexus)
        #expect(table.takeNext(for: nexusA) == .powerOnResetOccurred)
        table.forget(nexusA)
        #expect(table.peek(nexusA).isEmpty)
        #expect(table.takeNext(for: nexusA) == nil)
    }
}
