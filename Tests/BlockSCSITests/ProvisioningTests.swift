// WRITE SAME, UNMAP and GET LBA STATUS against the engine's block status.

import BlockEngine
import Testing
@testable import BlockSCSI

@Suite struct ProvisioningTests {
    @Test func writeSameWritesTheBlockEverywhereInFewEngineCalls() async throws {
        let fixture = try await Fixture.make()
        let backend = RecordingBackend(volume: fixture.volume)
        let unit = try SCSILogicalUnit(backend: backend, configuration: Fixture.configuration(fixture.directory))
        let lu = Fixture(directory: fixture.directory, volume: fixture.volume, unit: unit)
        await lu.clearAttentions()
        let block = pattern(tag: 12, blocks: 1)
        expectGood(await lu.send(CDB.writeSame10(lba: 100, blocks: 600), data: block))
        let read = await lu.send(CDB.read16(lba: 100, blocks: 600)).data
        #expect(read == Array([[UInt8]](repeating: block, count: 600).joined()))
        // 600 blocks of 4 KiB in 1 MiB chunks: 3 engine calls, not 600.
        #expect(backend.writes.count == 3)
        #expect(backend.writes.map(\.blockCount) == [256, 256, 88])

        expectGood(await lu.send(CDB.writeSame16(lba: 900, blocks: 3, ndob: true)))
        #expect(await lu.send(CDB.read10(lba: 900, blocks: 3)).data == [UInt8](repeating: 0, count: 3 * 4096))
        try await fixture.close()
    }

    @Test func writeSameWithUnmapDeallocates() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        expectGood(await fixture.send(CDB.write16(lba: 1000, blocks: 64), data: pattern(tag: 13, blocks: 64)))
        try await fixture.volume.checkpoint()
        #expect(try fixture.volume.blockStatus(at: 1000, blockCount: 64)
                == [BlockStatusExtent(lba: 1000, blockCount: 64, provisioning: .mapped)])

        let zero = [UInt8](repeating: 0, count: 4096)
        expectGood(await fixture.send(CDB.writeSame16(lba: 1008, blocks: 16, unmap: true), data: zero))
        expectGood(await fixture.send(CDB.writeSame10(lba: 1032, blocks: 8, unmap: true), data: zero))
        expectGood(await fixture.send(CDB.writeSame16(lba: 1048, blocks: 4, unmap: true, ndob: true)))
        #expect(try fixture.volume.blockStatus(at: 1000, blockCount: 64) == [
            BlockStatusExtent(lba: 1000, blockCount: 8, provisioning: .mapped),
            BlockStatusExtent(lba: 1008, blockCount: 16, provisioning: .deallocated),
            BlockStatusExtent(lba: 1024, blockCount: 8, provisioning: .mapped),
            BlockStatusExtent(lba: 1032, blockCount: 8, provisioning: .deallocated),
            BlockStatusExtent(lba: 1040, blockCount: 8, provisioning: .mapped),
            BlockStatusExtent(lba: 1048, blockCount: 4, provisioning: .deallocated),
            BlockStatusExtent(lba: 1052, blockCount: 12, provisioning: .mapped),
        ])
        #expect(await fixture.send(CDB.read10(lba: 1008, blocks: 16)).data == [UInt8](repeating: 0, count: 16 * 4096))

        // UNMAP deallocates whatever the block holds (libiscsi's UnmapUntilEnd sends 0xFF).
        let block = pattern(tag: 14, blocks: 1)
        expectGood(await fixture.send(CDB.write16(lba: 1060, blocks: 2), data: block + block))
        expectGood(await fixture.send(CDB.writeSame16(lba: 1060, blocks: 2, unmap: true), data: block))
        #expect(await fixture.send(CDB.read10(lba: 1060, blocks: 2)).data == [UInt8](repeating: 0, count: 8192))
        #expect(try fixture.volume.blockStatus(at: 1060, blockCount: 2)
                == [BlockStatusExtent(lba: 1060, blockCount: 2, provisioning: .deallocated)])
        try await fixture.close()
    }

    @Test func writeSameErrors() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        let block = pattern(tag: 15, blocks: 1)
        let capacity = Fixture.blockCount
        let maximum: UInt64 = (8 << 20) / 4096
        expectSense(await fixture.send(CDB.writeSame10(lba: capacity - 1, blocks: 2), data: block), .lbaOutOfRange)
        expectSense(await fixture.send(CDB.writeSame16(lba: capacity + 1, blocks: 0), data: block), .lbaOutOfRange)
        expectSense(await fixture.send(CDB.writeSame10(lba: 0, blocks: 1, anchor: true), data: block), .invalidFieldInCDB)
        // Over MAXIMUM WRITE SAME LENGTH, also through "0 = to the end".
        expectSense(await fixture.send(CDB.writeSame16(lba: 0, blocks: maximum + 1), data: block), .invalidFieldInCDB)
        expectSense(await fixture.send(CDB.writeSame16(lba: 0, blocks: 0), data: block), .invalidFieldInCDB)
        expectGood(await fixture.send(CDB.writeSame16(lba: capacity - maximum, blocks: 0, unmap: true),
                                      data: [UInt8](repeating: 0, count: 4096)))
        // The Data-Out must be exactly one block.
        expectSense(await fixture.send(CDB.writeSame10(lba: 0, blocks: 1, unmap: true), data: block + block),
                    .invalidFieldInCommandInformationUnit)
        expectSense(await fixture.send(CDB.writeSame10(lba: 0, blocks: 1), data: Array(block.prefix(2048))),
                    .invalidFieldInCommandInformationUnit)
        try await fixture.close()

        let thick = try await Fixture.make { $0.thinProvisioning = false }
        await thick.clearAttentions()
        expectSense(await thick.send(CDB.writeSame10(lba: 0, blocks: 1, unmap: true), data: block), .invalidFieldInCDB)
        expectSense(await thick.send(CDB.unmap(parameterListLength: 24), data: CDB.unmapList([(0, 1)])), .invalidOpcode)
        let capacity16 = await thick.send(CDB.readCapacity16()).data
        #expect(capacity16[14] & 0xC0 == 0)  // LBPME, LBPRZ clear
        try await thick.close()
    }

    @Test func unmapDeallocatesAndValidatesFirst() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        expectGood(await fixture.send(CDB.write16(lba: 2000, blocks: 32), data: pattern(tag: 16, blocks: 32)))
        let list = CDB.unmapList([(2000, 4), (2010, 2), (2020, 0)])
        expectGood(await fixture.send(CDB.unmap(parameterListLength: list.count), data: list))
        #expect(try fixture.volume.blockStatus(at: 2000, blockCount: 12) == [
            BlockStatusExtent(lba: 2000, blockCount: 4, provisioning: .deallocated),
            BlockStatusExtent(lba: 2004, blockCount: 6, provisioning: .mapped),
            BlockStatusExtent(lba: 2010, blockCount: 2, provisioning: .deallocated),
        ])
        #expect(await fixture.send(CDB.read10(lba: 2000, blocks: 4)).data == [UInt8](repeating: 0, count: 4 * 4096))

        // One bad descriptor: nothing is deallocated.
        let bad = CDB.unmapList([(2012, 2), (Fixture.blockCount, 1)])
        expectSense(await fixture.send(CDB.unmap(parameterListLength: bad.count), data: bad), .lbaOutOfRange)
        #expect(try fixture.volume.blockStatus(at: 2012, blockCount: 2)
                == [BlockStatusExtent(lba: 2012, blockCount: 2, provisioning: .mapped)])

        expectGood(await fixture.send(CDB.unmap(parameterListLength: 0)))
        let empty = CDB.unmapList([])
        expectGood(await fixture.send(CDB.unmap(parameterListLength: empty.count), data: empty))
        let edge = CDB.unmapList([(Fixture.blockCount, 0)])
        expectGood(await fixture.send(CDB.unmap(parameterListLength: edge.count), data: edge))
        expectSense(await fixture.send(CDB.unmap(parameterListLength: 4), data: [0, 2, 0, 0]), .parameterListLengthError)
        // More than MAXIMUM UNMAP LBA COUNT (1 Mi blocks) in total, each descriptor in range.
        let tooMany = CDB.unmapList((0..<65).map { _ in (UInt64(0), UInt32(Fixture.blockCount)) })
        expectSense(await fixture.send(CDB.unmap(parameterListLength: tooMany.count), data: tooMany),
                    .invalidFieldInParameterList)
        let descriptors = CDB.unmapList((0..<257).map { (UInt64($0), UInt32(1)) })
        expectSense(await fixture.send(CDB.unmap(parameterListLength: descriptors.count), data: descriptors),
                    .invalidFieldInParameterList)
        try await fixture.close()
    }

    @Test func getLBAStatusReportsRunsFromTheStartingLBA() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        expectGood(await fixture.send(CDB.write16(lba: 3000, blocks: 10), data: pattern(tag: 17, blocks: 10)))
        let list = CDB.unmapList([(3004, 2)])
        expectGood(await fixture.send(CDB.unmap(parameterListLength: list.count), data: list))

        let response = await fixture.send(CDB.getLBAStatus(lba: 3001, allocation: 8 + 4 * 16))
        expectGood(response)
        let data = response.data
        #expect(data.loadBigEndian(UInt32.self, at: 0) == UInt32(data.count - 4))
        func descriptor(_ index: Int) -> (UInt64, UInt32, UInt8) {
            let offset = 8 + 16 * index
            return (data.loadBigEndian(UInt64.self, at: offset), data.loadBigEndian(UInt32.self, at: offset + 8),
                    data[offset + 12] & 0x0F)
        }
        #expect(data.count == 8 + 4 * 16)
        #expect(descriptor(0) == (3001, 3, 0))   // mapped
        #expect(descriptor(1) == (3004, 2, 1))   // deallocated
        #expect(descriptor(2) == (3006, 4, 0))
        #expect(descriptor(3).0 == 3010 && descriptor(3).2 == 1)

        let single = await fixture.send(CDB.getLBAStatus(lba: 3004, allocation: 24))
        #expect(single.data.count == 24)
        #expect(single.data.loadBigEndian(UInt64.self, at: 8) == 3004)
        expectGood(await fixture.send(CDB.getLBAStatus(lba: Fixture.blockCount - 1)))
        expectSense(await fixture.send(CDB.getLBAStatus(lba: Fixture.blockCount)), .lbaOutOfRange)
        expectSense(await fixture.send(CDB.getLBAStatus(lba: UInt64.max)), .lbaOutOfRange)
        try await fixture.close()
    }

    /// A logical unit over a `RecordingBackend`, with its unit attention consumed.
    private func recorded() async throws -> (Fixture, RecordingBackend) {
        let fixture = try await Fixture.make()
        let backend = RecordingBackend(volume: fixture.volume)
        let unit = try SCSILogicalUnit(backend: backend, configuration: Fixture.configuration(fixture.directory))
        let lu = Fixture(directory: fixture.directory, volume: fixture.volume, unit: unit)
        await lu.clearAttentions()
        return (lu, backend)
    }

    @Test func getLBAStatusWalksNoFurtherThanTheAllocationLengthNeeds() async throws {
        let (lu, backend) = try await recorded()
        // 32 runs in the first 32 blocks: every even block mapped, every odd one not.
        for lba in stride(from: UInt64(0), to: 32, by: 2) {
            expectGood(await lu.send(CDB.write10(lba: lba, blocks: 1), data: pattern(tag: 18, blocks: 1)))
        }
        let response = await lu.send(CDB.getLBAStatus(lba: 0, allocation: 8 + 2 * 16))
        expectGood(response)
        #expect(response.data.count == 8 + 2 * 16)
        #expect(response.data.loadBigEndian(UInt64.self, at: 24) == 1)    // the second run starts at LBA 1
        let walkedBlocks = backend.statusQueries.reduce(0) { $0 + $1.blockCount }
        #expect(walkedBlocks <= SCSILogicalUnit.lbaStatusFirstChunkBlocks, "walked \(walkedBlocks) blocks for 2 descriptors")
        try await lu.close()
    }

    @Test func getLBAStatusJoinsARunThatSpansSeveralWalkSteps() async throws {
        let (lu, _) = try await recorded()
        let mappedBlocks = 3 * SCSILogicalUnit.lbaStatusFirstChunkBlocks
        expectGood(await lu.send(CDB.write16(lba: 0, blocks: mappedBlocks), data: pattern(tag: 19, blocks: Int(mappedBlocks))))
        let data = await lu.send(CDB.getLBAStatus(lba: 0, allocation: 8 + 3 * 16)).data
        #expect(data.loadBigEndian(UInt32.self, at: 0) == 4 + 2 * 16)      // two runs: mapped, then the rest
        #expect(data.loadBigEndian(UInt64.self, at: 8) == 0)
        #expect(data.loadBigEndian(UInt32.self, at: 16) == UInt32(mappedBlocks))
        #expect(data[20] & 0x0F == 0)
        #expect(data.loadBigEndian(UInt64.self, at: 24) == mappedBlocks)
        #expect(data.loadBigEndian(UInt32.self, at: 32) == UInt32(Fixture.blockCount - mappedBlocks))
        #expect(data[36] & 0x0F == 1)
        try await lu.close()
    }

    @Test func getLBAStatusWalksOffTheTransportsLoop() async throws {
        let (lu, backend) = try await recorded()
        let command = request(CDB.getLBAStatus(lba: 0))
        #expect(lu.unit.executeWithoutWaiting(command) == nil, "never answered synchronously")
        let loop = LoopStandIn()
        let ranOnLoop = await withTaskExecutorPreference(loop) { () async -> Bool in
            let onLoop = LoopStandIn.isCurrent
            expectGood(Response(await lu.unit.execute(command)))
            return onLoop
        }
        #expect(ranOnLoop, "the command itself ran on the stand-in loop")
        #expect(!backend.statusQueries.isEmpty)
        #expect(backend.statusQueries.allSatisfy { !$0.onLoop }, "the walk ran on the loop")
        try await lu.close()
    }
}
