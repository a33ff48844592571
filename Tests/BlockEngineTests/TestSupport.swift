import Dispatch
import Foundation
@testable import BlockEngine

/// A deterministic generator (SplitMix64) so every randomized test replays from its seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A fresh directory under the system temp dir, removed when the value is dropped.
final class TemporaryDirectory: @unchecked Sendable {
    let path: String
    init() {
        let template = NSTemporaryDirectory() + "blockengine-test-XXXXXX"
        var bytes = Array(template.utf8CString)
        let result = bytes.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(result != nil, "mkdtemp failed")
        path = String(cString: result!)
    }
    func file(_ name: String) -> String { path + "/" + name }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Block contents that name their writer: every byte derives from (tag, lba, byte index), so a
/// block read back tells which write produced it.
func pattern(tag: UInt64, lba: UInt64, blockSize: Int) -> [UInt8] {
    var generator = SeededGenerator(seed: tag &* 0x1000_0000_01B3 ^ lba &* 0x9E37_79B9)
    var bytes = [UInt8](repeating: 0, count: blockSize)
    for index in stride(from: 0, to: blockSize, by: 8) {
        let word = generator.next()
        for offset in 0..<8 { bytes[index + offset] = UInt8(truncatingIfNeeded: word >> (offset * 8)) }
    }
    return bytes
}

func patterns(tag: UInt64, lba: UInt64, blockCount: Int, blockSize: Int) -> [UInt8] {
    (0..<blockCount).flatMap { pattern(tag: tag, lba: lba + UInt64($0), blockSize: blockSize) }
}

func fileBytes(_ path: String) -> [UInt8] {
    (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))) ?? []
}

/// A new volume with 4 KiB blocks, file "v.blk" in `directory`, with `testOptions`.
func makeVolume(in directory: TemporaryDirectory, sizeBytes: UInt64, walSizeBytes: UInt64,
                background: Bool = true) async throws -> Volume {
    try await Volume.create(
        at: directory.file("v.blk"),
        configuration: VolumeConfiguration(sizeBytes: sizeBytes, blockSizeBytes: 4096, walSizeBytes: walSizeBytes),
        options: testOptions(background: background))
}

/// Options for tests: quiet logs, fast write-back.
func testOptions(background: Bool = true, walFullTimeoutMs: Int = 30_000) -> VolumeOptions {
    var options = VolumeOptions(flushIntervalMs: 20, walFullTimeoutMs: walFullTimeoutMs, backgroundWriteBack: background)
    options.logger.logLevel = .warning
    return options
}

extension BlockError {
    /// The case name, for tests that check which error arrived.
    var caseName: String { String(describing: self).split(separator: "(").first.map(String.init) ?? "" }
}

import Synchronization

/// A mutable value shared between test tasks.
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
}

/// Parks callers until opened, counting who arrived, so a test can hold an operation at a
/// known point and see that it got there (no sleeping on a guess).
final class AsyncGate: Sendable {
    private struct State {
        var isOpen = false
        var arrivals = 0
        var parked: [CheckedContinuation<Void, Never>] = []
        var blocked: [DispatchSemaphore] = []
        var arrivalWaiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []

        /// Counts an arrival; returns the arrival waiters it satisfies.
        mutating func arrive() -> [CheckedContinuation<Void, Never>] {
            arrivals += 1
            let count = arrivals
            let ready = arrivalWaiters.filter { $0.count <= count }
            arrivalWaiters.removeAll { $0.count <= count }
            return ready.map(\.continuation)
        }
    }
    private let state = Mutex(State())

    /// Suspends until the gate is open (returns at once when it already is).
    func pass() async {
        await withCheckedContinuation { continuation in
            let (goNow, arrived) = state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
                if !state.isOpen { state.parked.append(continuation) }
                return (state.isOpen, state.arrive())
            }
            for waiter in arrived { waiter.resume() }
            if goNow { continuation.resume() }
        }
    }

    /// Blocks the calling thread until the gate is open (for synchronous code under test).
    func passBlocking() {
        let semaphore = DispatchSemaphore(value: 0)
        let (goNow, arrived) = state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
            if !state.isOpen { state.blocked.append(semaphore) }
            return (state.isOpen, state.arrive())
        }
        for waiter in arrived { waiter.resume() }
        if !goNow { semaphore.wait() }
    }

    /// Returns once `count` callers have arrived at the gate.
    func waitForArrivals(_ count: Int) async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.arrivals >= count { return true }
                state.arrivalWaiters.append((count, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    func open() {
        let (parked, blocked) = state.withLock { state in
            state.isOpen = true
            defer {
                state.parked.removeAll()
                state.blocked.removeAll()
            }
            return (state.parked, state.blocked)
        }
        for continuation in parked { continuation.resume() }
        for semaphore in blocked { semaphore.signal() }
    }
}
