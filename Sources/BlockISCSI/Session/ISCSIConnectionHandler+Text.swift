// Text requests in the full feature phase: SendTargets (discovery and normal sessions),
// with long answers split across PDUs (C bit, continued by the initiator with our TTT).

import NIOCore

extension ISCSIConnectionHandler {
    static let maxTextRequestBytes = 64 * 1024

    func handleText(_ request: TextRequestPDU) {
        guard let session else { return }
        guard acceptSequenced(immediate: request.immediate, cmdSN: request.cmdSN) else { return }
        deliver(immediate: request.immediate, cmdSN: request.cmdSN) { [self] in answerText(request, session: session) }
    }

    private func answerText(_ request: TextRequestPDU, session: SessionState) {
        if !request.immediate { window.complete() }
        let limit = session.parameters.initiatorMaxRecvDataSegmentLength
        if request.targetTransferTag != 0xFFFF_FFFF {
            guard var continuation = textContinuation, continuation.targetTransferTag == request.targetTransferTag,
                  continuation.initiatorTaskTag == request.initiatorTaskTag else {
                reject(.invalidPDUField, header: request.pdu.header)
                return
            }
            let chunk = continuation.remaining.readSlice(length: min(limit, continuation.remaining.readableBytes))!
            let more = continuation.remaining.readableBytes > 0
            textContinuation = more ? continuation : nil
            send(.textResponse(initiatorTaskTag: request.initiatorTaskTag,
                               targetTransferTag: more ? continuation.targetTransferTag : 0xFFFF_FFFF,
                               final: !more, continues: more, data: chunk))
            return
        }
        textContinuation = nil
        guard !request.continues else {
            // Multi-PDU text requests carry only negotiation we do not need; refuse them.
            reject(.commandNotSupported, header: request.pdu.header)
            return
        }
        var answer = TextRequestAnswer.answer(text: Array(request.text.readableBytesView), session: session,
                                              catalog: server.catalog, portals: portalAddresses())
        if answer.readableBytes <= limit {
            send(.textResponse(initiatorTaskTag: request.initiatorTaskTag, targetTransferTag: 0xFFFF_FFFF,
                               final: true, continues: false, data: answer))
            return
        }
        let tag = takeTargetTransferTag()
        let first = answer.readSlice(length: limit)!
        textContinuation = TextContinuation(initiatorTaskTag: request.initiatorTaskTag, targetTransferTag: tag,
                                            remaining: answer)
        send(.textResponse(initiatorTaskTag: request.initiatorTaskTag, targetTransferTag: tag, final: false,
                           continues: true, data: first))
    }

    /// This portal as `address:port`, the way SendTargets reports it.
    func portalAddresses() -> [String] {
        guard let address = context?.channel.localAddress, let ip = address.ipAddress, let port = address.port else {
            return ["\(server.configuration.host):\(server.configuration.port)"]
        }
        return [address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"]
    }
}
