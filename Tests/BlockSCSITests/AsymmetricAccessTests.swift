// ALUA following the volume's role: TPGS in INQUIRY, the port designators of VPD 83h and the
// identity copies of a volume share, REPORT TARGET PORT GROUPS in each role and both formats,
// the commands each state runs or refuses, and ASYMMETRIC ACCESS STATE CHANGED (2A/06) once
// per nexus after a change. Roles are changed on real volumes (`assignRole`, `fence`).

import BlockEngine
import Foundation
import Testing
@testable import BlockSCSI

@Suite struct AsymmetricAccessTests {
    /// One designation descriptor of VPD page 83h.
    struct Designator: Equatable {
        var association: UInt8
        var type: UInt8
        var value: [UInt8]
    }

    static func designators(_ page: [UInt8]) -> [Designator] {
        var found: [Designator] = []
        var offset = 4
        while offset + 4 <= page.count {
            let length = Int(page[offset + 3])
            found.append(Designator(association: (page[offset + 1] >> 4) & 0x03, type: page[offset + 1] & 0x0F,
                                    value: Array(page[(offset + 4)..<(offset + 4 + length)])))
            offset += 4 + length
        }
        return found
    }

    /// The ASYMMETRIC ACCESS STATE REPORT TARGET PORT GROUPS gives now.
    static func reportedState(_ fixture: Fixture, from nexus: ITNexus = nexusA) async -> UInt8? {
        let response = await fixture.send(CDB.reportTargetPortGroups(), from: nexus)
        guard response.status == .good, response.data.count > 4 else { return nil }
        return response.data[4] & 0x0F
    }

    @Test func standardInquiryReportsImplicitALUA() async throws {
        let fixture = try await Fixture.make()
        #expect(await fixture.send(CDB.inquiry()).data[5] & 0x30 == 0x10)   // TPGS 01b
        try await fixture.volume.assignRole(.replica, epoch: 1)
        #expect(await fixture.send(CDB.inquiry()).data[5] & 0x30 == 0x10)
        try await fixture.close()
    }

    @Test func deviceIdentificationNamesThePortAndItsGroup() async throws {
        let fixture = try await Fixture.make { $0.targetPortGroup = 0x1234; $0.relativeTargetPort = 0x0203 }
        let page = await fixture.send(CDB.inquiry(evpd: true, page: 0x83)).data
        let found = Self.designators(page)
        // Association 01b (target port), iSCSI protocol identifier 5 with PIV set.
        let port = try #require(found.first { $0.type == 0x4 })
        let group = try #require(found.first { $0.type == 0x5 })
        #expect(port.association == 1 && port.value == [0, 0, 0x02, 0x03])
        #expect(group.association == 1 && group.value == [0, 0, 0x12, 0x34])
        #expect(found.filter { $0.association == 0 }.map(\.type) == [0x3, 0x1])   // NAA, T10 vendor id
        try await fixture.close()
    }

    @Test func copiesOfAVolumeAreOneLogicalUnitInTwoPortGroups() async throws {
        let first = try await Fixture.make()
        let path = first.volume.path
        try await first.volume.close()
        let copyPath = first.directory.file("copy.blk")
        try FileManager.default.copyItem(atPath: path, toPath: copyPath)

        var here = Fixture.configuration(first.directory)
        here.targetPortGroup = 1
        here.relativeTargetPort = 1
        var there = Fixture.configuration(first.directory)
        there.targetPortGroup = 2
        there.relativeTargetPort = 2
        there.targetName = "iqn.2024-01.test:another-server"
        let volumeHere = try await Volume.open(at: path, options: testVolumeOptions())
        let volumeThere = try await Volume.open(at: copyPath, options: testVolumeOptions())
        #expect(volumeHere.uuid == volumeThere.uuid)
        let a = Fixture(directory: first.directory, volume: volumeHere,
                        unit: try SCSILogicalUnit(volume: volumeHere, configuration: here))
        let b = Fixture(directory: first.directory, volume: volumeThere,
                        unit: try SCSILogicalUnit(volume: volumeThere, configuration: there))
        try await volumeHere.assignRole(.primary, epoch: 1)
        try await volumeThere.assignRole(.replica, epoch: 1)

        let idA = Self.designators(await a.send(CDB.inquiry(evpd: true, page: 0x83)).data)
        let idB = Self.designators(await b.send(CDB.inquiry(evpd: true, page: 0x83)).data)
        #expect(idA.filter { $0.association == 0 } == idB.filter { $0.association == 0 })
        let serialA = await a.send(CDB.inquiry(evpd: true, page: 0x80)).data
        let serialB = await b.send(CDB.inquiry(evpd: true, page: 0x80)).data
        #expect(serialA == serialB)
        #expect(idA.first { $0.type == 0x5 }?.value == [0, 0, 0, 1])
        #expect(idB.first { $0.type == 0x5 }?.value == [0, 0, 0, 2])

        // Each server reports its own group only, in its own state.
        await a.clearAttentions()
        await b.clearAttentions()
        let reportA = await a.send(CDB.reportTargetPortGroups()).data
        let reportB = await b.send(CDB.reportTargetPortGroups()).data
        try #require(reportA.count == 16 && reportB.count == 16)
        #expect(reportA[4] & 0x0F == 0x0 && reportA.loadBigEndian(UInt16.self, at: 6) == 1)
        #expect(reportB[4] & 0x0F == 0x2 && reportB.loadBigEndian(UInt16.self, at: 6) == 2)
        try await a.close()
        try await b.close()
    }

    @Test func reportTargetPortGroupsFollowsTheRole() async throws {
        let fixture = try await Fixture.make { $0.targetPortGroup = 5; $0.relativeTargetPort = 2 }
        let volume = fixture.volume

        /// Both formats describe one group with one port in `state`.
        func expectReport(_ state: AsymmetricAccessState, sourceLocation: SourceLocation = #_sourceLocation) async {
            await fixture.clearAttentions()
            let plain = await fixture.send(CDB.reportTargetPortGroups()).data
            let extended = await fixture.send(CDB.reportTargetPortGroups(extended: true)).data
            #expect(plain.count == 16 && extended.count == 20, sourceLocation: sourceLocation)
            guard plain.count == 16, extended.count == 20 else { return }
            #expect(Int(plain.loadBigEndian(UInt32.self, at: 0)) == 12, sourceLocation: sourceLocation)
            #expect(Int(extended.loadBigEndian(UInt32.self, at: 0)) == 16, sourceLocation: sourceLocation)
            #expect(Array(extended[4..<8]) == [0x10, 0, 0, 0], sourceLocation: sourceLocation)  // format 1, no transition time
            #expect(Array(extended[8...]) == Array(plain[4...]), sourceLocation: sourceLocation)
            let group = Array(plain[4...])
            #expect(group[0] == state.rawValue, "PREF clear, state \(state)", sourceLocation: sourceLocation)
            #expect(group[1] == 0x8D, "T_SUP, U_SUP, S_SUP, AO_SUP", sourceLocation: sourceLocation)
            #expect(group.loadBigEndian(UInt16.self, at: 2) == 5, sourceLocation: sourceLocation)
            #expect(group[5] == 0 && group[7] == 1, "status code none, one port", sourceLocation: sourceLocation)
            #expect(group.loadBigEndian(UInt16.self, at: 10) == 2, sourceLocation: sourceLocation)
        }

        await expectReport(.activeOptimized)                             // standalone
        try await volume.assignRole(.primary, epoch: 1)
        await expectReport(.activeOptimized)
        try await volume.assignRole(.replica, epoch: 2)
        await expectReport(.standby)
        try await volume.assignRole(.none, epoch: 2)
        await expectReport(.standby)
        try await volume.fence()
        await expectReport(.unavailable)
        try await volume.assignRole(.primary, epoch: 3, leaseMs: 1)
        try await Task.sleep(for: .milliseconds(20))
        await expectReport(.transitioning)                               // the lease ran out
        try await volume.assignRole(.primary, epoch: 3, leaseMs: 60_000)
        await expectReport(.activeOptimized)
        try await volume.assignRole(.standalone, epoch: 4)
        await expectReport(.activeOptimized)
        try await fixture.close()
    }

    @Test func aRestartedPrimaryIsTransitioningUntilAssignedAgain() async throws {
        let fixture = try await Fixture.make()
        try await fixture.volume.assignRole(.primary, epoch: 7)
        let path = fixture.volume.path
        try await fixture.close()
        let reopened = try await Volume.open(at: path, options: testVolumeOptions())
        let unit = try SCSILogicalUnit(volume: reopened, configuration: Fixture.configuration(fixture.directory))
        let again = Fixture(directory: fixture.directory, volume: reopened, unit: unit)
        // The state at start is no change: the first command reports only 29/00.
        #expect(await again.clearAttentions() == [.powerOnResetOccurred])
        #expect(await Self.reportedState(again) == 0xF)
        expectSense(await again.send(CDB.read10(lba: 0, blocks: 1)), .asymmetricAccessTransitioning)
        try await reopened.assignRole(.primary, epoch: 7)
        #expect(await again.clearAttentions() == [.asymmetricAccessStateChanged])
        expectGood(await again.send(CDB.read10(lba: 0, blocks: 1)))
        try await again.close()
    }

    /// One command of the table in docs/ISCSI.md with the states that run it.
    struct Probe {
        let name: String
        let cdb: [UInt8]
        var data: [UInt8]? = nil
        let runsIn: Set<AsymmetricAccessState>
    }

    static let everyState = Set(AsymmetricAccessState.allCases)
    static let activeOrStandby: Set<AsymmetricAccessState> = [.activeOptimized, .standby]
    static let activeOnly: Set<AsymmetricAccessState> = [.activeOptimized]

    static let probes: [Probe] = {
        let block = pattern(tag: 3, blocks: 1)
        let zeros = [UInt8](repeating: 0, count: Fixture.blockSizeBytes)
        let unmapList = CDB.unmapList([(lba: 40, blocks: 1)])
        let cachingPage = CDB.cachingPageList6(writeCache: true)
        return [
            Probe(name: "INQUIRY", cdb: CDB.inquiry(), runsIn: everyState),
            Probe(name: "INQUIRY VPD 83h", cdb: CDB.inquiry(evpd: true, page: 0x83), runsIn: everyState),
            Probe(name: "REPORT LUNS", cdb: CDB.reportLUNs(), runsIn: everyState),
            Probe(name: "REPORT TARGET PORT GROUPS", cdb: CDB.reportTargetPortGroups(), runsIn: everyState),
            Probe(name: "REQUEST SENSE", cdb: CDB.requestSense(), runsIn: everyState),
            Probe(name: "REPORT SUPPORTED OPERATION CODES", cdb: CDB.reportOpcodes(options: 0), runsIn: everyState),
            Probe(name: "READ CAPACITY(10)", cdb: CDB.readCapacity10(), runsIn: everyState),
            Probe(name: "READ CAPACITY(16)", cdb: CDB.readCapacity16(), runsIn: everyState),
            Probe(name: "MODE SENSE(6)", cdb: CDB.modeSense6(page: 0x08), runsIn: everyState),
            Probe(name: "MODE SENSE(10)", cdb: CDB.modeSense10(page: 0x3F), runsIn: everyState),
            Probe(name: "PERSISTENT RESERVE IN", cdb: CDB.persistentReserveIn(PR.readKeys), runsIn: everyState),
            Probe(name: "MODE SELECT(6)", cdb: CDB.modeSelect6(length: UInt8(cachingPage.count)), data: cachingPage,
                  runsIn: activeOrStandby),
            Probe(name: "PERSISTENT RESERVE OUT", cdb: CDB.persistentReserveOut(PR.registerAndIgnore),
                  data: CDB.reserveOutList(key: 0, serviceActionKey: 0xAB), runsIn: activeOrStandby),
            Probe(name: "TEST UNIT READY", cdb: CDB.testUnitReady(), runsIn: activeOnly),
            Probe(name: "READ(6)", cdb: CDB.read6(lba: 0, blocks: 1), runsIn: activeOnly),
            Probe(name: "READ(10)", cdb: CDB.read10(lba: 0, blocks: 1), runsIn: activeOnly),
            Probe(name: "READ(16)", cdb: CDB.read16(lba: 0, blocks: 1), runsIn: activeOnly),
            Probe(name: "WRITE(10)", cdb: CDB.write10(lba: 30, blocks: 1), data: block, runsIn: activeOnly),
            Probe(name: "WRITE(16) FUA", cdb: CDB.write16(lba: 31, blocks: 1, flags: 0x08), data: block, runsIn: activeOnly),
            Probe(name: "WRITE AND VERIFY(10)", cdb: CDB.ten(0x2E, lba: 32, blocks: 1, flags: 0x02), data: block,
                  runsIn: activeOnly),
            Probe(name: "VERIFY(10)", cdb: CDB.ten(0x2F, lba: 0, blocks: 1), runsIn: activeOnly),
            Probe(name: "COMPARE AND WRITE", cdb: CDB.compareAndWrite(lba: 50, blocks: 1), data: zeros + zeros,
                  runsIn: activeOnly),
            Probe(name: "ORWRITE(16)", cdb: CDB.sixteen(0x8B, lba: 51, blocks: 1), data: zeros, runsIn: activeOnly),
            Probe(name: "WRITE SAME(16) UNMAP NDOB", cdb: CDB.writeSame16(lba: 41, blocks: 2, unmap: true, ndob: true),
                  runsIn: activeOnly),
            Probe(name: "UNMAP", cdb: CDB.unmap(parameterListLength: unmapList.count), data: unmapList, runsIn: activeOnly),
            Probe(name: "SYNCHRONIZE CACHE(10)", cdb: CDB.synchronizeCache10(), runsIn: activeOnly),
            Probe(name: "PRE-FETCH(10)", cdb: CDB.ten(0x34, lba: 0, blocks: 1), runsIn: activeOnly),
            Probe(name: "GET LBA STATUS", cdb: CDB.getLBAStatus(lba: 0), runsIn: activeOnly),
            Probe(name: "START STOP UNIT", cdb: [0x1B, 0, 0, 0, 0x01, 0], runsIn: activeOnly),
            Probe(name: "PREVENT ALLOW MEDIUM REMOVAL", cdb: [0x1E, 0, 0, 0, 0x00, 0], runsIn: activeOnly),
            Probe(name: "READ DEFECT DATA(10)", cdb: [0x37, 0, 0x05, 0, 0, 0, 0, 0, 32, 0], runsIn: activeOnly),
            Probe(name: "RESERVE(6)", cdb: CDB.reserve6(), runsIn: activeOnly),
            Probe(name: "RELEASE(6)", cdb: CDB.release6(), runsIn: activeOnly),
        ]
    }()

    @Test func eachStateRunsItsCommandsAndRefusesTheRest() async throws {
        let fixture = try await Fixture.make()
        let volume = fixture.volume

        func probeAll(_ state: AsymmetricAccessState) async {
            #expect(fixture.unit.accessState == state)
            await fixture.clearAttentions()
            for probe in Self.probes {
                let response = await fixture.send(probe.cdb, data: probe.data)
                if probe.runsIn.contains(state) {
                    #expect(response.status == .good, "\(probe.name) in \(state): \(String(describing: response.sense))")
                } else {
                    #expect(response.status == .checkCondition && response.sense?.code == state.refusalSense,
                            "\(probe.name) in \(state): \(String(describing: response.sense))")
                }
            }
            // REQUEST SENSE reports what TEST UNIT READY does.
            let sense = await fixture.send(CDB.requestSense()).data
            #expect(SenseData(fixedFormat: sense)?.code == state.refusalSense ?? .noSense, "REQUEST SENSE in \(state)")
            // The refusal is the one the engine's gate gives for this role.
            #expect(volume.writeRefusal.map { SenseCode.mapping($0, direction: .write) } == state.refusalSense)
        }

        await probeAll(.activeOptimized)
        try await volume.assignRole(.replica, epoch: 1)
        await probeAll(.standby)
        try await volume.fence()
        await probeAll(.unavailable)
        try await volume.assignRole(.primary, epoch: 2, leaseMs: 1)
        try await Task.sleep(for: .milliseconds(20))
        await probeAll(.transitioning)
        try await volume.assignRole(.primary, epoch: 3)
        await probeAll(.activeOptimized)
        try await fixture.close()
    }

    @Test func everyCommandHasADecisionInEveryState() {
        for probe in Self.probes {
            // Active/optimized runs everything; standby runs what unavailable and transitioning
            // run, and more (SPC-4 asks more of it).
            #expect(probe.runsIn.contains(.activeOptimized))
            #expect(probe.runsIn.contains(.unavailable) == probe.runsIn.contains(.transitioning))
            #expect(!probe.runsIn.contains(.unavailable) || probe.runsIn.contains(.standby))
            guard case let .success(command) = CDBDecoder.decode(bytes: probe.cdb) else {
                Issue.record("\(probe.name) does not decode")
                continue
            }
            for state in AsymmetricAccessState.allCases {
                #expect(state.admits(command) == probe.runsIn.contains(state), "\(probe.name) in \(state)")
            }
        }
        #expect(AsymmetricAccessState(writeRefusal: nil) == .activeOptimized)
        #expect(AsymmetricAccessState(writeRefusal: .notPrimary("r")) == .standby)
        #expect(AsymmetricAccessState(writeRefusal: .fenced("f")) == .unavailable)
        #expect(AsymmetricAccessState(writeRefusal: .leaseExpired("l")) == .transitioning)
    }

    @Test func aChangeRaisesOneUnitAttentionPerNexus() async throws {
        let fixture = try await Fixture.make()
        for nexus in [nexusA, nexusB, nexusC] { await fixture.clearAttentions(nexus) }

        try await fixture.volume.assignRole(.replica, epoch: 1)
        // INQUIRY neither reports nor consumes it; the next other command does, once.
        expectGood(await fixture.send(CDB.inquiry(), from: nexusA))
        expectSense(await fixture.send(CDB.testUnitReady(), from: nexusA), .asymmetricAccessStateChanged)
        expectSense(await fixture.send(CDB.testUnitReady(), from: nexusA), .asymmetricAccessStandby)

        // Concurrent commands of one nexus: exactly one of them reports it.
        let responses = await withTaskGroup(of: Response.self) { group in
            for _ in 0..<16 { group.addTask { await fixture.send(CDB.reportTargetPortGroups(), from: nexusB) } }
            var all: [Response] = []
            for await response in group { all.append(response) }
            return all
        }
        #expect(responses.filter { $0.sense?.code == .asymmetricAccessStateChanged }.count == 1)
        #expect(responses.filter { $0.status == .good }.count == 15)

        // REQUEST SENSE returns it as data and clears it.
        let sense = await fixture.send(CDB.requestSense(), from: nexusC).data
        #expect(SenseData(fixedFormat: sense)?.code == .asymmetricAccessStateChanged)
        #expect(SenseData(fixedFormat: await fixture.send(CDB.requestSense(), from: nexusC).data)?.code
                == .asymmetricAccessStandby)

        // Renewing the same role changes no state and raises nothing.
        try await fixture.volume.assignRole(.replica, epoch: 1)
        try await fixture.volume.assignRole(.none, epoch: 1)       // still standby
        for nexus in [nexusA, nexusB, nexusC] {
            #expect(await fixture.clearAttentions(nexus) == [], "\(nexus.initiatorName)")
        }

        // Two changes before a nexus speaks again: one condition (it is queued once).
        try await fixture.volume.fence()
        expectSense(await fixture.send(CDB.testUnitReady(), from: nexusA), .asymmetricAccessStateChanged)
        try await fixture.volume.assignRole(.primary, epoch: 2)
        #expect(await fixture.clearAttentions(nexusA) == [.asymmetricAccessStateChanged])
        #expect(await fixture.clearAttentions(nexusB) == [.asymmetricAccessStateChanged])
        #expect(await fixture.clearAttentions(nexusC) == [.asymmetricAccessStateChanged])

        // A nexus that first speaks after a change gets only 29/00.
        let late = ITNexus(initiatorName: "iqn.2024-01.test:late", initiatorSessionID: 9,
                           targetName: testTargetName, targetPortalGroupTag: 1)
        try await fixture.volume.fence()
        #expect(await fixture.clearAttentions(late) == [.powerOnResetOccurred])
        try await fixture.close()
    }

    @Test func aLeaseRunningOutIsSeenByTheNextCommand() async throws {
        let fixture = try await Fixture.make()
        try await fixture.volume.assignRole(.primary, epoch: 1, leaseMs: 1)
        try await Task.sleep(for: .milliseconds(20))
        await fixture.clearAttentions()
        // No event marks the expiry: the command path notices it.
        try await fixture.volume.assignRole(.primary, epoch: 1, leaseMs: 60_000)
        expectSense(await fixture.send(CDB.read10(lba: 0, blocks: 1)), .asymmetricAccessStateChanged)
        expectGood(await fixture.send(CDB.read10(lba: 0, blocks: 1)))
        try await fixture.volume.assignRole(.primary, epoch: 1, leaseMs: 1)
        try await Task.sleep(for: .milliseconds(20))
        expectSense(await fixture.send(CDB.write10(lba: 0, blocks: 1), data: pattern(tag: 1, blocks: 1)),
                    .asymmetricAccessStateChanged)
        expectSense(await fixture.send(CDB.write10(lba: 0, blocks: 1), data: pattern(tag: 1, blocks: 1)),
                    .asymmetricAccessTransitioning)
        #expect(await Self.reportedState(fixture) == 0xF)
        try await fixture.close()
    }

    @Test func reportTargetPortGroupsAllocationLengthAndFields() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        let full = await fixture.send(CDB.reportTargetPortGroups()).data
        let extended = await fixture.send(CDB.reportTargetPortGroups(extended: true)).data
        #expect(full.count == 16 && extended.count == 20)
        let none = await fixture.send(CDB.reportTargetPortGroups(allocation: 0))
        expectGood(none)
        #expect(none.data.isEmpty)
        for length in [1, 4, 7, 15, 16, 17] {
            #expect(await fixture.send(CDB.reportTargetPortGroups(allocation: UInt32(length))).data
                    == Array(full.prefix(length)))
        }
        for length in [5, 8, 9] {
            #expect(await fixture.send(CDB.reportTargetPortGroups(allocation: UInt32(length), extended: true)).data
                    == Array(extended.prefix(length)))
        }
        // PARAMETER DATA FORMAT 010b...111b are reserved.
        for format: UInt8 in 2...7 {
            let response = await fixture.send([0xA3, format << 5 | 0x0A, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0])
            expectSense(response, .invalidFieldInCDB)
            #expect(response.sense?.fieldPointer == SenseFieldPointer(inCDB: true, byteOffset: 1, bitIndex: 7))
        }
        expectSense(await fixture.send([0xA3, 0x0A, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0x04]), .invalidFieldInCDB)  // NACA
        expectSense(await fixture.send([0xA3, 0x0B, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0]), .invalidOpcode)  // no such action
        try await fixture.close()
    }

    @Test func relativeTargetPortZeroIsRefused() async throws {
        await #expect(throws: SCSIConfigurationError.self) {
            _ = try await Fixture.make { $0.relativeTargetPort = 0 }
        }
    }
}
