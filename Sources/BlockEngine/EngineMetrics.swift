import Metrics

/// The engine's metrics (swift-metrics), all with a `volume` dimension. Names are documented
/// in docs/METRICS.md.
struct EngineMetrics: Sendable {
    let writes: Counter
    let writeBytes: Counter
    let reads: Counter
    let readBytes: Counter
    let trims: Counter
    let flushes: Counter
    let groupCommitSyncs: Counter
    /// Flush waiters served by one fdatasync.
    let groupCommitBatchSize: Recorder
    let flusherRuns: Counter
    let flusherBytes: Counter
    /// Records written but not yet in the data region, after each write-back cycle.
    let flusherLagRecords: Gauge
    let walUsedBytes: Gauge
    let walFullWaits: Counter
    /// 1 while the write-back cannot place data because the file system is full.
    let writeBackNoSpace: Gauge
    let barrierFailures: Counter
    /// How long a flush waited for its replicas (strict modes; beside the local sync).
    let barrierWait: Timer
    /// Log holds for replicas broken by the retention bound (the replica must rebuild).
    let logHoldsBroken: Counter

    init(volume: String, factory: any MetricsFactory) {
        let dimensions = [("volume", volume)]
        writes = Counter(label: "blockengine_writes_total", dimensions: dimensions, factory: factory)
        writeBytes = Counter(label: "blockengine_write_bytes_total", dimensions: dimensions, factory: factory)
        reads = Counter(label: "blockengine_reads_total", dimensions: dimensions, factory: factory)
        readBytes = Counter(label: "blockengine_read_bytes_total", dimensions: dimensions, factory: factory)
        trims = Counter(label: "blockengine_trims_total", dimensions: dimensions, factory: factory)
        flushes = Counter(label: "blockengine_flushes_total", dimensions: dimensions, factory: factory)
        groupCommitSyncs = Counter(label: "blockengine_group_commit_syncs_total", dimensions: dimensions, factory: factory)
        groupCommitBatchSize = Recorder(label: "blockengine_group_commit_batch_size", dimensions: dimensions,
                                        aggregate: true, factory: factory)
        flusherRuns = Counter(label: "blockengine_flusher_runs_total", dimensions: dimensions, factory: factory)
        flusherBytes = Counter(label: "blockengine_flusher_bytes_total", dimensions: dimensions, factory: factory)
        flusherLagRecords = Gauge(label: "blockengine_flusher_lag_records", dimensions: dimensions, factory: factory)
        walUsedBytes = Gauge(label: "blockengine_wal_used_bytes", dimensions: dimensions, factory: factory)
        walFullWaits = Counter(label: "blockengine_wal_full_waits_total", dimensions: dimensions, factory: factory)
        writeBackNoSpace = Gauge(label: "blockengine_write_back_no_space", dimensions: dimensions, factory: factory)
        barrierFailures = Counter(label: "blockengine_durability_barrier_failures_total", dimensions: dimensions, factory: factory)
        barrierWait = Timer(label: "blockengine_durability_barrier_wait_seconds", dimensions: dimensions, factory: factory)
        logHoldsBroken = Counter(label: "blockengine_log_holds_broken_total", dimensions: dimensions, factory: factory)
    }
}
