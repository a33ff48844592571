// The data path: READ, WRITE, VERIFY, WRITE AND VERIFY, COMPARE AND WRITE, ORWRITE,
// SYNCHRONIZE CACHE and PRE-FETCH (SBC-4 chapter 5).
//
// Invariants:
// - Range and transfer-length checks come before any engine call; a zero-length transfer
//   touches nothing (after its LBA is checked).
// - One engine call per command (the engine splits large writes itself; a FUA read adds a
//   flush, a partial final block a read-modify-write); reads go straight into the response
//   buffer and writes take the Data-Out buffer as is: no copies.
// - Writes hold their LBA range in the range lock; with FUA, or with the write cache off,
//   they complete only when durable (the engine's fua).
// - WRITE and WRITE AND VERIFY accept a Data-Out of another length than the CDB's (FCP-4
//   9.4.2 option a); every other command with Data-Out requires the exact length (0E/03).

import BlockEngine
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension SCSILogicalUnit {
    /// READ. With FUA the blocks must come from the medium, so acknowledged writes still in
    /// the volatile part of the log are made durable first (SBC-4 5.11); DPO needs nothing.
    /// `triedWithoutWaiting`: `readWithoutWaiting` ran for this command; unless it stopped
    /// for the flush, it found part of the range uncached, so the page cache is not asked again.
    func read(_ extent: BlockExtent, fua: Bool, triedWithoutWaiting: Bool = false) async throws(CommandFailure) -> SCSIResult {
        try checkRange(extent)
        guard extent.blockCount > 0 else { return .good() }
        try checkTransferLength(extent.blockCount)
        let flushFirst = fua && modeParameters.writeCacheEnabled
        if flushFirst {
            try await engineCall(.read) { () async throws(BlockError) in try await backend.flush() }
        }
        return .good(try await readBlocks(extent, pageCacheChecked: triedWithoutWaiting && !flushFirst))
    }

    /// WRITE. A Data-Out shorter or longer than the CDB says is processed as FCP-4 9.4.2
    /// option a) (libiscsi's residual tests require it): what arrived, up to the CDB's length,
    /// is written; a final partial block keeps its other bytes; the transport reports the
    /// residual.
    func write(_ extent: BlockExtent, fua: Bool, _ request: SCSICommandRequest) async throws(CommandFailure) -> SCSIResult {
        try checkRange(extent)
        guard extent.blockCount > 0 else { return .good() }
        try checkTransferLength(extent.blockCount)
        let data = receivedDataOut(request, upTo: byteCount(extent.blockCount))
        let durable = mustBeDurable(fua: fua)
        try await exclusive(extent) { () async throws(CommandFailure) in
            try await writeReceived(extent.lba, data, durable: durable)
        }
        return .good()
    }

    /// READ when every block is in memory; nil (nothing done) when it must wait: for the
    /// device, or for a flush (FUA with the write cache on).
    func readWithoutWaiting(_ extent: BlockExtent, fua: Bool) throws(CommandFailure) -> SCSIResult? {
        try checkRange(extent)
        guard extent.blockCount > 0 else { return .good() }
        try checkTransferLength(extent.blockCount)
        if fua && modeParameters.writeCacheEnabled { return nil }
        var (buffer, storage) = blockBuffer(extent)
        let done = try engineCall(.read) { () throws(BlockError) in
            try backend.readWithoutWaiting(at: extent.lba, into: storage)
        }
        guard done else { return nil }
        buffer.moveWriterIndex(forwardBy: storage.count)
        return .good(buffer)
    }

    /// WRITE when it needs no waiting: not durable (no FUA, write cache on), whole blocks,
    /// its range free in the range lock and room in the log. Nil (nothing written) otherwise.
    func writeWithoutWaiting(_ extent: BlockExtent, fua: Bool, _ request: SCSICommandRequest) throws(CommandFailure) -> SCSIResult? {
        try checkRange(extent)
        guard extent.blockCount > 0 else { return .good() }
        try checkTransferLength(extent.blockCount)
        let data = receivedDataOut(request, upTo: byteCount(extent.blockCount))
        guard !mustBeDurable(fua: fua), data.readableBytes % blockSizeBytes == 0 else { return nil }
        guard data.readableBytes > 0 else { return .good() }
        guard let grant = rangeLock.tryAcquire(extent.lba..<(extent.lba + extent.blockCount)) else { return nil }
        defer { rangeLock.release(grant) }
        let written = try engineCall(.write) { () throws(BlockError) in
            try backend.writeWithoutWaiting(at: extent.lba, ByteBufferWriteSource(buffer: data))
        }
        return written ? .good() : nil
    }

    /// VERIFY (SBC-4 5.29): BYTCHK 00b reads the range; 01b compares it with the Data-Out;
    /// 11b compares every block with the one Data-Out block.
    func verify(_ extent: BlockExtent, byteCheck: VerifyByteCheck, _ request: SCSICommandRequest) async throws(CommandFailure) -> SCSIResult {
        try checkRange(extent)
        guard extent.blockCount > 0 else { return .good() }
        try checkTransferLength(extent.blockCount)
        switch byteCheck {
        case .mediumOnly:
            _ = try await readBlocks(extent)
        case .compare:
            let expected = try dataOut(request, lengthBytes: byteCount(extent.blockCount))
            try compare(try await readBlocks(extent), expected, repeating: false)
        case .compareOneBlock:
            let expected = try dataOut(request, lengthBytes: blockSizeBytes)
            try compare(try await readBlocks(extent), expected, repeating: true)
        }
        return .good()
    }

    /// WRITE AND VERIFY (SBC-4 5.40): the write is made durable (verification is of the
    /// medium), then with BYTCHK read back and compared. Data-Out length mismatches as WRITE.
    func writeAndVerify(_ extent: BlockExtent, byteCheck: Bool, _ request: SCSICommandRequest) async throws(CommandFailure) -> SCSIResult {
        try checkRange(extent)
        guard extent.blockCount > 0 else { return .good() }
        try checkTransferLength(extent.blockCount)
        let data = receivedDataOut(request, upTo: byteCount(extent.blockCount))
        try await exclusive(extent) { () async throws(CommandFailure) in
            try await writeReceived(extent.lba, data, durable: true)
            let wholeBlocks = UInt64(data.readableBytes / blockSizeBytes)
            if byteCheck && wholeBlocks > 0 {
                let written = data.getSlice(at: data.readerIndex, length: Int(wholeBlocks) * blockSizeBytes)!
                try compare(try await readBlocks(BlockExtent(lba: extent.lba, blockCount: wholeBlocks)), written, repeating: false)
            }
        }
        return .good()
    }

    /// COMPARE AND WRITE (SBC-4 5.3): under the range lock, read, compare with the first half
    /// of the Data-Out, and only if equal write the second half.
    func compareAndWrite(_ extent: BlockExtent, fua: Bool, _ request: SCSICommandRequest) async throws(CommandFailure) -> SCSIResult {
        guard extent.blockCount <= UInt64(limits.maximumCompareAndWriteBlocks) else { throw .invalidFieldInCDB(byte: 13) }
        try checkRange(extent)
        guard extent.blockCount > 0 else {
            // Zero blocks is no error (SBC-4 5.3), but with a Data-Out the count is wrong
            // (libiscsi 1.19 sends 256 blocks this way and expects INVALID FIELD IN CDB).
            if request.expectedDataTransferLength > 0 { throw .invalidFieldInCDB(byte: 13) }
            return .good()
        }
        let halfBytes = byteCount(extent.blockCount)
        let data = try dataOut(request, lengthBytes: 2 * halfBytes)
        let expected = data.getSlice(at: data.readerIndex, length: halfBytes)!
        let replacement = data.getSlice(at: data.readerIndex + halfBytes, length: halfBytes)!
        let durable = mustBeDurable(fua: fua)
        try await exclusive(extent) { () async throws(CommandFailure) in
            try compare(try await readBlocks(extent), expected, repeating: false)
            try await writeBlocks(extent.lba, replacement, durable: durable)
        }
        return .good()
    }

    /// ORWRITE(16) (SBC-4 5.9): under the range lock, read, OR the Data-Out in, write back.
    func orWrite(_ extent: BlockExtent, fua: Bool, _ request: SCSICommandRequest) async throws(CommandFailure) -> SCSIResult {
        try checkRange(extent)
        guard extent.blockCount > 0 else { return .good() }
        try checkTransferLength(extent.blockCount)
        let mask = try dataOut(request, lengthBytes: byteCount(extent.blockCount))
        let durable = mustBeDurable(fua: fua)
        try await exclusive(extent) { () async throws(CommandFailure) in
            var blocks = try await readBlocks(extent)
            blocks.withUnsafeMutableReadableBytes { target in
                mask.withUnsafeReadableBytes { source in
                    precondition(target.count == source.count, "OR whole blocks")
                    for index in 0..<target.count { target[index] |= source[index] }
                }
            }
            try await writeBlocks(extent.lba, blocks, durable: durable)
        }
        return .good()
    }

    /// SYNCHRONIZE CACHE (SBC-4 5.22): every acknowledged write becomes durable as the
    /// volume's durability mode requires. The engine flushes everything; the range is only
    /// checked. IMMED is accepted and the answer still waits for the flush.
    func synchronizeCache(_ extent: BlockExtent) async throws(CommandFailure) -> SCSIResult {
        try checkRange(extent)
        try await engineCall(.write) { () async throws(BlockError) in try await backend.flush() }
        return .good()
    }

    /// PRE-FETCH (SBC-4 5.10): nothing to load (no cache to fill); GOOD, not CONDITION MET.
    func prefetch(_ extent: BlockExtent) throws(CommandFailure) -> SCSIResult {
        try checkRange(extent)
        return .good()
    }

    // MARK: - Shared pieces

    func byteCount(_ blockCount: UInt64) -> Int {
        precondition(blockCount <= UInt64(limits.maximumTransferBlocks) * 2, "transfer checked against the limit")
        return Int(blockCount) * blockSizeBytes
    }

    /// The blocks of `extent`, read into a new buffer (bounded by the transfer limit).
    func readBlocks(_ extent: BlockExtent, pageCacheChecked: Bool = false) async throws(CommandFailure) -> ByteBuffer {
        var (buffer, storage) = blockBuffer(extent)
        do throws(BlockError) {
            try await backend.read(at: extent.lba, into: storage, pageCacheChecked: pageCacheChecked)
        } catch {
            throw .engine(error, .read)
        }
        buffer.moveWriterIndex(forwardBy: storage.count)
        return buffer
    }

    /// A new buffer for the blocks of `extent` and its storage. The engine reads straight into
    /// the storage, which stays alive and untouched (the caller holds the buffer, and does not
    /// mutate it, until the read returns): no copy per read. The caller then moves the writer
    /// index over the storage.
    func blockBuffer(_ extent: BlockExtent) -> (ByteBuffer, UnsafeMutableRawBufferPointer) {
        let lengthBytes = byteCount(extent.blockCount)
        var buffer = allocator.buffer(capacity: lengthBytes)
        let storage = buffer.withUnsafeMutableWritableBytes { raw in
            UnsafeMutableRawBufferPointer(rebasing: raw[..<lengthBytes])
        }
        return (buffer, storage)
    }

    /// The Data-Out that arrived, cut to `lengthBytes` (the CDB's) and to the expected length.
    func receivedDataOut(_ request: SCSICommandRequest, upTo lengthBytes: Int) -> ByteBuffer {
        guard let data = request.dataOut else { return ByteBuffer() }
        let usable = min(lengthBytes, max(0, request.expectedDataTransferLength), data.readableBytes)
        return data.getSlice(at: data.readerIndex, length: usable)!
    }

    /// Writes `data` from `lba` on: whole blocks as they are, a trailing partial block merged
    /// into the block's current contents (the caller holds the range).
    func writeReceived(_ lba: UInt64, _ data: ByteBuffer, durable: Bool) async throws(CommandFailure) {
        let wholeBytes = data.readableBytes / blockSizeBytes * blockSizeBytes
        if wholeBytes > 0 {
            try await writeBlocks(lba, data.getSlice(at: data.readerIndex, length: wholeBytes)!, durable: durable)
        }
        let partialBytes = data.readableBytes - wholeBytes
        guard partialBytes > 0 else { return }
        let partialLBA = lba + UInt64(wholeBytes / blockSizeBytes)
        var block = try await readBlocks(BlockExtent(lba: partialLBA, blockCount: 1))
        block.setBuffer(data.getSlice(at: data.readerIndex + wholeBytes, length: partialBytes)!, at: block.readerIndex)
        try await writeBlocks(partialLBA, block, durable: durable)
    }

    func writeBlocks(_ lba: UInt64, _ data: ByteBuffer, durable: Bool) async throws(CommandFailure) {
        try await engineCall(.write) { () async throws(BlockError) in
            try await backend.write(at: lba, ByteBufferWriteSource(buffer: data), fua: durable)
        }
    }

    /// MISCOMPARE (1D/00) with the offset of the first differing byte unless `actual` equals
    /// `expected` (or, with `repeating`, every block of `actual` equals the one block).
    func compare(_ actual: ByteBuffer, _ expected: ByteBuffer, repeating: Bool) throws(CommandFailure) {
        let mismatch: Int? = actual.withUnsafeReadableBytes { actualBytes in
            expected.withUnsafeReadableBytes { expectedBytes in
                let stride = expectedBytes.count
                precondition(stride > 0 && (repeating ? actualBytes.count % stride == 0 : actualBytes.count == stride),
                             "compare whole blocks")
                var offset = 0
                while offset < actualBytes.count {
                    let chunk = UnsafeRawBufferPointer(rebasing: actualBytes[offset..<(offset + stride)])
                    if let index = firstDifference(chunk, expectedBytes) { return offset + index }
                    offset += stride
                }
                return nil
            }
        }
        if let mismatch { throw .check(.miscompareDuringVerify, information: UInt32(clamping: mismatch)) }
    }

    private func firstDifference(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int? {
        precondition(a.count == b.count, "compare equal lengths")
        guard a.count > 0, memcmp(a.baseAddress!, b.baseAddress!, a.count) != 0 else { return nil }
        return (0..<a.count).first { a[$0] != b[$0] }
    }
}
