// Connections as Swift concurrency sees them: the handshake's outcome and the data frames
// after it arrive as one ordered stream of `ReplicationInbound` values, and frames are
// written with back-pressure (a write suspends while the socket is not writable), through
// NIOAsyncChannel. The wire layer (Frames/, Handshake/, Channel/) sits below.

import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// What a session reads from its connection, in order.
public enum ReplicationInbound: Sendable {
    /// The handshake completed (ReplicationHandshakeEvent).
    case established(ReplicationHandshakeEvent)
    case message(ReplicationMessage)
}

typealias ReplicationConnection = NIOAsyncChannel<ReplicationInbound, ReplicationMessage>

/// Turns the handshake handler's event and the messages after it into one inbound stream.
/// With `onAck`, acks are handed to it on the event loop instead (the primary's session
/// notes a replica's progress there: a flush waiting for it is resumed one hand-off sooner).
final class ReplicationInboundBridge: ChannelInboundHandler {
    typealias InboundIn = ReplicationMessage
    typealias InboundOut = ReplicationInbound

    let onAck: (@Sendable (Ack) -> Void)?

    init(onAck: (@Sendable (Ack) -> Void)? = nil) {
        self.onAck = onAck
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        if let onAck, case let .ack(ack) = message {
            onAck(ack)
            return
        }
        context.fireChannelRead(wrapInboundOut(.message(message)))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let handshake = event as? ReplicationHandshakeEvent {
            context.fireChannelRead(wrapInboundOut(.established(handshake)))
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

/// How fast a silent peer is noticed. A partition sends no FIN or RST: without these a
/// session would wait on it for as long as TCP retransmits (minutes), and the primary would
/// report a cut-off replica as in sync. Both are kernel timers on the socket.
public struct ConnectionLiveness: Sendable {
    /// An idle connection is probed after this many seconds without traffic...
    public var keepAliveIdleSeconds: Int32 = 1
    /// ...every this many seconds...
    public var keepAliveIntervalSeconds: Int32 = 1
    /// ...and dropped after this many unanswered probes.
    public var keepAliveProbes: Int32 = 3
    /// Data sent and not acknowledged by the peer's TCP for this long drops the connection
    /// (TCP_USER_TIMEOUT; it also bounds the keep-alive probing).
    public var unacknowledgedTimeoutMs: Int32 = 5_000

    public init() {}

    func apply(to channel: Channel) throws {
        guard let options = channel.syncOptions else { return }
        try options.setOption(.socketOption(.so_keepalive), value: 1)
        #if os(Linux)
        let tcp = NIOBSDSocket.OptionLevel.tcp
        try options.setOption(ChannelOptions.Types.SocketOption(level: tcp, name: .init(rawValue: TCP_KEEPIDLE)),
                              value: SocketOptionValue(keepAliveIdleSeconds))
        try options.setOption(ChannelOptions.Types.SocketOption(level: tcp, name: .init(rawValue: TCP_KEEPINTVL)),
                              value: SocketOptionValue(keepAliveIntervalSeconds))
        try options.setOption(ChannelOptions.Types.SocketOption(level: tcp, name: .init(rawValue: TCP_KEEPCNT)),
                              value: SocketOptionValue(keepAliveProbes))
        try options.setOption(ChannelOptions.Types.SocketOption(level: tcp, name: .init(rawValue: Int32(TCP_USER_TIMEOUT))),
                              value: SocketOptionValue(unacknowledgedTimeoutMs))
        #endif
    }
}

extension ReplicationFraming {
    /// The wire handlers, the bridge and the async wrapper, on a new channel's event loop.
    static func makeConnection(_ channel: Channel, side: ReplicationHandshakeHandler.Side, limits: WireLimits,
                               liveness: ConnectionLiveness,
                               onAck: (@Sendable (Ack) -> Void)? = nil) throws -> ReplicationConnection {
        try liveness.apply(to: channel)
        let pipeline = channel.pipeline.syncOperations
        try ReplicationFraming.addHandlers(to: pipeline, side: side, limits: limits)
        try pipeline.addHandler(ReplicationInboundBridge(onAck: onAck))
        return try ReplicationConnection(wrappingChannelSynchronously: channel)
    }
}

/// A replica's address, `HOST:PORT`.
public struct ReplicaAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
