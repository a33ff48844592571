// Garbage in, a status out: random and mutated CDBs with random Data-Out through the whole
// logical unit never trap and always produce a well-formed result. Plus the range lock and the
// sense data encoding on their own.

import NIOCore
import Synchronization
import Testing
@testable import BlockSCSI

@Suite struct RobustnessTests {
    @Test func randomCommandsAlwaysGetAStatus() async throws {
        let fixture = try await Fixture.make()
        var generator = SeededGenerator(seed: 0xF0CC_ACC1_0000_0001)
        let templates = CommandCatalog.all.map(\.usageData)
        var statuses: [SCSIStatus: Int] = [:]
        for round in 0..<3000 {
            var cdb: [UInt8]
            switch round % 3 {
            case 0:
                cdb = (0..<Int.random(in: 0...20, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            default:
                // A real opcode with random fields, small LBAs half the time so some commands run.
                cdb = templates.randomElement(using: &generator)!.map { $0 & UInt8.random(in: 0...255, using: &generator) }
                if round % 3 == 1 && cdb.count >= 10 {
                    for index in 2..<min(cdb.count - 2, 9) { cdb[index] = 0 }
                }
            }
            let dataLength = [0, 8, 24, 512, 4096, 8192].randomElement(using: &generator)!
            let dataOut = (0..<dataLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let nexus = [nexusA, nexusB, nexusC].randomElement(using: &generator)!
            let result = await fixture.unit.execute(request(cdb, from: nexus, data: dataLength == 0 ? nil : dataOut,
                                                            expectedLength: Bool.random(using: &generator) ? dataLength : 4096))
            statuses[result.status, default: 0] += 1
            switch result.status {
            case .checkCondition:
                #expect(result.sense != nil, "cdb \(cdb)")
                #expect(result.senseData?.readableBytes == SenseData.fixedFormatLengthBytes)
            case .good:
                #expect(result.senseData == nil)
                #expect((result.dataIn?.readableBytes ?? 0) <= 16 << 20)
            default:
                #expect(result.senseData == nil)
            }
        }
        #expect(statuses[.good, default: 0] > 0)
        #expect(statuses[.checkCondition, default: 0] > 0)
        // The unit still works afterwards, once whatever reservations the noise took are gone.
        for nexus in [nexusA, nexusB, nexusC] {
            fixture.unit.nexusLost(nexus)
            await fixture.clearAttentions(nexus)
        }
        expectGood(await fixture.reserveOut(PR.registerAndIgnore, from: nexusA, key: 0, serviceActionKey: 1))
        expectGood(await fixture.reserveOut(PR.clear, from: nexusA, key: 1))
        await fixture.clearAttentions()
        let data = pattern(tag: 30, blocks: 1)
        expectGood(await fixture.send(CDB.write10(lba: 5000, blocks: 1), data: data))
        #expect(await fixture.send(CDB.read10(lba: 5000, blocks: 1)).data == data)
        try await fixture.close()
    }

    @Test func rangeLockSerializesOverlapsAndBoundsWaiters() async {
        let lock = RangeLock(capacity: 3)
        let first = await lock.acquire(0..<10)!
        let disjoint = await lock.acquire(10..<20)!
        #expect(lock.occupancy == 2)
        let order = Shared<[String]>([])
        let waiter = Task {
            let grant = await lock.acquire(5..<15)!
            order.withLock { $0.append("overlap granted") }
            lock.release(grant)
        }
        while lock.occupancy < 3 { await Task.yield() }
        #expect(await lock.acquire(100..<101) == nil)       // full: refused, not queued
        order.withLock { $0.append("releasing") }
        lock.release(first)
        #expect(order.withLock { $0 } == ["releasing"])     // still overlaps `disjoint`
        lock.release(disjoint)
        await waiter.value
        #expect(order.withLock { $0 } == ["releasing", "overlap granted"])
        #expect(lock.occupancy == 0)
    }

    @Test func rangeLockTryAcquireGrantsOnlyWhatNeedsNoWaiting() async {
        let lock = RangeLock(capacity: 3)
        let held = lock.tryAcquire(0..<10)!
        #expect(lock.tryAcquire(9..<12) == nil)                 // overlaps a holder
        let waiter = Task { await lock.acquire(8..<30)! }       // queues behind `held`
        while lock.occupancy < 2 { await Task.yield() }
        #expect(lock.tryAcquire(25..<26) == nil)                // overlaps an earlier waiter
        let free = lock.tryAcquire(40..<41)!
        #expect(lock.tryAcquire(50..<51) == nil)                // full
        #expect(lock.occupancy == 3)
        lock.release(held)
        lock.release(await waiter.value)
        lock.release(free)
        #expect(lock.occupancy == 0)
    }

    @Test func rangeLockNeverGrantsOverlappingRanges() async {
        let lock = RangeLock(capacity: 64)
        let holders = Shared<[Range<UInt64>]>([])
        let violations = Shared(0)
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<16 {
                group.addTask {
                    var generator = SeededGenerator(seed: UInt64(task))
                    for _ in 0..<200 {
                        let start = UInt64.random(in: 0..<64, using: &generator)
                        let range = start..<(start + UInt64.random(in: 1...8, using: &generator))
                        guard let grant = await lock.acquire(range) else { continue }
                        holders.withLock { held in
                            if held.contains(where: { $0.overlaps(range) }) { violations.withLock { $0 += 1 } }
                            held.append(range)
                        }
                        await Task.yield()
                        _ = holders.withLock { held in held.remove(at: held.firstIndex(of: range)!) }
                        lock.release(grant)
                    }
                }
            }
        }
        #expect(violations.withLock { $0 } == 0)
        #expect(lock.occupancy == 0)
    }

    @Test func senseDataEncoding() {
        let sense = SenseData(.miscompareDuringVerify, information: 0x0102_0304)
        let bytes = sense.fixedFormatBytes()
        #expect(bytes.count == 18)
        #expect(bytes[0] == 0xF0)                            // VALID, current error
        #expect(bytes[2] == 0x0E)
        #expect(Array(bytes[3..<7]) == [1, 2, 3, 4])
        #expect(bytes[7] == 10)
        #expect(bytes[12] == 0x1D && bytes[13] == 0x00)
        let pointer = SenseData(.invalidFieldInCDB, fieldPointer: SenseFieldPointer(inCDB: true, byteOffset: 1, bitIndex: 7))
        let pointed = pointer.fixedFormatBytes()
        #expect(pointed[0] == 0x70)
        #expect(pointed[15] == 0x80 | 0x40 | 0x08 | 0x07)
        #expect(Array(pointed[16..<18]) == [0, 1])
        #expect(SenseData(fixedFormat: pointed) == pointer)
        #expect(SenseData(fixedFormat: [0x72, 0, 5]) == nil)  // descriptor format is not decoded
    }
}
