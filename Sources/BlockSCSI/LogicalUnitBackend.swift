// The engine surface the command layer uses, as a protocol so tests can wrap a real volume
// (to observe FUA flags or inject engine errors) without a second implementation of the engine.
//
// Invariant: `Volume` is the only production conformer; nothing here adds behaviour.

import BlockEngine
import NIOCore

/// The block-device operations a logical unit needs; `Volume` provides all of them.
protocol LogicalUnitBackend: Sendable {
    var blockSizeBytes: Int { get }
    var blockCount: UInt64 { get }
    var uuid: VolumeUUID { get }
    /// The volume's replication role (`Volume.role`).
    var role: VolumeRole { get }
    /// Nil while writes and flushes are accepted, else the error they fail with
    /// (`Volume.writeRefusal`): the ALUA state follows it. Read on every command, so cheap.
    var writeRefusal: BlockError? { get }
    /// `pageCacheChecked`: `readWithoutWaiting` just failed for this range (see `Volume.read`).
    func read(at lba: UInt64, into buffer: UnsafeMutableRawBufferPointer, pageCacheChecked: Bool) async throws(BlockError)
    /// Returns the LSN of the write's last log record.
    @discardableResult
    func write(at lba: UInt64, _ source: some BlockWriteSource, fua: Bool) async throws(BlockError) -> UInt64
    /// False when the read would wait for the device (see `Volume.readWithoutWaiting`).
    func readWithoutWaiting(at lba: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockError) -> Bool
    /// False, with nothing written, when the write would wait (see `Volume.writeWithoutWaiting`).
    func writeWithoutWaiting(at lba: UInt64, _ source: some BlockWriteSource) throws(BlockError) -> Bool
    @discardableResult
    func trim(at lba: UInt64, blockCount: UInt64) async throws(BlockError) -> UInt64
    /// Returns the LSN made durable.
    @discardableResult
    func flush() async throws(BlockError) -> UInt64
    func blockStatus(at lba: UInt64, blockCount: UInt64) throws(BlockError) -> [BlockStatusExtent]
}

extension Volume: LogicalUnitBackend {}

/// A slice of a NIO buffer handed to the engine without copying.
struct ByteBufferWriteSource: BlockWriteSource {
    let buffer: ByteBuffer

    var byteCount: Int { buffer.readableBytes }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeReadableBytes(body)
    }
}
