// CRC32C for the reservation sidecar file, from the project's shared C implementation
// (CBlockSupport: SSE4.2 when the CPU has it).
//
// Invariant: checksum("123456789") == 0xE3069283 (the standard check value; tested).

import CBlockSupport

enum CRC32C {
    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { ccrc32c_extend(0, $0.baseAddress, $0.count) }
    }
}
