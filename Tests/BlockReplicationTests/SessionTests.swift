// Replication sessions end to end on loopback: a primary volume ships to replica volumes
// through a real listener; barriers, reconnects, catch-up, rebuild and fencing.

import BlockEngine
import Foundation
import NIOPosix
import Testing
@testable import BlockReplication

@Suite("Replication sessions", .serialized)
struct SessionTests {
    static let blockCount = 512

    final class Directory: @unchecked Sendable {
        let path: String
        init() {
            path = NSTemporaryDirectory() + "blockrepl-" + UUID().uuidString
            try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
        func file(_ name: String) -> String { path + "/" + name }
    }

    static func options() throws -> ReplicationOptions {
        var options = ReplicationOptions(authentication: .sharedSecret(try ReplicationSecret(bytes: Array(repeating: 7, count: 32))))
        options.reconnectMinMs = 20
        options.reconnectMaxMs = 200
        // Generous: the suite runs beside every other test on a loaded machine.
        options.barrierTimeoutMs = 10_000
        options.logger.logLevel = ProcessInfo.processInfo.environment["REPL_DEBUG"] != nil ? .trace : .warning
        return options
    }

    static func volumeOptions() -> VolumeOptions {
        var options = VolumeOptions(flushIntervalMs: 20)
        options.logger.logLevel = .warning
        return options
    }

    static func create(_ directory: Directory, _ name: String, durability: DurabilityMode = .syncAll,
                       replicaFactor: Int = 2) async throws -> Volume {
        try await Volume.create(at: directory.file(name),
                                configuration: VolumeConfiguration(sizeBytes: UInt64(blockCount) * 4096,
                                                                   walSizeBytes: 1 << 20, durability: durability,
                                                                   replicaFactor: replicaFactor),
                                options: volumeOptions())
    }

    static func block(_ tag: Int) -> [UInt8] { [UInt8](repeating: UInt8(truncatingIfNeeded: tag), count: 4096) }

    /// Polls `condition` for up to `timeoutMs` (tests only: waiting on another process's progress).
    static func eventually(timeoutMs: Int = 10_000, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }

    @Test("sync_all: a flush waits for the replica, which then holds the same blocks")
    func streamsAndBarriers() async throws {
        let directory = Directory()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let primary = try await Self.create(directory, "p.blk")
        let replica = try await Self.create(directory, "r.blk")
        try await primary.assignRole(.primary, epoch: 1)
        try await replica.assignRole(.replica, epoch: 1)
        let options = try Self.options()
        let listener = try await ReplicationListener(host: "127.0.0.1", port: 0, options: options, group: group) {
            $0 == "vol" ? replica : nil
        }
        let replication = PrimaryReplication(volume: primary, volumeName: "vol",
                                             replicas: [ReplicaAddress(host: "127.0.0.1", port: listener.boundPort)],
                                             options: options, group: group)
        #expect(try await Self.eventually { replication.replicaStatus.first?.state == .inSync })
        for lba in 0..<64 { try await primary.write(at: UInt64(lba), Self.block(lba + 1)) }
        let flushed = try await primary.flush()
        #expect(replica.logPositions.durableLSN >= flushed)
        #expect(try await replica.read(at: 0, blockCount: 64) == (try await primary.read(at: 0, blockCount: 64)))
        #expect(try await Self.eventually { replication.replicaStatus.first?.state == .inSync },
                "\(replication.replicaStatus)")
        #expect(replica.uuid == primary.uuid, "the fresh replica took the primary's identity")
        await replication.stop()
        await listener.close()
        try await replica.close()
        try await primary.close()
        try await group.shutdownGracefully()
    }

    @Test("sync_all fails a flush while the replica is away and succeeds again once it is back and caught up")
    func reconnectsAndCatchesUp() async throws {
        let directory = Directory()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let primary = try await Self.create(directory, "p.blk")
        let replica = try await Self.create(directory, "r.blk")
        try await primary.assignRole(.primary, epoch: 1)
        try await replica.assignRole(.replica, epoch: 1)
        let options = try Self.options()
        var listener = try await ReplicationListener(host: "127.0.0.1", port: 0, options: options, group: group) {
            $0 == "vol" ? replica : nil
        }
        let port = listener.boundPort
        let replication = PrimaryReplication(volume: primary, volumeName: "vol",
                                             replicas: [ReplicaAddress(host: "127.0.0.1", port: port)],
                                             options: options, group: group)
        #expect(try await Self.eventually { replication.replicaStatus.first?.state == .inSync })
        try await primary.write(at: 0, Self.block(1))
        try await primary.flush()
        await listener.close()
        #expect(try await Self.eventually { replication.replicaStatus.first?.state == .disconnected })
        for lba in 1..<32 { try await primary.write(at: UInt64(lba), Self.block(lba + 100)) }
        await #expect(throws: BlockError.self, "no replica: sync_all refuses") { try await primary.flush() }
        listener = try await ReplicationListener(host: "127.0.0.1", port: port, options: options, group: group) {
            $0 == "vol" ? replica : nil
        }
        #expect(try await Self.eventually { replication.replicaStatus.first?.state == .inSync },
                "\(replication.replicaStatus)")
        try await primary.flush()
        #expect(try await replica.read(at: 0, blockCount: 32) == (try await primary.read(at: 0, blockCount: 32)))
        await replication.stop()
        await listener.close()
        try await replica.close()
        try await primary.close()
        try await group.shutdownGracefully()
    }

    @Test("a replica that joins after the primary wrote back its log is rebuilt, then streams")
    func rebuildsALateReplica() async throws {
        let directory = Directory()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let primary = try await Self.create(directory, "p.blk", durability: .bestEffort)
        let replica = try await Self.create(directory, "r.blk", durability: .bestEffort)
        try await primary.assignRole(.primary, epoch: 2)
        for lba in stride(from: 0, to: Self.blockCount, by: 3) { try await primary.write(at: UInt64(lba), Self.block(lba)) }
        try await primary.checkpoint()
        #expect(primary.logPositions.checkpointLSN > 0)
        try await replica.assignRole(.replica, epoch: 2)
        let options = try Self.options()
        let listener = try await ReplicationListener(host: "127.0.0.1", port: 0, options: options, group: group) {
            $0 == "vol" ? replica : nil
        }
        let replication = PrimaryReplication(volume: primary, volumeName: "vol",
                                             replicas: [ReplicaAddress(host: "127.0.0.1", port: listener.boundPort)],
                                             options: options, group: group)
        try await primary.write(at: 1, Self.block(200))
        let last = primary.logPositions.lastLSN
        #expect(try await Self.eventually { replica.logPositions.durableLSN >= last && !replica.imageIncomplete })
        #expect(try await replica.read(at: 0, blockCount: Self.blockCount)
                == (try await primary.read(at: 0, blockCount: Self.blockCount)))
        #expect(replica.uuid == primary.uuid)
        await replication.stop()
        await listener.close()
        try await replica.close()
        try await primary.close()
        try await group.shutdownGracefully()
    }

    @Test("a primary that meets a replica of a newer epoch fences itself")
    func fencesOnNewerEpoch() async throws {
        let directory = Directory()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let primary = try await Self.create(directory, "p.blk", durability: .bestEffort)
        let replica = try await Self.create(directory, "r.blk", durability: .bestEffort)
        try await primary.assignRole(.primary, epoch: 1)
        try await replica.assignRole(.replica, epoch: 2)
        let options = try Self.options()
        let listener = try await ReplicationListener(host: "127.0.0.1", port: 0, options: options, group: group) {
            $0 == "vol" ? replica : nil
        }
        let replication = PrimaryReplication(volume: primary, volumeName: "vol",
                                             replicas: [ReplicaAddress(host: "127.0.0.1", port: listener.boundPort)],
                                             options: options, group: group)
        #expect(try await Self.eventually { primary.role == .fenced })
        await #expect(throws: BlockError.self) { try await primary.write(at: 0, Self.block(1)) }
        await replication.stop()
        await listener.close()
        try await replica.close()
        try await primary.close()
        try await group.shutdownGracefully()
    }

    @Test("a listener with another secret refuses the primary; nothing is applied")
    func wrongSecret() async throws {
        let directory = Directory()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let primary = try await Self.create(directory, "p.blk")
        let replica = try await Self.create(directory, "r.blk")
        try await primary.assignRole(.primary, epoch: 1)
        try await replica.assignRole(.replica, epoch: 1)
        var other = try Self.options()
        other.authentication = .sharedSecret(try ReplicationSecret(bytes: Array(repeating: 9, count: 32)))
        let listener = try await ReplicationListener(host: "127.0.0.1", port: 0, options: other, group: group) {
            $0 == "vol" ? replica : nil
        }
        let replication = PrimaryReplication(volume: primary, volumeName: "vol",
                                             replicas: [ReplicaAddress(host: "127.0.0.1", port: listener.boundPort)],
                                             options: try Self.options(), group: group)
        try await primary.write(at: 0, Self.block(1))
        await #expect(throws: BlockError.self) { try await primary.flush() }
        #expect(replica.logPositions.lastLSN == 0)
        await replication.stop()
        await listener.close()
        try await replica.close()
        try await primary.close()
        try await group.shutdownGracefully()
    }

    @Test("sync_quorum, RF 3: a flush needs one of two replicas; with both away it fails with quorumLost")
    func quorum() async throws {
        let directory = Directory()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let primary = try await Self.create(directory, "p.blk", durability: .syncQuorum, replicaFactor: 3)
        let first = try await Self.create(directory, "r1.blk", durability: .syncQuorum, replicaFactor: 3)
        let second = try await Self.create(directory, "r2.blk", durability: .syncQuorum, replicaFactor: 3)
        try await primary.assignRole(.primary, epoch: 1)
        try await first.assignRole(.replica, epoch: 1)
        try await second.assignRole(.replica, epoch: 1)
        let options = try Self.options()
        let listenerOne = try await ReplicationListener(host: "127.0.0.1", port: 0, options: options, group: group) {
            $0 == "vol" ? first : nil
        }
        let listenerTwo = try await ReplicationListener(host: "127.0.0.1", port: 0, options: options, group: group) {
            $0 == "vol" ? second : nil
        }
        let replication = PrimaryReplication(
            volume: primary, volumeName: "vol",
            replicas: [ReplicaAddress(host: "127.0.0.1", port: listenerOne.boundPort),
                       ReplicaAddress(host: "127.0.0.1", port: listenerTwo.boundPort)],
            options: options, group: group)
        #expect(try await Self.eventually { replication.replicaStatus.allSatisfy { $0.state == .inSync } })
        try await primary.write(at: 0, Self.block(1))
        try await primary.flush()
        await listenerTwo.close()
        try await second.close()
        try await primary.write(at: 1, Self.block(2))
        try await primary.flush()
        #expect(first.logPositions.durableLSN >= 2, "the one replica left confirmed it")
        await listenerOne.close()
        try await primary.write(at: 2, Self.block(3))
        await #expect(throws: BlockError.quorumLost(durableCopies: 1, requiredCopies: 2)) { try await primary.flush() }
        await replication.stop()
        try await first.close()
        try await primary.close()
        try await group.shutdownGracefully()
    }
}
