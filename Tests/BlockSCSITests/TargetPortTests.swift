// An I_T nexus includes the target port (SAM-5 4.6): the same initiator port (initiator name
// and ISID) logged in to two targets that reach one logical unit is two nexuses, for
// registrations, reservations, unit attentions and PREEMPT AND ABORT alike.

import Testing
@testable import BlockSCSI

@Suite struct TargetPortTests {
    static let otherTarget = "iqn.2024-01.test:other-target"
    static let keyA: UInt64 = 0xA1
    static let keyOther: UInt64 = 0xA2
    static let keyB: UInt64 = 0xB2

    /// A fixture whose three nexuses (A, A through the other target, B) have seen their 29/00.
    private func ready() async throws -> (Fixture, ITNexus) {
        let fixture = try await Fixture.make()
        let elsewhere = nexusA.through(Self.otherTarget)
        for nexus in [nexusA, elsewhere, nexusB] { await fixture.clearAttentions(nexus) }
        return (fixture, elsewhere)
    }

    @Test func aRegistrationThroughOneTargetDoesNotRegisterTheOther() async throws {
        let (fixture, elsewhere) = try await ready()
        expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: Self.keyA))
        expectGood(await fixture.reserveOut(PR.reserve, from: nexusA, key: Self.keyA, type: 5))  // WE, registrants only
        #expect(await fixture.canWrite(nexusA))
        #expect(!(await fixture.canWrite(elsewhere)), "not registered through the other target")
        // A's key means nothing on the other nexus, and registering there adds a second key.
        let release = await fixture.reserveOut(PR.release, from: elsewhere, key: Self.keyA, type: 5)
        #expect(release.status == .reservationConflict)
        expectGood(await fixture.reserveOut(PR.register, from: elsewhere, key: 0, serviceActionKey: Self.keyOther))
        #expect(await fixture.readKeys().keys == [Self.keyA, Self.keyOther])
        #expect(await fixture.canWrite(elsewhere))
        try await fixture.close()
    }

    @Test func preemptAndAbortNamesOnlyThePreemptedNexusAndItsUnit() async throws {
        let (fixture, elsewhere) = try await ready()
        let aborted = Shared<[Set<ITNexus>]>([])
        let unitsNamed = Shared<[ObjectIdentifier]>([])
        fixture.unit.abortTasksHandler = { nexuses, unit in
            aborted.withLock { $0.append(nexuses) }
            unitsNamed.withLock { $0.append(ObjectIdentifier(unit)) }
        }
        expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: Self.keyA))
        expectGood(await fixture.reserveOut(PR.register, from: elsewhere, key: 0, serviceActionKey: Self.keyOther))
        expectGood(await fixture.reserveOut(PR.register, from: nexusB, key: 0, serviceActionKey: Self.keyB))
        expectGood(await fixture.reserveOut(PR.reserve, from: nexusA, key: Self.keyA, type: 1))
        expectGood(await fixture.reserveOut(PR.preemptAndAbort, from: nexusB, key: Self.keyB,
                                            serviceActionKey: Self.keyA, type: 1))
        #expect(aborted.value == [[nexusA]])
        #expect(unitsNamed.value == [ObjectIdentifier(fixture.unit)])
        // Only the preempted nexus hears of it; the other target's registration stays.
        #expect(await fixture.clearAttentions(nexusA) == [.registrationsPreempted])
        #expect(await fixture.clearAttentions(elsewhere) == [])
        #expect(await fixture.readKeys().keys == [Self.keyOther, Self.keyB])
        try await fixture.close()
    }

    @Test func resetsAndReserveSixTellTheNexusesApart() async throws {
        let (fixture, elsewhere) = try await ready()
        expectGood(await fixture.send(CDB.reserve6(), from: nexusA))
        #expect(await fixture.send(CDB.testUnitReady(), from: elsewhere).status == .reservationConflict)
        fixture.unit.logicalUnitReset(initiatedBy: nexusA)
        #expect(await fixture.clearAttentions(nexusA) == [])
        #expect(await fixture.clearAttentions(elsewhere) == [.busDeviceResetOccurred])
        await fixture.clearAttentions(nexusB)
        // Losing the nexus on one target forgets only it: the other keeps its RESERVE(6).
        expectGood(await fixture.send(CDB.reserve6(), from: elsewhere))
        fixture.unit.nexusLost(nexusA)
        #expect(await fixture.send(CDB.testUnitReady(), from: nexusB).status == .reservationConflict)
        try await fixture.close()
    }
}
