// Connections as Swift concurrency sees them: the handshake's outcome and the data frames
// after it arrive as one ordered stream of `ReplicationInbound` values, and frames are
// written with back-pressure (a write suspends while the socket is not writable), through
// NIOAsyncChannel. The wire layer (Frames/, Handshake/, Channel/) sits below.

import NIOCore
import NIOPosix

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

extension ReplicationFraming {
    /// The wire handlers, the bridge and the async wrapper, on a new channel's event loop.
    static func makeConnection(_ channel: Channel, side: ReplicationHandshakeHandler.Side, limits: WireLimits,
                               onAck: (@Sendable (Ack) -> Void)? = nil) throws -> ReplicationConnection {
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
