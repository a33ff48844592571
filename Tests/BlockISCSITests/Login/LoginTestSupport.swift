// Helpers for the login tests: a catalog, a deterministic random source, text building and
// an independent text reader, and a driver that records session bindings.

@testable import BlockISCSI

/// A fixed set of targets.
struct TestCatalog: LoginTargetCatalog {
    var targets: [LoginTarget]
    var discoveryAuthentication: LoginAuthentication = .none

    func target(named name: String) -> LoginTarget? { targets.first { $0.name == name } }
}

/// SplitMix64: a deterministic generator for fixed-seed tests.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

let targetIQN = "iqn.2025-01.org.example:disk0"
let initiatorIQN = "iqn.2025-01.org.example:host1"
let testISID: UInt64 = 0x8000_1234_5678

/// `key=value\0` text built by hand (not with the code under test).
func text(_ pairs: [(String, String)]) -> [UInt8] {
    var bytes: [UInt8] = []
    for (key, value) in pairs { bytes += Array("\(key)=\(value)".utf8) + [0] }
    return bytes
}

/// Reads `key=value\0` text into ordered pairs, independently of `TextKeyValues`.
func pairs(_ bytes: [UInt8]) -> [(key: String, value: String)] {
    bytes.split(separator: 0, omittingEmptySubsequences: true).map { item in
        let string = String(decoding: item, as: UTF8.self)
        let parts = string.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
    }
}

/// The pairs as a dictionary (later duplicates win).
func keys(_ bytes: [UInt8]) -> [String: String] {
    var result: [String: String] = [:]
    for pair in pairs(bytes) { result[pair.key] = pair.value }
    return result
}

/// The keys the libiscsi initiator sends in its operational stage (lib/login.c).
let libiscsiOperationalKeys: [(String, String)] = [
    ("HeaderDigest", "None,CRC32C"), ("DataDigest", "None,CRC32C"), ("InitialR2T", "Yes"),
    ("ImmediateData", "Yes"), ("MaxBurstLength", "262144"), ("FirstBurstLength", "262144"),
    ("DefaultTime2Wait", "2"), ("DefaultTime2Retain", "0"), ("MaxOutstandingR2T", "1"),
    ("ErrorRecoveryLevel", "0"), ("IFMarker", "No"), ("OFMarker", "No"), ("MaxConnections", "1"),
    ("MaxRecvDataSegmentLength", "262144"), ("DataPDUInOrder", "Yes"), ("DataSequenceInOrder", "Yes"),
]

let normalLeadingKeys: [(String, String)] = [
    ("InitiatorName", initiatorIQN), ("TargetName", targetIQN), ("SessionType", "Normal"),
]

/// Drives one login and records what it asked to bind.
struct LoginDriver {
    var negotiator: LoginNegotiator
    var generator = SeededGenerator(seed: 42)
    var bindings: [LoginSessionBinding] = []
    var bindResult: Result<UInt16, LoginStatus> = .success(0x0101)
    var isid: UInt64 = testISID
    var tsih: UInt16 = 0
    var connectionID: UInt16 = 1

    init(catalog: TestCatalog = TestCatalog(targets: [LoginTarget(name: targetIQN)]),
         limits: TargetLimits = TargetLimits(), portalGroupTag: UInt16 = 1) {
        negotiator = LoginNegotiator(catalog: catalog, limits: limits, portalGroupTag: portalGroupTag)
    }

    func request(
        _ stage: LoginStage, to next: LoginStage? = nil, continues: Bool = false, data: [UInt8],
        versionMin: UInt8 = 0
    ) -> LoginRequest {
        LoginRequest(
            transit: next != nil, continues: continues, currentStage: stage, nextStage: next ?? stage,
            versionMax: 0, versionMin: versionMin, isid: isid, tsih: tsih, initiatorTaskTag: 7,
            connectionID: connectionID, cmdSN: 1, expStatSN: 0, data: data)
    }

    mutating func send(_ request: LoginRequest) -> LoginResponse {
        let result = bindResult
        var recorded: [LoginSessionBinding] = []
        let response = negotiator.process(request, using: &generator) { binding in
            recorded.append(binding)
            return result
        }
        bindings += recorded
        return response
    }

    mutating func send(
        _ stage: LoginStage, to next: LoginStage? = nil, continues: Bool = false, _ pairs: [(String, String)]
    ) -> LoginResponse {
        send(request(stage, to: next, continues: continues, data: text(pairs)))
    }
}
