// Read-only inspection of a volume file: everything open would check, without writing a byte
// and without starting the volume. `blockd volume inspect` and `check` are built on it.

#if canImport(Glibc)
import Glibc
#endif

/// What a volume file holds, as found by a read-only check.
public struct VolumeReport: Sendable, Codable, Equatable {
    public var path: String
    public var fileSizeBytes: UInt64
    /// Bytes the file system has allocated for the file (thin provisioning at work).
    public var allocatedBytes: UInt64
    public var formatVersion: UInt32
    public var uuid: String
    public var sizeBytes: UInt64
    public var blockSizeBytes: Int
    public var blockCount: UInt64
    public var durability: String
    public var replicaFactor: Int
    /// `standalone`, `primary`, `replica`, `fenced` or `none` (docs/ENGINE.md).
    public var role: String
    public var epoch: UInt64
    public var walOffsetBytes: UInt64
    public var walSizeBytes: UInt64
    public var dataOffsetBytes: UInt64
    public var superblockSequence: UInt64
    public var checkpointLSN: UInt64
    public var createdAtUnixMs: UInt64
    /// One line per superblock slot: `valid (sequence N)`, `blank`, or what is wrong.
    public var superblockSlots: [String]
    /// Records after the checkpoint that an open would replay.
    public var walRecords: Int
    public var walUsedBytes: UInt64
    public var lastLSN: UInt64
    /// Why the WAL scan stopped (the end of the log).
    public var walScanStop: String
    /// Things worth knowing that do not stop the volume from opening.
    public var warnings: [String]
}

extension Volume {
    /// Checks the volume at `path` the way `open` would, reading only. Throws the error open
    /// would throw; returns what it found otherwise.
    public static func inspect(at path: String) throws(BlockError) -> VolumeReport {
        let file = try PosixVolumeFile(path: path, readOnly: true)
        defer { file.close() }
        return try inspect(file: file, path: path)
    }

    package static func inspect(file: PosixVolumeFile, path: String) throws(BlockError) -> VolumeReport {
        let state = try Recovery.recover(file: file, path: path)
        let superblock = state.superblock
        let newestSlot = Int(superblock.sequence % 2)
        var slots = ["", ""]
        slots[newestSlot] = "valid (sequence \(superblock.sequence), current)"
        var warnings: [String] = []
        switch state.otherSlot {
        case let .valid(other):
            slots[1 - newestSlot] = "valid (sequence \(other.sequence))"
        case .blank:
            slots[1 - newestSlot] = "blank"
        case let .unsupportedVersion(version):
            slots[1 - newestSlot] = "format version \(version)"
            warnings.append("superblock slot \(1 - newestSlot) has format version \(version)")
        case let .corrupt(reason):
            slots[1 - newestSlot] = "damaged: \(reason)"
            warnings.append("superblock slot \(1 - newestSlot) is damaged (\(reason)); slot \(newestSlot) is current and intact")
        }
        let used = state.headPosition - superblock.walTailPosition
        return VolumeReport(
            path: path, fileSizeBytes: state.fileSizeBytes, allocatedBytes: try file.allocatedBytes(),
            formatVersion: superblock.readVersion, uuid: superblock.uuid.description,
            sizeBytes: superblock.volumeSizeBytes, blockSizeBytes: Int(superblock.blockSizeBytes),
            blockCount: superblock.blockCount, durability: superblock.durability.description,
            replicaFactor: Int(superblock.replicaFactor), role: superblock.role.description, epoch: superblock.epoch,
            walOffsetBytes: superblock.walOffsetBytes, walSizeBytes: superblock.walSizeBytes,
            dataOffsetBytes: superblock.dataOffsetBytes, superblockSequence: superblock.sequence,
            checkpointLSN: superblock.checkpointLSN, createdAtUnixMs: superblock.createdAtUnixMs,
            superblockSlots: slots, walRecords: state.records.count, walUsedBytes: used,
            lastLSN: state.nextLSN - 1, walScanStop: state.scanStop, warnings: warnings)
    }
}
