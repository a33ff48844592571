// Provisioning status of blocks (for SCSI GET LBA STATUS and thin-provisioning tools):
// blocks whose newest version is a write are mapped; trimmed or never-written blocks are
// deallocated and read as zeros.

/// Whether a run of blocks has storage behind it.
public enum BlockProvisioning: Sendable, Equatable {
    /// Written: the blocks hold data.
    case mapped
    /// Never written or trimmed: the blocks read as zeros and hold no space.
    case deallocated
}

/// A run of blocks with one provisioning status.
public struct BlockStatusExtent: Sendable, Equatable {
    public var lba: UInt64
    public var blockCount: UInt64
    public var provisioning: BlockProvisioning

    public init(lba: UInt64, blockCount: UInt64, provisioning: BlockProvisioning) {
        self.lba = lba
        self.blockCount = blockCount
        self.provisioning = provisioning
    }
}

extension Volume {
    /// The provisioning status of `[lba, lba + blockCount)`, as consecutive extents that cover
    /// the range exactly. Data-region holes are file-system-block granular: a block that
    /// shares a file-system block with data reports as mapped.
    public func blockStatus(at lba: UInt64, blockCount: UInt64) throws(BlockError) -> [BlockStatusExtent] {
        try core.checkRange(lba: lba, blockCount: blockCount)
        try beginOperation()
        defer { endOperation() }
        var pieces: [IndexExtent] = []
        core.index.withLock { $0.lookup(lba: lba, blockCount: blockCount, into: &pieces) }
        var result: [BlockStatusExtent] = []
        func append(_ start: UInt64, _ count: UInt64, _ provisioning: BlockProvisioning) {
            guard count > 0 else { return }
            if let last = result.last, last.provisioning == provisioning, last.lba + last.blockCount == start {
                result[result.count - 1].blockCount += count
            } else {
                result.append(BlockStatusExtent(lba: start, blockCount: count, provisioning: provisioning))
            }
        }
        var cursor = lba
        let end = lba + blockCount
        for piece in pieces + [IndexExtent(lba: end, blockCount: 0, lsn: 0, location: .trimmed)] {
            if cursor < piece.lba {
                for extent in try dataRegionStatus(from: cursor, to: piece.lba) {
                    append(extent.lba, extent.blockCount, extent.provisioning)
                }
            }
            if piece.blockCount > 0 {
                append(piece.lba, piece.blockCount, piece.location == .trimmed ? .deallocated : .mapped)
            }
            cursor = piece.endLBA
        }
        precondition(result.reduce(0) { $0 + $1.blockCount } == blockCount, "status must cover the range")
        return result
    }

    private func dataRegionStatus(from start: UInt64, to end: UInt64) throws(BlockError) -> [BlockStatusExtent] {
        let blockBytes = UInt64(blockSizeBytes)
        let base = core.geometry.dataOffsetBytes
        let ranges = try core.file.dataRanges(from: base + start * blockBytes, to: base + end * blockBytes)
        var result: [BlockStatusExtent] = []
        var cursor = start
        for range in ranges {
            let first = max((range.lowerBound - base) / blockBytes, cursor)
            let last = min((range.upperBound - base + blockBytes - 1) / blockBytes, end)
            guard first < last else { continue }
            if cursor < first { result.append(BlockStatusExtent(lba: cursor, blockCount: first - cursor, provisioning: .deallocated)) }
            result.append(BlockStatusExtent(lba: first, blockCount: last - first, provisioning: .mapped))
            cursor = last
        }
        if cursor < end { result.append(BlockStatusExtent(lba: cursor, blockCount: end - cursor, provisioning: .deallocated)) }
        return result
    }
}
