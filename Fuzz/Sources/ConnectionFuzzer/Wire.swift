// The initiator side of the connection fuzzer's wire: PDUs built from BHS bytes, and the
// target's output split back into PDUs (no digests: the fuzzer's login turns them off).

/// One PDU as bytes: a 48-byte header and a data segment.
struct FuzzPDU {
    var bhs = [UInt8](repeating: 0, count: 48)
    var data: [UInt8] = []

    init(opcode: UInt8, immediate: Bool = false, flags: UInt8 = 0x80) {
        bhs[0] = opcode | (immediate ? 0x40 : 0)
        bhs[1] = flags
    }

    mutating func set32(_ value: UInt32, at offset: Int) {
        for index in 0..<4 { bhs[offset + index] = UInt8(truncatingIfNeeded: value >> (24 - 8 * index)) }
    }

    mutating func set64(_ value: UInt64, at offset: Int) {
        for index in 0..<8 { bhs[offset + index] = UInt8(truncatingIfNeeded: value >> (56 - 8 * index)) }
    }

    func u32(_ offset: Int) -> UInt32 { bhs[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) } }

    /// Header with the data segment length filled in, data, padding.
    var encoded: [UInt8] {
        var header = bhs
        header[5] = UInt8(truncatingIfNeeded: data.count >> 16)
        header[6] = UInt8(truncatingIfNeeded: data.count >> 8)
        header[7] = UInt8(truncatingIfNeeded: data.count)
        return header + data + [UInt8](repeating: 0, count: (4 - data.count % 4) % 4)
    }
}

/// Splits the target's output into PDUs.
struct OutputParser {
    private var pending: [UInt8] = []

    mutating func append(_ bytes: [UInt8]) { pending += bytes }

    /// The next whole PDU, or nil when more bytes are needed.
    mutating func next() -> FuzzPDU? {
        guard pending.count >= 48 else { return nil }
        let ahsBytes = Int(pending[4]) * 4
        let dataBytes = Int(pending[5]) << 16 | Int(pending[6]) << 8 | Int(pending[7])
        let total = 48 + ahsBytes + dataBytes + (4 - dataBytes % 4) % 4
        guard pending.count >= total else { return nil }
        var pdu = FuzzPDU(opcode: 0)
        pdu.bhs = Array(pending[0..<48])
        pdu.data = Array(pending[(48 + ahsBytes)..<(48 + ahsBytes + dataBytes)])
        pending.removeFirst(total)
        return pdu
    }
}

/// Key=value text, NUL-separated (login and text requests).
func loginText(_ pairs: [(String, String)]) -> [UInt8] {
    pairs.flatMap { Array("\($0.0)=\($0.1)".utf8) + [0] }
}
