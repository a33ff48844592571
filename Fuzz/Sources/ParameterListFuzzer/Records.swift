// The input format of ParameterListFuzzer (see ParameterListFuzzer.swift), and the CDB
// fields it patches and reads.

import BlockEngine

/// One command of an input.
struct Record {
    var nexusIndex: Int
    var eventLoopPath: Bool
    var fixLength: Bool
    var cdb: [UInt8]
    var data: [UInt8]
}

/// Splits an input into records; a truncated record takes what is left.
struct RecordReader {
    let bytes: [UInt8]
    var offset = 0

    mutating func next() -> Record? {
        guard offset + 2 <= bytes.count else { return nil }
        let flags = bytes[offset]
        let cdbLength = Int(bytes[offset + 1]) % 17
        offset += 2
        let cdb = take(cdbLength)
        var dataLength = 0
        if offset + 2 <= bytes.count {
            dataLength = Int(bytes[offset]) << 8 | Int(bytes[offset + 1])
            offset += 2
        }
        let data = take(dataLength)
        return Record(nexusIndex: Int(flags & 0x03), eventLoopPath: flags & 0x04 != 0, fixLength: flags & 0x08 != 0,
                      cdb: cdb, data: data)
    }

    private mutating func take(_ count: Int) -> [UInt8] {
        let end = min(offset + count, bytes.count)
        defer { offset = end }
        return Array(bytes[offset..<end])
    }
}

/// The parameter list length field of the commands whose Data-Out is a parameter list.
enum ParameterLength {
    /// Writes `length` (saturated to the field) into `cdb`'s field, if it has one.
    static func store(_ length: Int, in cdb: inout [UInt8]) {
        guard let opcode = cdb.first else { return }
        switch opcode {
        case 0x15 where cdb.count >= 5:                        // MODE SELECT(6)
            cdb[4] = UInt8(min(length, 0xFF))
        case 0x42 where cdb.count >= 9, 0x55 where cdb.count >= 9:  // UNMAP, MODE SELECT(10)
            let value = min(length, 0xFFFF)
            cdb[7] = UInt8(value >> 8)
            cdb[8] = UInt8(value & 0xFF)
        case 0x5F where cdb.count >= 9:                        // PERSISTENT RESERVE OUT
            for index in 0..<4 { cdb[5 + index] = UInt8(truncatingIfNeeded: length >> (24 - 8 * index)) }
        default:
            break
        }
    }
}

/// Reads the blocks a COMPARE AND WRITE names, straight from the volume (no SCSI side
/// effects), to check that a miscompare leaves them alone.
enum CompareAndWriteCheck {
    static func blocks(_ cdb: [UInt8], volume: Volume) async -> [UInt8]? {
        guard cdb.count >= 16, cdb[0] == 0x89, (1...4).contains(cdb[13]) else { return nil }
        let lba = cdb[2...9].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let blockCount = UInt64(cdb[13])
        guard lba < volume.blockCount, blockCount <= volume.blockCount - lba else { return nil }
        return try? await volume.read(at: lba, blockCount: Int(blockCount))
    }
}
