// A fixed set of threads running the background jobs of many volumes (log-writer rounds,
// write-back passes), so a server's threads do not grow with its volumes.
//
// A job runs one step at a time, never on two threads at once. A step returns what the job
// wants next: run again (it goes to the back of the queue: round-robin, so a busy volume
// cannot keep a quiet volume's flush waiting behind more than one step of each other job),
// sleep until woken, sleep until a deadline, or end.
//
// Invariants:
// - A job is in the ready queue at most once; `wake` on a running job is not lost (the job
//   is queued again when its step returns).
// - The ready queue holds at most the started jobs; the timer list at most one entry
//   per job (a newer deadline replaces the older).
// - `waitUntilFinished` returns only after the job's last step returned `.finished`; the
//   pool then holds no reference to the job.

import Synchronization

/// What a job wants after a step.
enum JobNext: Equatable {
    /// More work now: queued again, behind the others.
    case again
    /// Nothing to do until `JobPool.wake`.
    case idle
    /// Nothing to do until `wake` or the monotonic clock reaches this time.
    case at(deadlineNs: UInt64)
    /// The job ended; it is never run again.
    case finished
}

/// A background job of one volume.
final class PoolJob: @unchecked Sendable {
    enum Phase { case idle, queued, running, finished }

    let name: String
    /// Set once by `bind`, before the job starts.
    private(set) var step: @Sendable () -> JobNext = { .finished }
    // Guarded by the pool's lock.
    fileprivate var phase = Phase.idle
    fileprivate var wokenWhileRunning = false
    fileprivate var deadlineNs: UInt64?

    init(name: String) {
        self.name = name
    }

    /// The job's step; set before `JobPool.start`.
    func bind(_ step: @escaping @Sendable () -> JobNext) {
        precondition(phase == .idle, "a job is bound before it starts")
        self.step = step
    }
}

/// Threads that run `PoolJob`s.
final class JobPool: Sendable {
    private struct State {
        var ready: [PoolJob] = []
        var readyHead = 0
        /// Jobs sleeping until a deadline (unsorted: at most one entry per job, scanned only
        /// once the earliest deadline passed).
        var timed: [ObjectIdentifier: PoolJob] = [:]
        /// No deadline in `timed` is earlier (a lower bound after removals).
        var earliestDeadlineNs = UInt64.max
        var stopping = false

        mutating func enqueue(_ job: PoolJob) {
            job.phase = .queued
            job.deadlineNs = nil
            timed[ObjectIdentifier(job)] = nil
            ready.append(job)
        }

        mutating func dequeue() -> PoolJob? {
            guard readyHead < ready.count else { return nil }
            let job = ready[readyHead]
            readyHead += 1
            if readyHead == ready.count {
                ready.removeAll(keepingCapacity: true)
                readyHead = 0
            }
            return job
        }

        mutating func sleep(_ job: PoolJob, untilNs deadline: UInt64) {
            job.phase = .idle
            job.deadlineNs = deadline
            timed[ObjectIdentifier(job)] = job
            earliestDeadlineNs = min(earliestDeadlineNs, deadline)
        }

        /// Moves jobs whose deadline passed to the ready queue; returns the earliest deadline left.
        mutating func fireTimers(nowNs: UInt64) -> UInt64? {
            guard nowNs >= earliestDeadlineNs else { return earliestDeadlineNs == .max ? nil : earliestDeadlineNs }
            var earliest = UInt64.max
            for (id, job) in timed {
                guard let deadline = job.deadlineNs else { timed[id] = nil; continue }
                if deadline <= nowNs {
                    enqueue(job)
                } else {
                    earliest = min(earliest, deadline)
                }
            }
            earliestDeadlineNs = earliest
            return earliest == .max ? nil : earliest
        }
    }

    let name: String
    /// Its condition has only worker threads waiting (interchangeable: a wake needs one).
    private let state: ConditionLock<State>
    /// Counts jobs that finished; `waitUntilFinished` waits on its condition.
    private let finished: ConditionLock<UInt64>
    private let threads: Mutex<[WorkerThread]>

    init(name: String, threads threadCount: Int) {
        precondition(threadCount >= 1, "a pool needs a thread")
        self.name = name
        state = ConditionLock(State())
        finished = ConditionLock(0)
        threads = Mutex([])
        let workers = (0..<threadCount).map { index in
            WorkerThread(name: "\(name)-\(index)") { [self] in runWorker() }
        }
        threads.withLock { $0 = workers }
    }

    /// Stops the threads once they are idle (for pools that are not the process's shared one).
    func shutdown() {
        state.withLock { $0.stopping = true }
        state.broadcast()  // every worker must see the stop
        let workers = threads.withLock { workers in
            defer { workers.removeAll() }
            return workers
        }
        for worker in workers { worker.join() }
    }

    /// Adds a job; it runs a first step at once (it may have work from its start).
    func start(_ job: PoolJob) {
        state.withLock { state in
            precondition(job.phase == .idle, "a job starts once")
            state.enqueue(job)
        }
        state.signal()
    }

    /// Runs a finished job again (a volume resuming its jobs after a pause); it runs a first
    /// step at once.
    func restart(_ job: PoolJob) {
        state.withLock { state in
            precondition(job.phase == .finished, "only a finished job restarts")
            job.phase = .idle
            state.enqueue(job)
        }
        state.signal()
    }

    /// The job has work: runs it soon (at once if it is idle or sleeping until a deadline).
    func wake(_ job: PoolJob) {
        let queued = state.withLock { state -> Bool in
            switch job.phase {
            case .idle:
                state.enqueue(job)
                return true
            case .running:
                job.wokenWhileRunning = true
                return false
            case .queued, .finished:
                return false
            }
        }
        if queued { state.signal() }
    }

    /// Runs an idle job no later than `deadlineNs` (unless it is woken before).
    func wake(_ job: PoolJob, notLaterThanNs deadlineNs: UInt64) {
        let changed = state.withLock { state -> Bool in
            guard job.phase == .idle, deadlineNs < (job.deadlineNs ?? .max) else { return false }
            state.sleep(job, untilNs: deadlineNs)
            return true
        }
        if changed { state.signal() }  // one sleeper recomputes its timeout
    }

    /// Blocks until `job` has returned `.finished` (call after asking it to stop).
    func waitUntilFinished(_ job: PoolJob) {
        // Bounded: each turn waits for one more job of the pool to finish.
        while true {
            let seen = finished.withLock { $0 }
            if state.withLock({ _ in job.phase == .finished }) { return }
            finished.withLock(waitingUntil: { $0 != seen }) { _, _ in }
        }
    }

    private func runWorker() {
        // Bounded per turn: one step of one job, or one wait.
        while true {
            let (job, stop, waitNs): (PoolJob?, Bool, UInt64?) = state.withLock { state in
                let now = monotonicNowNs()
                let earliest = state.fireTimers(nowNs: now)
                if let job = state.dequeue() {
                    job.phase = .running
                    return (job, false, nil)
                }
                return (nil, state.stopping, earliest.map { $0 - now })
            }
            if stop { return }
            guard let job else {
                // Until a job is queued, the earliest deadline passes, or the pool stops.
                state.withLock(waitingUntil: { $0.readyHead < $0.ready.count || $0.stopping }, timeoutNs: waitNs) { _, _ in }
                continue
            }
            let next = job.step()
            state.withLock { state in
                let woken = job.wokenWhileRunning
                job.wokenWhileRunning = false
                switch next {
                case .finished:
                    job.phase = .finished
                case .again:
                    state.enqueue(job)
                case .idle where woken, .at where woken:
                    state.enqueue(job)
                case .idle:
                    job.phase = .idle
                case let .at(deadline):
                    state.sleep(job, untilNs: deadline)
                }
            }
            if next == .finished {
                finished.withLock { $0 &+= 1 }
                finished.broadcast()
            }
            // Another worker takes what this one leaves queued (this one takes one itself
            // next, and sleeps for this job's deadline when nothing is queued).
            let another = state.withLock { $0.ready.count - $0.readyHead > 1 }
            if another { state.signal() }
        }
    }
}
