// The handshake's cryptography (docs/REPLICATION.md, "Authentication"):
//
//   T            = SHA-256(hello payload || helloAck payload without its proof)
//   server proof = HMAC-SHA256(secret, "blockd-replication-v1 server" || T)
//   client proof = HMAC-SHA256(secret, "blockd-replication-v1 client" || T)
//   key d->l     = HKDF-SHA256(secret, salt: T, info: "blockd-replication-v1 dialer to listener", 32)
//   key l->d     = HKDF-SHA256(secret, salt: T, info: "blockd-replication-v1 listener to dialer", 32)
//
// T holds both nonces, so every connection has its own proofs and keys; the labels keep a
// server proof from passing as a client proof and one direction's MACs from passing in the
// other.

import Crypto
import NIOCore

enum HandshakeCrypto {
    static let serverLabel = Array("blockd-replication-v1 server".utf8)
    static let clientLabel = Array("blockd-replication-v1 client".utf8)
    static let dialerToListenerInfo = Array("blockd-replication-v1 dialer to listener".utf8)
    static let listenerToDialerInfo = Array("blockd-replication-v1 listener to dialer".utf8)
    static let zeroProof = [UInt8](repeating: 0, count: ReplicationProtocol.proofBytes)

    static func transcript(hello: Hello, ack: HelloAck) -> [UInt8] {
        var bytes = ByteBuffer()
        hello.encode(into: &bytes)
        ack.encodeTranscriptFields(into: &bytes)
        return bytes.withUnsafeReadableBytes { Array(SHA256.hash(data: $0)) }
    }

    static func serverProof(_ secret: ReplicationSecret, transcript: [UInt8]) -> [UInt8] {
        proof(secret, label: serverLabel, transcript: transcript)
    }

    static func clientProof(_ secret: ReplicationSecret, transcript: [UInt8]) -> [UInt8] {
        proof(secret, label: clientLabel, transcript: transcript)
    }

    private static func proof(_ secret: ReplicationSecret, label: [UInt8], transcript: [UInt8]) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: secret.key)
        hmac.update(data: label)
        hmac.update(data: transcript)
        return Array(hmac.finalize())
    }

    /// The frame keys of both directions.
    static func keys(_ secret: ReplicationSecret,
                     transcript: [UInt8]) -> (dialerToListener: FrameKey, listenerToDialer: FrameKey) {
        func derive(_ info: [UInt8]) -> FrameKey {
            .hmacSHA256(HKDF<SHA256>.deriveKey(inputKeyMaterial: secret.key, salt: transcript, info: info,
                                                outputByteCount: 32))
        }
        return (derive(dialerToListenerInfo), derive(listenerToDialerInfo))
    }

    /// 32 random bytes.
    static func nonce(using generator: inout some RandomNumberGenerator) -> [UInt8] {
        (0..<ReplicationProtocol.nonceBytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }
}
