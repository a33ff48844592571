// Fuzzes the CDB decoder: any bytes must decode to a command or a precise error, never trap.

import BlockSCSI
import NIOCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let cdb = ByteBuffer(bytes: UnsafeRawBufferPointer(start: start, count: count))
    _ = SCSICommandInfo.dataOutLength(cdb: cdb, blockSizeBytes: 4096)
    _ = SCSICommandInfo.dataOutLength(cdb: cdb, blockSizeBytes: 512)
    return 0
}
