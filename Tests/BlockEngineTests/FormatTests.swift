import CBlockSupport
import Testing
@testable import BlockEngine

@Suite("On-disk formats")
struct FormatTests {
    static func sampleSuperblock() -> Superblock {
        Superblock(sequence: 7, uuid: VolumeUUID(bytes: Array(1...16)), blockSizeBytes: 4096,
                   volumeSizeBytes: 1 << 30, walOffsetBytes: Superblock.walOffsetBytes, walSizeBytes: 64 << 20,
                   dataOffsetBytes: Superblock.walOffsetBytes + (64 << 20), durability: .syncQuorum,
                   replicaFactor: 3, epoch: 5, checkpointLSN: 1234, walTailPosition: 4096 * 1000,
                   sessionID: 0xDEAD_BEEF, sessionStartLSN: 1200, createdAtUnixMs: 1_700_000_000_000)
    }

    static func sampleHeader() -> WALRecordHeader {
        WALRecordHeader(kind: .write, lsn: 99, epoch: 3, sessionID: 42, lba: 123_456, blockCount: 2,
                        payloadLength: 8192, durableHintLSN: 90, payloadCRC: 0x1234_5678)
    }

    @Test("CRC32C matches the published check value, in hardware and in software")
    func crcCheckValue() {
        let text = Array("123456789".utf8)
        #expect(CRC32C.checksum(text) == 0xE306_9283)
        #expect(text.withUnsafeBytes { ccrc32c_extend_portable(0, $0.baseAddress, $0.count) } == 0xE306_9283)
        var generator = SeededGenerator(seed: 1)
        let random = (0..<10_007).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let portable = random.withUnsafeBytes { ccrc32c_extend_portable(0, $0.baseAddress, $0.count) }
        #expect(CRC32C.checksum(random) == portable)
        // Extending in two parts equals one pass.
        let split = random.withUnsafeBytes { bytes in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[1000...]),
                            continuing: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[..<1000])))
        }
        #expect(split == portable)
    }

    @Test("CRC32C over three interleaved streams and the copying CRC agree with the table, at every length and alignment")
    func crcStreamsAndCopy() {
        var generator = SeededGenerator(seed: 2)
        let random = (0..<(3 * 3 * 1024 + 3 * 128 + 64)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        random.withUnsafeBytes { bytes in
            let lengths = Array(0...400) + [767, 768, 769, 1023, 1024, 3071, 3072, 3073, 3072 + 384, 4096, 4096 + 13,
                                            6144, 8192, 9216 + 384 + 7]
            for offset in [0, 1, 5] {
                for length in lengths where offset + length <= bytes.count {
                    let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
                    let expected = ccrc32c_extend_portable(0x1234_5678, piece.baseAddress, length)
                    #expect(CRC32C.checksum(piece, continuing: 0x1234_5678) == expected, "length \(length) offset \(offset)")
                    let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: length + 3, alignment: 64)
                    defer { copy.deallocate() }
                    copy.initializeMemory(as: UInt8.self, repeating: 0xAB)
                    let copied = ccrc32c_copy(0x1234_5678, copy.baseAddress! + 3, piece.baseAddress, length)
                    #expect(copied == expected, "copy length \(length) offset \(offset)")
                    #expect(copy[0..<3].allSatisfy { $0 == 0xAB } && copy[3...].elementsEqual(piece),
                            "copied bytes, length \(length)")
                }
            }
        }
    }

    @Test("superblock round trip, every durability mode")
    func superblockRoundTrip() {
        for mode in DurabilityMode.allCases {
            var superblock = Self.sampleSuperblock()
            superblock.durability = mode
            superblock.replicaFactor = mode == .syncQuorum ? 3 : 2
            #expect(Superblock.decode(superblock.encoded()) == .valid(superblock))
        }
    }

    @Test("every single-bit flip of a superblock slot is detected")
    func superblockBitFlips() {
        let image = Self.sampleSuperblock().encoded()
        var undetected = 0
        for bit in 0..<(image.count * 8) {
            var flipped = image
            flipped[bit / 8] ^= UInt8(1 << (bit % 8))
            if case .valid = Superblock.decode(flipped) { undetected += 1 }
        }
        #expect(undetected == 0)
    }

    @Test("every truncation of a superblock slot is detected")
    func superblockTruncations() {
        let image = Self.sampleSuperblock().encoded()
        for length in 0..<image.count {
            let content = Superblock.decode(Array(image[0..<length]))
            if case .valid = content { Issue.record("truncation to \(length) bytes accepted") }
        }
    }

    @Test("a newer format version is reported as such, not as corruption")
    func futureVersion() {
        var image = Self.sampleSuperblock().encoded()
        image[8] = UInt8(Superblock.formatVersion + 1)
        let crc = CRC32C.checksum(Array(image[0..<Superblock.checksummedBytes]))
        image.withUnsafeMutableBytes { $0.storeLE(crc, at: Superblock.checksummedBytes) }
        #expect(Superblock.decode(image) == .unsupportedVersion(Superblock.formatVersion + 1))
    }

    @Test("a version 1 slot still opens: its role is standalone, and it encodes as the current version")
    func versionOneSlot() {
        var image = Self.sampleSuperblock().encoded()
        image[8] = 1
        image[82] = 0
        let crc = CRC32C.checksum(Array(image[0..<Superblock.checksummedBytes]))
        image.withUnsafeMutableBytes { $0.storeLE(crc, at: Superblock.checksummedBytes) }
        guard case let .valid(superblock) = Superblock.decode(image) else {
            Issue.record("a version 1 slot did not decode")
            return
        }
        #expect(superblock.readVersion == 1)
        #expect(superblock.role == .standalone)
        #expect(superblock.encoded()[8] == UInt8(Superblock.formatVersion))
    }

    @Test("the checkpoint epoch round-trips (known or not); a version 2 slot's is not known")
    func checkpointEpoch() {
        for epoch: UInt64? in [0, 7, nil] {
            var superblock = Self.sampleSuperblock()
            superblock.checkpointEpoch = epoch
            #expect(Superblock.decode(superblock.encoded()) == .valid(superblock))
        }
        var image = Self.sampleSuperblock().encoded()
        image[8] = 2
        let crc = CRC32C.checksum(Array(image[0..<Superblock.checksummedBytes]))
        image.withUnsafeMutableBytes { $0.storeLE(crc, at: Superblock.checksummedBytes) }
        guard case let .valid(superblock) = Superblock.decode(image) else {
            Issue.record("a version 2 slot did not decode")
            return
        }
        #expect(superblock.checkpointEpoch == nil)
    }

    @Test("the role round-trips; an unknown role byte is corruption")
    func roleByte() {
        for role in VolumeRole.allCases {
            var superblock = Self.sampleSuperblock()
            superblock.role = role
            #expect(Superblock.decode(superblock.encoded()) == .valid(superblock))
        }
        var image = Self.sampleSuperblock().encoded()
        image[82] = 9
        let crc = CRC32C.checksum(Array(image[0..<Superblock.checksummedBytes]))
        image.withUnsafeMutableBytes { $0.storeLE(crc, at: Superblock.checksummedBytes) }
        #expect(Superblock.decode(image) == .corrupt("unknown role 9"))
    }

    @Test("WAL record header round trip, every kind")
    func headerRoundTrip() {
        for kind in [WALRecordKind.write, .trim, .pad] {
            var header = Self.sampleHeader()
            header.kind = kind
            var bytes = [UInt8](repeating: 0, count: WALRecord.headerBytes)
            bytes.withUnsafeMutableBytes { header.encode(into: $0) }
            #expect(bytes.withUnsafeBytes { WALRecordHeader.decode($0) } == .valid(header))
        }
    }

    @Test("every single-bit flip of a WAL record header is detected")
    func headerBitFlips() {
        var bytes = [UInt8](repeating: 0, count: WALRecord.headerBytes)
        bytes.withUnsafeMutableBytes { Self.sampleHeader().encode(into: $0) }
        for bit in 0..<(bytes.count * 8) {
            var flipped = bytes
            flipped[bit / 8] ^= UInt8(1 << (bit % 8))
            if case .valid = flipped.withUnsafeBytes({ WALRecordHeader.decode($0) }) {
                Issue.record("flip of bit \(bit) accepted")
            }
        }
    }

    @Test("every truncation of a WAL record header is detected")
    func headerTruncations() {
        var bytes = [UInt8](repeating: 0, count: WALRecord.headerBytes)
        bytes.withUnsafeMutableBytes { Self.sampleHeader().encode(into: $0) }
        for length in 0..<bytes.count {
            if case .valid = bytes[0..<length].withUnsafeBytes({ WALRecordHeader.decode($0) }) {
                Issue.record("truncation to \(length) bytes accepted")
            }
        }
    }

    @Test("payload corruption is caught by the payload checksum")
    func payloadFlips() {
        var generator = SeededGenerator(seed: 9)
        let payload = (0..<512).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let crc = CRC32C.checksum(payload)
        for bit in 0..<(payload.count * 8) {
            var flipped = payload
            flipped[bit / 8] ^= UInt8(1 << (bit % 8))
            #expect(CRC32C.checksum(flipped) != crc)
        }
    }

    @Test("superblock validation rejects inconsistent geometry")
    func superblockValidation() {
        var superblock = Self.sampleSuperblock()
        superblock.blockSizeBytes = 1024
        #expect(superblock.validationProblem() != nil)
        superblock = Self.sampleSuperblock()
        superblock.dataOffsetBytes += 4096
        #expect(superblock.validationProblem() != nil)
        superblock = Self.sampleSuperblock()
        superblock.replicaFactor = 2
        #expect(superblock.validationProblem() != nil, "sync_quorum needs RF >= 3")
        #expect(Self.sampleSuperblock().validationProblem() == nil)
    }
}
