// The primary's connection to one replica (docs/REPLICATION.md, "Sessions"): dial,
// handshake, decide (stream, catch-up with an optional truncation, or rebuild), then ship
// the log with a bound on bytes in flight while acks and barrier replies come back.
// Reconnects with backoff for as long as the link exists: a replica is never dropped for
// good, it comes back through catch-up or rebuild.
//
// Invariants:
// - While a session runs, a log hold keeps every record the replica has not confirmed
//   durable; the hold advances only with the replica's durable LSN.
// - At most `maxBytesInFlight` of records and `maxFramesInFlight` frames are
//   unacknowledged; shipping waits for acks.
// - The durable LSN reported for the replica only grows within a session and is what the
//   replica said; a barrier succeeds only on a reply or ack that covers its LSN.
// - A replica or notice of a newer epoch fences the volume at once.
// - Barrier waiters are bounded (`maxBarrierWaiters`) and each ends (reply, timeout, the
//   session's end).

import BlockEngine
import Crypto
import Logging
import NIOCore
import NIOPosix
import DequeModule
import Synchronization

/// How a replica stands, as the primary sees it.
public struct ReplicaStatus: Sendable, Equatable {
    public enum State: String, Sendable {
        case inSync, catchingUp, rebuilding, disconnected
    }

    public var address: String
    public var state: State
    /// Every record up to it is durable on the replica (0: not known in this session).
    public var durableLSN: UInt64
    public var receivedLSN: UInt64
    /// Record and rebuild-chunk bytes sent to this replica since the link started (what a
    /// catch-up or a rebuild moved).
    public var shippedBytes: UInt64 = 0
    public var lastError: String?
}

/// Tunables of shipping; the defaults suit a LAN.
public struct ReplicationOptions: Sendable {
    public var authentication: ReplicationAuthentication
    public var limits = WireLimits()
    public var liveness = ConnectionLiveness()
    /// Records read from the log per frame.
    public var maxBatchBytes = 1 << 20
    /// Unacknowledged record bytes per replica.
    public var maxBytesInFlight = 8 << 20
    /// Unacknowledged record frames per replica. The replica acknowledges once a sync
    /// covered them, so records that complete meanwhile go out together in the next frame
    /// (up to `maxBatchBytes`) instead of one small frame each.
    public var maxFramesInFlight = 2
    public var connectTimeoutMs = 3_000
    /// A barrier that gets no answer within this fails (the flush fails in strict modes).
    public var barrierTimeoutMs = 5_000
    public var reconnectMinMs = 100
    public var reconnectMaxMs = 5_000
    public var logger = Logger(label: "BlockReplication")

    public init(authentication: ReplicationAuthentication) {
        self.authentication = authentication
    }
}

final class ReplicaLink: Sendable {
    static let maxBarrierWaiters = 1_024

    private struct BarrierWaiter {
        let id: UInt64
        let lsn: UInt64
        /// `State.framesHeard` when the barrier was asked.
        let framesHeard: UInt64
        let continuation: CheckedContinuation<Bool, Never>
        /// Ends the wait after `barrierTimeoutMs`; cancelled when the wait ends otherwise, so
        /// timers never outnumber the waiters.
        var timeout: Task<Void, Never>?

        func finish(_ answer: Bool) {
            timeout?.cancel()
            continuation.resume(returning: answer)
        }
    }

    private struct State {
        var status: ReplicaStatus
        var connected = false
        var stopped = false
        var nextWaiterID: UInt64 = 1
        var barrierWaiters: [BarrierWaiter] = []
        /// Shipping waits here for acks (flow control): resumed with false to look again,
        /// true when the session ended.
        var ackWaiters: [CheckedContinuation<Bool, Never>] = []
        /// Batches shipped and not yet acknowledged as received: (last LSN, bytes).
        var inFlight = Deque<(lastLSN: UInt64, bytes: Int)>()
        var inFlightBytes = 0
        var outbound: NIOAsyncChannelOutboundWriter<ReplicationMessage>?
        /// The session's channel, closed to end a session whose replica went silent.
        var channel: Channel?
        /// Why the session was ended from this side, if it was.
        var abortReason: String?
        /// Frames received from the replica in this link's life.
        var framesHeard: UInt64 = 0
        var hold: LogHold?
        /// The replica must rebuild: its copy needs records the log no longer has.
        var catchUpTarget: UInt64 = 0
    }

    let volume: Volume
    let volumeName: String
    let address: ReplicaAddress
    let options: ReplicationOptions
    let group: EventLoopGroup
    /// Called once when this link learns of a newer epoch (the owner fences the volume).
    let onNewerEpoch: @Sendable (UInt64, String) -> Void
    private let state: Mutex<State>
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(volume: Volume, volumeName: String, address: ReplicaAddress, options: ReplicationOptions,
         group: EventLoopGroup, onNewerEpoch: @escaping @Sendable (UInt64, String) -> Void) {
        self.volume = volume
        self.volumeName = volumeName
        self.address = address
        self.options = options
        self.group = group
        self.onNewerEpoch = onNewerEpoch
        state = Mutex(State(status: ReplicaStatus(address: address.description, state: .disconnected,
                                                  durableLSN: 0, receivedLSN: 0, lastError: nil)))
    }

    var status: ReplicaStatus { state.withLock { $0.status } }

    /// Whether this replica holds a hold now (the owner releases the volume's recovered
    /// hold once every link has its own).
    var holdsLog: Bool { state.withLock { $0.hold != nil } }

    func start() {
        task.withLock { $0 = Task { await self.run() } }
    }

    func stop() async {
        let outbound = state.withLock { state -> NIOAsyncChannelOutboundWriter<ReplicationMessage>? in
            state.stopped = true
            return state.outbound
        }
        outbound?.finish()
        let running = task.withLock { $0 }
        running?.cancel()
        await running?.value
        endSession(error: "stopped")
        if let hold = state.withLock({ state -> LogHold? in defer { state.hold = nil }; return state.hold }) {
            volume.release(hold)
        }
    }

    // MARK: - Barriers

    /// Returns true once the replica confirms every record up to `lsn` durable; false after
    /// `barrierTimeoutMs` (also when it is not connected by then), or when the session that
    /// was asked ends.
    func waitDurable(upTo lsn: UInt64) async -> Bool {
        enum Plan { case done(Bool), wait(UInt64) }
        let id = state.withLock { state -> UInt64 in defer { state.nextWaiterID += 1 }; return state.nextWaiterID }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let plan: Plan = state.withLock { state in
                if state.status.durableLSN >= lsn { return .done(true) }
                guard !state.stopped, state.barrierWaiters.count < Self.maxBarrierWaiters else { return .done(false) }
                state.barrierWaiters.append(BarrierWaiter(id: id, lsn: lsn, framesHeard: state.framesHeard,
                                                          continuation: continuation))
                // No barrier frame: the records up to `lsn` are complete, so the session
                // ships them and the replica acknowledges every batch once it is durable;
                // that ack answers the wait. Not connected yet: the next session asks for
                // it when it starts streaming.
                return .wait(id)
            }
            switch plan {
            case let .done(answer):
                continuation.resume(returning: answer)
            case let .wait(id):
                let timeout = Task {
                    guard (try? await Task.sleep(for: .milliseconds(options.barrierTimeoutMs))) != nil else { return }
                    self.barrierTimedOut(id: id)
                }
                let pending = state.withLock { state -> Bool in
                    guard let index = state.barrierWaiters.firstIndex(where: { $0.id == id }) else { return false }
                    state.barrierWaiters[index].timeout = timeout
                    return true
                }
                if !pending { timeout.cancel() }
            }
        }
    }

    /// A barrier got no answer in time: it fails; and a replica that sent nothing at all
    /// since it was asked is cut off (a partition, a hung server), so its session ends and
    /// it reports disconnected until a new session has caught it up.
    private func barrierTimedOut(id: UInt64) {
        let (waiter, silentChannel) = state.withLock { state -> (BarrierWaiter?, Channel?) in
            guard let index = state.barrierWaiters.firstIndex(where: { $0.id == id }) else { return (nil, nil) }
            let waiter = state.barrierWaiters.remove(at: index)
            guard waiter.framesHeard == state.framesHeard, let channel = state.channel else { return (waiter, nil) }
            state.abortReason = "no answer from the replica for \(options.barrierTimeoutMs) ms"
            return (waiter, channel)
        }
        waiter?.finish(false)
        silentChannel?.close(promise: nil)
    }

    /// The replica said every record up to `durable` is durable (and `received` arrived).
    private func noteProgress(received: UInt64?, durable: UInt64) {
        let (ready, acks, hold): ([BarrierWaiter], [CheckedContinuation<Bool, Never>], LogHold?) = state.withLock { state in
            state.framesHeard &+= 1
            // What is durable there was received there.
            state.status.receivedLSN = max(state.status.receivedLSN, received ?? 0, durable)
            while let first = state.inFlight.first, first.lastLSN <= state.status.receivedLSN {
                state.inFlightBytes -= first.bytes
                state.inFlight.removeFirst()
            }
            state.status.durableLSN = max(state.status.durableLSN, durable)
            if state.status.state == .catchingUp && state.status.receivedLSN >= state.catchUpTarget {
                state.status.state = .inSync
            }
            let covered = state.status.durableLSN
            let ready = state.barrierWaiters.filter { $0.lsn <= covered }
            state.barrierWaiters.removeAll { $0.lsn <= covered }
            defer { state.ackWaiters.removeAll() }
            return (ready, state.ackWaiters, state.hold)
        }
        if let hold, let broken = volume.advance(hold, to: durable + 1) {
            options.logger.warning("replica's log hold broke", metadata: ["replica": "\(address)", "reason": "\(broken)"])
        }
        for waiter in ready { waiter.finish(true) }
        for waiter in acks { waiter.resume(returning: false) }
    }

    // MARK: - Sessions

    private func run() async {
        var backoffMs = options.reconnectMinMs
        // Bounded by the stop: every turn either runs a session or sleeps.
        while !state.withLock({ $0.stopped }) && !Task.isCancelled {
            do {
                try await session()
                backoffMs = options.reconnectMinMs
            } catch {
                let message = "\(error)"
                state.withLock { $0.status.lastError = message }
                options.logger.info("replica session ended", metadata: ["replica": "\(address)", "error": "\(message)"])
            }
            endSession(error: nil)
            if state.withLock({ $0.stopped }) { break }
            try? await Task.sleep(for: .milliseconds(backoffMs))
            backoffMs = min(options.reconnectMaxMs, backoffMs * 2)
        }
    }

    private func endSession(error: String?) {
        let (barriers, acks) = state.withLock { state in
            state.connected = false
            state.outbound = nil
            state.channel = nil
            state.status.state = .disconnected
            if let error { state.status.lastError = error }
            state.inFlight.removeAll()
            state.inFlightBytes = 0
            defer {
                state.barrierWaiters.removeAll()
                state.ackWaiters.removeAll()
            }
            return (state.barrierWaiters, state.ackWaiters)
        }
        for waiter in barriers { waiter.finish(false) }
        for waiter in acks { waiter.resume(returning: true) }
    }

    private struct SessionEnded: Error, CustomStringConvertible {
        let description: String
    }

    private func session() async throws {
        var generator = SystemRandomNumberGenerator()
        let positions = volume.logPositions
        let dialer = DialerHandshake(authentication: options.authentication, volumeName: volumeName,
                                     volumeUUID: volume.uuid, role: .primary, epoch: volume.epoch,
                                     committedLSN: positions.committedLSN, using: &generator)
        let limits = options.limits
        let liveness = options.liveness
        let connection = try await ClientBootstrap(group: group)
            .connectTimeout(.milliseconds(Int64(options.connectTimeoutMs)))
            .connect(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Acks are noted on the event loop (they only ever raise what the replica
                    // confirmed; the handshake comes first, and the replica acks only records,
                    // which this session ships after the decision).
                    try ReplicationFraming.makeConnection(channel, side: .dialer(dialer), limits: limits,
                                                          liveness: liveness, onAck: { ack in
                        self.noteProgress(received: ack.receivedLSN, durable: ack.durableLSN)
                    })
                }
            }
        try await connection.executeThenClose { inbound, outbound in
            var messages = inbound.makeAsyncIterator()
            guard case let .established(event)? = try await messages.next() else {
                throw SessionEnded(description: "the connection closed during the handshake")
            }
            guard case let .dialerEstablished(ack) = event else {
                if case let .refusedByListener(refusal) = event {
                    if refusal.status == .staleEpoch && refusal.epoch > volume.epoch {
                        onNewerEpoch(refusal.epoch, "replica \(address) is at epoch \(refusal.epoch)")
                    }
                    throw SessionEnded(description: "refused: \(refusal.status)")
                }
                throw SessionEnded(description: "unexpected handshake event")
            }
            if ack.epoch > volume.epoch {
                onNewerEpoch(ack.epoch, "replica \(address) is at epoch \(ack.epoch)")
                throw SessionEnded(description: "the replica has a newer epoch")
            }
            // Hold from the checkpoint first, so nothing the decision picks is recycled meanwhile.
            let hold = volume.holdLog(from: volume.logPositions.checkpointLSN + 1)
            let previous = state.withLock { state -> LogHold? in defer { state.hold = hold }; return state.hold }
            if let previous { volume.release(previous) }
            let decision = try decide(ack)
            try await outbound.write(.decision(decision))
            state.withLock { state in
                state.connected = true
                state.outbound = outbound
                state.channel = connection.channel
                state.abortReason = nil
                state.status.durableLSN = decision.mode == .rebuild ? 0 : decision.fromLSN - 1
                state.status.receivedLSN = state.status.durableLSN
                state.catchUpTarget = volume.logPositions.completedLSN
                state.status.state = decision.mode == .rebuild ? .rebuilding
                    : state.status.receivedLSN >= state.catchUpTarget ? .inSync : .catchingUp
            }
            volume.advance(hold, to: decision.fromLSN)
            if decision.mode == .rebuild {
                try await sendImage(cut: decision.fromLSN - 1, outbound: outbound, messages: &messages)
                state.withLock { state in
                    state.catchUpTarget = volume.logPositions.completedLSN
                    state.status.state = state.status.receivedLSN >= state.catchUpTarget ? .inSync : .catchingUp
                }
            }
            // Flushes that waited for this session.
            if let waiting = state.withLock({ $0.barrierWaiters.map(\.lsn).max() }) {
                try await outbound.write(.barrier(Barrier(requestID: 0, lsn: waiting)))
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await self.ship(from: decision.fromLSN, outbound: outbound) }
                defer {
                    group.cancelAll()
                    // The shipper may wait for acks that will never come (its wait does not
                    // see cancellation): wake it before the group waits for it.
                    releaseShipper()
                }
                do {
                    while let next = try await messages.next() {
                        guard case let .message(message) = next else { continue }
                        state.withLock { $0.framesHeard &+= 1 }
                        try handle(message)
                    }
                } catch let error as SessionEnded {
                    throw error
                } catch {
                    throw SessionEnded(description: state.withLock { $0.abortReason } ?? "\(error)")
                }
                throw SessionEnded(description: state.withLock { $0.abortReason } ?? "the replica closed the connection")
            }
        }
    }

    /// What the replica needs, from what it said in its helloAck.
    private func decide(_ ack: HelloAck) throws -> Decision {
        let positions = volume.logPositions
        let checkpoint = positions.checkpointLSN
        let durable = ack.durableLSN
        let rebuildFrom = positions.completedLSN + 1
        // A replica whose image is incomplete (a rebuild was cut short), or that cannot tell
        // the epoch of its record at D, says so this way.
        if ack.durableRecordEpoch == HelloAck.unknownEpoch { return Decision(mode: .rebuild, fromLSN: rebuildFrom, truncateAfterLSN: nil) }
        if durable < checkpoint { return Decision(mode: .rebuild, fromLSN: rebuildFrom, truncateAfterLSN: nil) }
        // Our record at D identifies our history there, as the replica's epoch identifies its
        // own. At our checkpoint the log no longer holds it: the superblock keeps its epoch.
        let ours: UInt64? = durable == 0 ? 0
            : durable == checkpoint ? volume.checkpointRecordEpoch
            : durable <= positions.lastLSN ? try epoch(at: durable) : nil
        if ours == ack.durableRecordEpoch {
            // The replica's log matches ours up to its durable LSN: records it received
            // beyond that are sent again.
            let truncate = ack.receivedLSN > durable ? durable : nil
            return Decision(mode: durable == positions.completedLSN ? .stream : .catchUp, fromLSN: durable + 1,
                            truncateAfterLSN: truncate)
        }
        // Divergent at our checkpoint (or ours not known there): nothing left to truncate to.
        if durable == checkpoint { return Decision(mode: .rebuild, fromLSN: rebuildFrom, truncateAfterLSN: nil) }
        // Divergent: its records from the first of ours with a later epoch than its last one
        // are from a history we do not have.
        guard let divergence = try firstLSN(withEpochAbove: ack.durableRecordEpoch, after: checkpoint),
              divergence > checkpoint + 1 || checkpoint == 0 else {
            return Decision(mode: .rebuild, fromLSN: rebuildFrom, truncateAfterLSN: nil)
        }
        let keep = min(divergence - 1, durable)
        // The replica wrote back records after `keep` (a former primary's own): its log
        // cannot be cut there.
        if keep < ack.checkpointLSN { return Decision(mode: .rebuild, fromLSN: rebuildFrom, truncateAfterLSN: nil) }
        return Decision(mode: .catchUp, fromLSN: keep + 1, truncateAfterLSN: keep)
    }

    private func epoch(at lsn: UInt64) throws -> UInt64? {
        guard case let .records(records) = try volume.readLog(from: lsn, maxBytes: 1), let first = records.first,
              first.lsn == lsn else { return nil }
        return first.epoch
    }

    /// The first LSN after `checkpoint` whose record has an epoch above `epoch`, if any.
    private func firstLSN(withEpochAbove epoch: UInt64, after checkpoint: UInt64) throws -> UInt64? {
        var next = checkpoint + 1
        // Bounded by the log: every turn moves `next` past the records read.
        while case let .records(records) = try volume.readLog(from: next, maxBytes: 4 << 20), let last = records.last {
            if let found = records.first(where: { $0.epoch > epoch }) { return found.lsn }
            next = last.lsn + 1
        }
        return nil
    }

    private func handle(_ message: ReplicationMessage) throws {
        switch message {
        case let .ack(ack):
            noteProgress(received: ack.receivedLSN, durable: ack.durableLSN)
        case let .barrierReply(reply):
            if reply.status == .staleEpoch {
                onNewerEpoch(volume.epoch + 1, "replica \(address) refused a barrier for a stale epoch")
                throw SessionEnded(description: "stale epoch")
            }
            noteProgress(received: nil, durable: reply.durableLSN)
        case let .epochNotice(notice):
            if notice.epoch > volume.epoch { onNewerEpoch(notice.epoch, notice.reason) }
            throw SessionEnded(description: "epoch notice: \(notice.reason)")
        case let .goodbye(goodbye):
            throw SessionEnded(description: "goodbye: \(goodbye.message)")
        default:
            throw SessionEnded(description: "unexpected \(message.type) from a replica")
        }
    }

    /// Ships completed records from `lsn` on, at most `maxBytesInFlight` unacknowledged.
    private func ship(from lsn: UInt64, outbound: NIOAsyncChannelOutboundWriter<ReplicationMessage>) async throws {
        var next = lsn
        var committedSent: UInt64 = 0
        while !Task.isCancelled {
            // The replica learns the committed LSN within one turn (a batch, or 200 ms idle).
            let committed = volume.logPositions.committedLSN
            if committed > committedSent {
                try await outbound.write(.committed(Committed(lsn: committed)))
                committedSent = committed
            }
            let read = try volume.readLog(from: next, maxBytes: options.maxBatchBytes)
            guard case let .records(records) = read else {
                throw SessionEnded(description: "the log no longer holds LSN \(next): the replica must rebuild")
            }
            guard let last = records.last else {
                _ = await volume.waitForLog(after: next - 1, timeoutMs: 200)
                continue
            }
            let batch = RecordBatch(records: records.map(ShippedRecord.init))
            state.withLock { state in
                state.inFlight.append((last.lsn, batch.encodedBytes))
                state.inFlightBytes += batch.encodedBytes
                state.status.shippedBytes += UInt64(batch.encodedBytes)
            }
            try await outbound.write(.records(batch))
            next = last.lsn + 1
            await waitForWindow()
        }
    }

    /// Ends the shipper's wait for acks: the session is over.
    private func releaseShipper() {
        let waiters = state.withLock { state in
            state.connected = false
            defer { state.ackWaiters.removeAll() }
            return state.ackWaiters
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// Waits while more than `maxBytesInFlight` of shipped records, or `maxFramesInFlight`
    /// frames, are unacknowledged.
    private func waitForWindow() async {
        // Bounded: every turn waits for an ack or the session's end.
        while !Task.isCancelled {
            let ready = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let outcome: Bool? = state.withLock { state in
                    guard state.connected, state.inFlightBytes > options.maxBytesInFlight
                            || state.inFlight.count >= options.maxFramesInFlight else { return true }
                    state.ackWaiters.append(continuation)
                    return nil
                }
                if let outcome { continuation.resume(returning: outcome) }
            }
            if ready { return }
        }
    }

    // MARK: - Rebuild

    /// Segments read ahead of the one being sent during a rebuild (1 MiB each).
    static let rebuildReadAhead = 4

    /// Sends the segments whose digests differ, then the cut, then a barrier at the LSN the
    /// copy ended at: the replica ends its rebuild once that barrier is durable.
    ///
    /// The next range's digests are asked for before this range's segments go out, and up
    /// to `rebuildReadAhead` segments are read (and compared) while earlier ones are sent.
    /// Where the replica's segment reads as zeros, ours is not hashed: it is skipped when
    /// it has no storage (or reads as zeros) and sent otherwise.
    private func sendImage(cut: UInt64, outbound: NIOAsyncChannelOutboundWriter<ReplicationMessage>,
                           messages: inout NIOAsyncChannelInboundStream<ReplicationInbound>.AsyncIterator) async throws {
        let blocksPerSegment = VolumeSegments.blocksPerSegment(volume)
        let segments = VolumeSegments.segmentCount(volume)
        let volume = self.volume
        func range(from first: UInt64) -> SegmentRange {
            let count = UInt32(min(UInt64(VolumeSegments.segmentsPerRequest), segments - first))
            return SegmentRange(firstSegment: first, segmentCount: count, blocksPerSegment: blocksPerSegment)
        }
        var copiedBlocks: UInt64 = 0
        var zeros = VolumeSegments.ZeroDigests()
        var next: SegmentRange? = segments > 0 ? range(from: 0) : nil
        if let next { try await outbound.write(.rebuildDigestRequest(RebuildDigestRequest(range: next))) }
        // Bounded by the segment count: every turn takes one range.
        while let current = next {
            guard case let .message(.rebuildDigestReply(reply))? = try await messages.next(), reply.range == current else {
                throw SessionEnded(description: "the replica did not answer a digest request")
            }
            state.withLock { $0.framesHeard &+= 1 }
            let after = current.firstSegment + UInt64(current.segmentCount)
            next = after < segments ? range(from: after) : nil
            if let next { try await outbound.write(.rebuildDigestRequest(RebuildDigestRequest(range: next))) }
            // What to send of segment `offset` of this range: nil when the replica has it.
            let plans = (0..<Int(current.segmentCount)).map { offset in
                let (lba, blocks) = VolumeSegments.segment(current.firstSegment + UInt64(offset), of: volume,
                                                           blocksPerSegment: blocksPerSegment)
                let replicaZero = reply.digests[offset] == zeros.digest(bytes: blocks * volume.blockSizeBytes)
                return (lba: lba, blocks: blocks, replicaZero: replicaZero, digest: reply.digests[offset])
            }
            let load: @Sendable (Int) async throws -> ByteBuffer? = { offset in
                let plan = plans[offset]
                if plan.replicaZero {
                    if try VolumeSegments.isDeallocated(volume, lba: plan.lba, blockCount: plan.blocks) { return nil }
                    let data = try await VolumeSegments.read(volume, lba: plan.lba, blockCount: plan.blocks)
                    return VolumeSegments.isAllZero(data) ? nil : data
                }
                let data = try await VolumeSegments.read(volume, lba: plan.lba, blockCount: plan.blocks)
                let ours = data.withUnsafeReadableBytes { Array(SHA256.hash(data: $0)) }
                return ours == plan.digest ? nil : data
            }
            var reads = Deque<Task<ByteBuffer?, Error>>()
            var started = 0
            defer { for read in reads { read.cancel() } }
            // Bounded by the range's segments; at most `rebuildReadAhead` reads in flight.
            for offset in 0..<plans.count {
                while started < plans.count && reads.count < Self.rebuildReadAhead {
                    let index = started
                    reads.append(Task { try await load(index) })
                    started += 1
                }
                guard let data = try await reads.removeFirst().value else { continue }
                let plan = plans[offset]
                try await outbound.write(.rebuildChunk(RebuildChunk(offsetBlocks: plan.lba, blockCount: UInt32(plan.blocks),
                                                                    data: data)))
                copiedBlocks += UInt64(plan.blocks)
                state.withLock { $0.status.shippedBytes += UInt64(data.readableBytes) }
            }
        }
        let copyEnd = volume.logPositions.completedLSN
        try await outbound.write(.rebuildDone(RebuildDone(lsnCut: cut)))
        options.logger.info("rebuild image sent", metadata: [
            "replica": "\(address)", "cut": "\(cut)", "copiedBytes": "\(copiedBlocks * UInt64(volume.blockSizeBytes))"])
        try await outbound.write(.barrier(Barrier(requestID: 0, lsn: copyEnd)))
    }
}

