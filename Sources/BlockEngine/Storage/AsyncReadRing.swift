// Reads that would block (data not in the page cache) go through one io_uring shared by all
// callers and every volume of the process (`shared`), so a queue depth of 32 reaches the
// device as 32 concurrent reads instead of as many as there are threads, and a server's
// threads do not grow with its volumes. Submissions happen under one lock; one thread reaps
// completions and resumes the waiting callers. Each read names its file descriptor; a file
// that closes first waits until none of its reads is in flight (`waitUntilIdle`).
//
// A caller's buffer belongs to the kernel from the moment its read is queued until its
// completion is reaped, so a caller is never resumed in between:
// - a submit that fails (or takes only part of the queue) leaves entries the kernel may take
//   at any later submit; they are turned into no-ops at once (curing_drop_unsubmitted) and
//   their pieces read synchronously on the submitting thread;
// - a failed wait for completions is retried (the completions still come); the reads in
//   flight keep their callers suspended, and the ring takes no new reads.
//
// Invariants:
// - The submission queue is touched only under `state`'s lock; the completion queue only by
//   the reaper thread.
// - When the lock is released, the kernel has taken every queued read, or it became a no-op.
// - In-flight pieces never exceed `maxInFlight` (callers beyond it read synchronously), so the
//   completion queue cannot overflow (no-ops included: at most `entries` of them wait).
// - Every request is resumed exactly once: by whoever finishes its last piece (the reaper, or
//   the thread that read a dropped piece synchronously).

import CURing
#if canImport(Glibc)
import Glibc
#endif

final class AsyncReadRing: @unchecked Sendable {
    /// The io_uring calls that can fail; tests substitute failing ones.
    struct KernelCalls: Sendable {
        var submit: @Sendable (OpaquePointer) -> Int32
        var waitOne: @Sendable (OpaquePointer, inout UInt64, inout Int32) -> Int32

        static let live = KernelCalls(submit: { curing_submit($0) },
                                      waitOne: { ring, tag, result in curing_wait_one(ring, &tag, &result) })
    }

    private struct Piece {
        let requestID: UInt64
        let descriptor: Int32
        var buffer: UnsafeMutableRawBufferPointer
        var offset: UInt64
    }

    private struct Request {
        var remaining: Int
        var failure: BlockError?
        let continuation: CheckedContinuation<Result<Void, BlockError>?, Never>

        func resume() { continuation.resume(returning: failure.map { .failure($0) } ?? .success(())) }
    }

    private struct State {
        var pieces: [UInt64: Piece] = [:]
        var requests: [UInt64: Request] = [:]
        var nextTag: UInt64 = 1
        /// New reads are refused (the caller reads synchronously).
        var refusing = false
        var stopRequested = false
    }

    static let entries: UInt32 = 256
    static let maxInFlight = 192
    private static let stopTag = UInt64.max
    /// The tag of a queued read turned into a no-op: its completion means nothing.
    private static let droppedTag = UInt64.max - 1

    private let ring: OpaquePointer
    private let calls: KernelCalls
    private let state = ConditionLock(State())
    private var reaper: WorkerThread?

    /// The ring every volume file of the process reads through; nil when the kernel refuses
    /// an io_uring (files then read synchronously).
    static let shared: AsyncReadRing? = AsyncReadRing()

    /// Nil when the kernel refuses an io_uring.
    init?(calls: KernelCalls = .live) {
        var error: Int32 = 0
        guard let ring = curing_create(Self.entries, &error) else { return nil }
        // Uncached buffered reads block in kernel workers: allow a few per core (the kernel's
        // own default), stated here so the thread count is ours, not the kernel version's.
        let workers = UInt32(4 * EngineRuntime.cores)
        _ = curing_limit_workers(ring, min(workers, Self.entries), 2)
        self.ring = ring
        self.calls = calls
        reaper = WorkerThread(name: "blk-read") { [self] in reap() }
    }

    /// Reads every transfer; returns nil (having read nothing) when the ring is at its
    /// in-flight limit or stopped, so the caller reads synchronously instead.
    func read(_ transfers: [IOTransfer], descriptor: Int32) async -> Result<Void, BlockError>? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, BlockError>?, Never>) in
            let dropped: [Piece]? = state.withLock { state in
                guard !state.refusing, state.pieces.count + transfers.count <= Self.maxInFlight else { return nil }
                let requestID = state.nextTag
                state.nextTag += 1
                state.requests[requestID] = Request(remaining: transfers.count, failure: nil,
                                                    continuation: continuation)
                return queue(transfers.map { Piece(requestID: requestID, descriptor: descriptor, buffer: $0.buffer,
                                                   offset: $0.offset) },
                             in: &state)
            }
            guard let dropped else {
                continuation.resume(returning: nil)
                return
            }
            readSynchronously(dropped)
        }
    }

    /// Queues `pieces` and submits (caller holds the lock). Returns the pieces the kernel did
    /// not take: their entries are no-ops now, and the caller reads them synchronously.
    private func queue(_ pieces: [Piece], in state: inout State) -> [Piece] {
        var notQueued: [Piece] = []
        for piece in pieces {
            let tag = state.nextTag
            state.nextTag += 1
            var rc = prepare(piece, tag: tag)
            if rc != 0 {
                // The queue is full of no-ops left by failed submits: submit them first.
                _ = calls.submit(ring)
                rc = prepare(piece, tag: tag)
            }
            if rc == 0 { state.pieces[tag] = piece } else { notQueued.append(piece) }
        }
        _ = calls.submit(ring)
        return notQueued + dropUnsubmitted(in: &state)
    }

    private func prepare(_ piece: Piece, tag: UInt64) -> Int32 {
        curing_prep_read(ring, piece.descriptor, piece.buffer.baseAddress, UInt32(piece.buffer.count), piece.offset, tag)
    }

    /// Turns what the kernel did not take into no-ops and returns their pieces (lock held).
    private func dropUnsubmitted(in state: inout State) -> [Piece] {
        guard curing_sq_pending(ring) > 0 else { return [] }
        var tags = [UInt64](repeating: 0, count: Int(Self.entries))
        let count = Int(curing_drop_unsubmitted(ring, Self.droppedTag, &tags, Self.entries))
        return tags[0..<count].compactMap { state.pieces.removeValue(forKey: $0) }
    }

    /// Reads pieces the kernel never took on this thread, then finishes them.
    private func readSynchronously(_ pieces: [Piece]) {
        guard !pieces.isEmpty else { return }
        let outcomes = pieces.map { ($0, readFully($0)) }
        let finished = state.withLock { state in
            outcomes.compactMap { piece, failure in finish(piece, failure: failure, in: &state) }
        }
        state.broadcast()
        for request in finished { request.resume() }
    }

    private func readFully(_ piece: Piece) -> BlockError? {
        var done = 0
        while done < piece.buffer.count {
            let count = pread(piece.descriptor, piece.buffer.baseAddress! + done, piece.buffer.count - done,
                              off_t(piece.offset) + off_t(done))
            if count < 0 && errno == EINTR { continue }
            if count < 0 { return .io(operation: "pread at \(piece.offset)", errno: errno) }
            if count == 0 {
                return .truncated(expectedBytes: piece.offset + UInt64(piece.buffer.count),
                                  actualBytes: piece.offset + UInt64(done))
            }
            done += count
        }
        return nil
    }

    /// Counts one piece of its request as done; returns the request when it was the last one
    /// (lock held; the caller resumes it after unlocking).
    private func finish(_ piece: Piece, failure: BlockError?, in state: inout State) -> Request? {
        guard var request = state.requests[piece.requestID] else { return nil }
        if request.failure == nil { request.failure = failure }
        request.remaining -= 1
        if request.remaining == 0 {
            state.requests[piece.requestID] = nil
            return request
        }
        state.requests[piece.requestID] = request
        return nil
    }

    private func reap() {
        var tag: UInt64 = 0
        var result: Int32 = 0
        var backoffMicros: UInt32 = 0
        // Ends after the stop request once no read is in flight (buffers belong to callers).
        while true {
            if calls.waitOne(ring, &tag, &result) < 0 {
                // The kernel may still complete (and write into) every read in flight, so
                // nobody is resumed now: take no new reads, and wait again a little later.
                if state.withLock({ state in state.refusing = true; return state.stopRequested && state.pieces.isEmpty }) {
                    return
                }
                backoffMicros = min(max(backoffMicros * 2, 1000), 100_000)
                usleep(backoffMicros)
                continue
            }
            backoffMicros = 0
            if tag != Self.stopTag && tag != Self.droppedTag { complete(tag: tag, result: result) }
            if state.withLock({ $0.stopRequested && $0.pieces.isEmpty }) { return }
        }
    }

    /// Handles the completion of the read tagged `tag`.
    private func complete(tag: UInt64, result: Int32) {
        var dropped: [Piece] = []
        let finished: Request? = state.withLock { state in
            guard var piece = state.pieces.removeValue(forKey: tag) else { return nil }
            if result > 0 && Int(result) < piece.buffer.count {
                // Short read: ask for the rest.
                piece.buffer = UnsafeMutableRawBufferPointer(rebasing: piece.buffer[Int(result)...])
                piece.offset += UInt64(result)
                dropped = queue([piece], in: &state)
                return nil
            }
            let failure: BlockError? = result < 0 ? .io(operation: "io_uring read", errno: -result)
                : result == 0 ? .truncated(expectedBytes: piece.offset + UInt64(piece.buffer.count),
                                           actualBytes: piece.offset) : nil
            return finish(piece, failure: failure, in: &state)
        }
        state.broadcast()
        finished?.resume()
        readSynchronously(dropped)
    }

    /// Blocks until no read of `descriptor` is in flight (a file about to close its
    /// descriptor: the kernel must not read into a reused one). Bounded by the reads in
    /// flight, which complete.
    func waitUntilIdle(descriptor: Int32) {
        state.withLock(waitingUntil: { state in !state.pieces.values.contains { $0.descriptor == descriptor } }) { _, _ in }
    }

    /// Stops the reaper after the reads in flight; later reads are refused (read synchronously).
    func shutdown() {
        // The stop no-op wakes a reaper that waits with nothing in flight. A submit that
        // fails is retried; if it never succeeds, the reaper stays (it ends after a later
        // completion) rather than this call waiting forever, and the ring stays allocated.
        var queued = false, woken = false
        for attempt in 0..<100 where !woken {
            if attempt > 0 { usleep(1000) }
            woken = state.withLock { state in
                state.refusing = true
                state.stopRequested = true
                if !queued {
                    // A full queue holds no-ops left by failed submits: submit them first.
                    if curing_prep_nop(ring, Self.stopTag) != 0 { _ = calls.submit(ring) } else { queued = true }
                    if !queued { queued = curing_prep_nop(ring, Self.stopTag) == 0 }
                }
                _ = calls.submit(ring)
                return queued && curing_sq_pending(ring) == 0
            }
        }
        guard woken else { return }
        reaper?.join()
        reaper = nil
        curing_destroy(ring)
    }
}
