// The read index: where the newest version of each block lives while it is still in the WAL.
//
// Invariants:
// - Extents never overlap and are sorted by LBA within a chunk.
// - An update keeps, for every block, the version with the higher LSN (invariant 4 in
//   docs/ENGINE.md): an older record can never hide a newer one, whatever order the updates
//   arrive in.
// - One write of N contiguous blocks costs one extent (split only at chunk boundaries), so a
//   1 MiB write is one or two entries, not 256.
// Blocks without an extent live in the data region.

/// Where the newest version of a run of blocks lives.
enum BlockLocation: Equatable, Sendable {
    /// In the WAL; `position` is the logical WAL position of the first block's bytes.
    case wal(position: UInt64)
    /// Trimmed: reads return zeros.
    case trimmed
}

/// A run of blocks with one location and one LSN.
struct IndexExtent: Equatable, Sendable {
    var lba: UInt64
    var blockCount: UInt64
    var lsn: UInt64
    var location: BlockLocation

    var endLBA: UInt64 { lba + blockCount }

    /// Whether `next` (starting at this extent's end) continues the same bytes.
    func continues(into next: IndexExtent, blockSizeBytes: UInt64) -> Bool {
        switch (location, next.location) {
        case (.trimmed, .trimmed): return true
        case let (.wal(position), .wal(nextPosition)): return position + blockCount * blockSizeBytes == nextPosition
        default: return false
        }
    }

    /// The part of this extent covering `[from, to)`, which must lie inside it.
    func slice(from: UInt64, to: UInt64, blockSizeBytes: UInt64) -> IndexExtent {
        precondition(from >= lba, "slice starts before the extent")
        precondition(to <= endLBA, "slice ends after the extent")
        precondition(from < to, "empty slice")
        var piece = self
        piece.lba = from
        piece.blockCount = to - from
        if case let .wal(position) = location {
            piece.location = .wal(position: position + (from - lba) * blockSizeBytes)
        }
        return piece
    }
}

/// An LSN-monotonic map from LBA ranges to locations, split into fixed chunks so updates
/// shift only small arrays.
struct RangeMap: Sendable {
    /// 4096 blocks per chunk: 16 MiB of 4 KiB blocks.
    static let chunkShift: UInt64 = 12
    let blockSizeBytes: UInt64
    private var chunks: [UInt64: [IndexExtent]] = [:]
    private(set) var extentCount = 0

    init(blockSizeBytes: Int) {
        precondition(blockSizeBytes > 0, "block size must be positive")
        self.blockSizeBytes = UInt64(blockSizeBytes)
    }

    var isEmpty: Bool { extentCount == 0 }

    /// Records that blocks `[lba, lba + blockCount)` have a version at `lsn` in `location`;
    /// blocks already mapped to a higher LSN keep their mapping.
    mutating func insert(lba: UInt64, blockCount: UInt64, lsn: UInt64, location: BlockLocation) {
        precondition(blockCount > 0, "empty insert")
        let whole = IndexExtent(lba: lba, blockCount: blockCount, lsn: lsn, location: location)
        forEachChunk(lba: lba, blockCount: blockCount) { key, from, to in
            let piece = whole.slice(from: from, to: to, blockSizeBytes: blockSizeBytes)
            let delta = Self.insert(piece, into: &chunks[key, default: []], blockSizeBytes: blockSizeBytes)
            extentCount += delta
        }
    }

    /// Forgets the mappings of `[lba, lba + blockCount)` whose LSN is at most `maxLSN` (their
    /// data reached the data region); newer mappings stay.
    mutating func remove(lba: UInt64, blockCount: UInt64, maxLSN: UInt64) {
        precondition(blockCount > 0, "empty remove")
        forEachChunk(lba: lba, blockCount: blockCount) { key, from, to in
            guard var extents = chunks.removeValue(forKey: key) else { return }
            let delta = Self.remove(from: from, to: to, maxLSN: maxLSN, in: &extents,
                                    blockSizeBytes: blockSizeBytes)
            extentCount += delta
            if !extents.isEmpty { chunks[key] = extents }
        }
    }

    /// `remove(lba:blockCount:maxLSN:)` for many ranges at once (sorted by LBA, not
    /// overlapping): one pass over each chunk they touch instead of one shift per range, which
    /// matters when a write-back cycle retires thousands of scattered blocks.
    mutating func remove(_ ranges: some Collection<IndexExtent>, maxLSN: UInt64) {
        var byChunk: [UInt64: [(from: UInt64, to: UInt64)]] = [:]
        var previousEnd: UInt64 = 0
        for range in ranges where range.blockCount > 0 {
            precondition(range.lba >= previousEnd, "ranges must be sorted and disjoint")
            previousEnd = range.endLBA
            forEachChunk(lba: range.lba, blockCount: range.blockCount) { key, from, to in
                byChunk[key, default: []].append((from, to))
            }
        }
        for (key, chunkRanges) in byChunk {
            guard var extents = chunks.removeValue(forKey: key) else { continue }
            extentCount += Self.remove(chunkRanges, maxLSN: maxLSN, in: &extents, blockSizeBytes: blockSizeBytes)
            if !extents.isEmpty { chunks[key] = extents }
        }
    }

    /// Splits extents sorted by LBA into consecutive groups that each touch at most
    /// `maxChunks` chunks, so a caller can update the index group by group, holding its lock
    /// for a bounded time. An extent touching more chunks than that is a group of its own
    /// (the extents of a RangeMap never cross a chunk boundary).
    static func chunkGroups(_ extents: [IndexExtent], maxChunks: Int) -> [ArraySlice<IndexExtent>] {
        precondition(maxChunks > 0, "a group holds at least one chunk")
        var groups: [ArraySlice<IndexExtent>] = []
        var start = 0
        var chunks = 0
        var lastChunk: UInt64? = nil
        for (position, extent) in extents.enumerated() {
            let first = extent.lba >> chunkShift
            let last = (extent.endLBA - 1) >> chunkShift
            var added = Int(last - first) + (lastChunk == first ? 0 : 1)
            if chunks > 0 && chunks + added > maxChunks {
                groups.append(extents[start..<position])
                start = position
                chunks = 0
                added = Int(last - first) + 1
            }
            chunks += added
            lastChunk = last
        }
        if start < extents.count { groups.append(extents[start...]) }
        return groups
    }

    /// Appends the mapped pieces of `[lba, lba + blockCount)` in LBA order, clipped to it.
    func lookup(lba: UInt64, blockCount: UInt64, into result: inout [IndexExtent]) {
        guard extentCount > 0, blockCount > 0 else { return }
        forEachChunk(lba: lba, blockCount: blockCount) { key, from, to in
            guard let extents = chunks[key] else { return }
            var index = Self.firstOverlap(extents, from: from)
            while index < extents.count && extents[index].lba < to {
                let extent = extents[index]
                result.append(extent.slice(from: max(extent.lba, from), to: min(extent.endLBA, to),
                                           blockSizeBytes: blockSizeBytes))
                index += 1
            }
        }
    }

    /// Every extent in LBA order.
    func allExtents() -> [IndexExtent] {
        var result: [IndexExtent] = []
        result.reserveCapacity(extentCount)
        for key in chunks.keys.sorted() { result.append(contentsOf: chunks[key]!) }
        return result
    }

    // MARK: - Chunk operations

    private func forEachChunk(lba: UInt64, blockCount: UInt64,
                              _ body: (UInt64, UInt64, UInt64) -> Void) {
        let end = lba + blockCount
        var key = lba >> Self.chunkShift
        let lastKey = (end - 1) >> Self.chunkShift
        while key <= lastKey {
            let chunkStart = key << Self.chunkShift
            body(key, max(lba, chunkStart), min(end, chunkStart + (1 << Self.chunkShift)))
            key += 1
        }
    }

    /// Index of the first extent whose end is past `from`.
    private static func firstOverlap(_ extents: [IndexExtent], from: UInt64) -> Int {
        var low = 0, high = extents.count
        while low < high {
            let mid = (low + high) / 2
            if extents[mid].endLBA <= from { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// Inserts with the higher-LSN-wins rule; returns the change in extent count.
    private static func insert(_ new: IndexExtent, into extents: inout [IndexExtent],
                               blockSizeBytes blockSize: UInt64) -> Int {
        let first = firstOverlap(extents, from: new.lba)
        var last = first
        while last < extents.count && extents[last].lba < new.endLBA { last += 1 }
        if first == last {
            extents.insert(new, at: first)
            return 1
        }
        var pieces: [IndexExtent] = []
        pieces.reserveCapacity(last - first + 2)
        let head = extents[first]
        if head.lba < new.lba {
            pieces.append(head.slice(from: head.lba, to: new.lba, blockSizeBytes: blockSize))
        }
        var cursor = new.lba
        for existing in extents[first..<last] where existing.lsn > new.lsn {
            let overlapFrom = max(existing.lba, new.lba)
            let overlapTo = min(existing.endLBA, new.endLBA)
            if cursor < overlapFrom {
                pieces.append(new.slice(from: cursor, to: overlapFrom, blockSizeBytes: blockSize))
            }
            pieces.append(existing.slice(from: overlapFrom, to: overlapTo, blockSizeBytes: blockSize))
            cursor = overlapTo
        }
        if cursor < new.endLBA {
            pieces.append(new.slice(from: cursor, to: new.endLBA, blockSizeBytes: blockSize))
        }
        let tail = extents[last - 1]
        if tail.endLBA > new.endLBA {
            pieces.append(tail.slice(from: new.endLBA, to: tail.endLBA, blockSizeBytes: blockSize))
        }
        merge(&pieces, blockSizeBytes: blockSize)
        extents.replaceSubrange(first..<last, with: pieces)
        return pieces.count - (last - first)
    }

    /// Joins neighbouring pieces that are slices of one record (same LSN, contiguous).
    private static func merge(_ pieces: inout [IndexExtent], blockSizeBytes: UInt64) {
        var merged: [IndexExtent] = []
        merged.reserveCapacity(pieces.count)
        for piece in pieces {
            if let last = merged.last, last.lsn == piece.lsn, last.endLBA == piece.lba,
               last.continues(into: piece, blockSizeBytes: blockSizeBytes) {
                merged[merged.count - 1].blockCount += piece.blockCount
            } else {
                merged.append(piece)
            }
        }
        pieces = merged
    }

    /// Rebuilds one chunk without the parts of its old-enough extents that `ranges` cover.
    private static func remove(_ ranges: [(from: UInt64, to: UInt64)], maxLSN: UInt64,
                               in extents: inout [IndexExtent], blockSizeBytes: UInt64) -> Int {
        var kept: [IndexExtent] = []
        kept.reserveCapacity(extents.count)
        var next = 0
        for existing in extents {
            if existing.lsn > maxLSN {
                kept.append(existing)
                continue
            }
            while next < ranges.count && ranges[next].to <= existing.lba { next += 1 }
            var cursor = existing.lba
            var index = next
            while index < ranges.count && ranges[index].from < existing.endLBA {
                if ranges[index].from > cursor {
                    kept.append(existing.slice(from: cursor, to: ranges[index].from, blockSizeBytes: blockSizeBytes))
                }
                cursor = max(cursor, ranges[index].to)
                index += 1
            }
            if cursor < existing.endLBA {
                kept.append(existing.slice(from: cursor, to: existing.endLBA, blockSizeBytes: blockSizeBytes))
            }
        }
        let delta = kept.count - extents.count
        extents = kept
        return delta
    }

    private static func remove(from: UInt64, to: UInt64, maxLSN: UInt64,
                               in extents: inout [IndexExtent], blockSizeBytes: UInt64) -> Int {
        let first = firstOverlap(extents, from: from)
        var last = first
        while last < extents.count && extents[last].lba < to { last += 1 }
        guard first < last else { return 0 }
        var pieces: [IndexExtent] = []
        for existing in extents[first..<last] {
            if existing.lsn > maxLSN {
                pieces.append(existing)
                continue
            }
            if existing.lba < from {
                pieces.append(existing.slice(from: existing.lba, to: from, blockSizeBytes: blockSizeBytes))
            }
            if existing.endLBA > to {
                pieces.append(existing.slice(from: to, to: existing.endLBA, blockSizeBytes: blockSizeBytes))
            }
        }
        extents.replaceSubrange(first..<last, with: pieces)
        return pieces.count - (last - first)
    }
}
