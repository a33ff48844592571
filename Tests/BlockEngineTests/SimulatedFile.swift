// A volume file in memory that records every write, hole punch and sync the engine issues,
// so a test can "lose power" at any point of the history: everything before the last sync
// survives, later operations survive in any subset (applied in order), and one of them may be
// torn at 512-byte sector granularity. A durable `writeThrough` (RWF_DSYNC) is modelled as
// its worst case, a FUA write: it survives, but makes nothing written before it durable.

import Synchronization
@testable import BlockEngine

final class SimulatedFile: VolumeFileIO, @unchecked Sendable {
    enum Operation {
        case write(offset: UInt64, bytes: [UInt8])
        /// A write durable on its own once complete (FUA); earlier writes stay volatile.
        case durableWrite(offset: UInt64, bytes: [UInt8])
        case punch(offset: UInt64, length: UInt64)
        case resize(UInt64)
        case sync
    }

    static let sectorBytes = 512

    private let state: Mutex<State>

    private struct State {
        var image: [UInt8]
        /// The image at the start of the recorded history (durable by definition).
        var baseImage: [UInt8]
        var history: [Operation] = []
        var syncCount = 0
        var failNextSync: Int32? = nil
    }

    init(image: [UInt8] = []) {
        state = Mutex(State(image: image, baseImage: image))
    }

    /// Operations recorded so far (the crash points are 0...historyCount).
    var historyCount: Int { state.withLock { $0.history.count } }
    var syncCount: Int { state.withLock { $0.syncCount } }
    var image: [UInt8] { state.withLock { $0.image } }

    /// Starts a new history from the current image (treated as durable: the volume was just
    /// opened, which syncs).
    func resetHistory() {
        state.withLock { state in
            state.baseImage = state.image
            state.history = []
        }
    }

    /// Makes the next sync fail with `errno`, once.
    func failNextSync(errno: Int32) { state.withLock { $0.failNextSync = errno } }

    /// The file as a power cut after the first `point` operations could leave it.
    func crashImage(at point: Int, using generator: inout some RandomNumberGenerator,
                    tearProbability: Double = 0.3) -> [UInt8] {
        let (base, history) = state.withLock { ($0.baseImage, Array($0.history.prefix(point))) }
        let lastSync = history.lastIndex(where: { if case .sync = $0 { return true } else { return false } })
        var image = base
        let durableEnd = lastSync.map { $0 + 1 } ?? 0
        for operation in history[0..<durableEnd] { Self.apply(operation, to: &image) }
        let volatile = Array(history[durableEnd...])
        let tornIndex = Double.random(in: 0..<1, using: &generator) < tearProbability && !volatile.isEmpty
            ? Int.random(in: 0..<volatile.count, using: &generator) : nil
        let keepProbability = Double.random(in: 0...1, using: &generator)
        for (index, operation) in volatile.enumerated() {
            if case .durableWrite = operation {
                Self.apply(operation, to: &image)
            } else if index == tornIndex, case let .write(offset, bytes) = operation {
                Self.applyTorn(offset: offset, bytes: bytes, to: &image, using: &generator)
            } else if Double.random(in: 0..<1, using: &generator) < keepProbability {
                Self.apply(operation, to: &image)
            } else if case .resize = operation {
                Self.apply(operation, to: &image)
            }
        }
        return image
    }

    private static func apply(_ operation: Operation, to image: inout [UInt8]) {
        switch operation {
        case let .write(offset, bytes), let .durableWrite(offset, bytes):
            let end = Int(offset) + bytes.count
            if image.count < end { image += [UInt8](repeating: 0, count: end - image.count) }
            image.replaceSubrange(Int(offset)..<end, with: bytes)
        case let .punch(offset, length):
            let end = min(Int(offset + length), image.count)
            if Int(offset) < end {
                image.replaceSubrange(Int(offset)..<end, with: [UInt8](repeating: 0, count: end - Int(offset)))
            }
        case let .resize(size):
            if image.count < Int(size) {
                image += [UInt8](repeating: 0, count: Int(size) - image.count)
            } else {
                image.removeLast(image.count - Int(size))
            }
        case .sync:
            break
        }
    }

    /// Applies a random subset of the sectors `bytes` touches.
    private static func applyTorn(offset: UInt64, bytes: [UInt8], to image: inout [UInt8],
                                  using generator: inout some RandomNumberGenerator) {
        let start = Int(offset), end = start + bytes.count
        if image.count < end { image += [UInt8](repeating: 0, count: end - image.count) }
        var sector = start / sectorBytes * sectorBytes
        while sector < end {
            let from = max(sector, start), to = min(sector + sectorBytes, end)
            if Bool.random(using: &generator) {
                image.replaceSubrange(from..<to, with: bytes[(from - start)..<(to - start)])
            }
            sector += sectorBytes
        }
    }

    /// Prints the recorded history (for debugging a failing seed).
    func dumpHistory(upTo point: Int, geometry: (blockSize: Int, blocks: UInt64)) {
        let history = state.withLock { $0.history }
        for (index, operation) in history.enumerated() {
            let marker = index < point ? " " : "x"
            switch operation {
            case let .write(offset, bytes), let .durableWrite(offset, bytes):
                var note = ""
                if bytes.count >= 64, case let .valid(header) = bytes.withUnsafeBytes({ WALRecordHeader.decode($0) }) {
                    note = "record \(header.kind) lsn=\(header.lsn) lba=\(header.lba)+\(header.blockCount) hint=\(header.durableHintLSN) session=\(header.sessionID)"
                } else if offset < 8192 {
                    note = "superblock"
                }
                let kind = if case .durableWrite = operation { "write FUA" } else { "write" }
                print("\(marker) \(index) \(kind) off=\(offset) len=\(bytes.count) \(note)")
            case let .punch(offset, length): print("\(marker) \(index) punch off=\(offset) len=\(length)")
            case let .resize(size): print("\(marker) \(index) resize \(size)")
            case .sync: print("\(marker) \(index) sync")
            }
        }
    }

    // MARK: - VolumeFileIO

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BlockError) {
        try state.withLock { (state) throws(BlockError) in
            let end = Int(offset) + buffer.count
            guard end <= state.image.count else {
                throw BlockError.truncated(expectedBytes: UInt64(end), actualBytes: UInt64(state.image.count))
            }
            state.image.withUnsafeBytes { image in
                buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: image[Int(offset)..<end]))
            }
        }
    }

    func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, at offset: UInt64) throws(BlockError) {
        let bytes = Array(first) + Array(second)
        record(.write(offset: offset, bytes: bytes))
    }

    func writeThrough(_ buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BlockError) {
        guard durable else {
            record(.write(offset: offset, bytes: Array(buffer)))
            return
        }
        let failure: Int32? = state.withLock { state in
            defer { state.failNextSync = nil }
            return state.failNextSync
        }
        if let failure {
            // The write may have reached the device; its flush failed.
            record(.write(offset: offset, bytes: Array(buffer)))
            throw BlockError.io(operation: "pwritev2 (RWF_DSYNC)", errno: failure)
        }
        record(.durableWrite(offset: offset, bytes: Array(buffer)))
    }


    /// Memory is always "cached": reads never suspend.
    func readCached(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BlockError) -> Int {
        try read(into: buffer, at: offset)
        return buffer.count
    }

    func readAsync(_ transfers: [IOTransfer]) async throws(BlockError) {
        for transfer in transfers { try read(into: transfer.buffer, at: transfer.offset) }
    }

    func writeBatch(_ transfers: [IOTransfer]) throws(BlockError) {
        for transfer in transfers { record(.write(offset: transfer.offset, bytes: Array(transfer.buffer))) }
    }

    func sync() throws(BlockError) {
        try state.withLock { (state) throws(BlockError) in
            if let code = state.failNextSync {
                state.failNextSync = nil
                throw BlockError.io(operation: "fdatasync", errno: code)
            }
            state.history.append(.sync)
            state.syncCount += 1
        }
    }

    func punchHole(at offset: UInt64, lengthBytes: UInt64) throws(BlockError) {
        record(.punch(offset: offset, length: lengthBytes))
    }

    func sizeBytes() throws(BlockError) -> UInt64 { UInt64(state.withLock { $0.image.count }) }

    func dataRanges(from offset: UInt64, to end: UInt64) throws(BlockError) -> [Range<UInt64>] { [offset..<end] }

    func setSize(_ sizeBytes: UInt64) throws(BlockError) { record(.resize(sizeBytes)) }

    func close() {}

    private func record(_ operation: Operation) {
        state.withLock { state in
            Self.apply(operation, to: &state.image)
            state.history.append(operation)
        }
    }
}
