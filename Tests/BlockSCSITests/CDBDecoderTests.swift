// The pure CDB decoder: field extraction, validation codes, totality on garbage, and agreement
// with the command catalog.

import NIOCore
import Testing
@testable import BlockSCSI

@Suite struct CDBDecoderTests {
    @Test func decodesBlockCommandsOfEverySize() {
        #expect(CDBDecoder.decode(bytes: CDB.read6(lba: 0x1F_FFFF, blocks: 0))
                == .success(.read(BlockExtent(lba: 0x1F_FFFF, blockCount: 256), fua: false)))
        #expect(CDBDecoder.decode(bytes: CDB.write6(lba: 7, blocks: 3))
                == .success(.write(BlockExtent(lba: 7, blockCount: 3), fua: false)))
        #expect(CDBDecoder.decode(bytes: CDB.read10(lba: 0xFFFF_FFFF, blocks: 0, flags: 0x18))
                == .success(.read(BlockExtent(lba: 0xFFFF_FFFF, blockCount: 0), fua: true)))
        #expect(CDBDecoder.decode(bytes: CDB.twelve(0xAA, lba: 5, blocks: 0x0102_0304))
                == .success(.write(BlockExtent(lba: 5, blockCount: 0x0102_0304), fua: false)))
        #expect(CDBDecoder.decode(bytes: CDB.write16(lba: 0x0102_0304_0506_0708, blocks: 9, flags: 0x08))
                == .success(.write(BlockExtent(lba: 0x0102_0304_0506_0708, blockCount: 9), fua: true)))
        #expect(CDBDecoder.decode(bytes: CDB.compareAndWrite(lba: 3, blocks: 2))
                == .success(.compareAndWrite(BlockExtent(lba: 3, blockCount: 2), fua: false)))
        #expect(CDBDecoder.decode(bytes: CDB.writeSame16(lba: 1, blocks: 0, unmap: true, ndob: true))
                == .success(.writeSame(WriteSameCommand(extent: BlockExtent(lba: 1, blockCount: 0), unmap: true,
                                                        noDataOutBuffer: true))))
        #expect(CDBDecoder.decode(bytes: CDB.ten(0x2F, lba: 1, blocks: 2, flags: 0x06))
                == .success(.verify(BlockExtent(lba: 1, blockCount: 2), byteCheck: .compareOneBlock)))
    }

    @Test func protectionFieldsAndReservedValuesAreInvalidFields() {
        for opcode: UInt8 in [0x28, 0x2A, 0x2E, 0x2F, 0x41] {
            for protect: UInt8 in 1...7 {
                expectInvalidField(CDB.ten(opcode, lba: 0, blocks: 1, flags: protect << 5), byte: 1)
            }
        }
        expectInvalidField(CDB.ten(0x2F, lba: 0, blocks: 1, flags: 0x04), byte: 1)     // VERIFY BYTCHK 10b
        expectInvalidField(CDB.ten(0x2E, lba: 0, blocks: 1, flags: 0x06), byte: 1)     // WRITE AND VERIFY BYTCHK 11b
        expectInvalidField(CDB.writeSame10(lba: 0, blocks: 1, anchor: true), byte: 1)  // ANCHOR
        expectInvalidField([0x42, 0x01, 0, 0, 0, 0, 0, 0, 24, 0], byte: 1)             // UNMAP ANCHOR
        expectInvalidField(CDB.inquiry(evpd: false, page: 0x80), byte: 2)              // page without EVPD
        expectInvalidField([0x03, 0x01, 0, 0, 18, 0], byte: 1)                         // REQUEST SENSE DESC
        expectInvalidField([0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0], byte: 2)                 // READ CAPACITY LBA, PMI 0
        expectInvalidField([0x00, 0, 0, 0, 0, 0x04], byte: 5)                          // NACA
        expectInvalidField(CDB.persistentReserveIn(4), byte: 1)                        // unknown PR IN action
        expectInvalidField(CDB.persistentReserveOut(7), byte: 1)                       // REGISTER AND MOVE
    }

    @Test func unknownOpcodesAndServiceActionsAreInvalidOpcodes() {
        for cdb: [UInt8] in [[0x04, 0, 0, 0, 0, 0], [0x7F] + [UInt8](repeating: 0, count: 31),
                             [0x9E, 0x11] + [UInt8](repeating: 0, count: 14), [0xA3, 0x05] + [UInt8](repeating: 0, count: 10),
                             [0xC0] + [UInt8](repeating: 0, count: 15)] {
            guard case .failure(let failure) = CDBDecoder.decode(bytes: cdb) else {
                Issue.record("\(cdb) decoded")
                continue
            }
            #expect(failure.sense.code == .invalidOpcode)
        }
    }

    @Test func catalogListsExactlyTheDecodableOpcodes() {
        for opcode in 0...255 {
            let cdb = [UInt8(opcode)] + [UInt8](repeating: 0, count: 31)
            var decodable = false
            if case .success = CDBDecoder.decode(bytes: cdb) { decodable = true }
            if case .failure(let failure) = CDBDecoder.decode(bytes: cdb), failure.sense.code != .invalidOpcode {
                decodable = true
            }
            // SERVICE ACTION IN and MAINTENANCE IN with service action 0 are unknown actions.
            if opcode == 0x9E || opcode == 0xA3 { decodable = true }
            #expect(CommandCatalog.supportedOpcodes.contains(UInt8(opcode)) == decodable, "opcode \(opcode)")
        }
        for entry in CommandCatalog.all {
            #expect(entry.usageData.first == entry.opcode)
            #expect(CDBDecoder.cdbLength(opcode: entry.opcode) == entry.cdbLength)
            if let action = entry.serviceAction { #expect(UInt16(entry.usageData[1] & 0x1F) == action) }
        }
    }

    @Test func dataOutLengthFollowsTheCDB() {
        func length(_ cdb: [UInt8]) -> Int? {
            SCSICommandInfo.dataOutLength(cdb: ByteBuffer(bytes: cdb), blockSizeBytes: 4096)
        }
        #expect(length(CDB.write6(lba: 0, blocks: 0)) == 256 * 4096)
        #expect(length(CDB.write10(lba: 0, blocks: 3)) == 3 * 4096)
        #expect(length(CDB.write16(lba: 0, blocks: 0xFFFF_FFFF)) == 0xFFFF_FFFF * 4096)
        #expect(length(CDB.read10(lba: 0, blocks: 3)) == 0)
        #expect(length(CDB.ten(0x2F, lba: 0, blocks: 5, flags: 0x02)) == 5 * 4096)
        #expect(length(CDB.ten(0x2F, lba: 0, blocks: 5, flags: 0x06)) == 4096)
        #expect(length(CDB.ten(0x2F, lba: 0, blocks: 5)) == 0)
        #expect(length(CDB.compareAndWrite(lba: 0, blocks: 2)) == 4 * 4096)
        #expect(length(CDB.writeSame16(lba: 0, blocks: 9, ndob: true)) == 0)
        #expect(length(CDB.writeSame10(lba: 0, blocks: 9)) == 4096)
        #expect(length(CDB.unmap(parameterListLength: 40)) == 40)
        #expect(length(CDB.persistentReserveOut(0)) == 24)
        #expect(length(CDB.modeSelect6(length: 24)) == 24)
        #expect(length([0x2A, 0, 0]) == nil)
        #expect(length([0x04, 0, 0, 0, 0, 0]) == nil)
        #expect(length([]) == nil)
    }

    /// Random and mutated CDBs never trap and always decode to a command or a sense code.
    @Test func garbageNeverTraps() {
        var generator = SeededGenerator(seed: 0x5C51_0000_0000_0001)
        let seeds: [[UInt8]] = CommandCatalog.all.map { $0.usageData }
        var failures = 0
        for round in 0..<200_000 {
            var cdb: [UInt8]
            if round % 2 == 0, let seed = seeds.randomElement(using: &generator) {
                cdb = seed.map { $0 & UInt8.random(in: 0...255, using: &generator) }
                if Bool.random(using: &generator) { cdb = Array(cdb.prefix(Int.random(in: 0...cdb.count, using: &generator))) }
            } else {
                cdb = (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            }
            switch CDBDecoder.decode(bytes: cdb) {
            case .success: break
            case .failure(let failure):
                failures += 1
                #expect(failure.sense.code.key == .illegalRequest)
            }
            _ = SCSICommandInfo.dataOutLength(cdb: ByteBuffer(bytes: cdb), blockSizeBytes: 512)
        }
        #expect(failures > 0)
    }

    private func expectInvalidField(_ cdb: [UInt8], byte: UInt16, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .failure(let failure) = CDBDecoder.decode(bytes: cdb) else {
            Issue.record("\(cdb) decoded", sourceLocation: sourceLocation)
            return
        }
        #expect(failure.sense.code == .invalidFieldInCDB, sourceLocation: sourceLocation)
        #expect(failure.sense.fieldPointer?.inCDB == true, sourceLocation: sourceLocation)
        #expect(failure.sense.fieldPointer?.byteOffset == byte, sourceLocation: sourceLocation)
    }
}
