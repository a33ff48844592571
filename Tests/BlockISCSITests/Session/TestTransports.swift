// The two ways the test initiator reaches the target: an in-memory NIOAsyncTestingChannel
// running the real pipeline (the connection handler, which frames PDUs itself), and a real TCP
// connection to an `ISCSIServer`. Both are read by bounded polling.

import NIOCore
import NIOEmbedded
import NIOPosix
import Synchronization
@testable import BlockISCSI

/// A byte pipe to the target.
protocol ByteTransport: Sendable {
    func send(_ bytes: [UInt8]) async throws
    /// The bytes the target wrote since the last call (empty when none).
    func take() async throws -> [UInt8]
    /// True once the target closed the connection.
    func isClosed() async -> Bool
}

/// The pipeline of `ISCSIServer` on an async testing channel: no sockets. Time is virtual:
/// scheduled work (liveness checks, login timeout) runs only when `advanceTime` is called;
/// SCSI command tasks, which run on the loop, are driven by `take()`.
final class EmbeddedTransport: ByteTransport {
    let channel: NIOAsyncTestingChannel

    private init(channel: NIOAsyncTestingChannel) { self.channel = channel }

    static func connect(_ server: ServerContext) async throws -> EmbeddedTransport {
        let channel = NIOAsyncTestingChannel()
        try await channel.testingEventLoop.executeInContext {
            let framing = ISCSIFramingSettings()
            let operations = channel.pipeline.syncOperations
            try operations.addHandler(ISCSIConnectionHandler(server: server, framing: framing))
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 3260)).get()
        return EmbeddedTransport(channel: channel)
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeInbound(ByteBuffer(bytes: bytes))
    }

    func take() async throws -> [UInt8] {
        // Work the handler queued from inside the loop (command tasks run on it) waits for
        // an explicit run on a testing loop; a real event loop runs it on its own.
        await channel.testingEventLoop.run()
        var bytes: [UInt8] = []
        while let buffer = try await channel.readOutbound(as: ByteBuffer.self) {
            bytes += buffer.readableBytesView
        }
        return bytes
    }

    func isClosed() async -> Bool { !channel.isActive }

    func advanceTime(by amount: TimeAmount) async {
        await channel.testingEventLoop.advanceTime(by: amount)
    }

    /// Closes the channel if the target has not (runs the handler's teardown).
    func close() async {
        if channel.isActive { try? await channel.close() }
    }
}

/// A TCP connection to a running `ISCSIServer`.
final class TCPTransport: ByteTransport {
    private final class Inbox: Sendable {
        let state = Mutex<(bytes: [UInt8], closed: Bool)>(([], false))
    }

    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let inbox: Inbox
        init(_ inbox: Inbox) { self.inbox = inbox }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            inbox.state.withLock { $0.bytes += buffer.readableBytesView }
        }

        func channelInactive(context: ChannelHandlerContext) {
            inbox.state.withLock { $0.closed = true }
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            context.close(promise: nil)
        }
    }

    let channel: any Channel
    private let inbox: Inbox

    private init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    /// A connection; `smallReceiveBuffer` makes a peer that stops reading (`setReading`)
    /// push back on the target quickly.
    static func connect(to address: SocketAddress, smallReceiveBuffer: Bool = false) async throws -> TCPTransport {
        let inbox = Inbox()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        if smallReceiveBuffer {
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: 64 << 10)
        }
        let channel = try await bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(inbox))
                }
            }
            .connect(to: address).get()
        return TCPTransport(channel: channel, inbox: inbox)
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    func take() async throws -> [UInt8] {
        inbox.state.withLock { state in
            defer { state.bytes.removeAll() }
            return state.bytes
        }
    }

    func isClosed() async -> Bool { inbox.state.withLock { $0.closed } }

    /// Stops or resumes reading the socket (the target's answers then wait in the kernel).
    func setReading(_ reading: Bool) async throws {
        try await channel.setOption(.autoRead, value: reading)
        if reading { channel.read() }
    }

    func close() async {
        try? await channel.close()
    }
}
