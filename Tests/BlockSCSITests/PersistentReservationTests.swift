// PERSISTENT RESERVE IN/OUT: every service action and reservation type, conflicts seen from
// other nexuses, PRgeneration, and the unit attentions the actions raise.

import Synchronization
import Testing
@testable import BlockSCSI

extension Fixture {
    func reserveOut(_ action: UInt8, from nexus: ITNexus, key: UInt64, serviceActionKey: UInt64 = 0,
                    type: UInt8 = 0, aptpl: Bool = false) async -> Response {
        await send(CDB.persistentReserveOut(action, type: type), from: nexus,
                   data: CDB.reserveOutList(key: key, serviceActionKey: serviceActionKey, aptpl: aptpl))
    }

    /// (PRgeneration, keys) from READ KEYS.
    func readKeys(from nexus: ITNexus = nexusA) async -> (generation: UInt32, keys: [UInt64]) {
        let response = await send(CDB.persistentReserveIn(PR.readKeys), from: nexus)
        expectGood(response)
        let data = response.data
        guard data.count >= 8 else { return (UInt32.max, []) }
        let length = Int(data.loadBigEndian(UInt32.self, at: 4))
        let keys = stride(from: 8, to: 8 + length, by: 8).map { data.loadBigEndian(UInt64.self, at: $0) }
        return (data.loadBigEndian(UInt32.self, at: 0), keys)
    }

    /// (key, type) from READ RESERVATION, nil when not reserved.
    func readReservation(from nexus: ITNexus = nexusA) async -> (key: UInt64, type: UInt8)? {
        let response = await send(CDB.persistentReserveIn(PR.readReservation), from: nexus)
        expectGood(response)
        let data = response.data
        guard data.count >= 8 else { return (UInt64.max, 0xFF) }
        guard data.loadBigEndian(UInt32.self, at: 4) == 16 else { return nil }
        #expect(data.count == 24)
        return (data.loadBigEndian(UInt64.self, at: 8), data[21])
    }

    func canRead(_ nexus: ITNexus) async -> Bool {
        await send(CDB.read10(lba: 1, blocks: 1), from: nexus).status == .good
    }

    func canWrite(_ nexus: ITNexus) async -> Bool {
        await send(CDB.write10(lba: 1, blocks: 1), from: nexus, data: pattern(tag: 20, blocks: 1)).status == .good
    }
}

@Suite struct PersistentReservationTests {
    static let keyA: UInt64 = 0xA1A1_0000_0000_0001
    static let keyB: UInt64 = 0xB2B2_0000_0000_0002
    static let keyC: UInt64 = 0xC3C3_0000_0000_0003

    private func ready() async throws -> Fixture {
        let fixture = try await Fixture.make()
        for nexus in [nexusA, nexusB, nexusC] { await fixture.clearAttentions(nexus) }
        return fixture
    }

    @Test func registerChangeAndUnregister() async throws {
        let fixture = try await ready()
        let (a, b) = (Self.keyA, Self.keyB)
        expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: a))
        #expect(await fixture.readKeys() == (1, [a]))
        #expect(await fixture.reserveOut(PR.register, from: nexusA, key: a + 1, serviceActionKey: b).status
                == .reservationConflict)                      // wrong current key
        #expect(await fixture.reserveOut(PR.register, from: nexusB, key: a, serviceActionKey: b).status
                == .reservationConflict)                      // unregistered nexus quoting a key
        expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: a, serviceActionKey: b))
        #expect(await fixture.readKeys() == (2, [b]))
        expectGood(await fixture.reserveOut(PR.registerAndIgnore, from: nexusA, key: 12345, serviceActionKey: a))
        #expect(await fixture.readKeys() == (3, [a]))
        expectGood(await fixture.reserveOut(PR.registerAndIgnore, from: nexusB, key: 0, serviceActionKey: b))
        #expect(await fixture.readKeys(from: nexusB) == (4, [a, b]))
        expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: a, serviceActionKey: 0))
        #expect(await fixture.readKeys() == (5, [b]))
        // Registering key 0 while unregistered changes nothing, not even the generation.
        expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: 0))
        #expect(await fixture.readKeys() == (5, [b]))
        // READ KEYS cut at 8 bytes keeps the full ADDITIONAL LENGTH.
        let cut = await fixture.send(CDB.persistentReserveIn(PR.readKeys, allocation: 8)).data
        #expect(cut.count == 8 && cut.loadBigEndian(UInt32.self, at: 4) == 8)
        try await fixture.close()
    }

    /// Access by a registered and an unregistered second nexus, per type (SPC-4 table 67).
    @Test(arguments: [
        (UInt8(1), [true, false, true, false]),   // Write Exclusive
        (UInt8(3), [false, false, false, false]), // Exclusive Access
        (UInt8(5), [true, true, true, false]),    // Write Exclusive, Registrants Only
        (UInt8(6), [true, true, false, false]),   // Exclusive Access, Registrants Only
        (UInt8(7), [true, true, true, false]),    // Write Exclusive, All Registrants
        (UInt8(8), [true, true, false, false]),   // Exclusive Access, All Registrants
    ])
    func accessPerReservationType(type: UInt8, expected: [Bool]) async throws {
        let fixture = try await ready()
        let (a, b) = (Self.keyA, Self.keyB)
        expectGood(await fixture.reserveOut(PR.registerAndIgnore, from: nexusA, key: 0, serviceActionKey: a))
        expectGood(await fixture.reserveOut(PR.registerAndIgnore, from: nexusB, key: 0, serviceActionKey: b))
        let generation = await fixture.readKeys().generation
        expectGood(await fixture.reserveOut(PR.reserve, from: nexusA, key: a, type: type))
        #expect(await fixture.readKeys().generation == generation)  // RESERVE does not count
        let reservation = await fixture.readReservation(from: nexusB)
        #expect(reservation?.type == type)
        #expect(reservation?.key == (type >= 7 ? 0 : a))
        #expect(await fixture.canRead(nexusA))
        #expect(await fixture.canWrite(nexusA))
        #expect(await fixture.canRead(nexusB) == expected[0])
        #expect(await fixture.canWrite(nexusB) == expected[1])
        expectGood(await fixture.reserveOut(PR.register, from: nexusB, key: b, serviceActionKey: 0))
        #expect(await fixture.canRead(nexusB) == expected[2])
        #expect(await fixture.canWrite(nexusB) == expected[3])
        #expect(await fixture.canRead(nexusC) == expected[2])
        #expect(await fixture.canWrite(nexusC) == expected[3])
        // Commands that never conflict.
        for cdb in [CDB.inquiry(), CDB.testUnitReady(), CDB.readCapacity16(), CDB.reportLUNs(),
                    CDB.persistentReserveIn(PR.readKeys)] {
            expectGood(await fixture.send(cdb, from: nexusC))
        }
        #expect(await fixture.send(CDB.synchronizeCache10(), from: nexusC).status == .reservationConflict)
        expectGood(await fixture.reserveOut(PR.release, from: nexusA, key: a, type: type))
        #expect(await fixture.readReservation() == nil)
        #expect(await fixture.canWrite(nexusC))
        try await fixture.close()
    }

    @Test func reserveConflictsAndValidation() async throws {
        let fixture = try await ready()
        let (a, b) = (Self.keyA, Self.keyB)
        #expect(await fixture.reserveOut(PR.reserve, from: nexusA, key: a, type: 1).status == .reservationConflict)
        expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: a))
        expectGood(await fixture.reserveOut(PR.register, from: nexusB, key: 0, serviceActionKey: b))
        expectSense(await fixture.reserveOut(PR.reserve, from: nexusA, key: a, type: 2), .invalidFieldInCDB)
        expectSense(await fixture.send(CDB.persistentReserveOut(PR.reserve, type: 1, scope: 1), from: nexusA,
                                       data: CDB.reserveOutList(key: a)), .invalidFieldInCDB)
        expectGood(await fixture.reserveOut(PR.reserve, from: nexusA, key: a, type: 3))
        expectGood(await fixture.reserveOut(PR.reserve, from: nexusA, key: a, type: 3))     // same again
        #expect(await fixture.reserveOut(PR.reserve, from: nexusA, key: a, type: 1).status == .reservationConflict)
        #expect(await fixture.reserveOut(PR.reserve, from: nexusB, key: b, type: 3).status == .reservationConflict)
        #expect(await fixture.reserveOut(PR.reserve, from: nexusB, key: a, type: 3).status == .reservationConflict)
        // RESERVE(6) cannot coexist with a persistent reservation.
        #expect(await fixture.send(CDB.reserve6(), from: nexusA).status == .reservationConflict)
        // Parameter list checks.
        expectSense(await fixture.send(CDB.persistentReserveOut(PR.register, length: 20), from: nexusA,
                                       data: [UInt8](repeating: 0, count: 20)), .parameterListLengthError)
        var specifyPorts = CDB.reserveOutList(key: a, serviceActionKey: b)
        specifyPorts[20] = 0x08
        expectSense(await fixture.send(CDB.persistentReserveOut(PR.register), from: nexusA, data: specifyPorts),
                    .invalidFieldInParameterList)
        var allPorts = CDB.reserveOutList(key: a, serviceActionKey: b)
        allPorts[20] = 0x04
        expectSense(await fixture.send(CDB.persistentReserveOut(PR.register), from: nexusA, data: allPorts),
                    .invalidFieldInParameterList)
        try await fixture.close()
    }

    @Test func releaseRules() async throws {
        let fixture = try await ready()
        let (a, b) = (Self.keyA, Self.keyB)
        expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: a))
        expectGood(await fixture.reserveOut(PR.register, from: nexusB, key: 0, serviceActionKey: b))
        expectGood(await fixture.reserveOut(PR.release, from: nexusA, key: a, type: 5))      // nothing reserved
        expectGood(await fixture.reserveOut(PR.reserve, from: nexusA, key: a, type: 5))
        expectGood(await fixture.reserveOut(PR.release, from: nexusB, key: b, type: 5))      // not the holder: no-op
        #expect(await fixture.readReservation()?.type == 5)
        #expect(await fixture.reserveOut(PR.release, from: nexusB, key: a, type: 5).status == .reservationConflict)
        expectSense(await fixture.reserveOut(PR.release, from: nexusA, key: a, type: 6),
                    .invalidReleaseOfPersistentReservation)
        expectGood(await fixture.reserveOut(PR.release, from: nexusA, key: a, type: 5))
        #expect(await fixture.readReservation() == nil)
        // Releasing a registrants-only reservation tells the other registrants.
        #expect(await fixture.clearAttentions(nexusB) == [.reservationsReleased])
        #expect(await fixture.clearAttentions(nexusA) == [])
        #expect(await fixture.clearAttentions(nexusC) == [])
        try await fixture.close()
    }

    @Test func holderUnregisteringEndsTheReservationUnlessAllRegistrants() async throws {
        let fixture = try await ready()
        let (a, b) = (Self.keyA, Self.keyB)
        for type: UInt8 in [1, 3, 5, 6, 7, 8] {
            expectGood(await fixture.reserveOut(PR.registerAndIgnore, from: nexusA, key: 0, serviceActionKey: a))
            expectGood(await fixture.reserveOut(PR.registerAndIgnore, from: nexusB, key: 0, serviceActionKey: b))
            expectGood(await fixture.reserveOut(PR.reserve, from: nexusA, key: a, type: type))
            expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: a, serviceActionKey: 0))
            if type >= 7 {
                #expect(await fixture.readReservation()?.type == type, "type \(type)")
                expectGood(await fixture.reserveOut(PR.release, from: nexusB, key: b, type: type))
            } else {
                #expect(await fixture.readReservation() == nil, "type \(type)")
            }
            // Registrants-only types tell the remaining registrants their reservation is gone;
            // all-registrants types keep it, and its release has no one left to tell.
            let attentions = await fixture.clearAttentions(nexusB)
            #expect(attentions == (type == 5 || type == 6 ? [.reservationsReleased] : []), "type \(type)")
            expectGood(await fixture.reserveOut(PR.register, from: nexusB, key: b, serviceActionKey: 0))
            #expect(await fixture.readKeys().keys.isEmpty)
        }
        try await fixture.close()
    }

    @Test func clearRemovesEverythingAndTellsTheOthers() async throws {
        let fixture = try await ready()
        let (a, b) = (Self.keyA, Self.keyB)
        expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: a))
        expectGood(await fixture.reserveOut(PR.register, from: nexusB, key: 0, serviceActionKey: b))
        expectGood(await fixture.reserveOut(PR.reserve, from: nexusA, key: a, type: 3))
        let before = await fixture.readKeys().generation
        #expect(await fixture.reserveOut(PR.clear, from: nexusC, key: 0).status == .reservationConflict)
        expectGood(await fixture.reserveOut(PR.clear, from: nexusB, key: b))
        #expect(await fixture.readKeys(from: nexusB) == (before + 1, []))
        #expect(await fixture.readReservation(from: nexusB) == nil)
        #expect(await fixture.clearAttentions(nexusA) == [.reservationsPreempted])
        #expect(await fixture.clearAttentions(nexusB) == [])
        try await fixture.close()
    }

    @Test func preemptRegistrationsAndReservations() async throws {
        let fixture = try await ready()
        let (a, b, c) = (Self.keyA, Self.keyB, Self.keyC)
        // No reservation: PREEMPT removes the registrations holding the key (libiscsi's case).
        expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: a))
        expectGood(await fixture.reserveOut(PR.register, from: nexusB, key: 0, serviceActionKey: b))
        let generation = await fixture.readKeys().generation
        expectGood(await fixture.reserveOut(PR.preempt, from: nexusB, key: b, serviceActionKey: a, type: 3))
        #expect(await fixture.readKeys(from: nexusB) == (generation + 1, [b]))
        #expect(await fixture.readReservation(from: nexusB) == nil)
        #expect(await fixture.clearAttentions(nexusA) == [.registrationsPreempted])
        #expect(await fixture.reserveOut(PR.preempt, from: nexusB, key: b, serviceActionKey: 0xDEAD, type: 3).status
                == .reservationConflict)
        expectSense(await fixture.reserveOut(PR.preempt, from: nexusB, key: b, serviceActionKey: 0, type: 3),
                    .invalidFieldInParameterList)

        // Preempting the holder takes over its reservation, with the new type.
        expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: a))
        expectGood(await fixture.reserveOut(PR.reserve, from: nexusA, key: a, type: 3))
        expectGood(await fixture.reserveOut(PR.preempt, from: nexusB, key: b, serviceActionKey: a, type: 1))
        #expect(await fixture.readReservation(from: nexusB).map { [$0.key, UInt64($0.type)] } == [b, 1])
        #expect(await fixture.readKeys(from: nexusB).keys == [b])
        #expect(await fixture.clearAttentions(nexusA) == [.registrationsPreempted])
        let preemptedCanRead = await fixture.canRead(nexusA)
        let preemptedCanWrite = await fixture.canWrite(nexusA)
        #expect(preemptedCanRead && !preemptedCanWrite)       // Write Exclusive now

        // All registrants: key 0 preempts everyone else.
        expectGood(await fixture.reserveOut(PR.release, from: nexusB, key: b, type: 1))
        expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: a))
        expectGood(await fixture.reserveOut(PR.register, from: nexusC, key: 0, serviceActionKey: c))
        expectGood(await fixture.reserveOut(PR.reserve, from: nexusA, key: a, type: 8))
        expectGood(await fixture.reserveOut(PR.preempt, from: nexusC, key: c, serviceActionKey: 0, type: 3))
        #expect(await fixture.readKeys(from: nexusC).keys == [c])
        #expect(await fixture.readReservation(from: nexusC).map { [$0.key, UInt64($0.type)] } == [c, 3])
        #expect(await fixture.clearAttentions(nexusA) == [.registrationsPreempted])
        #expect(await fixture.clearAttentions(nexusB) == [.registrationsPreempted])
        try await fixture.close()
    }

    @Test func preemptAndAbortAsksTheTransportToAbort() async throws {
        let fixture = try await ready()
        let aborted = Shared<[Set<ITNexus>]>([])
        fixture.unit.abortTasksHandler = { nexuses, _ in
            aborted.withLock { $0.append(nexuses) }
        }
        let (a, b) = (Self.keyA, Self.keyB)
        expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: a))
        expectGood(await fixture.reserveOut(PR.register, from: nexusB, key: 0, serviceActionKey: b))
        expectGood(await fixture.reserveOut(PR.reserve, from: nexusA, key: a, type: 1))
        expectGood(await fixture.reserveOut(PR.preemptAndAbort, from: nexusB, key: b, serviceActionKey: a, type: 3))
        #expect(aborted.value == [[nexusA]])
        #expect(await fixture.readReservation(from: nexusB).map { [$0.key, UInt64($0.type)] } == [b, 3])
        #expect(await fixture.clearAttentions(nexusA) == [.registrationsPreempted])
        try await fixture.close()
    }

    @Test func reportCapabilitiesAndFullStatus() async throws {
        let fixture = try await ready()
        let capabilities = await fixture.send(CDB.persistentReserveIn(PR.reportCapabilities)).data
        #expect(capabilities.count == 8)
        #expect(capabilities.loadBigEndian(UInt16.self, at: 0) == 8)
        #expect(capabilities[2] & 0x01 == 0x01)                    // PTPL_C
        #expect(capabilities[2] & 0x0C == 0)                       // no SIP_C, ATP_C
        #expect(capabilities[3] & 0x80 == 0x80)                    // TMV
        #expect(capabilities.loadBigEndian(UInt16.self, at: 4) == 0xEA01)  // all six types

        expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: Self.keyA, aptpl: false))
        expectGood(await fixture.reserveOut(PR.reserve, from: nexusA, key: Self.keyA, type: 1))
        let status = await fixture.send(CDB.persistentReserveIn(PR.readFullStatus)).data
        #expect(Int(status.loadBigEndian(UInt32.self, at: 4)) == status.count - 8)
        #expect(status.loadBigEndian(UInt64.self, at: 8) == Self.keyA)
        #expect(status[20] & 0x01 == 0x01)                         // R_HOLDER
        #expect(status[21] == 0x01)                                // scope 0, type 1
        let idLength = Int(status.loadBigEndian(UInt32.self, at: 28))
        let transportID = Array(status[32..<(32 + idLength)])
        #expect(transportID[0] == 0x45)                            // format 01b, iSCSI
        #expect(idLength % 4 == 0)
        #expect(String(decoding: transportID[4...].prefix { $0 != 0 }, as: UTF8.self) == nexusA.initiatorPortName)
        for action: UInt8 in 4..<0x20 {
            expectSense(await fixture.send(CDB.persistentReserveIn(action)), .invalidFieldInCDB)
        }
        try await fixture.close()
    }
}
