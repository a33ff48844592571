// The io_uring instances the write-back's batches go through, shared by every volume file of
// the process (docs/ENGINE.md, "Threads"), so their number is fixed however many volumes
// are open.
//
// Invariants:
// - A batch holds its ring from its first submission until its last completion is reaped
//   (`PosixVolumeFile.uringBatch` drains before it returns), so a ring never carries the
//   operations of two batches, and its completions always belong to the batch holding it.
// - At most `maxRings` rings exist; a batch that finds all of them held waits for one.

import CURing

final class BatchRingPool: @unchecked Sendable {
    private struct State {
        var idle: [OpaquePointer] = []
        var created = 0
        /// The kernel refused a ring once: batches write with pwrite from then on.
        var refused = false
    }

    /// The pool every volume file of the process uses: one ring per thread that writes
    /// batches at once (the write-back pool), with room for checkpoints run elsewhere.
    static let shared = BatchRingPool(maxRings: max(4, 2 * EngineRuntime.cores))

    let maxRings: Int
    private let state = ConditionLock(State())

    init(maxRings: Int) {
        precondition(maxRings > 0, "a pool needs a ring")
        self.maxRings = maxRings
    }

    /// Runs `body` holding a ring (nil when the kernel refuses io_uring), then gives it back.
    func withRing<R>(_ body: (OpaquePointer?) -> R) -> R {
        let maxRings = maxRings
        let taken: OpaquePointer? = state.withLock(waitingUntil: { !$0.idle.isEmpty || $0.created < maxRings || $0.refused }) { state, _ in
            if state.refused { return nil }
            if let ring = state.idle.popLast() { return ring }
            var error: Int32 = 0
            guard let ring = curing_create(PosixVolumeFile.ringEntries, &error) else {
                state.refused = true
                return nil
            }
            // Batch writes to one file are serialized by the kernel anyway (buffered writes
            // of a regular file are hashed to one worker): two workers per submitting thread.
            _ = curing_limit_workers(ring, PosixVolumeFile.kernelWorkers, PosixVolumeFile.kernelWorkers)
            state.created += 1
            return ring
        }
        guard let ring = taken else { return body(nil) }
        defer {
            state.withLock { $0.idle.append(ring) }
            state.signal()
        }
        return body(ring)
    }

    /// Rings created so far (tests).
    var createdRings: Int { state.withLock { $0.created } }
}
