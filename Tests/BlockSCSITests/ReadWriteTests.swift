// The data path: READ/WRITE of every CDB size, range and length errors, Data-Out mismatches,
// FUA and WCE=0 reaching the engine as durable writes, SYNCHRONIZE CACHE and engine errors.

import BlockEngine
import Testing
@testable import BlockSCSI

@Suite struct ReadWriteTests {
    @Test func writeThenReadEveryCDBSize() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        let data = pattern(tag: 1, blocks: 3)
        expectGood(await fixture.send(CDB.write6(lba: 10, blocks: 3), data: data))
        #expect(await fixture.send(CDB.read6(lba: 10, blocks: 3)).data == data)
        #expect(await fixture.send(CDB.read10(lba: 10, blocks: 3)).data == data)
        #expect(await fixture.send(CDB.twelve(0xA8, lba: 10, blocks: 3)).data == data)
        #expect(await fixture.send(CDB.read16(lba: 10, blocks: 3)).data == data)

        let other = pattern(tag: 2, blocks: 2)
        expectGood(await fixture.send(CDB.write10(lba: 20, blocks: 2), data: other))
        expectGood(await fixture.send(CDB.twelve(0xAA, lba: 22, blocks: 2), data: other))
        expectGood(await fixture.send(CDB.write16(lba: Fixture.blockCount - 2, blocks: 2), data: other))
        #expect(await fixture.send(CDB.read16(lba: 20, blocks: 4)).data == other + other)
        #expect(await fixture.send(CDB.read10(lba: Fixture.blockCount - 2, blocks: 2)).data == other)
        // Never-written blocks read as zeros.
        #expect(await fixture.send(CDB.read10(lba: 100, blocks: 1)).data == [UInt8](repeating: 0, count: 4096))
        try await fixture.close()
    }

    @Test func transferLengthZero() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        // READ(6) 0 means 256 blocks; the 10/12/16-byte forms mean no blocks.
        #expect(await fixture.send(CDB.read6(lba: 0, blocks: 0)).data.count == 256 * 4096)
        let none = await fixture.send(CDB.read10(lba: 0, blocks: 0))
        expectGood(none)
        #expect(none.data.isEmpty)
        expectGood(await fixture.send(CDB.write16(lba: 5, blocks: 0)))
        expectGood(await fixture.send(CDB.read16(lba: Fixture.blockCount, blocks: 0)))
        expectSense(await fixture.send(CDB.read16(lba: Fixture.blockCount + 1, blocks: 0)), .lbaOutOfRange)
        expectSense(await fixture.send(CDB.write10(lba: 0x8000_0000, blocks: 0)), .lbaOutOfRange)
        try await fixture.close()
    }

    @Test func outOfRangeAndOversizedTransfers() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        let last = Fixture.blockCount - 1
        expectSense(await fixture.send(CDB.read10(lba: last, blocks: 2)), .lbaOutOfRange)
        expectSense(await fixture.send(CDB.read16(lba: UInt64.max, blocks: 1)), .lbaOutOfRange)
        expectSense(await fixture.send(CDB.write16(lba: UInt64.max, blocks: 1), data: pattern(tag: 1, blocks: 1)),
                    .lbaOutOfRange)
        expectSense(await fixture.send(CDB.read6(lba: 0x1F_FFFF, blocks: 1)), .lbaOutOfRange)
        // Above MAXIMUM TRANSFER LENGTH (16 MiB = 4096 blocks): an invalid field, nothing read.
        expectSense(await fixture.send(CDB.read16(lba: 0, blocks: 4097)), .invalidFieldInCDB)
        expectGood(await fixture.send(CDB.read16(lba: 0, blocks: 4096)))
        try await fixture.close()
    }

    /// FCP-4 9.4.2 option a): what arrived is written, up to the CDB's length; nothing past
    /// the expected length; a partial final block keeps its other bytes.
    @Test func shortAndLongDataOutWriteWhatArrived() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        let old = pattern(tag: 2, blocks: 2)
        let new = pattern(tag: 3, blocks: 2)
        func reset() async { expectGood(await fixture.send(CDB.write10(lba: 0, blocks: 2), data: old)) }

        await reset()
        expectGood(await fixture.send(CDB.write10(lba: 0, blocks: 2), data: Array(new.prefix(4096))))
        #expect(await fixture.send(CDB.read10(lba: 0, blocks: 2)).data == Array(new.prefix(4096)) + old.suffix(4096))

        await reset()
        expectGood(await fixture.send(CDB.write10(lba: 0, blocks: 1), data: new + new))  // longer: the CDB rules
        #expect(await fixture.send(CDB.read10(lba: 0, blocks: 2)).data == Array(new.prefix(4096)) + old.suffix(4096))

        await reset()
        expectGood(await fixture.send(CDB.write10(lba: 0, blocks: 1)))                    // nothing arrived
        #expect(await fixture.send(CDB.read10(lba: 0, blocks: 2)).data == old)

        await reset()
        expectGood(await fixture.send(CDB.twelve(0xAA, lba: 0, blocks: 1), data: Array(new.prefix(200))))
        #expect(await fixture.send(CDB.read10(lba: 0, blocks: 2)).data == Array(new.prefix(200)) + old.dropFirst(200))

        await reset()
        expectGood(await fixture.send(CDB.ten(0x2E, lba: 0, blocks: 2, flags: 0x02), data: Array(new.prefix(5000))))
        #expect(await fixture.send(CDB.read10(lba: 0, blocks: 2)).data
                == Array(new.prefix(5000)) + old.dropFirst(5000))

        // Data-Out beyond the expected length is never used.
        await reset()
        expectGood(await fixture.send(CDB.write10(lba: 0, blocks: 1), data: new, expectedLength: 100))
        #expect(await fixture.send(CDB.read10(lba: 0, blocks: 1)).data == Array(new.prefix(100)) + old[100..<4096])

        // A read with a different expected length still answers; the transport trims.
        let read = await fixture.send(CDB.read10(lba: 0, blocks: 1), expectedLength: 0)
        expectGood(read)
        #expect(read.data.count == 4096)
        try await fixture.close()
    }

    @Test func readsAndWritesCompleteWithoutWaitingOnlyWhenNothingMustWait() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        let unit = fixture.unit
        let data = pattern(tag: 40, blocks: 2)
        func now(_ cdb: [UInt8], data dataOut: [UInt8]? = nil, expectedLength: Int? = nil) -> Response? {
            unit.executeWithoutWaiting(request(cdb, data: dataOut, expectedLength: expectedLength)).map(Response.init)
        }
        #expect(now(CDB.write10(lba: 300, blocks: 2), data: data)?.status == .good)
        #expect(now(CDB.read16(lba: 300, blocks: 2), expectedLength: data.count)?.data == data)
        // The pipeline's own answers need no waiting either.
        expectSense(try #require(now(CDB.read10(lba: Fixture.blockCount, blocks: 1), expectedLength: 4096)), .lbaOutOfRange)

        let other = pattern(tag: 41, blocks: 2)
        #expect(now(CDB.write10(lba: 300, blocks: 2, flags: 0x08), data: other) == nil)        // FUA: waits for the log
        #expect(now(CDB.read10(lba: 300, blocks: 2, flags: 0x08), expectedLength: 8192) == nil) // FUA read: a flush
        #expect(now(CDB.write10(lba: 300, blocks: 2), data: Array(other[..<5000])) == nil)      // partial block: reads first
        #expect(now(CDB.synchronizeCache10()) == nil)
        let grant = try #require(unit.rangeLock.tryAcquire(301..<302))                          // a COMPARE AND WRITE, say
        #expect(now(CDB.write10(lba: 300, blocks: 2), data: other) == nil)
        unit.rangeLock.release(grant)
        // None of the refused commands changed anything.
        #expect(await fixture.send(CDB.read10(lba: 300, blocks: 2)).data == data)
        try await fixture.close()
    }

    @Test func fuaAndWriteCacheOffReachTheEngineAsDurableWrites() async throws {
        let fixture = try await Fixture.make()
        let backend = RecordingBackend(volume: fixture.volume)
        let unit = try SCSILogicalUnit(backend: backend, configuration: Fixture.configuration(fixture.directory))
        let lu = Fixture(directory: fixture.directory, volume: fixture.volume, unit: unit)
        await lu.clearAttentions()
        let data = pattern(tag: 4, blocks: 1)

        expectGood(await lu.send(CDB.write10(lba: 1, blocks: 1), data: data))
        expectGood(await lu.send(CDB.write10(lba: 2, blocks: 1, flags: 0x08), data: data))         // FUA
        expectGood(await lu.send(CDB.write16(lba: 3, blocks: 1, flags: 0x10), data: data))         // DPO only
        expectGood(await lu.send(CDB.write16(lba: 4, blocks: 1, flags: 0x18), data: data))         // DPO + FUA
        expectGood(await lu.send(CDB.compareAndWrite(lba: 9, blocks: 1, flags: 0x08),
                                 data: [UInt8](repeating: 0, count: 4096) + data))
        #expect(backend.writes.map(\.fua) == [false, true, false, true, true])
        // A FUA read makes acknowledged writes durable before reading; a plain read does not.
        expectGood(await lu.send(CDB.read10(lba: 1, blocks: 1)))
        #expect(backend.flushes == 0)
        #expect(await lu.send(CDB.read16(lba: 1, blocks: 1, flags: 0x08)).data == data)
        #expect(backend.flushes == 1)

        // WCE=0 through MODE SELECT: every write is durable.
        let list = CDB.cachingPageList6(writeCache: false)
        expectGood(await lu.send(CDB.modeSelect6(length: UInt8(list.count)), data: list))
        #expect(!unit.modeParameters.writeCacheEnabled)
        expectGood(await lu.send(CDB.write10(lba: 5, blocks: 1), data: data))
        expectGood(await lu.send(CDB.write6(lba: 6, blocks: 1), data: data))
        expectGood(await lu.send(CDB.writeSame10(lba: 7, blocks: 2), data: data))
        let lastThreeDurable = backend.writes.suffix(3).allSatisfy { $0.fua }
        #expect(lastThreeDurable)

        // WRITE AND VERIFY is durable whatever WCE says.
        let on = CDB.cachingPageList6(writeCache: true)
        expectGood(await lu.send(CDB.modeSelect6(length: UInt8(on.count)), data: on))
        expectGood(await lu.send(CDB.ten(0x2E, lba: 8, blocks: 1, flags: 0x02), data: data))
        #expect(backend.writes.last?.fua == true)
        try await fixture.close()
    }

    @Test func synchronizeCacheFlushesAndMapsBarrierFailures() async throws {
        let fixture = try await Fixture.make()
        let backend = RecordingBackend(volume: fixture.volume)
        let unit = try SCSILogicalUnit(backend: backend, configuration: Fixture.configuration(fixture.directory))
        let lu = Fixture(directory: fixture.directory, volume: fixture.volume, unit: unit)
        await lu.clearAttentions()
        expectGood(await lu.send(CDB.synchronizeCache10()))
        expectGood(await lu.send(CDB.synchronizeCache10(lba: 5, blocks: 10, immediate: true)))
        expectGood(await lu.send(CDB.sixteen(0x91, lba: 0, blocks: 0)))
        #expect(backend.flushes == 3)
        expectSense(await lu.send(CDB.synchronizeCache10(lba: Fixture.blockCount, blocks: 1)), .lbaOutOfRange)
        #expect(backend.flushes == 3)

        backend.failFlushes(with: .barrierFailed("replica unreachable"))
        expectSense(await lu.send(CDB.synchronizeCache10()), .logicalUnitCommunicationFailure)
        backend.failFlushes(with: .quorumLost(durableCopies: 1, requiredCopies: 2))
        expectSense(await lu.send(CDB.sixteen(0x91, lba: 0, blocks: 0)), .logicalUnitCommunicationFailure)
        // START STOP UNIT with START=0 flushes too (and fails the same way).
        expectSense(await lu.send([0x1B, 0, 0, 0, 0x00, 0]), .logicalUnitCommunicationFailure)
        backend.failFlushes(with: nil)
        expectGood(await lu.send([0x1B, 0, 0, 0, 0x00, 0]))
        expectGood(await lu.send([0x1B, 0, 0, 0, 0x04, 0]))  // NO_FLUSH
        #expect(backend.flushes == 7)
        try await fixture.close()
    }

    @Test func closedVolumeIsNotReadyTransitioning() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        try await fixture.volume.close()
        expectSense(await fixture.send(CDB.read10(lba: 0, blocks: 1)), .asymmetricAccessTransitioning)
        expectSense(await fixture.send(CDB.write10(lba: 0, blocks: 1), data: pattern(tag: 1, blocks: 1)),
                    .asymmetricAccessTransitioning)
    }

    @Test func prefetchChecksRangeAndAnswersGood() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        let good = await fixture.send(CDB.ten(0x34, lba: 0, blocks: 256, flags: 0x02))
        #expect(good.status == .good)
        expectGood(await fixture.send(CDB.sixteen(0x90, lba: Fixture.blockCount - 1, blocks: 1)))
        expectSense(await fixture.send(CDB.ten(0x34, lba: Fixture.blockCount, blocks: 1)), .lbaOutOfRange)
        try await fixture.close()
    }

    @Test func blockSize512() async throws {
        let fixture = try await Fixture.make(blockSizeBytes: 512)
        await fixture.clearAttentions()
        let data = pattern(tag: 9, blocks: 8, blockSize: 512)
        expectGood(await fixture.send(CDB.write10(lba: 3, blocks: 8), data: data))
        #expect(await fixture.send(CDB.read10(lba: 3, blocks: 8)).data == data)
        let capacity = await fixture.send(CDB.readCapacity10()).data
        #expect(capacity.loadBigEndian(UInt32.self, at: 4) == 512)
        try await fixture.close()
    }
}
