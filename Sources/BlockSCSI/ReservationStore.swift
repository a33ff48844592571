// The shared persistent reservation state of one logical unit: fast conflict checks for every
// command, and PERSISTENT RESERVE OUT applied one at a time and persisted before it completes.
//
// Invariants:
// - PERSISTENT RESERVE OUT commands run one at a time (a one-slot range lock), so the state a
//   command computes from is the state the previous one published: no lost updates.
// - A new state is published only after it is durable in the sidecar file (when APTPL asks for
//   it). If the write fails the command fails and nothing changes.
// - With APTPL 0 the file holds an empty state, so a restart forgets everything, as SPC-4
//   5.9.5 requires; the file is only rewritten when its contents would change.

import Dispatch
import Logging
import Synchronization

final class ReservationStore: Sendable {
    private let state: Mutex<ReservationState>
    /// The bytes last written to the sidecar; touched only inside `serializer`.
    private let persisted: Mutex<[UInt8]>
    private let serializer: RangeLock
    private let logger: Logger
    let path: String?

    /// Loads the sidecar at `path` (nil: nothing is persisted). `targetName` is the logical
    /// unit's target, which the nexuses of an old (version 1) file belong to.
    init(path: String?, targetName: String, maxWaitingCommands: Int, logger: Logger) throws(ReservationFileError) {
        self.path = path
        self.logger = logger
        serializer = RangeLock(capacity: maxWaitingCommands)
        let loaded = try path.flatMap { (path) throws(ReservationFileError) in try ReservationSidecar.load(path: path, targetNameOfVersion1: targetName) }
        var initial = loaded ?? ReservationState()
        if !initial.persistThroughPowerLoss { initial = ReservationState() }
        initial.checkInvariants()
        state = Mutex(initial)
        // No file reads as the empty state: APTPL=0 users never cause a write.
        persisted = Mutex(ReservationSidecar.encode(loaded ?? ReservationState()))
    }

    /// A copy of the current state.
    var snapshot: ReservationState { state.withLock { $0 } }

    func conflicts(_ nexus: ITNexus, _ access: ReservationAccess) -> Bool {
        state.withLock { $0.reservation != nil && $0.conflicts(nexus, access) }
    }

    var hasReservation: Bool { state.withLock { $0.reservation != nil } }

    /// Applies a PERSISTENT RESERVE OUT service action and persists the result.
    func apply(_ command: PersistentReserveOutCommand, _ parameters: ReserveOutParameters,
               from nexus: ITNexus) async throws(CommandFailure) -> ReserveOutEffects {
        let outcome: Result<ReserveOutEffects, CommandFailure>? = await serializer.withRange(0..<1) {
            var next = state.withLock { $0 }
            let effects: ReserveOutEffects
            do throws(CommandFailure) {
                effects = try next.apply(command, parameters, from: nexus)
                try await persist(next)
            } catch {
                return .failure(error)
            }
            state.withLock { $0 = next }
            return .success(effects)
        }
        guard let outcome else { throw .taskSetFull }
        return try outcome.get()
    }

    private func persist(_ next: ReservationState) async throws(CommandFailure) {
        guard let path else { return }
        let stored = next.persistThroughPowerLoss ? next : ReservationState()
        let bytes = ReservationSidecar.encode(stored)
        guard persisted.withLock({ $0 }) != bytes else { return }
        let result: Result<Void, ReservationFileError> = await withCheckedContinuation { continuation in
            // File I/O with fsync blocks; keep it off the cooperative pool.
            DispatchQueue.global().async {
                do throws(ReservationFileError) {
                    try ReservationSidecar.store(stored, path: path)
                    continuation.resume(returning: .success(()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        if case .failure(let error) = result {
            logger.error("cannot persist reservations; the command fails and nothing changes",
                         metadata: ["error": "\(error)"])
            throw .check(.internalTargetFailure)
        }
        persisted.withLock { $0 = bytes }
    }
}
