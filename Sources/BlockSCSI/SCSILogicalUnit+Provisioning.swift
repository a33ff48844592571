// Thin provisioning commands: WRITE SAME (SBC-4 5.47, 5.48), UNMAP (5.31) and GET LBA STATUS
// (5.7).
//
// Invariants:
// - WRITE SAME writes its block with one engine call per `writeSameChunkBytes`, never one per
//   block; with UNMAP (thin units only) it deallocates instead.
// - UNMAP validates the whole parameter list before deallocating anything.
// - GET LBA STATUS looks at no more than `lbaStatusWindowBlocks` blocks, in steps that stop
//   once the descriptors the allocation length has room for (at most `maxLBAStatusDescriptors`)
//   are known, and each step asks the engine about at most `lbaStatusMaxChunkBlocks` blocks.
//   The walk (index lookups, SEEK_DATA/SEEK_HOLE) blocks, so it runs on the unit's
//   `statusQueue`, never on the caller's thread (a transport's network event loop).

import BlockEngine
import Dispatch
import NIOCore

extension SCSILogicalUnit {
    static let writeSameChunkBytes = 1 << 20
    static let lbaStatusWindowBlocks: UInt64 = 1 << 24
    static let maxLBAStatusDescriptors = 1024
    /// The walk asks for this many blocks first and doubles each step up to the maximum: a
    /// short answer costs a short walk, a long run costs few steps.
    static let lbaStatusFirstChunkBlocks: UInt64 = 1024
    static let lbaStatusMaxChunkBlocks: UInt64 = 1 << 16

    func writeSame(_ command: WriteSameCommand, _ request: SCSICommandRequest) async throws(CommandFailure) -> SCSIResult {
        // The Data-Out must be exactly one block (unless NDOB) before anything else is judged.
        let block = command.noDataOutBuffer ? nil : try dataOut(request, lengthBytes: blockSizeBytes)
        if command.unmap && !configuration.thinProvisioning { throw .invalidFieldInCDB(byte: 1, bit: 3) }
        var extent = command.extent
        if extent.blockCount == 0 {
            // WSNZ is 0: a count of 0 means "through the last LBA".
            guard extent.lba <= capacityBlocks else { throw .lbaOutOfRange }
            extent.blockCount = capacityBlocks - extent.lba
        }
        try checkRange(extent)
        guard extent.blockCount <= limits.maximumWriteSameBlocks else { throw .check(.invalidFieldInCDB) }
        guard extent.blockCount > 0 else { return .good() }

        if command.unmap {
            // The initiator asked for deallocation: unmapped blocks read as zeros (LBPRZ 1),
            // whatever the Data-Out block holds (libiscsi's UnmapUntilEnd relies on it).
            try await exclusive(extent) { () async throws(CommandFailure) in
                try await engineCall(.write) { () async throws(BlockError) in
                    try await backend.trim(at: extent.lba, blockCount: extent.blockCount)
                }
            }
            return .good()
        }
        let pattern = block ?? ByteBuffer(repeating: 0, count: blockSizeBytes)
        let durable = mustBeDurable(fua: false)
        try await exclusive(extent) { () async throws(CommandFailure) in
            try await writeRepeated(pattern, over: extent, durable: durable)
        }
        return .good()
    }

    /// Writes `pattern` (one block) to every block of `extent`, a chunk of blocks per call.
    private func writeRepeated(_ pattern: ByteBuffer, over extent: BlockExtent, durable: Bool) async throws(CommandFailure) {
        let chunkBlocks = UInt64(max(1, Self.writeSameChunkBytes / blockSizeBytes))
        let firstChunk = min(chunkBlocks, extent.blockCount)
        var chunk = allocator.buffer(capacity: Int(firstChunk) * blockSizeBytes)
        for _ in 0..<firstChunk { chunk.writeImmutableBuffer(pattern) }
        var written: UInt64 = 0
        while written < extent.blockCount {
            let count = min(firstChunk, extent.blockCount - written)
            let slice = chunk.getSlice(at: chunk.readerIndex, length: Int(count) * blockSizeBytes)!
            try await writeBlocks(extent.lba + written, slice, durable: durable)
            written += count
        }
    }

    /// UNMAP (SBC-4 5.31): an 8-byte header, then 16-byte descriptors (LBA, block count).
    func unmap(parameterListLength: Int, _ request: SCSICommandRequest) async throws(CommandFailure) -> SCSIResult {
        // LBPU is 0 on a fully provisioned unit: the command does not exist there.
        guard configuration.thinProvisioning else { throw .check(.invalidOpcode) }
        guard parameterListLength > 0 else { return .good() }
        let list = Array(try dataOut(request, lengthBytes: parameterListLength).readableBytesView)
        guard list.count >= 8 else { throw .parameterListLengthError }
        // The lesser of the stated and the available lengths; a truncated descriptor is ignored.
        let statedBytes = Int(list.loadBigEndian(UInt16.self, at: 2))
        let descriptorCount = min(statedBytes, list.count - 8) / 16
        guard descriptorCount <= Int(limits.maximumUnmapDescriptors) else { throw .invalidFieldInParameterList(byte: 2) }
        var extents: [BlockExtent] = []
        var totalBlocks: UInt64 = 0
        for index in 0..<descriptorCount {
            let offset = 8 + 16 * index
            let extent = BlockExtent(lba: list.loadBigEndian(UInt64.self, at: offset),
                                     blockCount: UInt64(list.loadBigEndian(UInt32.self, at: offset + 8)))
            try checkRange(extent)
            totalBlocks += extent.blockCount
            guard totalBlocks <= UInt64(limits.maximumUnmapBlocks) else { throw .invalidFieldInParameterList(byte: offset + 8) }
            if extent.blockCount > 0 { extents.append(extent) }
        }
        for extent in extents {
            try await exclusive(extent) { () async throws(CommandFailure) in
                try await engineCall(.write) { () async throws(BlockError) in
                    try await backend.trim(at: extent.lba, blockCount: extent.blockCount)
                }
            }
        }
        return .good()
    }

    /// GET LBA STATUS (SBC-4 5.7): mapped and deallocated runs from the starting LBA on.
    func getLBAStatus(lba: UInt64, allocationLength: Int) async throws(CommandFailure) -> SCSIResult {
        let capacity = capacityBlocks
        guard lba < capacity else { throw .lbaOutOfRange }
        let end = lba + min(capacity - lba, Self.lbaStatusWindowBlocks)
        // At least one descriptor, so even a header-only answer says how much there is.
        let limit = max(1, min(Self.maxLBAStatusDescriptors, (allocationLength - 8) / 16))
        let runs: [BlockStatusExtent]
        if configuration.thinProvisioning {
            runs = try await onStatusQueue { () throws(CommandFailure) in try self.lbaStatusRuns(lba..<end, limit: limit) }
        } else {
            runs = [BlockStatusExtent(lba: lba, blockCount: end - lba, provisioning: .mapped)]
        }
        var data: [UInt8] = []
        data.appendBigEndian(UInt32(4 + 16 * runs.count))  // PARAMETER DATA LENGTH: bytes after it
        data.append(contentsOf: [0, 0, 0, 0])
        for run in runs {
            data.appendBigEndian(run.lba)
            data.appendBigEndian(UInt32(run.blockCount))    // the window keeps a run below 2^32 blocks
            data.append(run.provisioning == .mapped ? 0x00 : 0x01)  // PROVISIONING STATUS
            data.append(contentsOf: [0, 0, 0])
        }
        return dataIn(data, allocationLength: allocationLength)
    }

    /// The first `limit` runs of one provisioning status in `range`, asking the engine in
    /// growing steps and stopping as soon as the `limit`th run is known to end.
    private func lbaStatusRuns(_ range: Range<UInt64>, limit: Int) throws(CommandFailure) -> [BlockStatusExtent] {
        assert(range.count <= Self.lbaStatusWindowBlocks && Self.lbaStatusWindowBlocks < 1 << 32, "runs fit 32 bits")
        var runs: [BlockStatusExtent] = []
        var cursor = range.lowerBound
        var step = Self.lbaStatusFirstChunkBlocks
        // A run is complete once another one starts after it (or the range ends).
        while cursor < range.upperBound && runs.count <= limit {
            let count = min(step, range.upperBound - cursor)
            let extents = try engineCall(.read) { () throws(BlockError) in
                try backend.blockStatus(at: cursor, blockCount: count)
            }
            for extent in extents {
                if let last = runs.last, last.provisioning == extent.provisioning {
                    runs[runs.count - 1].blockCount += extent.blockCount
                } else {
                    runs.append(extent)
                }
            }
            cursor += count
            step = min(step * 2, Self.lbaStatusMaxChunkBlocks)
        }
        return Array(runs.prefix(limit))
    }

    /// Runs `body` on the status queue and returns its outcome to the calling task.
    private func onStatusQueue<T: Sendable>(
        _ body: @escaping @Sendable () throws(CommandFailure) -> T
    ) async throws(CommandFailure) -> T {
        let outcome: Result<T, CommandFailure> = await withCheckedContinuation { continuation in
            statusQueue.async {
                do throws(CommandFailure) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try outcome.get()
    }
}
