// VERIFY, WRITE AND VERIFY and COMPARE AND WRITE, including COMPARE AND WRITE atomicity under
// concurrent writers from two nexuses.

import BlockEngine
import Synchronization
import Testing
@testable import BlockSCSI

@Suite struct CompareTests {
    @Test func verifyModes() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        let data = pattern(tag: 5, blocks: 4)
        expectGood(await fixture.send(CDB.write10(lba: 40, blocks: 4), data: data))

        expectGood(await fixture.send(CDB.ten(0x2F, lba: 40, blocks: 4)))                          // BYTCHK 00b
        expectGood(await fixture.send(CDB.ten(0x2F, lba: 40, blocks: 4, flags: 0x02), data: data))  // BYTCHK 01b
        expectGood(await fixture.send(CDB.sixteen(0x8F, lba: 40, blocks: 4, flags: 0x12), data: data))  // with DPO
        var wrong = data
        wrong[3 * 4096 + 17] ^= 0x55
        let miscompare = await fixture.send(CDB.twelve(0xAF, lba: 40, blocks: 4, flags: 0x02), data: wrong)
        expectSense(miscompare, .miscompareDuringVerify)
        #expect(miscompare.sense?.information == UInt32(3 * 4096 + 17))

        // BYTCHK 11b: one block compared with every block of the range.
        let same = pattern(tag: 6, blocks: 1)
        expectGood(await fixture.send(CDB.write10(lba: 50, blocks: 1), data: same))
        expectGood(await fixture.send(CDB.write10(lba: 51, blocks: 1), data: same))
        expectGood(await fixture.send(CDB.ten(0x2F, lba: 50, blocks: 2, flags: 0x06), data: same))
        let oneOff = await fixture.send(CDB.ten(0x2F, lba: 50, blocks: 3, flags: 0x06), data: same)
        expectSense(oneOff, .miscompareDuringVerify)
        #expect(oneOff.sense?.information == UInt32(2 * 4096))

        expectSense(await fixture.send(CDB.ten(0x2F, lba: Fixture.blockCount - 1, blocks: 2)), .lbaOutOfRange)
        expectSense(await fixture.send(CDB.ten(0x2F, lba: 0, blocks: 1, flags: 0x20)), .invalidFieldInCDB)
        expectGood(await fixture.send(CDB.ten(0x2F, lba: Fixture.blockCount, blocks: 0)))
        try await fixture.close()
    }

    @Test func writeAndVerify() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        let data = pattern(tag: 7, blocks: 2)
        expectGood(await fixture.send(CDB.ten(0x2E, lba: 60, blocks: 2, flags: 0x02), data: data))
        expectGood(await fixture.send(CDB.sixteen(0x8E, lba: 62, blocks: 2), data: data))
        #expect(await fixture.send(CDB.read10(lba: 60, blocks: 4)).data == data + data)
        expectSense(await fixture.send(CDB.twelve(0xAE, lba: Fixture.blockCount, blocks: 1), data: pattern(tag: 7, blocks: 1)),
                    .lbaOutOfRange)
        expectSense(await fixture.send(CDB.ten(0x2E, lba: 0, blocks: 1, flags: 0x40), data: pattern(tag: 7, blocks: 1)),
                    .invalidFieldInCDB)
        try await fixture.close()
    }

    @Test func compareAndWrite() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions()
        let old = pattern(tag: 8, blocks: 2)
        let new = pattern(tag: 9, blocks: 2)
        expectGood(await fixture.send(CDB.write10(lba: 70, blocks: 2), data: old))
        expectGood(await fixture.send(CDB.compareAndWrite(lba: 70, blocks: 2), data: old + new))
        #expect(await fixture.send(CDB.read10(lba: 70, blocks: 2)).data == new)

        // Miscompare: sense carries the offset, nothing is written.
        var stale = new
        stale[4096 + 100] ^= 1
        let miscompare = await fixture.send(CDB.compareAndWrite(lba: 70, blocks: 2), data: stale + old)
        expectSense(miscompare, .miscompareDuringVerify)
        #expect(miscompare.sense?.information == UInt32(4096 + 100))
        #expect(await fixture.send(CDB.read10(lba: 70, blocks: 2)).data == new)

        // Unwritten blocks read as zeros and miscompare against anything else.
        expectSense(await fixture.send(CDB.compareAndWrite(lba: 80, blocks: 1), data: pattern(tag: 1, blocks: 2)),
                    .miscompareDuringVerify)
        expectGood(await fixture.send(CDB.compareAndWrite(lba: 80, blocks: 0)))
        // Zero blocks with a Data-Out: the count field is wrong.
        expectSense(await fixture.send(CDB.compareAndWrite(lba: 80, blocks: 0), data: old + new), .invalidFieldInCDB)
        expectSense(await fixture.send(CDB.compareAndWrite(lba: Fixture.blockCount - 1, blocks: 2), data: old + new),
                    .lbaOutOfRange)
        // 255 blocks is within the limit: the missing Data-Out is what fails.
        expectSense(await fixture.send(CDB.compareAndWrite(lba: 0, blocks: 255)), .invalidFieldInCommandInformationUnit)
        // Data-Out of the wrong size (the libiscsi InvalidDataOutSize case).
        expectSense(await fixture.send(CDB.compareAndWrite(lba: 70, blocks: 1), data: old + new),
                    .invalidFieldInCommandInformationUnit)
        try await fixture.close()

        let limited = try await Fixture.make { $0.maximumCompareAndWriteBlocks = 1 }
        await limited.clearAttentions()
        expectSense(await limited.send(CDB.compareAndWrite(lba: 0, blocks: 2), data: old + new), .invalidFieldInCDB)
        try await limited.close()
    }

    @Test func orWrite() async throws {
        let fixture = try await Fixture.make()
        let backend = RecordingBackend(volume: fixture.volume)
        let unit = try SCSILogicalUnit(backend: backend, configuration: Fixture.configuration(fixture.directory))
        let lu = Fixture(directory: fixture.directory, volume: fixture.volume, unit: unit)
        await lu.clearAttentions()
        let a = pattern(tag: 21, blocks: 3)
        let b = pattern(tag: 22, blocks: 3)
        expectGood(await lu.send(CDB.write16(lba: 90, blocks: 3), data: a))
        expectGood(await lu.send(CDB.sixteen(0x8B, lba: 90, blocks: 3, flags: 0x08), data: b))
        #expect(await lu.send(CDB.read16(lba: 90, blocks: 3)).data == zip(a, b).map { $0 | $1 })
        #expect(backend.writes.last == RecordingBackend.WriteRecord(lba: 90, blockCount: 3, fua: true))
        expectGood(await lu.send(CDB.sixteen(0x8B, lba: 90, blocks: 0)))
        expectSense(await lu.send(CDB.sixteen(0x8B, lba: Fixture.blockCount, blocks: 1), data: b.prefix(4096).map { $0 }),
                    .lbaOutOfRange)
        expectSense(await lu.send(CDB.sixteen(0x8B, lba: 0, blocks: 1, flags: 0x20), data: Array(b.prefix(4096))),
                    .invalidFieldInCDB)
        try await fixture.close()
    }

    /// Tasks on two nexuses increment a counter block with COMPARE AND WRITE, retrying on
    /// MISCOMPARE. A non-atomic compare-then-write would let two increments read the same
    /// value and one would be lost.
    @Test func compareAndWriteIsAtomicAcrossNexuses() async throws {
        let fixture = try await Fixture.make()
        await fixture.clearAttentions(nexusA)
        await fixture.clearAttentions(nexusB)
        let lba: UInt64 = 200
        let tasksPerNexus = 6
        let incrementsPerTask = 20
        func block(_ value: UInt32) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: 4096)
            for index in stride(from: 0, to: 4096, by: 4) { bytes.storeBigEndian(value, at: index) }
            return bytes
        }
        expectGood(await fixture.send(CDB.write10(lba: lba, blocks: 1), data: block(0)))
        let miscompares = Shared(0)
        await withTaskGroup(of: Void.self) { group in
            for nexus in [nexusA, nexusB] {
                for _ in 0..<tasksPerNexus {
                    group.addTask {
                        var done = 0
                        var attempts = 0
                        while done < incrementsPerTask && attempts < 100_000 {
                            attempts += 1
                            let current = await fixture.send(CDB.read10(lba: lba, blocks: 1), from: nexus).data
                            let value = current.loadBigEndian(UInt32.self, at: 0)
                            let response = await fixture.send(CDB.compareAndWrite(lba: lba, blocks: 1), from: nexus,
                                                              data: current + block(value + 1))
                            if response.status == .good {
                                done += 1
                            } else {
                                #expect(response.sense?.code == .miscompareDuringVerify)
                                miscompares.withLock { $0 += 1 }
                            }
                        }
                        #expect(done == incrementsPerTask)
                    }
                }
            }
        }
        let final = await fixture.send(CDB.read10(lba: lba, blocks: 1)).data
        #expect(final == block(UInt32(2 * tasksPerNexus * incrementsPerTask)))
        try await fixture.close()
    }

    /// A WRITE that arrives while a COMPARE AND WRITE is between its compare and its (slow)
    /// write must not land in between: either CAW is first and the WRITE's data survives, or
    /// CAW is second and miscompares. Either way the WRITE's data is what remains.
    @Test func writesWaitForCompareAndWriteOnOverlappingBlocks() async throws {
        let fixture = try await Fixture.make()
        let backend = SlowBackend(volume: fixture.volume, slowBlockCount: 2, delayMs: 150)
        let unit = try SCSILogicalUnit(backend: backend, configuration: Fixture.configuration(fixture.directory))
        let lu = Fixture(directory: fixture.directory, volume: fixture.volume, unit: unit)
        await lu.clearAttentions(nexusA)
        await lu.clearAttentions(nexusB)
        let replacement = pattern(tag: 10, blocks: 2)
        let plain = pattern(tag: 11, blocks: 1)
        let order = Shared<[String]>([])
        async let caw: Response = {
            let response = await lu.send(CDB.compareAndWrite(lba: 300, blocks: 2), from: nexusA,
                                         data: [UInt8](repeating: 0, count: 8192) + replacement)
            order.withLock { $0.append("caw") }
            return response
        }()
        try await Task.sleep(for: .milliseconds(40))
        let write = await lu.send(CDB.write10(lba: 301, blocks: 1), from: nexusB, data: plain)
        order.withLock { $0.append("write") }
        expectGood(write)
        expectGood(await caw)
        #expect(order.withLock { $0 } == ["caw", "write"])
        #expect(await lu.send(CDB.read10(lba: 301, blocks: 1)).data == plain)
        #expect(await lu.send(CDB.read10(lba: 300, blocks: 1)).data == Array(replacement.prefix(4096)))
        try await fixture.close()
    }
}

/// Delays engine writes of exactly `slowBlockCount` blocks, to hold a command inside its
/// critical section long enough for another to arrive.
final class SlowBackend: LogicalUnitBackend {
    let volume: Volume
    let slowBlockCount: Int
    let delayMs: Int

    init(volume: Volume, slowBlockCount: Int, delayMs: Int) {
        self.volume = volume
        self.slowBlockCount = slowBlockCount
        self.delayMs = delayMs
    }

    var blockSizeBytes: Int { volume.blockSizeBytes }
    var blockCount: UInt64 { volume.blockCount }
    var uuid: VolumeUUID { volume.uuid }
    var role: VolumeRole { volume.role }
    var writeRefusal: BlockError? { volume.writeRefusal }

    func read(at lba: UInt64, into buffer: UnsafeMutableRawBufferPointer, pageCacheChecked: Bool) async throws(BlockError) {
        try await volume.read(at: lba, into: buffer, pageCacheChecked: pageCacheChecked)
    }

    func write(at lba: UInt64, _ source: some BlockWriteSource, fua: Bool) async throws(BlockError) -> UInt64 {
        if source.byteCount == slowBlockCount * volume.blockSizeBytes {
            try? await Task.sleep(for: .milliseconds(delayMs))
        }
        return try await volume.write(at: lba, source, fua: fua)
    }

    func readWithoutWaiting(at lba: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockError) -> Bool {
        try volume.readWithoutWaiting(at: lba, into: buffer)
    }

    /// A slow write cannot complete without waiting.
    func writeWithoutWaiting(at lba: UInt64, _ source: some BlockWriteSource) throws(BlockError) -> Bool {
        guard source.byteCount != slowBlockCount * volume.blockSizeBytes else { return false }
        return try volume.writeWithoutWaiting(at: lba, source)
    }

    func trim(at lba: UInt64, blockCount: UInt64) async throws(BlockError) -> UInt64 {
        try await volume.trim(at: lba, blockCount: blockCount)
    }

    func flush() async throws(BlockError) -> UInt64 { try await volume.flush() }

    func blockStatus(at lba: UInt64, blockCount: UInt64) throws(BlockError) -> [BlockStatusExtent] {
        try volume.blockStatus(at: lba, blockCount: blockCount)
    }
}
