// Thin NIO handlers over FrameReader and FrameWriter: a ByteToMessageDecoder that turns the
// byte stream into ReplicationMessages and an outbound handler that turns them into
// frames. Both share one ReplicationFraming (the reader, the writer and their keys), owned
// by the channel's event loop; the handshake handler switches it to the session keys.
//
// Invariants:
// - Buffering is bounded: the reader refuses a frame longer than `limits.maxFrameBytes`
//   from its header, and the ByteToMessageHandler is built with that as its maximum
//   buffer, so a connection holds at most one frame and one socket read of input.
// - A frame is encoded synchronously in `write`, so the keys a frame gets are the ones set
//   when it was written: the dialer switches after writing its auth, and its next write
//   carries a MAC.
// - A frame the writer refuses (out of phase, over the limit) fails its write promise and
//   sends nothing; a decoding error is passed on and ends the input (the reader keeps it).

import NIOCore

/// The reader and writer of one connection, shared by its decoder and encoder. Event-loop
/// bound (not Sendable).
public final class ReplicationFraming {
    public var reader: FrameReader
    public var writer: FrameWriter

    public init(limits: WireLimits = WireLimits()) {
        reader = FrameReader(limits: limits)
        writer = FrameWriter(limits: limits)
    }

    /// Switches both directions to the session keys.
    public func establish(_ keys: SessionKeys) {
        reader.establish(keys.inbound)
        writer.establish(keys.outbound)
    }

    /// True once the session keys are in use.
    public var isEstablished: Bool { reader.isEstablished && writer.isEstablished }

    /// The decoder and encoder for a pipeline, decoder first (inbound from the socket).
    public func makeHandlers() -> (decoder: ByteToMessageHandler<ReplicationFrameDecoder>, encoder: ReplicationFrameEncoder) {
        (ByteToMessageHandler(ReplicationFrameDecoder(framing: self), maximumBufferSize: reader.limits.maxFrameBytes),
         ReplicationFrameEncoder(framing: self))
    }
}

/// Splits the byte stream into frames and decodes them.
public struct ReplicationFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ReplicationMessage
    private let framing: ReplicationFraming

    public init(framing: ReplicationFraming) {
        self.framing = framing
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let message = try framing.reader.read(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(message))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer,
                                    seenEOF: Bool) throws -> DecodingState {
        // Bounded: each turn consumes one whole frame of what is buffered, or stops.
        while let message = try framing.reader.read(from: &buffer) {
            context.fireChannelRead(Self.wrapInboundOut(message))
        }
        try framing.reader.finish(buffer)
        return .needMoreData
    }
}

/// Encodes messages into frames.
public final class ReplicationFrameEncoder: ChannelOutboundHandler {
    public typealias OutboundIn = ReplicationMessage
    public typealias OutboundOut = ByteBuffer
    private let framing: ReplicationFraming

    public init(framing: ReplicationFraming) {
        self.framing = framing
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let message = Self.unwrapOutboundIn(data)
        var buffer = context.channel.allocator.buffer(capacity: FrameHeader.sizeBytes + message.payloadCapacityHint)
        do {
            try framing.writer.write(message, into: &buffer)
        } catch {
            promise?.fail(error)
            return
        }
        context.write(Self.wrapOutboundOut(buffer), promise: promise)
    }
}

extension ReplicationMessage {
    /// About the payload's size, to allocate a frame's buffer once.
    var payloadCapacityHint: Int {
        switch self {
        case let .records(batch): batch.encodedBytes
        case let .rebuildChunk(chunk): 20 + chunk.data.readableBytes
        case let .rebuildDigestReply(reply): 16 + reply.digests.count * RebuildDigestReply.digestBytes
        default: 128
        }
    }
}
