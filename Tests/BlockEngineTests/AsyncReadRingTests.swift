// The shared io_uring for reads when the kernel calls around it fail: every reader is
// resumed exactly once, with its bytes, and never while the kernel may still write into
// its buffer.

import Dispatch
import Foundation
import Synchronization
import Testing
@testable import BlockEngine

@Suite("Async read ring")
struct AsyncReadRingTests {
    static let blockBytes = 4096
    static let blocks = 8

    /// A file of known bytes, its descriptor open for reading; closed when dropped.
    final class ReadableFile {
        let directory = TemporaryDirectory()
        let descriptor: Int32
        let bytes = patterns(tag: 7, lba: 0, blockCount: AsyncReadRingTests.blocks,
                             blockSize: AsyncReadRingTests.blockBytes)
        init() {
            let path = directory.file("data")
            _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
        }
        deinit { _ = close(descriptor) }
    }

    /// Reads blocks 1, 3 and 6 (three pieces) through `ring`; returns the outcome and the bytes.
    static func readThreePieces(_ ring: AsyncReadRing, descriptor: Int32) async -> (Result<Void, BlockError>?, [UInt8]) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 3 * blockBytes, alignment: 4096)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        let transfers = [1, 3, 6].enumerated().map { index, block in
            IOTransfer(buffer: UnsafeMutableRawBufferPointer(rebasing: buffer[(index * blockBytes)..<((index + 1) * blockBytes)]),
                       offset: UInt64(block * blockBytes))
        }
        let result = await ring.read(transfers, descriptor: descriptor)
        return (result, Array(buffer))
    }

    static func succeeded(_ result: Result<Void, BlockError>?) -> Bool {
        if case .success = result { return true }
        return false
    }

    static func expected(_ file: ReadableFile) -> [UInt8] {
        [1, 3, 6].flatMap { file.bytes[($0 * blockBytes)..<(($0 + 1) * blockBytes)] }
    }

    @Test("a failed submit: the reader is resumed once, with its bytes")
    func failedSubmit() async throws {
        let file = ReadableFile()
        let failures = Mutex(1)
        var calls = AsyncReadRing.KernelCalls.live
        calls.submit = { ring in
            let fail = failures.withLock { remaining -> Bool in
                defer { remaining = max(remaining - 1, 0) }
                return remaining > 0
            }
            return fail ? -EAGAIN : AsyncReadRing.KernelCalls.live.submit(ring)
        }
        let ring = try #require(AsyncReadRing(calls: calls))
        let (result, bytes) = await Self.readThreePieces(ring, descriptor: file.descriptor)
        guard Self.succeeded(result) else {
            Issue.record("read failed or was refused: \(String(describing: result))")
            ring.shutdown()
            return
        }
        #expect(bytes == Self.expected(file))
        // The ring still serves reads afterwards.
        let (again, moreBytes) = await Self.readThreePieces(ring, descriptor: file.descriptor)
        #expect(Self.succeeded(again), "a later read: \(String(describing: again))")
        #expect(moreBytes == Self.expected(file))
        ring.shutdown()
    }

    @Test("a failed wait for completions resumes no reader before its read completed")
    func failedWait() async throws {
        let file = ReadableFile()
        let submitted = DispatchSemaphore(value: 0)
        let firstWait = Mutex(true)
        var calls = AsyncReadRing.KernelCalls.live
        calls.submit = { ring in
            let rc = AsyncReadRing.KernelCalls.live.submit(ring)
            submitted.signal()
            return rc
        }
        calls.waitOne = { ring, tag, result in
            // The first wait fails once the read is in the kernel's hands.
            if firstWait.withLock({ first in defer { first = false }; return first }) {
                submitted.wait()
                return -EBADF
            }
            return AsyncReadRing.KernelCalls.live.waitOne(ring, &tag, &result)
        }
        let ring = try #require(AsyncReadRing(calls: calls))
        let (result, bytes) = await Self.readThreePieces(ring, descriptor: file.descriptor)
        guard Self.succeeded(result) else {
            Issue.record("the reader was resumed without its completions: \(String(describing: result))")
            ring.shutdown()
            return
        }
        #expect(bytes == Self.expected(file))
        ring.shutdown()
    }
}
