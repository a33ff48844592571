// One iSCSI connection (and, with MaxConnections=1, its session): login, then the full
// feature phase. Runs on the channel's event loop; a SCSI command that needs no waiting (a
// read from memory, a write into the log) completes right there, any other runs as a task
// that prefers the loop and comes back to it to answer.
//
// Invariants:
// - StatSN is assigned when a status-carrying PDU is written, in write order.
// - Every accepted non-immediate command leaves the CmdSN window (`window.complete()`)
//   exactly once: when its response is written, or when it is aborted.
// - An aborted task never sends a response; a task management response is written only
//   after the tasks it aborted have finished.
// - Everything a peer can make the connection hold is bounded (ISCSIConnectionHandler+Input):
//   tasks by the window plus `maxImmediateCommands`, write data by what arrived, read data
//   by `maxDataInBytesPerConnection`, answers by the channel's write watermark.

import BlockEngine
import BlockSCSI
import Logging
import NIOCore

/// Shared, immutable-ish context of the server every connection needs.
final class ServerContext: Sendable {
    let configuration: ISCSIServerConfiguration
    let registry: SessionRegistry
    let catalog: TargetCatalog

    init(configuration: ISCSIServerConfiguration, catalog: TargetCatalog) {
        self.configuration = configuration
        self.catalog = catalog
        self.registry = SessionRegistry(limits: SessionLimits(configuration))
    }
}

/// The whole pipeline of a connection: it frames PDUs itself (no per-PDU hop, boxing or
/// dynamic cast between a separate decoder, encoder and this handler).
final class ISCSIConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Phase {
        case login
        case fullFeature
        /// Logout accepted: no new commands; answer once in-flight tasks are done.
        case loggingOut(initiatorTaskTag: UInt32, reasonCode: UInt8)
        case closed
    }

    let server: ServerContext
    let framing: ISCSIFramingSettings
    /// Splits the received bytes into PDUs (digests and limits from `framing`).
    let decoder: ISCSIPDUDecoder
    /// Bytes read from the socket and not yet framed: at most one PDU in progress, plus what
    /// one socket read brought while input was held (ISCSIConnectionHandler+Input).
    var inbound = ByteBuffer()
    var inboundState = InboundState()
    var allocator = ByteBufferAllocator()
    var logger: Logger
    var phase = Phase.login
    var negotiator: LoginNegotiator
    var context: ChannelHandlerContext?

    // Sequence numbers.
    var statSN: UInt32 = 0
    var loginCmdSN: UInt32 = 0
    var loginStarted = false
    var window = CommandWindow(initialCmdSN: 0, capacity: 1)

    // The session, once logged in.
    var session: SessionState?
    /// The session table entry, kept after the connection closes until its tasks end.
    var sessionBinding: (tsih: UInt16, channel: any Channel)?
    /// Set while a login that reinstated a session waits for the old one's tasks to end.
    var reinstatedSessionEnded: EventLoopFuture<Void>?
    var tasks: [UInt32: CommandTask] = [:]
    var nextTargetTransferTag: UInt32 = 1
    var nextTaskID: UInt64 = 0
    /// Expected bytes of the admitted writes still collecting data (the write budget).
    var writeReservedBytes = 0
    /// Writes waiting for the write budget before they are solicited, oldest first.
    var admissionQueue = AdmissionQueue()
    /// Immediate SCSI commands in flight (they bypass the CmdSN window).
    var immediateTaskCount = 0
    /// Expected read bytes of the commands executing now (released when answered).
    var dataInReservedBytes = 0
    var textContinuation: TextContinuation?
    /// Work waiting for lower CmdSNs to arrive, by CmdSN (bounded by the window).
    var parked: [UInt32: () -> Void] = [:]
    /// Every CmdSN below this one was delivered or has nothing parked; never above ExpCmdSN.
    var deliveredThroughCmdSN: UInt32 = 0
    var needsFlush = false
    var flushScheduled = false
    /// Runs this connection's command tasks on its event loop.
    var taskExecutor: EventLoopTaskExecutor?

    // Liveness.
    var lastReceiveNs: UInt64 = 0
    var pingOutstanding: (targetTransferTag: UInt32, sentNs: UInt64)?
    var livenessTask: RepeatedTask?
    var loginTimeout: Scheduled<Void>?

    init(server: ServerContext, framing: ISCSIFramingSettings) {
        self.server = server
        self.framing = framing
        self.decoder = ISCSIPDUDecoder(settings: framing)
        self.logger = server.configuration.logger
        self.negotiator = LoginNegotiator(catalog: server.catalog, limits: server.configuration.limits,
                                          portalGroupTag: server.configuration.portalGroupTag)
    }

    // MARK: - Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        allocator = context.channel.allocator
        taskExecutor = EventLoopTaskExecutor(eventLoop: context.eventLoop)
        logger[metadataKey: "peer"] = "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")"
        lastReceiveNs = nowNs()
        let timeoutMs = server.configuration.loginTimeoutMs
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        loginTimeout = context.eventLoop.scheduleTask(in: .milliseconds(timeoutMs)) {
            guard case .login = handler.value.phase else { return }
            handler.value.logger.warning("login timed out")
            handler.value.close()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        tearDown()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.warning("connection error, closing", metadata: ["error": "\(error)"])
        close()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastReceiveNs = nowNs()
        var bytes = unwrapInboundIn(data)
        if inbound.readableBytes == 0 {
            inbound = bytes
        } else {
            inbound.writeBuffer(&bytes)
        }
        processInbound()
    }

    func receive(_ inbound: InboundPDU) {
        logger.trace("PDU in", metadata: [
            "opcode": "\(inbound.pdu.header.opcodeValue)", "itt": "\(inbound.pdu.header.initiatorTaskTag)",
            "data_bytes": "\(inbound.pdu.data.readableBytes)", "flags": "\(inbound.pdu.header[byte: 1])",
        ])
        if let problem = inbound.problem {
            handleFramingProblem(problem, header: inbound.pdu.header)
            return
        }
        switch phase {
        case .login:
            handleLoginPhase(inbound.pdu)
        case .fullFeature, .loggingOut:
            handleFullFeature(inbound.pdu)
            runDeliverable()
        case .closed:
            break
        }
    }

    /// Runs `body` now when every lower CmdSN has arrived, otherwise once they have: commands
    /// reach the SCSI layer in CmdSN order (RFC 7143 3.2.2.1). Immediate PDUs run at once.
    func deliver(immediate: Bool, cmdSN: UInt32, _ body: @escaping () -> Void) {
        if immediate || window.isDeliverable(cmdSN) {
            body()
        } else {
            parked[cmdSN] = body
        }
    }

    /// Starts parked work whose turn has come, lowest CmdSN first. Each CmdSN is looked at
    /// once on its way below ExpCmdSN, so the work is O(1) per command.
    func runDeliverable() {
        // Bounded by the window: ExpCmdSN is at most `capacity` ahead of the last delivery.
        while window.isDeliverable(deliveredThroughCmdSN) {
            let cmdSN = deliveredThroughCmdSN
            deliveredThroughCmdSN &+= 1
            parked.removeValue(forKey: cmdSN)?()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded()
        context.fireChannelReadComplete()
    }

    // MARK: - Sending

    /// Writes a PDU, stamping StatSN/ExpCmdSN/MaxCmdSN. Flushes at the end of the read burst,
    /// or at once when `flush` (answers that come back from tasks).
    func send(_ pdu: ISCSIPDU, flush: Bool = false, promise: EventLoopPromise<Void>? = nil) {
        guard let context else { return }
        if case .closed = phase { return }
        var pdu = pdu
        pdu.stamp(statSN: statSN, expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN)
        if pdu.carriesStatus { statSN &+= 1 }
        ISCSIPDUEncoder.encode(pdu, settings: framing, allocator: allocator) { buffer, last in
            context.write(wrapOutboundOut(buffer), promise: last ? promise : nil)
        }
        if flush {
            context.flush()
            needsFlush = false
        } else {
            needsFlush = true
        }
    }

    /// Sends a last PDU and closes the connection once it is on the wire.
    func sendFinal(_ pdu: ISCSIPDU) {
        guard let context else { return }
        let written = context.eventLoop.makePromise(of: Void.self)
        send(pdu, flush: true, promise: written)
        phase = .closed
        let channel = context.channel
        written.futureResult.whenComplete { _ in channel.close(promise: nil) }
    }

    func flushIfNeeded() {
        guard needsFlush, let context else { return }
        needsFlush = false
        context.flush()
    }

    /// Flushes once after the event loop has run what is queued now, so answers completing
    /// together share one socket write.
    func scheduleFlush() {
        guard needsFlush, !flushScheduled, let context else { return }
        flushScheduled = true
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.execute {
            handler.value.flushScheduled = false
            handler.value.flushIfNeeded()
        }
    }

    func reject(_ reason: RejectReason, header: BasicHeaderSegment) {
        logger.info("rejecting PDU", metadata: ["reason": "\(reason)", "opcode": "\(header.opcodeValue)"])
        send(.reject(reason: reason, rejectedHeader: header))
    }

    /// Closes the connection now.
    func close() {
        guard let context else { return }
        if case .closed = phase { return }
        phase = .closed
        context.flush()
        context.close(promise: nil)
    }

    private func handleFramingProblem(_ problem: PDUFramingProblem, header: BasicHeaderSegment) {
        switch problem {
        case .dataDigestMismatch:
            reject(.dataDigestError, header: header)
            if header.opcodeValue == ISCSIOpcode.dataOut.rawValue {
                // Its data is lost and ErrorRecoveryLevel 0 cannot ask for it again: end the
                // task (RFC 7143 section 7.8) instead of leaving it waiting forever.
                failCollectingTask(header.initiatorTaskTag, sense: SenseData(SenseCode(.abortedCommand, asc: 0x47, ascq: 0x05)))
            }
        }
        flushIfNeeded()
    }

    // MARK: - Full feature phase dispatch

    private func handleFullFeature(_ pdu: ISCSIPDU) {
        switch pdu.opcode {
        case .scsiCommand:
            handleSCSICommand(SCSICommandPDU(pdu))
        case .dataOut:
            handleDataOut(DataOutPDU(pdu))
        case .nopOut:
            handleNOPOut(NOPOutPDU(pdu))
        case .taskManagementRequest:
            handleTaskManagement(TaskManagementRequestPDU(pdu))
        case .textRequest:
            handleText(TextRequestPDU(pdu))
        case .logoutRequest:
            handleLogout(LogoutRequestPDU(pdu))
        case .snackRequest:
            // ErrorRecoveryLevel 0: no SNACK support.
            reject(.snackReject, header: pdu.header)
        case .loginRequest:
            reject(.protocolError, header: pdu.header)
        case .none:
            reject(.commandNotSupported, header: pdu.header)
        default:
            // A target-to-initiator opcode from the initiator.
            reject(.protocolError, header: pdu.header)
        }
    }

    /// Accepts a non-immediate command into the CmdSN window; false means ignore it silently.
    func acceptSequenced(immediate: Bool, cmdSN: UInt32) -> Bool {
        immediate || window.accept(cmdSN)
    }

    // MARK: - NOP

    private func handleNOPOut(_ nop: NOPOutPDU) {
        if nop.initiatorTaskTag == 0xFFFF_FFFF {
            // An answer to our ping (or an initiator keep-alive that wants no answer).
            if let ping = pingOutstanding, nop.targetTransferTag == ping.targetTransferTag { pingOutstanding = nil }
            return
        }
        guard acceptSequenced(immediate: nop.immediate, cmdSN: nop.cmdSN) else { return }
        deliver(immediate: nop.immediate, cmdSN: nop.cmdSN) { [self] in answerNOP(nop) }
    }

    private func answerNOP(_ nop: NOPOutPDU) {
        var echo = nop.pingData
        if let session, echo.readableBytes > session.parameters.initiatorMaxRecvDataSegmentLength {
            echo = echo.getSlice(at: echo.readerIndex, length: session.parameters.initiatorMaxRecvDataSegmentLength)!
        }
        if !nop.immediate { window.complete() }
        send(.nopIn(initiatorTaskTag: nop.initiatorTaskTag, targetTransferTag: 0xFFFF_FFFF,
                    lunField: nop.lunField, data: echo))
    }

    /// Pings an idle initiator and drops a connection whose ping goes unanswered.
    func checkLiveness() {
        let now = nowNs()
        checkPartialPDU(nowNs: now)
        guard case .fullFeature = phase else { return }
        let timeoutNs = UInt64(server.configuration.nopInTimeoutMs) * 1_000_000
        if let ping = pingOutstanding {
            if now - ping.sentNs >= timeoutNs {
                logger.warning("initiator did not answer a NOP-In ping, closing")
                close()
            }
            return
        }
        let intervalNs = UInt64(server.configuration.nopInIntervalMs) * 1_000_000
        guard now - lastReceiveNs >= intervalNs else { return }
        let tag = takeTargetTransferTag()
        pingOutstanding = (tag, now)
        send(.nopIn(initiatorTaskTag: 0xFFFF_FFFF, targetTransferTag: tag, lunField: 0, data: ByteBuffer()),
             flush: true)
    }

    /// The event loop's clock (virtual on a testing loop, so timeouts are tested without waiting).
    func nowNs() -> UInt64 {
        (context?.eventLoop.now ?? .now()).uptimeNanoseconds
    }

    func takeTargetTransferTag() -> UInt32 {
        let tag = nextTargetTransferTag
        nextTargetTransferTag &+= 1
        if nextTargetTransferTag == 0xFFFF_FFFF { nextTargetTransferTag = 1 }
        return tag
    }

    // MARK: - Logout and teardown

    private func handleLogout(_ logout: LogoutRequestPDU) {
        guard acceptSequenced(immediate: logout.immediate, cmdSN: logout.cmdSN) else { return }
        deliver(immediate: logout.immediate, cmdSN: logout.cmdSN) { [self] in startLogout(logout) }
    }

    private func startLogout(_ logout: LogoutRequestPDU) {
        if !logout.immediate { window.complete() }
        switch logout.reasonCode {
        case 0, 1:
            phase = .loggingOut(initiatorTaskTag: logout.initiatorTaskTag, reasonCode: logout.reasonCode)
            finishLogoutIfIdle()
        default:
            // Connection recovery needs ErrorRecoveryLevel 2.
            send(.logoutResponse(initiatorTaskTag: logout.initiatorTaskTag, response: 2,
                                 time2WaitSeconds: 0, time2RetainSeconds: 0))
        }
    }

    /// Answers a pending logout once no task runs.
    func finishLogoutIfIdle() {
        guard case let .loggingOut(tag, _) = phase, tasks.isEmpty else { return }
        logger.info("logout")
        sendFinal(.logoutResponse(initiatorTaskTag: tag, response: 0, time2WaitSeconds: 0, time2RetainSeconds: 0))
    }

    /// Another login reinstated this session, or its target was removed: abort everything and
    /// close; `ended` runs once no task of this session can still reach a volume.
    func closeAbortingTasks(because reason: Logger.Message, ended: @escaping () -> Void) {
        logger.info(reason)
        abort(Array(tasks.keys), then: ended)
        close()
    }

    /// Server shutdown: stop taking commands, let running ones finish, then close.
    func shutdownGracefully() {
        switch phase {
        case .fullFeature:
            phase = .loggingOut(initiatorTaskTag: 0xFFFF_FFFF, reasonCode: 0)
            send(.asyncMessage(event: 1, parameter3: 0), flush: true)
            if tasks.isEmpty { close() }
        case .login:
            close()
        default:
            break
        }
    }

    private func tearDown() {
        livenessTask?.cancel()
        livenessTask = nil
        loginTimeout?.cancel()
        abortAllTasks()
        if let session {
            for unit in session.logicalUnits.values { unit.nexusLost(session.nexus) }
            logger.info("session ended")
        }
        // `session` stays: until its aborted tasks end, PREEMPT AND ABORT still finds them by nexus.
        parked = [:]  // work that never started (its closures hold this handler)
        textContinuation = nil
        phase = .closed
        context = nil
        inbound = ByteBuffer()
        releaseEndedSession()
    }

    /// A closed connection leaves the session table only once its last task has ended:
    /// until then a reinstating login or a reset still finds it and waits for those tasks.
    func releaseEndedSession() {
        guard context == nil, tasks.isEmpty, let binding = sessionBinding else { return }
        sessionBinding = nil
        server.registry.unbind(tsih: binding.tsih, channel: binding.channel)
    }
}
