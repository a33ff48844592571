// SendTargets answers: exact bytes, session rules, other keys.

import Testing
@testable import BlockISCSI

@Suite("SendTargets")
struct SendTargetsTests {
    static let targets = [
        LoginTarget(name: "iqn.2025-01.org.example:a", alias: "alias not listed", portalGroupTag: 1),
        LoginTarget(name: "iqn.2025-01.org.example:b", portalGroupTag: 2),
    ]
    static let portals = [
        TargetPortal(host: "192.0.2.10", port: 3260, portalGroupTag: 1),
        TargetPortal(host: "2001:db8::1", port: 3261, portalGroupTag: 1),
        TargetPortal(host: "192.0.2.11", port: 3260, portalGroupTag: 2),
    ]
    static let discovery = SessionParameters(sessionType: .discovery, initiatorName: initiatorIQN, targetName: nil)
    static let normal = SessionParameters(sessionType: .normal, initiatorName: initiatorIQN, targetName: "iqn.2025-01.org.example:b")

    func respond(_ request: [(String, String)], session: SessionParameters) throws -> [UInt8] {
        try TextRequestResponder.respond(to: text(request), session: session, targets: Self.targets, portals: Self.portals)
    }

    @Test("SendTargets=All in a discovery session: exact bytes")
    func allInDiscovery() throws {
        let expected = Array((
            "TargetName=iqn.2025-01.org.example:a\0"
            + "TargetAddress=192.0.2.10:3260,1\0"
            + "TargetAddress=[2001:db8::1]:3261,1\0"
            + "TargetName=iqn.2025-01.org.example:b\0"
            + "TargetAddress=192.0.2.11:3260,2\0"
        ).utf8)
        #expect(try respond([("SendTargets", "All")], session: Self.discovery) == expected)
    }

    @Test("A named target in discovery, the session's own target in a normal session")
    func named() throws {
        #expect(try respond([("SendTargets", "iqn.2025-01.org.example:b")], session: Self.discovery)
                == Array("TargetName=iqn.2025-01.org.example:b\0TargetAddress=192.0.2.11:3260,2\0".utf8))
        #expect(try respond([("SendTargets", "iqn.2025-01.org.example:zzz")], session: Self.discovery) == [])
        let own = Array("TargetName=iqn.2025-01.org.example:b\0TargetAddress=192.0.2.11:3260,2\0".utf8)
        #expect(try respond([("SendTargets", "")], session: Self.normal) == own)
        #expect(try respond([("SendTargets", "iqn.2025-01.org.example:b")], session: Self.normal) == own)
        #expect(try respond([("SendTargets", "iqn.2025-01.org.example:a")], session: Self.normal) == [])
    }

    @Test("All in a normal session and empty in discovery are rejected; other keys refused")
    func refusals() throws {
        #expect(try respond([("SendTargets", "All")], session: Self.normal) == Array("SendTargets=Reject\0".utf8))
        #expect(try respond([("SendTargets", "")], session: Self.discovery) == Array("SendTargets=Reject\0".utf8))
        #expect(try respond([("MaxBurstLength", "4096"), ("X-foo", "1")], session: Self.normal)
                == Array("MaxBurstLength=Reject\0X-foo=NotUnderstood\0".utf8))
        #expect(throws: TextKeyError.missingTerminator) {
            try TextRequestResponder.respond(to: Array("SendTargets=All".utf8), session: Self.discovery, targets: Self.targets, portals: Self.portals)
        }
    }

    @Test("TargetAddress formatting")
    func addresses() {
        #expect(TargetPortal(host: "10.0.0.1").targetAddress == "10.0.0.1:3260,1")
        #expect(TargetPortal(host: "::1", port: 3270, portalGroupTag: 9).targetAddress == "[::1]:3270,9")
        #expect(TargetPortal(host: "[::1]", port: 3270, portalGroupTag: 9).targetAddress == "[::1]:3270,9")
        #expect(TargetPortal(host: "storage.example.org", port: 860, portalGroupTag: 3).targetAddress == "storage.example.org:860,3")
    }
}
