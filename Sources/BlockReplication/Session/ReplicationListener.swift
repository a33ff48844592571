// One replication listener per server (`blockd serve --replication-listen`): primaries dial
// it, name a volume in their hello, and, once authenticated and accepted, drive that
// replica's log: truncation, rebuild, records, barriers (docs/REPLICATION.md, "Sessions").
//
// Invariants:
// - A hello is accepted only for a volume this server holds as a replica, at the hello's
//   epoch; an older epoch is answered with the replica's (the primary then fences itself).
// - One session per volume: a newer connection for a volume replaces the older one.
// - Records are applied in order, one at a time (the engine refuses any but the next LSN);
//   a barrier is answered once the records up to its LSN are applied and durable.
// - At most `maxConnections` connections at once; more are closed at accept.

import BlockEngine
import Logging
import NIOCore
import NIOPosix
import Synchronization

public final class ReplicationListener: Sendable {
    public static let maxConnections = 256

    /// Looks a volume up by name (nil: not held here).
    public typealias VolumeLookup = @Sendable (String) -> Volume?

    let options: ReplicationOptions
    let group: EventLoopGroup
    let lookup: VolumeLookup
    private let sessions = Mutex<[String: UInt64]>([:])
    private let nextSessionID = Atomic<UInt64>(1)
    private let connections = Atomic<Int>(0)
    private let server = Mutex<NIOAsyncChannel<ReplicationConnection, Never>?>(nil)
    private let acceptTask = Mutex<Task<Void, Never>?>(nil)
    public let boundPort: Int

    /// Binds `host:port` (port 0: any free port, see `boundPort`) and starts accepting.
    public init(host: String, port: Int, options: ReplicationOptions, group: EventLoopGroup,
                lookup: @escaping VolumeLookup) async throws {
        self.options = options
        self.group = group
        self.lookup = lookup
        let limits = options.limits
        let liveness = options.liveness
        let authentication = options.authentication
        let answer: @Sendable (Hello) -> ListenerHandshake.Answer = { hello in Self.answer(hello, lookup: lookup) }
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    var generator = SystemRandomNumberGenerator()
                    let handshake = ListenerHandshake(authentication: authentication, using: &generator)
                    return try ReplicationFraming.makeConnection(channel, side: .listener(handshake, answer: answer),
                                                                 limits: limits, liveness: liveness)
                }
            }
        boundPort = channel.channel.localAddress?.port ?? port
        server.withLock { $0 = channel }
        acceptTask.withLock { $0 = Task { await self.accept(channel) } }
    }

    public func close() async {
        let channel = server.withLock { $0 }
        try? await channel?.channel.close()
        let task = acceptTask.withLock { $0 }
        task?.cancel()
        await task?.value
    }

    private func accept(_ channel: NIOAsyncChannel<ReplicationConnection, Never>) async {
        do {
            try await channel.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        guard connections.add(1, ordering: .relaxed).newValue <= Self.maxConnections else {
                            connections.subtract(1, ordering: .relaxed)
                            try? await connection.channel.close()
                            continue
                        }
                        group.addTask {
                            defer { self.connections.subtract(1, ordering: .relaxed) }
                            await self.serve(connection)
                        }
                    }
                }
            }
        } catch {
            options.logger.info("replication listener stopped", metadata: ["error": "\(error)"])
        }
    }

    /// The handshake's answer to a hello (on the event loop: reads state, blocks on nothing).
    static func answer(_ hello: Hello, lookup: VolumeLookup) -> ListenerHandshake.Answer {
        guard let volume = lookup(hello.volumeName) else { return .refusal(.unknownVolume) }
        let epoch = volume.epoch
        guard volume.role == .replica else {
            return ListenerHandshake.Answer(status: .notAReplica, epoch: epoch, durableLSN: 0, receivedLSN: 0,
                                            durableRecordEpoch: 0)
        }
        guard hello.epoch == epoch else {
            // Older: the primary learns the newer epoch and fences itself. Newer: this copy
            // has not been told yet; the primary retries.
            return ListenerHandshake.Answer(status: .staleEpoch, epoch: epoch, durableLSN: 0, receivedLSN: 0,
                                            durableRecordEpoch: 0)
        }
        let positions = volume.logPositions
        let fresh = positions.lastLSN == 0 && positions.checkpointLSN == 0
        guard fresh || hello.volumeUUID == volume.uuid else { return .refusal(.unknownVolume) }
        if volume.imageIncomplete {
            return ListenerHandshake.Answer(status: .ok, epoch: epoch, durableLSN: 0, receivedLSN: 0,
                                            durableRecordEpoch: HelloAck.unknownEpoch)
        }
        let durable = positions.durableLSN
        // The epoch of the record at the durable LSN identifies our history there (one
        // primary per epoch hands out each LSN). Not known: UInt64.max, and the primary
        // rebuilds (its digests keep the copy to the segments that differ).
        var durableEpoch = HelloAck.unknownEpoch
        if durable == 0 {
            durableEpoch = 0
        } else if durable > positions.checkpointLSN {
            if case let .records(records)? = try? volume.readLog(from: durable, maxBytes: 1),
               let first = records.first, first.lsn == durable {
                durableEpoch = first.epoch
            }
        } else if durable == positions.checkpointLSN, let written = volume.checkpointRecordEpoch {
            durableEpoch = written
        }
        return ListenerHandshake.Answer(status: .ok, epoch: epoch, durableLSN: durable, receivedLSN: positions.lastLSN,
                                        durableRecordEpoch: durableEpoch,
                                        checkpointLSN: min(positions.checkpointLSN, durable))
    }

    // MARK: - Sessions

    private struct SessionEnded: Error, CustomStringConvertible {
        let description: String
    }

    private func serve(_ connection: ReplicationConnection) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var messages = inbound.makeAsyncIterator()
                guard case let .established(.listenerEstablished(hello))? = try await messages.next(),
                      let volume = lookup(hello.volumeName) else { return }
                let id = nextSessionID.add(1, ordering: .relaxed).oldValue
                sessions.withLock { $0[hello.volumeName] = id }
                defer { sessions.withLock { if $0[hello.volumeName] == id { $0[hello.volumeName] = nil } } }
                let channel = connection.channel
                var session = ReplicaSession(volume: volume, hello: hello, outbound: outbound, options: options,
                                             close: { channel.close(promise: nil) })
                do {
                    while let next = try await messages.next() {
                        guard sessions.withLock({ $0[hello.volumeName] }) == id else {
                            throw SessionEnded(description: "replaced by a newer session")
                        }
                        guard case let .message(message) = next else { continue }
                        try await session.handle(message)
                    }
                } catch {
                    await session.acker.finish()
                    throw error
                }
                await session.acker.finish()
            }
        } catch {
            options.logger.info("replica session ended", metadata: ["error": "\(error)"])
        }
    }
}

/// One primary's session with one replica volume.
struct ReplicaSession {
    let volume: Volume
    let hello: Hello
    let outbound: NIOAsyncChannelOutboundWriter<ReplicationMessage>
    let options: ReplicationOptions
    var receivedLSN: UInt64 = 0
    /// Makes applied records durable and acknowledges them, beside this loop.
    let acker: ReplicaAcker
    /// Barriers waiting for records not applied yet: (request id, LSN).
    var pendingBarriers: [(UInt64, UInt64)] = []
    /// After a rebuild's cut: the first barrier that is durable ends the rebuild.
    var rebuildEnding = false

    static let maxPendingBarriers = 1_024

    init(volume: Volume, hello: Hello, outbound: NIOAsyncChannelOutboundWriter<ReplicationMessage>,
         options: ReplicationOptions, close: @escaping @Sendable () -> Void) {
        self.volume = volume
        self.hello = hello
        self.outbound = outbound
        self.options = options
        receivedLSN = volume.logPositions.lastLSN
        acker = ReplicaAcker(volume: volume, outbound: outbound, logger: options.logger, close: close)
    }

    private struct Refused: Error, CustomStringConvertible {
        let description: String
    }

    mutating func handle(_ message: ReplicationMessage) async throws {
        guard volume.role == .replica, volume.epoch == hello.epoch else {
            try await outbound.write(.epochNotice(EpochNotice(epoch: volume.epoch,
                                                              reason: "this copy is \(volume.role) at epoch \(volume.epoch)")))
            throw Refused(description: "no longer a replica at the session's epoch")
        }
        switch message {
        case let .decision(decision):
            if let truncate = decision.truncateAfterLSN { try await volume.truncateLog(after: truncate) }
            if decision.mode == .rebuild {
                try await volume.beginRebuild(identity: hello.volumeUUID)
            } else if volume.uuid != hello.volumeUUID {
                // A fresh copy (the hello was accepted): it becomes the primary's.
                try await volume.adoptIdentity(hello.volumeUUID)
            }
            receivedLSN = decision.fromLSN - 1
        case let .rebuildDigestRequest(request):
            let digests = try await VolumeSegments.digests(volume, range: request.range)
            try await outbound.write(.rebuildDigestReply(RebuildDigestReply(range: request.range, digests: digests)))
        case let .rebuildChunk(chunk):
            try await volume.writeImage(at: chunk.offsetBlocks, ByteBufferSource(buffer: chunk.data))
        case let .rebuildDone(done):
            try await volume.resetLog(toCheckpoint: done.lsnCut)
            receivedLSN = done.lsnCut
            rebuildEnding = true
        case let .records(batch):
            for record in batch.records { try await volume.applyReplicated(LogRecord(record)) }
            receivedLSN = batch.lastLSN
            // A barrier this batch completes (the end of a rebuild, a session's first
            // barrier) is answered here, in order with the records.
            if pendingBarriers.contains(where: { $0.1 <= receivedLSN }) {
                try await answerBarriers(durable: try await sync())
            }
            // Every batch is made durable and then acknowledged, so the primary's hold (and
            // so its log space) follows what replicas have durable, also when the stream
            // goes quiet; the sync runs beside this loop, which applies the next batches
            // meanwhile, and one sync covers every batch applied before it started.
            acker.received(receivedLSN)
        case let .barrier(barrier):
            guard pendingBarriers.count < Self.maxPendingBarriers else { throw Refused(description: "too many barriers") }
            pendingBarriers.append((barrier.requestID, barrier.lsn))
            try await answerBarriers(durable: receivedLSN >= barrier.lsn ? try await sync() : volume.logPositions.durableLSN)
        case let .committed(committed):
            volume.noteCommitted(byPrimary: committed.lsn)
        case let .goodbye(goodbye):
            throw Refused(description: "goodbye: \(goodbye.message)")
        default:
            throw Refused(description: "unexpected \(message.type) from a primary")
        }
    }

    private func sync() async throws -> UInt64 {
        try await volume.syncLog()
    }

    /// Replies to the barriers whose LSN is durable; a rebuild ends at the first one.
    private mutating func answerBarriers(durable: UInt64) async throws {
        let ready = pendingBarriers.filter { $0.1 <= durable }
        guard !ready.isEmpty else { return }
        pendingBarriers.removeAll { $0.1 <= durable }
        if rebuildEnding {
            try await volume.endRebuild()
            rebuildEnding = false
        }
        for (id, _) in ready {
            try await outbound.write(.barrierReply(BarrierReply(requestID: id, status: .durable, durableLSN: durable)))
        }
    }
}

/// A replica session's durable acknowledgements: after records are applied, a task makes
/// them durable (the volume's own group commit) and then sends an ack with the durable LSN
/// it got, while the session goes on applying. At most one sync runs; records applied
/// meanwhile are owed one more, which covers all of them. A failed sync closes the
/// connection: nothing unsynced is ever acknowledged as durable.
final class ReplicaAcker: Sendable {
    private struct State {
        var received: UInt64 = 0
        var running: Task<Void, Never>?
        var owed = false
        var finished = false
    }

    let volume: Volume
    let outbound: NIOAsyncChannelOutboundWriter<ReplicationMessage>
    let logger: Logger
    let close: @Sendable () -> Void
    private let state = Mutex(State())

    init(volume: Volume, outbound: NIOAsyncChannelOutboundWriter<ReplicationMessage>, logger: Logger,
         close: @escaping @Sendable () -> Void) {
        self.volume = volume
        self.outbound = outbound
        self.logger = logger
        self.close = close
    }

    /// Records up to `lsn` are applied: have them synced and acknowledged.
    func received(_ lsn: UInt64) {
        state.withLock { state in
            state.received = max(state.received, lsn)
            guard !state.finished else { return }
            if state.running != nil {
                state.owed = true
                return
            }
            state.running = Task { await self.run() }
        }
    }

    private func run() async {
        // Bounded: a turn runs only for records applied since the previous sync started.
        while true {
            do {
                let durable = try await volume.syncLog()
                let received = state.withLock { max($0.received, durable) }
                try await outbound.write(.ack(Ack(receivedLSN: received, durableLSN: durable)))
            } catch {
                logger.info("replica sync or ack failed: closing the session", metadata: ["error": "\(error)"])
                state.withLock { state in
                    state.finished = true
                    state.owed = false
                }
                close()
            }
            let again = state.withLock { state -> Bool in
                if state.owed && !state.finished {
                    state.owed = false
                    return true
                }
                state.running = nil
                return false
            }
            if !again { return }
        }
    }

    /// The session ended: no new sync starts; waits for the one that runs.
    func finish() async {
        let running = state.withLock { state -> Task<Void, Never>? in
            state.finished = true
            return state.running
        }
        await running?.value
    }
}
