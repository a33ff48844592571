// Persists superblock updates: each update writes the next sequence number into the other
// slot with one pwrite and makes it durable before it counts (invariant 5 in
// docs/ENGINE.md). Updates are serialized by one lock, so two writers never race for a slot.

final class SuperblockStore: Sendable {
    private let file: any VolumeFileIO
    private let current: ConditionLock<Superblock>

    init(file: any VolumeFileIO, current: Superblock) {
        self.file = file
        self.current = ConditionLock(current)
    }

    /// The last superblock made durable.
    var superblock: Superblock { current.withLock { $0 } }

    /// Applies `change`, writes the result to the other slot and syncs it.
    @discardableResult
    func update(_ change: (inout Superblock) -> Void) throws(BlockError) -> Superblock {
        try current.withLock { (stored: inout Superblock) throws(BlockError) -> Superblock in
            var next = stored
            change(&next)
            next.sequence = stored.sequence + 1
            precondition(next.validationProblem() == nil, "writing an invalid superblock: \(next.validationProblem()!)")
            try Self.write(next, to: file)
            try file.sync()
            stored = next
            return next
        }
    }

    /// Writes one slot image (without syncing).
    static func write(_ superblock: Superblock, to file: any VolumeFileIO) throws(BlockError) {
        let image = superblock.encoded()
        precondition(Superblock.decode(image) == .valid(superblock), "superblock must round-trip before it is written")
        try image.withBytes { (bytes) throws(BlockError) in
            try file.write(bytes, UnsafeRawBufferPointer(start: nil, count: 0), at: superblock.slotOffsetBytes)
        }
    }
}
