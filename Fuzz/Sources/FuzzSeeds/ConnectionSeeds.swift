// ConnectionFuzzer seeds: sessions an initiator could run after login, in the fuzzer's step
// language (Fuzz/Sources/ConnectionFuzzer/Steps.swift): an 8-byte head [kind, flags, tag,
// cmdSN, length, a, b, c] and `length * 32` payload bytes.

enum ConnectionSeeds {
    /// Step kinds, as the fuzzer numbers them.
    enum Kind: UInt8 {
        case read = 0, write, dataOut, nopOut, taskManagement, text, logout, otherCommand, rawHeader, unknownOpcode
        case partialPDU, toggleWritable
    }

    static let final: UInt8 = 0x80
    static let immediate: UInt8 = 0x40

    /// One step; the payload is padded with zeros to whole 32-byte units.
    static func step(_ kind: Kind, flags: UInt8 = final, tag: UInt8 = 0, cmdSN: UInt8 = 0, a: UInt8 = 0, b: UInt8 = 0,
                     c: UInt8 = 0, payload: [UInt8] = []) -> [UInt8] {
        let units = (payload.count + 31) / 32
        precondition(units <= 255, "payload too long for one step")
        let body = payload + [UInt8](repeating: 0, count: units * 32 - payload.count)
        return [kind.rawValue, flags, tag, cmdSN, UInt8(units), a, b, c] + body
    }

    static let block = [UInt8](repeating: 0xA5, count: 512)

    static let all: [Seed] = [
        Seed("read-one-block", step(.read, a: 3, b: 1)),
        Seed("read-residual", step(.read, a: 0, b: 4, c: 3)),
        Seed("write-immediate", step(.write, a: 8, b: 1, payload: block) + step(.read, tag: 1, a: 8, b: 1)),
        Seed("write-r2t", step(.write, flags: 0, a: 16, b: 16) + step(.dataOut, payload: block + block)
            + step(.dataOut, payload: [UInt8](repeating: 0x5A, count: 2048))),
        Seed("write-unsolicited", step(.write, flags: 0, a: 20, b: 4, payload: block)
            + step(.dataOut, a: 0xFF, b: 1, payload: block)),
        Seed("writes-queued", (0..<6).flatMap { step(.write, flags: 0, tag: UInt8($0), a: UInt8(32 * $0), b: 32) }
            + step(.dataOut, payload: [UInt8](repeating: 1, count: 2048))),
        Seed("immediate-flood", (0..<8).flatMap { step(.write, flags: immediate, tag: UInt8($0), a: UInt8($0), b: 32) }),
        Seed("abort-collecting", step(.write, flags: 0, a: 40, b: 8) + step(.taskManagement, flags: immediate, tag: 5, a: 1)),
        Seed("abort-task-set", step(.read, a: 1, b: 8) + step(.write, flags: 0, tag: 1, b: 8)
            + step(.taskManagement, flags: immediate, tag: 6, a: 2)),
        Seed("lun-reset", step(.write, flags: 0, a: 50, b: 4) + step(.taskManagement, flags: immediate, tag: 6, a: 5)),
        Seed("nop-ping", step(.nopOut, tag: 2, payload: Array(0..<64)) + step(.nopOut, flags: immediate, tag: 3)),
        Seed("cmdsn-gap", step(.nopOut, tag: 2, cmdSN: 233) + step(.read, tag: 1, a: 5, b: 1)
            + step(.nopOut, tag: 3)),
        Seed("send-targets", step(.text, tag: 4)),
        Seed("logout", step(.read, a: 2, b: 2) + step(.logout, tag: 7)),
        Seed("not-writable", step(.toggleWritable) + step(.read, a: 1, b: 32) + step(.read, tag: 1, a: 2, b: 32)
            + step(.nopOut, flags: immediate, tag: 2, payload: block) + step(.toggleWritable)),
        Seed("inquiry", step(.otherCommand, flags: final | 0x01, c: 1, payload: [0x12, 0, 0, 0, 0xFF, 0])),
        Seed("unknown-opcode", step(.unknownOpcode, a: 2) + step(.nopOut, tag: 1)),
        Seed("half-pdu", step(.read, a: 1, b: 1) + step(.partialPDU, a: 20, payload: block)),
        Seed("oversized-header", step(.rawHeader, c: 0xFF, payload: [0x00, 0xC0] + [UInt8](repeating: 0, count: 46))),
    ]
}
