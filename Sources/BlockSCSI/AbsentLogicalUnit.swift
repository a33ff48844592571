// Answers for a LUN the target does not have (SPC-4 6.6.2 and 6.33): the transport calls
// this instead of a logical unit, so every transport answers the same way.
//
// INQUIRY reports peripheral qualifier 011b / device type 1Fh ("no logical unit"), REPORT LUNS
// lists the LUNs that do exist, REQUEST SENSE and every other command get LOGICAL UNIT NOT
// SUPPORTED (25/00). Invariant: never traps, whatever the CDB.

import NIOCore

/// Responses for commands addressed to a LUN with no logical unit behind it.
public enum AbsentLogicalUnit {
    /// The result for `request`; `reportedLUNs` are the LUNs the target does have.
    public static func result(for request: SCSICommandRequest, reportedLUNs: [UInt64]) -> SCSIResult {
        switch CDBDecoder.decode(cdb: request.cdb) {
        case .success(.inquiry(nil, let allocationLength)):
            var data = [UInt8](repeating: 0, count: 36)
            data[0] = 0x7F                 // qualifier 011b, device type 1Fh
            data[2] = 0x06
            data[3] = 0x02
            data[4] = 31
            return bytes(data, allocationLength)
        case .success(.inquiry(_, _)):
            return .checkCondition(SenseData(.logicalUnitNotSupported))
        case .success(.reportLUNs(_, let allocationLength)):
            return bytes(SCSILogicalUnit.reportLUNsData(reportedLUNs), allocationLength)
        case .success(.requestSense(let allocationLength)):
            return bytes(SenseData(.logicalUnitNotSupported).fixedFormatBytes(), allocationLength)
        case .success:
            return .checkCondition(SenseData(.logicalUnitNotSupported))
        case .failure(let failure):
            return .checkCondition(failure.sense)
        }
    }

    private static func bytes(_ data: [UInt8], _ allocationLength: Int) -> SCSIResult {
        let cut = data.truncated(to: allocationLength)
        return .good(cut.isEmpty ? nil : ByteBuffer(bytes: cut))
    }
}
