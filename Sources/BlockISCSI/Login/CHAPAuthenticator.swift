// The target side of CHAP with MD5 (RFC 1994 as profiled by RFC 7143 sections 9.2.1 and
// 12.1.3): the target challenges the initiator and checks its response; when the
// initiator challenges back (mutual CHAP), the target answers with its own credentials.
//
//   initiator: CHAP_A=<A1,A2,...>
//   target:    CHAP_A=5 CHAP_I=<I> CHAP_C=<C>
//   initiator: CHAP_N=<N> CHAP_R=<R> [CHAP_I=<I'> CHAP_C=<C'>]
//   target:    [CHAP_N=<N'> CHAP_R=<R'>]            (or a login failure 0x0201)
//
// Invariants:
// - Steps only move forward: awaitingAlgorithm -> awaitingResponse -> authenticated.
// - Each challenge is 16 fresh random bytes with a random identifier.
// - Responses are compared in constant time. A response is refused when the initiator
//   reflects the target's own challenge back, or when it equals what the target secret
//   would produce (the two secrets are the same), per RFC 7143 section 9.2.1.

import Crypto

/// The target side of one CHAP exchange.
struct CHAPAuthenticator {
    enum Step: Sendable, Equatable {
        case awaitingAlgorithm
        case awaitingResponse(identifier: UInt8, challenge: [UInt8])
        case authenticated
    }

    /// CHAP_A=5: CHAP with MD5, the only algorithm RFC 7143 requires.
    static let md5Algorithm = "5"
    static let challengeBytes = 16
    static let md5DigestBytes = 16

    let initiatorCredentials: CHAPCredentials
    let targetCredentials: CHAPCredentials?
    private(set) var step: Step = .awaitingAlgorithm

    init(initiatorCredentials: CHAPCredentials, targetCredentials: CHAPCredentials?) {
        self.initiatorCredentials = initiatorCredentials
        self.targetCredentials = targetCredentials
    }

    /// MD5(identifier || secret || challenge), the CHAP response (RFC 1994 section 4.1).
    static func response(identifier: UInt8, secret: String, challenge: [UInt8]) -> [UInt8] {
        var md5 = Insecure.MD5()
        md5.update(data: [identifier])
        md5.update(data: Array(secret.utf8))
        md5.update(data: challenge)
        return Array(md5.finalize())
    }

    /// Answers the initiator's CHAP_A list with MD5 and a fresh challenge.
    mutating func selectAlgorithm(
        offered: String, using generator: inout some RandomNumberGenerator
    ) -> Result<[TextKeyValues.Pair], LoginStatus> {
        guard step == .awaitingAlgorithm,
              NegotiationRules.list(offered: offered, supported: [Self.md5Algorithm]) != nil else {
            return .failure(.authenticationFailure)
        }
        let identifier = UInt8.random(in: 0...255, using: &generator)
        let challenge = (0..<Self.challengeBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
        step = .awaitingResponse(identifier: identifier, challenge: challenge)
        return .success([
            .init(key: "CHAP_A", value: Self.md5Algorithm),
            .init(key: "CHAP_I", value: String(identifier)),
            .init(key: "CHAP_C", value: TextValueCoding.hex(challenge)),
        ])
    }

    /// Checks the initiator's CHAP_N/CHAP_R and, for mutual CHAP, answers its CHAP_I/CHAP_C.
    /// Any failure is 0x0201 (authentication failure).
    mutating func verify(
        name: String?, response: String?, identifier: String?, challenge: String?
    ) -> Result<[TextKeyValues.Pair], LoginStatus> {
        guard case .awaitingResponse(let ourIdentifier, let ourChallenge) = step,
              let name, let response, let received = TextValueCoding.binary(response),
              received.count == Self.md5DigestBytes, name == initiatorCredentials.username else {
            return .failure(.authenticationFailure)
        }
        let expected = Self.response(identifier: ourIdentifier, secret: initiatorCredentials.secret, challenge: ourChallenge)
        guard Self.constantTimeEqual(received, expected) else { return .failure(.authenticationFailure) }
        if let targetCredentials {
            let withTargetSecret = Self.response(identifier: ourIdentifier, secret: targetCredentials.secret, challenge: ourChallenge)
            guard !Self.constantTimeEqual(received, withTargetSecret) else { return .failure(.authenticationFailure) }
        }

        var answer: [TextKeyValues.Pair] = []
        switch (identifier, challenge) {
        case (nil, nil):
            break  // one-way CHAP
        case (let identifier?, let challenge?):
            guard let targetCredentials,
                  let number = TextValueCoding.number(identifier), number <= 255,
                  let theirChallenge = TextValueCoding.binary(challenge),
                  theirChallenge != ourChallenge else {  // a reflected challenge
                return .failure(.authenticationFailure)
            }
            let ours = Self.response(identifier: UInt8(number), secret: targetCredentials.secret, challenge: theirChallenge)
            answer = [
                .init(key: "CHAP_N", value: targetCredentials.username),
                .init(key: "CHAP_R", value: TextValueCoding.hex(ours)),
            ]
        default:
            return .failure(.authenticationFailure)  // CHAP_I without CHAP_C or the reverse
        }
        step = .authenticated
        return .success(answer)
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
