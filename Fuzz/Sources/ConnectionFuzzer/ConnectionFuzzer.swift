// Fuzzes the connection state machine: a real connection handler (login, CmdSN window, R2T
// and write admission, Data-Out sequences, task management, text, logout, flow control)
// driven by sequences of PDUs built from the input, over a logical unit on a small volume.
// After every PDU the handler's bounds are checked (ConnectionProbe.checkBounds); the
// target's output must frame, keep StatSN in order and stay within the initiator's
// MaxRecvDataSegmentLength; at the end the connection closes and must release everything
// once its tasks end.
//
// Input: records of an 8-byte head [kind, flags, tag, cmdSN, length, a, b, c] followed by
// `length * 32` payload bytes (what the input has left of them). See `Step` for the kinds.

@_spi(Fuzzing) import BlockISCSI
import BlockSCSI
import FuzzSupport
import NIOCore
import NIOEmbedded

let targetName = "iqn.2026-11.org.swift-block.fuzz:connection"
let initiatorMaxRecvDataSegmentBytes = 8192
let maxSteps = 64

let fuzzTarget: ConnectionFuzzTarget = {
    var configuration = ISCSIServerConfiguration(
        limits: TargetLimits(maxRecvDataSegmentLength: 8192, maxBurstLength: 16384, firstBurstLength: 4096,
                             maxOutstandingR2T: 2),
        commandWindow: 16, maxImmediateCommands: 4, maxTransferBytes: 64 << 10,
        maxSolicitedBytesPerConnection: 32 << 10, maxDataInBytesPerConnection: 32 << 10,
        nopInIntervalMs: 600_000, nopInTimeoutMs: 600_000)
    configuration.logger = FuzzVolume.quietLogger
    return ConnectionFuzzTarget(targetName: targetName, logicalUnit: FuzzVolume.makeUnit(targetName: targetName),
                                configuration: configuration)
}()

/// One fuzzing input; libFuzzer calls it through the driver (Entry.swift).
func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    waitFor { await FuzzSession.run(bytes) }
    return 0
}

/// The initiator side of one fuzzed connection.
final class FuzzSession {
    let channel = NIOAsyncTestingChannel()
    var probe: ConnectionProbe!
    var cmdSN: UInt32 = 1
    var expStatSN: UInt32 = 0
    var lastStatSN: UInt32?
    var parser = OutputParser()
    /// R2Ts seen: (ITT, TTT, buffer offset, length, next DataSN, bytes sent).
    var r2ts: [(itt: UInt32, ttt: UInt32, offset: Int, length: Int, dataSN: UInt32, sent: Int)] = []
    var textTag: UInt32 = 0xFFFF_FFFF
    var loggedIn = false
    var unsolicitedDataSN: [UInt32: UInt32] = [:]

    static func run(_ bytes: [UInt8]) async {
        let session = FuzzSession()
        await session.start()
        var reader = StepReader(bytes: bytes)
        var steps = 0
        while steps < maxSteps, session.channel.isActive, let step = reader.next() {
            steps += 1
            await session.perform(step)
            await session.settle()
        }
        await session.finish()
    }

    func start() async {
        let channel = self.channel
        probe = try! await channel.testingEventLoop.executeInContext { try fuzzTarget.attach(to: channel) }
        try! await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 3260)).get()
        var login = FuzzPDU(opcode: 0x03, immediate: true, flags: 0x80 | 1 << 2 | 3)
        login.set64(0x8000_0000_0001 << 16, at: 8)
        login.set32(1, at: 16)
        login.set32(cmdSN, at: 24)
        login.data = loginText([
            ("InitiatorName", "iqn.2026-11.org.swift-block.fuzz:initiator"), ("TargetName", targetName),
            ("SessionType", "Normal"), ("HeaderDigest", "None"), ("DataDigest", "None"),
            ("MaxRecvDataSegmentLength", "\(initiatorMaxRecvDataSegmentBytes)"), ("ImmediateData", "Yes"),
            ("InitialR2T", "No"), ("FirstBurstLength", "4096"), ("MaxBurstLength", "16384"),
            ("MaxOutstandingR2T", "2"), ("ErrorRecoveryLevel", "0"), ("MaxConnections", "1"),
            ("DataPDUInOrder", "Yes"), ("DataSequenceInOrder", "Yes"), ("DefaultTime2Wait", "2"),
            ("DefaultTime2Retain", "0"), ("IFMarker", "No"), ("OFMarker", "No"),
        ])
        await send(login.encoded)
        await settle()
        precondition(loggedIn && channel.isActive, "the fuzzer's login is refused: fix the fuzzer")
    }

    func send(_ bytes: [UInt8]) async {
        precondition(bytes.count <= ConnectionProbe.largestFuzzStepBytes, "fuzz steps stay small")
        guard channel.isActive else { return }
        try? await channel.writeInbound(ByteBuffer(bytes: bytes))
    }

    /// Runs what the handler queued, reads its output and checks its bounds.
    func settle() async {
        await channel.testingEventLoop.run()
        while let buffer = try? await channel.readOutbound(as: ByteBuffer.self) {
            parser.append(Array(buffer.readableBytesView))
        }
        while let pdu = parser.next() { observe(pdu) }
        let probe = self.probe!
        try? await channel.testingEventLoop.executeInContext { probe.checkBounds() }
    }

    /// What the target sent: sequence numbers, R2Ts and text continuations to answer later.
    func observe(_ pdu: FuzzPDU) {
        let opcode = pdu.bhs[0] & 0x3F
        precondition(pdu.data.count <= max(initiatorMaxRecvDataSegmentBytes, 8192), "Data-In within our MaxRecvDataSegmentLength")
        let carriesStatus = opcode == 0x21 || opcode == 0x22 || opcode == 0x23 || opcode == 0x24 || opcode == 0x26
            || opcode == 0x3F || opcode == 0x32 || (opcode == 0x20 && pdu.u32(16) != 0xFFFF_FFFF)
            || (opcode == 0x25 && pdu.bhs[1] & 0x01 != 0)
        if carriesStatus {
            let statSN = pdu.u32(24)
            if let lastStatSN { precondition(statSN == lastStatSN &+ 1, "StatSN advances by one per status") }
            lastStatSN = statSN
            expStatSN = statSN &+ 1
        }
        switch opcode {
        case 0x31:  // R2T
            r2ts.append((pdu.u32(16), pdu.u32(20), Int(pdu.u32(40)), Int(pdu.u32(44)), 0, 0))
            if r2ts.count > 16 { r2ts.removeFirst() }
        case 0x24 where pdu.bhs[1] & 0x40 != 0:  // Text Response, continues
            textTag = pdu.u32(20)
        case 0x23:  // Login Response: success, into the full feature phase
            loggedIn = pdu.bhs[36] == 0 && pdu.bhs[1] & 0x83 == 0x83
        default:
            break
        }
    }

    /// Waits (bounded) for the tasks the logical unit still runs and checks that nothing
    /// left waits for nothing, then closes and checks that the connection let go of
    /// everything once its tasks ended.
    func finish() async {
        let probe = self.probe!
        if channel.isActive {
            await waitUntil("tasks running in the logical unit ended") { probe.isSettled }
            try? await channel.testingEventLoop.executeInContext { probe.checkSettled() }
            try? await channel.close()
        }
        await waitUntil("a closed connection's tasks ended") { probe.isIdle }
        try? await channel.testingEventLoop.executeInContext { probe.checkReleased() }
        precondition(fuzzTarget.sessionCount == 0, "a closed connection left its session in the table")
    }

    private func waitUntil(_ what: String, _ condition: @escaping @Sendable () -> Bool) async {
        for _ in 0..<5_000 {
            await channel.testingEventLoop.run()
            if (try? await channel.testingEventLoop.executeInContext(condition)) == true { return }
            try? await Task.sleep(for: .milliseconds(1))
        }
        preconditionFailure("not within 5 s: \(what)")
    }
}
