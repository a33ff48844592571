// Answers to Text Requests in the full feature phase (RFC 7143 sections 11.10, 11.11,
// 13.3 and appendix C): the SendTargets listing of targets and their addresses, and
// refusals for every other key. The caller splits the text across Text Response PDUs.
//
// Invariants:
// - The listing only names targets the caller passed in, and only addresses of portals in
//   the target's portal group.
// - A discovery session may ask for All or a name; a normal session only for its own
//   target (empty value or its name); `All` in a normal session is answered Reject.
// - Output is `key=value\0` text; only TargetName and TargetAddress repeat.

/// A network portal: an address and TCP port that belong to a portal group.
public struct TargetPortal: Sendable, Equatable {
    /// An IPv4 address, an IPv6 address (without brackets) or a DNS name.
    public var host: String
    public var port: UInt16
    public var portalGroupTag: UInt16

    public init(host: String, port: UInt16 = 3260, portalGroupTag: UInt16 = 1) {
        self.host = host
        self.port = port
        self.portalGroupTag = portalGroupTag
    }

    /// The TargetAddress value: `host:port,tpgt`, with an IPv6 host in brackets.
    public var targetAddress: String {
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return "\(bracketed):\(port),\(portalGroupTag)"
    }
}

/// Answers the key=value text of Text Requests.
public enum TextRequestResponder {
    /// Keys this target knows but does not renegotiate after login: answered Reject.
    static let loginOnlyKeys: Set<String> = SecurityNegotiation.keys
        .union(LoginNegotiator.leadingKeys)
        .union(OperationalKey.allCases.map(\.rawValue))
        .union(["TargetAlias", "TargetAddress", "TargetPortalGroupTag"])

    /// The response text for one complete Text Request text (all its C-bit PDUs joined).
    /// `targets` are the targets this session may learn about, in listing order.
    public static func respond(
        to text: [UInt8], session: SessionParameters, targets: [LoginTarget], portals: [TargetPortal]
    ) throws(TextKeyError) -> [UInt8] {
        let request = try TextKeyValues.parse(text)
        var answers = TextKeyValues()
        var listing: [UInt8] = []
        for pair in request.pairs {
            if pair.key == "SendTargets" {
                if let entries = sendTargets(pair.value, session: session, targets: targets, portals: portals) {
                    listing = entries
                } else {
                    answers.append(key: pair.key, value: "Reject")
                }
            } else {
                answers.append(key: pair.key, value: loginOnlyKeys.contains(pair.key) ? "Reject" : "NotUnderstood")
            }
        }
        return answers.encoded() + listing
    }

    /// The SendTargets listing for `value` (`All`, empty, or a target name), or nil when the
    /// value is not allowed in this session (answered Reject). An unknown name lists nothing.
    public static func sendTargets(
        _ value: String, session: SessionParameters, targets: [LoginTarget], portals: [TargetPortal]
    ) -> [UInt8]? {
        let selected: [LoginTarget]
        switch (session.sessionType, value) {
        case (.discovery, "All"):
            selected = targets
        case (.discovery, ""), (.normal, "All"):
            return nil
        case (.discovery, let name):
            selected = targets.filter { $0.name == name }
        case (.normal, let name):
            guard let sessionTarget = session.targetName, name.isEmpty || name == sessionTarget else { return [] }
            selected = targets.filter { $0.name == sessionTarget }
        }
        var bytes: [UInt8] = []
        for target in selected {
            append("TargetName", target.name, to: &bytes)
            for portal in portals where portal.portalGroupTag == target.portalGroupTag {
                append("TargetAddress", portal.targetAddress, to: &bytes)
            }
        }
        return bytes
    }

    private static func append(_ key: String, _ value: String, to bytes: inout [UInt8]) {
        assert(!value.utf8.contains(0))
        bytes += key.utf8
        bytes.append(UInt8(ascii: "="))
        bytes += value.utf8
        bytes.append(0)
    }
}
