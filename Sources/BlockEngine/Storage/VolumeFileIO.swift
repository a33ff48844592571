// The file operations the engine needs, behind a protocol so the crash simulator in the
// tests can record every write and sync and "lose power" between them.

/// One transfer of a batch: read into or write from `buffer`, at byte `offset` of the file.
package struct IOTransfer {
    package var buffer: UnsafeMutableRawBufferPointer
    package var offset: UInt64

    package init(buffer: UnsafeMutableRawBufferPointer, offset: UInt64) {
        self.buffer = buffer
        self.offset = offset
    }
}

/// A volume file. Every method transfers all the bytes asked for or throws.
/// Implementations are safe to call from several threads at once.
package protocol VolumeFileIO: AnyObject, Sendable {
    /// Reads exactly `buffer.count` bytes at `offset`.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BlockError)
    /// Writes `first` then `second` contiguously at `offset` (a gathered write).
    func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer,
               at offset: UInt64) throws(BlockError)
    /// Writes `buffer` at `offset` past the page cache (O_DIRECT) where the file system
    /// allows, buffered otherwise. Buffer address, length and offset are multiples of 4096.
    /// With `durable`, returns only once this write is durable (one `RWF_DSYNC` write where
    /// the kernel allows, else a write and `sync()`). Earlier writes are not covered: on a
    /// device that takes FUA writes the kernel issues no cache flush for it; `sync()` does.
    /// Used by the log writer, the only writer of the WAL region.
    func writeThrough(_ buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BlockError)
    /// Reads what is already in memory (the page cache) at `offset` without blocking;
    /// returns the bytes read, 0 when the first byte would need the device.
    func readCached(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BlockError) -> Int
    /// Reads every transfer, suspending the caller instead of blocking its thread.
    func readAsync(_ transfers: [IOTransfer]) async throws(BlockError)
    /// Writes every transfer; may run them concurrently (io_uring).
    func writeBatch(_ transfers: [IOTransfer]) throws(BlockError)
    /// Makes every completed write durable (`fdatasync`).
    func sync() throws(BlockError)
    /// Deallocates a byte range; it reads as zeros afterwards.
    func punchHole(at offset: UInt64, lengthBytes: UInt64) throws(BlockError)
    /// The byte ranges within `[offset, end)` that hold allocated data (the rest are holes).
    /// Implementations that cannot tell report the whole range as data.
    func dataRanges(from offset: UInt64, to end: UInt64) throws(BlockError) -> [Range<UInt64>]
    /// The file's current size.
    func sizeBytes() throws(BlockError) -> UInt64
    /// Grows (sparsely) or shrinks the file.
    func setSize(_ sizeBytes: UInt64) throws(BlockError)
    /// Releases the file. No other method may be called afterwards.
    func close()
}
