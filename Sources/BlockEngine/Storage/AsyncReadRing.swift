// Reads that would block (data not in the page cache) go through one io_uring shared by all
// callers, so a queue depth of 32 reaches the device as 32 concurrent reads instead of as many
// as there are threads. Submissions happen under one lock; a dedicated thread reaps
// completions and resumes the waiting callers.
//
// Invariants:
// - The submission queue is touched only under `state`'s lock; the completion queue only by
//   the reaper thread.
// - In-flight pieces never exceed `maxInFlight` (callers beyond it read synchronously), so the
//   completion queue cannot overflow.
// - Every request is resumed exactly once: when its last piece completes, or at shutdown.

import CURing
#if canImport(Glibc)
import Glibc
#endif

final class AsyncReadRing: @unchecked Sendable {
    private struct Piece {
        let requestID: UInt64
        var buffer: UnsafeMutableRawBufferPointer
        var offset: UInt64
    }

    private struct Request {
        var remaining: Int
        var failure: BlockError?
        let continuation: CheckedContinuation<Result<Void, BlockError>?, Never>
    }

    private struct State {
        var pieces: [UInt64: Piece] = [:]
        var requests: [UInt64: Request] = [:]
        var nextTag: UInt64 = 1
        var stopped = false
    }

    static let entries: UInt32 = 256
    static let maxInFlight = 192
    private static let stopTag = UInt64.max

    private let ring: OpaquePointer
    private let descriptor: Int32
    private let state = ConditionLock(State())
    private var reaper: WorkerThread?

    /// Nil when the kernel refuses an io_uring.
    init?(descriptor: Int32) {
        var error: Int32 = 0
        guard let ring = curing_create(Self.entries, &error) else { return nil }
        self.ring = ring
        self.descriptor = descriptor
        reaper = WorkerThread(name: "blk-read") { [self] in reap() }
    }

    /// Reads every transfer; returns nil (having read nothing) when the ring is at its
    /// in-flight limit or stopped, so the caller reads synchronously instead.
    func read(_ transfers: [IOTransfer]) async -> Result<Void, BlockError>? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, BlockError>?, Never>) in
            let accepted: Bool = state.withLock { state in
                guard !state.stopped, state.pieces.count + transfers.count <= Self.maxInFlight else { return false }
                let requestID = state.nextTag
                state.nextTag += 1
                state.requests[requestID] = Request(remaining: transfers.count, failure: nil,
                                                    continuation: continuation)
                for transfer in transfers {
                    submit(Piece(requestID: requestID, buffer: transfer.buffer, offset: transfer.offset), in: &state)
                }
                _ = curing_submit(ring)
                return true
            }
            if !accepted { continuation.resume(returning: nil) }
        }
    }

    /// Queues one piece (caller holds the lock).
    private func submit(_ piece: Piece, in state: inout State) {
        let tag = state.nextTag
        state.nextTag += 1
        state.pieces[tag] = piece
        // The queue has room: in-flight pieces are bounded below the ring size.
        var rc = curing_prep_read(ring, descriptor, piece.buffer.baseAddress, UInt32(piece.buffer.count), piece.offset, tag)
        if rc != 0 {
            _ = curing_submit(ring)
            rc = curing_prep_read(ring, descriptor, piece.buffer.baseAddress, UInt32(piece.buffer.count), piece.offset, tag)
        }
        precondition(rc == 0, "io_uring submission queue full despite the in-flight bound")
    }

    private func reap() {
        var tag: UInt64 = 0
        var result: Int32 = 0
        var stopRequested = false
        // Ends after the stop request once no read is in flight (buffers belong to callers).
        while true {
            let rc = curing_wait_one(ring, &tag, &result)
            if rc < 0 {
                if rc == -EINTR { continue }
                failAll(.io(operation: "io_uring wait", errno: -rc))
                return
            }
            if tag == Self.stopTag {
                stopRequested = true
                if state.withLock({ $0.pieces.isEmpty }) { return }
                continue
            }
            let finished: Request? = state.withLock { state in
                guard var piece = state.pieces.removeValue(forKey: tag),
                      var request = state.requests[piece.requestID] else { return nil }
                if result > 0 && Int(result) < piece.buffer.count {
                    // Short read: ask for the rest.
                    piece.buffer = UnsafeMutableRawBufferPointer(rebasing: piece.buffer[Int(result)...])
                    piece.offset += UInt64(result)
                    submit(piece, in: &state)
                    _ = curing_submit(ring)
                    return nil
                }
                if result < 0 {
                    request.failure = request.failure ?? .io(operation: "io_uring read", errno: -result)
                } else if result == 0 {
                    request.failure = request.failure
                        ?? .truncated(expectedBytes: piece.offset + UInt64(piece.buffer.count), actualBytes: piece.offset)
                }
                request.remaining -= 1
                if request.remaining == 0 {
                    state.requests[piece.requestID] = nil
                    return request
                }
                state.requests[piece.requestID] = request
                return nil
            }
            if let finished {
                finished.continuation.resume(returning: finished.failure.map { .failure($0) } ?? .success(()))
            }
            if stopRequested && state.withLock({ $0.pieces.isEmpty }) { return }
        }
    }

    private func failAll(_ error: BlockError) {
        let waiting = state.withLock { state in
            state.stopped = true
            defer { state.requests.removeAll() }
            return Array(state.requests.values)
        }
        for request in waiting { request.continuation.resume(returning: .failure(error)) }
    }

    /// Stops the reaper after the reads in flight; later reads are refused (read synchronously).
    func shutdown() {
        state.withLock { state in
            state.stopped = true
            if curing_prep_nop(ring, Self.stopTag) != 0 {
                _ = curing_submit(ring)
                _ = curing_prep_nop(ring, Self.stopTag)
            }
            _ = curing_submit(ring)
        }
        reaper?.join()
        reaper = nil
        curing_destroy(ring)
    }
}
