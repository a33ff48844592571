// The shared runtime: jobs of many volumes on a fixed set of threads, round-robin, and a
// process whose threads do not grow with the number of open volumes.

import Foundation
import Synchronization
import Testing
@testable import BlockEngine

@Suite("Runtime: shared pools")
struct RuntimeTests {
    @Test("a job woken while others are busy runs before any of them runs a second step")
    func roundRobin() {
        let pool = JobPool(name: "test-pool", threads: 1)
        defer { pool.shutdown() }
        let order = Mutex<[String]>([])
        let stop = Atomic<Bool>(false)
        var busy: [PoolJob] = []
        for index in 0..<4 {
            let job = PoolJob(name: "busy\(index)")
            job.bind {
                order.withLock { $0.append("busy\(index)") }
                usleep(1000)
                return stop.load(ordering: .relaxed) ? .finished : .again
            }
            busy.append(job)
        }
        let quiet = PoolJob(name: "quiet")
        quiet.bind {
            order.withLock { $0.append("quiet") }
            return .finished
        }
        for job in busy { pool.start(job) }
        // Let the busy jobs run a few turns, then wake the quiet one.
        while order.withLock({ $0.count }) < 8 { usleep(500) }
        let before = order.withLock { $0.count }
        pool.start(quiet)
        pool.waitUntilFinished(quiet)
        stop.store(true, ordering: .relaxed)
        for job in busy { pool.waitUntilFinished(job) }
        let steps = order.withLock { $0 }
        let quietAt = try! #require(steps.firstIndex(of: "quiet"))
        // At most one step of each busy job (and the one running) came between.
        #expect(quietAt - before <= busy.count + 1, "quiet ran at \(quietAt), woken after \(before): \(steps)")
    }

    @Test("a job sleeping until a deadline runs then, and a wake before it runs it at once")
    func deadlines() {
        let pool = JobPool(name: "test-timer", threads: 2)
        defer { pool.shutdown() }
        let runs = Atomic<Int>(0)
        let job = PoolJob(name: "timed")
        let startNs = monotonicNowNs()
        job.bind {
            let count = runs.add(1, ordering: .relaxed).newValue
            return count == 1 ? .at(deadlineNs: startNs + 20_000_000) : count == 2 ? .idle : .finished
        }
        pool.start(job)
        while runs.load(ordering: .relaxed) < 2 { usleep(1000) }
        #expect(monotonicNowNs() - startNs >= 20_000_000, "the second step waited for its deadline")
        pool.wake(job)
        pool.waitUntilFinished(job)
        #expect(runs.load(ordering: .relaxed) == 3)
    }

    /// The process's engine threads (named blk-...): other tests run in parallel and start
    /// threads of their own (event loops), which this count leaves out.
    static func engineThreadCount() -> Int {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.filter { task in
            let name = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
            return name.hasPrefix("blk-")
        }.count
    }

    @Test("threads do not grow with the number of open volumes")
    func threadsStayBounded() async throws {
        let directory = TemporaryDirectory()
        let runtime = EngineRuntime(logWriterThreads: 4, writeBackThreads: 2)
        var options = testOptions()
        options.runtime = runtime
        
        var volumes: [Volume] = []
        for index in 0..<100 {
            let volume = try await Volume.create(
                at: directory.file("v\(index).blk"),
                configuration: VolumeConfiguration(sizeBytes: 4 << 20, blockSizeBytes: 4096, walSizeBytes: 1 << 20),
                options: options)
            try await volume.write(at: 0, patterns(tag: UInt64(index), lba: 0, blockCount: 4, blockSize: 4096), fua: true)
            volumes.append(volume)
        }
        let during = Self.engineThreadCount()
        for (index, volume) in volumes.enumerated() {
            #expect(try await volume.read(at: 0, blockCount: 4) == patterns(tag: UInt64(index), lba: 0, blockCount: 4, blockSize: 4096))
            try await volume.close()
        }
        volumes.removeAll()
        runtime.shutdown()
        // Before the shared runtime, every volume started three (300 here). Now: this
        // runtime's 6, the shared runtime's pools and the shared read ring's reaper.
        #expect(during <= 6 + EngineRuntime.defaultLogWriterThreads + EngineRuntime.defaultWriteBackThreads + 1,
                "\(during) engine threads with 100 volumes open")
        // Every close wrote its volume back through the batch rings: shared, not one each.
        #expect(BatchRingPool.shared.createdRings <= BatchRingPool.shared.maxRings)
    }

    @Test("batches share a fixed set of rings: a batch waits for a ring rather than creating one past the bound")
    func batchRingsBounded() {
        let pool = BatchRingPool(maxRings: 2)
        let counts = Mutex((holding: 0, mostHeld: 0))
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            pool.withRing { _ in
                counts.withLock { $0.holding += 1; $0.mostHeld = max($0.mostHeld, $0.holding) }
                usleep(2000)
                counts.withLock { $0.holding -= 1 }
            }
        }
        #expect(counts.withLock { $0.mostHeld } <= 2)
        #expect(pool.createdRings <= 2)
    }
}
