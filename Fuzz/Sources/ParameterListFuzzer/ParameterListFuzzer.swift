// Fuzzes the SCSI layer's parameter lists (the Data-Out it parses: PERSISTENT RESERVE OUT,
// UNMAP, MODE SELECT(6)/(10), COMPARE AND WRITE, WRITE SAME, VERIFY, ORWRITE, ...) through a
// real logical unit over a small volume, one command after another so the reservation and
// mode state machines are reached too.
//
// An input is a sequence of records, each
//   [nexus] [CDB length n (0...16)] [n CDB bytes] [Data-Out length m, 2 bytes big-endian] [m bytes]
// (a short tail is cut). `nexus` bits 0-1 pick the sender (A, B, C, or A through another
// target), bit 2 runs the command as an event-loop transport does (executeWithoutWaiting
// first), bit 3 writes m into the CDB's parameter list length field, so mutations of the
// list do not all stop at the length check. Each input starts with a new logical unit
// (fresh reservations, mode pages and unit attentions) over the same volume.
//
// Checked for every answer: a status the logical unit may give, sense data exactly with
// CHECK CONDITION and decodable, never MEDIUM or HARDWARE ERROR on a healthy volume; a
// COMPARE AND WRITE that miscompares changes nothing; PREEMPT AND ABORT names only nexuses
// that exist, and this unit.

import BlockEngine
import FuzzSupport
import BlockSCSI
import NIOCore
import Synchronization

let targetName = "iqn.2026-11.org.swift-block.fuzz:parameters"
let nexuses: [ITNexus] = ["a", "b", "c"].enumerated().map { index, name in
    ITNexus(initiatorName: "iqn.2026-11.org.swift-block.fuzz:" + name, initiatorSessionID: UInt64(index + 1),
            targetName: targetName, targetPortalGroupTag: 1)
} + [ITNexus(initiatorName: "iqn.2026-11.org.swift-block.fuzz:a", initiatorSessionID: 1,
             targetName: targetName + "-other", targetPortalGroupTag: 1)]
let maxRecords = 32

/// One fuzzing input; libFuzzer calls it through the driver (Entry.swift).
func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    waitFor { await run(bytes) }
    return 0
}

private func run(_ bytes: [UInt8]) async {
    let unit = FuzzVolume.makeUnit(targetName: targetName)
    let aborts = AbortLog()
    let unitID = ObjectIdentifier(unit)  // not the unit: it holds the handler
    unit.abortTasksHandler = { victims, target in
        precondition(ObjectIdentifier(target) == unitID, "PREEMPT AND ABORT named another unit")
        precondition(victims.isSubset(of: Set(nexuses)), "PREEMPT AND ABORT named an unknown nexus")
        aborts.record()
    }
    // Consume every nexus's power-on unit attention so the records reach the parsers.
    for nexus in nexuses { _ = await unit.execute(request([0, 0, 0, 0, 0, 0], [], nexus)) }
    var reader = RecordReader(bytes: bytes)
    var records = 0
    while records < maxRecords, let record = reader.next() {
        records += 1
        await execute(record, on: unit)
    }
}

private func execute(_ record: Record, on unit: SCSILogicalUnit) async {
    var cdb = record.cdb
    if record.fixLength { ParameterLength.store(record.data.count, in: &cdb) }
    let command = request(cdb, record.data, nexuses[record.nexusIndex])
    let before = await CompareAndWriteCheck.blocks(cdb, volume: FuzzVolume.shared)
    let result: SCSIResult
    if record.eventLoopPath, let immediate = unit.executeWithoutWaiting(command) {
        result = immediate
    } else {
        result = await unit.execute(command, triedWithoutWaiting: record.eventLoopPath)
    }
    check(result)
    if let before, result.sense?.code.key == .miscompare {
        let after = await CompareAndWriteCheck.blocks(cdb, volume: FuzzVolume.shared)
        precondition(after == before, "a COMPARE AND WRITE that miscompared changed the blocks")
    }
}

/// The answer is one a logical unit may give, and consistent.
private func check(_ result: SCSIResult) {
    switch result.status {
    case .good, .reservationConflict, .taskSetFull:
        precondition(result.senseData == nil, "sense data without CHECK CONDITION")
    case .checkCondition:
        guard let sense = result.sense else { preconditionFailure("CHECK CONDITION without decodable sense data") }
        precondition(sense.code.key != .noSense, "CHECK CONDITION with NO SENSE")
        precondition(sense.code.key != .mediumError && sense.code.key != .hardwareError,
                     "a healthy volume reported \(sense)")
    default:
        preconditionFailure("status \(result.status) is never given by a logical unit")
    }
}

func request(_ cdb: [UInt8], _ data: [UInt8], _ nexus: ITNexus) -> SCSICommandRequest {
    SCSICommandRequest(cdb: ByteBuffer(bytes: cdb), nexus: nexus, lun: 0, expectedDataTransferLength: data.count,
                       dataOut: data.isEmpty ? nil : ByteBuffer(bytes: data), taskTag: 1)
}

/// Counts PREEMPT AND ABORT calls (the handler must be Sendable).
final class AbortLog: Sendable {
    private let count = Mutex(0)
    func record() { count.withLock { $0 += 1 } }
}
