// Byte building for the seeds: big-endian fields, CRC32C (iSCSI digests), NUL-separated text.

/// `value` as `count` big-endian bytes.
func be(_ value: UInt64, _ count: Int) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64(count - 1 - $0))) }
}

/// `value` as 4 little-endian bytes (how iSCSI sends a digest).
func le32(_ value: UInt32) -> [UInt8] {
    (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) }
}

/// CRC32C (Castagnoli, reflected, initial and final value all ones), bit by bit: seeds are
/// few and small, so clarity wins over speed.
func crc32c(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    }
    return ~crc
}

/// iSCSI text: each `key=value` followed by a NUL.
func textData(_ pairs: [(String, String)]) -> [UInt8] {
    pairs.flatMap { Array("\($0.0)=\($0.1)".utf8) + [0] }
}

/// `bytes` padded with zeros to a multiple of 4.
func padded(_ bytes: [UInt8]) -> [UInt8] {
    bytes + [UInt8](repeating: 0, count: (4 - bytes.count % 4) % 4)
}

/// A named seed.
struct Seed {
    var name: String
    var bytes: [UInt8]

    init(_ name: String, _ bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }
}
