import BlockEngine
import BlockdCore
import Foundation
import Testing

@Suite("blockd volume commands")
struct VolumeCommandTests {
    @Test("sizes with binary suffixes", arguments: [
        ("4096", UInt64(4096)), ("64MiB", 64 << 20), ("1GiB", 1 << 30), ("2TiB", 2 << 40), ("1.5GiB", 3 << 29),
        ("512K", 512 << 10), ("10 MiB", 10 << 20), ("7b", 7),
    ])
    func sizes(text: String, bytes: UInt64) throws {
        #expect(try ByteSize(parsing: text).bytes == bytes)
    }

    @Test("bad sizes are refused with a reason", arguments: ["", "GiB", "1XB", "-1GiB", "1.2.3MiB", "0.3B", "99999999999TiB"])
    func badSizes(text: String) {
        #expect(throws: ByteSizeError.self) { try ByteSize(parsing: text) }
    }

    @Test("sizes print in their largest exact unit")
    func describe() {
        #expect(ByteSize(bytes: 64 << 20).description == "64MiB")
        #expect(ByteSize(bytes: 1536 << 10).description == "1536KiB")
        #expect(ByteSize(bytes: 4097).description == "4097B")
    }

    @Test("create, inspect (text and JSON) and check a volume")
    func createInspectCheck() async throws {
        let directory = NSTemporaryDirectory() + "blockd-cli-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/v.blk"
        let created = await VolumeCommands.create(
            path: path, configuration: VolumeConfiguration(sizeBytes: 32 << 20, walSizeBytes: 1 << 20,
                                                           durability: .syncQuorum, replicaFactor: 3))
        #expect(created.exitCode == 0, "\(created.standardError)")
        #expect(created.standardOutput.contains("sync_quorum, replica factor 3"))
        let json = VolumeCommands.inspect(path: path, json: true)
        let report = try JSONDecoder().decode(VolumeReport.self, from: Data(json.standardOutput.utf8))
        #expect(report.sizeBytes == 32 << 20 && report.blockSizeBytes == 4096 && report.walRecords == 0)
        #expect(report.allocatedBytes < 4 << 20, "a 32 MiB volume is sparse")
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(VolumeCommands.check(path: path).exitCode == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "check never writes")

        // Damage both superblock slots: check fails with the reason and still writes nothing.
        var bytes = [UInt8](before)
        bytes[50] ^= 1
        bytes[4096 + 50] ^= 1
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let damaged = VolumeCommands.check(path: path)
        #expect(damaged.exitCode == 1)
        #expect(damaged.standardError.contains("corrupt superblock"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(bytes))
        #expect(VolumeCommands.inspect(path: path, json: false).exitCode == 1)
    }

    @Test("create refuses an existing path")
    func createExisting() async throws {
        let path = NSTemporaryDirectory() + "blockd-cli-existing-\(UInt64.random(in: 0...UInt64.max))"
        _ = FileManager.default.createFile(atPath: path, contents: Data([9]))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let output = await VolumeCommands.create(path: path, configuration: VolumeConfiguration(sizeBytes: 1 << 20))
        #expect(output.exitCode == 1 && output.standardError.contains("already exists"))
    }
}
