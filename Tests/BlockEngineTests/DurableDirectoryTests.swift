import BlockEngine
import Foundation
import Testing

@Suite("Durable data directory")
struct DurableDirectoryTests {
    @Test("creates missing parents, accepts an existing directory, and refuses a file in the way")
    func createsNestedDirectories() throws {
        let root = NSTemporaryDirectory() + "blockd-dir-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let nested = root + "/a/b/data"
        try DurableDirectory.create(atPath: nested)
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: nested, isDirectory: &isDirectory) && isDirectory.boolValue)
        try DurableDirectory.create(atPath: nested + "/")
        _ = FileManager.default.createFile(atPath: root + "/file", contents: Data([1]))
        #expect(throws: BlockError.self) { try DurableDirectory.create(atPath: root + "/file/data") }
        #expect(FileManager.default.contents(atPath: root + "/file") == Data([1]))
    }
}
