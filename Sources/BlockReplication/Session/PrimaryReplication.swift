// A primary volume's replication: one ReplicaLink per replica, and the barrier the engine
// asks on every flush in a strict mode (docs/REPLICATION.md, "Durability modes").
//
// Invariants:
// - The barrier counts only replicas that confirmed the LSN durable; the engine's
//   BarrierPolicy compares that count with the volume's replica factor, never with the
//   number of links (so a missing replica fails a strict flush instead of being ignored).
// - A link that learns of a newer epoch fences the volume once; the links keep running
//   (a fenced volume ships nothing new and its flushes fail in the engine).
// - The volume's recovered log hold is released only once every link holds the log itself.

import BlockEngine
import NIOCore
import Synchronization

public final class PrimaryReplication: ReplicaBarrier, Sendable {
    public let volumeName: String
    let volume: Volume
    private let links: [ReplicaLink]

    /// Fences the volume the first time a link learns of a newer epoch.
    private final class FenceOnce: Sendable {
        let done = Atomic<Bool>(false)
    }

    /// Starts shipping `volume`'s log to `replicas` and attaches the barrier to the volume.
    public init(volume: Volume, volumeName: String, replicas: [ReplicaAddress], options: ReplicationOptions,
                group: EventLoopGroup) {
        self.volume = volume
        self.volumeName = volumeName
        var made: [ReplicaLink] = []
        let fencing = FenceOnce()
        for address in replicas {
            made.append(ReplicaLink(volume: volume, volumeName: volumeName, address: address, options: options,
                                    group: group, onNewerEpoch: { epoch, reason in
                guard fencing.done.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
                else { return }
                options.logger.warning("newer epoch seen: fencing", metadata: [
                    "volume": "\(volumeName)", "epoch": "\(epoch)", "reason": "\(reason)"])
                Task { try? await volume.fence() }
            }))
        }
        links = made
        volume.attachBarrier(self)
        for link in links { link.start() }
        if let recovered = volume.recoveredLogHold {
            Task { [links] in
                // Until every link holds the log itself (or the hold's own bound ends it).
                while !links.allSatisfy(\.holdsLog) && volume.logHoldBroken(recovered) == nil {
                    try? await Task.sleep(for: .milliseconds(20))
                }
                volume.release(recovered)
            }
        }
    }

    public var replicaStatus: [ReplicaStatus] { links.map(\.status) }

    /// Asks every replica in parallel; returns how many confirmed every record up to `lsn`,
    /// as soon as `required` did or every link answered. A link still waiting then ends on
    /// its own (an answer or `barrierTimeoutMs`), so a quorum flush never waits for a
    /// replica that is gone.
    public func barrier(upTo lsn: UInt64, required: Int) async -> ReplicaBarrierResult {
        guard !links.isEmpty else { return ReplicaBarrierResult(durableReplicas: 0) }
        if links.count == 1, let link = links.first {
            // One replica (RF 2): asked in this task, without a child task.
            let durable = await link.waitDurable(upTo: lsn)
            return ReplicaBarrierResult(durableReplicas: durable ? 1 : 0,
                                        failures: durable ? [] : ["\(link.address) did not confirm LSN \(lsn)"])
        }
        // Holds at most one answer per link.
        let (answers, sink) = AsyncStream.makeStream(of: (address: String, durable: Bool).self)
        for link in links {
            Task { sink.yield((link.address.description, await link.waitDurable(upTo: lsn))) }
        }
        var durable = 0
        var failures: [String] = []
        var answered = 0
        for await answer in answers {
            answered += 1
            if answer.durable { durable += 1 } else { failures.append("\(answer.address) did not confirm LSN \(lsn)") }
            if durable >= required || answered == links.count { break }
        }
        sink.finish()
        return ReplicaBarrierResult(durableReplicas: durable, failures: failures)
    }

    /// Stops shipping and detaches the barrier (a strict flush then fails until another is attached).
    public func stop() async {
        volume.attachBarrier(nil)
        for link in links { await link.stop() }
    }
}
