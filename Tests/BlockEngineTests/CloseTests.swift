import Synchronization
import Testing
@testable import BlockEngine

/// Forwards to a SimulatedFile. With `parkReads`, an async read parks at `readGate`; with
/// `parkBatches`, a write-back batch parks at `batchGate`, until the test opens the gate.
/// Nothing is cached, so every data-region read is an async read. The file notes when it is
/// closed, and whether that happened while a read was parked or before some later call.
final class ParkingFile: VolumeFileIO, @unchecked Sendable {
    let inner: SimulatedFile
    let readGate = AsyncGate()
    let batchGate = AsyncGate()
    private struct Usage {
        var closeCount = 0
        var readsInside = 0
        var closedDuringRead = false
        var usedAfterClose = false
    }
    private let usage = Mutex(Usage())

    init(image: [UInt8], parkReads: Bool = false, parkBatches: Bool = false) {
        inner = SimulatedFile(image: image)
        if !parkReads { readGate.open() }
        if !parkBatches { batchGate.open() }
    }

    var closeCount: Int { usage.withLock { $0.closeCount } }
    var closedDuringRead: Bool { usage.withLock { $0.closedDuringRead } }
    var usedAfterClose: Bool { usage.withLock { $0.usedAfterClose } }

    private func use() { usage.withLock { if $0.closeCount > 0 { $0.usedAfterClose = true } } }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BlockError) {
        use()
        try inner.read(into: buffer, at: offset)
    }
    func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, at offset: UInt64) throws(BlockError) {
        use()
        try inner.write(first, second, at: offset)
    }
    func writeThrough(_ buffer: UnsafeRawBufferPointer, at offset: UInt64, durable: Bool) throws(BlockError) {
        use()
        try inner.writeThrough(buffer, at: offset, durable: durable)
    }
    /// Nothing is cached: every data-region read goes through `readAsync`.
    func readCached(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(BlockError) -> Int {
        use()
        return 0
    }
    func readAsync(_ transfers: [IOTransfer]) async throws(BlockError) {
        use()
        usage.withLock { $0.readsInside += 1 }
        await readGate.pass()
        defer { usage.withLock { $0.readsInside -= 1 } }
        try await inner.readAsync(transfers)
    }
    func writeBatch(_ transfers: [IOTransfer]) throws(BlockError) {
        use()
        batchGate.passBlocking()
        try inner.writeBatch(transfers)
    }
    func sync() throws(BlockError) {
        use()
        try inner.sync()
    }
    func punchHole(at offset: UInt64, lengthBytes: UInt64) throws(BlockError) {
        use()
        try inner.punchHole(at: offset, lengthBytes: lengthBytes)
    }
    func dataRanges(from offset: UInt64, to end: UInt64) throws(BlockError) -> [Range<UInt64>] {
        use()
        return try inner.dataRanges(from: offset, to: end)
    }
    func sizeBytes() throws(BlockError) -> UInt64 {
        use()
        return try inner.sizeBytes()
    }
    func setSize(_ sizeBytes: UInt64) throws(BlockError) {
        use()
        try inner.setSize(sizeBytes)
    }
    func close() {
        usage.withLock { usage in
            if usage.readsInside > 0 { usage.closedDuringRead = true }
            usage.closeCount += 1
        }
    }
}

@Suite("Closing a volume")
struct CloseTests {
    static func formattedImage(walSizeBytes: UInt64 = 256 << 10) throws -> [UInt8] {
        let file = SimulatedFile()
        try Volume.format(file: file, configuration: VolumeConfiguration(sizeBytes: 1 << 20, blockSizeBytes: 4096,
                                                                         walSizeBytes: walSizeBytes))
        return file.image
    }

    @Test("two concurrent closes both wait for a read in flight and return only once the file is closed, closing it once")
    func concurrentCloses() async throws {
        let file = ParkingFile(image: try Self.formattedImage(), parkReads: true)
        let volume = try Volume.open(file: file, path: "parked", options: testOptions(background: false))
        // A read from the data region: it parks in the file.
        let reader = Task { try await volume.read(at: 0, blockCount: 1) }
        await file.readGate.waitForArrivals(1)
        let closers = (0..<2).map { _ in
            Task { () throws -> Int in
                try await volume.close()
                return file.closeCount
            }
        }
        // Until both closes wait (or one closed the file under the read), nothing moves.
        while volume.suspendedCloseCalls < 2 && file.closeCount == 0 {
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(file.closeCount == 0, "a close went ahead while a read was in flight")
        file.readGate.open()
        #expect(try await reader.value == [UInt8](repeating: 0, count: 4096))
        for closer in closers {
            #expect(try await closer.value == 1, "close returned before the file was closed")
        }
        #expect(file.closeCount == 1, "the file is closed exactly once")
        #expect(!file.closedDuringRead, "the file was closed under a read")
        #expect(!file.usedAfterClose, "the file was used after it was closed")
        await #expect(throws: BlockError.closed) { _ = try await volume.read(at: 0, blockCount: 1) }
    }
}
