// SCSI commands on a connection: accepting them into the window, collecting write data
// (immediate, unsolicited, and solicited with R2Ts that honour MaxBurstLength and
// MaxOutstandingR2T), executing them on the logical unit, and answering with Data-In and
// status (in the last Data-In when it can go there), residuals included.

import BlockEngine
import BlockSCSI
import NIOCore

extension ISCSIConnectionHandler {
    func handleSCSICommand(_ command: SCSICommandPDU) {
        guard let session else { return }
        guard !session.isDiscovery else {
            // Discovery sessions carry only Text and Logout (RFC 7143 section 4.3).
            reject(.protocolError, header: command.pdu.header)
            return
        }
        if case .loggingOut = phase {
            reject(.waitingForLogout, header: command.pdu.header)
            return
        }
        if command.immediate && immediateTaskCount >= server.configuration.maxImmediateCommands {
            // Immediate commands bypass the CmdSN window; this bounds them instead.
            reject(.immediateCommandReject, header: command.pdu.header)
            return
        }
        guard acceptSequenced(immediate: command.immediate, cmdSN: command.cmdSN) else { return }
        let itt = command.initiatorTaskTag
        guard tasks[itt] == nil, let cdb = command.cdb else {
            if !command.immediate { window.complete() }
            reject(tasks[itt] == nil ? .invalidPDUField : .taskInProgress, header: command.pdu.header)
            return
        }
        let expected = command.expectedDataTransferLength
        let immediate = command.immediateData
        let parameters = session.parameters
        var task = CommandTask(id: takeTaskID(), initiatorTaskTag: itt, lun: LUNAddressing.decode(command.lunField),
                               lunField: command.lunField, cdb: cdb, expectedLengthBytes: expected,
                               read: command.read, write: command.write,
                               cmdSN: command.immediate ? nil : command.cmdSN, state: .executing)
        if command.immediate { immediateTaskCount += 1 }
        if expected > server.configuration.maxTransferBytes {
            tasks[itt] = task
            complete(task.id, itt: itt, result: TransportResult(.checkCondition(SenseData(.invalidFieldInCDB))))
            return
        }
        guard command.write && expected > 0 else {
            if immediate.readableBytes > 0 && !command.write {
                protocolViolation("immediate data on a command without the W bit", header: command.pdu.header)
                return
            }
            tasks[itt] = task
            execute(itt, dataOut: nil)
            return
        }
        let immediateBytes = immediate.readableBytes
        guard immediateBytes <= expected, immediateBytes <= parameters.firstBurstLength,
              parameters.immediateData || immediateBytes == 0,
              command.final || !parameters.initialR2T else {
            protocolViolation("unsolicited data beyond what was negotiated", header: command.pdu.header)
            return
        }
        if immediateBytes == expected {
            tasks[itt] = task
            execute(itt, dataOut: immediate)
            return
        }
        let unsolicitedEnd = command.final ? immediateBytes : min(parameters.firstBurstLength, expected)
        var collection = WriteCollection(buffer: nil, early: ByteBuffer(), receivedBytes: immediateBytes,
                                         unsolicitedEnd: unsolicitedEnd, unsolicitedNextOffset: immediateBytes,
                                         nextSolicitOffset: unsolicitedEnd)
        let solicits = unsolicitedEnd < expected
        if solicits && admissionQueue.isEmpty && writeBudgetAdmits(expected) {
            // Admitted at once (the usual case): the immediate data goes straight into the
            // write's full buffer, copied once.
            reserveWriteBuffer(&task, &collection, startingWith: immediate)
        } else {
            // Until the write is admitted its data collects in a buffer of the unsolicited
            // part only: a command that declares 16 MiB and sends nothing costs nothing.
            var early = allocator.buffer(capacity: unsolicitedEnd)
            var immediateCopy = immediate
            early.writeBuffer(&immediateCopy)
            collection.early = early
        }
        let admitted = collection.admitted
        task.state = .collecting(collection)
        tasks[itt] = task
        if admitted {
            issueR2Ts(itt)
        } else if solicits {
            admissionQueue.append(taskID: task.id, initiatorTaskTag: itt)
        }
    }

    func takeTaskID() -> UInt64 {
        nextTaskID &+= 1
        return nextTaskID
    }

    // MARK: - Write data

    func handleDataOut(_ data: DataOutPDU) {
        let itt = data.initiatorTaskTag
        // Data for an aborted or unknown task is dropped (it may still be in flight).
        guard let found = tasks[itt], case .collecting = found.state else { return }
        // Take the task out while its buffer is written, so the buffer is not shared (a shared
        // buffer would be copied whole on every Data-Out).
        var task = tasks.removeValue(forKey: itt)!
        guard case var .collecting(collection) = task.state else { preconditionFailure("checked above") }
        task.state = .executing
        let offset = data.bufferOffset
        let length = data.data.readableBytes
        guard offset >= 0, offset + length <= task.expectedLengthBytes else {
            task.state = .collecting(collection)
            tasks[itt] = task
            protocolViolation("Data-Out beyond the expected transfer length", header: data.pdu.header)
            return
        }
        var problem: String? = nil
        var sequenceDone = false
        if data.targetTransferTag == 0xFFFF_FFFF {
            if offset != collection.unsolicitedNextOffset || data.dataSN != collection.unsolicitedNextDataSN
                || offset + length > collection.unsolicitedEnd {
                problem = "unsolicited Data-Out out of order (DataSN \(data.dataSN), offset \(offset))"
            } else if data.final && offset + length != collection.unsolicitedEnd {
                problem = "unsolicited data ended short of FirstBurstLength"
            } else {
                collection.unsolicitedNextOffset += length
                collection.unsolicitedNextDataSN &+= 1
            }
        } else if var sequence = collection.outstanding[data.targetTransferTag], offset == sequence.nextOffset,
                  data.dataSN == sequence.nextDataSN, offset + length <= sequence.end {
            sequence.nextOffset += length
            sequence.nextDataSN &+= 1
            if data.final && sequence.nextOffset != sequence.end {
                problem = "R2T sequence ended short"
            } else if data.final {
                collection.outstanding[data.targetTransferTag] = nil
                sequenceDone = true
            } else {
                collection.outstanding[data.targetTransferTag] = sequence
            }
        } else {
            problem = "solicited Data-Out out of order (DataSN \(data.dataSN), offset \(offset))"
        }
        if let problem {
            task.state = .collecting(collection)
            tasks[itt] = task
            protocolViolation(problem, header: data.pdu.header)
            return
        }
        collection.store(data.data, at: offset)
        if collection.receivedBytes == task.expectedLengthBytes && collection.outstanding.isEmpty
            && collection.nextSolicitOffset >= task.expectedLengthBytes {
            let dataOut = collection.data
            tasks[itt] = task
            releaseWriteReservation(itt)
            execute(itt, dataOut: dataOut)
            return
        }
        task.state = .collecting(collection)
        tasks[itt] = task
        if sequenceDone { issueR2Ts(itt) }
    }

    // MARK: - Write admission and R2Ts
    // A write that needs R2Ts is admitted on arrival when no earlier write waits (FIFO, so a
    // large write is not passed over forever) and the budget has room; otherwise it waits in
    // `admissionQueue` until completions free the budget.

    /// Whether a write of `bytes` fits the write budget now. One write is always admitted
    /// when none holds the budget, so a budget below maxTransferBytes cannot stall.
    private func writeBudgetAdmits(_ bytes: Int) -> Bool {
        writeReservedBytes == 0 || writeReservedBytes + bytes <= server.configuration.maxSolicitedBytesPerConnection
    }

    /// Gives a queued or new write its full buffer and budget, then solicits its data.
    private func admit(_ itt: UInt32) {
        guard var task = tasks.removeValue(forKey: itt) else { return }
        guard case var .collecting(collection) = task.state, !collection.admitted else {
            tasks[itt] = task
            return
        }
        task.state = .executing
        let early = collection.early
        collection.early = ByteBuffer()
        reserveWriteBuffer(&task, &collection, startingWith: early)
        task.state = .collecting(collection)
        tasks[itt] = task
        issueR2Ts(itt)
    }

    /// Gives a write its full buffer (starting with the unsolicited bytes received so far)
    /// and charges it to the connection's write budget.
    private func reserveWriteBuffer(_ task: inout CommandTask, _ collection: inout WriteCollection,
                                    startingWith received: ByteBuffer) {
        precondition(!collection.admitted && task.reservedWriteBytes == 0, "a write is admitted once")
        let totalBytes = task.expectedLengthBytes
        var buffer = allocator.buffer(capacity: totalBytes)
        buffer.writeImmediateAndReserve(received, totalBytes: totalBytes)
        collection.buffer = buffer
        task.reservedWriteBytes = totalBytes
        writeReservedBytes += totalBytes
    }

    /// Solicits the next ranges of an admitted write, within MaxOutstandingR2T.
    func issueR2Ts(_ itt: UInt32) {
        guard let session, var task = tasks[itt], case var .collecting(collection) = task.state,
              collection.admitted else { return }
        let parameters = session.parameters
        // Bounded by MaxOutstandingR2T iterations.
        while collection.outstanding.count < parameters.maxOutstandingR2T,
              let range = DataTransferPlan.nextSolicitedRange(nextOffset: collection.nextSolicitOffset,
                                                              totalBytes: task.expectedLengthBytes,
                                                              maxBurstBytes: parameters.maxBurstLength) {
            let tag = takeTargetTransferTag()
            collection.outstanding[tag] = SolicitedSequence(start: range.lowerBound, end: range.upperBound,
                                                            nextOffset: range.lowerBound, nextDataSN: 0)
            send(.readyToTransfer(initiatorTaskTag: itt, lunField: task.lunField, targetTransferTag: tag,
                                  r2tSN: collection.r2tSN, bufferOffset: range.lowerBound,
                                  desiredLengthBytes: range.count))
            collection.r2tSN &+= 1
            collection.nextSolicitOffset = range.upperBound
        }
        task.state = .collecting(collection)
        tasks[itt] = task
    }

    /// A write left the collecting state (all data in, failed or aborted): give back its
    /// budget and admit the writes waiting for it.
    func releaseWriteReservation(_ itt: UInt32) {
        guard var task = tasks[itt] else { return }
        admissionQueue.remove(taskID: task.id)
        guard task.reservedWriteBytes > 0 else { return }
        writeReservedBytes -= task.reservedWriteBytes
        precondition(writeReservedBytes >= 0, "write budget released more than reserved")
        task.reservedWriteBytes = 0
        tasks[itt] = task
        admitWaitingWrites()
    }

    /// Admits queued writes in arrival order while the budget has room.
    func admitWaitingWrites() {
        // Bounded by the queue: each turn admits and removes one entry or stops.
        while let (taskID, itt) = admissionQueue.first() {
            guard let task = tasks[itt], task.id == taskID else {
                preconditionFailure("a task leaves the admission queue when it ends")
            }
            guard writeBudgetAdmits(task.expectedLengthBytes) else { return }
            admissionQueue.remove(taskID: taskID)
            admit(itt)
        }
    }

    /// Ends a write that is still receiving data with CHECK CONDITION (its remaining Data-Out
    /// is dropped on arrival).
    func failCollectingTask(_ itt: UInt32, sense: SenseData) {
        guard var task = tasks[itt], case .collecting = task.state else { return }
        task.state = .executing
        tasks[itt] = task
        releaseWriteReservation(itt)
        complete(task.id, itt: itt, result: TransportResult(.checkCondition(sense)))
    }

    /// A broken data sequence cannot be recovered at ErrorRecoveryLevel 0: reject the PDU and
    /// drop the connection (the initiator reconnects and retries).
    func protocolViolation(_ what: String, header: BasicHeaderSegment) {
        logger.warning("protocol violation, closing the connection", metadata: ["what": "\(what)"])
        sendFinal(.reject(reason: .protocolError, rejectedHeader: header))
    }

    // MARK: - Execution

    func execute(_ itt: UInt32, dataOut: ByteBuffer?) {
        guard let session, var task = tasks[itt], let context else { return }
        if let cmdSN = task.cmdSN, !window.isDeliverable(cmdSN) {
            // A lower CmdSN is still missing: start in CmdSN order (RFC 7143 3.2.2.1).
            task.state = .parked(dataOut)
            tasks[itt] = task
            let taskID = task.id
            parked[cmdSN] = { [self] in
                guard var parkedTask = tasks[itt], parkedTask.id == taskID,
                      case let .parked(data) = parkedTask.state else { return }
                parkedTask.state = .executing
                tasks[itt] = parkedTask
                execute(itt, dataOut: data)
            }
            return
        }
        guard let lun = task.lun, let unit = session.logicalUnits[lun] else {
            let request = SCSICommandRequest(cdb: task.cdb, nexus: session.nexus, lun: task.lun ?? .max,
                                             expectedDataTransferLength: task.expectedLengthBytes, dataOut: nil,
                                             taskTag: itt)
            let result = AbsentLogicalUnit.result(for: request, reportedLUNs: session.logicalUnits.keys.sorted())
            complete(task.id, itt: itt, result: TransportResult(result))
            return
        }
        // When the CDB and the iSCSI expected length disagree, the command runs on the data
        // both agree on (whole blocks) and the difference is reported as a residual
        // (RFC 7143 section 11.4.5.2, FCP-4 9.4.2 option a).
        var dataOut = dataOut
        var residual: Residual? = nil
        let provided = task.write ? task.expectedLengthBytes : 0
        if let needed = SCSICommandInfo.dataOutLength(cdb: task.cdb, blockSizeBytes: unit.blockSizeBytes),
           needed != provided {
            residual = needed > provided ? .overflow(needed - provided) : .underflow(provided - needed)
            let usable = min(needed, provided) / unit.blockSizeBytes * unit.blockSizeBytes
            dataOut = needed == 0 ? nil : (dataOut?.getSlice(at: dataOut!.readerIndex, length: usable) ?? ByteBuffer())
        }
        let request = SCSICommandRequest(cdb: task.cdb, nexus: session.nexus, lun: lun,
                                         expectedDataTransferLength: task.expectedLengthBytes, dataOut: dataOut,
                                         taskTag: itt)
        if task.read {
            // Held until the answer is queued; input stops while the budget is used up.
            task.reservedDataInBytes = task.expectedLengthBytes
            dataInReservedBytes += task.expectedLengthBytes
            tasks[itt] = task
        }
        // Most reads and writes complete here, without a task (from memory, into the log).
        if let immediate = unit.executeWithoutWaiting(request) {
            var result = TransportResult(immediate)
            result.residualOverride = residual
            complete(task.id, itt: itt, result: result)
            return
        }
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        let taskID = task.id
        // The task prefers this channel's event loop: the command runs there and answers
        // without a thread hop (nonisolated async code follows the task's executor).
        Task(executorPreference: taskExecutor) {
            var result = TransportResult(await unit.execute(request, triedWithoutWaiting: true))
            result.residualOverride = residual
            handler.value.complete(taskID, itt: itt, result: result)
        }
    }

    /// A task finished: answer it (unless aborted), free its window slot, wake waiters.
    func complete(_ taskID: UInt64, itt: UInt32, result: TransportResult) {
        guard let task = tasks[itt], task.id == taskID else { return }
        // The window slot is free before the answer goes out, so the answer advertises it.
        removeTask(task)
        if case .aborted = task.state {
            // No response for an aborted task.
        } else {
            answer(task, result)
        }
        scheduleFlush()
        finishLogoutIfIdle()
        resumeInputIfPossible()
    }

    /// Forgets a task that ended (answered, or aborted before it started): frees its window
    /// slot and budgets and runs what waits for its end. Every task leaves through here.
    func removeTask(_ task: CommandTask) {
        let itt = task.initiatorTaskTag
        precondition(tasks[itt]?.id == task.id, "removing a task that is not current")
        admissionQueue.remove(taskID: task.id)
        if task.reservedWriteBytes > 0 { releaseWriteReservation(itt) }
        tasks[itt] = nil
        if task.countsInWindow {
            window.complete()
        } else {
            immediateTaskCount -= 1
            precondition(immediateTaskCount >= 0, "immediate commands counted once each")
        }
        dataInReservedBytes -= task.reservedDataInBytes
        precondition(dataInReservedBytes >= 0, "read budget released more than reserved")
        if let cmdSN = task.cmdSN, case .parked = task.state { parked[cmdSN] = nil }
        for waiter in task.endWaiters { waiter() }
        releaseEndedSession()
    }

    private func answer(_ task: CommandTask, _ result: TransportResult) {
        guard let session else { return }
        let expected = task.expectedLengthBytes
        // Data goes back only for a read, and never beyond the expected length.
        let allowed = task.read ? expected : 0
        var dataIn = result.dataIn
        let produced = dataIn?.readableBytes ?? 0
        if produced > allowed {
            dataIn = allowed > 0 ? dataIn!.getSlice(at: dataIn!.readerIndex, length: allowed) : nil
        }
        var residual = result.residualOverride ?? .none
        if result.residualOverride == nil {
            if produced > allowed {
                residual = .overflow(produced - allowed)
            } else if task.read && produced < expected {
                residual = .underflow(expected - produced)
            }
        }
        let statusFits = result.status == SCSIStatus.good.rawValue && result.sense == nil
        var dataSN: UInt32 = 0
        if let data = dataIn, data.readableBytes > 0 {
            let segments = DataTransferPlan.dataInSegments(
                totalBytes: data.readableBytes, maxSegmentBytes: session.parameters.initiatorMaxRecvDataSegmentLength,
                maxBurstBytes: session.parameters.maxBurstLength)
            for segment in segments {
                let slice = data.getSlice(at: data.readerIndex + segment.offset, length: segment.lengthBytes)!
                let withStatus = segment.last && statusFits
                send(.dataIn(initiatorTaskTag: task.initiatorTaskTag, lunField: task.lunField, data: slice,
                             dataSN: segment.dataSN, bufferOffset: segment.offset, final: segment.final,
                             status: withStatus ? result.status : nil, residual: residual))
            }
            dataSN = UInt32(segments.count)
            if statusFits { return }
        }
        send(.scsiResponse(initiatorTaskTag: task.initiatorTaskTag, status: result.status, sense: result.sense,
                           residual: residual, expDataSN: dataSN))
    }
}

/// A command's outcome as the transport answers it.
struct TransportResult {
    var status: UInt8
    var sense: ByteBuffer?
    var dataIn: ByteBuffer?
    /// Set when the transport itself decided the residual (CDB and EDTL disagree).
    var residualOverride: Residual? = nil

    init(status: UInt8, sense: ByteBuffer?, dataIn: ByteBuffer?) {
        self.status = status
        self.sense = sense
        self.dataIn = dataIn
    }

    init(_ result: SCSIResult) {
        self.init(status: result.status.rawValue, sense: result.senseData, dataIn: result.dataIn)
    }
}

extension ByteBuffer {
    /// Writes `immediate` and moves the writer index to `totalBytes` without zeroing the
    /// rest (every byte up to `totalBytes` is written by Data-Out before the buffer is used).
    mutating func writeImmediateAndReserve(_ immediate: ByteBuffer, totalBytes: Int) {
        var copy = immediate
        writeBuffer(&copy)
        let missing = totalBytes - readableBytes
        if missing > 0 {
            writeWithUnsafeMutableBytes(minimumWritableBytes: missing) { _ in missing }
        }
    }
}
