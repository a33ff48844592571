// The threads the engine's volumes share: one pool runs every volume's log-writer rounds,
// another its write-back passes (separate, because a write-back pass blocks until its
// volume's log writer made records durable: in one pool, passes could hold every thread
// while the rounds they wait for queue behind them). A server's threads therefore do not
// grow with its volumes; a library user who opens one volume gets the same behaviour as
// with threads of its own (its jobs find the pools idle).

#if canImport(Glibc)
import Glibc
#endif

/// Thread pools shared by volumes (`VolumeOptions.runtime`; `EngineRuntime.shared` by default).
public final class EngineRuntime: Sendable {
    let logWriters: JobPool
    let writeBack: JobPool

    /// Pools of the given sizes. Log-writer threads mostly wait in `pwrite`/`fdatasync`, so
    /// more of them than cores keeps devices busy while some sync.
    public init(logWriterThreads: Int = EngineRuntime.defaultLogWriterThreads,
                writeBackThreads: Int = EngineRuntime.defaultWriteBackThreads) {
        precondition(logWriterThreads >= 1 && writeBackThreads >= 1, "each pool needs a thread")
        logWriters = JobPool(name: "blk-log", threads: logWriterThreads)
        writeBack = JobPool(name: "blk-wb", threads: writeBackThreads)
    }

    /// The runtime volumes use when their options name none.
    public static let shared = EngineRuntime()

    static var cores: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
    public static var defaultLogWriterThreads: Int { max(4, 2 * cores) }
    public static var defaultWriteBackThreads: Int { max(2, cores) }

    /// Stops the pools' threads once their jobs ended (volumes closed). The shared runtime
    /// lives as long as the process.
    public func shutdown() {
        precondition(self !== EngineRuntime.shared, "the shared runtime lives as long as the process")
        logWriters.shutdown()
        writeBack.shutdown()
    }
}
