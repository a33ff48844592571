import CBlockSupport

/// CRC32C (Castagnoli), the checksum of every on-disk structure.
enum CRC32C {
    /// The CRC of `bytes`, optionally continuing a previous CRC.
    @inline(__always)
    static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return ccrc32c_extend(crc, base, bytes.count)
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
