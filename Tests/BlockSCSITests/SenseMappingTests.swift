import BlockEngine
import Testing
@testable import BlockSCSI

@Suite("Engine errors as sense")
struct SenseMappingTests {
    @Test("each engine error maps to the sense docs/ERRORS.md gives it", arguments: [
        (BlockError.outOfRange(lba: 9, blockCount: 1, volumeBlocks: 8), TransferDirection.read, SenseCode.lbaOutOfRange),
        (.walFullTimeout(waitedMs: 30_000), .write, .asymmetricAccessTransitioning),
        (.io(operation: "pread", errno: 5), .read, .unrecoveredReadError),
        (.io(operation: "pwrite", errno: 5), .write, .writeError),
        (.noSpace("io_uring write: ENOSPC"), .write, SenseCode(.dataProtect, asc: 0x27, ascq: 0x07)),
        (.inUse(path: "v.blk"), .write, .writeError),
        (.failed("fdatasync"), .write, .asymmetricAccessUnavailable),
    ])
    func mapping(error: BlockError, direction: TransferDirection, expected: SenseCode) {
        #expect(SenseCode.mapping(error, direction: direction) == expected)
    }
}
