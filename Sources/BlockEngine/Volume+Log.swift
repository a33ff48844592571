// The engine's side of replication (docs/ENGINE.md, "The log for replication"): a primary
// reads its completed records by LSN and holds them until its replicas have them; a replica
// appends its primary's records at their own LSN and epoch and makes them durable with its
// own group commit. The engine knows no network: BlockReplication drives these calls.

/// One log record as replication ships it: what it did, with the LSN and epoch it was
/// written at, not where it sits in a ring.
public struct LogRecord: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        /// `payload` holds the blocks written at `lba`.
        case write = 1
        /// `blockCount` blocks at `lba` read as zeros from now on; no payload.
        case trim = 2
    }

    public var lsn: UInt64
    public var epoch: UInt64
    public var kind: Kind
    public var lba: UInt64
    public var blockCount: UInt32
    public var payload: [UInt8]
    /// CRC32C of `payload` (0 when empty), as the primary computed it.
    public var payloadCRC: UInt32

    public init(lsn: UInt64, epoch: UInt64, kind: Kind, lba: UInt64, blockCount: UInt32, payload: [UInt8],
                payloadCRC: UInt32) {
        self.lsn = lsn
        self.epoch = epoch
        self.kind = kind
        self.lba = lba
        self.blockCount = blockCount
        self.payload = payload
        self.payloadCRC = payloadCRC
    }
}

/// What a log read found.
public enum LogRead: Sendable, Equatable {
    /// Completed records from the LSN asked for, contiguous; empty when none is complete yet.
    case records([LogRecord])
    /// The records asked for were written back and freed: the log now starts at `oldestLSN`
    /// (a replica that needs older ones must rebuild).
    case recycled(oldestLSN: UInt64)
}

/// Where the log stands.
public struct LogPositions: Sendable, Equatable {
    /// The last LSN handed out.
    public var lastLSN: UInt64
    /// Every record up to this one is written into the log in memory (readable, shippable).
    public var completedLSN: UInt64
    /// Every record up to this one is durable locally.
    public var durableLSN: UInt64
    /// Every record up to this one is in the data region; the log starts after it.
    public var checkpointLSN: UInt64
    /// The highest LSN a flush or FUA write was acknowledged at since the volume was opened
    /// (0: none yet); on a replica, the primary's as it last said (`noteCommitted`). Whoever
    /// promotes a replica must pick one whose durable LSN covers it.
    public var committedLSN: UInt64
}

/// A hold that keeps log records for a replica (`Volume.holdLog`).
public struct LogHold: Sendable, Hashable {
    let id: UInt64
}

extension Volume {
    /// On a replica: the primary said a flush was acknowledged at `lsn`. Shown as
    /// `logPositions.committedLSN` (it only grows; it resets when the volume reopens).
    /// Ignored on a copy that is not a replica, whose own flushes set it.
    public func noteCommitted(byPrimary lsn: UInt64) {
        guard role == .replica else { return }
        core.committedLSN.max(lsn, ordering: .releasing)
    }

    /// The epoch of the record at the checkpoint LSN, which the log no longer holds (0 when
    /// there is none yet; nil when not known: a volume last written by an older format, or
    /// a replica whose rebuild just ended). Compares written-back histories of two copies.
    public var checkpointRecordEpoch: UInt64? { core.superblocks.superblock.checkpointEpoch }

    /// Log bytes after record `lsn`: what a replica durable up to `lsn` lacks (its lag in
    /// bytes). Nil when `lsn` is before the checkpoint: it lacks more than the log holds.
    public func logBytes(after lsn: UInt64) -> UInt64? {
        core.sequencer.withLock { $0.ring.bytes(after: lsn) }
    }

    public var logPositions: LogPositions {
        let (last, completed, checkpoint) = core.sequencer.withLock {
            ($0.ring.lastAllocatedLSN, $0.ring.completedLSN, $0.ring.checkpointLSN)
        }
        return LogPositions(lastLSN: last, completedLSN: completed,
                            durableLSN: core.durableLSN.load(ordering: .acquiring), checkpointLSN: checkpoint,
                            committedLSN: core.committedLSN.load(ordering: .acquiring))
    }

    /// Completed records from `lsn` on, at most about `maxBytes` of payload (at least one
    /// record when any is complete). Reads memory only: the log's records since the
    /// checkpoint are in the ring, also after a reopen (recovery loads them).
    public func readLog(from lsn: UInt64, maxBytes: Int = 1 << 20) throws(BlockError) -> LogRead {
        guard maxBytes > 0 else { throw .invalidArgument("maxBytes must be positive") }
        return try core.readLog(from: lsn, maxBytes: maxBytes)
    }

    /// Returns the completed LSN once it passes `lsn`, or after `timeoutMs`, a failure or
    /// the close, whichever comes first.
    public func waitForLog(after lsn: UInt64, timeoutMs: Int) async -> UInt64 {
        await core.waitForLog(after: lsn, timeoutMs: max(1, timeoutMs))
    }

    /// Keeps the records from `lsn` on in the log (the write-back does not free them) until
    /// the hold advances past them, within the bounds of `VolumeOptions.logRetentionMaxFraction`
    /// and `logRetentionMaxMs`; past them the hold breaks (`logHoldBroken`).
    public func holdLog(from lsn: UInt64) -> LogHold { LogHold(id: core.holdLog(from: lsn)) }

    /// The holder has every record before `lsn`; returns why the hold broke, or nil.
    @discardableResult
    public func advance(_ hold: LogHold, to lsn: UInt64) -> String? { core.advanceHold(hold.id, to: lsn) }

    /// Why the hold broke, or nil while it holds (or was released).
    public func logHoldBroken(_ hold: LogHold) -> String? { core.holdState(hold.id)?.broken }

    public func release(_ hold: LogHold) { core.releaseHold(hold.id) }

    /// A primary opened with records still in its log holds them from the start (its
    /// replicas may need them), until this hold is released or breaks; nil otherwise.
    public var recoveredLogHold: LogHold? {
        core.holdState(VolumeCore.recoveredLogHoldID) == nil ? nil : LogHold(id: VolumeCore.recoveredLogHoldID)
    }

    /// Appends a primary's record at its own LSN and epoch (a replica only: the next LSN,
    /// an epoch within what the replica has; the payload must match its CRC). Returns once
    /// the record is in the log; `syncLog()` makes it durable.
    public func applyReplicated(_ record: LogRecord) async throws(BlockError) {
        let count = UInt64(record.blockCount)
        try core.checkRange(lba: record.lba, blockCount: count)
        switch record.kind {
        case .write:
            guard record.payload.count == Int(count) * blockSizeBytes else {
                throw .invalidArgument("record \(record.lsn): \(record.payload.count) payload bytes for \(count) blocks")
            }
            guard record.payload.count <= core.geometry.maxPayloadBytes else {
                throw .invalidArgument("record \(record.lsn) is larger than this volume's log takes")
            }
        case .trim:
            guard record.payload.isEmpty, count <= VolumeCore.maxTrimBlocksPerRecord else {
                throw .invalidArgument("record \(record.lsn): a trim with a payload or over the trim bound")
            }
        }
        let crc = record.payload.isEmpty ? 0 : record.payload.withUnsafeBytes { CRC32C.checksum($0) }
        guard crc == record.payloadCRC else {
            throw .corrupt(location: "replicated record \(record.lsn)", reason: "payload checksum mismatch")
        }
        try beginOperation()
        defer { endOperation() }
        _ = try await core.append(kind: record.kind == .write ? .write : .trim, lba: record.lba, blockCount: count,
                                  source: record.payload, payloadOffset: 0, payloadLength: record.payload.count,
                                  replicated: ReplicatedIdentity(lsn: record.lsn, epoch: record.epoch))
    }

    /// Drops every record after `lsn`: a replica's divergent suffix (records of an older
    /// epoch that the new primary never had), before it takes the new primary's records at
    /// those LSNs. Only on a copy that takes no writes (replica, fenced, none), only while no
    /// record is being applied, and only down to the checkpoint: records already written
    /// back cannot be undone (that replica must rebuild). Crash-safe: the cut is persisted
    /// (a new session from `lsn + 1`) before anything in memory changes.
    public func truncateLog(after lsn: UInt64) async throws(BlockError) {
        try beginOperation()
        defer { endOperation() }
        try await Self.offload { [core] () throws(BlockError) in try core.truncateLog(after: lsn) }
    }

    // MARK: - Rebuild (VolumeCore+Rebuild.swift)

    /// A rebuild is writing the data region (persisted): the image is no consistent state of
    /// any LSN until `endRebuild`, after a restart too. Such a copy must not be promoted.
    public var imageIncomplete: Bool { core.superblocks.superblock.imageIncomplete }

    /// Starts a rebuild on a replica (or a fenced or unassigned copy): writes its log back
    /// (the data region then holds everything), persists the image as incomplete and, for a
    /// fresh replica, the primary's `identity`. Until `resetLog`, image writes go straight to
    /// the data region and replicated records are refused.
    public func beginRebuild(identity: VolumeUUID? = nil) async throws(BlockError) {
        try beginOperation()
        defer { endOperation() }
        try await core.drainWriteBack()
        try await Self.offload { [core] () throws(BlockError) in try core.beginRebuild(identity: identity) }
    }

    /// Takes the primary's `identity` on a replica that never held a record (a fresh copy
    /// that streams from LSN 1, without a rebuild), so every copy reports one logical unit.
    public func adoptIdentity(_ identity: VolumeUUID) async throws(BlockError) {
        try beginOperation()
        defer { endOperation() }
        try await Self.offload { [core] () throws(BlockError) in try core.adoptIdentity(identity) }
    }

    /// Writes whole blocks of the primary's image at `lba` into the data region (a range of
    /// zeros becomes a hole). Only while a rebuild copies.
    public func writeImage(at lba: UInt64, _ bytes: some BlockWriteSource) async throws(BlockError) {
        try beginOperation()
        defer { endOperation() }
        try await Self.offload { [core] () throws(BlockError) in
            let outcome: Result<Void, BlockError> = bytes.withUnsafeBytes { buffer in
                Result { () throws(BlockError) in try core.writeImage(at: lba, buffer) }
            }
            try outcome.get()
        }
    }

    /// Ends a rebuild's copy at the primary's cut `lsn` (the copy started after the primary
    /// completed it): syncs the data region and starts the log empty after `lsn`, with a new
    /// session; the primary's records from `lsn + 1` on are applied next.
    public func resetLog(toCheckpoint lsn: UInt64) async throws(BlockError) {
        try beginOperation()
        defer { endOperation() }
        try await Self.offload { [core] () throws(BlockError) in try core.resetLog(toCheckpoint: lsn) }
    }

    /// Persists the image as complete: call once the replica caught up and its content was
    /// checked against the primary's.
    public func endRebuild() async throws(BlockError) {
        try beginOperation()
        defer { endOperation() }
        try await Self.offload { [core] () throws(BlockError) in try core.endRebuild() }
    }

    // MARK: - Durability

    /// Makes every completed record durable locally, whatever the role and durability mode
    /// (a replica acknowledges its durable LSN with it); returns that LSN.
    @discardableResult
    public func syncLog() async throws(BlockError) -> UInt64 {
        try beginOperation()
        defer { endOperation() }
        let lsn = core.sequencer.withLock { $0.ring.completedLSN }
        try await core.waitLocallyDurable(lsn)
        return lsn
    }
}
