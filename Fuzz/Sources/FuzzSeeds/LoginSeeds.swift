// LoginKeyFuzzer seeds. The fuzzer parses the whole input as key=value text, and reads it as
// Login Requests `[flags, length / 4, text]` (flags: byte 1 of the PDU, T C CSG NSG) for a
// negotiator whose one target, iqn.2025-01.org.example:fuzz, requires mutual CHAP (user
// "fuzz"); discovery needs no authentication. See LoginFuzzing in BlockISCSI.

enum LoginSeeds {
    static let target = "iqn.2025-01.org.example:fuzz"
    static let initiator = ("InitiatorName", "iqn.2026-11.org.swift-block:seed")
    /// T=1, from the security (0) or operational (1) stage to operational (1) or full feature (3).
    static let securityToOperational: UInt8 = 0x81, securityToFull: UInt8 = 0x83
    static let operationalToFull: UInt8 = 0x87, securityStay: UInt8 = 0x01, continuing: UInt8 = 0x40

    /// One request: flags, the text's length in 4-byte words, the text padded with NULs.
    static func request(_ flags: UInt8, _ pairs: [(String, String)]) -> [UInt8] {
        let body = padded(textData(pairs))
        return [flags, UInt8(body.count / 4)] + body
    }

    static func raw(_ flags: UInt8, _ body: [UInt8]) -> [UInt8] {
        let body = padded(body)
        return [flags, UInt8(body.count / 4)] + body
    }

    static let normal = [initiator, ("SessionType", "Normal"), ("TargetName", target)]
    static let discovery = [initiator, ("SessionType", "Discovery")]
    static let operational = [
        ("HeaderDigest", "CRC32C,None"), ("DataDigest", "None"), ("MaxRecvDataSegmentLength", "262144"),
        ("MaxBurstLength", "1048576"), ("FirstBurstLength", "262144"), ("InitialR2T", "No"), ("ImmediateData", "Yes"),
        ("MaxConnections", "1"), ("ErrorRecoveryLevel", "0"), ("DefaultTime2Wait", "2"), ("DefaultTime2Retain", "20"),
        ("MaxOutstandingR2T", "1"), ("DataPDUInOrder", "Yes"), ("DataSequenceInOrder", "Yes"),
    ]
    static let chapResponse = [("CHAP_N", "fuzz"), ("CHAP_R", "0x" + String(repeating: "5a", count: 16))]

    static let all: [Seed] = [
        Seed("chap-offer", request(securityToOperational, normal + [("AuthMethod", "CHAP,None")])),
        Seed("chap-algorithm", request(securityStay, normal + [("AuthMethod", "CHAP")])
             + request(securityStay, [("CHAP_A", "5")])),
        Seed("chap-algorithm-list", request(securityStay, normal + [("AuthMethod", "CHAP")])
             + request(securityStay, [("CHAP_A", "7,6,5")])),
        Seed("chap-response", request(securityStay, normal + [("AuthMethod", "CHAP")])
             + request(securityStay, [("CHAP_A", "5")]) + request(securityToOperational, chapResponse)),
        Seed("chap-mutual-response", request(securityStay, normal + [("AuthMethod", "CHAP")])
             + request(securityStay, [("CHAP_A", "5")])
             + request(securityToOperational, chapResponse + [("CHAP_I", "7"), ("CHAP_C", "0x" + String(repeating: "c3", count: 16))])),
        Seed("chap-base64-challenge", request(securityStay, normal + [("AuthMethod", "CHAP")])
             + request(securityStay, [("CHAP_A", "5")])
             + request(securityToOperational, chapResponse + [("CHAP_I", "1"), ("CHAP_C", "0bAAECAwQFBgcICQoLDA0ODw==")])),
        Seed("chap-response-before-algorithm", request(securityStay, normal + [("AuthMethod", "CHAP")])
             + request(securityToOperational, chapResponse)),
        Seed("auth-none-refused", request(securityToOperational, normal + [("AuthMethod", "None")])),
        Seed("discovery-to-operational", request(securityToOperational, discovery + [("AuthMethod", "None")])
             + request(operationalToFull, operational)),
        Seed("discovery-straight-to-full", request(securityToFull, discovery + [("AuthMethod", "None")])),
        Seed("discovery-operational-first", request(operationalToFull, discovery + operational)),
        Seed("unknown-target", request(securityToOperational, [initiator, ("TargetName", "iqn.2025-01.org.example:none"),
                                                               ("AuthMethod", "None")])),
        Seed("missing-initiator-name", request(securityToOperational, [("SessionType", "Discovery")])),
        Seed("continued-text", raw(securityToOperational | continuing, Array(textData(discovery).prefix(20)))
             + raw(securityToOperational, Array(textData(discovery + [("AuthMethod", "None")]).dropFirst(20)))),
        Seed("private-and-unknown-keys", request(securityToFull, discovery + [("AuthMethod", "None"),
                                                                              ("X-org.example.Private", "1"), ("Unknown", "2")])),
        Seed("duplicate-key", raw(securityToOperational, textData(discovery) + textData([("SessionType", "Normal")]))),
        Seed("out-of-range-values", request(securityToFull, discovery + [("AuthMethod", "None")])
             + request(operationalToFull, [("MaxRecvDataSegmentLength", "0"), ("MaxBurstLength", "99999999"),
                                           ("DefaultTime2Wait", "-1"), ("HeaderDigest", "Bogus")])),
        Seed("empty-values", request(securityToOperational, [("InitiatorName", ""), ("SessionType", ""), ("AuthMethod", "")])),
        Seed("long-alias", request(securityToOperational, discovery + [("InitiatorAlias", String(repeating: "a", count: 255)),
                                                                       ("AuthMethod", "None")])),
        Seed("not-utf8", raw(securityToOperational, Array("InitiatorName=iqn.x:".utf8) + [0xC3, 0x28, 0])),
        Seed("missing-equals", raw(securityToOperational, Array("InitiatorName".utf8) + [0])),
        Seed("transit-and-continue", request(0xC1, discovery)),
        Seed("reserved-stage", request(0x89, discovery)),
        Seed("send-targets-in-login", request(securityToFull, discovery + [("SendTargets", "All")])),
        Seed("irrelevant-and-reject-values", request(operationalToFull, discovery + [("IFMarker", "No"), ("OFMarker", "Reject"),
                                                                                     ("ImmediateData", "Irrelevant")])),
    ]
}
