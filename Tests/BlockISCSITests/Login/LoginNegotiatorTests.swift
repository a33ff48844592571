// The login state machine without authentication: stages, leading keys, failures, the C
// bit in both directions, target offers and session binding.

import Testing
@testable import BlockISCSI

@Suite("Login negotiation")
struct LoginNegotiatorTests {
    @Test("A libiscsi-style login without authentication goes straight to full feature phase")
    func loginWithoutAuthentication() {
        var driver = LoginDriver()
        let response = driver.send(.operationalNegotiation, to: .fullFeaturePhase, normalLeadingKeys + libiscsiOperationalKeys)

        #expect(response.status == .success)
        #expect(response.transit && !response.continues)
        #expect(response.currentStage == .operationalNegotiation && response.nextStage == .fullFeaturePhase)
        #expect(response.tsih == 0x0101)
        #expect(response.isid == testISID && response.initiatorTaskTag == 7)
        #expect(response.versionMax == 0 && response.versionActive == 0)
        let answer = keys(response.data)
        #expect(answer["TargetPortalGroupTag"] == "1")
        #expect(answer["MaxRecvDataSegmentLength"] == "262144")
        #expect(answer["HeaderDigest"] == "None" && answer["DataDigest"] == "None")
        #expect(answer["InitialR2T"] == "Yes" && answer["ImmediateData"] == "Yes")
        #expect(answer["MaxBurstLength"] == "262144" && answer["FirstBurstLength"] == "262144")
        #expect(answer["DefaultTime2Wait"] == "2" && answer["DefaultTime2Retain"] == "0")
        #expect(answer["MaxOutstandingR2T"] == "1" && answer["ErrorRecoveryLevel"] == "0")
        #expect(answer["IFMarker"] == "No" && answer["OFMarker"] == "No" && answer["MaxConnections"] == "1")
        #expect(answer["DataPDUInOrder"] == "Yes" && answer["DataSequenceInOrder"] == "Yes")
        #expect(answer["InitiatorName"] == nil && answer["TargetName"] == nil)

        #expect(driver.bindings.count == 1)
        let binding = driver.bindings.first
        #expect(binding?.isid == testISID && binding?.requestedTSIH == 0 && binding?.connectionID == 1)
        #expect(binding?.initiatorName == initiatorIQN && binding?.targetName == targetIQN)
        let outcome = driver.negotiator.outcome
        #expect(outcome?.sessionType == .normal && outcome?.targetName == targetIQN)
        #expect(outcome?.initiatorMaxRecvDataSegmentLength == 262_144)
        #expect(outcome?.targetMaxRecvDataSegmentLength == 262_144)
        #expect(outcome?.maxBurstLength == 262_144 && outcome?.firstBurstLength == 262_144)
        #expect(outcome?.defaultTime2Retain == 0 && outcome?.authenticatedUsername == nil)
        #expect(outcome == binding?.parameters)
        #expect(!driver.negotiator.failed)
    }

    @Test("Security stage with AuthMethod=None moves to operational, then full feature")
    func securityThenOperational() {
        var driver = LoginDriver()
        let first = driver.send(.securityNegotiation, to: .operationalNegotiation, normalLeadingKeys + [("AuthMethod", "CHAP,None")])
        #expect(first.status == .success)
        #expect(first.transit && first.currentStage == .securityNegotiation && first.nextStage == .operationalNegotiation)
        #expect(keys(first.data)["AuthMethod"] == "None")
        #expect(keys(first.data)["TargetPortalGroupTag"] == "1")
        #expect(first.tsih == 0)
        #expect(driver.bindings.isEmpty && driver.negotiator.outcome == nil)

        let second = driver.send(.operationalNegotiation, to: .fullFeaturePhase, libiscsiOperationalKeys)
        #expect(second.status == .success && second.transit && second.nextStage == .fullFeaturePhase)
        #expect(keys(second.data)["TargetPortalGroupTag"] == nil)  // only in the first response
        #expect(keys(second.data)["MaxRecvDataSegmentLength"] == "262144")
        #expect(driver.bindings.count == 1 && driver.negotiator.outcome != nil)
    }

    @Test("libiscsi with credentials on a target without authentication repeats its names: tolerated")
    func libiscsiRepeatsNames() {
        // Seen with iscsi-inq iscsi://user%secret@host/iqn/0 against AuthMethod=None.
        var driver = LoginDriver()
        let first = driver.send(.securityNegotiation, to: .operationalNegotiation, normalLeadingKeys + [("AuthMethod", "CHAP,None")])
        #expect(first.transit && keys(first.data)["AuthMethod"] == "None")
        let second = driver.send(.operationalNegotiation, to: .fullFeaturePhase, normalLeadingKeys + libiscsiOperationalKeys)
        #expect(second.status == .success && second.transit && second.nextStage == .fullFeaturePhase)
        #expect(keys(second.data)["InitiatorName"] == nil)
        #expect(driver.negotiator.outcome?.targetName == targetIQN)
    }

    @Test("A request to jump from security to full feature is answered with NSG=operational")
    func securityToFullFeatureIsNarrowed() {
        var driver = LoginDriver()
        let response = driver.send(.securityNegotiation, to: .fullFeaturePhase, normalLeadingKeys + [("AuthMethod", "None")])
        #expect(response.status == .success && response.transit && response.nextStage == .operationalNegotiation)
        #expect(driver.bindings.isEmpty)
        // A later request still claiming the security stage is out of step.
        let stale = driver.send(.securityNegotiation, to: .operationalNegotiation, [])
        #expect(stale.status == .initiatorError && driver.negotiator.failed)
    }

    @Test("Without T the target stays in the stage")
    func noTransitStays() {
        var driver = LoginDriver()
        let response = driver.send(.operationalNegotiation, normalLeadingKeys + [("HeaderDigest", "None")])
        #expect(response.status == .success && !response.transit)
        let done = driver.send(.operationalNegotiation, to: .fullFeaturePhase, [])
        #expect(done.status == .success && done.transit && driver.negotiator.outcome != nil)
    }

    @Test("Unknown target, missing names, bad session type, bad version", arguments: [
        ([("InitiatorName", initiatorIQN), ("TargetName", "iqn.2025-01.org.example:nope")], UInt8(0), LoginStatus.targetNotFound),
        ([("TargetName", targetIQN)], 0, .missingParameter),
        ([("InitiatorName", initiatorIQN)], 0, .missingParameter),
        ([("InitiatorName", initiatorIQN), ("TargetName", targetIQN), ("SessionType", "Bogus")], 0, .sessionTypeNotSupported),
        ([("InitiatorName", ""), ("TargetName", targetIQN)], 0, .initiatorError),
        (normalLeadingKeys, 1, .unsupportedVersion),
    ])
    func firstRequestFailures(leading: [(String, String)], versionMin: UInt8, status: LoginStatus) {
        var driver = LoginDriver()
        let request = driver.request(.operationalNegotiation, to: .fullFeaturePhase, data: text(leading), versionMin: versionMin)
        let response = driver.send(request)
        #expect(response.status == status)
        #expect(!response.transit && response.data.isEmpty)
        #expect(driver.negotiator.failed && driver.negotiator.failureStatus == status)
        #expect(driver.bindings.isEmpty && driver.negotiator.outcome == nil)
        // Every later request fails too.
        let again = driver.send(.operationalNegotiation, to: .fullFeaturePhase, normalLeadingKeys)
        #expect(again.status == status)
    }

    @Test("A target in another portal group is not found")
    func otherPortalGroup() {
        var driver = LoginDriver(catalog: TestCatalog(targets: [LoginTarget(name: targetIQN, portalGroupTag: 2)]))
        let response = driver.send(.operationalNegotiation, to: .fullFeaturePhase, normalLeadingKeys)
        #expect(response.status == .targetNotFound)
    }

    @Test("A discovery session: no target, Irrelevant for normal-session keys")
    func discoverySession() {
        var driver = LoginDriver()
        let response = driver.send(.operationalNegotiation, to: .fullFeaturePhase, [
            ("InitiatorName", initiatorIQN), ("SessionType", "Discovery"),
        ] + libiscsiOperationalKeys)
        #expect(response.status == .success && response.transit && response.nextStage == .fullFeaturePhase)
        let answer = keys(response.data)
        #expect(answer["TargetPortalGroupTag"] == nil)
        #expect(answer["MaxBurstLength"] == "Irrelevant" && answer["FirstBurstLength"] == "Irrelevant")
        #expect(answer["InitialR2T"] == "Irrelevant" && answer["ImmediateData"] == "Irrelevant")
        #expect(answer["MaxOutstandingR2T"] == "Irrelevant" && answer["DataPDUInOrder"] == "Irrelevant")
        #expect(answer["HeaderDigest"] == "None" && answer["MaxRecvDataSegmentLength"] == "262144")
        #expect(driver.bindings.first?.targetName == nil)
        #expect(driver.negotiator.outcome?.sessionType == .discovery && driver.negotiator.outcome?.targetName == nil)
    }

    @Test("Text split over PDUs with the C bit is accumulated and acknowledged with empty responses")
    func continuedRequestText() {
        var driver = LoginDriver()
        let whole = text(normalLeadingKeys + libiscsiOperationalKeys)
        let cuts = [0, 17, 100, whole.count]  // cut inside keys and values
        for index in 0..<2 {
            let part = Array(whole[cuts[index]..<cuts[index + 1]])
            let ack = driver.send(driver.request(.operationalNegotiation, continues: true, data: part))
            #expect(ack.status == .success && !ack.transit && !ack.continues && ack.data.isEmpty)
            #expect(ack.currentStage == .operationalNegotiation)
        }
        #expect(driver.bindings.isEmpty)
        let last = driver.send(driver.request(.operationalNegotiation, to: .fullFeaturePhase, data: Array(whole[cuts[2]...])))
        #expect(last.status == .success && last.transit && last.nextStage == .fullFeaturePhase)
        #expect(keys(last.data)["MaxBurstLength"] == "262144")
        #expect(driver.negotiator.outcome?.initiatorName == initiatorIQN)
    }

    @Test("C and T together are refused")
    func continueWithTransit() {
        var driver = LoginDriver()
        let response = driver.send(driver.request(.operationalNegotiation, to: .fullFeaturePhase, continues: true, data: text(normalLeadingKeys)))
        #expect(response.status == .initiatorError && driver.negotiator.failed)
    }

    @Test("A long response is sent in 8 KiB segments with the C bit")
    func continuedResponseText() {
        var driver = LoginDriver()
        // 200 unknown keys of 60 bytes: about 15 KiB of NotUnderstood answers.
        let unknown = (0..<200).map { ("X-org.example.\(String(repeating: "k", count: 40))\(1000 + $0)", "1") }
        let first = driver.send(.operationalNegotiation, to: .fullFeaturePhase, normalLeadingKeys + unknown)
        #expect(first.status == .success && first.continues && !first.transit)
        #expect(first.data.count == LoginNegotiator.maximumResponseSegmentBytes)
        #expect(driver.bindings.isEmpty)
        let second = driver.send(driver.request(.operationalNegotiation, data: []))
        #expect(second.status == .success && !second.continues && second.transit && second.nextStage == .fullFeaturePhase)
        #expect(driver.bindings.count == 1)
        let answer = pairs(first.data + second.data)
        #expect(answer.filter { $0.value == "NotUnderstood" }.count == 200)
    }

    @Test("Text sent while the target is still sending its text is refused")
    func dataDuringResponseContinuation() {
        var driver = LoginDriver()
        let unknown = (0..<200).map { ("X-org.example.\(String(repeating: "k", count: 40))\(1000 + $0)", "1") }
        _ = driver.send(.operationalNegotiation, to: .fullFeaturePhase, normalLeadingKeys + unknown)
        let response = driver.send(.operationalNegotiation, [("HeaderDigest", "None")])
        #expect(response.status == .initiatorError)
    }

    @Test("The ISID, TSIH and CID may not change during login")
    func identityIsFixed() {
        var driver = LoginDriver()
        _ = driver.send(.operationalNegotiation, normalLeadingKeys)
        driver.connectionID = 2
        let response = driver.send(.operationalNegotiation, to: .fullFeaturePhase, [])
        #expect(response.status == .initiatorError)
    }

    @Test("Renegotiating a key fails; redeclaring a leading key with the same value does not")
    func repeatedKeys() {
        var driver = LoginDriver()
        _ = driver.send(.operationalNegotiation, normalLeadingKeys + [("MaxBurstLength", "65536")])
        let same = driver.send(.operationalNegotiation, [("InitiatorName", initiatorIQN), ("InitiatorAlias", "host1")])
        #expect(same.status == .success)
        let again = driver.send(.operationalNegotiation, [("MaxBurstLength", "65536")])
        #expect(again.status == .initiatorError)

        var other = LoginDriver()
        _ = other.send(.operationalNegotiation, normalLeadingKeys)
        let changed = other.send(.operationalNegotiation, [("TargetName", "iqn.2025-01.org.example:other")])
        #expect(changed.status == .initiatorError)
    }

    @Test("The session binding's failure status fails the login; a zero TSIH is a target error")
    func bindingFailure() {
        var driver = LoginDriver()
        driver.bindResult = .failure(.tooManyConnections)
        let response = driver.send(.operationalNegotiation, to: .fullFeaturePhase, normalLeadingKeys)
        #expect(response.status == .tooManyConnections && driver.negotiator.failed)
        #expect(driver.negotiator.outcome == nil)

        var zero = LoginDriver()
        zero.bindResult = .success(0)
        #expect(zero.send(.operationalNegotiation, to: .fullFeaturePhase, normalLeadingKeys).status == .targetError)
    }

    @Test("A non-zero TSIH is passed to the binding and echoed until the final response")
    func existingSessionTSIH() {
        var driver = LoginDriver()
        driver.tsih = 0x0042
        driver.bindResult = .success(0x0042)
        let first = driver.send(.securityNegotiation, to: .operationalNegotiation, normalLeadingKeys + [("AuthMethod", "None")])
        #expect(first.tsih == 0x0042)
        let last = driver.send(.operationalNegotiation, to: .fullFeaturePhase, [])
        #expect(last.tsih == 0x0042 && driver.bindings.first?.requestedTSIH == 0x0042)
    }

    @Test("The target offers MaxBurstLength when its limit is below the default and waits for the answer")
    func targetOffers() {
        let limits = TargetLimits(maxBurstLength: 65536, firstBurstLength: 65536)
        var driver = LoginDriver(limits: limits)
        let first = driver.send(.operationalNegotiation, to: .fullFeaturePhase, normalLeadingKeys + [("HeaderDigest", "None")])
        #expect(first.status == .success && !first.transit)
        #expect(keys(first.data)["MaxBurstLength"] == "65536")
        #expect(keys(first.data)["FirstBurstLength"] == nil)  // the default 65536 is within the limit
        let second = driver.send(.operationalNegotiation, to: .fullFeaturePhase, [("MaxBurstLength", "32768")])
        #expect(second.status == .success && second.transit && second.nextStage == .fullFeaturePhase)
        #expect(keys(second.data)["MaxBurstLength"] == nil)  // an answer is not answered
        #expect(driver.negotiator.outcome?.maxBurstLength == 32768)
        #expect(driver.negotiator.outcome?.firstBurstLength == 32768)  // clamped to MaxBurstLength

        var unanswered = LoginDriver(limits: limits)
        _ = unanswered.send(.operationalNegotiation, to: .fullFeaturePhase, normalLeadingKeys)
        #expect(unanswered.send(.operationalNegotiation, to: .fullFeaturePhase, []).status == .initiatorError)

        var contradicted = LoginDriver(limits: limits)
        _ = contradicted.send(.operationalNegotiation, to: .fullFeaturePhase, normalLeadingKeys)
        let bad = contradicted.send(.operationalNegotiation, to: .fullFeaturePhase, [("MaxBurstLength", "131072")])
        #expect(bad.status == .initiatorError)
    }

    @Test("Operational keys in the security stage and security keys in the operational stage are not understood")
    func keysOutOfStage() {
        var driver = LoginDriver()
        let first = driver.send(.securityNegotiation, normalLeadingKeys + [("AuthMethod", "None"), ("HeaderDigest", "CRC32C")])
        #expect(keys(first.data)["HeaderDigest"] == "NotUnderstood")
        let second = driver.send(.securityNegotiation, to: .operationalNegotiation, [])
        #expect(second.transit)
        let third = driver.send(.operationalNegotiation, to: .fullFeaturePhase, [("HeaderDigest", "CRC32C"), ("CHAP_A", "5"), ("TargetAddress", "1.2.3.4")])
        let answer = keys(third.data)
        #expect(answer["HeaderDigest"] == "CRC32C" && answer["CHAP_A"] == "NotUnderstood" && answer["TargetAddress"] == "NotUnderstood")
        #expect(driver.negotiator.outcome?.headerDigest == true)
    }

    @Test("Login flags decode: reserved stage codes are errors")
    func flagDecoding() {
        #expect(LoginFlags.decodeRequest(0x87) == .success(LoginFlags(transit: true, continues: false, currentStage: .operationalNegotiation, nextStage: .fullFeaturePhase)))
        #expect(LoginFlags.decodeRequest(0x81) == .success(LoginFlags(transit: true, continues: false, currentStage: .securityNegotiation, nextStage: .operationalNegotiation)))
        #expect(LoginFlags.decodeRequest(0x42) == .success(LoginFlags(transit: false, continues: true, currentStage: .securityNegotiation, nextStage: .securityNegotiation)))
        #expect(LoginFlags.decodeRequest(0x08) == .failure(.initiatorError))  // CSG 2
        #expect(LoginFlags.decodeRequest(0x0C) == .failure(.initiatorError))  // CSG 3
        #expect(LoginFlags.decodeRequest(0x86) == .failure(.initiatorError))  // T=1, NSG 2
        #expect(LoginFlags(transit: true, continues: false, currentStage: .operationalNegotiation, nextStage: .fullFeaturePhase).encoded == 0x87)
        #expect(LoginStatus.authenticationFailure.description == "0x0201")
    }
}
