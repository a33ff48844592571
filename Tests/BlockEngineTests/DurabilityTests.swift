import Foundation
import Testing
@testable import BlockEngine

/// A barrier that answers with a fixed number of durable replicas and remembers the LSNs.
final class FixedBarrier: ReplicaBarrier, @unchecked Sendable {
    let durableReplicas: Int
    private(set) var requested: [UInt64] = []
    init(durableReplicas: Int) { self.durableReplicas = durableReplicas }
    func barrier(upTo lsn: UInt64, required: Int) async -> ReplicaBarrierResult {
        requested.append(lsn)
        return ReplicaBarrierResult(durableReplicas: durableReplicas,
                                    failures: durableReplicas == 0 ? ["replica-1: timed out"] : [])
    }
}

@Suite("Durability modes")
struct DurabilityTests {
    @Test("parse, names and validation against the replica factor")
    func parseAndValidate() throws {
        #expect(try DurabilityMode(parsing: "sync_all") == .syncAll)
        #expect(try DurabilityMode(parsing: "SYNC-QUORUM") == .syncQuorum)
        #expect(DurabilityMode.bestEffort.description == "best_effort")
        #expect(throws: BlockError.self) { try DurabilityMode(parsing: "fast") }
        #expect(throws: BlockError.self) { try DurabilityMode.syncQuorum.validate(replicaFactor: 2) }
        try DurabilityMode.syncQuorum.validate(replicaFactor: 3)
        #expect(throws: BlockError.self) { try DurabilityMode.bestEffort.validate(replicaFactor: 0) }
    }

    @Test("required replicas: 0, RF-1, RF/2")
    func requiredReplicas() {
        #expect(DurabilityMode.bestEffort.requiredReplicas(replicaFactor: 3) == 0)
        #expect(DurabilityMode.syncAll.requiredReplicas(replicaFactor: 1) == 0)
        #expect(DurabilityMode.syncAll.requiredReplicas(replicaFactor: 3) == 2)
        #expect(DurabilityMode.syncQuorum.requiredReplicas(replicaFactor: 3) == 1)
        #expect(DurabilityMode.syncQuorum.requiredReplicas(replicaFactor: 5) == 2)
    }

    func volume(_ directory: TemporaryDirectory, _ mode: DurabilityMode, rf: Int) async throws -> Volume {
        try await Volume.create(
            at: directory.file("v.blk"),
            configuration: VolumeConfiguration(sizeBytes: 1 << 20, blockSizeBytes: 4096, walSizeBytes: 256 << 10,
                                               durability: mode, replicaFactor: rf),
            options: testOptions())
    }

    @Test("sync_all with replicas required and none attached fails the flush, never local-only")
    func syncAllWithoutReplicas() async throws {
        let directory = TemporaryDirectory()
        let volume = try await volume(directory, .syncAll, rf: 2)
        try await volume.write(at: 0, [UInt8](repeating: 1, count: 4096))
        await #expect(throws: BlockError.barrierFailed("sync_all needs 1 replica(s) and none is attached")) {
            try await volume.flush()
        }
        await #expect(throws: BlockError.self) {
            try await volume.write(at: 1, [UInt8](repeating: 1, count: 4096), fua: true)
        }
        let barrier = FixedBarrier(durableReplicas: 1)
        volume.attachBarrier(barrier)
        try await volume.flush()
        #expect(barrier.requested.last == volume.info().lastLSN)
        volume.attachBarrier(FixedBarrier(durableReplicas: 0))
        await #expect(throws: BlockError.barrierFailed("0 of 1 replicas durable: replica-1: timed out")) {
            try await volume.flush()
        }
        try await volume.close()
    }

    @Test("sync_quorum counts against the volume's RF, not the replicas that answer")
    func syncQuorum() async throws {
        let directory = TemporaryDirectory()
        let volume = try await volume(directory, .syncQuorum, rf: 3)
        try await volume.write(at: 0, [UInt8](repeating: 1, count: 4096))
        await #expect(throws: BlockError.quorumLost(durableCopies: 1, requiredCopies: 2)) { try await volume.flush() }
        volume.attachBarrier(FixedBarrier(durableReplicas: 0))
        await #expect(throws: BlockError.quorumLost(durableCopies: 1, requiredCopies: 2)) { try await volume.flush() }
        volume.attachBarrier(FixedBarrier(durableReplicas: 1))
        try await volume.flush()
        try await volume.close()
    }

    @Test("best_effort and RF 1 flush locally; the mode and RF persist")
    func bestEffort() async throws {
        let directory = TemporaryDirectory()
        let volume = try await volume(directory, .bestEffort, rf: 2)
        try await volume.write(at: 0, [UInt8](repeating: 1, count: 4096), fua: true)
        try await volume.flush()
        try await volume.close()
        let reopened = try await Volume.open(at: directory.file("v.blk"), options: testOptions())
        #expect(reopened.durability == .bestEffort && reopened.replicaFactor == 2)
        try await reopened.close()
        let strict = TemporaryDirectory()
        let single = try await self.volume(strict, .syncAll, rf: 1)
        try await single.flush()
        try await single.close()
    }

    @Test("a failed fdatasync fails the flush and then every later write (no silent loss)")
    func syncFailure() async throws {
        let file = SimulatedFile()
        try Volume.format(file: file, configuration: VolumeConfiguration(sizeBytes: 1 << 20, walSizeBytes: 256 << 10))
        let volume = try Volume.open(file: file, path: "sim", options: testOptions(background: false))
        try await volume.write(at: 0, [UInt8](repeating: 1, count: 4096))
        file.failNextSync(errno: EIO)
        await #expect(throws: BlockError.self) { try await volume.flush() }
        await #expect(throws: BlockError.self) { try await volume.write(at: 1, [UInt8](repeating: 1, count: 4096)) }
        #expect(volume.info().failure != nil)
        await #expect(throws: BlockError.self) { try await volume.close() }
    }

    @Test("the fencing epoch persists and only grows")
    func epoch() async throws {
        let directory = TemporaryDirectory()
        let volume = try await volume(directory, .bestEffort, rf: 1)
        try await volume.assignRole(.standalone, epoch: 4)
        await #expect(throws: BlockError.staleEpoch(current: 4, offered: 3)) {
            try await volume.assignRole(.standalone, epoch: 3)
        }
        try await volume.write(at: 0, [UInt8](repeating: 2, count: 4096), fua: true)
        try await volume.close()
        let reopened = try await Volume.open(at: directory.file("v.blk"), options: testOptions())
        #expect(reopened.epoch == 4)
        #expect(try await reopened.read(at: 0, blockCount: 1) == [UInt8](repeating: 2, count: 4096))
        try await reopened.close()
    }
}
