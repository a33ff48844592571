/// A snapshot of a volume's state and counters.
public struct VolumeInfo: Sendable, Equatable {
    public var path: String
    public var uuid: VolumeUUID
    public var sizeBytes: UInt64
    public var blockSizeBytes: Int
    public var blockCount: UInt64
    public var durability: DurabilityMode
    public var replicaFactor: Int
    public var epoch: UInt64
    /// Highest LSN handed out.
    public var lastLSN: UInt64
    /// Every record up to this LSN is written and readable.
    public var completedLSN: UInt64
    /// Every record up to this LSN is durable on local storage.
    public var durableLSN: UInt64
    /// Every record up to this LSN is in the data region (the superblock checkpoint).
    public var checkpointLSN: UInt64
    public var walSizeBytes: UInt64
    public var walUsedBytes: UInt64
    /// Writers that waited for WAL space (back-pressure from write-back).
    public var walFullWaits: UInt64
    /// Extents in the read index (bounded by the records in the WAL).
    public var indexExtents: Int
    /// fdatasync calls made by group commit, and the flush waiters they served.
    public var groupCommitSyncs: UInt64
    public var groupCommitWaitersServed: UInt64
    public var groupCommitLargestBatch: Int
    /// Write-back cycles and the bytes they moved to the data region.
    public var writeBackRuns: UInt64
    public var writeBackBytes: UInt64
    /// Why the write-back cannot place data (a full file system), while it cannot.
    public var spaceStall: BlockError?
    /// Why the volume refuses work, when it failed.
    public var failure: BlockError?
}

extension Volume {
    /// The volume's current state and counters.
    public func info() -> VolumeInfo {
        let (ring, walFullWaits, spaceStall) = core.sequencer.withLock { ($0.ring, $0.walFullWaits, $0.spaceStall) }
        let commit = core.commit.withLock { $0 }
        let writeBack = core.writeBack.withLock { $0 }
        return VolumeInfo(
            path: path, uuid: uuid, sizeBytes: sizeBytes, blockSizeBytes: blockSizeBytes, blockCount: blockCount,
            durability: durability, replicaFactor: replicaFactor, epoch: epoch,
            lastLSN: ring.lastAllocatedLSN, completedLSN: ring.completedLSN,
            durableLSN: core.durableLSN.load(ordering: .acquiring), checkpointLSN: ring.checkpointLSN,
            walSizeBytes: ring.sizeBytes, walUsedBytes: ring.usedBytes, walFullWaits: walFullWaits,
            indexExtents: core.index.withLock { $0.extentCount },
            groupCommitSyncs: commit.syncCount, groupCommitWaitersServed: commit.waitersServed,
            groupCommitLargestBatch: commit.largestBatch,
            writeBackRuns: writeBack.runs, writeBackBytes: writeBack.bytesWritten,
            spaceStall: spaceStall, failure: core.failure)
    }
}
