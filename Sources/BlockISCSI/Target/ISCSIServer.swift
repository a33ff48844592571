// The iSCSI portal: a SwiftNIO server whose connections run ISCSIConnectionHandler.

import BlockSCSI
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Why the server refused something.
public enum ISCSIServerError: Error, Sendable {
    case tooManyConnections
}

/// An iSCSI target server. Start it, add or remove targets while it runs, shut it down.
public final class ISCSIServer: Sendable {
    let context: ServerContext
    private let group: any EventLoopGroup
    private let listener = Mutex<(any Channel)?>(nil)
    private let connections = Mutex<[ObjectIdentifier: ConnectionReference]>([:])
    private let admission = Mutex<(total: Int, byHost: [String: Int])>((0, [:]))

    /// A server on `group` (e.g. `MultiThreadedEventLoopGroup.singleton`).
    public init(configuration: ISCSIServerConfiguration, targets: [ISCSITargetDefinition],
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        let catalog = TargetCatalog(targets: [], portalGroupTag: configuration.portalGroupTag,
                                    discoveryAuthentication: configuration.discoveryAuthentication)
        self.context = ServerContext(configuration: configuration, catalog: catalog)
        self.group = group
        for target in targets { addTarget(target) }
    }

    /// Starts listening; returns the bound address (useful with port 0).
    public func start() async throws -> SocketAddress {
        let context = self.context
        let server = self
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.writeBufferWaterMark, value: ChannelOptions.Types.WriteBufferWaterMark(
                low: context.configuration.maxQueuedResponseBytesPerConnection / 2,
                high: context.configuration.maxQueuedResponseBytesPerConnection))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try server.admit(channel)
                    let framing = ISCSIFramingSettings()
                    let handler = ISCSIConnectionHandler(server: context, framing: framing)
                    let operations = channel.pipeline.syncOperations
                    try operations.addHandler(handler)
                    server.track(channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
                }
            }
        let channel = try await bootstrap.bind(host: context.configuration.host, port: context.configuration.port).get()
        listener.withLock { $0 = channel }
        context.configuration.logger.info("iSCSI portal listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        return channel.localAddress!
    }

    /// Refuses a new connection beyond `maxConnections`, or beyond `maxConnectionsPerHost`
    /// from its address (counted until the connection closes).
    private func admit(_ channel: any Channel) throws {
        let host = channel.remoteAddress?.ipAddress ?? "?"
        let configuration = context.configuration
        let admitted = admission.withLock { admission in
            guard admission.total < configuration.maxConnections,
                  admission.byHost[host, default: 0] < configuration.maxConnectionsPerHost else { return false }
            admission.total += 1
            admission.byHost[host, default: 0] += 1
            return true
        }
        guard admitted else {
            configuration.logger.warning("connection refused: too many connections", metadata: ["host": "\(host)"])
            throw ISCSIServerError.tooManyConnections
        }
        channel.closeFuture.whenComplete { [self] _ in
            admission.withLock { admission in
                admission.total -= 1
                admission.byHost[host, default: 0] -= 1
                if admission.byHost[host] == 0 { admission.byHost[host] = nil }
            }
        }
    }

    private func track(_ channel: any Channel, handler: NIOLoopBound<ISCSIConnectionHandler>) {
        let key = ObjectIdentifier(channel)
        connections.withLock { $0[key] = ConnectionReference(channel: channel, handler: handler) }
        channel.closeFuture.whenComplete { [self] _ in
            _ = connections.withLock { $0.removeValue(forKey: key) }
        }
    }

    /// Connections open now (accepted and not yet closed).
    public var connectionCount: Int { admission.withLock { $0.total } }

    /// Serves `target` from now on (replacing one with the same name).
    public func addTarget(_ target: ISCSITargetDefinition) {
        let registry = context.registry
        for unit in target.logicalUnits.values {
            // PREEMPT AND ABORT reaches the preempted sessions' tasks on this unit, and only
            // those (a nexus names its target; a unit may be in more than one target).
            unit.abortTasksHandler = { nexuses, unit in
                await withTaskGroup(of: Void.self) { group in
                    for connection in registry.allConnections() {
                        group.addTask { await connection.abortTasks(of: nexuses, on: unit) }
                    }
                }
            }
        }
        context.catalog.add(target)
    }

    /// Stops serving the target named `name`: later logins to it fail, its sessions are
    /// closed with their commands aborted, and this returns once none of their tasks can
    /// still reach its logical units, so their volumes may be closed. False when no target
    /// of that name was served.
    @discardableResult
    public func removeTarget(named name: String) async -> Bool {
        // The catalog first: a login that binds after this sees the removal (`bind`).
        guard context.catalog.remove(named: name) != nil else { return false }
        let ending = context.registry.connections(toTarget: name).map { $0.end(because: "target removed; closing the connection") }
        for ended in ending { try? await ended.get() }
        return true
    }

    /// The targets served now.
    public var targets: [ISCSITargetDefinition] { context.catalog.allDefinitions }

    /// Stops listening, lets running commands finish, closes every connection. Waits at most
    /// `timeoutMs` for connections to close.
    public func shutdown(timeoutMs: Int64 = 10_000) async {
        let channel = listener.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try? await channel?.close()
        let open = connections.withLock { Array($0.values) }
        for connection in open { connection.run { $0.shutdownGracefully() } }
        let deadline = NIODeadline.now() + .milliseconds(timeoutMs)
        for connection in open {
            let closed = connection.channel.closeFuture
            let timeout = connection.channel.eventLoop.scheduleTask(deadline: deadline) { connection.channel.close(promise: nil) }
            try? await closed.get()
            timeout.cancel()
        }
    }
}
