import Foundation
import Testing
@testable import BlockEngine

@Suite("Opening bad files")
struct BadInputTests {
    /// Opens `path` expecting `check` to accept the error, and the file to be byte-identical after.
    func expectOpenFails(_ path: String, _ check: (BlockError) -> Bool) async {
        let before = fileBytes(path)
        do {
            let volume = try await Volume.open(at: path, options: testOptions())
            Issue.record("opened a bad file")
            try? await volume.close()
        } catch {
            #expect(check(error), "unexpected error: \(error)")
        }
        // (A Bool, so a failure does not print both files.)
        let unchanged = fileBytes(path) == before
        #expect(unchanged, "a file that failed to open was modified")
    }

    func makeVolume(_ directory: TemporaryDirectory) async throws -> String {
        let path = directory.file("v.blk")
        let volume = try await Volume.create(
            at: path, configuration: VolumeConfiguration(sizeBytes: 1 << 20, blockSizeBytes: 4096, walSizeBytes: 256 << 10),
            options: testOptions())
        try await volume.write(at: 3, patterns(tag: 1, lba: 3, blockCount: 2, blockSize: 4096), fua: true)
        try await volume.close()
        return path
    }

    @Test("a file of random bytes is not a volume")
    func randomBytes() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("random.blk")
        var generator = SeededGenerator(seed: 5)
        let bytes = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        await expectOpenFails(path) { if case .notAVolume = $0 { true } else { false } }
    }

    @Test("an empty file is not a volume; a missing file is an I/O error")
    func emptyAndMissing() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("empty.blk")
        _ = FileManager.default.createFile(atPath: path, contents: Data())
        await expectOpenFails(path) { if case .notAVolume = $0 { true } else { false } }
        await #expect(throws: BlockError.io(operation: "open \(directory.file("none"))", errno: ENOENT)) {
            _ = try await Volume.open(at: directory.file("none"))
        }
    }

    @Test("truncated files are reported as truncated", arguments: [100, 5000, 8192 + 4096, -4096])
    func truncated(length: Int) async throws {
        let directory = TemporaryDirectory()
        let path = try await makeVolume(directory)
        let full = fileBytes(path)
        let keep = length > 0 ? length : full.count + length
        _ = FileManager.default.createFile(atPath: path, contents: Data(full[0..<keep]))
        await expectOpenFails(path) { if case .truncated = $0 { true } else { false } }
    }

    @Test("a volume from a future format version says so")
    func futureVersion() async throws {
        let directory = TemporaryDirectory()
        let path = try await makeVolume(directory)
        var bytes = fileBytes(path)
        for slot in 0..<2 {
            let base = slot * Superblock.slotSizeBytes
            guard case .valid = Superblock.decode(Array(bytes[base..<(base + Superblock.slotSizeBytes)])) else { continue }
            bytes[base + 8] = 9
            let crc = CRC32C.checksum(Array(bytes[base..<(base + Superblock.checksummedBytes)]))
            withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange((base + 4092)..<(base + 4096), with: $0) }
        }
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        await expectOpenFails(path) { $0 == .unsupportedVersion(found: 9, supported: Superblock.formatVersion) }
    }

    @Test("a slot of a newer format version refuses the open, even next to a valid slot of this version",
          arguments: [true, false])
    func newerVersionInOneSlot(newestSlot: Bool) async throws {
        let directory = TemporaryDirectory()
        let path = try await makeVolume(directory)
        var bytes = fileBytes(path)
        let sequences = (0..<2).map { slot -> UInt64 in
            let base = slot * Superblock.slotSizeBytes
            guard case let .valid(superblock) = Superblock.decode(Array(bytes[base..<(base + Superblock.slotSizeBytes)]))
            else { return 0 }
            return superblock.sequence
        }
        #expect(sequences.allSatisfy { $0 > 0 }, "both slots hold a valid superblock before the change")
        // A newer binary rewrote one slot in its own format (the newest one, or the older one).
        let newer = sequences[0] > sequences[1] ? 0 : 1
        let base = (newestSlot ? newer : 1 - newer) * Superblock.slotSizeBytes
        let newerVersion = UInt8(Superblock.formatVersion + 1)
        bytes[base + 8] = newerVersion
        let crc = CRC32C.checksum(Array(bytes[base..<(base + Superblock.checksummedBytes)]))
        withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange((base + 4092)..<(base + 4096), with: $0) }
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let refusal = BlockError.unsupportedVersion(found: UInt32(newerVersion), supported: Superblock.formatVersion)
        await expectOpenFails(path) { $0 == refusal }
        #expect(throws: refusal) { _ = try Volume.inspect(at: path) }
    }

    @Test("both superblock slots damaged: corrupt superblock")
    func damagedSuperblock() async throws {
        let directory = TemporaryDirectory()
        let path = try await makeVolume(directory)
        var bytes = fileBytes(path)
        bytes[100] ^= 0x10
        bytes[4096 + 100] ^= 0x10
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        await expectOpenFails(path) { if case let .corrupt(location, _) = $0 { location == "superblock" } else { false } }
    }

    @Test("one damaged slot: the other one opens the volume")
    func oneDamagedSlot() async throws {
        let directory = TemporaryDirectory()
        let path = try await makeVolume(directory)
        var bytes = fileBytes(path)
        bytes[200] ^= 0x01
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let volume = try await Volume.open(at: path, options: testOptions())
        #expect(try await volume.read(at: 3, blockCount: 2) == patterns(tag: 1, lba: 3, blockCount: 2, blockSize: 4096))
        try await volume.close()
    }

    @Test("a damaged record before a durable one is corruption, with its location")
    func midLogCorruption() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let file = try PosixVolumeFile(path: path, create: true)
        try Volume.format(file: file, configuration: VolumeConfiguration(sizeBytes: 1 << 20, blockSizeBytes: 4096,
                                                                         walSizeBytes: 256 << 10))
        do {
            let volume = try Volume.open(file: file, path: path, options: testOptions(background: false))
            try await volume.write(at: 1, patterns(tag: 1, lba: 1, blockCount: 1, blockSize: 4096), fua: true)
            try await volume.write(at: 2, patterns(tag: 2, lba: 2, blockCount: 1, blockSize: 4096), fua: true)
            // Dropped without close: both records stay in the WAL.
        }
        file.close()
        var bytes = fileBytes(path)
        // The first record sits at ring offset 0; flip a bit in its payload.
        bytes[8192 + 64 + 10] ^= 0x04
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        await expectOpenFails(path) {
            if case let .corrupt(location, _) = $0 { location.contains("WAL record 1") } else { false }
        }
    }

    @Test("a torn last record is cut off, not reported")
    func tornTail() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("v.blk")
        let file = try PosixVolumeFile(path: path, create: true)
        try Volume.format(file: file, configuration: VolumeConfiguration(sizeBytes: 1 << 20, blockSizeBytes: 4096,
                                                                         walSizeBytes: 256 << 10))
        do {
            let volume = try Volume.open(file: file, path: path, options: testOptions(background: false))
            try await volume.write(at: 1, patterns(tag: 1, lba: 1, blockCount: 1, blockSize: 4096), fua: true)
            try await volume.write(at: 2, patterns(tag: 2, lba: 2, blockCount: 1, blockSize: 4096))
        }
        file.close()
        var bytes = fileBytes(path)
        let second = 8192 + 64 + 4096
        bytes[second + 64 + 100] ^= 0xFF
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let volume = try await Volume.open(at: path, options: testOptions())
        #expect(try await volume.read(at: 1, blockCount: 1) == pattern(tag: 1, lba: 1, blockSize: 4096))
        #expect(try await volume.read(at: 2, blockCount: 1) == [UInt8](repeating: 0, count: 4096))
        try await volume.close()
    }

    @Test("create refuses an existing file and leaves it alone")
    func createExisting() async throws {
        let directory = TemporaryDirectory()
        let path = directory.file("x")
        _ = FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3]))
        await #expect(throws: BlockError.alreadyExists(path: path)) {
            _ = try await Volume.create(at: path, configuration: VolumeConfiguration(sizeBytes: 1 << 20))
        }
        #expect(fileBytes(path) == [1, 2, 3])
    }
}
