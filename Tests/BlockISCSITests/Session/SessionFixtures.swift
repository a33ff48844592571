// Targets for the session tests: real engine volumes in temporary directories behind an
// embedded connection pipeline (`withEmbeddedSession`) or a real `ISCSIServer` on
// 127.0.0.1 port 0 (`withTCPServer`). Everything is closed at the end, also on failure.

import BlockEngine
import Foundation
import NIOCore
import Testing
@testable import BlockISCSI
@testable import BlockSCSI

let diskTargetName = "iqn.2026-01.org.example:disk0"
let secureTargetName = "iqn.2026-01.org.example:secure"
let blockBytes = 4096

/// A fresh directory under the temp dir, removed on deinit.
final class ScratchDirectory: Sendable {
    let path: String

    init() {
        var template = Array((NSTemporaryDirectory() + "blockiscsi-session-XXXXXX").utf8CString)
        let result = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(result != nil, "mkdtemp failed")
        path = String(cString: result!)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A 16 MiB volume with 4 KiB blocks and a logical unit over it.
struct TestLogicalUnit {
    let directory: ScratchDirectory
    let volume: Volume
    let unit: SCSILogicalUnit

    /// With a `gate`, writes can be held (see GatedBackend).
    static func make(gate: WriteGate? = nil) async throws -> TestLogicalUnit {
        let directory = ScratchDirectory()
        var options = VolumeOptions(flushIntervalMs: 20)
        options.logger.logLevel = .critical
        let volume = try await Volume.create(
            at: directory.path + "/vol.blk",
            configuration: VolumeConfiguration(sizeBytes: 16 << 20, blockSizeBytes: blockBytes, walSizeBytes: 1 << 20),
            options: options)
        var configuration = SCSILogicalUnitConfiguration(targetName: diskTargetName)
        configuration.logger.logLevel = .critical
        let unit = try gate.map { try SCSILogicalUnit(backend: GatedBackend(volume: volume, gate: $0), configuration: configuration) }
            ?? SCSILogicalUnit(volume: volume, configuration: configuration)
        return TestLogicalUnit(directory: directory, volume: volume, unit: unit)
    }
}

/// A server configuration with logging silenced and the liveness ping out of the way.
func testServerConfiguration(_ configure: (inout ISCSIServerConfiguration) -> Void = { _ in }) -> ISCSIServerConfiguration {
    var configuration = ISCSIServerConfiguration(host: "127.0.0.1", port: 0, nopInIntervalMs: 600_000,
                                                 nopInTimeoutMs: 600_000)
    configuration.logger.logLevel = .critical
    configure(&configuration)
    return configuration
}

/// The initiator's default operational keys with some values replaced.
func operationalKeys(_ overrides: [String: String] = [:]) -> [(String, String)] {
    TestInitiator.defaultOperationalKeys.map { ($0.0, overrides[$0.0] ?? $0.1) }
}

// MARK: - Embedded

/// A server context serving `diskTargetName` with one logical unit at LUN 0.
func withEmbeddedTarget(_ configuration: ISCSIServerConfiguration = testServerConfiguration(),
                        _ body: (ServerContext) async throws -> Void) async throws {
    let logicalUnit = try await TestLogicalUnit.make()
    let catalog = TargetCatalog(targets: [ISCSITargetDefinition(name: diskTargetName, logicalUnits: [0: logicalUnit.unit])],
                                portalGroupTag: configuration.portalGroupTag, discoveryAuthentication: .none)
    let context = ServerContext(configuration: configuration, catalog: catalog)
    do {
        try await body(context)
    } catch {
        try? await logicalUnit.volume.close()
        throw error
    }
    try await logicalUnit.volume.close()
}

/// An embedded connection logged in to `diskTargetName` with `keys`. At the end the test
/// requires that the target broke no sequence-number rule.
func withEmbeddedSession(_ configuration: ISCSIServerConfiguration = testServerConfiguration(),
                         keys: [(String, String)] = operationalKeys(),
                         _ body: (TestInitiator, EmbeddedTransport) async throws -> Void) async throws {
    try await withEmbeddedTarget(configuration) { context in
        let transport = try await EmbeddedTransport.connect(context)
        let initiator = TestInitiator(transport: transport)
        do {
            try await initiator.login(target: diskTargetName, keys: keys)
            try await body(initiator, transport)
        } catch {
            await transport.close()
            throw error
        }
        await transport.close()
        #expect(initiator.sequenceViolations == [], "sequence number rules")
    }
}

// MARK: - TCP

/// A running `ISCSIServer` with `diskTargetName` (no authentication) and
/// `secureTargetName` (CHAP user `alice`), each with LUN 0.
final class TCPTargetFixture {
    static let chapUser = CHAPCredentials(username: "alice", secret: "alice-secret-0123")

    let server: ISCSIServer
    let address: SocketAddress
    private let logicalUnits: [TestLogicalUnit]
    private var transports: [TCPTransport] = []
    private var nextISID: UInt64 = 0x8000_0000_1000

    private init(server: ISCSIServer, address: SocketAddress, logicalUnits: [TestLogicalUnit]) {
        self.server = server
        self.address = address
        self.logicalUnits = logicalUnits
    }

    static func start(_ configuration: ISCSIServerConfiguration, gate: WriteGate? = nil) async throws -> TCPTargetFixture {
        let disk = try await TestLogicalUnit.make(gate: gate)
        let secure = try await TestLogicalUnit.make()
        let server = ISCSIServer(configuration: configuration, targets: [
            ISCSITargetDefinition(name: diskTargetName, logicalUnits: [0: disk.unit]),
            ISCSITargetDefinition(name: secureTargetName, logicalUnits: [0: secure.unit],
                                  authentication: LoginAuthentication(initiatorCredentials: chapUser)),
        ])
        let address = try await server.start()
        return TCPTargetFixture(server: server, address: address, logicalUnits: [disk, secure])
    }

    /// A new TCP connection (not logged in) with its own ISID unless one is given.
    func connect(initiatorName: String = "iqn.2026-01.org.example:initiator", isid: UInt64? = nil,
                 smallReceiveBuffer: Bool = false) async throws -> TestInitiator {
        let transport = try await TCPTransport.connect(to: address, smallReceiveBuffer: smallReceiveBuffer)
        transports.append(transport)
        nextISID += 1
        return TestInitiator(transport: transport, initiatorName: initiatorName, isid: isid ?? nextISID)
    }

    /// A session logged in to the disk target, unit attentions cleared.
    func loggedIn(keys: [(String, String)] = operationalKeys()) async throws -> TestInitiator {
        let initiator = try await connect()
        try await initiator.login(target: diskTargetName, keys: keys)
        try await initiator.clearUnitAttentions()
        return initiator
    }

    func stop() async {
        for transport in transports { await transport.close() }
        await server.shutdown(timeoutMs: 5_000)
        for unit in logicalUnits { try? await unit.volume.close() }
    }
}

/// A running server (see TCPTargetFixture); with a `gate`, the disk target's writes can be held.
func withTCPServer(_ configuration: ISCSIServerConfiguration = testServerConfiguration(), gate: WriteGate? = nil,
                   _ body: (TCPTargetFixture) async throws -> Void) async throws {
    let fixture = try await TCPTargetFixture.start(configuration, gate: gate)
    do {
        try await body(fixture)
    } catch {
        await fixture.stop()
        throw error
    }
    await fixture.stop()
}

/// A second session that writes a block and must read it back before and after the test
/// did something nasty on another session.
struct Bystander {
    let initiator: TestInitiator
    let block = testPattern(tag: 0xB5, bytes: blockBytes)

    static func start(_ fixture: TCPTargetFixture) async throws -> Bystander {
        let bystander = Bystander(initiator: try await fixture.loggedIn())
        let written = try await bystander.initiator.write(lba: 77, data: bystander.block, immediateBytes: blockBytes)
        #expect(written.status == 0, "bystander write")
        try await bystander.expectReadWorks("before")
        return bystander
    }

    func expectReadWorks(_ when: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let outcome = try await initiator.read(lba: 77, blocks: 1)
        #expect(outcome.status == 0 && outcome.data == block, "bystander READ \(when)", sourceLocation: sourceLocation)
        #expect(initiator.sequenceViolations == [], "bystander sequence numbers", sourceLocation: sourceLocation)
    }
}
