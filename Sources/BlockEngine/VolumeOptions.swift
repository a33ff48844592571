import Logging
import Metrics

/// What a new volume looks like. Fixed at create and persisted in the superblock.
public struct VolumeConfiguration: Sendable, Equatable {
    /// Logical size of the volume; a positive multiple of `blockSizeBytes`.
    public var sizeBytes: UInt64
    /// 512 or 4096.
    public var blockSizeBytes: Int
    /// Size of the write-ahead-log ring; a multiple of 4096, at least 64 KiB.
    public var walSizeBytes: UInt64
    public var durability: DurabilityMode
    /// Copies of the data including the primary (1 = no replicas).
    public var replicaFactor: Int

    public init(sizeBytes: UInt64, blockSizeBytes: Int = 4096,
                walSizeBytes: UInt64 = 64 * 1024 * 1024,
                durability: DurabilityMode = .bestEffort, replicaFactor: Int = 1) {
        self.sizeBytes = sizeBytes
        self.blockSizeBytes = blockSizeBytes
        self.walSizeBytes = walSizeBytes
        self.durability = durability
        self.replicaFactor = replicaFactor
    }

    /// Throws `.invalidArgument` or `.misaligned` naming the first bad field.
    public func validate() throws(BlockError) {
        guard blockSizeBytes == 512 || blockSizeBytes == 4096 else {
            throw .invalidArgument("block size must be 512 or 4096, got \(blockSizeBytes)")
        }
        guard sizeBytes > 0 else { throw .invalidArgument("volume size must be positive") }
        guard sizeBytes % UInt64(blockSizeBytes) == 0 else {
            throw .misaligned(what: "volume size", value: sizeBytes, alignmentBytes: UInt64(blockSizeBytes))
        }
        guard sizeBytes <= Superblock.maxVolumeSizeBytes else {
            throw .invalidArgument("volume size \(sizeBytes) exceeds the maximum \(Superblock.maxVolumeSizeBytes)")
        }
        guard walSizeBytes % 4096 == 0 else {
            throw .misaligned(what: "WAL size", value: walSizeBytes, alignmentBytes: 4096)
        }
        guard walSizeBytes >= WALLayout.minimumSizeBytes && walSizeBytes <= WALLayout.maximumSizeBytes else {
            throw .invalidArgument("WAL size must be between \(WALLayout.minimumSizeBytes) and \(WALLayout.maximumSizeBytes) bytes")
        }
        guard WALLayout.maxPayloadBytes(walSizeBytes: walSizeBytes, blockSizeBytes: blockSizeBytes) >= blockSizeBytes else {
            throw .invalidArgument("WAL of \(walSizeBytes) bytes is too small for \(blockSizeBytes)-byte blocks")
        }
        try durability.validate(replicaFactor: replicaFactor)
    }
}

/// How a volume behaves at run time. Not persisted; each open may choose differently.
public struct VolumeOptions: Sendable {
    /// Where the engine logs recovery results and failures (never one line per I/O).
    public var logger: Logger
    /// The `volume` dimension on every metric; defaults to the file name.
    public var metricsLabel: String?
    /// Where the volume's metrics go; nil: the process's `MetricsSystem.factory`. A server
    /// that renders its own registry (and tests that run several) pass theirs.
    public var metricsFactory: (any MetricsFactory)? = nil
    /// How long group commit may wait for more flush requests before syncing, in
    /// microseconds. 0 syncs as soon as a request arrives; requests that arrive during a
    /// sync share the next one.
    public var groupCommitMaxDelayMicros: Int
    /// Group commit stops waiting for more requests once this many are queued.
    public var groupCommitMaxBatch: Int
    /// When true, a flush or FUA write that finds the log idle (no round running, nobody
    /// else waiting) writes and syncs the log on the caller's thread: a synchronous writer
    /// saves two thread hand-offs per durable write. Set it to false when callers run on
    /// threads that must not block for a device flush, such as network event loops.
    public var callerMaySync: Bool
    /// The write-back runs at least this often while the WAL holds records.
    public var flushIntervalMs: Int
    /// The write-back also starts once the WAL is this full (0...1).
    public var flushThresholdFraction: Double
    /// Upper bound on the WAL bytes one write-back cycle moves.
    public var flusherMaxBatchBytes: UInt64
    /// How long a writer waits for WAL space before failing with `.walFullTimeout`.
    public var walFullTimeoutMs: Int
    /// When false, write-back runs only when a writer needs WAL space or `checkpoint()` is
    /// called: deterministic I/O for simulations.
    public var backgroundWriteBack: Bool
    /// A budget shared with other volumes for the memory their WAL rings hold (the records
    /// not yet written back); writers wait, bounded by `walFullTimeoutMs`, while it is used
    /// up. Nil: each ring holds what its records need, up to its size.
    public var memoryBudget: MemoryBudget?
    /// The thread pools that run the volume's log writer and write-back; nil: the process's
    /// `EngineRuntime.shared`.
    public var runtime: EngineRuntime?
    /// Log kept for replicas (`Volume.holdLog`): a hold stops the write-back from freeing the
    /// records it still needs until they fill this fraction of the WAL (0...1)...
    public var logRetentionMaxFraction: Double = 0.5
    /// ...or until the hold has not advanced for this long while records waited behind it.
    /// Past either bound the hold breaks (its holder must rebuild) and the space is freed:
    /// writers are never blocked for long by a replica that stopped.
    public var logRetentionMaxMs: Int = 60_000

    public init(logger: Logger = Logger(label: "BlockEngine"), metricsLabel: String? = nil,
                groupCommitMaxDelayMicros: Int = 0, groupCommitMaxBatch: Int = 256, callerMaySync: Bool = true,
                flushIntervalMs: Int = 100, flushThresholdFraction: Double = 0.25,
                flusherMaxBatchBytes: UInt64 = 16 * 1024 * 1024, walFullTimeoutMs: Int = 30_000,
                backgroundWriteBack: Bool = true) {
        self.logger = logger
        self.metricsLabel = metricsLabel
        self.groupCommitMaxDelayMicros = groupCommitMaxDelayMicros
        self.groupCommitMaxBatch = groupCommitMaxBatch
        self.callerMaySync = callerMaySync
        self.flushIntervalMs = flushIntervalMs
        self.flushThresholdFraction = flushThresholdFraction
        self.flusherMaxBatchBytes = flusherMaxBatchBytes
        self.walFullTimeoutMs = walFullTimeoutMs
        self.backgroundWriteBack = backgroundWriteBack
    }

    func validate() throws(BlockError) {
        guard groupCommitMaxDelayMicros >= 0 && groupCommitMaxDelayMicros <= 1_000_000 else {
            throw .invalidArgument("groupCommitMaxDelayMicros must be within 0...1000000")
        }
        guard groupCommitMaxBatch >= 1 else { throw .invalidArgument("groupCommitMaxBatch must be at least 1") }
        guard flushIntervalMs >= 1 else { throw .invalidArgument("flushIntervalMs must be at least 1") }
        guard flushThresholdFraction > 0 && flushThresholdFraction <= 1 else {
            throw .invalidArgument("flushThresholdFraction must be within (0, 1]")
        }
        guard flusherMaxBatchBytes >= 64 * 1024 else {
            throw .invalidArgument("flusherMaxBatchBytes must be at least 64 KiB")
        }
        guard walFullTimeoutMs >= 1 else { throw .invalidArgument("walFullTimeoutMs must be at least 1") }
        guard logRetentionMaxFraction > 0 && logRetentionMaxFraction < 1 else {
            throw .invalidArgument("logRetentionMaxFraction must be within (0, 1)")
        }
        guard logRetentionMaxMs >= 1 else { throw .invalidArgument("logRetentionMaxMs must be at least 1") }
    }
}
