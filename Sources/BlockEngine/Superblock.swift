// The superblock: two 4 KiB slots at the start of the volume file (docs/FORMAT.md).
//
// Invariants:
// - Every slot is self-validating: CRC32C over bytes [0, 4092) stored at 4092.
// - Writers alternate slots by sequence number (slot = sequence % 2) and make each write
//   durable; open takes the valid slot with the highest sequence, so a torn write of one
//   slot leaves the other intact (invariant 5 in docs/ENGINE.md).
// - Magic at 0, format version at 8 and the CRC position are fixed for every format version,
//   so a newer volume is recognised as such and not as corruption.
// - Version 2 added the role (byte 82). Version 1 slots are still read (their role is
//   standalone: byte 82 was always zero) and the next superblock write stores version 2.
// - Version 3 added the checkpoint record's epoch (byte 136; UInt64.max: not known, as for
//   slots of versions 1 and 2 and after a rebuild's log reset). Older slots are still read.

/// The persisted description of a volume.
struct Superblock: Equatable, Sendable {
    static let magic: [UInt8] = Array("SWBLKVOL".utf8)
    static let formatVersion: UInt32 = 3
    /// Byte 83: a rebuild is writing the data region.
    static let imageIncompleteFlag: UInt8 = 1
    /// The oldest version this build reads.
    static let oldestReadableVersion: UInt32 = 1
    static let slotSizeBytes = 4096
    static let slotCount = 2
    /// Bytes of the slot covered by the CRC; the CRC itself follows.
    static let checksummedBytes = slotSizeBytes - 4
    /// Bytes of the slot that carry fields (the rest of the slot is zero).
    static let fieldBytes = 144
    /// The WAL starts right after the two slots.
    static let walOffsetBytes: UInt64 = UInt64(slotSizeBytes * slotCount)

    /// The version the slot was read from; encoding always writes `formatVersion`.
    var readVersion: UInt32 = Superblock.formatVersion
    var sequence: UInt64
    var uuid: VolumeUUID
    var blockSizeBytes: UInt32
    var volumeSizeBytes: UInt64
    var walOffsetBytes: UInt64
    var walSizeBytes: UInt64
    var dataOffsetBytes: UInt64
    var durability: DurabilityMode
    var replicaFactor: UInt8
    /// Persisted before it takes effect (docs/ENGINE.md, "Roles, epochs and the write gate").
    var role: VolumeRole = .standalone
    /// A rebuild is writing the data region: the image is not a consistent state of any LSN
    /// until the rebuild ends (version 2; the volume must not be promoted or trusted).
    var imageIncomplete = false
    var epoch: UInt64
    /// Every record with an LSN up to this one is applied to the data region and durable.
    var checkpointLSN: UInt64
    /// Logical WAL position of the first record after the checkpoint (physical = mod size).
    var walTailPosition: UInt64
    /// Records with LSN >= `sessionStartLSN` must carry this session id (stale records from
    /// before the last recovery never resurrect).
    var sessionID: UInt64
    var sessionStartLSN: UInt64
    var createdAtUnixMs: UInt64
    /// The epoch of the record at `checkpointLSN` (0 with no record yet; nil: not known).
    /// A replica's written-back history is compared with a primary's by it (version 3).
    var checkpointEpoch: UInt64? = 0

    var blockCount: UInt64 { volumeSizeBytes / UInt64(blockSizeBytes) }
    /// The smallest file that holds every region.
    var requiredFileSizeBytes: UInt64 { dataOffsetBytes + volumeSizeBytes }
    /// Byte offset of this superblock's slot in the file.
    var slotOffsetBytes: UInt64 { UInt64(Int(sequence % 2) * Self.slotSizeBytes) }

    /// Writes the slot image (all 4096 bytes) into `slot`.
    func encode(into slot: UnsafeMutableRawBufferPointer) {
        precondition(slot.count == Self.slotSizeBytes, "a slot is 4096 bytes")
        slot.initializeMemory(as: UInt8.self, repeating: 0)
        for (index, byte) in Self.magic.enumerated() { slot[index] = byte }
        slot.storeLE(Self.formatVersion, at: 8)
        slot.storeLE(UInt32(Self.fieldBytes), at: 12)
        slot.storeLE(sequence, at: 16)
        for (index, byte) in uuid.bytes.enumerated() { slot[24 + index] = byte }
        slot.storeLE(blockSizeBytes, at: 40)
        slot.storeLE(UInt32(0), at: 44)
        slot.storeLE(volumeSizeBytes, at: 48)
        slot.storeLE(walOffsetBytes, at: 56)
        slot.storeLE(walSizeBytes, at: 64)
        slot.storeLE(dataOffsetBytes, at: 72)
        slot[80] = durability.rawValue
        slot[81] = replicaFactor
        slot[82] = role.rawValue
        slot[83] = imageIncomplete ? Self.imageIncompleteFlag : 0
        slot.storeLE(epoch, at: 88)
        slot.storeLE(checkpointLSN, at: 96)
        slot.storeLE(walTailPosition, at: 104)
        slot.storeLE(sessionID, at: 112)
        slot.storeLE(sessionStartLSN, at: 120)
        slot.storeLE(createdAtUnixMs, at: 128)
        slot.storeLE(checkpointEpoch ?? .max, at: 136)
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: slot[0..<Self.checksummedBytes]))
        slot.storeLE(crc, at: Self.checksummedBytes)
    }

    func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.slotSizeBytes)
        bytes.withUnsafeMutableBytes { encode(into: $0) }
        return bytes
    }

    /// What one slot holds.
    enum SlotContent: Equatable {
        case valid(Superblock)
        /// No magic: never written (zeros) or not a volume.
        case blank
        /// Magic and checksum fine, but a format this build does not read.
        case unsupportedVersion(UInt32)
        /// Magic present but the checksum or a field is wrong.
        case corrupt(String)
    }

    /// Decodes and validates one slot image. Never traps on any input.
    static func decode(_ slot: UnsafeRawBufferPointer) -> SlotContent {
        guard slot.count >= Self.slotSizeBytes else {
            return slot.starts(with: Self.magic) ? .corrupt("slot truncated to \(slot.count) bytes") : .blank
        }
        guard slot.starts(with: Self.magic) else { return .blank }
        let stored = slot.loadLE(UInt32.self, at: Self.checksummedBytes)
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: slot[0..<Self.checksummedBytes]))
        guard stored == computed else {
            return .corrupt("checksum mismatch (stored \(hex(stored)), computed \(hex(computed)))")
        }
        let version = slot.loadLE(UInt32.self, at: 8)
        guard version >= Self.oldestReadableVersion, version <= Self.formatVersion else {
            return .unsupportedVersion(version)
        }
        guard let durability = DurabilityMode(rawValue: slot[80]) else {
            return .corrupt("unknown durability mode \(slot[80])")
        }
        guard let role = VolumeRole(rawValue: slot[82]) else { return .corrupt("unknown role \(slot[82])") }
        guard slot[83] & ~Self.imageIncompleteFlag == 0 else { return .corrupt("unknown state flags \(slot[83])") }
        let superblock = Superblock(
            readVersion: version,
            sequence: slot.loadLE(UInt64.self, at: 16),
            uuid: VolumeUUID(bytes: Array(slot[24..<40])),
            blockSizeBytes: slot.loadLE(UInt32.self, at: 40),
            volumeSizeBytes: slot.loadLE(UInt64.self, at: 48),
            walOffsetBytes: slot.loadLE(UInt64.self, at: 56),
            walSizeBytes: slot.loadLE(UInt64.self, at: 64),
            dataOffsetBytes: slot.loadLE(UInt64.self, at: 72),
            durability: durability,
            replicaFactor: slot[81],
            role: role,
            imageIncomplete: slot[83] & Self.imageIncompleteFlag != 0,
            epoch: slot.loadLE(UInt64.self, at: 88),
            checkpointLSN: slot.loadLE(UInt64.self, at: 96),
            walTailPosition: slot.loadLE(UInt64.self, at: 104),
            sessionID: slot.loadLE(UInt64.self, at: 112),
            sessionStartLSN: slot.loadLE(UInt64.self, at: 120),
            createdAtUnixMs: slot.loadLE(UInt64.self, at: 128),
            checkpointEpoch: version >= 3 ? Self.knownEpoch(slot.loadLE(UInt64.self, at: 136)) : nil)
        if let problem = superblock.validationProblem() { return .corrupt(problem) }
        return .valid(superblock)
    }

    private static func knownEpoch(_ stored: UInt64) -> UInt64? { stored == .max ? nil : stored }

    static func decode(_ bytes: [UInt8]) -> SlotContent {
        bytes.withUnsafeBytes { decode($0) }
    }

    /// Why the fields are inconsistent, or nil when they describe a usable volume.
    func validationProblem() -> String? {
        guard blockSizeBytes == 512 || blockSizeBytes == 4096 else {
            return "block size \(blockSizeBytes) is not 512 or 4096"
        }
        guard volumeSizeBytes > 0, volumeSizeBytes % UInt64(blockSizeBytes) == 0 else {
            return "volume size \(volumeSizeBytes) is not a positive multiple of the block size"
        }
        guard volumeSizeBytes <= Self.maxVolumeSizeBytes else {
            return "volume size \(volumeSizeBytes) exceeds \(Self.maxVolumeSizeBytes)"
        }
        guard walOffsetBytes == Self.walOffsetBytes else {
            return "WAL offset \(walOffsetBytes) is not \(Self.walOffsetBytes)"
        }
        guard walSizeBytes >= WALLayout.minimumSizeBytes, walSizeBytes <= WALLayout.maximumSizeBytes,
              walSizeBytes % 4096 == 0 else {
            return "WAL size \(walSizeBytes) is not a multiple of 4096 within the allowed range"
        }
        guard dataOffsetBytes == walOffsetBytes + walSizeBytes else {
            return "data offset \(dataOffsetBytes) does not follow the WAL"
        }
        guard Int(replicaFactor) >= 1, Int(replicaFactor) <= DurabilityMode.maxReplicaFactor else {
            return "replica factor \(replicaFactor) is outside 1...\(DurabilityMode.maxReplicaFactor)"
        }
        if durability == .syncQuorum && replicaFactor < 3 {
            return "sync_quorum with replica factor \(replicaFactor)"
        }
        guard walTailPosition % UInt64(WALRecord.alignmentBytes) == 0 else {
            return "WAL tail position \(walTailPosition) is not record-aligned"
        }
        return nil
    }

    /// 2^50 bytes (1 PiB): keeps every byte offset far from overflow.
    static let maxVolumeSizeBytes: UInt64 = 1 << 50
}

func hex<T: FixedWidthInteger>(_ value: T) -> String {
    "0x" + String(value, radix: 16)
}
