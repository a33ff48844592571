import BlockEngine
import BlockdCore
import Foundation
import Logging
import ServiceLifecycle
import Testing

@Suite("blockd serve")
struct ServeTests {
    @Test("a volume that fails to open is reported and left untouched; the others are served")
    func badVolumeLeftAlone() async throws {
        let directory = NSTemporaryDirectory() + "blockd-serve-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A corrupt "volume": right name, random bytes.
        let corrupt = directory + "/broken.blk"
        let junk = Data((0..<(64 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try junk.write(to: URL(fileURLWithPath: corrupt))

        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let configuration = ServeConfiguration(dataDirectory: directory, port: 0,
                                               creates: [(name: "good", sizeBytes: 8 << 20)],
                                               newVolume: VolumeConfiguration(sizeBytes: 8 << 20, walSizeBytes: 1 << 20))
        let daemon = BlockDaemon(configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [.init(service: daemon)], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var ports = daemon.boundPorts.makeAsyncIterator()
            let port = await ports.next()
            #expect((port ?? 0) > 0, "the portal listens")
            #expect(daemon.servedTargets == ["\(ServeConfiguration.defaultIQNPrefix):good"])
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: corrupt)) == junk, "the broken file is unchanged")
        #expect(VolumeCommands.check(path: directory + "/good.blk").exitCode == 0, "the good volume closed cleanly")
    }

    @Test("command-line values: NAME:SIZE and [VOLUME=]USER:SECRET")
    func parsing() throws {
        let create = try VolumeNames.parseCreate("demo:1GiB")
        #expect(create.name == "demo" && create.sizeBytes == 1 << 30)
        #expect(throws: ServeError.self) { try VolumeNames.parseCreate("bad/name:1GiB") }
        #expect(throws: ServeError.self) { try VolumeNames.parseCreate("nosize") }
        let chap = try CHAPOption.parse("demo=alice:secret", option: "--chap")
        #expect(chap.volume == "demo" && chap.credentials.username == "alice" && chap.credentials.secret == "secret")
        #expect(try CHAPOption.parse("bob:pw", option: "--chap").volume == "*")
        #expect(try CHAPOption.parse("bob:pw=with:colons", option: "--chap").credentials.secret == "pw=with:colons")
        #expect(throws: ServeError.self) { try CHAPOption.parse("nocolon", option: "--chap") }
    }
}
