// The login phase of a connection: Login PDUs go through the LoginNegotiator; when it
// completes, the session is bound (TSIH, reinstatement), digests switch on, and the full
// feature phase begins.

import BlockSCSI
import NIOCore

extension ISCSIConnectionHandler {
    func handleLoginPhase(_ pdu: ISCSIPDU) {
        guard pdu.opcode == .loginRequest else {
            // Only Login Requests may arrive before the full feature phase (RFC 7143 6.1).
            logger.warning("non-login PDU during login, closing", metadata: ["opcode": "\(pdu.header.opcodeValue)"])
            close()
            return
        }
        let loginPDU = LoginRequestPDU(pdu)
        if !loginStarted {
            loginStarted = true
            statSN = loginPDU.expStatSN
        }
        // Login requests are immediate: the first command after login carries this CmdSN.
        window = CommandWindow(initialCmdSN: loginPDU.cmdSN, capacity: UInt32(server.configuration.commandWindow))
        deliveredThroughCmdSN = loginPDU.cmdSN
        let response: LoginResponse
        switch LoginFlags.decodeRequest(pdu.header[byte: 1]) {
        case let .failure(status):
            let request = LoginRequest(transit: false, currentStage: .securityNegotiation, nextStage: .securityNegotiation,
                                       isid: loginPDU.isid, tsih: loginPDU.tsih,
                                       initiatorTaskTag: loginPDU.initiatorTaskTag)
            response = LoginResponse.failure(to: request, status: status)
        case let .success(flags):
            let request = LoginRequest(flags: flags, versionMax: loginPDU.versionMax, versionMin: loginPDU.versionMin,
                                       isid: loginPDU.isid, tsih: loginPDU.tsih,
                                       initiatorTaskTag: loginPDU.initiatorTaskTag,
                                       connectionID: loginPDU.connectionID, cmdSN: loginPDU.cmdSN,
                                       expStatSN: loginPDU.expStatSN, data: Array(loginPDU.text.readableBytesView))
            response = negotiator.process(request) { binding in bind(binding) }
        }
        let reply = ISCSIPDU.loginResponse(
            transit: response.transit, continues: response.continues, currentStage: response.currentStage.rawValue,
            nextStage: response.nextStage.rawValue, versionMax: response.versionMax,
            versionActive: response.versionActive, isid: response.isid, tsih: response.tsih,
            initiatorTaskTag: response.initiatorTaskTag, statusClass: response.statusClass,
            statusDetail: response.statusDetail, data: ByteBuffer(bytes: response.data))
        if !response.status.isSuccess || negotiator.failed {
            logger.warning("login failed", metadata: ["status": "\(response.status)",
                                                      "initiator": "\(negotiator.outcome?.initiatorName ?? "?")"])
            sendFinal(reply)
            return
        }
        guard let parameters = negotiator.outcome, session != nil else {
            send(reply, flush: true)
            return
        }
        guard let reinstated = reinstatedSessionEnded, let context else {
            send(reply, flush: true)
            enterFullFeaturePhase(parameters)
            return
        }
        // The replaced session's writes must not land after this session's: answer the login
        // only once none of them can still reach a volume. Input waits meanwhile.
        reinstatedSessionEnded = nil
        inboundState.awaitingReinstatement = true
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        reinstated.hop(to: context.eventLoop).whenComplete { _ in
            let connection = handler.value
            connection.inboundState.awaitingReinstatement = false
            guard connection.context != nil, case .login = connection.phase else { return }
            connection.send(reply, flush: true)
            connection.enterFullFeaturePhase(parameters)
            connection.resumeInputIfPossible()
        }
    }

    /// Called by the negotiator as the login completes.
    private func bind(_ binding: LoginSessionBinding) -> Result<UInt16, LoginStatus> {
        guard let context else { return .failure(.targetError) }
        var target: ISCSITargetDefinition? = nil
        if let name = binding.targetName {
            guard let definition = server.catalog.definition(named: name) else { return .failure(.targetRemoved) }
            target = definition
        }
        let key = SessionKey(initiatorName: binding.initiatorName, isid: binding.isid,
                             targetName: binding.targetName ?? "")
        let reference = ConnectionReference(channel: context.channel,
                                            handler: NIOLoopBound(self, eventLoop: context.eventLoop))
        let sessionClass: SessionClass = target == nil
            ? .discovery : (binding.parameters.authenticatedUsername == nil ? .unauthenticated : .authenticated)
        switch server.registry.bind(key: key, sessionClass: sessionClass, requestedTSIH: binding.requestedTSIH,
                                    connection: reference) {
        case let .failure(status):
            if status == .outOfResources {
                logger.warning("session table full for this kind of login", metadata: ["kind": "\(sessionClass)"])
            }
            return .failure(status)
        case let .success((tsih, replaced)):
            let replacedEnded = replaced?.end(because: "session reinstated by a new login; closing the old connection")
            // A target removed while this login looked it up: `removeTarget` takes the
            // target's connections after removing it, perhaps before this bind, so the
            // login fails here instead of reaching a closed volume.
            if let target, !server.catalog.contains(target) {
                server.registry.unbind(tsih: tsih, channel: context.channel)
                return .failure(.targetRemoved)
            }
            let nexus = ITNexus(initiatorName: binding.initiatorName, initiatorSessionID: binding.isid,
                                targetName: binding.targetName ?? "", targetPortalGroupTag: server.configuration.portalGroupTag)
            session = SessionState(tsih: tsih, parameters: binding.parameters, nexus: nexus, target: target)
            sessionBinding = (tsih, context.channel)
            reinstatedSessionEnded = replacedEnded
            return .success(tsih)
        }
    }

    func enterFullFeaturePhase(_ parameters: SessionParameters) {
        guard let context else { return }
        loginTimeout?.cancel()
        loginTimeout = nil
        // The login response went out without digests; everything after uses them.
        framing.headerDigest = parameters.headerDigest
        framing.dataDigest = parameters.dataDigest
        framing.maxRecvDataSegmentLengthBytes = parameters.targetMaxRecvDataSegmentLength
        phase = .fullFeature
        logger[metadataKey: "initiator"] = "\(parameters.initiatorName)"
        logger.info("login", metadata: [
            "target": "\(parameters.targetName ?? "discovery")", "tsih": "\(session?.tsih ?? 0)",
            "header_digest": "\(parameters.headerDigest)", "data_digest": "\(parameters.dataDigest)",
        ])
        let intervalMs = max(server.configuration.nopInIntervalMs / 2, 100)
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        livenessTask = context.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(intervalMs),
                                                             delay: .milliseconds(intervalMs)) { _ in
            handler.value.checkLiveness()
        }
    }
}

/// The answer to a Text Request in the full feature phase.
enum TextRequestAnswer {
    static func answer(text: [UInt8], session: SessionState, catalog: TargetCatalog, portals: [String]) -> ByteBuffer {
        let targets = catalog.allDefinitions.compactMap { catalog.target(named: $0.name) }
        let portalList = portals.compactMap { address -> TargetPortal? in
            guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
                return nil
            }
            return TargetPortal(host: String(address[..<colon]), port: port, portalGroupTag: catalog.portalGroupTag)
        }
        do {
            let bytes = try TextRequestResponder.respond(to: text, session: session.parameters, targets: targets,
                                                         portals: portalList)
            return ByteBuffer(bytes: bytes)
        } catch {
            return ByteBuffer()
        }
    }
}
