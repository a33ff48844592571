// Fuzzes PDU framing and the typed PDU views: any byte stream must either yield PDUs or a
// framing error, never a trap; every typed field read must be safe.

import BlockISCSI
import NIOCore

/// One fuzzing input; libFuzzer calls it through the driver (Entry.swift).
func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    var buffer = ByteBuffer(bytes: bytes)
    let settings = ISCSIFramingSettings()
    // The first byte picks the digest settings, so both paths are covered.
    if let first = bytes.first {
        settings.headerDigest = first & 1 != 0
        settings.dataDigest = first & 2 != 0
    }
    let decoder = ISCSIPDUDecoder(settings: settings)
    // Each round consumes a whole PDU (at least 48 bytes) or stops, so it ends.
    while true {
        guard let inbound = try? decoder.decode(buffer: &buffer) else { break }
        let pdu = inbound.pdu
        _ = pdu.opcode
        let command = SCSICommandPDU(pdu)
        _ = (command.cdb, command.expectedDataTransferLength, command.cmdSN, command.taskAttribute)
        let dataOut = DataOutPDU(pdu)
        _ = (dataOut.bufferOffset, dataOut.dataSN, dataOut.targetTransferTag)
        let login = LoginRequestPDU(pdu)
        _ = (login.isid, login.tsih, login.currentStageValue, login.nextStageValue)
        _ = TaskManagementRequestPDU(pdu).function
        _ = LogoutRequestPDU(pdu).reasonCode
    }
    return 0
}
