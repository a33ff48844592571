// What a transport must know about a CDB before it executes: how many bytes of Data-Out to
// solicit. Read straight from the length fields, without validating the rest of the CDB, so
// residuals come out right even for commands that will fail.
//
// Invariant: never traps; lengths that cannot be represented saturate at Int.max (the logical
// unit refuses such commands anyway, see `SCSILogicalUnit.maximumTransferLengthBytes`).

import NIOCore

/// Facts about a CDB that a transport needs.
public enum SCSICommandInfo {
    /// Bytes of Data-Out the command transfers according to its CDB (0 when none), or nil when
    /// the CDB is too short or its opcode is not supported (execute then answers with the
    /// right CHECK CONDITION).
    public static func dataOutLength(cdb: ByteBuffer, blockSizeBytes: Int) -> Int? {
        cdb.withUnsafeReadableBytes { raw in dataOutLength(CDBBytes(raw: raw), blockSizeBytes: blockSizeBytes) }
    }

    static func dataOutLength(_ cdb: CDBBytes, blockSizeBytes: Int) -> Int? {
        guard cdb.count > 0 else { return nil }
        let opcode = cdb[0]
        guard CommandCatalog.supportedOpcodes.contains(opcode),
              let length = CDBDecoder.cdbLength(opcode: opcode), cdb.count >= length else { return nil }
        let blocks = { (count: UInt64) -> Int in bytes(count, blockSizeBytes) }
        switch opcode {
        case 0x0A: return blocks(cdb[4] == 0 ? 256 : UInt64(cdb[4]))
        case 0x2A, 0x2E: return blocks(UInt64(cdb.u16(7)))
        case 0xAA, 0xAE: return blocks(UInt64(cdb.u32(6)))
        case 0x8A, 0x8B, 0x8E: return blocks(UInt64(cdb.u32(10)))
        case 0x2F: return verifyLength(cdb, blockCount: UInt64(cdb.u16(7)), blockSizeBytes: blockSizeBytes)
        case 0xAF: return verifyLength(cdb, blockCount: UInt64(cdb.u32(6)), blockSizeBytes: blockSizeBytes)
        case 0x8F: return verifyLength(cdb, blockCount: UInt64(cdb.u32(10)), blockSizeBytes: blockSizeBytes)
        case 0x41: return blockSizeBytes
        case 0x93: return cdb[1] & 0x01 != 0 ? 0 : blockSizeBytes  // NDOB
        case 0x89: return blocks(2 * UInt64(cdb[13]))
        case 0x15: return Int(cdb[4])
        case 0x42, 0x55, 0x56, 0x57: return Int(cdb.u16(7))
        case 0x5F: return Int(cdb.u32(5))
        default: return 0
        }
    }

    private static func verifyLength(_ cdb: CDBBytes, blockCount: UInt64, blockSizeBytes: Int) -> Int {
        switch (cdb[1] >> 1) & 0x03 {
        case 1: return bytes(blockCount, blockSizeBytes)
        case 3: return blockCount == 0 ? 0 : blockSizeBytes
        default: return 0
        }
    }

    private static func bytes(_ blockCount: UInt64, _ blockSizeBytes: Int) -> Int {
        let (product, overflow) = blockCount.multipliedReportingOverflow(by: UInt64(max(blockSizeBytes, 0)))
        return overflow || product > UInt64(Int.max) ? Int.max : Int(product)
    }
}
