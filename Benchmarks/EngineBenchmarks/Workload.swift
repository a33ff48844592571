// The I/O shapes the benchmarks drive: block size, queue depth, random or sequential access
// and what each I/O does. Queue depth N means N tasks, each issuing its next I/O when the
// previous one completed. Durable writes count only once they are durable (FUA, or the flush
// after the write returned).

import BlockEngine

enum Access: Sendable { case random, sequential }

enum Operation: Sendable {
    case read
    /// A write that returns once in the WAL (a volatile write cache).
    case write
    /// A write with FUA: returns once durable.
    case writeFUA
    /// A write followed by a flush: the pair completes once durable.
    case writeFlush
}

struct Workload: Sendable {
    var operation: Operation
    var access: Access
    var ioBytes: Int
    var queueDepth: Int
    /// The I/Os fall in blocks 0..<spanBlocks.
    var spanBlocks: UInt64

    var blocksPerIO: UInt64 { UInt64(ioBytes / 4096) }

    /// Runs `ios` I/Os spread over the queue depth. `round` varies the addresses between
    /// calls: random streams are reseeded with it, sequential streams continue from it.
    func run(ios: Int, round: Int, on volume: Volume, buffers: IOBuffers) async throws {
        precondition(buffers.count >= queueDepth && buffers.byteCount == ioBytes, "buffers do not fit the workload")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<queueDepth {
                let share = ios / queueDepth + (worker < ios % queueDepth ? 1 : 0)
                let buffer = buffers[worker]
                var addresses = AddressStream(workload: self, worker: worker, start: round * share)
                group.addTask {
                    for _ in 0..<share {
                        try await issue(at: addresses.next(), buffer: buffer, on: volume)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    private func issue(at lba: UInt64, buffer: IOBuffer, on volume: Volume) async throws {
        switch operation {
        case .read:
            try await volume.read(at: lba, into: buffer.bytes)
        case .write:
            try await volume.write(at: lba, from: UnsafeRawBufferPointer(buffer.bytes))
        case .writeFUA:
            try await volume.write(at: lba, from: UnsafeRawBufferPointer(buffer.bytes), fua: true)
        case .writeFlush:
            try await volume.write(at: lba, from: UnsafeRawBufferPointer(buffer.bytes))
            try await volume.flush()
        }
    }
}

/// The LBAs one worker visits. Sequential workers each stream through their own zone of the
/// span, so that queue depth N is N sequential streams rather than one shuffled stream.
struct AddressStream {
    private let blocksPerIO: UInt64
    private let slots: UInt64
    private let zoneStart: UInt64
    private let sequential: Bool
    private var random: SplitMix64
    private var position: UInt64

    init(workload: Workload, worker: Int, start: Int) {
        blocksPerIO = workload.blocksPerIO
        sequential = workload.access == .sequential
        let allSlots = workload.spanBlocks / blocksPerIO
        precondition(allSlots >= UInt64(workload.queueDepth), "span too small for the queue depth")
        slots = sequential ? allSlots / UInt64(workload.queueDepth) : allSlots
        zoneStart = sequential ? UInt64(worker) * slots : 0
        random = SplitMix64(seed: UInt64(worker) &* 0x9E37_79B9 &+ UInt64(start))
        position = UInt64(start)
    }

    mutating func next() -> UInt64 {
        let slot = sequential ? zoneStart + position % slots : random.next() % slots
        position += 1
        return slot * blocksPerIO
    }
}

/// A small fast generator; `SystemRandomNumberGenerator` costs a system call per number.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}

/// A page-aligned buffer filled with a pattern (not zeros, so nothing can skip the bytes).
struct IOBuffer: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
}

/// One buffer per worker, allocated once per benchmark so the measured loop does not allocate
/// them. Freed by `deallocate()`.
struct IOBuffers: @unchecked Sendable {
    let byteCount: Int
    private let buffers: [IOBuffer]

    init(count: Int, byteCount: Int) {
        self.byteCount = byteCount
        buffers = (0..<count).map { worker in
            let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 4096)
            for index in 0..<byteCount { bytes[index] = UInt8(truncatingIfNeeded: index &* 31 &+ worker &+ 1) }
            return IOBuffer(bytes: bytes)
        }
    }

    var count: Int { buffers.count }
    subscript(worker: Int) -> IOBuffer { buffers[worker] }

    func deallocate() {
        for buffer in buffers { buffer.bytes.deallocate() }
    }
}
