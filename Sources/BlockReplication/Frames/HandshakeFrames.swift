// The handshake's payloads: hello (dialer -> listener), helloAck (listener -> dialer) and
// auth (dialer -> listener). docs/REPLICATION.md has their byte tables and the handshake.
//
// Invariants:
// - Nonces and proofs are exactly 32 bytes; a volume name is 1 to 255 bytes of UTF-8.
// - Decoding is strict (every value checked, nothing left over), so a decoded payload
//   encodes back to the same bytes: the handshake transcript is the re-encoded payloads.

import BlockEngine
import NIOCore

/// The replication protocol version a hello offers.
public enum ReplicationProtocol {
    public static let version: UInt16 = 2
    /// Client and server nonces.
    public static let nonceBytes = 32
    /// Client and server proofs (HMAC-SHA256).
    public static let proofBytes = 32
    /// Bound of the reason texts of epochNotice and goodbye.
    public static let maxReasonBytes = 1024
}

/// How a side authenticates. `none` (zero proofs, zero MACs) is for tests and loopback only;
/// a listener with a secret refuses it.
public enum AuthenticationMode: UInt8, Sendable, CustomStringConvertible {
    case none = 0
    case hmacSHA256 = 1

    public var description: String { self == .none ? "none" : "hmac-sha256" }
}

/// The dialer's opening frame: who it is and where its log stands.
public struct Hello: FramePayload {
    public static let frameType = FrameType.hello
    public static let maxVolumeNameBytes = 255

    public var protocolVersion: UInt16
    public var authMode: AuthenticationMode
    /// The sender's role (the engine's `VolumeRole`).
    public var role: VolumeRole
    /// The sender's epoch.
    public var epoch: UInt64
    /// The sender's highest committed (durable) LSN.
    public var committedLSN: UInt64
    public var volumeUUID: VolumeUUID
    /// 32 random bytes, fresh for each connection.
    public var clientNonce: [UInt8]
    public var volumeName: String

    public init(protocolVersion: UInt16 = ReplicationProtocol.version, authMode: AuthenticationMode, role: VolumeRole,
                epoch: UInt64, committedLSN: UInt64, volumeUUID: VolumeUUID, clientNonce: [UInt8], volumeName: String) {
        self.protocolVersion = protocolVersion
        self.authMode = authMode
        self.role = role
        self.epoch = epoch
        self.committedLSN = committedLSN
        self.volumeUUID = volumeUUID
        self.clientNonce = clientNonce
        self.volumeName = volumeName
    }

    public func encode(into buffer: inout ByteBuffer) {
        let name = Array(volumeName.utf8)
        precondition((1...Self.maxVolumeNameBytes).contains(name.count), "volume name of 1 to 255 bytes")
        precondition(clientNonce.count == ReplicationProtocol.nonceBytes, "nonce of 32 bytes")
        buffer.writeLE(protocolVersion)
        buffer.writeLE(authMode.rawValue)
        buffer.writeLE(role.rawValue)
        buffer.writeLE(epoch)
        buffer.writeLE(committedLSN)
        buffer.writeBytes(volumeUUID.bytes)
        buffer.writeBytes(clientNonce)
        buffer.writeLE(UInt8(name.count))
        buffer.writeBytes(name)
    }

    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> Hello {
        let type = frameType
        let version = try buffer.readLE(UInt16.self, in: type)
        let authMode = try decodeEnum(AuthenticationMode.self, try buffer.readLE(UInt8.self, in: type), field: "auth mode", in: type)
        let role = try decodeEnum(VolumeRole.self, try buffer.readLE(UInt8.self, in: type), field: "role", in: type)
        let epoch = try buffer.readLE(UInt64.self, in: type)
        let committedLSN = try buffer.readLE(UInt64.self, in: type)
        let uuid = VolumeUUID(bytes: try buffer.readFixedBytes(16, in: type))
        let nonce = try buffer.readFixedBytes(ReplicationProtocol.nonceBytes, in: type)
        let name = try buffer.readText(prefixBytes: 1, maxBytes: maxVolumeNameBytes, field: "volume name",
                                       allowEmpty: false, in: type)
        return Hello(protocolVersion: version, authMode: authMode, role: role, epoch: epoch, committedLSN: committedLSN,
                     volumeUUID: uuid, clientNonce: nonce, volumeName: name)
    }
}

/// The listener's answer to a hello.
public enum HelloStatus: UInt8, Sendable, CustomStringConvertible {
    case ok = 0
    case unknownVolume = 1
    /// The dialer's epoch is older than the listener's: a primary that gets this fences itself.
    case staleEpoch = 2
    case notAReplica = 3
    /// The two sides disagree on the authentication mode. The only status a dialer cannot
    /// verify, so it never acts on it beyond closing.
    case authFailed = 4
    case busy = 5
    case unsupportedVersion = 6

    public var description: String {
        switch self {
        case .ok: "ok"
        case .unknownVolume: "unknown volume"
        case .staleEpoch: "stale epoch"
        case .notAReplica: "not a replica"
        case .authFailed: "authentication failed"
        case .busy: "busy"
        case .unsupportedVersion: "unsupported protocol version"
        }
    }
}

/// The listener's answer: its status and where its copy of the log stands, its nonce and
/// its proof of the secret over the transcript.
public struct HelloAck: FramePayload {
    public static let frameType = FrameType.helloAck

    public var status: HelloStatus
    /// The listener's epoch.
    public var epoch: UInt64
    /// The highest LSN durable on the listener's copy.
    public var durableLSN: UInt64
    /// The highest LSN the listener holds (durable or not); at least `durableLSN`.
    public var receivedLSN: UInt64
    /// The epoch of the record at `durableLSN`, 0 when the listener has none; at most
    /// `epoch`, or `HelloAck.unknownEpoch` when the listener cannot tell (the primary rebuilds).
    public var durableRecordEpoch: UInt64
    /// The listener's checkpoint: its log cannot be truncated below it. At most `durableLSN`.
    public var checkpointLSN: UInt64
    public var serverNonce: [UInt8]
    /// HMAC-SHA256 over the transcript (zeros in `.none` mode and with `authFailed`).
    public var serverProof: [UInt8]

    /// `durableRecordEpoch` when the listener cannot tell it: its image is incomplete (a
    /// rebuild was cut short) or the record was written back with its epoch not kept.
    public static let unknownEpoch = UInt64.max

    public init(status: HelloStatus, epoch: UInt64, durableLSN: UInt64, receivedLSN: UInt64,
                durableRecordEpoch: UInt64, checkpointLSN: UInt64 = 0, serverNonce: [UInt8], serverProof: [UInt8]) {
        self.status = status
        self.epoch = epoch
        self.durableLSN = durableLSN
        self.receivedLSN = receivedLSN
        self.durableRecordEpoch = durableRecordEpoch
        self.checkpointLSN = checkpointLSN
        self.serverNonce = serverNonce
        self.serverProof = serverProof
    }

    /// Every field before the proof: the listener's part of the transcript.
    func encodeTranscriptFields(into buffer: inout ByteBuffer) {
        precondition(durableLSN <= receivedLSN && checkpointLSN <= durableLSN
                     && (durableRecordEpoch <= epoch || durableRecordEpoch == Self.unknownEpoch),
                     "helloAck fields out of order")
        precondition(serverNonce.count == ReplicationProtocol.nonceBytes, "nonce of 32 bytes")
        buffer.writeLE(status.rawValue)
        buffer.writeLE(epoch)
        buffer.writeLE(durableLSN)
        buffer.writeLE(receivedLSN)
        buffer.writeLE(durableRecordEpoch)
        buffer.writeLE(checkpointLSN)
        buffer.writeBytes(serverNonce)
    }

    public func encode(into buffer: inout ByteBuffer) {
        precondition(serverProof.count == ReplicationProtocol.proofBytes, "proof of 32 bytes")
        encodeTranscriptFields(into: &buffer)
        buffer.writeBytes(serverProof)
    }

    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> HelloAck {
        let type = frameType
        let status = try decodeEnum(HelloStatus.self, try buffer.readLE(UInt8.self, in: type), field: "status", in: type)
        let epoch = try buffer.readLE(UInt64.self, in: type)
        let durableLSN = try buffer.readLE(UInt64.self, in: type)
        let receivedLSN = try buffer.readLE(UInt64.self, in: type)
        let durableRecordEpoch = try buffer.readLE(UInt64.self, in: type)
        let checkpointLSN = try buffer.readLE(UInt64.self, in: type)
        guard durableLSN <= receivedLSN else { throw .invalidField(type, field: "durable LSN", value: durableLSN) }
        guard durableRecordEpoch <= epoch || durableRecordEpoch == unknownEpoch else {
            throw .invalidField(type, field: "durable record epoch", value: durableRecordEpoch)
        }
        guard checkpointLSN <= durableLSN else { throw .invalidField(type, field: "checkpoint LSN", value: checkpointLSN) }
        let nonce = try buffer.readFixedBytes(ReplicationProtocol.nonceBytes, in: type)
        let proof = try buffer.readFixedBytes(ReplicationProtocol.proofBytes, in: type)
        return HelloAck(status: status, epoch: epoch, durableLSN: durableLSN, receivedLSN: receivedLSN,
                        durableRecordEpoch: durableRecordEpoch, checkpointLSN: checkpointLSN,
                        serverNonce: nonce, serverProof: proof)
    }
}

/// The dialer's proof of the secret over the transcript.
public struct Auth: FramePayload {
    public static let frameType = FrameType.auth

    public var clientProof: [UInt8]

    public init(clientProof: [UInt8]) {
        self.clientProof = clientProof
    }

    public func encode(into buffer: inout ByteBuffer) {
        precondition(clientProof.count == ReplicationProtocol.proofBytes, "proof of 32 bytes")
        buffer.writeBytes(clientProof)
    }

    public static func decode(from buffer: inout ByteBuffer) throws(WireError) -> Auth {
        Auth(clientProof: try buffer.readFixedBytes(ReplicationProtocol.proofBytes, in: frameType))
    }
}
