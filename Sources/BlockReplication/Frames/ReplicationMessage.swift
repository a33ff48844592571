// One decoded frame payload of any type: what the frame reader hands up and the frame
// writer takes.

import NIOCore

/// A frame's payload, by type.
public enum ReplicationMessage: Sendable, Equatable {
    case hello(Hello)
    case helloAck(HelloAck)
    case auth(Auth)
    case decision(Decision)
    case records(RecordBatch)
    case ack(Ack)
    case barrier(Barrier)
    case barrierReply(BarrierReply)
    case epochNotice(EpochNotice)
    case rebuildChunk(RebuildChunk)
    case rebuildDigestRequest(RebuildDigestRequest)
    case rebuildDigestReply(RebuildDigestReply)
    case rebuildDone(RebuildDone)
    case goodbye(Goodbye)
    case committed(Committed)

    public var type: FrameType {
        switch self {
        case .hello: .hello
        case .helloAck: .helloAck
        case .auth: .auth
        case .decision: .decision
        case .records: .records
        case .ack: .ack
        case .barrier: .barrier
        case .barrierReply: .barrierReply
        case .epochNotice: .epochNotice
        case .rebuildChunk: .rebuildChunk
        case .rebuildDigestRequest: .rebuildDigestRequest
        case .rebuildDigestReply: .rebuildDigestReply
        case .rebuildDone: .rebuildDone
        case .goodbye: .goodbye
        case .committed: .committed
        }
    }

    var payload: any FramePayload {
        switch self {
        case let .hello(payload): payload
        case let .helloAck(payload): payload
        case let .auth(payload): payload
        case let .decision(payload): payload
        case let .records(payload): payload
        case let .ack(payload): payload
        case let .barrier(payload): payload
        case let .barrierReply(payload): payload
        case let .epochNotice(payload): payload
        case let .rebuildChunk(payload): payload
        case let .rebuildDigestRequest(payload): payload
        case let .rebuildDigestReply(payload): payload
        case let .rebuildDone(payload): payload
        case let .goodbye(payload): payload
        case let .committed(payload): payload
        }
    }

    func encodePayload(into buffer: inout ByteBuffer) {
        payload.encode(into: &buffer)
    }

    /// Decodes a whole payload of `type`; bytes after its last field are an error.
    static func decode(type: FrameType, payload: inout ByteBuffer) throws(WireError) -> ReplicationMessage {
        let message: ReplicationMessage
        switch type {
        case .hello: message = .hello(try Hello.decode(from: &payload))
        case .helloAck: message = .helloAck(try HelloAck.decode(from: &payload))
        case .auth: message = .auth(try Auth.decode(from: &payload))
        case .decision: message = .decision(try Decision.decode(from: &payload))
        case .records: message = .records(try RecordBatch.decode(from: &payload))
        case .ack: message = .ack(try Ack.decode(from: &payload))
        case .barrier: message = .barrier(try Barrier.decode(from: &payload))
        case .barrierReply: message = .barrierReply(try BarrierReply.decode(from: &payload))
        case .epochNotice: message = .epochNotice(try EpochNotice.decode(from: &payload))
        case .rebuildChunk: message = .rebuildChunk(try RebuildChunk.decode(from: &payload))
        case .rebuildDigestRequest: message = .rebuildDigestRequest(try RebuildDigestRequest.decode(from: &payload))
        case .rebuildDigestReply: message = .rebuildDigestReply(try RebuildDigestReply.decode(from: &payload))
        case .rebuildDone: message = .rebuildDone(try RebuildDone.decode(from: &payload))
        case .goodbye: message = .goodbye(try Goodbye.decode(from: &payload))
        case .committed: message = .committed(try Committed.decode(from: &payload))
        }
        guard payload.readableBytes == 0 else { throw .trailingBytes(type, count: payload.readableBytes) }
        return message
    }
}
