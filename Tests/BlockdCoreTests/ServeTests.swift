import BlockEngine
@testable import BlockdCore
@testable import BlockSCSI
import Foundation
import Glibc
import Logging
import ServiceLifecycle
import Testing

@Suite("blockd serve")
struct ServeTests {
    @Test("--target-port-group reaches every logical unit as its ALUA port group and relative port")
    func targetPortGroup() async throws {
        let directory = NSTemporaryDirectory() + "blockd-tpg-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = ServeConfiguration(dataDirectory: directory, port: 0)
        configuration.targetPortGroup = 3
        let volume = try await Volume.create(at: configuration.volumePath("v"),
                                             configuration: VolumeConfiguration(sizeBytes: 8 << 20, walSizeBytes: 1 << 20))
        let target = try configuration.makeTarget(name: "v", volume: volume, logger: Logger(label: "test"))
        let unit = try #require(target.logicalUnits[0] as? SCSILogicalUnit)
        #expect(unit.configuration.targetPortGroup == 3 && unit.configuration.relativeTargetPort == 3)
        try await volume.close()
    }

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

    @Test("--max-connections and --max-connections-per-host reach the iSCSI server's configuration")
    func connectionLimits() throws {
        var configuration = ServeConfiguration(dataDirectory: "unused", host: "127.0.0.2", port: 3261)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let defaults = configuration.serverConfiguration(logger: logger)
        #expect(defaults.maxConnections == 256 && defaults.maxConnectionsPerHost == 64, "the server's defaults")
        #expect(defaults.host == "127.0.0.2" && defaults.port == 3261)

        try configuration.applyConnectionLimits(maxConnections: 300, maxConnectionsPerHost: 200)
        let server = configuration.serverConfiguration(logger: logger)
        #expect(server.maxConnections == 300 && server.maxConnectionsPerHost == 200)
        try configuration.applyConnectionLimits(maxConnections: nil, maxConnectionsPerHost: 5)
        #expect(configuration.serverConfiguration(logger: logger).maxConnections == 300, "an option not given keeps its value")
        #expect(configuration.serverConfiguration(logger: logger).maxConnectionsPerHost == 5)

        #expect(throws: ServeError.invalidArgument("--max-connections must be at least 1")) {
            try configuration.applyConnectionLimits(maxConnections: 0, maxConnectionsPerHost: nil)
        }
        #expect(throws: ServeError.invalidArgument("--max-connections-per-host must be at least 1")) {
            try configuration.applyConnectionLimits(maxConnections: nil, maxConnectionsPerHost: -1)
        }
    }

    @Test("a daemon with at most one connection per host closes a second one from the same address")
    func perHostLimitApplies() async throws {
        let directory = NSTemporaryDirectory() + "blockd-serve-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var configuration = ServeConfiguration(dataDirectory: directory, port: 0,
                                               creates: [(name: "limits", sizeBytes: 8 << 20)],
                                               newVolume: VolumeConfiguration(sizeBytes: 8 << 20, walSizeBytes: 1 << 20))
        try configuration.applyConnectionLimits(maxConnections: nil, maxConnectionsPerHost: 1)
        let daemon = BlockDaemon(configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [.init(service: daemon)], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var ports = daemon.boundPorts.makeAsyncIterator()
            let port = try #require(await ports.next())
            // Connections are admitted on their own event loops: either of the two may be
            // the one counted second.
            let connections = [try RawConnection(port: port), try RawConnection(port: port)]
            var closed = [false, false]
            let deadline = ContinuousClock.now + .seconds(5)
            while !closed.contains(true) && ContinuousClock.now < deadline {
                for index in connections.indices { closed[index] = connections[index].closedByPeer(within: .milliseconds(50)) }
            }
            #expect(closed.filter { $0 }.count == 1, "one of two connections from 127.0.0.1 is closed at once")
            let open = connections[closed.firstIndex(of: false) ?? 0]
            #expect(!open.closedByPeer(within: .milliseconds(300)), "the other one stays")
            for connection in connections { connection.close() }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}

/// A blocking TCP connection to 127.0.0.1 that only watches for the peer's close.
private struct RawConnection {
    let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    /// True when the peer closed (a read returns 0 or fails) within `timeout`.
    func closedByPeer(within timeout: Duration) -> Bool {
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&poller, 1, milliseconds) == 1 else { return false }
        var byte: UInt8 = 0
        return read(descriptor, &byte, 1) <= 0
    }

    func close() { _ = Glibc.close(descriptor) }
}
