// The replica's side of a rebuild (docs/ENGINE.md, "The log for replication"): a fuzzy copy
// of the primary's blocks into the data region, then the primary's log from the cut on.
//
// Why a fuzzy copy is enough: every block copied (or found equal) shows the primary's
// content at some LSN at or after the cut S, because the copy starts after S; replaying
// every record after S then brings each block to its newest version (records write whole
// blocks, so replaying one a block already has is harmless).
//
// Phases (RebuildPhase, in the sequencer state):
// - copying: after `beginRebuild`; the log is empty (everything was written back), the
//   superblock says the image is incomplete (persisted first: a copy cut short is never
//   taken for a consistent one, after a restart too), image writes go straight to the data
//   region, replicated records are refused;
// - catching up: after `resetLog(toCheckpoint: S)`: the data region is synced, the log is
//   empty and starts at S + 1 with a new session (stale records of the old log beyond the
//   tail can never be taken for records after S), replicated records are applied again;
// - done: `endRebuild` persists the image as complete.
// A volume opened with an incomplete image starts in `copying`: the rebuild starts over
// (segments already equal are not copied again).

enum RebuildPhase: Sendable, Equatable {
    case none, copying, catchingUp
}

extension VolumeCore {
    func beginRebuild(identity: VolumeUUID?) throws(BlockError) {
        try assignment.withLock { (_: inout Void) throws(BlockError) in
            let role = gate.role
            guard role == .replica || role == .fenced || role == .none else {
                throw .invalidArgument("a \(role) volume takes writes; only a replica, fenced or unassigned copy is rebuilt")
            }
            try sequencer.withLock { (state) throws(BlockError) in
                guard state.ring.checkpointLSN == state.ring.lastAllocatedLSN else {
                    throw .invalidArgument("the log still holds records; write them back before a rebuild")
                }
            }
            _ = try superblocks.update { superblock in
                superblock.imageIncomplete = true
                if let identity { superblock.uuid = identity }
            }
            sequencer.withLock { $0.rebuild = .copying }
        }
    }

    /// Writes `bytes` (whole blocks) at `lba` straight into the data region; a range of
    /// zeros becomes a hole.
    func writeImage(at lba: UInt64, _ bytes: UnsafeRawBufferPointer) throws(BlockError) {
        let count = try blocks(inBytes: bytes.count)
        try checkRange(lba: lba, blockCount: count)
        guard sequencer.withLock({ $0.rebuild }) == .copying else {
            throw .invalidArgument("image writes only while a rebuild copies (beginRebuild)")
        }
        let offset = geometry.dataFileOffset(lba)
        if Self.isAllZero(bytes) {
            try file.punchHole(at: offset, lengthBytes: UInt64(bytes.count))
        } else {
            try file.write(bytes, UnsafeRawBufferPointer(start: nil, count: 0), at: offset)
        }
    }

    /// Whether every byte is zero: eight bytes a step (a chunk of a rebuild is megabytes).
    static func isAllZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var index = 0
        var accumulated: UInt64 = 0
        // Bounded by the buffer; checks 64 bytes between tests of the accumulator.
        while index + 64 <= bytes.count {
            for word in 0..<8 { accumulated |= bytes.loadUnaligned(fromByteOffset: index + word * 8, as: UInt64.self) }
            if accumulated != 0 { return false }
            index += 64
        }
        while index < bytes.count {
            if bytes[index] != 0 { return false }
            index += 1
        }
        return true
    }

    func resetLog(toCheckpoint lsn: UInt64) throws(BlockError) {
        try assignment.withLock { (_: inout Void) throws(BlockError) in
            guard sequencer.withLock({ $0.rebuild }) == .copying else {
                throw .invalidArgument("the log is reset only at the end of a rebuild's copy")
            }
            try file.sync()
            pauseJobs()
            defer { resumeJobs() }
            if let failure { throw failure }
            let head = sequencer.withLock { $0.ring.headPosition }
            let newSession = randomSessionID(excluding: sessionID.load(ordering: .relaxed))
            _ = try superblocks.update { superblock in
                superblock.checkpointLSN = lsn
                // The primary's record at the cut is not known here.
                superblock.checkpointEpoch = nil
                superblock.walTailPosition = head
                superblock.sessionID = newSession
                superblock.sessionStartLSN = lsn + 1
            }
            sessionID.store(newSession, ordering: .relaxed)
            sequencer.withLock { state in
                precondition(state.ring.records.isEmpty, "the log is empty while a rebuild copies")
                state.ring = WALRing(sizeBytes: geometry.walSizeBytes, checkpointLSN: lsn, tailPosition: head,
                                     headPosition: head, recovered: [], epoch: state.ring.epoch)
                state.rebuild = .catchingUp
            }
            tailPosition.store(head, ordering: .releasing)
            durableLSN.store(lsn, ordering: .releasing)
            committedLSN.store(0, ordering: .releasing)
        }
    }

    func endRebuild() throws(BlockError) {
        try assignment.withLock { (_: inout Void) throws(BlockError) in
            guard sequencer.withLock({ $0.rebuild }) == .catchingUp else {
                throw .invalidArgument("a rebuild ends after its log was reset (resetLog)")
            }
            _ = try superblocks.update { $0.imageIncomplete = false }
            sequencer.withLock { $0.rebuild = .none }
        }
    }

    /// A copy that never held a record takes `identity` (its primary's UUID).
    func adoptIdentity(_ identity: VolumeUUID) throws(BlockError) {
        try assignment.withLock { (_: inout Void) throws(BlockError) in
            let role = gate.role
            guard role == .replica || role == .fenced || role == .none else {
                throw .invalidArgument("a \(role) volume keeps its identity")
            }
            let fresh = sequencer.withLock { $0.ring.lastAllocatedLSN == 0 && $0.ring.checkpointLSN == 0 }
            guard fresh else { throw .invalidArgument("only a copy that never held a record takes another identity") }
            _ = try superblocks.update { $0.uuid = identity }
        }
    }
}
