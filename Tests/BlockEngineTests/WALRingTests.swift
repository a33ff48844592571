import Testing
@testable import BlockEngine

@Suite("WAL ring accounting")
struct WALRingTests {
    @Test("reservations pad at the end of the ring and the completed prefix is contiguous")
    func padAndPrefix() {
        var ring = WALRing(sizeBytes: 64 * 1024, checkpointLSN: 0, tailPosition: 0, headPosition: 0, recovered: [])
        let a = ring.reserve(kind: .write, lba: 0, blockCount: 4, payloadLength: 16384)!
        let b = ring.reserve(kind: .write, lba: 0, blockCount: 4, payloadLength: 16384)!
        let c = ring.reserve(kind: .write, lba: 0, blockCount: 4, payloadLength: 16384)!
        #expect(a.lsn == 1 && b.lsn == 2 && c.lsn == 3)
        // A fourth record does not fit before the end; nor after it while the tail is at 0.
        #expect(ring.reserve(kind: .write, lba: 0, blockCount: 4, payloadLength: 16384) == nil)
        #expect(ring.complete(lsn: 2) == false, "LSN 1 is still missing")
        #expect(ring.complete(lsn: 1) == true)
        #expect(ring.completedLSN == 2)
        #expect(ring.flushBatch(maxBytes: 1 << 20).map(\.lsn) == [1, 2])
        ring.release(throughLSN: 2)
        #expect(ring.tailPosition == b.endPosition)
        let d = ring.reserve(kind: .write, lba: 0, blockCount: 4, payloadLength: 16384)!
        #expect(d.hasPad, "the record wraps to the ring start behind a PAD")
        #expect(d.headerPosition % ring.sizeBytes == 0)
        #expect(ring.usedBytes <= ring.sizeBytes)
    }
}
