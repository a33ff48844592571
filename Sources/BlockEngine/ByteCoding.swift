// Little-endian field access for the on-disk formats. Every multi-byte field on disk is
// little-endian; these helpers are the only place that knows it.

extension UnsafeMutableRawBufferPointer {
    @inline(__always)
    func storeLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        precondition(offset >= 0, "field before the buffer")
        precondition(offset + MemoryLayout<T>.size <= count, "field past the buffer")
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }
}

extension UnsafeRawBufferPointer {
    @inline(__always)
    func loadLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        precondition(offset >= 0, "field before the buffer")
        precondition(offset + MemoryLayout<T>.size <= count, "field past the buffer")
        return T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

extension Array where Element == UInt8 {
    /// `withUnsafeMutableBytes` for bodies that throw `BlockError` (keeps the typed error).
    mutating func withMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws(BlockError) -> R) throws(BlockError) -> R {
        let result: Result<R, BlockError> = withUnsafeMutableBytes { buffer in
            Result { () throws(BlockError) -> R in try body(buffer) }
        }
        return try result.get()
    }

    /// `withUnsafeBytes` for bodies that throw `BlockError` (keeps the typed error).
    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws(BlockError) -> R) throws(BlockError) -> R {
        let result: Result<R, BlockError> = withUnsafeBytes { buffer in
            Result { () throws(BlockError) -> R in try body(buffer) }
        }
        return try result.get()
    }
}
