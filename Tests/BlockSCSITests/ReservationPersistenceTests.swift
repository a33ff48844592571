// The reservation sidecar: APTPL state survives reopening, APTPL=0 state does not, and a
// damaged file is an error, never silently dropped.

import BlockEngine
import Foundation
import Testing
@testable import BlockSCSI

@Suite struct ReservationPersistenceTests {
    /// Opens a volume and a logical unit that persists reservations in the directory's sidecar.
    private func open(_ directory: TemporaryDirectory, create: Bool) async throws -> Fixture {
        let path = directory.file("vol.blk")
        let volume = create
            ? try await Volume.create(at: path, configuration: VolumeConfiguration(sizeBytes: 16 << 20, walSizeBytes: 1 << 20),
                                      options: testVolumeOptions())
            : try await Volume.open(at: path, options: testVolumeOptions())
        let unit = try SCSILogicalUnit(volume: volume, configuration: Fixture.configuration(directory, persistReservations: true))
        return Fixture(directory: directory, volume: volume, unit: unit)
    }

    @Test func aptplStateSurvivesReopen() async throws {
        let directory = TemporaryDirectory()
        let first = try await open(directory, create: true)
        for nexus in [nexusA, nexusB, nexusC] { await first.clearAttentions(nexus) }
        expectGood(await first.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: 0xAA, aptpl: true))
        expectGood(await first.reserveOut(PR.register, from: nexusB, key: 0, serviceActionKey: 0xBB, aptpl: true))
        expectGood(await first.reserveOut(PR.reserve, from: nexusA, key: 0xAA, type: 5))
        #expect(FileManager.default.fileExists(atPath: directory.file("vol.pr")))
        #expect(!FileManager.default.fileExists(atPath: directory.file("vol.pr.tmp")))
        try await first.close()

        let second = try await open(directory, create: false)
        for nexus in [nexusA, nexusB, nexusC] { await second.clearAttentions(nexus) }
        #expect(await second.readKeys().keys == [0xAA, 0xBB])
        #expect(await second.readKeys().generation == 0)          // PRgeneration restarts at power on
        #expect(await second.readReservation().map { [$0.key, UInt64($0.type)] } == [0xAA, 5])
        // The reservation still works: the registrant B writes, C does not, A releases.
        #expect(await second.canWrite(nexusB))
        #expect(!(await second.canWrite(nexusC)))
        expectGood(await second.reserveOut(PR.release, from: nexusA, key: 0xAA, type: 5))
        try await second.close()

        let third = try await open(directory, create: false)
        await third.clearAttentions()
        #expect(await third.readReservation() == nil)
        #expect(await third.readKeys().keys == [0xAA, 0xBB])
        try await third.close()
    }

    @Test func withoutAptplNothingSurvives() async throws {
        let directory = TemporaryDirectory()
        let first = try await open(directory, create: true)
        await first.clearAttentions()
        expectGood(await first.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: 0xAA, aptpl: false))
        expectGood(await first.reserveOut(PR.reserve, from: nexusA, key: 0xAA, type: 1))
        try await first.close()
        let second = try await open(directory, create: false)
        await second.clearAttentions()
        #expect(await second.readKeys().keys.isEmpty)
        #expect(await second.readReservation() == nil)

        // APTPL=1 then a later REGISTER with APTPL=0: the file is emptied.
        expectGood(await second.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: 0xAA, aptpl: true))
        expectGood(await second.reserveOut(PR.register, from: nexusA, key: 0xAA, serviceActionKey: 0xAB, aptpl: false))
        try await second.close()
        let third = try await open(directory, create: false)
        await third.clearAttentions()
        #expect(await third.readKeys().keys.isEmpty)
        try await third.close()
    }

    @Test func damagedSidecarIsReportedNotDropped() async throws {
        let directory = TemporaryDirectory()
        let first = try await open(directory, create: true)
        await first.clearAttentions()
        expectGood(await first.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: 0xAA, aptpl: true))
        try await first.close()
        let sidecar = directory.file("vol.pr")
        let good = try Data(contentsOf: URL(fileURLWithPath: sidecar))

        var flipped = good
        flipped[20] ^= 0x10
        try flipped.write(to: URL(fileURLWithPath: sidecar))
        let volume = try await Volume.open(at: directory.file("vol.blk"), options: testVolumeOptions())
        #expect(throws: ReservationFileError.self) {
            _ = try SCSILogicalUnit(volume: volume, configuration: Fixture.configuration(directory, persistReservations: true))
        }
        try good.prefix(good.count - 3).write(to: URL(fileURLWithPath: sidecar))
        #expect(throws: ReservationFileError.self) {
            _ = try SCSILogicalUnit(volume: volume, configuration: Fixture.configuration(directory, persistReservations: true))
        }
        // The damaged file is left in place for the operator.
        #expect(try Data(contentsOf: URL(fileURLWithPath: sidecar)).count == good.count - 3)
        try await volume.close()
    }

    @Test func failingToPersistFailsTheCommandAndChangesNothing() async throws {
        let fixture = try await Fixture.make { $0.reservationFilePath = "/nonexistent-directory/vol.pr" }
        await fixture.clearAttentions()
        // APTPL=0 never needs the file.
        expectGood(await fixture.reserveOut(PR.register, from: nexusA, key: 0, serviceActionKey: 0xAA))
        expectSense(await fixture.reserveOut(PR.register, from: nexusA, key: 0xAA, serviceActionKey: 0xAB, aptpl: true),
                    .internalTargetFailure)
        #expect(await fixture.readKeys() == (1, [0xAA]))
        try await fixture.close()
    }

    @Test func codecRoundTripAndEveryBitFlipIsCaught() throws {
        var state = ReservationState()
        state.persistThroughPowerLoss = true
        state.registrations = [PersistentRegistration(nexus: nexusA, key: 1), PersistentRegistration(nexus: nexusB, key: 2)]
        state.reservation = PersistentReservation(type: .exclusiveAccessRegistrantsOnly, holder: nexusB)
        let bytes = ReservationSidecar.encode(state)
        #expect(try ReservationSidecar.decode(bytes, path: "t", targetNameOfVersion1: testTargetName) == state)
        for index in bytes.indices {
            for bit in 0..<8 {
                var damaged = bytes
                damaged[index] ^= 1 << bit
                #expect(throws: ReservationFileError.self) { try ReservationSidecar.decode(damaged, path: "t", targetNameOfVersion1: testTargetName) }
            }
        }
        for length in 0..<bytes.count {
            #expect(throws: ReservationFileError.self) { try ReservationSidecar.decode(Array(bytes.prefix(length)), path: "t", targetNameOfVersion1: testTargetName) }
        }
        var future = bytes
        future[8] = 3
        #expect(throws: ReservationFileError.unsupportedVersion(path: "t", version: 3)) {
            try ReservationSidecar.decode(future, path: "t", targetNameOfVersion1: testTargetName)
        }
    }

    @Test func theTargetOfEachNexusIsKeptAndVersionOneFilesGetTheUnitsTarget() throws {
        var state = ReservationState()
        state.persistThroughPowerLoss = true
        let elsewhere = nexusA.through("iqn.2024-01.test:other-target")
        state.registrations = [PersistentRegistration(nexus: nexusA, key: 1), PersistentRegistration(nexus: elsewhere, key: 2)]
        state.reservation = PersistentReservation(type: .writeExclusive, holder: elsewhere)
        let decoded = try ReservationSidecar.decode(ReservationSidecar.encode(state), path: "t", targetNameOfVersion1: "unused")
        #expect(decoded == state)

        // A version 1 file (no target names) written by hand: B registered with key 7, APTPL.
        var payload: [UInt8] = [1, 0] + le(UInt32(1)) + le(UInt64(7))
        payload += le(nexusB.initiatorSessionID) + le(nexusB.targetPortalGroupTag)
        payload += le(UInt16(nexusB.initiatorName.utf8.count)) + Array(nexusB.initiatorName.utf8)
        var file = Array("SWBLKPR1".utf8) + le(UInt32(1)) + le(UInt32(payload.count)) + payload
        file += le(CRC32C.checksum(file))
        let old = try ReservationSidecar.decode(file, path: "t", targetNameOfVersion1: testTargetName)
        #expect(old.registrations == [PersistentRegistration(nexus: nexusB, key: 7)])
        #expect(old.persistThroughPowerLoss)
    }

    private func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    @Test func crc32cCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }
}
