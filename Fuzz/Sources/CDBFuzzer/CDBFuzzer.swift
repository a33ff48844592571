// Fuzzes the CDB decoder: any bytes must decode to a command or a precise failure, never trap.

import BlockSCSI
import NIOCore

/// One fuzzing input; libFuzzer calls it through the driver (Entry.swift).
func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    _ = CDBDecoder.decode(bytes: bytes)
    let cdb = ByteBuffer(bytes: bytes)
    _ = CDBDecoder.decode(cdb: cdb)
    _ = SCSICommandInfo.dataOutLength(cdb: cdb, blockSizeBytes: 4096)
    _ = SCSICommandInfo.dataOutLength(cdb: cdb, blockSizeBytes: 512)
    return 0
}
