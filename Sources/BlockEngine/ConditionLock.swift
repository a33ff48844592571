// A mutex with one condition variable guarding a value, and a dedicated worker thread.
// The engine's background work (group commit, write-back) runs on its own threads so it
// never blocks Swift's cooperative pool with fdatasync; callers wait on continuations.

import CBlockSupport
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A value protected by a pthread mutex, with a condition variable on the same mutex.
final class ConditionLock<State>: @unchecked Sendable {
    private var state: State
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init(_ initial: State) {
        state = initial
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    @inline(__always)
    func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }

    /// Waits until `ready(state)` holds or `timeoutNs` passes (nil: no limit), then runs
    /// `body` under the lock. `body` learns whether `ready` held.
    func withLock<R, E: Error>(waitingUntil ready: (State) -> Bool, timeoutNs: UInt64? = nil,
                               _ body: (inout State, Bool) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let deadline = timeoutNs.map { monotonicNowNs() &+ $0 }
        while !ready(state) {
            if let deadline {
                let now = monotonicNowNs()
                if now >= deadline { break }
                var spec = timespec(tv_sec: Int(deadline / 1_000_000_000),
                                    tv_nsec: Int(deadline % 1_000_000_000))
                pthread_cond_timedwait(condition, mutex, &spec)
            } else {
                pthread_cond_wait(condition, mutex)
            }
        }
        return try body(&state, ready(state))
    }

    func broadcast() { pthread_cond_broadcast(condition) }

    /// Wakes one waiter: only for conditions whose waiters are interchangeable.
    func signal() { pthread_cond_signal(condition) }
}

/// Nanoseconds on the monotonic clock.
@inline(__always)
func monotonicNowNs() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_MONOTONIC, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// A joinable OS thread running one closure.
final class WorkerThread: @unchecked Sendable {
    private var thread = pthread_t()

    init(name: String, _ body: @escaping @Sendable () -> Void) {
        final class Box {
            let name: String
            let body: @Sendable () -> Void
            init(_ name: String, _ body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
        }
        let context = Unmanaged.passRetained(Box(name, body)).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            cblock_set_thread_name(box.name)
            box.body()
            return nil
        }, context)
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }

    func join() { pthread_join(thread, nil) }
}
