// Replication sessions end to end on loopback: a primary volume ships to replica volumes
// through a real listener; barriers, reconnects, catch-up, rebuild and fencing.

import BlockEngine
import Foundation
import NIOCore
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

    /// A listener on a loopback port (a free one unless given) that serves `volume` as "vol".
    static func listen(for volume: Volume, port: Int = 0, options: ReplicationOptions,
                       group: EventLoopGroup) async throws -> ReplicationListener {
        try await ReplicationListener(host: "127.0.0.1", port: port, options: options, group: group) {
            $0 == "vol" ? volume : nil
        }
    }

    static func address(of listener: ReplicationListener) -> ReplicaAddress {
        ReplicaAddress(host: "127.0.0.1", port: listener.boundPort)
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
        let listener = try await Self.listen(for: replica, options: options, group: group)
        let replication = PrimaryReplication(volume: primary, volumeName: "vol",
                                             replicas: [Self.address(of: listener)],
                                             options: options, group: group)
        #expect(try await Self.eventually { replication.replicaStatus.first?.state == .inSync })
        for lba in 0..<64 { try await primary.write(at: UInt64(lba), Self.block(lba + 1)) }
        let flushed = try await primary.flush()
        #expect(replica.logPositions.durableLSN >= flushed)
        #expect(try await replica.read(at: 0, blockCount: 64) == (try await primary.read(at: 0, blockCount: 64)))
        #expect(try await Self.eventually { replication.replicaStatus.first?.state == .inSync },
                "\(replication.replicaStatus)")
        #expect(replica.uuid == primary.uuid, "the fresh replica took the primary's identity")
        #expect(try await Self.eventually { replica.logPositions.committedLSN >= flushed },
                "the replica shows the primary's committed LSN")
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
        var listener = try await Self.listen(for: replica, options: options, group: group)
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
        listener = try await Self.listen(for: replica, port: port, options: options, group: group)
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
        let listener = try await Self.listen(for: replica, options: options, group: group)
        let replication = PrimaryReplication(volume: primary, volumeName: "vol",
                                             replicas: [Self.address(of: listener)],
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
        let listener = try await Self.listen(for: replica, options: options, group: group)
        let replication = PrimaryReplication(volume: primary, volumeName: "vol",
                                             replicas: [Self.address(of: listener)],
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
        let listener = try await Self.listen(for: replica, options: other, group: group)
        let replication = PrimaryReplication(volume: primary, volumeName: "vol",
                                             replicas: [Self.address(of: listener)],
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
        let listenerOne = try await Self.listen(for: first, options: options, group: group)
        let listenerTwo = try await Self.listen(for: second, options: options, group: group)
        let replication = PrimaryReplication(
            volume: primary, volumeName: "vol",
            replicas: [Self.address(of: listenerOne),
                       Self.address(of: listenerTwo)],
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

    @Test("sync_quorum, RF 3: a flush returns once one replica confirmed, without waiting for a silent one")
    func quorumDoesNotWaitForASilentReplica() async throws {
        let directory = Directory()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let primary = try await Self.create(directory, "p.blk", durability: .syncQuorum, replicaFactor: 3)
        let replica = try await Self.create(directory, "r.blk", durability: .syncQuorum, replicaFactor: 3)
        try await primary.assignRole(.primary, epoch: 1)
        try await replica.assignRole(.replica, epoch: 1)
        var options = try Self.options()
        // Far longer than the test may take: a barrier that waited for the silent replica
        // would hold the flush this long.
        options.barrierTimeoutMs = 120_000
        let listener = try await Self.listen(for: replica, options: options, group: group)
        // Accepts connections (the kernel's backlog) and never says a word: a hung server.
        let silent = try SilentListener()
        let replication = PrimaryReplication(
            volume: primary, volumeName: "vol",
            replicas: [Self.address(of: listener),
                       ReplicaAddress(host: "127.0.0.1", port: silent.port)],
            options: options, group: group)
        #expect(try await Self.eventually { replication.replicaStatus[0].state == .inSync })
        let started = ContinuousClock.now
        for tag in 1...5 {
            try await primary.write(at: UInt64(tag), Self.block(tag))
            try await primary.flush()
        }
        #expect(ContinuousClock.now - started < .seconds(60), "five flushes waited for the silent replica")
        #expect(replica.logPositions.durableLSN >= 5)
        #expect(replication.replicaStatus[1].state == .disconnected)
        await replication.stop()
        await listener.close()
        try await replica.close()
        try await primary.close()
        try await group.shutdownGracefully()
    }

    @Test("after a failover, a replica holding records the new primary never had is truncated (or rebuilt) to the new primary's history, also when it wrote them back",
          arguments: [false, true])
    func divergentReplicaFollowsTheNewPrimary(writtenBack: Bool) async throws {
        let directory = Directory()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let old = try await Self.create(directory, "old.blk", durability: .bestEffort, replicaFactor: 3)
        let ahead = try await Self.create(directory, "ahead.blk", durability: .bestEffort, replicaFactor: 3)
        let behind = try await Self.create(directory, "behind.blk", durability: .bestEffort, replicaFactor: 3)
        try await old.assignRole(.primary, epoch: 1)
        try await ahead.assignRole(.replica, epoch: 1)
        try await behind.assignRole(.replica, epoch: 1)
        // Its whole history stays in its log, so the divergence point (after LSN 10) is
        // found there, below the ahead one's written-back records when `writtenBack`.
        let keepAll = behind.holdLog(from: 1)
        let options = try Self.options()
        let aheadListener = try await Self.listen(for: ahead, options: options, group: group)
        let behindListener = try await Self.listen(for: behind, options: options, group: group)
        let aheadAddress = Self.address(of: aheadListener)
        let shipping = PrimaryReplication(
            volume: old, volumeName: "vol",
            replicas: [aheadAddress, Self.address(of: behindListener)],
            options: options, group: group)
        for lba in 0..<10 { try await old.write(at: UInt64(lba), Self.block(lba + 1)) }
        #expect(try await Self.eventually { behind.logPositions.durableLSN >= 10 && ahead.logPositions.durableLSN >= 10 })
        // The behind replica stops hearing; the ahead one gets five more records.
        await behindListener.close()
        for lba in 10..<15 { try await old.write(at: UInt64(lba), Self.block(100 + lba)) }
        #expect(try await Self.eventually { ahead.logPositions.durableLSN >= 15 })
        await shipping.stop()
        try await old.close()
        // Failover to the behind replica, which writes a history of its own at epoch 2, as
        // long as the ahead one's (so its record at the ahead one's durable LSN is in its log).
        try await behind.assignRole(.primary, epoch: 2)
        for lba in 10..<16 { try await behind.write(at: UInt64(lba), Self.block(200 + lba)) }
        try await ahead.assignRole(.replica, epoch: 2)
        // Written back, its divergent records are no longer in its log: the epoch of the one
        // at its checkpoint (1, not its volume's 2) must still tell the histories apart.
        if writtenBack { try await ahead.checkpoint() }
        let newShipping = PrimaryReplication(volume: behind, volumeName: "vol", replicas: [aheadAddress],
                                             options: options, group: group)
        let last = behind.logPositions.lastLSN
        #expect(try await Self.eventually {
            newShipping.replicaStatus.first?.state == .inSync && ahead.logPositions.durableLSN >= last
        }, "\(newShipping.replicaStatus)")
        #expect(try await ahead.read(at: 0, blockCount: 17) == (try await behind.read(at: 0, blockCount: 17)),
                "the replica holds the new primary's history, not the records only the old primary had")
        behind.release(keepAll)
        await newShipping.stop()
        await aheadListener.close()
        try await ahead.close()
        try await behind.close()
        try await group.shutdownGracefully()
    }
}

/// A TCP port that accepts connections into its backlog and never reads or writes.
final class SilentListener {
    let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length) == 0 && listen(descriptor, 8) == 0
                    && getsockname(descriptor, pointer, &length) == 0
            }
        }
        guard bound else {
            close(descriptor)
            throw POSIXError(.EADDRNOTAVAIL)
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }
}
