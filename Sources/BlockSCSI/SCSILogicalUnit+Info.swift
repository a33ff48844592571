// Commands that describe the logical unit: REQUEST SENSE, INQUIRY, REPORT LUNS, READ CAPACITY,
// READ DEFECT DATA, START STOP UNIT, MODE SENSE and MODE SELECT.
//
// Invariant: every response is cut to its allocation length by `dataIn`, never padded.

import BlockEngine
import NIOCore

extension SCSILogicalUnit {
    /// REQUEST SENSE (SPC-4 6.39): a pending unit attention (which it clears), else the NOT
    /// READY a medium access would get in the ALUA state (what TEST UNIT READY reports), else
    /// NO SENSE.
    func requestSense(_ nexus: ITNexus, allocationLength: Int) -> SCSIResult {
        let attention = state.withLock { $0.unitAttentions.takeNext(for: nexus) }
        let code = attention ?? accessState.refusalSense ?? .noSense
        return dataIn(SenseData(code).fixedFormatBytes(), allocationLength: allocationLength)
    }

    func inquiry(page: UInt8?, allocationLength: Int) throws(CommandFailure) -> SCSIResult {
        guard let page else { return dataIn(inquiryData.standard, allocationLength: allocationLength) }
        guard let data = inquiryData.page(page) else { throw .invalidFieldInCDB(byte: 2) }
        return dataIn(data, allocationLength: allocationLength)
    }

    func reportLUNs(allocationLength: Int) -> SCSIResult {
        dataIn(Self.reportLUNsData(configuration.reportedLUNs), allocationLength: allocationLength)
    }

    /// REPORT LUNS parameter data (SPC-4 6.33): every LUN of the target, single level.
    static func reportLUNsData(_ reportedLUNs: [UInt64]) -> [UInt8] {
        let luns = Set(reportedLUNs).sorted()
        var data: [UInt8] = []
        data.appendBigEndian(UInt32(8 * luns.count))
        data.append(contentsOf: [0, 0, 0, 0])
        for lun in luns {
            // Peripheral device addressing below 256, flat space addressing above (SAM-5 4.7).
            let first: UInt8 = lun < 256 ? 0x00 : 0x40 | UInt8((lun >> 8) & 0x3F)
            data.append(contentsOf: [first, UInt8(lun & 0xFF), 0, 0, 0, 0, 0, 0])
        }
        return data
    }

    /// READ CAPACITY(10) (SBC-4 5.16): FFFFFFFFh when the last LBA does not fit.
    func readCapacity10() -> SCSIResult {
        var data: [UInt8] = []
        data.appendBigEndian(UInt32(clamping: capacityBlocks - 1))
        data.appendBigEndian(UInt32(blockSizeBytes))
        return .good(ByteBuffer(bytes: data))
    }

    /// READ CAPACITY(16) (SBC-4 5.17): LBPME and LBPRZ when thin provisioned.
    func readCapacity16(allocationLength: Int) -> SCSIResult {
        var data = [UInt8](repeating: 0, count: 32)
        data.storeBigEndian(capacityBlocks - 1, at: 0)
        data.storeBigEndian(UInt32(blockSizeBytes), at: 8)
        if configuration.thinProvisioning { data[14] = 0x80 | (configuration.reportsUnmappedReadZeros ? 0x40 : 0) }
        return dataIn(data, allocationLength: allocationLength)
    }

    /// READ DEFECT DATA (SBC-4 5.19, 5.20): both lists are valid and empty.
    func readDefectData(tenByte: Bool, listFormat: UInt8, allocationLength: Int) -> SCSIResult {
        let flags: UInt8 = 0x18 | listFormat  // PLISTV, GLISTV
        let data: [UInt8] = tenByte ? [0, flags, 0, 0] : [0, flags, 0, 0, 0, 0, 0, 0]
        return dataIn(data, allocationLength: allocationLength)
    }

    /// START STOP UNIT (SBC-4 5.25): the medium is always ready; stopping flushes the volatile
    /// cache first unless NO_FLUSH says not to.
    func startStopUnit(start: Bool, noFlush: Bool) async throws(CommandFailure) -> SCSIResult {
        if !start && !noFlush {
            try await engineCall(.write) { () async throws(BlockError) in try await backend.flush() }
        }
        return .good()
    }

    func modeSense(_ command: ModeSenseCommand) throws(CommandFailure) -> SCSIResult {
        let data = try ModePages.senseData(command, parameters: modeParameters, blockCount: capacityBlocks,
                                           blockSizeBytes: blockSizeBytes)
        return dataIn(data, allocationLength: command.allocationLength)
    }

    /// MODE SELECT: applies WCE; other nexuses learn of a change through MODE PARAMETERS
    /// CHANGED (2A/01).
    func modeSelect(_ command: ModeSelectCommand, _ request: SCSICommandRequest) throws(CommandFailure) -> SCSIResult {
        var list: [UInt8] = []
        if command.parameterListLength > 0 {
            list = Array(try dataOut(request, lengthBytes: command.parameterListLength).readableBytesView)
        }
        let changed = try state.withLock { (shared) throws(CommandFailure) -> Bool in
            let next = try ModePages.select(command, parameterList: list, current: shared.modeParameters,
                                            blockCount: capacityBlocks, blockSizeBytes: blockSizeBytes)
            guard next != shared.modeParameters else { return false }
            shared.modeParameters = next
            shared.unitAttentions.establish(.modeParametersChanged) { $0 != request.nexus }
            return true
        }
        if changed {
            logger.info("mode parameters changed", metadata: [
                "write_cache": "\(modeParameters.writeCacheEnabled)", "nexus": "\(request.nexus)",
            ])
        }
        return .good()
    }
}
