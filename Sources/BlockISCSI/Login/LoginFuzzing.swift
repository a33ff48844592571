// Entry points for libFuzzer harnesses (`@_cdecl("LLVMFuzzerTestOneInput")` calls these
// with arbitrary bytes). They turn bytes into login inputs and check the invariants of the
// login code with `precondition`, so a violation is a crash the fuzzer reports.
//
// Invariants checked:
// - Parsing never traps; whatever parses encodes back to the same pairs.
// - Every login response: text within one segment, never T and C together, no text on a
//   failure, text that parses when it is complete; `bindSession` runs at most once and
//   `outcome` is set only after it.

/// Fuzzing entry points for the login code.
public enum LoginFuzzing {
    /// Parses `bytes` as key=value text and checks the encode/parse round trip.
    public static func parseText(_ bytes: [UInt8]) {
        guard let parsed = try? TextKeyValues.parse(bytes) else { return }
        precondition((try? TextKeyValues.parse(parsed.encoded())) == parsed, "round trip changed the pairs")
    }

    /// Reads `bytes` as a sequence of Login Requests, each `[flags, length, text...]`
    /// (flags as byte 1 of the PDU, length in bytes of text to take), and feeds them to a
    /// negotiator whose only target requires mutual CHAP.
    public static func login(_ bytes: [UInt8]) {
        struct Catalog: LoginTargetCatalog {
            let chapTarget = LoginTarget(
                name: "iqn.2025-01.org.example:fuzz",
                authentication: LoginAuthentication(
                    initiatorCredentials: CHAPCredentials(username: "fuzz", secret: "fuzz-secret-1"),
                    targetCredentials: CHAPCredentials(username: "target", secret: "target-secret-2")))
            func target(named name: String) -> LoginTarget? { name == chapTarget.name ? chapTarget : nil }
            var discoveryAuthentication: LoginAuthentication { .none }
        }
        var negotiator = LoginNegotiator(catalog: Catalog(), limits: TargetLimits(maxBurstLength: 4096, firstBurstLength: 4096), portalGroupTag: 1)
        var generator = SystemRandomNumberGenerator()
        var binds = 0
        var received: [UInt8] = []  // the response text so far, across C-bit segments
        var offset = 0
        while offset + 2 <= bytes.count {  // each turn consumes at least two bytes
            let flags = bytes[offset]
            let length = min(Int(bytes[offset + 1]) * 4, bytes.count - offset - 2)
            let data = Array(bytes[(offset + 2)..<(offset + 2 + length)])
            offset += 2 + length
            guard case .success(let decoded) = LoginFlags.decodeRequest(flags) else { continue }
            let request = LoginRequest(
                flags: decoded, versionMax: 0, versionMin: 0, isid: 1, tsih: 0, initiatorTaskTag: 1,
                connectionID: 0, cmdSN: 0, expStatSN: 0, data: data)
            let response = negotiator.process(request, using: &generator) { _ in
                binds += 1
                return .success(1)
            }
            precondition(response.data.count <= LoginNegotiator.maximumResponseSegmentBytes)
            precondition(!(response.transit && response.continues))
            precondition(response.status.isSuccess || response.data.isEmpty)
            received += response.data
            if !response.continues {
                precondition((try? TextKeyValues.parse(received)) != nil, "the response text does not parse")
                received = []
            }
            precondition(binds <= 1 && (negotiator.outcome == nil || binds == 1))
        }
    }
}
