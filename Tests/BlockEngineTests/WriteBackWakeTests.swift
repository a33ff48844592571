import Testing
@testable import BlockEngine

/// Write bytes that make the writer wait at `gate` while it copies them into the log (its
/// record stays incomplete until the test opens the gate).
struct GatedSource: BlockWriteSource {
    let bytes: [UInt8]
    let gate: AsyncGate
    var byteCount: Int { bytes.count }
    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        gate.passBlocking()
        return try bytes.withUnsafeBytes(body)
    }
}

@Suite("Write-back wake-ups")
struct WriteBackWakeTests {
    static let recordBlocks = 3

    @Test("a writer still waiting for log space gets it once the records of the writers handed space complete (no timer)")
    func waitersHandedSpaceWakeTheWriteBack() async throws {
        let image = try CloseTests.formattedImage(walSizeBytes: 64 * 1024)
        let file = ParkingFile(image: image, parkBatches: true)
        // No background write-back: no timer would rescue a write-back that went to sleep.
        let volume = try Volume.open(file: file, path: "wake", options: testOptions(background: false,
                                                                                   walFullTimeoutMs: 10_000))
        let blocks = Self.recordBlocks
        func data(_ index: Int) -> [UInt8] {
            patterns(tag: UInt64(index), lba: UInt64(index * blocks), blockCount: blocks, blockSize: 4096)
        }
        // Five records of the largest size fill the 64 KiB log but for less than one record.
        for index in 0..<5 { try await volume.write(at: UInt64(index * blocks), data(index)) }
        #expect(volume.info().walFullWaits == 0)
        // The first waiter starts a write-back cycle, which parks in the file; five more queue.
        let fillGate = AsyncGate()
        let first = Task {
            try await volume.write(at: UInt64(5 * blocks), GatedSource(bytes: data(5), gate: fillGate))
        }
        await file.batchGate.waitForArrivals(1)
        let handed = (6..<10).map { index in
            Task { try await volume.write(at: UInt64(index * blocks), data(index)) }
        }
        while volume.info().walFullWaits < 5 { try await Task.sleep(for: .milliseconds(1)) }
        let last = Task { try await volume.write(at: UInt64(10 * blocks), data(10)) }
        while volume.info().walFullWaits < 6 { try await Task.sleep(for: .milliseconds(1)) }
        // The cycle frees the log: the first five waiters get exactly all of it, the sixth
        // waits. The first one's record stays incomplete (it copies behind the gate), so no
        // cycle can run until it completes.
        file.batchGate.open()
        await fillGate.waitForArrivals(1)
        for writer in handed { try await writer.value }
        while !volume.core.writeBack.withLock({ $0.waitingForWork && !$0.requested }) {
            try await Task.sleep(for: .milliseconds(1))
        }
        fillGate.open()
        try await first.value
        // The write-back must learn that the oldest record completed; nothing else wakes it.
        try await last.value
        for index in 0...10 {
            #expect(try await volume.read(at: UInt64(index * blocks), blockCount: blocks) == data(index))
        }
        try await volume.close()
    }
}
