// Runs the handshake state machines on a channel: sends the dialer's hello when the channel
// becomes active, answers the listener's hello through a callback, switches the shared
// ReplicationFraming to the session keys, and tells the handlers above with a user inbound
// event. After that it passes messages through. The shipper and the listener logic sit
// above it and only ever see authenticated data frames.
//
// Invariants:
// - No message reaches the handlers above unless the handshake completed; they learn of it
//   from `ReplicationHandshakeEvent`. After a refusal or an error, frames still in flight
//   are dropped while the channel closes.
// - The handshake completes within `timeoutMs` or the channel is closed.
// - `.none` authentication is refused for peers that are not loopback (or a Unix socket).
// - A framing or handshake error is passed on and closes the channel: a stream is never
//   read past an error.

import NIOCore

/// What the handshake handler tells the handlers above it (a user inbound event).
public enum ReplicationHandshakeEvent: Sendable {
    /// Dialer: the listener proved the secret and accepted; the connection is authenticated.
    case dialerEstablished(HelloAck)
    /// Dialer: the listener proved the secret and refused (a stale epoch, an unknown volume,
    /// busy...). The channel closes after this event.
    case refusedByListener(HelloAck)
    /// Listener: the dialer proved the secret; the connection is authenticated.
    case listenerEstablished(Hello)
}

/// The handshake of one connection, on its pipeline above the frame decoder and encoder.
public final class ReplicationHandshakeHandler: ChannelInboundHandler {
    public typealias InboundIn = ReplicationMessage
    public typealias InboundOut = ReplicationMessage
    public typealias OutboundOut = ReplicationMessage

    public static let defaultTimeoutMs = 10_000

    /// Which side this is. The listener's callback judges a hello (on the event loop).
    public enum Side {
        case dialer(DialerHandshake)
        case listener(ListenerHandshake, answer: (Hello) -> ListenerHandshake.Answer)
    }

    private enum Phase {
        case handshaking
        case established
        /// Refused or failed: the channel is closing.
        case finished
    }

    private var side: Side
    private let framing: ReplicationFraming
    private let timeoutMs: Int
    private var phase = Phase.handshaking
    private var started = false
    private var timeout: Scheduled<Void>?

    public init(side: Side, framing: ReplicationFraming, timeoutMs: Int = ReplicationHandshakeHandler.defaultTimeoutMs) {
        precondition(timeoutMs > 0, "a handshake needs a timeout")
        self.side = side
        self.framing = framing
        self.timeoutMs = timeoutMs
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        timeout?.cancel()
        timeout = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        let authentication: ReplicationAuthentication
        switch side {
        case let .dialer(handshake): authentication = handshake.authentication
        case let .listener(handshake, _): authentication = handshake.authentication
        }
        if case .none = authentication, let peer = context.channel.remoteAddress, !Self.isLoopback(peer) {
            fail(context: context, .unauthenticatedRemotePeer("\(peer)"))
            return
        }
        let loopBound = context.loopBound
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: .milliseconds(Int64(timeoutMs))) { [timeoutMs] in
            handler.value.fail(context: loopBound.value, .handshakeTimedOut(timeoutMs: timeoutMs))
        }
        if case let .dialer(handshake) = side {
            context.writeAndFlush(wrapOutboundOut(.hello(handshake.hello)), promise: nil)
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch phase {
        case .established:
            context.fireChannelRead(data)
            return
        case .finished:
            return
        case .handshaking:
            break
        }
        let message = unwrapInboundIn(data)
        do throws(WireError) {
            switch side {
            case var .dialer(handshake):
                let outcome = try handshake.receive(message)
                side = .dialer(handshake)
                switch outcome {
                case let .established(ack, auth, keys):
                    context.write(wrapOutboundOut(.auth(auth)), promise: nil)
                    framing.establish(keys)
                    finish(context: context, .dialerEstablished(ack), phase: .established)
                case let .refused(ack):
                    finish(context: context, .refusedByListener(ack), phase: .finished)
                    context.close(promise: nil)
                }
            case .listener(var handshake, let answer):
                let event = try handshake.receive(message)
                side = .listener(handshake, answer: answer)
                switch event {
                case let .answerNeeded(hello):
                    let ack = handshake.answer(answer(hello))
                    side = .listener(handshake, answer: answer)
                    reply(context: context, ack, close: ack.status != .ok)
                case let .refuse(ack):
                    reply(context: context, ack, close: true)
                case let .established(hello, keys):
                    framing.establish(keys)
                    finish(context: context, .listenerEstablished(hello), phase: .established)
                }
            }
        } catch {
            fail(context: context, error)
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.fireErrorCaught(error)
        // A framing error ends the stream (the reader keeps it): nothing more can be read.
        if error is WireError || error is ByteToMessageDecoderError { context.close(promise: nil) }
    }

    private func reply(context: ChannelHandlerContext, _ ack: HelloAck, close: Bool) {
        let written = context.writeAndFlush(wrapOutboundOut(.helloAck(ack)))
        if close {
            phase = .finished
            timeout?.cancel()
            timeout = nil
            let loopBound = context.loopBound
            written.whenComplete { _ in loopBound.value.close(promise: nil) }
        }
    }

    private func finish(context: ChannelHandlerContext, _ event: ReplicationHandshakeEvent, phase: Phase) {
        self.phase = phase
        timeout?.cancel()
        timeout = nil
        context.flush()
        context.fireUserInboundEventTriggered(event)
    }

    private func fail(context: ChannelHandlerContext, _ error: WireError) {
        phase = .finished
        timeout?.cancel()
        timeout = nil
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    /// 127.0.0.0/8, ::1, an IPv4-mapped loopback address, or a Unix domain socket.
    static func isLoopback(_ address: SocketAddress) -> Bool {
        switch address {
        case .unixDomainSocket: return true
        case .v4, .v6:
            guard let ip = address.ipAddress else { return false }
            return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
        }
    }
}

extension ReplicationFraming {
    /// Adds decoder, encoder and handshake handler to a pipeline (on its event loop).
    public static func addHandlers(to pipeline: ChannelPipeline.SynchronousOperations,
                                   side: ReplicationHandshakeHandler.Side,
                                   limits: WireLimits = WireLimits(),
                                   handshakeTimeoutMs: Int = ReplicationHandshakeHandler.defaultTimeoutMs) throws {
        let framing = ReplicationFraming(limits: limits)
        let (decoder, encoder) = framing.makeHandlers()
        try pipeline.addHandler(decoder)
        try pipeline.addHandler(encoder)
        try pipeline.addHandler(ReplicationHandshakeHandler(side: side, framing: framing, timeoutMs: handshakeTimeoutMs))
    }
}
