import Foundation
import Synchronization
@testable import BlockEngine

/// Forwards to a real file, with faults a test turns on: slow write-back batches (a
/// write-back that cannot keep up, for back-pressure) and a full file system (data-region
/// writes and hole punches fail with ENOSPC; the log region is preallocated and unaffected).
final class FaultInjectingFile: VolumeFileIO, @unchecked Sendable {
    let inner: PosixVolumeFile
    let batchDelayMicros: UInt32
    let full = Atomic(false)

    init(path: String, batchDelayMicros: UInt32 = 0) throws {
        inner = try PosixVolumeFile(path: path)
        self.batchDelayMicros = batchDelayMicros
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BlockError) {
        try inner.read(into: buffer, at: offset)
    }
    func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, at offset: UInt64) throws(BlockError) {
        try inner.write(first, second, at: offset)
    }
    func writeThrough(_ buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BlockError) {
        try inner.writeThrough(buffer, at: offset, durable: durable)
    }
    func readCached(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BlockError) -> Int {
        try inner.readCached(into: buffer, at: offset)
    }
    func readAsync(_ transfers: [IOTransfer]) async throws(BlockError) { try await inner.readAsync(transfers) }
    func writeBatch(_ transfers: [IOTransfer]) throws(BlockError) {
        usleep(batchDelayMicros)
        if full.load(ordering: .relaxed) {
            // Like a file system that fills up mid-batch: the first write lands, the rest fail.
            try inner.writeBatch(Array(transfers.prefix(1)))
            throw .io(operation: "io_uring write", errno: ENOSPC)
        }
        try inner.writeBatch(transfers)
    }
    func sync() throws(BlockError) { try inner.sync() }
    func punchHole(at offset: UInt64, lengthBytes: UInt64) throws(BlockError) {
        if full.load(ordering: .relaxed) { throw .io(operation: "fallocate(PUNCH_HOLE)", errno: ENOSPC) }
        try inner.punchHole(at: offset, lengthBytes: lengthBytes)
    }
    func sizeBytes() throws(BlockError) -> UInt64 { try inner.sizeBytes() }
    func dataRanges(from offset: UInt64, to end: UInt64) throws(BlockError) -> [Range<UInt64>] {
        try inner.dataRanges(from: offset, to: end)
    }
    func setSize(_ sizeBytes: UInt64) throws(BlockError) { try inner.setSize(sizeBytes) }
    func close() { inner.close() }
}
