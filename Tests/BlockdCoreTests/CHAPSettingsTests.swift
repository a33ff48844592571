// CHAP settings of `blockd serve`: checked before anything is served (a setting that would
// be ignored stops the start), secrets from files, and the limits a login can use.

import BlockEngine
import BlockISCSI
import BlockdCore
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// A fresh directory, removed when dropped.
final class ScratchDirectory {
    let path = NSTemporaryDirectory() + "blockd-chap-\(UInt64.random(in: 0...UInt64.max))"

    init() throws { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }

    /// Writes `contents` to `name` with `mode` and returns its path.
    func file(_ name: String, _ contents: String, mode: Int = 0o600) throws -> String {
        let file = path + "/" + name
        try Data(contents.utf8).write(to: URL(fileURLWithPath: file))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file)
        return file
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

@Suite("blockd serve: CHAP settings")
struct CHAPSettingsTests {
    static let alice = CHAPCredentials(username: "alice", secret: "initiator-secret-1")
    static let target = CHAPCredentials(username: "target", secret: "target-secret-22")

    /// Serves `good` (created) from `directory`.
    private func configuration(_ directory: ScratchDirectory) -> ServeConfiguration {
        ServeConfiguration(dataDirectory: directory.path + "/data", port: 0, creates: [(name: "good", sizeBytes: 8 << 20)],
                           newVolume: VolumeConfiguration(sizeBytes: 8 << 20, walSizeBytes: 1 << 20))
    }

    /// Runs the daemon until it listens (then stops it) or fails; returns its error, nil when it listened.
    private func startError(_ configuration: ServeConfiguration) async -> (any Error)? {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let daemon = BlockDaemon(configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [.init(service: daemon)], logger: logger))
        return await withTaskGroup(of: (any Error)?.self) { tasks in
            tasks.addTask {
                do {
                    try await group.run()
                    return nil
                } catch {
                    return error
                }
            }
            var ports = daemon.boundPorts.makeAsyncIterator()
            if await ports.next() != nil { await group.triggerGracefulShutdown() }
            return await tasks.next() ?? nil
        }
    }

    @Test("--chap or --mutual-chap naming a volume that is not served stops the start, naming the volume")
    func unknownVolume() async throws {
        let directory = try ScratchDirectory()
        var initiatorSide = configuration(directory)
        initiatorSide.initiatorCHAP["goood"] = Self.alice
        let error = await startError(initiatorSide)
        #expect(error.map { "\($0)".contains("'goood'") } == true, "error: \(String(describing: error))")

        var targetSide = configuration(directory)
        targetSide.initiatorCHAP["good"] = Self.alice
        targetSide.targetCHAP["typo"] = Self.target
        let mutualError = await startError(targetSide)
        #expect(mutualError.map { "\($0)".contains("'typo'") } == true, "error: \(String(describing: mutualError))")
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/data/good.blk"), "nothing was created")
    }

    @Test("a volume in the directory or in --create may have CHAP; the daemon then starts")
    func knownVolumes() async throws {
        let directory = try ScratchDirectory()
        var first = configuration(directory)
        first.initiatorCHAP["good"] = Self.alice
        first.targetCHAP["good"] = Self.target
        #expect(await startError(first) == nil)
        // Now on disk: CHAP for it without --create, and "*" for every volume.
        var second = configuration(directory)
        second.creates = []
        second.initiatorCHAP["good"] = Self.alice
        second.targetCHAP["*"] = Self.target
        #expect(await startError(second) == nil)
    }

    @Test("mutual CHAP without one-way CHAP for that volume, or with the same secret, stops the start")
    func unusableMutualCHAP() async throws {
        let directory = try ScratchDirectory()
        var alone = configuration(directory)
        alone.targetCHAP["good"] = Self.target
        let aloneError = await startError(alone)
        #expect(aloneError.map { "\($0)".contains("--mutual-chap") && "\($0)".contains("'good'") } == true,
                "error: \(String(describing: aloneError))")

        var same = configuration(directory)
        same.initiatorCHAP["*"] = Self.alice
        same.targetCHAP["good"] = CHAPCredentials(username: "target", secret: Self.alice.secret)
        let sameError = await startError(same)
        #expect(sameError.map { "\($0)".contains("same secret") } == true, "error: \(String(describing: sameError))")
    }

    @Test("credentials a login cannot use stop the start; a short secret only warns")
    func limits() throws {
        let long = String(repeating: "x", count: 256)
        for bad in [CHAPCredentials(username: long, secret: "initiator-secret-1"),
                    CHAPCredentials(username: "alice", secret: long),
                    CHAPCredentials(username: "alice", secret: ""),
                    CHAPCredentials(username: "alice", secret: "with\u{0}nul-inside")] {
            #expect(throws: ServeError.self) { try CHAPOption.check(bad, option: "--chap") }
        }
        let shortSecret = CHAPCredentials(username: "alice", secret: "short")
        #expect(try CHAPOption.check(shortSecret, option: "--chap").count == 1)
        #expect(try CHAPOption.check(Self.alice, option: "--chap").isEmpty)
        let maximal = CHAPCredentials(username: String(repeating: "n", count: 255), secret: String(repeating: "s", count: 255))
        #expect(try CHAPOption.check(maximal, option: "--chap").isEmpty)
    }

    @Test("the command-line forms: [VOLUME=]USER:SECRET and USER:@FILE; a volume given twice is refused")
    func commandLine() throws {
        let directory = try ScratchDirectory()
        let secretFile = try directory.file("alice.secret", "secret from a file\n")
        var configuration = configuration(directory)
        try configuration.applyCHAPOptions(chap: ["good=alice:@" + secretFile, "bob:initiator-secret-2"],
                                           mutualChap: ["good=target:target-secret-22"],
                                           discoveryChap: "disco:@" + secretFile)
        #expect(configuration.initiatorCHAP["good"] == CHAPCredentials(username: "alice", secret: "secret from a file"))
        #expect(configuration.initiatorCHAP["*"] == CHAPCredentials(username: "bob", secret: "initiator-secret-2"))
        #expect(configuration.targetCHAP["good"] == Self.target)
        #expect(configuration.discoveryCHAP == CHAPCredentials(username: "disco", secret: "secret from a file"))

        var twice = self.configuration(directory)
        #expect(throws: ServeError.self) {
            try twice.applyCHAPOptions(chap: ["good=a:initiator-secret-1", "good=b:initiator-secret-2"], mutualChap: [],
                                       discoveryChap: nil)
        }
        for bad in ["nocolon", ":secret", "alice:", "bad/name=alice:initiator-secret-1"] {
            #expect(throws: ServeError.self) { try CHAPOption.parse(bad, option: "--chap") }
        }
    }

    @Test("a secret file that is missing, empty, not a regular file, or open to others is refused, naming it")
    func badSecretFiles() throws {
        let directory = try ScratchDirectory()
        let cases = [
            directory.path + "/missing",
            try directory.file("empty", ""),
            try directory.file("newline-only", "\n"),
            try directory.file("world-readable", "initiator-secret-1", mode: 0o644),
            try directory.file("world-writable", "initiator-secret-1", mode: 0o602),
            directory.path,
        ]
        for path in cases {
            #expect {
                try CHAPOption.parse("alice:@" + path, option: "--chap")
            } throws: { error in
                "\(error)".contains(path)
            }
        }
        // Group-readable is allowed (a service group may share it); the last newline is not the secret's.
        let shared = try directory.file("shared", "initiator-secret-1\r\n", mode: 0o640)
        #expect(try CHAPOption.parse("alice:@" + shared, option: "--chap").credentials.secret == "initiator-secret-1")
    }
}
