// Logins with CHAP (one-way and mutual), checked against MD5 responses computed here
// with swift-crypto from the values the target sent.

import Crypto
import Testing
@testable import BlockISCSI

@Suite("CHAP login")
struct CHAPLoginTests {
    static let initiatorUser = CHAPCredentials(username: "alice", secret: "initiator-secret-12")
    static let targetUser = CHAPCredentials(username: "target-alice", secret: "target-secret-3456")

    static func chapCatalog(mutual: Bool = true) -> TestCatalog {
        let authentication = LoginAuthentication(
            initiatorCredentials: initiatorUser, targetCredentials: mutual ? targetUser : nil)
        return TestCatalog(targets: [LoginTarget(name: targetIQN, alias: "disk zero", authentication: authentication)])
    }

    /// MD5(identifier || secret || challenge), computed independently of the target code.
    static func md5(_ identifier: UInt8, _ secret: String, _ challenge: [UInt8]) -> [UInt8] {
        Array(Insecure.MD5.hash(data: [identifier] + Array(secret.utf8) + challenge))
    }

    static func hex(_ bytes: [UInt8]) -> String {
        "0x" + bytes.map { byte in
            let digits = String(byte, radix: 16, uppercase: true)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
    }

    static func unhex(_ string: String) -> [UInt8] {
        let digits = Array(string.dropFirst(2))
        return stride(from: 0, to: digits.count - 1, by: 2).compactMap { UInt8(String(digits[$0...$0 + 1]), radix: 16) }
    }

    /// Runs the first two security steps (AuthMethod, CHAP_A) and returns the target's
    /// CHAP_I and challenge.
    static func startCHAP(_ driver: inout LoginDriver) -> (identifier: UInt8, challenge: [UInt8])? {
        let offer = driver.send(.securityNegotiation, to: .operationalNegotiation, normalLeadingKeys + [("AuthMethod", "CHAP,None")])
        #expect(offer.status == .success && !offer.transit)
        #expect(keys(offer.data)["AuthMethod"] == "CHAP")
        #expect(keys(offer.data)["TargetPortalGroupTag"] == "1" && keys(offer.data)["TargetAlias"] == "disk zero")
        let algorithm = driver.send(.securityNegotiation, [("CHAP_A", "5")])
        #expect(algorithm.status == .success && !algorithm.transit)
        let answer = keys(algorithm.data)
        #expect(answer["CHAP_A"] == "5")
        guard let identifierText = answer["CHAP_I"], let identifier = UInt8(identifierText),
              let challengeText = answer["CHAP_C"], challengeText.hasPrefix("0x") else { return nil }
        let challenge = unhex(challengeText)
        #expect(challenge.count == 16)
        return (identifier, challenge)
    }

    @Test("One-way CHAP: the target checks MD5(I || secret || C) and the login completes")
    func oneWayCHAP() throws {
        var driver = LoginDriver(catalog: Self.chapCatalog(mutual: false))
        let (identifier, challenge) = try #require(Self.startCHAP(&driver))
        let response = Self.md5(identifier, Self.initiatorUser.secret, challenge)
        let verified = driver.send(.securityNegotiation, to: .operationalNegotiation, [
            ("CHAP_N", "alice"), ("CHAP_R", Self.hex(response)),
        ])
        #expect(verified.status == .success && verified.transit && verified.nextStage == .operationalNegotiation)
        #expect(keys(verified.data)["CHAP_N"] == nil && keys(verified.data)["CHAP_R"] == nil)
        let final = driver.send(.operationalNegotiation, to: .fullFeaturePhase, libiscsiOperationalKeys)
        #expect(final.status == .success && final.transit && final.nextStage == .fullFeaturePhase)
        #expect(driver.negotiator.outcome?.authenticatedUsername == "alice")
    }

    @Test("Mutual CHAP: the target answers the initiator's challenge with its own secret")
    func mutualCHAP() throws {
        var driver = LoginDriver(catalog: Self.chapCatalog())
        let (identifier, challenge) = try #require(Self.startCHAP(&driver))
        let initiatorChallenge: [UInt8] = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let verified = driver.send(.securityNegotiation, to: .operationalNegotiation, [
            ("CHAP_N", "alice"), ("CHAP_R", Self.hex(Self.md5(identifier, Self.initiatorUser.secret, challenge))),
            ("CHAP_I", "77"), ("CHAP_C", Self.hex(initiatorChallenge)),
        ])
        #expect(verified.status == .success && verified.transit)
        let answer = keys(verified.data)
        #expect(answer["CHAP_N"] == "target-alice")
        let expected = Self.md5(77, Self.targetUser.secret, initiatorChallenge)
        #expect(answer["CHAP_R"].map(Self.unhex) == expected)
        let final = driver.send(.operationalNegotiation, to: .fullFeaturePhase, [])
        #expect(final.status == .success && driver.negotiator.outcome != nil)
    }

    @Test("CHAP_R and CHAP_C in base64 (0b) are accepted")
    func base64Encoding() throws {
        var driver = LoginDriver(catalog: Self.chapCatalog())
        let (identifier, challenge) = try #require(Self.startCHAP(&driver))
        let response = Self.md5(identifier, Self.initiatorUser.secret, challenge)
        let verified = driver.send(.securityNegotiation, to: .operationalNegotiation, [
            ("CHAP_N", "alice"), ("CHAP_R", "0b" + Self.base64(response)),
            ("CHAP_I", "3"), ("CHAP_C", "0b" + Self.base64([1, 2, 3, 4, 5])),
        ])
        #expect(verified.status == .success && verified.transit)
        #expect(keys(verified.data)["CHAP_R"].map(Self.unhex) == Self.md5(3, Self.targetUser.secret, [1, 2, 3, 4, 5]))
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        var out = ""
        for start in stride(from: 0, to: bytes.count, by: 3) {
            let chunk = Array(bytes[start..<min(start + 3, bytes.count)]) + [0, 0]
            let n = UInt32(chunk[0]) << 16 | UInt32(chunk[1]) << 8 | UInt32(chunk[2])
            let count = min(3, bytes.count - start)
            for index in 0..<4 {
                out.append(index <= count ? alphabet[Int(n >> UInt32(18 - 6 * index)) & 63] : "=")
            }
        }
        return out
    }

    @Test("Wrong secret, wrong name, reflected challenge, no target secret: authentication failure", arguments: [
        "wrong-secret", "wrong-name", "reflection", "mutual-without-target-credentials", "same-secrets", "missing-response",
    ])
    func chapFailures(scenario: String) throws {
        var catalog = Self.chapCatalog(mutual: scenario != "mutual-without-target-credentials")
        if scenario == "same-secrets" {
            catalog.targets[0].authentication.targetCredentials = CHAPCredentials(username: "t", secret: Self.initiatorUser.secret)
        }
        var driver = LoginDriver(catalog: catalog)
        let (identifier, challenge) = try #require(Self.startCHAP(&driver))
        let secret = scenario == "wrong-secret" ? "not-the-secret" : Self.initiatorUser.secret
        var keys: [(String, String)] = [
            ("CHAP_N", scenario == "wrong-name" ? "mallory" : "alice"),
            ("CHAP_R", Self.hex(Self.md5(identifier, secret, challenge))),
        ]
        if scenario == "missing-response" { keys.removeLast() }
        if scenario == "reflection" { keys += [("CHAP_I", String(identifier)), ("CHAP_C", Self.hex(challenge))] }
        if scenario == "mutual-without-target-credentials" { keys += [("CHAP_I", "1"), ("CHAP_C", "0x0102030405")] }
        let response = driver.send(.securityNegotiation, to: .operationalNegotiation, keys)
        #expect(response.status == .authenticationFailure)
        #expect(response.data.isEmpty && !response.transit)
        #expect(driver.negotiator.failed && driver.negotiator.outcome == nil && driver.bindings.isEmpty)
    }

    @Test("A CHAP target refuses AuthMethod=None, a non-MD5 algorithm, skipping security, and leaving early")
    func chapRequired() {
        var noneOnly = LoginDriver(catalog: Self.chapCatalog())
        #expect(noneOnly.send(.securityNegotiation, to: .operationalNegotiation, normalLeadingKeys + [("AuthMethod", "None")]).status == .authenticationFailure)

        var sha = LoginDriver(catalog: Self.chapCatalog())
        _ = sha.send(.securityNegotiation, to: .operationalNegotiation, normalLeadingKeys + [("AuthMethod", "CHAP")])
        #expect(sha.send(.securityNegotiation, [("CHAP_A", "7,6")]).status == .authenticationFailure)

        var skipping = LoginDriver(catalog: Self.chapCatalog())
        #expect(skipping.send(.operationalNegotiation, to: .fullFeaturePhase, normalLeadingKeys).status == .authenticationFailure)

        var early = LoginDriver(catalog: Self.chapCatalog())
        #expect(early.send(.securityNegotiation, to: .operationalNegotiation, normalLeadingKeys).status == .authenticationFailure)

        var outOfOrder = LoginDriver(catalog: Self.chapCatalog())
        #expect(outOfOrder.send(.securityNegotiation, normalLeadingKeys + [("CHAP_A", "5")]).status == .authenticationFailure)

        var stalled = LoginDriver(catalog: Self.chapCatalog())
        _ = stalled.send(.securityNegotiation, to: .operationalNegotiation, normalLeadingKeys + [("AuthMethod", "CHAP")])
        #expect(stalled.send(.securityNegotiation, to: .operationalNegotiation, []).status == .authenticationFailure)
    }

    @Test("Discovery sessions use the catalog's discovery authentication")
    func discoveryCHAP() throws {
        var catalog = TestCatalog(targets: [])
        catalog.discoveryAuthentication = LoginAuthentication(initiatorCredentials: Self.initiatorUser)
        var driver = LoginDriver(catalog: catalog)
        let offer = driver.send(.securityNegotiation, to: .operationalNegotiation, [
            ("InitiatorName", initiatorIQN), ("SessionType", "Discovery"), ("AuthMethod", "CHAP,None"),
        ])
        #expect(keys(offer.data)["AuthMethod"] == "CHAP" && keys(offer.data)["TargetPortalGroupTag"] == nil)
        let algorithm = keys(driver.send(.securityNegotiation, [("CHAP_A", "7,5")]).data)
        #expect(algorithm["CHAP_A"] == "5")
        let identifier = try #require(algorithm["CHAP_I"].flatMap { UInt8($0) })
        let challenge = Self.unhex(try #require(algorithm["CHAP_C"]))
        let verified = driver.send(.securityNegotiation, to: .operationalNegotiation, [
            ("CHAP_N", "alice"), ("CHAP_R", Self.hex(Self.md5(identifier, Self.initiatorUser.secret, challenge))),
        ])
        #expect(verified.status == .success && verified.transit)
        let final = driver.send(.operationalNegotiation, to: .fullFeaturePhase, [])
        #expect(final.status == .success && driver.negotiator.outcome?.sessionType == .discovery)
    }

    @Test("Without configured authentication, CHAP keys are Irrelevant")
    func chapKeysWithoutAuthentication() {
        var driver = LoginDriver()
        let response = driver.send(.securityNegotiation, to: .operationalNegotiation, normalLeadingKeys + [("AuthMethod", "None"), ("CHAP_A", "5")])
        #expect(response.status == .success && response.transit)
        #expect(keys(response.data)["CHAP_A"] == "Irrelevant")
        let rejected = LoginDriver()
        var copy = rejected
        let onlyCHAP = copy.send(.securityNegotiation, normalLeadingKeys + [("AuthMethod", "CHAP")])
        #expect(keys(onlyCHAP.data)["AuthMethod"] == "Reject")
    }
}
