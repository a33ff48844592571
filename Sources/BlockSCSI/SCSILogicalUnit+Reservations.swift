// Reservations as commands see them: which commands conflict (SPC-4 5.9.1 table 67, SPC-2
// 5.5.1 for RESERVE(6)), PERSISTENT RESERVE IN/OUT, and RESERVE/RELEASE(6)/(10).
//
// Invariants:
// - A RESERVE(6) reservation and a persistent reservation never coexist: each refuses to be
//   taken while the other exists.
// - Under another nexus's RESERVE(6) only INQUIRY, REPORT LUNS, REQUEST SENSE, RELEASE and
//   PERSISTENT RESERVE IN pass; everything else is RESERVATION CONFLICT.
// - Unit attentions and task aborts requested by a PERSISTENT RESERVE OUT are applied only
//   after its new state is published (and persisted).

import NIOCore

extension SCSICommand {
    /// How the command touches the medium, for persistent reservation conflicts.
    var reservationAccess: ReservationAccess {
        switch self {
        case .testUnitReady, .requestSense, .inquiry, .reportLUNs, .readCapacity10, .readCapacity16,
             .reportSupportedOperationCodes, .reportTargetPortGroups, .persistentReserveIn, .persistentReserveOut,
             .reserve, .release:
            return .unrestricted
        case .preventAllowMediumRemoval(let prevent):
            return prevent ? .write : .unrestricted
        case .startStopUnit(let start, _, _):
            return start ? .unrestricted : .write
        case .read, .verify, .prefetch, .getLBAStatus, .modeSense, .readDefectData:
            return .read
        case .write, .writeAndVerify, .writeSame, .compareAndWrite, .orWrite, .synchronizeCache, .unmap, .modeSelect:
            return .write
        }
    }
}

extension SCSILogicalUnit {
    func checkReservations(_ command: SCSICommand, _ nexus: ITNexus) throws(CommandFailure) {
        if let holder = state.withLock({ $0.legacyReservationHolder }), holder != nexus {
            switch command {
            case .inquiry, .reportLUNs, .requestSense, .release, .persistentReserveIn: break
            default: throw .reservationConflict
            }
        }
        if reservations.conflicts(nexus, command.reservationAccess) { throw .reservationConflict }
    }

    func persistentReserveIn(_ action: PersistentReserveInAction, allocationLength: Int) -> SCSIResult {
        let snapshot = reservations.snapshot
        let data: [UInt8]
        switch action {
        case .readKeys: data = snapshot.readKeysData()
        case .readReservation: data = snapshot.readReservationData()
        case .reportCapabilities: data = snapshot.reportCapabilitiesData()
        case .readFullStatus: data = snapshot.readFullStatusData(relativeTargetPort: configuration.relativeTargetPort)
        }
        return dataIn(data, allocationLength: allocationLength)
    }

    func persistentReserveOut(_ command: PersistentReserveOutCommand, _ request: SCSICommandRequest) async throws(CommandFailure) -> SCSIResult {
        // Only the basic 24-byte parameter list exists without SPEC_I_PT (SPC-4 6.16.3).
        guard command.parameterListLength == ReserveOutParameters.lengthBytes else { throw .parameterListLengthError }
        let list = Array(try dataOut(request, lengthBytes: ReserveOutParameters.lengthBytes).readableBytesView)
        let parameters = ReserveOutParameters(bytes: list)
        let effects = try await reservations.apply(command, parameters, from: request.nexus)
        let handler: AbortTasksHandler? = state.withLock { shared in
            for target in effects.unitAttentions { shared.unitAttentions.establish(target.code, for: target.nexus) }
            return shared.abortTasksHandler
        }
        if !effects.abortedNexuses.isEmpty {
            if let handler {
                await handler(effects.abortedNexuses, self)
            } else {
                logger.warning("PREEMPT AND ABORT without an abort handler: tasks were not aborted")
            }
        }
        if command.action != .reserve && command.action != .release || !effects.unitAttentions.isEmpty {
            logger.info("persistent reservation changed", metadata: [
                "action": "\(command.action)", "nexus": "\(request.nexus)",
                "generation": "\(reservations.snapshot.generation)",
            ])
        }
        return .good()
    }

    /// RESERVE(6)/(10) of the whole logical unit (SPC-2 7.21).
    func reserve(_ nexus: ITNexus) throws(CommandFailure) -> SCSIResult {
        if reservations.hasReservation { throw .reservationConflict }
        try state.withLock { (shared) throws(CommandFailure) in
            guard shared.legacyReservationHolder == nil || shared.legacyReservationHolder == nexus else {
                throw .reservationConflict
            }
            shared.legacyReservationHolder = nexus
        }
        return .good()
    }

    /// RELEASE(6)/(10): releasing a reservation one does not hold is a successful no-op.
    func release(_ nexus: ITNexus) throws(CommandFailure) -> SCSIResult {
        if reservations.hasReservation && !reservations.snapshot.holdsReservation(nexus) { throw .reservationConflict }
        state.withLock { shared in
            if shared.legacyReservationHolder == nexus { shared.legacyReservationHolder = nil }
        }
        return .good()
    }
}
