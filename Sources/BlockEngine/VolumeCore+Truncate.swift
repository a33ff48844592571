// Truncating a replica's log: dropping a divergent suffix (records from an older epoch that
// the new primary never had) so the replica can take the new primary's records at those
// LSNs (docs/ENGINE.md, "The log for replication").
//
// Order of effects, each safe if power is cut after it:
// 1. the log writer and the write-back pause; the log writer's last round writes and syncs
//    every completed record, so the file holds the whole log before anything changes;
// 2. a superblock with a new session id starting at `lsn + 1` is made durable: from now on
//    recovery ends the log at `lsn` (the dropped records carry the old session id, and the
//    session rule refuses them; the durability-proof search applies the same rule);
// 3. the ring, the read index, the log writer's positions and the durable LSN are set back
//    to `lsn`, and the ring bytes after it are zeroed;
// 4. the jobs resume; new records carry the new session id.
//
// Invariants: only a copy that takes no writes truncates (replica, fenced, none); never
// below the checkpoint (written-back records cannot be undone: that replica must rebuild);
// never with records in flight.

extension VolumeCore {
    func truncateLog(after lsn: UInt64) throws(BlockError) {
        try assignment.withLock { (_: inout Void) throws(BlockError) in
            let role = gate.role
            guard role == .replica || role == .fenced || role == .none else {
                throw .invalidArgument("a \(role) volume takes writes; only a replica, fenced or unassigned copy truncates its log")
            }
            let (checkpoint, last) = sequencer.withLock { ($0.ring.checkpointLSN, $0.ring.lastAllocatedLSN) }
            guard lsn < last else { return }
            guard lsn >= checkpoint else {
                throw .invalidArgument("records after \(lsn) were already written back (checkpoint \(checkpoint)); rebuild instead")
            }
            pauseJobs()
            defer { resumeJobs() }
            if let failure { throw failure }
            try sequencer.withLock { (state) throws(BlockError) in
                guard state.spaceWaiters.isEmpty, state.ring.completedLSN == state.ring.lastAllocatedLSN else {
                    throw .invalidArgument("records are being appended; truncate between applies")
                }
            }
            let newSession = randomSessionID(excluding: sessionID.load(ordering: .relaxed))
            _ = try superblocks.update { superblock in
                superblock.sessionID = newSession
                superblock.sessionStartLSN = lsn + 1
            }
            sessionID.store(newSession, ordering: .relaxed)
            let (oldHead, newHead, kept) = sequencer.withLock { state in
                let oldHead = state.ring.headPosition
                state.ring.truncate(after: lsn)
                return (oldHead, state.ring.headPosition, Array(state.ring.records))
            }
            mirror.zero(from: newHead, to: oldHead)
            commit.withLock { state in
                state.writtenPosition = newHead
                state.flushedPosition = newHead
            }
            durableLSN.store(lsn, ordering: .releasing)
            committedLSN.store(min(committedLSN.load(ordering: .relaxed), lsn), ordering: .releasing)
            // The index held the dropped records' blocks: rebuilt from the records kept (the
            // data region answers the rest).
            var rebuilt = RangeMap(blockSizeBytes: geometry.blockSizeBytes)
            for slot in kept {
                rebuilt.insert(lba: slot.lba, blockCount: slot.blockCount, lsn: slot.lsn,
                               location: slot.kind == .write ? .wal(position: slot.payloadPosition) : .trimmed)
            }
            index.withLock { $0 = rebuilt }
        }
    }

    /// Stops the log writer (after it wrote and synced every completed record) and the
    /// write-back, and waits for their last steps. Blocking.
    func pauseJobs() {
        stopLogWriter()
        stopWriteBack()
        runtime.logWriters.waitUntilFinished(logWriterJob)
        runtime.writeBack.waitUntilFinished(writeBackJob)
    }

    func resumeJobs() {
        commit.withLock { state in
            state.stopping = false
            state.stopped = false
        }
        writeBack.withLock { $0.stopping = false }
        runtime.logWriters.restart(logWriterJob)
        runtime.writeBack.restart(writeBackJob)
    }
}
