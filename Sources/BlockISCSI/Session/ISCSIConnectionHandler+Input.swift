// Inbound flow control. The connection frames one PDU at a time from the bytes it has read
// and stops (framing, executing and reading the socket) while it holds too much for the
// peer: the channel's outbound buffer is over its high watermark (the initiator does not
// read its socket), or the read data of executing commands reaches
// `maxDataInBytesPerConnection`. It goes on when both fall back. Whatever a peer sends, a
// connection therefore holds at most: the watermark, the read budget plus one command, the
// write data that actually arrived (R2Ts are bounded by `maxSolicitedBytesPerConnection`,
// unsolicited data by FirstBurstLength per command), one PDU being framed and one socket
// read. docs/ISCSI.md adds these up.
//
// Invariants:
// - Nothing is framed while input is held; a `read()` from the pipeline is held, not lost,
//   and issued once input may go on.
// - A PDU that stays incomplete for `pduTimeoutMs` closes the connection (a trickling peer
//   cannot pin a connection slot and its buffer forever).

import NIOCore

/// What the input side of a connection is doing.
struct InboundState {
    /// A `read()` came down the pipeline while input was held.
    var readHeld = false
    /// The processing loop is running (completions inside it must not re-enter it).
    var processing = false
    /// The loop stopped because input is held, with bytes possibly left to frame.
    var stalled = false
    /// When the current partial PDU started waiting for more bytes; nil when none waits.
    var partialSinceNs: UInt64?
    /// A login is waiting for the session it reinstates to end: take nothing meanwhile.
    var awaitingReinstatement = false
}

extension ISCSIConnectionHandler {
    /// True while the connection must not take more input.
    var inputHeld: Bool {
        guard let context else { return true }
        return inboundState.awaitingReinstatement || !context.channel.isWritable
            || dataInReservedBytes >= server.configuration.maxDataInBytesPerConnection
    }

    /// Frames and handles the PDUs already read, one by one, as long as input may go on.
    func processInbound() {
        // A nested call (a completion or a writability change during this loop) has nothing
        // to add: the running loop checks `inputHeld` again before every PDU.
        guard !inboundState.processing else { return }
        inboundState.processing = true
        defer { inboundState.processing = false }
        // Bounded: each turn consumes one whole PDU of the bytes already read, or stops.
        while true {
            if case .closed = phase { return }
            if inputHeld {
                // Unflushed answers count against the watermark too: without this flush a
                // connection held by its own queued answers would wait forever. The flush
                // may make the channel writable again at once, so look again after it.
                flushIfNeeded()
                if inputHeld {
                    inboundState.stalled = true
                    return
                }
            }
            let next: InboundPDU?
            do {
                next = try decoder.decode(buffer: &inbound)
            } catch {
                framingFailed(error)
                return
            }
            guard let pdu = next else { break }
            inboundState.partialSinceNs = nil
            receive(pdu)
        }
        inboundState.stalled = false
        if inboundState.readHeld {
            inboundState.readHeld = false
            context?.read()
        }
        if inbound.readableBytes == 0 {
            inbound = ByteBuffer()  // let go of the socket read's storage
        } else {
            if inboundState.partialSinceNs == nil { inboundState.partialSinceNs = nowNs() }
            makeRoomForPartialPDU()
        }
    }

    /// Moves a partial PDU to the front of a buffer that holds the whole PDU. Appending the
    /// next socket reads where it is would keep the PDUs framed before it and grow the
    /// buffer by reallocation while a stream of large PDUs never leaves it empty. The move
    /// copies at most one socket read per PDU, and a buffer large enough is reused (its
    /// framed PDUs were handled and let go of it), so a stream of Data-Out PDUs runs in one
    /// buffer instead of a new allocation each.
    private func makeRoomForPartialPDU() {
        let neededBytes = decoder.framedLengthBytes(of: inbound) ?? BasicHeaderSegment.sizeBytes
        guard inbound.readerIndex > 0 || inbound.capacity < neededBytes else { return }
        if inbound.capacity >= neededBytes {
            inbound.discardReadBytes()  // copies the storage only if something still shares it
            return
        }
        var fresh = allocator.buffer(capacity: max(neededBytes, inbound.readableBytes))
        fresh.writeBuffer(&inbound)
        inbound = fresh
    }

    /// Goes on with held input once nothing holds it any more (writability came back, read
    /// data went out). Cheap when input was never held.
    func resumeInputIfPossible() {
        guard inboundState.stalled || inboundState.readHeld, !inputHeld else { return }
        processInbound()
        flushIfNeeded()
    }

    func read(context: ChannelHandlerContext) {
        if inputHeld {
            inboundState.readHeld = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { resumeInputIfPossible() }
        context.fireChannelWritabilityChanged()
    }

    /// Closes a connection whose partial PDU has waited too long for its remaining bytes.
    func checkPartialPDU(nowNs: UInt64) {
        guard let since = inboundState.partialSinceNs else { return }
        let timeoutNs = UInt64(server.configuration.pduTimeoutMs) * 1_000_000
        if nowNs &- since >= timeoutNs {
            logger.warning("a PDU stayed incomplete too long, closing",
                           metadata: ["buffered_bytes": "\(inbound.readableBytes)"])
            close()
        }
    }

    /// The byte stream cannot be framed any further: answer what can be answered and close.
    private func framingFailed(_ error: Error) {
        switch error {
        case let ISCSIFramingError.dataSegmentTooLong(header, limitBytes):
            // Refused from its header: the segment is never buffered. The task it belongs to
            // ends with the connection.
            logger.warning("data segment beyond MaxRecvDataSegmentLength, closing",
                           metadata: ["limit_bytes": "\(limitBytes)", "opcode": "\(header.opcodeValue)"])
            sendFinal(.reject(reason: .protocolError, rejectedHeader: header))
        default:
            // A header digest mismatch: no later length in the stream can be trusted.
            logger.warning("framing error, closing", metadata: ["error": "\(error)"])
            close()
        }
    }
}
