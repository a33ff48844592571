/// Bytes a write takes its blocks from. The engine reads them synchronously, after it has
/// reserved log space and before the write returns, so a frontend can hand over its own
/// buffer type (a NIO `ByteBuffer`, say) without copying it first.
public protocol BlockWriteSource: Sendable {
    /// Number of bytes (a multiple of the block size).
    var byteCount: Int { get }
    /// Calls `body` with the bytes, contiguous.
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R
}

extension Array: BlockWriteSource where Element == UInt8 {
    public var byteCount: Int { count }
}

extension ContiguousArray: BlockWriteSource where Element == UInt8 {
    public var byteCount: Int { count }
}

/// Memory the caller keeps alive for the duration of one write call.
struct BorrowedBytes: BlockWriteSource, @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    var byteCount: Int { bytes.count }
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R { try body(bytes) }
}
