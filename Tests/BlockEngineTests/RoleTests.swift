import Foundation
import Testing
@testable import BlockEngine

@Suite("Roles, epochs and the write gate")
struct RoleTests {
    let block = [UInt8](repeating: 7, count: 4096)

    /// Which gate refusal `error` is.
    func refusal(_ error: BlockError?) -> String {
        switch error {
        case nil: "none"
        case .leaseExpired?: "leaseExpired"
        case .notPrimary?: "notPrimary"
        case .fenced?: "fenced"
        default: "other: \(error!)"
        }
    }

    @Test("the gate admits writes only for standalone and an assigned primary whose lease runs")
    func gateRules() {
        var gate = WriteGate(persistedRole: .standalone, epoch: 0)
        #expect(gate.writeRefusal(nowNs: 0) == nil)
        gate = WriteGate(persistedRole: .primary, epoch: 3)
        #expect(refusal(gate.writeRefusal(nowNs: 0)) == "leaseExpired", "a primary from disk waits to be assigned")
        gate.assigned = true
        #expect(gate.writeRefusal(nowNs: 0) == nil)
        gate.leaseDeadlineNs = 1_000
        #expect(gate.writeRefusal(nowNs: 999) == nil)
        #expect(refusal(gate.writeRefusal(nowNs: 1_000)) == "leaseExpired")
        gate.role = .replica
        #expect(refusal(gate.writeRefusal(nowNs: 0)) == "notPrimary")
        gate.role = .none
        #expect(refusal(gate.writeRefusal(nowNs: 0)) == "notPrimary")
        gate.role = .fenced
        #expect(refusal(gate.writeRefusal(nowNs: 0)) == "fenced")
    }

    @Test("assignments: never a lower epoch; a new role at the same epoch only to fenced or none")
    func assignmentRules() {
        let gate = WriteGate(persistedRole: .replica, epoch: 5)
        #expect(gate.assignmentRefusal(role: .replica, epoch: 4) == .staleEpoch(current: 5, offered: 4))
        #expect(gate.assignmentRefusal(role: .primary, epoch: 5) == .staleEpoch(current: 5, offered: 5),
                "a promotion at an equal epoch could make two primaries of one epoch")
        #expect(gate.assignmentRefusal(role: .replica, epoch: 5) == nil, "renewal")
        #expect(gate.assignmentRefusal(role: .fenced, epoch: 5) == nil)
        #expect(gate.assignmentRefusal(role: .none, epoch: 5) == nil)
        #expect(gate.assignmentRefusal(role: .primary, epoch: 6) == nil)
    }

    @Test("a primary's role and epoch persist; reopened, it refuses writes until assigned again")
    func persistedPrimary() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let volume = try await makeVolume(in: directory, sizeBytes: 1 << 20, walSizeBytes: 256 << 10)
        try await volume.assignRole(.primary, epoch: 2)
        try await volume.write(at: 0, block, fua: true)
        try await volume.close()

        let reopened = try await Volume.open(at: path, options: testOptions())
        #expect(reopened.role == .primary)
        #expect(reopened.epoch == 2)
        await #expect(throws: BlockError.self) { try await reopened.write(at: 1, block) }
        await #expect(throws: BlockError.self) { try await reopened.flush() }
        #expect(try await reopened.read(at: 0, blockCount: 1) == block, "reads are not gated")
        try await reopened.assignRole(.primary, epoch: 2)
        try await reopened.write(at: 1, block, fua: true)
        try await reopened.close()
        #expect(try Volume.inspect(at: path).role == "primary")
    }

    @Test("a lease that runs out stops writes and flushes; renewing it at the same epoch restores them")
    func leaseExpiry() async throws {
        let directory = TemporaryDirectory()
        let volume = try await makeVolume(in: directory, sizeBytes: 1 << 20, walSizeBytes: 256 << 10)
        try await volume.assignRole(.primary, epoch: 1, leaseMs: 60_000)
        try await volume.write(at: 0, block)
        // A renewal sets a new deadline, here one that passes at once.
        try await volume.assignRole(.primary, epoch: 1, leaseMs: 1)
        try await Task.sleep(for: .milliseconds(20))
        await #expect(throws: BlockError.self) { try await volume.write(at: 1, block) }
        await #expect(throws: BlockError.self) { try await volume.flush() }
        #expect(refusal(volume.writeRefusal) == "leaseExpired")
        try await volume.assignRole(.primary, epoch: 1, leaseMs: 60_000)
        try await volume.write(at: 1, block, fua: true)
        try await volume.close()
    }

    @Test("fencing stops writes and flushes at once, persists, and only a higher epoch lifts it")
    func fencing() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let volume = try await makeVolume(in: directory, sizeBytes: 1 << 20, walSizeBytes: 256 << 10)
        try await volume.assignRole(.primary, epoch: 4)
        try await volume.write(at: 0, block)
        try await volume.fence()
        await #expect(throws: BlockError.self) { try await volume.write(at: 1, block) }
        await #expect(throws: BlockError.self) { try await volume.flush() }
        await #expect(throws: BlockError.staleEpoch(current: 4, offered: 4)) {
            try await volume.assignRole(.primary, epoch: 4)
        }
        try await volume.close()
        let reopened = try await Volume.open(at: path, options: testOptions())
        #expect(reopened.role == .fenced)
        try await reopened.assignRole(.primary, epoch: 5)
        try await reopened.write(at: 1, block, fua: true)
        try await reopened.close()
    }

    @Test("writes that race epoch changes keep record epochs in LSN order: every acknowledged write survives a power cut")
    func epochRaces() async throws {
        let file = SimulatedFile()
        try Volume.format(file: file, configuration: VolumeConfiguration(sizeBytes: 4 << 20, walSizeBytes: 2 << 20))
        let volume = try Volume.open(file: file, path: "sim", options: testOptions(background: false))
        try await volume.assignRole(.primary, epoch: 1)
        let writers = 8
        let writesEach = 40
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    for step in 0..<writesEach {
                        let lba = UInt64(writer * writesEach + step)
                        try await volume.write(at: lba, pattern(tag: 9, lba: lba, blockSize: 4096), fua: step % 4 == 3)
                    }
                }
            }
            group.addTask {
                for epoch in 2...30 {
                    try await volume.assignRole(.primary, epoch: UInt64(epoch))
                }
            }
            try await group.waitForAll()
        }
        _ = try await volume.flush()
        // The power cut comes after the last sync: everything flushed must be there.
        var generator = SeededGenerator(seed: 11)
        let image = file.crashImage(at: file.historyCount, using: &generator)
        let recovered = try Volume.open(file: SimulatedFile(image: image), path: "sim", options: testOptions(background: false))
        #expect(recovered.epoch == 30)
        for lba in 0..<UInt64(writers * writesEach) {
            let read = try await recovered.read(at: lba, blockCount: 1)
            #expect(read == pattern(tag: 9, lba: lba, blockSize: 4096), "block \(lba) lost")
        }
        try await recovered.close()
        try await volume.close()
    }
}
