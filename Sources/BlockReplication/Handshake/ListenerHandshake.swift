// The listener's side of the handshake, as a pure state machine (no I/O). The caller looks
// at the hello (volume, epoch, role), decides the status and says where its copy stands
// (`answer`); the machine adds the nonce and the proof, then checks the dialer's proof.
//
// Invariants:
// - Steps only move forward: awaitingHello -> awaitingAnswer -> awaitingAuth ->
//   established, or refused/failed; each handshake frame is taken once, in its turn.
// - `established` only after the dialer proved the secret over this connection's
//   transcript (with a secret), so nothing but the helloAck leaves a listener for a peer
//   without the secret.
// - A dialer whose authentication mode differs is refused (`authFailed`, zero proof): a
//   listener with a secret never runs unauthenticated.
// - Proofs are compared in constant time.

/// The listener's handshake.
public struct ListenerHandshake: Sendable {
    /// What a frame from the dialer led to.
    public enum Event: Sendable {
        /// A hello to judge: call `answer`, send its helloAck.
        case answerNeeded(Hello)
        /// Send this helloAck and close (authentication modes differ, or an unsupported
        /// protocol version).
        case refuse(HelloAck)
        /// The dialer proved the secret: switch the connection to `keys`.
        case established(Hello, keys: SessionKeys)
    }

    /// The listener's side of a helloAck: its verdict and where its copy stands.
    public struct Answer: Sendable, Equatable {
        public var status: HelloStatus
        public var epoch: UInt64
        public var durableLSN: UInt64
        public var receivedLSN: UInt64
        public var durableRecordEpoch: UInt64
        public var checkpointLSN: UInt64

        public init(status: HelloStatus, epoch: UInt64, durableLSN: UInt64, receivedLSN: UInt64,
                    durableRecordEpoch: UInt64, checkpointLSN: UInt64 = 0) {
            self.status = status
            self.epoch = epoch
            self.durableLSN = durableLSN
            self.receivedLSN = receivedLSN
            self.durableRecordEpoch = durableRecordEpoch
            self.checkpointLSN = checkpointLSN
        }

        /// A refusal that says nothing about the copy.
        public static func refusal(_ status: HelloStatus) -> Answer {
            Answer(status: status, epoch: 0, durableLSN: 0, receivedLSN: 0, durableRecordEpoch: 0)
        }
    }

    private enum Step: Sendable {
        case awaitingHello
        case awaitingAnswer(Hello)
        case awaitingAuth(Hello, transcript: [UInt8])
        case established
        case refused
        case failed
    }

    public let authentication: ReplicationAuthentication
    private let serverNonce: [UInt8]
    private var step = Step.awaitingHello

    public init(authentication: ReplicationAuthentication, using generator: inout some RandomNumberGenerator) {
        self.authentication = authentication
        serverNonce = HandshakeCrypto.nonce(using: &generator)
    }

    /// True once the dialer is authenticated.
    public var isEstablished: Bool {
        if case .established = step { return true }
        return false
    }

    /// Takes the dialer's frame.
    public mutating func receive(_ message: ReplicationMessage) throws(WireError) -> Event {
        switch (step, message) {
        case let (.awaitingHello, .hello(hello)):
            guard hello.authMode == authentication.mode else {
                step = .refused
                return .refuse(HelloAck(status: .authFailed, epoch: 0, durableLSN: 0, receivedLSN: 0,
                                        durableRecordEpoch: 0, serverNonce: serverNonce,
                                        serverProof: HandshakeCrypto.zeroProof))
            }
            step = .awaitingAnswer(hello)
            guard hello.protocolVersion == ReplicationProtocol.version else {
                return .refuse(answer(.refusal(.unsupportedVersion)))
            }
            return .answerNeeded(hello)
        case let (.awaitingAuth(hello, transcript), .auth(auth)):
            step = .failed
            switch authentication {
            case .none:
                guard constantTimeEqual(auth.clientProof, HandshakeCrypto.zeroProof) else {
                    throw .authenticationFailed("a non-zero proof in unauthenticated mode")
                }
                step = .established
                return .established(hello, keys: .unauthenticated)
            case let .sharedSecret(secret):
                guard constantTimeEqual(auth.clientProof, HandshakeCrypto.clientProof(secret, transcript: transcript)) else {
                    throw .authenticationFailed("the dialer's proof does not verify")
                }
                step = .established
                let keys = HandshakeCrypto.keys(secret, transcript: transcript)
                return .established(hello, keys: SessionKeys(inbound: keys.dialerToListener, outbound: keys.listenerToDialer))
            }
        default:
            let state = "listener handshake"
            step = .failed
            throw .unexpectedFrame(message.type, state: state)
        }
    }

    /// The helloAck for the hello of `.answerNeeded`. With any status but `ok` the
    /// connection is then closed.
    public mutating func answer(_ answer: Answer) -> HelloAck {
        guard case let .awaitingAnswer(hello) = step else { preconditionFailure("answer without a hello to answer") }
        precondition(answer.status != .authFailed, "authFailed is only for a mode mismatch")
        var ack = HelloAck(status: answer.status, epoch: answer.epoch, durableLSN: answer.durableLSN,
                           receivedLSN: answer.receivedLSN, durableRecordEpoch: answer.durableRecordEpoch,
                           checkpointLSN: answer.checkpointLSN,
                           serverNonce: serverNonce, serverProof: HandshakeCrypto.zeroProof)
        let transcript = HandshakeCrypto.transcript(hello: hello, ack: ack)
        if case let .sharedSecret(secret) = authentication {
            ack.serverProof = HandshakeCrypto.serverProof(secret, transcript: transcript)
        }
        step = answer.status == .ok ? .awaitingAuth(hello, transcript: transcript) : .refused
        return ack
    }
}
