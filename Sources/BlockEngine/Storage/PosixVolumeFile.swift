// The real volume file: pread/pwritev for the foreground paths, io_uring (through the CURing
// shim) for the flusher's batches, fdatasync for durability, fallocate for holes.
//
// Batch writes that are 4 KiB aligned go through a second descriptor opened with O_DIRECT:
// the write-back's data-region writes then leave no dirty pages behind, so a group-commit
// fdatasync (which syncs the whole file) does not also pay for flushing them.

import CBlockSupport
import CURing
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

private let fallocPunchHole: Int32 = 0x02
private let fallocKeepSize: Int32 = 0x01

/// A volume file opened with POSIX calls.
package final class PosixVolumeFile: VolumeFileIO, @unchecked Sendable {
    package let path: String
    private let descriptor: Int32
    /// The same file opened with O_DIRECT, or -1 when the file system refuses it.
    private let directDescriptor: Int32
    static let directAlignmentBytes = 4096
    /// Reads that would block go here (the process's shared ring); nil for read-only opens
    /// or when the kernel refused a ring.
    private let asyncReads: AsyncReadRing?
    /// RWF_NOWAIT is refused by this file system: `readCached` reports nothing cached.
    private let noWaitUnsupported = ConditionLock(false)
    /// O_DIRECT writes failed with EINVAL once: `writeThrough` writes buffered from then on.
    private let directRefused = Atomic(false)
    /// pwritev2 refused RWF_DSYNC once: durable `writeThrough`s write, then fdatasync.
    private let dsyncRefused = Atomic(false)
    private let closed = ConditionLock(false)
    static let ringEntries: UInt32 = 32
    /// Kernel io-wq workers per submitting thread for a batch ring (BatchRingPool).
    static let kernelWorkers: UInt32 = 2

    /// Opens an existing file, or creates a new one when `create` is set (failing if it exists).
    /// `directIO: false` writes everything through the page cache, as on a file system that
    /// refuses O_DIRECT (tests use it to reach that path on file systems that accept it).
    package init(path: String, readOnly: Bool = false, create: Bool = false, directIO: Bool = true) throws(BlockError) {
        self.path = path
        var flags = (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC
        if create { flags |= O_CREAT | O_EXCL }
        let fd = Glibc.open(path, flags, 0o644)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST { throw .alreadyExists(path: path) }
            throw .io(operation: "open \(path)", errno: code)
        }
        // One writer per volume file: a second writable open (another daemon on the same
        // data directory, or a second Volume in this process) would corrupt the log. The
        // lock belongs to this open file description and goes with it, also when the
        // process dies. Read-only opens (inspection) take none.
        if !readOnly && !Self.lockExclusively(fd) {
            _ = Glibc.close(fd)
            throw .inUse(path: path)
        }
        descriptor = fd
        directDescriptor = readOnly || !directIO ? -1 : Glibc.open(path, O_RDWR | O_CLOEXEC | cblock_o_direct_flag())
        asyncReads = readOnly ? nil : AsyncReadRing.shared
    }

    /// Takes the writer's lock on `fd`; false when another open file description holds it.
    /// Any other failure (a file system without locks) leaves the file unlocked.
    private static func lockExclusively(_ fd: Int32) -> Bool {
        var locked: Int32
        repeat { locked = flock(fd, LOCK_EX | LOCK_NB) } while locked != 0 && errno == EINTR
        return locked == 0 || errno != EWOULDBLOCK
    }

    /// Removes the file at `path` unless a writable open holds it (then `inUse`); the lock
    /// is held across the unlink, so no writer can have it open at that moment.
    package static func removeIfUnused(path: String) throws(BlockError) {
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return }
            throw .io(operation: "open \(path)", errno: errno)
        }
        defer { _ = Glibc.close(fd) }
        guard lockExclusively(fd) else { throw .inUse(path: path) }
        if unlink(path) != 0 && errno != ENOENT { throw .io(operation: "unlink \(path)", errno: errno) }
    }

    /// Closes the file once; later calls do nothing (so a descriptor number is never closed
    /// twice after the kernel reused it).
    package func close() {
        let first = closed.withLock { closed -> Bool in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        asyncReads?.waitUntilIdle(descriptor: descriptor)
        _ = Glibc.close(descriptor)
        if directDescriptor >= 0 { _ = Glibc.close(directDescriptor) }
    }

    deinit { close() }

    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BlockError) {
        var done = 0
        while done < buffer.count {
            let count = pread(descriptor, buffer.baseAddress! + done, buffer.count - done,
                              off_t(offset) + off_t(done))
            if count < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "pread at \(offset)", errno: errno)
            }
            if count == 0 {
                throw .truncated(expectedBytes: offset + UInt64(buffer.count), actualBytes: offset + UInt64(done))
            }
            done += count
        }
    }

    package func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
                       at offset: UInt64) throws(BlockError) {
        let total = first.count + second.count
        var done = 0
        while done < total {
            var vectors = [iovec](), count: Int
            if done < first.count {
                vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: first.baseAddress! + done),
                                     iov_len: first.count - done))
                if second.count > 0 {
                    vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: second.baseAddress!),
                                         iov_len: second.count))
                }
            } else {
                let skip = done - first.count
                vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: second.baseAddress! + skip),
                                     iov_len: second.count - skip))
            }
            count = vectors.withUnsafeBufferPointer { list in
                pwritev(descriptor, list.baseAddress, Int32(list.count), off_t(offset) + off_t(done))
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "pwritev at \(offset)", errno: errno)
            }
            if count == 0 { throw .io(operation: "pwritev at \(offset)", errno: EIO) }
            done += count
        }
    }

    package func writeThrough(_ buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BlockError) {
        let alignment = Self.directAlignmentBytes
        precondition(Int(bitPattern: buffer.baseAddress) % alignment == 0, "writeThrough needs 4096-aligned memory")
        precondition(buffer.count % alignment == 0, "writeThrough needs a length in whole 4096-byte blocks")
        precondition(offset % UInt64(alignment) == 0, "writeThrough needs a 4096-aligned offset")
        let direct = directDescriptor >= 0 && !directRefused.load(ordering: .relaxed)
        if durable && direct && !dsyncRefused.load(ordering: .relaxed) {
            // One syscall and one wake-up instead of a write and an fdatasync.
            if try writeAll(buffer, at: offset, operation: "pwritev2 (O_DIRECT, RWF_DSYNC)", refusedBy: [EINVAL, EOPNOTSUPP],
                            { cblock_pwrite_dsync(directDescriptor, $0, UInt64($1), $2) }) { return }
            dsyncRefused.store(true, ordering: .relaxed)
        }
        if direct, try writeAll(buffer, at: offset, operation: "pwrite (O_DIRECT)", refusedBy: [EINVAL], { bytes, count, at in
            let written = pwrite(directDescriptor, bytes, count, off_t(at))
            return written < 0 ? -Int64(errno) : Int64(written)
        }) {
            // Written past the page cache.
        } else {
            // No O_DIRECT, or this file system wants another alignment for it: buffered.
            if direct { directRefused.store(true, ordering: .relaxed) }
            try write(buffer, UnsafeRawBufferPointer(start: nil, count: 0), at: offset)
        }
        if durable { try sync() }
    }

    /// Writes all of `buffer` at `offset` through `call` (bytes written, or -errno),
    /// continuing short writes and retrying EINTR. Returns false, having written nothing,
    /// when the first call fails with an errno in `refusedBy`: the caller writes another way.
    private func writeAll(_ buffer: UnsafeRawBufferPointer, at offset: UInt64, operation: String, refusedBy: [Int32],
                          _ call: (UnsafeRawPointer, Int, Int64) -> Int64) throws(BlockError) -> Bool {
        var done = 0
        while done < buffer.count {
            let count = call(buffer.baseAddress! + done, buffer.count - done, Int64(offset) + Int64(done))
            if count == -Int64(EINTR) { continue }
            if count < 0 && done == 0 && refusedBy.contains(Int32(-count)) { return false }
            if count < 0 { throw .io(operation: "\(operation) at \(offset)", errno: Int32(-count)) }
            if count == 0 { throw .io(operation: "\(operation) at \(offset)", errno: EIO) }
            done += Int(count)
        }
        return true
    }

    package func readCached(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BlockError) -> Int {
        guard buffer.count > 0, !noWaitUnsupported.withLock({ $0 }) else { return 0 }
        while true {
            let count = cblock_pread_nowait(descriptor, buffer.baseAddress, UInt64(buffer.count), Int64(offset))
            if count >= 0 { return Int(count) }
            switch Int32(-count) {
            case EINTR: continue
            case EAGAIN: return 0
            case EOPNOTSUPP, EINVAL, ENOSYS:
                noWaitUnsupported.withLock { $0 = true }
                return 0
            default: throw .io(operation: "preadv2(RWF_NOWAIT) at \(offset)", errno: Int32(-count))
            }
        }
    }

    package func readAsync(_ transfers: [IOTransfer]) async throws(BlockError) {
        guard !transfers.isEmpty else { return }
        if let asyncReads, let result = await asyncReads.read(transfers, descriptor: descriptor) {
            try result.get()
            return
        }
        // No ring, or it is at its in-flight limit: read on this thread.
        for transfer in transfers { try read(into: transfer.buffer, at: transfer.offset) }
    }

    package func writeBatch(_ transfers: [IOTransfer]) throws(BlockError) {
        guard !transfers.isEmpty else { return }
        // The process's batch rings (BatchRingPool): held for the whole batch, or pwrite
        // when the kernel refuses io_uring.
        let result: BlockError? = BatchRingPool.shared.withRing { ring in
            guard let ring else { return fallbackBatch(transfers) }
            return uringBatch(ring, transfers)
        }
        if let result { throw result }
    }

    package func sync() throws(BlockError) {
        while fdatasync(descriptor) != 0 {
            if errno == EINTR { continue }
            throw .io(operation: "fdatasync", errno: errno)
        }
    }

    package func punchHole(at offset: UInt64, lengthBytes: UInt64) throws(BlockError) {
        guard lengthBytes > 0 else { return }
        let rc = cblock_fallocate(descriptor, fallocPunchHole | fallocKeepSize, Int64(offset), Int64(lengthBytes))
        if rc == 0 { return }
        let code = errno
        guard code == EOPNOTSUPP else { throw .io(operation: "fallocate(PUNCH_HOLE)", errno: code) }
        // The file system cannot punch holes: write zeros instead, 1 MiB at a time.
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { chunk.deallocate() }
        chunk.initializeMemory(as: UInt8.self, repeating: 0)
        var done: UInt64 = 0
        while done < lengthBytes {
            let length = Int(min(UInt64(chunk.count), lengthBytes - done))
            try write(UnsafeRawBufferPointer(rebasing: chunk[0..<length]), UnsafeRawBufferPointer(start: nil, count: 0),
                      at: offset + done)
            done += UInt64(length)
        }
    }

    package func dataRanges(from offset: UInt64, to end: UInt64) throws(BlockError) -> [Range<UInt64>] {
        var ranges: [Range<UInt64>] = []
        var cursor = offset
        // Each round moves the cursor past one data extent, so the loop is bounded by the
        // number of extents in the range.
        while cursor < end {
            let dataStart = cblock_seek_data(descriptor, Int64(cursor))
            if dataStart < 0 {
                if errno == ENXIO { break }
                if errno == EINVAL { return [offset..<end] } // no SEEK_DATA support: all data
                throw .io(operation: "lseek(SEEK_DATA)", errno: errno)
            }
            if UInt64(dataStart) >= end { break }
            let holeStart = cblock_seek_hole(descriptor, dataStart)
            guard holeStart >= 0 else { throw .io(operation: "lseek(SEEK_HOLE)", errno: errno) }
            ranges.append(UInt64(dataStart)..<min(UInt64(holeStart), end))
            cursor = UInt64(holeStart)
        }
        return ranges
    }

    package func sizeBytes() throws(BlockError) -> UInt64 {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .io(operation: "fstat", errno: errno) }
        return UInt64(info.st_size)
    }

    /// Bytes the file system has allocated for the file (holes excluded).
    package func allocatedBytes() throws(BlockError) -> UInt64 {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw .io(operation: "fstat", errno: errno) }
        return UInt64(info.st_blocks) * 512
    }

    package func setSize(_ sizeBytes: UInt64) throws(BlockError) {
        guard ftruncate(descriptor, off_t(sizeBytes)) == 0 else {
            throw .io(operation: "ftruncate", errno: errno)
        }
    }

    // MARK: - Batches

    private struct Pending {
        var buffer: UnsafeMutableRawBufferPointer
        var offset: UInt64
        var direct: Bool
    }

    private func canWriteDirect(_ buffer: UnsafeMutableRawBufferPointer, _ offset: UInt64) -> Bool {
        let alignment = Self.directAlignmentBytes
        return directDescriptor >= 0 && Int(bitPattern: buffer.baseAddress) % alignment == 0
            && buffer.count % alignment == 0 && offset % UInt64(alignment) == 0
    }

    private func fallbackBatch(_ transfers: [IOTransfer]) -> BlockError? {
        do {
            for transfer in transfers {
                try write(UnsafeRawBufferPointer(transfer.buffer), UnsafeRawBufferPointer(start: nil, count: 0),
                          at: transfer.offset)
            }
            return nil
        } catch {
            return error
        }
    }

    /// Writes the transfers through io_uring, resubmitting the rest of any short transfer.
    /// Every round either completes bytes or fails, so the loop ends.
    private func uringBatch(_ ring: OpaquePointer, _ transfers: [IOTransfer]) -> BlockError? {
        var queue = transfers.map {
            Pending(buffer: $0.buffer, offset: $0.offset, direct: canWriteDirect($0.buffer, $0.offset))
        }
        var nextToSubmit = 0
        var inFlight = 0
        let capacity = Int(Self.ringEntries)
        var tags = [UInt64](repeating: 0, count: capacity)
        var results = [Int32](repeating: 0, count: capacity)
        var failure: BlockError?
        while failure == nil && (nextToSubmit < queue.count || inFlight > 0) {
            while nextToSubmit < queue.count && inFlight < capacity {
                let item = queue[nextToSubmit]
                let rc = curing_prep_write(ring, item.direct ? directDescriptor : descriptor,
                                           item.buffer.baseAddress, UInt32(item.buffer.count),
                                           item.offset, UInt64(nextToSubmit))
                if rc != 0 { break }
                nextToSubmit += 1
                inFlight += 1
            }
            let submitted = curing_submit_and_wait(ring, UInt32(inFlight))
            if submitted < 0 {
                failure = .io(operation: "io_uring_submit", errno: -submitted)
                break
            }
            let reaped = Int(curing_reap(ring, &tags, &results, UInt32(capacity)))
            for slot in 0..<reaped where tags[slot] != Self.droppedTag {
                inFlight -= 1
                let index = Int(tags[slot])
                let outcome = results[slot]
                if outcome == -EINTR || outcome == -EAGAIN {
                    queue.append(queue[index])
                    continue
                }
                if outcome == -EINVAL && queue[index].direct {
                    // The file system wants another alignment for O_DIRECT: write buffered.
                    var buffered = queue[index]
                    buffered.direct = false
                    queue.append(buffered)
                    continue
                }
                if outcome < 0 {
                    failure = failure ?? .io(operation: "io_uring write", errno: -outcome)
                    continue
                }
                if outcome == 0 {
                    failure = failure ?? .io(operation: "io_uring write", errno: EIO)
                    continue
                }
                let done = Int(outcome)
                if done < queue[index].buffer.count {
                    let rest = Pending(buffer: UnsafeMutableRawBufferPointer(rebasing: queue[index].buffer[done...]),
                                       offset: queue[index].offset + UInt64(done),
                                       direct: queue[index].direct && done % Self.directAlignmentBytes == 0)
                    queue.append(rest)
                }
            }
        }
        // Before the buffers can be reused: what the kernel did not take (a failed or partial
        // submit) becomes no-ops that never touch them, and what it took is waited for
        // without submitting again (a submit that keeps failing would never wait).
        if curing_sq_pending(ring) > 0 {
            var dropped = [UInt64](repeating: 0, count: Int(Self.ringEntries))
            inFlight -= Int(curing_drop_unsubmitted(ring, Self.droppedTag, &dropped, Self.ringEntries))
        }
        while inFlight > 0 {
            var tag: UInt64 = 0
            var result: Int32 = 0
            if curing_wait_one(ring, &tag, &result) < 0 {
                usleep(1000)
            } else if tag != Self.droppedTag {
                inFlight -= 1
            }
        }
        return failure
    }

    /// The tag of a queued write turned into a no-op after a failed submit.
    private static let droppedTag = UInt64.max
}
