// The public face of the engine: a crash-safe block volume in one file.
//
// Lifecycle: `create` or `open` (which recovers), then any number of concurrent `read`,
// `write`, `trim` and `flush` calls from any task, then `close`. Two background jobs per
// volume do group commit and write-back, on thread pools shared by every volume of the
// process (`EngineRuntime`); callers never block the cooperative pool on a sync, they suspend.

import Dispatch
import Logging
import Synchronization

/// A block volume stored in one file.
///
/// Durability: a `write` without `fua` returns once its record is in the write-ahead log
/// (like a volatile write cache); `flush()` and `fua` writes return only when the data is
/// durable as the volume's `DurabilityMode` requires.
public final class Volume: Sendable {
    /// The file this volume lives in.
    public let path: String
    /// The volume's identity, fixed at create; a replica takes its primary's at its first
    /// rebuild (`beginRebuild(identity:)`), so every copy reports the same logical unit.
    public var uuid: VolumeUUID { core.superblocks.superblock.uuid }
    /// Bytes per block: 512 or 4096.
    public let blockSizeBytes: Int
    /// Number of addressable blocks.
    public let blockCount: UInt64
    /// The persisted durability mode.
    public let durability: DurabilityMode
    /// Copies including the primary.
    public let replicaFactor: Int

    let core: VolumeCore
    private let lifecycle: ConditionLock<Lifecycle>
    /// Whether the background jobs still run (until close or deinit waited for their end).
    private let jobsRunning: Mutex<Bool>

    private struct Lifecycle {
        enum Phase { case open, closing, closed }
        var phase = Phase.open
        var inFlight = 0
        /// The close call that closes the volume, waiting for in-flight calls to end.
        var drained: CheckedContinuation<Void, Never>?
        /// Other close calls, resumed with its outcome once the volume is closed.
        var closeWaiters: [CheckedContinuation<BlockError?, Never>] = []
        /// How the close went (nil: cleanly), once the phase is closed.
        var closeOutcome: BlockError?
    }

    /// Size of the volume in bytes.
    public var sizeBytes: UInt64 { blockCount * UInt64(blockSizeBytes) }

    private init(core: VolumeCore, superblock: Superblock) {
        self.core = core
        path = core.path
        blockSizeBytes = Int(superblock.blockSizeBytes)
        blockCount = superblock.blockCount
        durability = superblock.durability
        replicaFactor = Int(superblock.replicaFactor)
        lifecycle = ConditionLock(Lifecycle())
        jobsRunning = Mutex(true)
        core.runtime.logWriters.start(core.logWriterJob)
        core.runtime.writeBack.start(core.writeBackJob)
    }

    /// Stops the background jobs and waits for their last step (the log writer's writes and
    /// syncs every completed record). Blocks: call off the cooperative pool.
    private static func stopJobs(of core: VolumeCore) {
        core.stopLogWriter()
        core.stopWriteBack()
        core.runtime.logWriters.waitUntilFinished(core.logWriterJob)
        core.runtime.writeBack.waitUntilFinished(core.writeBackJob)
    }

    deinit {
        // A volume dropped without close(): stop its jobs and wait for their end (their
        // steps hold the core weakly and never the Volume, so this cannot run on a pool
        // thread). Everything flushed is durable and the rest is recovered from the WAL on
        // the next open; the file closes with the core.
        if jobsRunning.withLock({ $0 }) { Self.stopJobs(of: core) }
    }

    // MARK: - Create and open

    /// Creates a new volume file at `path` (it must not exist) and opens it. Creation is
    /// atomic: the volume is formatted and synced under a staging name and linked to `path`
    /// only then, so a crash never leaves a half-formatted file at `path` (which a later
    /// open would refuse and a later create would find existing). A staging file left by
    /// such a crash is removed by the next create of the same path.
    public static func create(at path: String, configuration: VolumeConfiguration,
                              options: VolumeOptions = VolumeOptions()) async throws(BlockError) -> Volume {
        try configuration.validate()
        try options.validate()
        return try await offload { () throws(BlockError) -> Volume in
            if access(path, F_OK) == 0 { throw .alreadyExists(path: path) }
            let staging = stagingPath(forCreating: path)
            let file = try createStagingFile(staging)
            do throws(BlockError) {
                try format(file: file, configuration: configuration)
            } catch {
                file.close()
                _ = unlinkFile(staging)
                throw error
            }
            // The staging file stays open (and locked) into the open below: closing it and
            // opening `path` anew raced the release of its lock (seen once in a full test
            // run: a create failed `inUse` on its own new file; the kernel may drop the last
            // reference of a file that io_uring requests used after close() returns).
            // link() never replaces an existing path: creation stays exclusive.
            if link(staging, path) == 0 {
                _ = unlinkFile(staging)
            } else if errno == EEXIST {
                file.close()
                _ = unlinkFile(staging)
                throw .alreadyExists(path: path)
            } else if rename(staging, path) != 0 {
                // (A file system without hard links renames instead; the path was free above.)
                let code = errno
                file.close()
                _ = unlinkFile(staging)
                throw .io(operation: "rename \(staging) to \(path)", errno: code)
            }
            do throws(BlockError) {
                try DurableDirectory.syncEntry(of: path)
                return try open(file: file, path: path, options: options)
            } catch {
                file.close()
                _ = unlinkFile(path)
                throw error
            }
        }
    }

    /// Deletes the volume file at `path` unless a writable open (in this process or another)
    /// holds it, then `inUse`; the lock is held across the unlink, so no writer has the file
    /// open at that moment. The directory is synced, so the deletion survives a power cut.
    /// Returns false when there was no file.
    @discardableResult
    public static func remove(at path: String) async throws(BlockError) -> Bool {
        try await offload { () throws(BlockError) -> Bool in
            guard access(path, F_OK) == 0 else { return false }
            try PosixVolumeFile.removeIfUnused(path: path)
            try DurableDirectory.syncEntry(of: path)
            return true
        }
    }

    /// A crash between `create`'s link and its unlink leaves the staging name as a second
    /// link to the volume (holding its space after the volume is deleted): removes it when
    /// it is exactly that, the same file.
    private static func removeStagingLink(of path: String) {
        let staging = stagingPath(forCreating: path)
        var volumeStat = stat(), stagingStat = stat()
        guard stat(path, &volumeStat) == 0, stat(staging, &stagingStat) == 0,
              volumeStat.st_dev == stagingStat.st_dev, volumeStat.st_ino == stagingStat.st_ino else { return }
        _ = unlinkFile(staging)
    }

    /// The name a volume is formatted under before it appears at `path`.
    package static func stagingPath(forCreating path: String) -> String { path + ".creating" }

    /// Creates the staging file. One that exists already is the leftover of a create that
    /// a crash interrupted, unless another create holds it open (then `inUse`): it is
    /// removed while locked, and created anew.
    private static func createStagingFile(_ staging: String) throws(BlockError) -> PosixVolumeFile {
        for _ in 0..<2 {
            do throws(BlockError) {
                return try PosixVolumeFile(path: staging, create: true)
            } catch .alreadyExists {
                try PosixVolumeFile.removeIfUnused(path: staging)
            }
        }
        // Another create took the name between the removal and this one's attempt.
        throw .inUse(path: staging)
    }

    /// Opens an existing volume, recovering from its WAL. A volume that fails to open is left
    /// exactly as it was, and the error says why.
    public static func open(at path: String, options: VolumeOptions = VolumeOptions()) async throws(BlockError) -> Volume {
        try options.validate()
        return try await offload { () throws(BlockError) -> Volume in
            let file = try PosixVolumeFile(path: path)
            removeStagingLink(of: path)
            do throws(BlockError) {
                return try open(file: file, path: path, options: options)
            } catch {
                file.close()
                throw error
            }
        }
    }

    /// Writes an empty volume into a new, empty file.
    package static func format(file: any VolumeFileIO, configuration: VolumeConfiguration) throws(BlockError) {
        try configuration.validate()
        let superblock = Superblock(
            sequence: 1, uuid: .random(), blockSizeBytes: UInt32(configuration.blockSizeBytes),
            volumeSizeBytes: configuration.sizeBytes, walOffsetBytes: Superblock.walOffsetBytes,
            walSizeBytes: configuration.walSizeBytes,
            dataOffsetBytes: Superblock.walOffsetBytes + configuration.walSizeBytes,
            durability: configuration.durability, replicaFactor: UInt8(configuration.replicaFactor),
            epoch: 0, checkpointLSN: 0, walTailPosition: 0, sessionID: 0, sessionStartLSN: 1,
            createdAtUnixMs: currentUnixMs())
        // Zero the ring so WAL appends overwrite allocated blocks: no block allocation (and no
        // journal commit) on the fdatasync path during the first lap.
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { zeros.deallocate() }
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        var written: UInt64 = 0
        while written < configuration.walSizeBytes {
            let length = Int(min(UInt64(zeros.count), configuration.walSizeBytes - written))
            try file.write(UnsafeRawBufferPointer(rebasing: zeros[0..<length]), UnsafeRawBufferPointer(start: nil, count: 0),
                           at: Superblock.walOffsetBytes + written)
            written += UInt64(length)
        }
        try file.setSize(superblock.requiredFileSizeBytes)
        try SuperblockStore.write(superblock, to: file)
        try file.sync()
    }

    /// Recovers the volume in `file` and starts it. On failure nothing was written.
    package static func open(file: any VolumeFileIO, path: String, options: VolumeOptions) throws(BlockError) -> Volume {
        let recovered = try Recovery.recover(file: file, path: path)
        let mirror = try loadRing(file: file, superblock: recovered.superblock, headPosition: recovered.headPosition)
        var superblock = recovered.superblock
        superblock.sequence += 1
        superblock.sessionID = randomSessionID(excluding: recovered.superblock.sessionID)
        superblock.sessionStartLSN = recovered.nextLSN
        // Everything up to here only read. This write starts the new session: records from
        // beyond the recovered tail can never be mistaken for this session's.
        try SuperblockStore.write(superblock, to: file)
        try file.sync()
        options.logger.info("volume opened", metadata: [
            "path": "\(path)", "records_recovered": "\(recovered.records.count)",
            "checkpoint_lsn": "\(superblock.checkpointLSN)", "scan_stop": "\(recovered.scanStop)",
        ])
        let core = VolumeCore(path: path, file: file, mirror: mirror, recovered: recovered, superblock: superblock,
                              options: options)
        return Volume(core: core, superblock: superblock)
    }

    /// The in-memory ring, holding the recovered log `[tail, head)` (in whole blocks) as the
    /// file does; the log writer continues from there.
    private static func loadRing(file: any VolumeFileIO, superblock: Superblock,
                                 headPosition: UInt64) throws(BlockError) -> WALMirror {
        let mirror = try WALMirror(sizeBytes: superblock.walSizeBytes)
        let tail = superblock.walTailPosition
        guard headPosition > tail else { return mirror }
        for piece in mirror.pieces(from: WALMirror.alignDown(tail), to: WALMirror.alignUp(headPosition)) {
            try file.read(into: piece, at: superblock.walOffsetBytes + mirror.ringOffset(of: piece))
        }
        return mirror
    }

    // MARK: - I/O

    /// Reads whole blocks starting at `lba` into `buffer` (its length is a multiple of the
    /// block size). Returns the newest completed write of every block. Set
    /// `pageCacheChecked` when `readWithoutWaiting` just returned false for this range: the
    /// page cache is then not asked again (one system call less per read from the device).
    public func read(at lba: UInt64, into buffer: UnsafeMutableRawBufferPointer,
                     pageCacheChecked: Bool = false) async throws(BlockError) {
        let count = try core.blocks(inBytes: buffer.count)
        try core.checkRange(lba: lba, blockCount: count)
        try beginOperation()
        defer { endOperation() }
        try await core.read(lba: lba, into: buffer, askPageCache: !pageCacheChecked)
        core.metrics.reads.increment()
        core.metrics.readBytes.increment(by: buffer.count)
    }

    /// Reads like `read(at:into:)` but synchronously, on the calling thread, which blocks
    /// while the device reads. For frontends that fill their own buffers inside synchronous
    /// closures; prefer the async form under concurrency (it keeps many reads in flight).
    public func readNow(at lba: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockError) {
        let count = try core.blocks(inBytes: buffer.count)
        try core.checkRange(lba: lba, blockCount: count)
        try beginOperation()
        defer { endOperation() }
        try core.readBlocking(lba: lba, into: buffer)
        core.metrics.reads.increment()
        core.metrics.readBytes.increment(by: buffer.count)
    }

    /// Reads like `read(at:into:)`, but only when that needs no device read: every block is
    /// in the log's memory or in the page cache. Returns false otherwise (the buffer then
    /// holds nothing useful; use the async form). For callers on an event loop, which so
    /// answer most reads without starting a task.
    public func readWithoutWaiting(at lba: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockError) -> Bool {
        let count = try core.blocks(inBytes: buffer.count)
        try core.checkRange(lba: lba, blockCount: count)
        try beginOperation()
        defer { endOperation() }
        guard try core.readFromMemory(lba: lba, into: buffer) else { return false }
        core.metrics.reads.increment()
        core.metrics.readBytes.increment(by: buffer.count)
        return true
    }

    /// Reads `blockCount` blocks starting at `lba`.
    public func read(at lba: UInt64, blockCount: Int) async throws(BlockError) -> [UInt8] {
        guard blockCount > 0 else { throw .invalidArgument("a read must cover at least one block") }
        try core.checkRange(lba: lba, blockCount: UInt64(blockCount))
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: blockCount * blockSizeBytes, alignment: 64)
        defer { storage.deallocate() }
        try beginOperation()
        defer { endOperation() }
        try await core.read(lba: lba, into: storage)
        let bytes = [UInt8](storage)
        core.metrics.reads.increment()
        core.metrics.readBytes.increment(by: bytes.count)
        return bytes
    }

    /// Writes whole blocks at `lba`. Returns once the data is in the write-ahead log; with
    /// `fua` it returns only once the data is durable (as `flush()` defines). The bytes are
    /// read while the call runs; `source` is not retained afterwards. Returns the LSN of the
    /// write's last log record (a replication frontend waits for "durable up to it").
    @discardableResult
    public func write(at lba: UInt64, _ source: some BlockWriteSource, fua: Bool = false) async throws(BlockError) -> UInt64 {
        let byteCount = source.byteCount
        let count = try core.blocks(inBytes: byteCount)
        try core.checkRange(lba: lba, blockCount: count)
        try beginOperation()
        defer { endOperation() }
        let chunkBytes = core.geometry.maxPayloadBytes
        var lastLSN: UInt64 = 0
        var offset = 0
        // Writes larger than one record become several records (each block is still written
        // whole; a crash may keep a prefix of them).
        while offset < byteCount {
            let length = min(chunkBytes, byteCount - offset)
            lastLSN = try await core.append(kind: .write, lba: lba + UInt64(offset / blockSizeBytes),
                                            blockCount: UInt64(length / blockSizeBytes), source: source,
                                            payloadOffset: offset, payloadLength: length)
            offset += length
        }
        core.metrics.writes.increment()
        core.metrics.writeBytes.increment(by: byteCount)
        if fua { try await makeDurable(upTo: lastLSN) }
        return lastLSN
    }

    /// Writes like `write(at:_:fua: false)`, but only when that needs no waiting: the data
    /// fits one log record and the log has room now. Returns false, having written nothing,
    /// otherwise (use the async form).
    public func writeWithoutWaiting(at lba: UInt64, _ source: some BlockWriteSource) throws(BlockError) -> Bool {
        let byteCount = source.byteCount
        let count = try core.blocks(inBytes: byteCount)
        try core.checkRange(lba: lba, blockCount: count)
        guard byteCount <= core.geometry.maxPayloadBytes else { return false }
        try beginOperation()
        defer { endOperation() }
        guard try core.appendWithoutWaiting(kind: .write, lba: lba, blockCount: count, source: source,
                                            payloadOffset: 0, payloadLength: byteCount) != nil else { return false }
        core.metrics.writes.increment()
        core.metrics.writeBytes.increment(by: byteCount)
        return true
    }

    /// Writes whole blocks at `lba` from memory the caller keeps valid until the call
    /// returns; see `write(at:_:fua:)`.
    @discardableResult
    public func write(at lba: UInt64, from bytes: UnsafeRawBufferPointer, fua: Bool = false) async throws(BlockError) -> UInt64 {
        try await write(at: lba, BorrowedBytes(bytes: bytes), fua: fua)
    }

    /// Deallocates `blockCount` blocks at `lba`: they read as zeros from now on, and their
    /// space in the file is released once written back. A large range becomes several log
    /// records (a crash may keep a prefix of them), each small enough that entering it into
    /// the read index holds the index lock only briefly. Returns the LSN of its last record.
    @discardableResult
    public func trim(at lba: UInt64, blockCount: UInt64) async throws(BlockError) -> UInt64 {
        try core.checkRange(lba: lba, blockCount: blockCount)
        try beginOperation()
        defer { endOperation() }
        var done: UInt64 = 0
        var lastLSN: UInt64 = 0
        while done < blockCount {
            let count = min(blockCount - done, VolumeCore.maxTrimBlocksPerRecord)
            lastLSN = try await core.append(kind: .trim, lba: lba + done, blockCount: count, source: [UInt8](),
                                            payloadOffset: 0, payloadLength: 0)
            done += count
        }
        core.metrics.trims.increment()
        return lastLSN
    }

    /// Returns once every write completed before this call is durable: locally (one shared
    /// fdatasync per group of callers) and on as many replicas as the durability mode needs.
    /// Returns the LSN it made durable. A copy that may not acknowledge writes (VolumeRole)
    /// refuses flushes too, also when it lost that right while the flush waited.
    @discardableResult
    public func flush() async throws(BlockError) -> UInt64 {
        try beginOperation()
        defer { endOperation() }
        core.metrics.flushes.increment()
        let lsn: UInt64 = try core.sequencer.withLock { (state) throws(BlockError) in
            if let refusal = VolumeCore.gateRefusal(state.gate) { throw refusal }
            return state.ring.lastAllocatedLSN
        }
        try await makeDurable(upTo: lsn)
        return lsn
    }

    /// Moves every write completed before this call from the WAL to the data region and
    /// advances the checkpoint (it happens in the background anyway; this waits for it).
    public func checkpoint() async throws(BlockError) {
        try beginOperation()
        defer { endOperation() }
        try await core.drainWriteBack()
    }

    /// Attaches (or with nil detaches) the replicas' durability barrier.
    public func attachBarrier(_ barrier: (any ReplicaBarrier)?) {
        core.barrier.withLock { $0 = barrier }
    }

    /// The fencing epoch new records carry.
    public var epoch: UInt64 { core.epoch.load(ordering: .acquiring) }

    /// The volume's role (persisted; see `assignRole`).
    public var role: VolumeRole { core.gate.role }

    /// Whether writes and flushes are acknowledged now: standalone, or a primary assigned in
    /// this session whose lease runs; otherwise the error they would fail with.
    public var writeRefusal: BlockError? { core.acknowledgementRefusal() }

    /// Takes `role` at `epoch`, persisted in the superblock before it admits writes. An
    /// epoch lower than the volume's fails with `staleEpoch`; so does a change of role at
    /// the same epoch, except to `fenced` or `none`. The same role at the same epoch renews
    /// the lease (`leaseMs`, primaries only; nil: no expiry) without writing. A volume
    /// opened from disk as primary accepts no writes until assigned again.
    public func assignRole(_ role: VolumeRole, epoch: UInt64, leaseMs: Int? = nil) async throws(BlockError) {
        try beginOperation()
        defer { endOperation() }
        try await Self.offload { [core] () throws(BlockError) in
            try core.assign(role: role, epoch: epoch, leaseMs: leaseMs)
        }
        // The recovered hold kept records a reopened primary's replicas might need; a copy
        // that no longer ships has no use for them, and would block its own rebuild.
        if role == .replica || role == .none { core.releaseHold(VolumeCore.recoveredLogHoldID) }
    }

    /// Stops acknowledging writes and flushes at once and persists `fenced` (a newer epoch
    /// was seen elsewhere); a later assignment with a higher epoch lifts it.
    public func fence() async throws(BlockError) {
        let epoch = self.epoch
        try await assignRole(.fenced, epoch: epoch)
    }

    private func makeDurable(upTo lsn: UInt64) async throws(BlockError) {
        let required = durability.requiredReplicas(replicaFactor: replicaFactor)
        if required > 0 {
            // The replicas' confirmation is awaited while the local sync runs (the records
            // are complete, so replication ships them already): the flush waits for the
            // slower of the two, not their sum. It returns only when both are done.
            var answer: ReplicaBarrierResult? = nil
            if let barrier = core.barrier.withLock({ $0 }) {
                let askedNs = DispatchTime.now().uptimeNanoseconds
                async let replicas = barrier.barrier(upTo: lsn, required: required)
                do throws(BlockError) {
                    try await core.waitLocallyDurable(lsn)
                } catch {
                    _ = await replicas
                    throw error
                }
                answer = await replicas
                core.metrics.barrierWait.recordNanoseconds(Int64(DispatchTime.now().uptimeNanoseconds - askedNs))
            } else {
                try await core.waitLocallyDurable(lsn)
            }
            if let error = BarrierPolicy.evaluate(mode: durability, replicaFactor: replicaFactor, result: answer) {
                core.metrics.barrierFailures.increment()
                throw error
            }
        } else {
            try await core.waitLocallyDurable(lsn)
        }
        // Fenced, or the lease ran out, while it waited: a new primary may lack these records.
        if let refusal = core.acknowledgementRefusal() { throw refusal }
        core.committedLSN.max(lsn, ordering: .releasing)
    }

    // MARK: - Close

    /// Waits for in-flight calls, writes everything back, persists the checkpoint and closes
    /// the file. Later calls fail with `.closed`. Reopening after a clean close replays nothing.
    /// Concurrent and later close calls wait until the volume is closed and report the same
    /// outcome: only the first one does the work, so the file is closed once, after the
    /// background jobs and every in-flight call stopped using it.
    public func close() async throws(BlockError) {
        enum Role { case closer(mustWait: Bool), waiter, done(BlockError?) }
        let role: Role = lifecycle.withLock { state in
            switch state.phase {
            case .open:
                state.phase = .closing
                return .closer(mustWait: state.inFlight > 0)
            case .closing: return .waiter
            case .closed: return .done(state.closeOutcome)
            }
        }
        let outcome: BlockError?
        switch role {
        case let .done(recorded): outcome = recorded
        case .waiter: outcome = await waitForClose()
        case let .closer(mustWait): outcome = await closeFile(afterInFlight: mustWait)
        }
        if let outcome { throw outcome }
    }

    /// The first close call's work; returns its outcome once the file is closed.
    private func closeFile(afterInFlight mustWait: Bool) async -> BlockError? {
        if mustWait {
            await withCheckedContinuation { continuation in
                let resumeNow = lifecycle.withLock { state -> Bool in
                    if state.inFlight == 0 { return true }
                    state.drained = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
        var closeError: BlockError? = core.failure
        if closeError == nil {
            do { try await core.drainWriteBack() } catch { closeError = error }
        }
        let running = jobsRunning.withLock { running in
            defer { running = false }
            return running
        }
        if running {
            await Self.offload { [core] () -> Void in Self.stopJobs(of: core) }
        }
        core.endAllLogWaits()
        core.file.close()
        core.options.memoryBudget?.unregister(core)
        let waiters = lifecycle.withLock { state in
            state.phase = .closed
            state.closeOutcome = closeError
            defer { state.closeWaiters.removeAll() }
            return state.closeWaiters
        }
        for waiter in waiters { waiter.resume(returning: closeError) }
        return closeError
    }

    /// Suspends a close call that found another one closing until the volume is closed.
    private func waitForClose() async -> BlockError? {
        await withCheckedContinuation { continuation in
            let finished: BlockError?? = lifecycle.withLock { state in
                guard state.phase == .closed else {
                    state.closeWaiters.append(continuation)
                    return nil
                }
                return .some(state.closeOutcome)
            }
            if let finished { continuation.resume(returning: finished) }
        }
    }

    /// Close calls suspended until the volume is closed (for tests).
    var suspendedCloseCalls: Int { lifecycle.withLock { ($0.drained == nil ? 0 : 1) + $0.closeWaiters.count } }

    func beginOperation() throws(BlockError) {
        try lifecycle.withLock { (state) throws(BlockError) in
            guard state.phase == .open else { throw .closed }
            state.inFlight += 1
        }
    }

    func endOperation() {
        let drained = lifecycle.withLock { state -> CheckedContinuation<Void, Never>? in
            state.inFlight -= 1
            guard state.inFlight == 0, let waiter = state.drained else { return nil }
            state.drained = nil
            return waiter
        }
        drained?.resume()
    }

    /// Runs blocking work (file I/O, joins) on a Dispatch thread instead of the caller's.
    static func offload<T: Sendable>(_ work: @escaping @Sendable () throws(BlockError) -> T) async throws(BlockError) -> T {
        let result: Result<T, BlockError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                do throws(BlockError) {
                    continuation.resume(returning: .success(try work()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try result.get()
    }

    static func offload<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: work()) }
        }
    }
}

func randomSessionID(excluding previous: UInt64) -> UInt64 {
    var generator = SystemRandomNumberGenerator()
    while true {
        let candidate = generator.next() as UInt64
        if candidate != 0 && candidate != previous { return candidate }
    }
}

#if canImport(Glibc)
import Glibc
#endif

func currentUnixMs() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return UInt64(spec.tv_sec) * 1000 + UInt64(spec.tv_nsec) / 1_000_000
}

func unlinkFile(_ path: String) -> Bool { unlink(path) == 0 }
