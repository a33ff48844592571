// A SCSI logical unit over an engine volume: the command pipeline every command goes through,
// and the state shared by all I_T nexuses. Command handlers live in the SCSILogicalUnit+*.swift
// files, one family per file.
//
// Pipeline (SAM-5 order): unit attention -> CDB decoding -> reservation conflict -> ALUA
// access state -> handler. Handlers throw `CommandFailure`; `execute` turns every outcome into
// a `SCSIResult` and never throws or traps. Before the unit attention, each command compares
// the volume's ALUA state with the one last reported and, on a change, queues 2A/06 for every
// nexus (AsymmetricAccess.swift).
//
// Invariants:
// - `execute` may run concurrently from any number of tasks. Shared state is behind one mutex
//   (`state`), the persistent reservations behind their own, and every command that changes
//   blocks holds its LBA range in `rangeLock` for the whole read-modify-write, so COMPARE AND
//   WRITE is atomic against all other writes of this logical unit.
// - No handler allocates more than `maximumTransferLengthBytes` for one command's data.
// - Lock order: `state` may be held while the volume's gate is read (the engine's sequencer
//   lock), never the other way round; the engine never calls into this layer.

import BlockEngine
import Dispatch
import Logging
import NIOCore
import Synchronization

/// Called for PREEMPT AND ABORT with the preempted nexuses: the transport aborts their tasks
/// addressed to `unit` (whatever LUN reaches it) and no others. A nexus names its target, so
/// the same initiator port logged in to another target keeps its tasks. The PERSISTENT RESERVE
/// OUT command completes after the call returns.
public typealias AbortTasksHandler = @Sendable (_ nexuses: Set<ITNexus>, _ unit: SCSILogicalUnit) async -> Void

/// One logical unit: executes SCSI commands against a volume.
public final class SCSILogicalUnit: Sendable {
    struct SharedState: Sendable {
        var unitAttentions = UnitAttentionTable()
        var modeParameters = ModeParameters()
        /// The holder of a RESERVE(6)/(10) reservation (SPC-2).
        var legacyReservationHolder: ITNexus?
        var abortTasksHandler: AbortTasksHandler?
        var warnedUntrackedNexus = false
    }

    let backend: any LogicalUnitBackend
    let configuration: SCSILogicalUnitConfiguration
    let limits: BlockLimits
    let inquiryData: InquiryData
    let reservations: ReservationStore
    let rangeLock: RangeLock
    let logger: Logger
    let allocator = ByteBufferAllocator()
    let state = Mutex(SharedState())
    /// The ALUA state (raw value) initiators were last told of; see `observeAccessState`.
    private let reportedAccessState: Atomic<UInt8>
    /// Where GET LBA STATUS walks the volume: the walk blocks (index lookups, SEEK_DATA and
    /// SEEK_HOLE), so it stays off the transport's threads, and one queue per unit lets a
    /// storm of them take one thread, not one each.
    let statusQueue = DispatchQueue(label: "BlockSCSI.lba-status")

    /// A logical unit over `volume`. Throws `SCSIConfigurationError` for a bad configuration and
    /// `ReservationFileError` when the reservation sidecar exists but cannot be read or is damaged.
    public convenience init(volume: Volume, configuration: SCSILogicalUnitConfiguration) throws {
        try self.init(backend: volume, configuration: configuration)
    }

    init(backend: any LogicalUnitBackend, configuration: SCSILogicalUnitConfiguration) throws {
        try configuration.validate(blockSizeBytes: backend.blockSizeBytes)
        precondition(backend.blockCount > 0, "a volume has at least one block")
        self.backend = backend
        self.configuration = configuration
        logger = configuration.logger
        limits = BlockLimits(configuration: configuration, blockSizeBytes: backend.blockSizeBytes)
        inquiryData = InquiryData(configuration: configuration, uuid: backend.uuid,
                                  blockSizeBytes: backend.blockSizeBytes, limits: limits)
        rangeLock = RangeLock(capacity: configuration.maximumWaitingCommands)
        reportedAccessState = Atomic(AsymmetricAccessState(writeRefusal: backend.writeRefusal).rawValue)
        do {
            reservations = try ReservationStore(path: configuration.reservationFilePath,
                                                targetName: configuration.targetName ?? "",
                                                maxWaitingCommands: configuration.maximumWaitingCommands,
                                                logger: configuration.logger)
        } catch {
            configuration.logger.error("cannot load persistent reservations", metadata: ["error": "\(error)"])
            throw error
        }
        let restored = reservations.snapshot
        if !restored.registrations.isEmpty {
            logger.info("persistent reservations restored", metadata: [
                "registrations": "\(restored.registrations.count)",
                "reserved": "\(restored.reservation != nil)",
            ])
        }
    }

    // MARK: - Public surface

    public var blockSizeBytes: Int { backend.blockSizeBytes }

    /// The largest Data-Out or Data-In one command may carry; a transport may refuse to collect
    /// more (the command fails with INVALID FIELD IN CDB anyway).
    public var maximumTransferLengthBytes: Int { configuration.maximumTransferLengthBytes }

    /// The current mode parameters (WCE).
    public var modeParameters: ModeParameters { state.withLock { $0.modeParameters } }

    /// Set once, before the first command, by the transport: how PREEMPT AND ABORT aborts tasks.
    public var abortTasksHandler: AbortTasksHandler? {
        get { state.withLock { $0.abortTasksHandler } }
        set { state.withLock { $0.abortTasksHandler = newValue } }
    }

    /// The ALUA state of this server's target port group now: it follows the volume's role
    /// and lease (`AsymmetricAccessState.init(writeRefusal:)`). The next command of every nexus
    /// after a change reports ASYMMETRIC ACCESS STATE CHANGED (2A/06).
    public var accessState: AsymmetricAccessState { AsymmetricAccessState(writeRefusal: backend.writeRefusal) }

    /// The daemon calls this after the volume's capacity changed: every nexus gets CAPACITY
    /// DATA HAS CHANGED (2A/09) on its next command.
    public func capacityChanged() {
        state.withLock { $0.unitAttentions.establish(.capacityDataChanged) { _ in true } }
    }

    /// LOGICAL UNIT RESET (or a target reset): drops RESERVE(6) reservations and gives every
    /// other nexus BUS DEVICE RESET FUNCTION OCCURRED (29/03); the nexus that asked knows
    /// (libiscsi's Reserve6 reset tests continue on it without expecting one). Persistent
    /// reservations and mode parameters stay (keeping WCE=0 across a reset never weakens
    /// durability). Aborting the tasks in flight is the transport's part.
    public func logicalUnitReset(initiatedBy nexus: ITNexus) {
        state.withLock { shared in
            shared.legacyReservationHolder = nil
            shared.unitAttentions.establish(.busDeviceResetOccurred) { $0 != nexus }
        }
        logger.info("logical unit reset", metadata: ["nexus": "\(nexus)"])
    }

    /// The session of `nexus` ended: its RESERVE(6) reservation goes, its unit attentions are
    /// forgotten (a new session starts with 29/00). Persistent reservations stay.
    public func nexusLost(_ nexus: ITNexus) {
        state.withLock { shared in
            shared.unitAttentions.forget(nexus)
            if shared.legacyReservationHolder == nexus { shared.legacyReservationHolder = nil }
        }
    }

    // MARK: - Pipeline

    /// Executes one command. Never throws, never traps on any input. A transport that already
    /// called `executeWithoutWaiting` for this request passes `triedWithoutWaiting` to skip
    /// the repeat.
    public func execute(_ request: SCSICommandRequest, triedWithoutWaiting: Bool = false) async -> SCSIResult {
        if !triedWithoutWaiting, let result = executeWithoutWaiting(request) { return result }
        switch admit(request) {
        case let .answered(result):
            return result
        case let .admitted(command):
            do throws(CommandFailure) {
                return try await dispatch(command, request, triedWithoutWaiting: triedWithoutWaiting)
            } catch {
                return error.result
            }
        }
    }

    /// Executes the command on the calling thread if it needs no waiting: a READ served from
    /// memory, a WRITE (no FUA, write cache on, whole blocks) that fits the log now, and every
    /// command the pipeline answers before its handler. Returns nil, having changed nothing,
    /// for everything else: the transport then runs `execute` (in a task). Event-loop
    /// transports so answer most I/O without creating a task.
    public func executeWithoutWaiting(_ request: SCSICommandRequest) -> SCSIResult? {
        switch admit(request) {
        case let .answered(result):
            return result
        case let .admitted(command):
            do throws(CommandFailure) {
                switch command {
                case let .read(extent, fua): return try readWithoutWaiting(extent, fua: fua)
                case let .write(extent, fua): return try writeWithoutWaiting(extent, fua: fua, request)
                default: return nil
                }
            } catch {
                return error.result
            }
        }
    }

    private enum Admission {
        case admitted(SCSICommand)
        case answered(SCSIResult)
    }

    /// The pipeline before the handler: a pending unit attention, a bad CDB, a reservation
    /// conflict or an inaccessible ALUA state answers the command here. Admitting changes
    /// nothing but a reported unit attention (consumed) and a new ALUA state (published once),
    /// so it may run twice per command.
    private func admit(_ request: SCSICommandRequest) -> Admission {
        let access = observeAccessState()
        if let attention = takeUnitAttention(request) {
            return .answered(.checkCondition(SenseData(attention)))
        }
        let command: SCSICommand
        switch CDBDecoder.decode(cdb: request.cdb) {
        case .success(let decoded): command = decoded
        case .failure(let failure): return .answered(.checkCondition(failure.sense))
        }
        do throws(CommandFailure) {
            try checkReservations(command, request.nexus)
            // ALUA: the table in docs/ISCSI.md, "Commands in each state".
            if !access.admits(command), let refusal = access.refusalSense { throw .check(refusal) }
            return .admitted(command)
        } catch {
            return .answered(error.result)
        }
    }

    /// The ALUA state this command runs under. When it differs from the state initiators were
    /// last told of, every nexus gets 2A/06, once per change. No thread watches the volume: its
    /// role changes rarely and a lease runs out without an event, so each command compares
    /// (one read of the volume's gate, one atomic load). Only a change takes the lock, and reads
    /// the volume again under it, so commands that saw different states publish them in order.
    private func observeAccessState() -> AsymmetricAccessState {
        let seen = accessState
        guard seen.rawValue != reportedAccessState.load(ordering: .acquiring) else { return seen }
        let (current, previous) = state.withLock { shared -> (AsymmetricAccessState, AsymmetricAccessState?) in
            let current = accessState
            let reported = reportedAccessState.load(ordering: .relaxed)
            guard current.rawValue != reported else { return (current, nil) }
            reportedAccessState.store(current.rawValue, ordering: .releasing)
            shared.unitAttentions.establish(.asymmetricAccessStateChanged) { _ in true }
            return (current, AsymmetricAccessState(rawValue: reported))
        }
        if let previous {
            logger.info("asymmetric access state changed", metadata: [
                "from": "\(previous)", "to": "\(current)", "role": "\(backend.role)",
            ])
        }
        return current
    }

    /// Registers a new nexus and returns its oldest unit attention, unless the command is one
    /// of the three that never report one (SAM-5 5.14).
    private func takeUnitAttention(_ request: SCSICommandRequest) -> SenseCode? {
        let opcode = request.cdb.getInteger(at: request.cdb.readerIndex, as: UInt8.self)
        let (code, untracked) = state.withLock { shared -> (SenseCode?, Bool) in
            guard shared.unitAttentions.observe(request.nexus) else {
                defer { shared.warnedUntrackedNexus = true }
                return (nil, !shared.warnedUntrackedNexus)
            }
            if opcode == 0x12 || opcode == 0xA0 || opcode == 0x03 { return (nil, false) }
            return (shared.unitAttentions.takeNext(for: request.nexus), false)
        }
        if untracked {
            logger.warning("too many I_T nexuses: unit attentions are not tracked for new ones",
                           metadata: ["limit": "\(UnitAttentionTable.maxNexuses)"])
        }
        return code
    }

    private func dispatch(_ command: SCSICommand, _ request: SCSICommandRequest,
                          triedWithoutWaiting: Bool) async throws(CommandFailure) -> SCSIResult {
        switch command {
        case .testUnitReady: return .good()
        case .requestSense(let length): return requestSense(request.nexus, allocationLength: length)
        case .inquiry(let page, let length): return try inquiry(page: page, allocationLength: length)
        case .reportLUNs(_, let length): return reportLUNs(allocationLength: length)
        case .readCapacity10: return readCapacity10()
        case .readCapacity16(let length): return readCapacity16(allocationLength: length)
        case .read(let extent, let fua): return try await read(extent, fua: fua, triedWithoutWaiting: triedWithoutWaiting)
        case .write(let extent, let fua): return try await write(extent, fua: fua, request)
        case .verify(let extent, let check): return try await verify(extent, byteCheck: check, request)
        case .writeAndVerify(let extent, let check): return try await writeAndVerify(extent, byteCheck: check, request)
        case .writeSame(let command): return try await writeSame(command, request)
        case .compareAndWrite(let extent, let fua): return try await compareAndWrite(extent, fua: fua, request)
        case .orWrite(let extent, let fua): return try await orWrite(extent, fua: fua, request)
        case .synchronizeCache(let extent): return try await synchronizeCache(extent)
        case .prefetch(let extent): return try prefetch(extent)
        case .unmap(let length): return try await unmap(parameterListLength: length, request)
        case .getLBAStatus(let lba, let length): return try await getLBAStatus(lba: lba, allocationLength: length)
        case .modeSense(let command): return try modeSense(command)
        case .modeSelect(let command): return try modeSelect(command, request)
        case .startStopUnit(let start, _, let noFlush): return try await startStopUnit(start: start, noFlush: noFlush)
        case .preventAllowMediumRemoval: return .good()
        case .reportSupportedOperationCodes(let command): return try reportSupportedOperationCodes(command)
        case .reportTargetPortGroups(let extended, let length):
            return reportTargetPortGroups(extendedHeader: extended, allocationLength: length)
        case .persistentReserveIn(let action, let length): return persistentReserveIn(action, allocationLength: length)
        case .persistentReserveOut(let command): return try await persistentReserveOut(command, request)
        case .reserve: return try reserve(request.nexus)
        case .release: return try release(request.nexus)
        case .readDefectData(let tenByte, let format, let length):
            return readDefectData(tenByte: tenByte, listFormat: format, allocationLength: length)
        }
    }

    // MARK: - Helpers for handlers

    /// Blocks on the volume now.
    var capacityBlocks: UInt64 { backend.blockCount }

    /// ILLEGAL REQUEST 21/00 unless `[lba, lba + blockCount)` is inside the volume.
    func checkRange(_ extent: BlockExtent) throws(CommandFailure) {
        let capacity = capacityBlocks
        guard extent.lba <= capacity, extent.blockCount <= capacity - extent.lba else { throw .lbaOutOfRange }
    }

    /// SBC-4 4.x: a transfer above the Block Limits maximum is an invalid CDB field.
    func checkTransferLength(_ blockCount: UInt64) throws(CommandFailure) {
        guard blockCount <= UInt64(limits.maximumTransferBlocks) else { throw .check(.invalidFieldInCDB) }
    }

    /// The command's Data-Out, which must be exactly `lengthBytes` long: a mismatch between
    /// the CDB and the transfer (SAM-5 overlength or underlength) transfers nothing.
    func dataOut(_ request: SCSICommandRequest, lengthBytes: Int) throws(CommandFailure) -> ByteBuffer {
        precondition(lengthBytes > 0, "only commands with Data-Out ask for it")
        guard request.expectedDataTransferLength == lengthBytes, let data = request.dataOut,
              data.readableBytes >= lengthBytes,
              let slice = data.getSlice(at: data.readerIndex, length: lengthBytes) else { throw .dataOutMismatch }
        return slice
    }

    /// GOOD with `bytes` cut to the allocation length.
    func dataIn(_ bytes: [UInt8], allocationLength: Int) -> SCSIResult {
        let cut = bytes.truncated(to: allocationLength)
        return .good(cut.isEmpty ? nil : ByteBuffer(bytes: cut))
    }

    /// Runs `body` while holding the blocks of `extent` exclusively (see `RangeLock`).
    func exclusive<T>(_ extent: BlockExtent, _ body: () async throws(CommandFailure) -> T) async throws(CommandFailure) -> T {
        let outcome: Result<T, CommandFailure>? = await rangeLock.withRange(extent.lba..<(extent.lba + extent.blockCount)) {
            do throws(CommandFailure) {
                return .success(try await body())
            } catch {
                return .failure(error)
            }
        }
        guard let outcome else { throw .taskSetFull }
        return try outcome.get()
    }

    /// Whether a write must be durable before it completes: FUA, or the write cache is off.
    func mustBeDurable(fua: Bool) -> Bool {
        fua || !modeParameters.writeCacheEnabled
    }
}
