// The RFC 7143 section 6.2 result functions, alone and through a login.

import Testing
@testable import BlockISCSI

@Suite("Negotiation rules")
struct NegotiationRulesTests {
    @Test("List: the first offered value the responder supports, else Reject")
    func list() {
        #expect(NegotiationRules.list(offered: "CRC32C,None", supported: ["None", "CRC32C"]) == "CRC32C")
        #expect(NegotiationRules.list(offered: "None,CRC32C", supported: ["None", "CRC32C"]) == "None")
        #expect(NegotiationRules.list(offered: "Foo,CRC32C", supported: ["None", "CRC32C"]) == "CRC32C")
        #expect(NegotiationRules.list(offered: "Foo,Bar", supported: ["None", "CRC32C"]) == nil)
        #expect(NegotiationRules.list(offered: "crc32c", supported: ["CRC32C"]) == nil)  // case sensitive
    }

    @Test("Minimum and maximum, with ranges and encodings")
    func numeric() {
        #expect(NegotiationRules.minimum(offered: "65536", ours: 262_144, range: 512...16_777_215) == 65536)
        #expect(NegotiationRules.minimum(offered: "16777215", ours: 262_144, range: 512...16_777_215) == 262_144)
        #expect(NegotiationRules.minimum(offered: "0x10000", ours: 262_144, range: 512...16_777_215) == 65536)
        #expect(NegotiationRules.minimum(offered: "511", ours: 262_144, range: 512...16_777_215) == nil)
        #expect(NegotiationRules.minimum(offered: "16777216", ours: 262_144, range: 512...16_777_215) == nil)
        #expect(NegotiationRules.minimum(offered: "12ab", ours: 262_144, range: 512...16_777_215) == nil)
        #expect(NegotiationRules.minimum(offered: "", ours: 1, range: 0...2) == nil)
        #expect(NegotiationRules.maximum(offered: "1", ours: 2, range: 0...3600) == 2)
        #expect(NegotiationRules.maximum(offered: "10", ours: 2, range: 0...3600) == 10)
        #expect(NegotiationRules.maximum(offered: "3601", ours: 2, range: 0...3600) == nil)
        #expect(NegotiationRules.declared("4096", range: 512...16_777_215) == 4096)
        #expect(NegotiationRules.declared("100", range: 512...16_777_215) == nil)
    }

    @Test("Boolean AND and OR")
    func booleans() {
        #expect(NegotiationRules.and(offered: "Yes", ours: false) == false)
        #expect(NegotiationRules.and(offered: "Yes", ours: true) == true)
        #expect(NegotiationRules.and(offered: "No", ours: true) == false)
        #expect(NegotiationRules.and(offered: "yes", ours: true) == nil)
        #expect(NegotiationRules.or(offered: "No", ours: false) == false)
        #expect(NegotiationRules.or(offered: "No", ours: true) == true)
        #expect(NegotiationRules.or(offered: "Yes", ours: false) == true)
        #expect(NegotiationRules.or(offered: "Maybe", ours: false) == nil)
    }

    @Test("Answers to our own offers are checked against the result function")
    func answersToOffers() {
        #expect(NegotiationRules.checkAnswer("4096", toOffer: "8192", function: .minimum(512...16_777_215)) == .selected("4096"))
        #expect(NegotiationRules.checkAnswer("9000", toOffer: "8192", function: .minimum(512...16_777_215)) == .invalid)
        #expect(NegotiationRules.checkAnswer("1", toOffer: "2", function: .maximum(0...3600)) == .invalid)
        #expect(NegotiationRules.checkAnswer("Yes", toOffer: "No", function: .and) == .invalid)
        #expect(NegotiationRules.checkAnswer("No", toOffer: "No", function: .and) == .selected("No"))
        #expect(NegotiationRules.checkAnswer("No", toOffer: "Yes", function: .or) == .invalid)
        #expect(NegotiationRules.checkAnswer("CRC32C", toOffer: "CRC32C,None", function: .list) == .selected("CRC32C"))
        #expect(NegotiationRules.checkAnswer("Foo", toOffer: "CRC32C,None", function: .list) == .invalid)
        #expect(NegotiationRules.checkAnswer("Reject", toOffer: "8192", function: .minimum(512...16_777_215)) == .keepsDefault)
        #expect(NegotiationRules.checkAnswer("NotUnderstood", toOffer: "8192", function: .minimum(512...16_777_215)) == .invalid)
    }

    /// One operational login with `keys`, returning the answers and the outcome.
    func login(_ keys: [(String, String)], limits: TargetLimits = TargetLimits()) -> (answers: [String: String], outcome: SessionParameters?) {
        var driver = LoginDriver(limits: limits)
        let response = driver.send(.operationalNegotiation, to: .fullFeaturePhase, normalLeadingKeys + keys)
        return (BlockISCSITests.keys(response.data), driver.negotiator.outcome)
    }

    @Test("Each rule through a login: min, max, AND, OR, declarative, NotUnderstood, Reject, Irrelevant")
    func rulesThroughLogin() {
        let limits = TargetLimits(immediateData: false, initialR2T: false, defaultTime2Wait: 5)
        let (answers, outcome) = login([
            ("MaxBurstLength", "131072"),  // min
            ("DefaultTime2Wait", "1"),  // max
            ("ImmediateData", "Yes"),  // AND
            ("InitialR2T", "No"),  // OR
            ("MaxRecvDataSegmentLength", "65536"),  // declarative
            ("X-com.example.Frobnicate", "Yes"),  // private extension key
            ("UnknownKey", "1"),
            ("ErrorRecoveryLevel", "3"),  // out of range
            ("MaxOutstandingR2T", "0"),  // out of range
            ("IFMarkInt", "2048~8192"),
            ("TaskReporting", "FastAbort,RFC3720"),
        ], limits: limits)
        #expect(answers["MaxBurstLength"] == "131072")
        #expect(answers["DefaultTime2Wait"] == "5")
        #expect(answers["ImmediateData"] == "No")
        #expect(answers["InitialR2T"] == "No")
        #expect(answers["MaxRecvDataSegmentLength"] == "262144")  // ours, declared; theirs is not answered
        #expect(answers["X-com.example.Frobnicate"] == "NotUnderstood" && answers["UnknownKey"] == "NotUnderstood")
        #expect(answers["ErrorRecoveryLevel"] == "Reject" && answers["MaxOutstandingR2T"] == "Reject")
        #expect(answers["IFMarkInt"] == "Irrelevant")
        #expect(answers["TaskReporting"] == "RFC3720")
        #expect(outcome?.maxBurstLength == 131_072 && outcome?.defaultTime2Wait == 5)
        #expect(outcome?.immediateData == false && outcome?.initialR2T == false)
        #expect(outcome?.initiatorMaxRecvDataSegmentLength == 65536)
        #expect(outcome?.errorRecoveryLevel == 0 && outcome?.maxOutstandingR2T == 1)  // defaults kept
    }

    @Test("FirstBurstLength is clamped to MaxBurstLength, whatever the key order")
    func firstBurstClamped() {
        let (answers, outcome) = login([("FirstBurstLength", "16777215"), ("MaxBurstLength", "131072")],
                                       limits: TargetLimits(maxBurstLength: 1_048_576, firstBurstLength: 1_048_576))
        #expect(answers["MaxBurstLength"] == "131072")
        #expect(answers["FirstBurstLength"] == "131072")
        #expect(outcome?.firstBurstLength == 131_072 && outcome?.maxBurstLength == 131_072)
    }

    @Test("CRC32C digests are negotiated when the initiator prefers them, and refused when not allowed")
    func digests() {
        let (answers, outcome) = login([("HeaderDigest", "CRC32C,None"), ("DataDigest", "CRC32C")])
        #expect(answers["HeaderDigest"] == "CRC32C" && answers["DataDigest"] == "CRC32C")
        #expect(outcome?.headerDigest == true && outcome?.dataDigest == true)

        let (plain, plainOutcome) = login([("HeaderDigest", "CRC32C,None"), ("DataDigest", "CRC32C")],
                                          limits: TargetLimits(allowsDigests: false))
        #expect(plain["HeaderDigest"] == "None" && plain["DataDigest"] == "Reject")
        #expect(plainOutcome?.headerDigest == false && plainOutcome?.dataDigest == false)
    }
}
