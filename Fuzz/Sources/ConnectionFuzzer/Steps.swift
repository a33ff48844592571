// The connection fuzzer's input language: each record becomes one thing an initiator (a
// sloppy or hostile one) can do to a connection.

/// One record: an 8-byte head and its payload.
struct Step {
    var kind: UInt8
    var flags: UInt8
    var tag: UInt8
    var cmdSNMode: UInt8
    var a: UInt8
    var b: UInt8
    var c: UInt8
    var payload: [UInt8]

    /// The kinds, by `kind % count`.
    enum Kind: Int, CaseIterable {
        case read, write, dataOut, nopOut, taskManagement, text, logout, otherCommand, rawHeader, unknownOpcode
        case partialPDU, toggleWritable
    }

    var which: Kind { Kind.allCases[Int(kind) % Kind.allCases.count] }
    /// Task tags from a small set, so tags collide and get reused.
    var initiatorTaskTag: UInt32 { tag == 0xFF ? 0xFFFF_FFFF : 0x100 + UInt32(tag % 8) }
    var immediate: Bool { flags & 0x40 != 0 }
    var final: Bool { flags & 0x80 != 0 }
}

struct StepReader {
    let bytes: [UInt8]
    var offset = 0

    /// The next record; nil once fewer than 8 bytes are left. Each call consumes at least 8.
    mutating func next() -> Step? {
        guard offset + 8 <= bytes.count else { return nil }
        let head = bytes[offset..<offset + 8].map { $0 }
        offset += 8
        let length = min(Int(head[4]) * 32, bytes.count - offset)
        let payload = Array(bytes[offset..<offset + length])
        offset += length
        return Step(kind: head[0], flags: head[1], tag: head[2], cmdSNMode: head[3], a: head[5], b: head[6], c: head[7],
                    payload: payload)
    }
}

extension FuzzSession {
    /// The CmdSN a step carries: mostly the expected one (advanced for non-immediate PDUs),
    /// sometimes off by a little, into a gap or outside the window.
    func takeCmdSN(_ step: Step, immediate: Bool) -> UInt32 {
        guard step.cmdSNMode >= 224 else {
            defer { if !immediate { cmdSN &+= 1 } }
            return cmdSN
        }
        return cmdSN &+ UInt32(bitPattern: Int32(step.cmdSNMode) - 232)
    }

    func command(_ step: Step, cdb: [UInt8], read: Bool, write: Bool, expectedBytes: Int) -> FuzzPDU {
        var pdu = FuzzPDU(opcode: 0x01, immediate: step.immediate,
                          flags: (step.final || !write ? 0x80 : 0) | (read ? 0x40 : 0) | (write ? 0x20 : 0) | 0x01)
        pdu.set32(step.initiatorTaskTag, at: 16)
        pdu.set32(UInt32(expectedBytes), at: 20)
        pdu.set32(takeCmdSN(step, immediate: step.immediate), at: 24)
        pdu.set32(expStatSN, at: 28)
        for (index, byte) in cdb.prefix(16).enumerated() { pdu.bhs[32 + index] = byte }
        return pdu
    }

    func perform(_ step: Step) async {
        let blockBytes = 512
        switch step.which {
        case .read, .write:
            let write = step.which == .write
            let blocks = Int(step.b % 33)
            let expected = step.c == 0 ? blocks * blockBytes : Int(step.c) * 256
            let cdb: [UInt8] = [write ? 0x2A : 0x28, 0, 0, 0, 0, step.a, 0, 0, UInt8(blocks), 0]
            var pdu = command(step, cdb: cdb, read: !write, write: write, expectedBytes: expected)
            if write { pdu.data = step.payload }
            await send(pdu.encoded)
        case .dataOut:
            await send(dataOut(step).encoded)
        case .nopOut:
            var pdu = FuzzPDU(opcode: 0x00, immediate: step.immediate)
            pdu.set32(step.initiatorTaskTag, at: 16)
            pdu.set32(0xFFFF_FFFF, at: 20)
            pdu.set32(takeCmdSN(step, immediate: step.immediate), at: 24)
            pdu.set32(expStatSN, at: 28)
            pdu.data = step.payload
            await send(pdu.encoded)
        case .taskManagement:
            var pdu = FuzzPDU(opcode: 0x02, immediate: step.immediate, flags: 0x80 | (step.a % 10))
            pdu.set32(step.initiatorTaskTag, at: 16)
            pdu.set32(0x100 + UInt32(step.b % 8), at: 20)
            let own = takeCmdSN(step, immediate: step.immediate)
            pdu.set32(own, at: 24)
            pdu.set32(expStatSN, at: 28)
            pdu.set32(own &- UInt32(step.c % 8), at: 32)
            await send(pdu.encoded)
        case .text:
            var pdu = FuzzPDU(opcode: 0x04, immediate: step.immediate, flags: step.final ? 0x80 : 0x40)
            pdu.set32(step.initiatorTaskTag, at: 16)
            pdu.set32(step.a % 2 == 0 ? 0xFFFF_FFFF : textTag, at: 20)
            pdu.set32(takeCmdSN(step, immediate: step.immediate), at: 24)
            pdu.set32(expStatSN, at: 28)
            pdu.data = step.b % 2 == 0 ? loginText([("SendTargets", "All")]) : step.payload
            await send(pdu.encoded)
        case .logout:
            var pdu = FuzzPDU(opcode: 0x06, immediate: step.immediate, flags: 0x80 | (step.a % 4))
            pdu.set32(step.initiatorTaskTag, at: 16)
            pdu.set32(takeCmdSN(step, immediate: step.immediate), at: 24)
            pdu.set32(expStatSN, at: 28)
            await send(pdu.encoded)
        case .otherCommand:
            let cdb = Array(step.payload.prefix(16)) + [UInt8](repeating: 0, count: max(0, 16 - step.payload.count))
            var pdu = command(step, cdb: cdb, read: step.flags & 0x01 != 0, write: step.flags & 0x02 != 0,
                              expectedBytes: Int(step.c) * blockBytes)
            if step.flags & 0x02 != 0 { pdu.data = Array(step.payload.dropFirst(16)) }
            await send(pdu.encoded)
        case .rawHeader:
            var pdu = FuzzPDU(opcode: 0)
            let header = Array(step.payload.prefix(48))
            pdu.bhs.replaceSubrange(0..<header.count, with: header)
            pdu.bhs[4] = 0  // no AHS: the payload is the data
            pdu.data = Array(step.payload.dropFirst(48))
            var bytes = pdu.encoded
            if step.c == 0xFF { bytes[5] = 0x10 }  // declare a 1 MiB segment that never comes
            await send(bytes)
        case .unknownOpcode:
            var pdu = FuzzPDU(opcode: [0x10, 0x07, 0x0F, 0x1F, 0x3C, 0x21][Int(step.a) % 6], immediate: step.immediate)
            pdu.set32(step.initiatorTaskTag, at: 16)
            pdu.set32(takeCmdSN(step, immediate: step.immediate), at: 24)
            await send(pdu.encoded)
        case .partialPDU:
            var pdu = FuzzPDU(opcode: 0x00, immediate: true)
            pdu.data = step.payload
            await send(Array(pdu.encoded.prefix(Int(step.a) % (48 + step.payload.count))))
        case .toggleWritable:
            channel.isWritable.toggle()
            let channel = self.channel
            try? await channel.testingEventLoop.executeInContext { channel.pipeline.fireChannelWritabilityChanged() }
        }
    }

    /// A Data-Out: for a known R2T (in order, or off by the step's numbers) or unsolicited.
    private func dataOut(_ step: Step) -> FuzzPDU {
        var pdu = FuzzPDU(opcode: 0x05, flags: step.final ? 0x80 : 0)
        pdu.set32(expStatSN, at: 28)
        pdu.data = step.payload
        if r2ts.isEmpty || step.a == 0xFF {
            let itt = step.initiatorTaskTag
            let dataSN = unsolicitedDataSN[itt, default: 0]
            unsolicitedDataSN[itt] = dataSN &+ 1
            pdu.set32(itt, at: 16)
            pdu.set32(0xFFFF_FFFF, at: 20)
            pdu.set32(step.c == 0 ? dataSN : UInt32(step.c), at: 36)
            pdu.set32(UInt32(step.b) * 512, at: 40)
            return pdu
        }
        let index = Int(step.a) % r2ts.count
        var r2t = r2ts[index]
        let inOrder = step.b == 0
        if inOrder { pdu.data = Array(pdu.data.prefix(r2t.length - r2t.sent)) }
        pdu.set32(r2t.itt, at: 16)
        pdu.set32(r2t.ttt, at: 20)
        pdu.set32(step.c == 0 ? r2t.dataSN : UInt32(step.c), at: 36)
        pdu.set32(UInt32(r2t.offset + (inOrder ? r2t.sent : Int(step.b) * 64)), at: 40)
        if inOrder && r2t.sent + pdu.data.count == r2t.length { pdu.bhs[1] = 0x80 }
        r2t.dataSN &+= 1
        r2t.sent += pdu.data.count
        r2ts[index] = r2t
        return pdu
    }
}
