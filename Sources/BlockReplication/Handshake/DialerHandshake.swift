// The dialer's side of the handshake, as a pure state machine (no I/O):
//
//   dialer                                   listener
//   hello(nonce_c, who, where) ───────────▶
//                              ◀─────────── helloAck(status, where, nonce_s, server proof)
//   auth(client proof)         ───────────▶
//   (both switch to their session keys)
//
// Invariants:
// - Nothing in a helloAck is acted on before its server proof verified (with a secret):
//   a stale-epoch answer makes a primary fence itself, so it must come from a holder of
//   the secret. The one exception, `authFailed`, only ends the connection.
// - Steps only move forward: awaitingAck -> finished or failed; one helloAck, then nothing.
// - Proofs are compared in constant time.

import BlockEngine

/// The dialer's handshake.
public struct DialerHandshake: Sendable {
    /// What the helloAck led to.
    public enum Outcome: Sendable {
        /// Send `auth`, then switch the connection to `keys` (its writer right after the
        /// auth frame, its reader now).
        case established(HelloAck, auth: Auth, keys: SessionKeys)
        /// The listener refused, and proved it holds the secret: act on the status (a
        /// stale epoch, for example), then close.
        case refused(HelloAck)
    }

    private enum Step: Sendable {
        case awaitingAck
        case finished
        case failed
    }

    public let authentication: ReplicationAuthentication
    /// The first frame to send.
    public let hello: Hello
    private var step = Step.awaitingAck

    public init(authentication: ReplicationAuthentication, volumeName: String, volumeUUID: VolumeUUID,
                role: VolumeRole, epoch: UInt64, committedLSN: UInt64,
                using generator: inout some RandomNumberGenerator) {
        self.authentication = authentication
        hello = Hello(authMode: authentication.mode, role: role, epoch: epoch, committedLSN: committedLSN,
                      volumeUUID: volumeUUID, clientNonce: HandshakeCrypto.nonce(using: &generator),
                      volumeName: volumeName)
    }

    /// Takes the listener's frame.
    public mutating func receive(_ message: ReplicationMessage) throws(WireError) -> Outcome {
        guard case .awaitingAck = step, case let .helloAck(ack) = message else {
            step = .failed
            throw .unexpectedFrame(message.type, state: "dialer handshake")
        }
        step = .failed
        if ack.status == .authFailed { throw .peerRefusedAuthentication }
        let transcript = HandshakeCrypto.transcript(hello: hello, ack: ack)
        let expected: [UInt8]
        switch authentication {
        case .none: expected = HandshakeCrypto.zeroProof
        case let .sharedSecret(secret): expected = HandshakeCrypto.serverProof(secret, transcript: transcript)
        }
        guard constantTimeEqual(ack.serverProof, expected) else {
            throw .authenticationFailed("the listener's proof does not verify")
        }
        step = .finished
        guard ack.status == .ok else { return .refused(ack) }
        switch authentication {
        case .none:
            return .established(ack, auth: Auth(clientProof: HandshakeCrypto.zeroProof), keys: .unauthenticated)
        case let .sharedSecret(secret):
            let keys = HandshakeCrypto.keys(secret, transcript: transcript)
            return .established(ack, auth: Auth(clientProof: HandshakeCrypto.clientProof(secret, transcript: transcript)),
                                keys: SessionKeys(inbound: keys.listenerToDialer, outbound: keys.dialerToListener))
        }
    }
}
