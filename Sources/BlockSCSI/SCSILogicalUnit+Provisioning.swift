// Thin provisioning commands: WRITE SAME (SBC-4 5.47, 5.48), UNMAP (5.31) and GET LBA STATUS
// (5.7).
//
// Invariants:
// - WRITE SAME writes its block with one engine call per `writeSameChunkBytes`, never one per
//   block; with UNMAP (thin units only) it deallocates instead.
// - UNMAP validates the whole parameter list before deallocating anything.
// - GET LBA STATUS looks at no more than `lbaStatusWindowBlocks` blocks and returns at most
//   `maxLBAStatusDescriptors` descriptors, whatever the allocation length.

import BlockEngine
import NIOCore

extension SCSILogicalUnit {
    static let writeSameChunkBytes = 1 << 20
    static let lbaStatusWindowBlocks: UInt64 = 1 << 24
    static let maxLBAStatusDescriptors = 1024

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
    func getLBAStatus(lba: UInt64, allocationLength: Int) throws(CommandFailure) -> SCSIResult {
        let capacity = capacityBlocks
        guard lba < capacity else { throw .lbaOutOfRange }
        let window = min(capacity - lba, Self.lbaStatusWindowBlocks)
        let extents: [BlockStatusExtent]
        if configuration.thinProvisioning {
            extents = try engineCall(.read) { () throws(BlockError) in try backend.blockStatus(at: lba, blockCount: window) }
        } else {
            extents = [BlockStatusExtent(lba: lba, blockCount: window, provisioning: .mapped)]
        }
        let limit = max(1, min(Self.maxLBAStatusDescriptors, (allocationLength - 8) / 16))
        var descriptors: [UInt8] = []
        var count = 0
        outer: for extent in extents {
            var start = extent.lba
            var remaining = extent.blockCount
            while remaining > 0 {
                guard count < limit else { break outer }
                let length = min(remaining, UInt64(UInt32.max))
                descriptors.appendBigEndian(start)
                descriptors.appendBigEndian(UInt32(length))
                descriptors.append(extent.provisioning == .mapped ? 0x00 : 0x01)  // PROVISIONING STATUS
                descriptors.append(contentsOf: [0, 0, 0])
                start += length
                remaining -= length
                count += 1
            }
        }
        var data: [UInt8] = []
        data.appendBigEndian(UInt32(descriptors.count + 4))  // PARAMETER DATA LENGTH: bytes after it
        data.append(contentsOf: [0, 0, 0, 0])
        return dataIn(data + descriptors, allocationLength: allocationLength)
    }
}
