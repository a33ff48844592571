import Foundation
import Testing
@testable import BlockReplication

@Suite("Secret files")
struct SecretFileTests {
    /// A file in a fresh temporary directory with `contents` and `mode`; the directory is
    /// removed when `body` returns.
    func withFile(_ contents: [UInt8]?, mode: Int = 0o600, _ body: (String) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("replication-secret-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("secret").path
        if let contents {
            #expect(FileManager.default.createFile(atPath: path, contents: Data(contents)))
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        }
        try body(path)
    }

    func refusal(_ path: String) -> String? {
        do {
            _ = try ReplicationSecret(contentsOfFile: path)
            return nil
        } catch {
            return error.message
        }
    }

    @Test("a private file of 16 or more bytes is read, without its final newline")
    func reads() throws {
        let text = Array("0123456789abcdef".utf8)
        try withFile(text + [0x0A]) { path in
            let secret = try ReplicationSecret(contentsOfFile: path)
            #expect(secret.key == (try ReplicationSecret(bytes: text)).key)
        }
        try withFile(text + [0x0D, 0x0A], mode: 0o400) { path in
            let secret = try ReplicationSecret(contentsOfFile: path)
            #expect(secret.key == (try ReplicationSecret(bytes: text)).key)
        }
    }

    @Test("missing, empty, short, large, shared or special files are refused, and no message holds the secret")
    func refusals() throws {
        try withFile(nil) { path in #expect(refusal(path)?.contains("cannot be opened") == true) }
        try withFile([]) { path in #expect(refusal(path)?.contains("is empty") == true) }
        try withFile([0x0A]) { path in #expect(refusal(path)?.contains("is empty") == true) }
        try withFile(Array("short-secret".utf8)) { path in
            let message = refusal(path)
            #expect(message?.contains("fewer than 16 bytes") == true)
            #expect(message?.contains("short-secret") == false)
        }
        try withFile([UInt8](repeating: 0x61, count: 5000)) { path in
            #expect(refusal(path)?.contains("larger than 4096") == true)
        }
        for mode in [0o640, 0o604, 0o620, 0o602, 0o644] {
            try withFile(Array("0123456789abcdef0123".utf8), mode: mode) { path in
                #expect(refusal(path)?.contains("its group or other users") == true, "mode \(String(mode, radix: 8))")
            }
        }
        #expect(refusal("/dev/null")?.contains("not a regular file") == true)
        try withFile(Array("0123456789abcdef0123".utf8)) { path in
            let link = path + "-link"
            try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
            #expect(refusal(link)?.contains("cannot be opened") == true, "symlinks are not followed")
        }
    }

    @Test("secrets given as bytes are bounded too")
    func bytesBounds() {
        #expect(throws: SecretError.self) { try ReplicationSecret(bytes: Array(repeating: 1, count: 15)) }
        #expect(throws: SecretError.self) { try ReplicationSecret(bytes: Array(repeating: 1, count: 4097)) }
        #expect(throws: Never.self) { try ReplicationSecret(bytes: Array(repeating: 1, count: 16)) }
    }
}
