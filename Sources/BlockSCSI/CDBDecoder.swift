// CDB decoding: bytes from the wire to a validated `SCSICommand`, or the exact CHECK CONDITION
// the CDB deserves.
//
// Invariants:
// - `decode` is total: any byte sequence (empty, truncated, random) yields a result and never
//   traps. Every read goes through `CDBBytes`, which answers 0 past the end, and the length of
//   the opcode's CDB is checked before its fields are read.
// - Decoding is pure (no volume, no state), so it can be fuzzed on its own.
// - Unknown opcodes and service actions give ILLEGAL REQUEST 20/00; fields with values this
//   logical unit does not support give 24/00 with a field pointer. Reserved bits are ignored
//   (SPC-4 4.2.3 allows either), except where a test suite or the standard demands a check.

import NIOCore

/// Why a CDB was refused.
public struct CDBFailure: Error, Sendable, Equatable {
    public var sense: SenseData

    public init(_ sense: SenseData) { self.sense = sense }

    static let invalidOpcode = CDBFailure(SenseData(.invalidOpcode,
                                                    fieldPointer: SenseFieldPointer(inCDB: true, byteOffset: 0)))

    static func invalidField(byte: Int, bit: UInt8? = nil) -> CDBFailure {
        CDBFailure(SenseData(.invalidFieldInCDB,
                             fieldPointer: SenseFieldPointer(inCDB: true, byteOffset: UInt16(byte), bitIndex: bit)))
    }

    /// An unsupported service action of a command that has them (byte 1).
    static let invalidServiceAction = CDBFailure(SenseData(.invalidOpcode,
                                                           fieldPointer: SenseFieldPointer(inCDB: true, byteOffset: 1)))
}

/// Turns CDB bytes into commands.
public enum CDBDecoder {
    /// Decodes the readable bytes of `cdb`. Never traps.
    public static func decode(cdb: ByteBuffer) -> Result<SCSICommand, CDBFailure> {
        cdb.withUnsafeReadableBytes { raw in decode(CDBBytes(raw: raw)) }
    }

    /// Decodes `bytes`. Never traps.
    public static func decode(bytes: [UInt8]) -> Result<SCSICommand, CDBFailure> {
        bytes.withUnsafeBytes { raw in decode(CDBBytes(raw: raw)) }
    }

    /// The length of the CDB for `opcode` from its group code (SAM-5 5.2), or nil for the
    /// reserved and vendor-specific groups.
    public static func cdbLength(opcode: UInt8) -> Int? {
        switch opcode >> 5 {
        case 0: return 6
        case 1, 2: return 10
        case 4: return 16
        case 5: return 12
        default: return nil
        }
    }

    static func decode(_ cdb: CDBBytes) -> Result<SCSICommand, CDBFailure> {
        do throws(CDBFailure) {
            return .success(try decodeOrThrow(cdb))
        } catch {
            return .failure(error)
        }
    }

    private static func decodeOrThrow(_ cdb: CDBBytes) throws(CDBFailure) -> SCSICommand {
        guard cdb.count > 0 else { throw .invalidField(byte: 0) }
        let opcode = cdb[0]
        guard let length = cdbLength(opcode: opcode) else { throw .invalidOpcode }
        guard cdb.count >= length else { throw .invalidField(byte: cdb.count - 1) }
        // NACA and LINK (SAM-5 5.2): ACA and linked commands are not supported.
        let control = cdb[length - 1]
        if control & 0x04 != 0 { throw .invalidField(byte: length - 1, bit: 2) }
        if control & 0x01 != 0 { throw .invalidField(byte: length - 1, bit: 0) }

        switch opcode {
        case 0x00: return .testUnitReady
        case 0x03:
            // DESC: only fixed-format sense is produced.
            if cdb[1] & 0x01 != 0 { throw .invalidField(byte: 1, bit: 0) }
            return .requestSense(allocationLength: Int(cdb[4]))
        case 0x08, 0x0A:
            let lba = UInt64(cdb[1] & 0x1F) << 16 | UInt64(cdb.u16(2))
            let count = cdb[4] == 0 ? 256 : UInt64(cdb[4])
            let extent = BlockExtent(lba: lba, blockCount: count)
            return opcode == 0x08 ? .read(extent, fua: false) : .write(extent, fua: false)
        case 0x12: return try inquiry(cdb)
        case 0x15:
            return .modeSelect(ModeSelectCommand(tenByte: false, pageFormat: cdb[1] & 0x10 != 0,
                                                 savePages: cdb[1] & 0x01 != 0, parameterListLength: Int(cdb[4])))
        case 0x16, 0x17:
            // Third-party and extent reservations are obsolete and not supported.
            if cdb[1] & 0x1F != 0 { throw .invalidField(byte: 1) }
            return opcode == 0x16 ? .reserve : .release
        case 0x1A:
            return .modeSense(try modeSense(cdb, tenByte: false, allocationLength: Int(cdb[4])))
        case 0x1B:
            // Power conditions are accepted and have no effect; START and LOEJ only count
            // with POWER CONDITION 0 (SBC-4 5.25).
            let powerCondition = cdb[4] >> 4
            return .startStopUnit(start: powerCondition != 0 || cdb[4] & 0x01 != 0,
                                  loadEject: powerCondition == 0 && cdb[4] & 0x02 != 0,
                                  noFlush: cdb[4] & 0x04 != 0)
        case 0x1E: return .preventAllowMediumRemoval(prevent: cdb[4] & 0x03 != 0)
        case 0x25:
            // PMI is obsolete: with PMI 0 the LBA must be 0 (SBC-4 5.16).
            if cdb[8] & 0x01 == 0 && cdb.u32(2) != 0 { throw .invalidField(byte: 2) }
            return .readCapacity10
        case 0x28, 0x2A, 0x2E, 0x2F, 0x34, 0x35, 0x41:
            return try blockCommand(cdb, opcode: opcode,
                                    extent: BlockExtent(lba: UInt64(cdb.u32(2)), blockCount: UInt64(cdb.u16(7))))
        case 0x37:
            return .readDefectData(tenByte: true, listFormat: cdb[2] & 0x07, allocationLength: Int(cdb.u16(7)))
        case 0x42:
            // ANCHOR: anchored LBAs are not supported (ANC_SUP is 0).
            if cdb[1] & 0x01 != 0 { throw .invalidField(byte: 1, bit: 0) }
            return .unmap(parameterListLength: Int(cdb.u16(7)))
        case 0x55:
            return .modeSelect(ModeSelectCommand(tenByte: true, pageFormat: cdb[1] & 0x10 != 0,
                                                 savePages: cdb[1] & 0x01 != 0, parameterListLength: Int(cdb.u16(7))))
        case 0x56, 0x57:
            // 3RDPTY and LONGID are obsolete and not supported.
            if cdb[1] & 0x12 != 0 { throw .invalidField(byte: 1) }
            return opcode == 0x56 ? .reserve : .release
        case 0x5A:
            return .modeSense(try modeSense(cdb, tenByte: true, allocationLength: Int(cdb.u16(7))))
        case 0x5E:
            guard let action = PersistentReserveInAction(rawValue: cdb[1] & 0x1F) else {
                throw .invalidField(byte: 1, bit: 4)
            }
            return .persistentReserveIn(action, allocationLength: Int(cdb.u16(7)))
        case 0x5F:
            guard let action = PersistentReserveOutAction(rawValue: cdb[1] & 0x1F) else {
                throw .invalidField(byte: 1, bit: 4)
            }
            return .persistentReserveOut(PersistentReserveOutCommand(action: action, scope: cdb[2] >> 4,
                                                                     type: cdb[2] & 0x0F,
                                                                     parameterListLength: Int(cdb.u32(5))))
        case 0x88, 0x8A, 0x8B, 0x8E, 0x8F, 0x90, 0x91, 0x93:
            return try blockCommand(cdb, opcode: opcode,
                                    extent: BlockExtent(lba: cdb.u64(2), blockCount: UInt64(cdb.u32(10))))
        case 0x89:
            try checkProtectionField(cdb)
            return .compareAndWrite(BlockExtent(lba: cdb.u64(2), blockCount: UInt64(cdb[13])),
                                    fua: cdb[1] & 0x08 != 0)
        case 0x9E: return try serviceActionIn(cdb)
        case 0xA0:
            // SELECT REPORT 00h, 01h, 02h: this target has no well-known logical units.
            guard cdb[2] <= 0x02 else { throw .invalidField(byte: 2) }
            return .reportLUNs(selectReport: cdb[2], allocationLength: Int(cdb.u32(6)))
        case 0xA3: return try maintenanceIn(cdb)
        case 0xA8, 0xAA, 0xAE, 0xAF:
            return try blockCommand(cdb, opcode: opcode,
                                    extent: BlockExtent(lba: UInt64(cdb.u32(2)), blockCount: UInt64(cdb.u32(6))))
        case 0xB7:
            return .readDefectData(tenByte: false, listFormat: cdb[1] & 0x07, allocationLength: Int(cdb.u32(6)))
        default:
            throw .invalidOpcode
        }
    }

    private static func inquiry(_ cdb: CDBBytes) throws(CDBFailure) -> SCSICommand {
        if cdb[1] & 0x02 != 0 { throw .invalidField(byte: 1, bit: 1) }  // CMDDT is obsolete
        let vitalProductData = cdb[1] & 0x01 != 0
        // Standard data has no page code (SPC-4 6.6.1).
        if !vitalProductData && cdb[2] != 0 { throw .invalidField(byte: 2) }
        return .inquiry(page: vitalProductData ? cdb[2] : nil, allocationLength: Int(cdb.u16(3)))
    }

    private static func modeSense(_ cdb: CDBBytes, tenByte: Bool, allocationLength: Int) throws(CDBFailure) -> ModeSenseCommand {
        guard let control = ModePageControl(rawValue: cdb[2] >> 6) else { throw .invalidField(byte: 2, bit: 7) }
        return ModeSenseCommand(tenByte: tenByte, disableBlockDescriptors: cdb[1] & 0x08 != 0,
                                longLBAAccepted: tenByte && cdb[1] & 0x10 != 0, pageControl: control,
                                pageCode: cdb[2] & 0x3F, subpageCode: cdb[3], allocationLength: allocationLength)
    }

    /// RDPROTECT, WRPROTECT, VRPROTECT and ORPROTECT share bits 7..5 of byte 1: no protection
    /// information is supported, so they must be 0 (SBC-4 4.22).
    private static func checkProtectionField(_ cdb: CDBBytes) throws(CDBFailure) {
        if cdb[1] & 0xE0 != 0 { throw .invalidField(byte: 1, bit: 7) }
    }

    /// The commands that address a run of blocks, for all CDB sizes.
    private static func blockCommand(_ cdb: CDBBytes, opcode: UInt8, extent: BlockExtent) throws(CDBFailure) -> SCSICommand {
        let fua = cdb[1] & 0x08 != 0
        switch opcode {
        case 0x28, 0xA8, 0x88:
            try checkProtectionField(cdb)
            return .read(extent, fua: fua)
        case 0x2A, 0xAA, 0x8A:
            try checkProtectionField(cdb)
            return .write(extent, fua: fua)
        case 0x8B:
            try checkProtectionField(cdb)
            return .orWrite(extent, fua: fua)
        case 0x2F, 0xAF, 0x8F:
            try checkProtectionField(cdb)
            guard let check = VerifyByteCheck(rawValue: (cdb[1] >> 1) & 0x03) else { throw .invalidField(byte: 1, bit: 2) }
            return .verify(extent, byteCheck: check)
        case 0x2E, 0xAE, 0x8E:
            try checkProtectionField(cdb)
            let check = (cdb[1] >> 1) & 0x03
            guard check <= 1 else { throw .invalidField(byte: 1, bit: 2) }
            return .writeAndVerify(extent, byteCheck: check == 1)
        case 0x34, 0x90: return .prefetch(extent)
        case 0x35, 0x91: return .synchronizeCache(extent)
        case 0x41, 0x93:
            try checkProtectionField(cdb)
            // ANCHOR: anchored LBAs are not supported (ANC_SUP is 0).
            if cdb[1] & 0x10 != 0 { throw .invalidField(byte: 1, bit: 4) }
            return .writeSame(WriteSameCommand(extent: extent, unmap: cdb[1] & 0x08 != 0,
                                               noDataOutBuffer: opcode == 0x93 && cdb[1] & 0x01 != 0))
        default:
            preconditionFailure("blockCommand called for opcode \(opcode)")
        }
    }

    private static func serviceActionIn(_ cdb: CDBBytes) throws(CDBFailure) -> SCSICommand {
        switch cdb[1] & 0x1F {
        case 0x10: return .readCapacity16(allocationLength: Int(cdb.u32(10)))
        case 0x12: return .getLBAStatus(lba: cdb.u64(2), allocationLength: Int(cdb.u32(10)))
        default: throw .invalidServiceAction
        }
    }

    private static func maintenanceIn(_ cdb: CDBBytes) throws(CDBFailure) -> SCSICommand {
        switch cdb[1] & 0x1F {
        case 0x0A:
            let format = cdb[1] >> 5
            guard format <= 1 else { throw .invalidField(byte: 1, bit: 7) }
            return .reportTargetPortGroups(extendedHeader: format == 1, allocationLength: Int(cdb.u32(6)))
        case 0x0C:
            let options = cdb[2] & 0x07
            guard options <= 3 else { throw .invalidField(byte: 2, bit: 2) }
            return .reportSupportedOperationCodes(ReportOpcodesCommand(
                reportingOptions: options, includeTimeouts: cdb[2] & 0x80 != 0, opcode: cdb[3],
                serviceAction: cdb.u16(4), allocationLength: Int(cdb.u32(6))))
        default:
            throw .invalidServiceAction
        }
    }
}

/// Bounds-safe big-endian reads of a CDB: bytes past the end read as zero, so no field access
/// can trap whatever the input.
struct CDBBytes {
    let raw: UnsafeRawBufferPointer

    var count: Int { raw.count }

    subscript(index: Int) -> UInt8 {
        index >= 0 && index < raw.count ? raw[index] : 0
    }

    func u16(_ offset: Int) -> UInt16 { UInt16(self[offset]) << 8 | UInt16(self[offset + 1]) }

    func u32(_ offset: Int) -> UInt32 { UInt32(u16(offset)) << 16 | UInt32(u16(offset + 2)) }

    func u64(_ offset: Int) -> UInt64 { UInt64(u32(offset)) << 32 | UInt64(u32(offset + 4)) }
}
