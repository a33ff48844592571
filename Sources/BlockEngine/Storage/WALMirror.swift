// An in-memory copy of the WAL ring. Writers copy their records here (no syscall and no
// page-cache page on the write path, so a writer never waits for a page under write-back);
// the log writer thread writes completed ranges to the file in aligned blocks with O_DIRECT;
// reads of WAL-resident blocks and the write-back copy from here.
//
// Invariants:
// - the bytes of ring positions [tail, head) here are the bytes the log holds, and what the
//   file holds for them once the log writer wrote them;
// - each byte has one writer at a time: the writer that reserved it, until its record is
//   complete; then nobody until the tail passes it (the ring hands it out again);
// - readers validate after copying (the tail did not pass what they read), as they would
//   after reading the file;
// - pages wholly behind the tail are given back to the kernel (they read as zeros), so the
//   memory held follows the records not yet written back, not the ring's size.

import CBlockSupport
#if canImport(Glibc)
import Glibc
#endif

/// The WAL ring's bytes in memory, addressed by logical ring position.
final class WALMirror: @unchecked Sendable {
    /// The unit of the log writer's file writes (O_DIRECT needs aligned memory, offsets and
    /// lengths); the WAL's file offset and size are multiples of it.
    static let alignmentBytes: UInt64 = 4096

    let sizeBytes: UInt64
    private let base: UnsafeMutableRawPointer

    /// Maps the ring's memory: anonymous pages, so it reads as zeros (whatever the log writer
    /// writes beyond the records is deterministic) and is only backed once touched.
    init(sizeBytes: UInt64) throws(BlockError) {
        precondition(sizeBytes > 0, "the WAL is not empty")
        precondition(sizeBytes % Self.alignmentBytes == 0, "WAL size must be a multiple of 4096")
        self.sizeBytes = sizeBytes
        guard let mapped = mmap(nil, Int(sizeBytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              mapped != MAP_FAILED else {
            throw .io(operation: "mmap of \(sizeBytes) bytes for the WAL ring", errno: errno)
        }
        base = mapped
    }

    deinit { munmap(base, Int(sizeBytes)) }

    /// The physical pieces of the logical range `[from, to)`: at most two, split where the
    /// ring wraps; a range longer than the ring is the whole ring once.
    func pieces(from: UInt64, to: UInt64) -> [UnsafeMutableRawBufferPointer] {
        precondition(from <= to, "range ends before it starts")
        let length = min(to - from, sizeBytes)
        guard length > 0 else { return [] }
        let start = from % sizeBytes
        let first = min(length, sizeBytes - start)
        var result = [UnsafeMutableRawBufferPointer(start: base + Int(start), count: Int(first))]
        if first < length { result.append(UnsafeMutableRawBufferPointer(start: base, count: Int(length - first))) }
        return result
    }

    /// The offset in the ring of a physical piece returned by `pieces`.
    func ringOffset(of piece: UnsafeMutableRawBufferPointer) -> UInt64 {
        UInt64(piece.baseAddress! - base)
    }

    /// Copies `bytes` into the ring at logical `position` (wrapping if needed).
    func store(_ bytes: UnsafeRawBufferPointer, at position: UInt64) {
        var done = 0
        for piece in pieces(from: position, to: position + UInt64(bytes.count)) {
            piece.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[done..<(done + piece.count)]))
            done += piece.count
        }
    }

    /// Copies `bytes` into the ring like `store` and returns their CRC32C, both in one C call
    /// (the CRC reads the source into the cache, the copy then finds it there); the ring's
    /// lines bypass the CPU cache (the device reads them next, the write-back much later).
    func storeComputingCRC(_ bytes: UnsafeRawBufferPointer, at position: UInt64) -> UInt32 {
        var crc: UInt32 = 0
        var done = 0
        for piece in pieces(from: position, to: position + UInt64(bytes.count)) {
            crc = ccrc32c_copy(crc, piece.baseAddress!, bytes.baseAddress! + done, piece.count)
            done += piece.count
        }
        return crc
    }

    /// Zeroes the ring's bytes in the logical range `[from, to)`.
    func zero(from: UInt64, to: UInt64) {
        for piece in pieces(from: from, to: to) { piece.initializeMemory(as: UInt8.self, repeating: 0) }
    }

    /// Copies the ring's bytes at logical `position` into `buffer`.
    func load(into buffer: UnsafeMutableRawBufferPointer, from position: UInt64) {
        var done = 0
        for piece in pieces(from: position, to: position + UInt64(buffer.count)) {
            UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + piece.count)])
                .copyMemory(from: UnsafeRawBufferPointer(piece))
            done += piece.count
        }
    }

    /// Gives the pages of the logical range `[from, to)` back to the kernel; they read as
    /// zeros afterwards. Only for bytes nobody reads or writes any more: the caller holds
    /// the sequencer lock, the range is behind the tail, and no live record shares a page
    /// with it (see `VolumeCore.releaseRingPages`).
    func releasePages(from: UInt64, to: UInt64) {
        precondition(from % Self.alignmentBytes == 0 && to % Self.alignmentBytes == 0, "whole pages")
        for piece in pieces(from: from, to: to) {
            // Failure only leaves the pages resident (the accounting then overstates nothing
            // that matters for correctness).
            _ = madvise(piece.baseAddress, piece.count, MADV_DONTNEED)
        }
    }

    /// Bytes of the ring the kernel has resident now (`mincore`), for tests and inspection.
    func residentBytes() -> UInt64 {
        let pageBytes = Int(sysconf(Int32(_SC_PAGESIZE)))
        var vector = [UInt8](repeating: 0, count: (Int(sizeBytes) + pageBytes - 1) / pageBytes)
        guard mincore(base, Int(sizeBytes), &vector) == 0 else { return sizeBytes }
        return UInt64(vector.reduce(0) { $0 + Int($1 & 1) }) * UInt64(pageBytes)
    }

    static func alignDown(_ position: UInt64) -> UInt64 { position / alignmentBytes * alignmentBytes }
    static func alignUp(_ position: UInt64) -> UInt64 { alignDown(position + alignmentBytes - 1) }
}
