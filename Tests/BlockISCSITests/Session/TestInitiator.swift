// A minimal iSCSI initiator speaking raw PDUs over a `ByteTransport`: login (with or
// without CHAP), SCSI commands with immediate data, R2T-solicited Data-Out and Data-In
// collection, NOP, task management and logout. It checks the sequence numbers of every PDU
// the target sends (StatSN advances by one per status, never on R2T or pings; ExpCmdSN and
// MaxCmdSN never move back) and records violations for the tests to assert on.

import Crypto

enum InitiatorError: Error, CustomStringConvertible {
    case timeout(String)
    case closed(String)
    case unexpected(WirePDU, String)
    case loginFailed(statusClass: UInt8, statusDetail: UInt8)

    var description: String {
        switch self {
        case .timeout(let what): return "timed out waiting for \(what)"
        case .closed(let what): return "connection closed while waiting for \(what)"
        case .unexpected(let pdu, let what): return "unexpected \(pdu) while waiting for \(what)"
        case .loginFailed(let statusClass, let detail): return "login failed with class \(statusClass) detail \(detail)"
        }
    }
}

/// What a SCSI command came back with.
struct SCSIOutcome {
    var dataIns: [WirePDU] = []
    var r2ts: [WirePDU] = []
    /// The SCSI Response PDU, nil when the status came in the last Data-In.
    var response: WirePDU?
    var data: [UInt8] = []

    /// The PDU that carried the status.
    var statusPDU: WirePDU? { response ?? dataIns.last.flatMap { $0.flags & 0x01 != 0 ? $0 : nil } }
    var status: UInt8? { statusPDU?.bhs[3] }
    var underflow: Bool { (statusPDU?.flags ?? 0) & 0x02 != 0 }
    var overflow: Bool { (statusPDU?.flags ?? 0) & 0x04 != 0 }
    var residualCount: UInt32 { statusPDU?.u32(44) ?? 0 }

    /// The fixed-format sense data of a SCSI Response (after its 2-byte length).
    var sense: [UInt8] {
        guard let response, response.data.count >= 2 else { return [] }
        let length = Int(response.data[0]) << 8 | Int(response.data[1])
        return Array(response.data.dropFirst(2).prefix(length))
    }

    /// (sense key, ASC, ASCQ) from fixed-format sense data.
    var senseCode: (key: UInt8, asc: UInt8, ascq: UInt8)? {
        let sense = self.sense
        guard sense.count >= 14, sense[0] & 0x7E == 0x70 else { return nil }
        return (sense[2] & 0x0F, sense[12], sense[13])
    }
}

final class TestInitiator {
    static let defaultOperationalKeys: [(String, String)] = [
        ("HeaderDigest", "None"), ("DataDigest", "None"), ("InitialR2T", "Yes"), ("ImmediateData", "Yes"),
        ("MaxBurstLength", "262144"), ("FirstBurstLength", "65536"), ("DefaultTime2Wait", "2"),
        ("DefaultTime2Retain", "0"), ("MaxOutstandingR2T", "1"), ("ErrorRecoveryLevel", "0"),
        ("MaxConnections", "1"), ("MaxRecvDataSegmentLength", "262144"), ("DataPDUInOrder", "Yes"),
        ("DataSequenceInOrder", "Yes"), ("IFMarker", "No"), ("OFMarker", "No"),
    ]

    let transport: any ByteTransport
    let initiatorName: String
    var isid: UInt64
    var tsih: UInt16 = 0
    var cmdSN: UInt32 = 0x10
    var expStatSN: UInt32 = 0
    var nextITT: UInt32 = 0x1000
    var timeout: Duration = .seconds(20)
    /// Answer the target's NOP-In pings without showing them to the test.
    var answersPings = true

    private var parser = WireParser()
    private(set) var sendsHeaderDigest = false
    private(set) var sendsDataDigest = false
    /// The target's declared MaxRecvDataSegmentLength (8192 until it declares one).
    private(set) var targetMaxRecvDataSegmentLength = 8192
    private(set) var negotiated: [String: String] = [:]
    /// Every PDU received, in order (pings answered automatically included).
    private(set) var received: [WirePDU] = []
    /// Sequence number rule violations seen so far.
    private(set) var sequenceViolations: [String] = []
    private(set) var pingsAnswered = 0
    private var lastStatSN: UInt32?
    private var highestExpCmdSN: UInt32?
    private(set) var highestMaxCmdSN: UInt32?

    init(transport: any ByteTransport, initiatorName: String = "iqn.2026-01.org.example:initiator",
         isid: UInt64 = 0x8000_0000_0001) {
        self.transport = transport
        self.initiatorName = initiatorName
        self.isid = isid
    }

    func takeITT() -> UInt32 {
        nextITT &+= 1
        return nextITT
    }

    // MARK: - Raw I/O

    func send(_ pdu: WirePDU, corruptHeaderDigest: Bool = false, corruptDataDigest: Bool = false) async throws {
        try await transport.send(pdu.encoded(headerDigest: sendsHeaderDigest, dataDigest: sendsDataDigest,
                                             corruptHeaderDigest: corruptHeaderDigest,
                                             corruptDataDigest: corruptDataDigest))
    }

    /// The next PDU from the target, within the timeout (bounded polling).
    func receive(_ what: String = "a PDU", timeout: Duration? = nil) async throws -> WirePDU {
        let clock = ContinuousClock()
        let deadline = clock.now + (timeout ?? self.timeout)
        while true {
            if let pdu = try parser.next() {
                check(pdu)
                received.append(pdu)
                if answersPings, pdu.opcode == Op.nopIn, pdu.initiatorTaskTag == 0xFFFF_FFFF {
                    try await answerPing(pdu)
                    continue
                }
                return pdu
            }
            let bytes = try await transport.take()
            if !bytes.isEmpty {
                parser.append(bytes)
                continue
            }
            if await transport.isClosed() {
                let rest = try await transport.take()
                if !rest.isEmpty {
                    parser.append(rest)
                    continue
                }
                throw InitiatorError.closed(what)
            }
            guard clock.now < deadline else { throw InitiatorError.timeout(what) }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// A PDU if one has arrived, without waiting (pings are not answered here).
    func receiveIfAvailable() async throws -> WirePDU? {
        parser.append(try await transport.take())
        guard let pdu = try parser.next() else { return nil }
        check(pdu)
        received.append(pdu)
        return pdu
    }

    /// Waits until the target has closed the connection (bounded): false on timeout; a PDU
    /// arriving instead throws.
    func waitForClose(timeout: Duration = .seconds(10)) async throws -> Bool {
        do {
            let pdu = try await receive("the connection to close", timeout: timeout)
            throw InitiatorError.unexpected(pdu, "the connection to close")
        } catch InitiatorError.closed {
            return true
        } catch InitiatorError.timeout {
            return false
        }
    }

    func answerPing(_ ping: WirePDU) async throws {
        var reply = WirePDU(opcode: Op.nopOut, immediate: true)
        reply.set64(ping.u64(8), at: 8)
        reply.set32(0xFFFF_FFFF, at: 16)
        reply.set32(ping.targetTransferTag, at: 20)
        reply.set32(cmdSN, at: 24)
        reply.set32(expStatSN, at: 28)
        try await send(reply)
        pingsAnswered += 1
    }

    /// The sequence-number rules every target PDU obeys (RFC 7143 sections 4.2.2.1, 4.2.2.2).
    private func check(_ pdu: WirePDU) {
        let name = "opcode 0x\(String(pdu.opcode, radix: 16)) ITT \(pdu.initiatorTaskTag)"
        if Op.carriesStatus(pdu) {
            if let lastStatSN, pdu.statSN != lastStatSN &+ 1 {
                sequenceViolations.append("\(name): StatSN \(pdu.statSN) after \(lastStatSN)")
            }
            lastStatSN = pdu.statSN
            expStatSN = pdu.statSN &+ 1
        } else if pdu.opcode == Op.r2t || pdu.opcode == Op.nopIn, let lastStatSN, pdu.statSN != lastStatSN &+ 1 {
            sequenceViolations.append("\(name): StatSN \(pdu.statSN) is not the next StatSN \(lastStatSN &+ 1)")
        }
        let failedLogin = pdu.opcode == Op.loginResponse && pdu.bhs[36] != 0
        guard !failedLogin else { return }
        if let highest = highestExpCmdSN, serialLess(pdu.expCmdSN, highest) {
            sequenceViolations.append("\(name): ExpCmdSN \(pdu.expCmdSN) went back from \(highest)")
        }
        if let highest = highestMaxCmdSN, serialLess(pdu.maxCmdSN, highest) {
            sequenceViolations.append("\(name): MaxCmdSN \(pdu.maxCmdSN) went back from \(highest)")
        }
        if serialLess(pdu.maxCmdSN, pdu.expCmdSN &- 1) {
            sequenceViolations.append("\(name): MaxCmdSN \(pdu.maxCmdSN) < ExpCmdSN - 1 (\(pdu.expCmdSN))")
        }
        if highestExpCmdSN.map({ serialLess($0, pdu.expCmdSN) }) ?? true { highestExpCmdSN = pdu.expCmdSN }
        if highestMaxCmdSN.map({ serialLess($0, pdu.maxCmdSN) }) ?? true { highestMaxCmdSN = pdu.maxCmdSN }
    }

    // MARK: - Login

    func loginRequest(csg: UInt8, nsg: UInt8, transit: Bool, _ pairs: [(String, String)]) -> WirePDU {
        var pdu = WirePDU(opcode: Op.login, immediate: true,
                          flags: (transit ? 0x80 : 0) | csg << 2 | (transit ? nsg : 0))
        pdu.set64(isid << 16 | UInt64(tsih), at: 8)
        pdu.set32(0x0000_0001, at: 16)
        pdu.set16(1, at: 20)
        pdu.set32(cmdSN, at: 24)
        pdu.set32(expStatSN, at: 28)
        pdu.data = LoginText.encode(pairs)
        return pdu
    }

    /// One Login Request and its response.
    func loginStep(csg: UInt8, nsg: UInt8, transit: Bool, _ pairs: [(String, String)]) async throws -> WirePDU {
        try await send(loginRequest(csg: csg, nsg: nsg, transit: transit, pairs))
        let response = try await receive("a Login Response")
        guard response.opcode == Op.loginResponse else { throw InitiatorError.unexpected(response, "a Login Response") }
        return response
    }

    /// Logs in to `target` (CHAP when `chap` is given) and enters the full feature phase;
    /// returns the last Login Response. A refused login throws `loginFailed`.
    @discardableResult
    func login(target: String, keys: [(String, String)] = TestInitiator.defaultOperationalKeys,
               chap: (user: String, secret: String)? = nil) async throws -> WirePDU {
        let leading: [(String, String)] = [("InitiatorName", initiatorName), ("TargetName", target),
                                           ("SessionType", "Normal")]
        var operational = keys
        var response: WirePDU
        if let chap {
            response = try await loginStep(csg: 0, nsg: 1, transit: true, leading + [("AuthMethod", "CHAP")])
            try Self.requireSuccess(response)
            response = try await loginStep(csg: 0, nsg: 1, transit: false, [("CHAP_A", "5")])
            try Self.requireSuccess(response)
            let challenge = LoginText.decode(response.data)
            let identifier = UInt8(challenge["CHAP_I"] ?? "") ?? 0
            let challengeBytes = Self.unhex(challenge["CHAP_C"] ?? "")
            let digest = Insecure.MD5.hash(data: [identifier] + Array(chap.secret.utf8) + challengeBytes)
            response = try await loginStep(csg: 0, nsg: 1, transit: true, [
                ("CHAP_N", chap.user), ("CHAP_R", "0x" + digest.map { Self.hexByte($0) }.joined()),
            ])
            try Self.requireSuccess(response)
            response = try await loginStep(csg: 1, nsg: 3, transit: true, operational)
        } else {
            response = try await loginStep(csg: 1, nsg: 3, transit: true, leading + operational)
        }
        return try await completeLogin(after: response, sentKeys: operational)
    }

    /// Sends the first Login Request of a login without CHAP, for a test that wants to see
    /// when the answer comes; `completeLogin` goes on from that answer.
    func startLogin(target: String, keys: [(String, String)] = TestInitiator.defaultOperationalKeys) async throws {
        try await send(loginRequest(csg: 1, nsg: 3, transit: true, [
            ("InitiatorName", initiatorName), ("TargetName", target), ("SessionType", "Normal"),
        ] + keys))
    }

    /// Answers whatever the target offers after `response` until it moves to the full
    /// feature phase (bounded), then takes the session's settings.
    @discardableResult
    func completeLogin(after first: WirePDU, sentKeys: [(String, String)] = TestInitiator.defaultOperationalKeys)
        async throws -> WirePDU {
        var response = first
        var operational = sentKeys
        for _ in 0..<4 {
            try Self.requireSuccess(response)
            let answered = LoginText.decode(response.data)
            negotiated.merge(answered) { _, new in new }
            if response.flags & 0x80 != 0 && response.flags & 0x03 == 3 { break }
            let sentKeys = Set(operational.map(\.0))
            operational = answered.filter { !sentKeys.contains($0.key) && $0.key != "MaxRecvDataSegmentLength" }
                .map { ($0.key, $0.value) }
            response = try await loginStep(csg: 1, nsg: 3, transit: true, operational)
        }
        guard response.flags & 0x80 != 0 && response.flags & 0x03 == 3 else {
            throw InitiatorError.unexpected(response, "the transition to the full feature phase")
        }
        tsih = response.u16(14)
        if let length = negotiated["MaxRecvDataSegmentLength"].flatMap({ Int($0) }) {
            targetMaxRecvDataSegmentLength = length
        }
        sendsHeaderDigest = negotiated["HeaderDigest"] == "CRC32C"
        sendsDataDigest = negotiated["DataDigest"] == "CRC32C"
        parser.headerDigest = sendsHeaderDigest
        parser.dataDigest = sendsDataDigest
        return response
    }

    static func requireSuccess(_ response: WirePDU) throws {
        guard response.bhs[36] == 0 else {
            throw InitiatorError.loginFailed(statusClass: response.bhs[36], statusDetail: response.bhs[37])
        }
    }

    static func hexByte(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }

    static func unhex(_ text: String) -> [UInt8] {
        let digits = Array(text.dropFirst(2))
        return stride(from: 0, to: digits.count - 1, by: 2).compactMap { UInt8(String(digits[$0...$0 + 1]), radix: 16) }
    }

    // MARK: - SCSI commands

    /// A SCSI Command PDU; takes a CmdSN unless `immediate`.
    func commandPDU(cdb: [UInt8], lun: UInt64 = 0, read: Bool = false, write: Bool = false,
                    expectedLength: Int, immediateData: [UInt8] = [], final: Bool = true,
                    immediate: Bool = false, itt: UInt32? = nil, cmdSN explicitCmdSN: UInt32? = nil) -> WirePDU {
        precondition(cdb.count <= 16)
        var pdu = WirePDU(opcode: Op.scsiCommand, immediate: immediate,
                          flags: (final ? 0x80 : 0) | (read ? 0x40 : 0) | (write ? 0x20 : 0) | 0x01)
        pdu.set64(lun << 48, at: 8)
        pdu.set32(itt ?? takeITT(), at: 16)
        pdu.set32(UInt32(expectedLength), at: 20)
        pdu.set32(explicitCmdSN ?? cmdSN, at: 24)
        if explicitCmdSN == nil && !immediate { cmdSN &+= 1 }
        pdu.set32(expStatSN, at: 28)
        for (index, byte) in cdb.enumerated() { pdu.bhs[32 + index] = byte }
        pdu.data = immediateData
        return pdu
    }

    /// Sends a command and collects its Data-In, answering R2Ts from `writeData` in Data-Out
    /// PDUs of at most `dataOutSegment` bytes, until the status arrives.
    func execute(cdb: [UInt8], lun: UInt64 = 0, read: Bool = false, write: Bool = false, expectedLength: Int,
                 writeData: [UInt8] = [], immediateBytes: Int = 0, dataOutSegment: Int = 1 << 20) async throws -> SCSIOutcome {
        let pdu = commandPDU(cdb: cdb, lun: lun, read: read, write: write, expectedLength: expectedLength,
                             immediateData: Array(writeData.prefix(immediateBytes)))
        try await send(pdu)
        return try await collect(pdu, writeData: writeData, dataOutSegment: dataOutSegment)
    }

    func collect(_ command: WirePDU, writeData: [UInt8] = [], dataOutSegment: Int = 1 << 20) async throws -> SCSIOutcome {
        let itt = command.initiatorTaskTag
        var outcome = SCSIOutcome()
        while true {
            let pdu = try await receive("the response to ITT \(itt)")
            guard pdu.initiatorTaskTag == itt else { throw InitiatorError.unexpected(pdu, "ITT \(itt)") }
            switch pdu.opcode {
            case Op.dataIn:
                outcome.dataIns.append(pdu)
                let offset = Int(pdu.u32(40))
                if outcome.data.count < offset + pdu.data.count {
                    outcome.data += [UInt8](repeating: 0, count: offset + pdu.data.count - outcome.data.count)
                }
                outcome.data.replaceSubrange(offset..<offset + pdu.data.count, with: pdu.data)
                if pdu.flags & 0x01 != 0 { return outcome }
            case Op.r2t:
                outcome.r2ts.append(pdu)
                try await sendDataOut(for: pdu, lun: command.u64(8), from: writeData, segment: dataOutSegment)
            case Op.scsiResponse:
                outcome.response = pdu
                return outcome
            default:
                throw InitiatorError.unexpected(pdu, "Data-In, R2T or SCSI Response for ITT \(itt)")
            }
        }
    }

    /// The Data-Out PDUs answering `r2t`.
    func dataOutPDUs(for r2t: WirePDU, lun: UInt64, from data: [UInt8], segment: Int) -> [WirePDU] {
        let start = Int(r2t.u32(40))
        let end = start + Int(r2t.u32(44))
        let step = min(segment, targetMaxRecvDataSegmentLength)
        var pdus: [WirePDU] = []
        for offset in stride(from: start, to: end, by: step) {
            let length = min(step, end - offset)
            var pdu = WirePDU(opcode: Op.dataOut, flags: offset + length == end ? 0x80 : 0)
            pdu.set64(lun, at: 8)
            pdu.set32(r2t.initiatorTaskTag, at: 16)
            pdu.set32(r2t.targetTransferTag, at: 20)
            pdu.set32(expStatSN, at: 28)
            pdu.set32(UInt32(pdus.count), at: 36)
            pdu.set32(UInt32(offset), at: 40)
            pdu.data = Array(data[offset..<offset + length])
            pdus.append(pdu)
        }
        return pdus
    }

    func sendDataOut(for r2t: WirePDU, lun: UInt64, from data: [UInt8], segment: Int) async throws {
        for pdu in dataOutPDUs(for: r2t, lun: lun, from: data, segment: segment) { try await send(pdu) }
    }

    func read(lba: UInt32, blocks: UInt16, lun: UInt64 = 0, expectedLength: Int? = nil) async throws -> SCSIOutcome {
        try await execute(cdb: TestCDB.read10(lba: lba, blocks: blocks), lun: lun, read: true,
                          expectedLength: expectedLength ?? Int(blocks) * 4096)
    }

    func write(lba: UInt32, data: [UInt8], immediateBytes: Int = 0, expectedLength: Int? = nil,
               dataOutSegment: Int = 1 << 20) async throws -> SCSIOutcome {
        try await execute(cdb: TestCDB.write10(lba: lba, blocks: UInt16(data.count / 4096)), write: true,
                          expectedLength: expectedLength ?? data.count, writeData: data,
                          immediateBytes: immediateBytes, dataOutSegment: dataOutSegment)
    }

    /// TEST UNIT READY until GOOD: a new I_T nexus first sees POWER ON OCCURRED (29/00).
    func clearUnitAttentions(lun: UInt64 = 0) async throws {
        for _ in 0..<5 {
            let outcome = try await execute(cdb: TestCDB.testUnitReady(), lun: lun, expectedLength: 0)
            if outcome.status == 0 { return }
            guard outcome.senseCode?.key == 0x06 else { throw InitiatorError.unexpected(outcome.statusPDU!, "GOOD or UNIT ATTENTION") }
        }
        throw InitiatorError.timeout("unit attentions to clear")
    }

    // MARK: - NOP, task management, logout

    func nopOutPDU(data: [UInt8] = [], immediate: Bool = false, itt: UInt32? = nil,
                   cmdSN explicitCmdSN: UInt32? = nil) -> WirePDU {
        var pdu = WirePDU(opcode: Op.nopOut, immediate: immediate)
        pdu.set32(itt ?? takeITT(), at: 16)
        pdu.set32(0xFFFF_FFFF, at: 20)
        pdu.set32(explicitCmdSN ?? cmdSN, at: 24)
        if explicitCmdSN == nil && !immediate { cmdSN &+= 1 }
        pdu.set32(expStatSN, at: 28)
        pdu.data = data
        return pdu
    }

    /// A NOP-Out ping and its NOP-In answer.
    func ping(_ data: [UInt8] = [], immediate: Bool = false) async throws -> WirePDU {
        let request = nopOutPDU(data: data, immediate: immediate)
        try await send(request)
        let answer = try await receive("the NOP-In for ITT \(request.initiatorTaskTag)")
        guard answer.opcode == Op.nopIn, answer.initiatorTaskTag == request.initiatorTaskTag else {
            throw InitiatorError.unexpected(answer, "the NOP-In for ITT \(request.initiatorTaskTag)")
        }
        return answer
    }

    func taskManagementPDU(function: UInt8, referencedITT: UInt32 = 0xFFFF_FFFF, lun: UInt64 = 0,
                           immediate: Bool = true) -> WirePDU {
        var pdu = WirePDU(opcode: Op.taskManagement, immediate: immediate, flags: 0x80 | function)
        pdu.set64(lun << 48, at: 8)
        pdu.set32(takeITT(), at: 16)
        pdu.set32(referencedITT, at: 20)
        pdu.set32(cmdSN, at: 24)
        if !immediate { cmdSN &+= 1 }
        pdu.set32(expStatSN, at: 28)
        pdu.set32(0xFFFF_FFFF, at: 32)  // RefCmdSN, checked by nobody here
        return pdu
    }

    func logoutPDU(reason: UInt8 = 0, immediate: Bool = false) -> WirePDU {
        var pdu = WirePDU(opcode: Op.logout, immediate: immediate, flags: 0x80 | reason)
        pdu.set32(takeITT(), at: 16)
        pdu.set16(1, at: 20)
        pdu.set32(cmdSN, at: 24)
        if !immediate { cmdSN &+= 1 }
        pdu.set32(expStatSN, at: 28)
        return pdu
    }
}

func serialLess(_ a: UInt32, _ b: UInt32) -> Bool { a != b && (b &- a) < (1 << 31) }
