// A volume whose writes can be held at a gate, so a test can keep a command executing for as
// long as it needs (resets and reinstatement must wait for such commands).

import BlockEngine
import Synchronization
@testable import BlockSCSI

/// Holds every write that arrives while it is closed, until `open()`.
final class WriteGate: Sendable {
    private struct State {
        var closed = false
        var held = 0
        var waiters: [CheckedContinuation<Bool, Never>] = []
    }

    private let state = Mutex(State())

    var isClosed: Bool { state.withLock { $0.closed } }
    /// Writes waiting at the gate now.
    var heldCount: Int { state.withLock { $0.held } }

    func close() { state.withLock { $0.closed = true } }

    func open() {
        let waiters = state.withLock { state in
            state.closed = false
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: true) }
    }

    /// Returns at once when open; otherwise waits for `open()`.
    func pass() async {
        let waited = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            let wait = state.withLock { state in
                guard state.closed else { return false }
                state.held += 1
                state.waiters.append(continuation)
                return true
            }
            if !wait { continuation.resume(returning: false) }
        }
        if waited { state.withLock { $0.held -= 1 } }
    }

    /// Waits (bounded) until `count` writes are held.
    func waitUntilHeld(_ count: Int) async throws {
        for _ in 0..<2_000 where heldCount < count { try await Task.sleep(for: .milliseconds(5)) }
        guard heldCount >= count else { throw InitiatorError.timeout("\(count) writes held at the gate") }
    }
}

/// A real volume behind a write gate.
struct GatedBackend: LogicalUnitBackend {
    let volume: Volume
    let gate: WriteGate

    var blockSizeBytes: Int { volume.blockSizeBytes }
    var blockCount: UInt64 { volume.blockCount }
    var uuid: VolumeUUID { volume.uuid }
    var role: VolumeRole { volume.role }
    var writeRefusal: BlockError? { volume.writeRefusal }

    func read(at lba: UInt64, into buffer: UnsafeMutableRawBufferPointer, pageCacheChecked: Bool) async throws(BlockError) {
        try await volume.read(at: lba, into: buffer, pageCacheChecked: pageCacheChecked)
    }

    func write(at lba: UInt64, _ source: some BlockWriteSource, fua: Bool) async throws(BlockError) -> UInt64 {
        await gate.pass()
        return try await volume.write(at: lba, source, fua: fua)
    }

    func readWithoutWaiting(at lba: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockError) -> Bool {
        try volume.readWithoutWaiting(at: lba, into: buffer)
    }

    func writeWithoutWaiting(at lba: UInt64, _ source: some BlockWriteSource) throws(BlockError) -> Bool {
        // A closed gate sends every write down the waiting path.
        gate.isClosed ? false : try volume.writeWithoutWaiting(at: lba, source)
    }

    func trim(at lba: UInt64, blockCount: UInt64) async throws(BlockError) -> UInt64 {
        try await volume.trim(at: lba, blockCount: blockCount)
    }

    func flush() async throws(BlockError) -> UInt64 {
        try await volume.flush()
    }

    func blockStatus(at lba: UInt64, blockCount: UInt64) throws(BlockError) -> [BlockStatusExtent] {
        try volume.blockStatus(at: lba, blockCount: blockCount)
    }
}
