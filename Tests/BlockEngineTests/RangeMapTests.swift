import Testing
@testable import BlockEngine

@Suite("Read index")
struct RangeMapTests {
    /// A block-by-block model of the index.
    struct Model {
        var blocks: [UInt64: (lsn: UInt64, location: BlockLocation)] = [:]
        mutating func insert(lba: UInt64, count: UInt64, lsn: UInt64, location: BlockLocation, blockSize: UInt64) {
            for offset in 0..<count {
                let block = lba + offset
                if let existing = blocks[block], existing.lsn > lsn { continue }
                var at = location
                if case let .wal(position) = location { at = .wal(position: position + offset * blockSize) }
                blocks[block] = (lsn, at)
            }
        }
        mutating func remove(lba: UInt64, count: UInt64, maxLSN: UInt64) {
            for block in lba..<(lba + count) where (blocks[block]?.lsn ?? .max) <= maxLSN { blocks[block] = nil }
        }
    }

    func expand(_ extents: [IndexExtent], blockSize: UInt64) -> [UInt64: (lsn: UInt64, location: BlockLocation)] {
        var result: [UInt64: (lsn: UInt64, location: BlockLocation)] = [:]
        for extent in extents {
            for offset in 0..<extent.blockCount {
                var at = extent.location
                if case let .wal(position) = extent.location { at = .wal(position: position + offset * blockSize) }
                #expect(result[extent.lba + offset] == nil, "overlapping extents")
                result[extent.lba + offset] = (extent.lsn, at)
            }
        }
        return result
    }

    @Test("random inserts (any LSN order) and removes agree with a per-block model", arguments: [1, 2, 3])
    func matchesModel(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        let blockSize: UInt64 = 512
        let span: UInt64 = 3 * (1 << RangeMap.chunkShift)
        var map = RangeMap(blockSizeBytes: Int(blockSize))
        var model = Model()
        var lsn: UInt64 = 1000
        for _ in 0..<3000 {
            let lba = UInt64.random(in: 0..<span, using: &generator)
            let count = UInt64.random(in: 1...min(600, span - lba), using: &generator)
            if Int.random(in: 0..<4, using: &generator) == 0 {
                let maxLSN = UInt64.random(in: 900...lsn, using: &generator)
                map.remove(lba: lba, blockCount: count, maxLSN: maxLSN)
                model.remove(lba: lba, count: count, maxLSN: maxLSN)
            } else {
                // Mostly increasing LSNs, sometimes a late (older) record.
                lsn += 1
                let recordLSN = Int.random(in: 0..<5, using: &generator) == 0 ? lsn - UInt64.random(in: 1...50, using: &generator) : lsn
                let location: BlockLocation = Bool.random(using: &generator)
                    ? .wal(position: UInt64.random(in: 0..<(1 << 30), using: &generator)) : .trimmed
                map.insert(lba: lba, blockCount: count, lsn: recordLSN, location: location)
                model.insert(lba: lba, count: count, lsn: recordLSN, location: location, blockSize: blockSize)
            }
        }
        let actual = expand(map.allExtents(), blockSize: blockSize)
        #expect(actual.count == model.blocks.count)
        for (block, expected) in model.blocks {
            #expect(actual[block]?.lsn == expected.lsn && actual[block]?.location == expected.location,
                    "block \(block)")
        }
        var pieces: [IndexExtent] = []
        map.lookup(lba: 100, blockCount: 5000, into: &pieces)
        for piece in pieces {
            #expect(piece.lba >= 100 && piece.endLBA <= 5100)
            #expect(model.blocks[piece.lba]?.lsn == piece.lsn)
        }
        #expect(map.extentCount == map.allExtents().count)
    }

    @Test("removing many ranges at once equals removing them one by one", arguments: [4, 5])
    func batchRemove(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        let span: UInt64 = 3 * (1 << RangeMap.chunkShift)
        var one = RangeMap(blockSizeBytes: 512)
        for lsn in 1...2000 as ClosedRange<UInt64> {
            let lba = UInt64.random(in: 0..<span, using: &generator)
            let count = UInt64.random(in: 1...min(300, span - lba), using: &generator)
            one.insert(lba: lba, blockCount: count, lsn: lsn, location: .wal(position: lsn * 1_000_000))
        }
        var batch = one
        var ranges: [IndexExtent] = []
        var cursor: UInt64 = 0
        while cursor < span {
            let start = cursor + UInt64.random(in: 0...700, using: &generator)
            guard start < span else { break }
            let count = UInt64.random(in: 1...min(5000, span - start), using: &generator)
            ranges.append(IndexExtent(lba: start, blockCount: count, lsn: 0, location: .trimmed))
            cursor = start + count
        }
        for range in ranges { one.remove(lba: range.lba, blockCount: range.blockCount, maxLSN: 1500) }
        batch.remove(ranges, maxLSN: 1500)
        #expect(batch.allExtents() == one.allExtents())
        #expect(batch.extentCount == one.extentCount)
    }

    @Test("a 1 MiB write is one extent, and an older record never hides a newer one")
    func extentsPerWrite() {
        var map = RangeMap(blockSizeBytes: 4096)
        map.insert(lba: 0, blockCount: 256, lsn: 5, location: .wal(position: 0))
        #expect(map.extentCount == 1)
        map.insert(lba: 10, blockCount: 2, lsn: 3, location: .wal(position: 999_999))
        var pieces: [IndexExtent] = []
        map.lookup(lba: 10, blockCount: 2, into: &pieces)
        #expect(pieces == [IndexExtent(lba: 10, blockCount: 2, lsn: 5, location: .wal(position: 10 * 4096))])
        map.remove(lba: 0, blockCount: 256, maxLSN: 4)
        #expect(map.extentCount == 1, "a newer mapping survives removal of older ones")
        map.remove(lba: 0, blockCount: 256, maxLSN: 5)
        #expect(map.isEmpty)
    }
}
