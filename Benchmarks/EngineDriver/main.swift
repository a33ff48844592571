// block-bench: drives a BlockEngine volume at one fixed shape and prints one result line of
// key=value pairs (the engine half of scripts/benchmark.sh; see docs/BENCHMARKS.md).
//
//   block-bench --file PATH --size 1GiB --pattern randwrite --bs 4096 --qd 32 --durable flush \
//               --seconds 10 --min-wal-laps 3
//
// --pattern    randwrite | randread | seqwrite | seqread
// --durable    none (write returns once in the WAL) | fua (write with FUA) | flush (write, then
//              flush; the pair is one I/O). Durable writes count only once durable.
// --prefill    data (default for reads: write the whole volume, then checkpoint, so reads hit
//              the data region) | wal (write a quarter of the WAL's worth of blocks with
//              write-back off, so reads hit the WAL) | none. Not measured.
// --min-wal-laps N  a write run goes on past --seconds until it wrote N times the WAL size
//              (so write-back is part of the figure), at most 10 times --seconds.
// The file is created (removed afterwards unless --keep 1) or, if it exists, opened. The
// measured run starts with the file out of the page cache; reads are buffered (the engine's
// own choice), so a long read run warms the cache. CPU time is this whole process's (all
// threads, load generation included).

import BlockEngine
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct Arguments: Sendable {
    var file = ""
    var sizeBytes: UInt64 = 1 << 30
    var walSizeBytes: UInt64 = 64 << 20
    var pattern = "randwrite"
    var blockBytes = 4096
    var queueDepth = 32
    var durable = "none"
    var prefill: String?
    var seconds = 10.0
    var minWALLaps = 0.0
    var keep = false

    init() {
        var iterator = CommandLine.arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next() else { fail("missing value for \(flag)") }
            switch flag {
            case "--file": file = value
            case "--size": sizeBytes = parseSize(value)
            case "--wal-size": walSizeBytes = parseSize(value)
            case "--pattern": pattern = value
            case "--bs": blockBytes = Int(parseSize(value))
            case "--qd": queueDepth = parseNumber(value, flag)
            case "--durable": durable = value
            case "--prefill": prefill = value
            case "--seconds": seconds = parseNumber(value, flag)
            case "--min-wal-laps": minWALLaps = parseNumber(value, flag)
            case "--keep": keep = value == "1"
            default: fail("unknown flag \(flag)")
            }
        }
        guard !file.isEmpty else { fail("--file is required") }
        let patterns = ["randwrite", "randread", "seqwrite", "seqread"]
        guard patterns.contains(pattern) else { fail("bad --pattern \(pattern)") }
        guard ["none", "fua", "flush"].contains(durable) else { fail("bad --durable \(durable)") }
        guard blockBytes % 4096 == 0 && blockBytes > 0 && queueDepth > 0 else { fail("bad --bs or --qd") }
    }

    var writing: Bool { pattern.hasSuffix("write") }
    var sequential: Bool { pattern.hasPrefix("seq") }
    var prefillMode: String { prefill ?? (writing ? "none" : "data") }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("block-bench: \(message)\n".utf8))
    exit(2)
}

func parseSize(_ text: String) -> UInt64 {
    let units: [(String, UInt64)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
                                     ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)]
    for (suffix, multiplier) in units where text.hasSuffix(suffix) {
        guard let number = UInt64(text.dropLast(suffix.count)) else { fail("bad size \(text)") }
        return number * multiplier
    }
    return parseNumber(text, "size")
}

func parseNumber<Number: LosslessStringConvertible>(_ text: String, _ flag: String) -> Number {
    guard let number = Number(text) else { fail("bad \(flag) \(text)") }
    return number
}

/// A small fast generator; `SystemRandomNumberGenerator` costs a system call per number.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}

/// What the workers did: I/O count, payload bytes and per-I/O latencies.
final class Stats: Sendable {
    private let state = Mutex((operations: 0, latenciesNs: [UInt64]()))
    let bytes = Atomic<UInt64>(0)

    func add(_ count: Int, _ latencies: [UInt64]) {
        state.withLock { $0.operations += count; $0.latenciesNs += latencies }
    }

    var operations: Int { state.withLock { $0.operations } }
    var sortedLatenciesNs: [UInt64] { state.withLock { $0.latenciesNs.sorted() } }
}

/// The I/O buffer of one worker (page aligned, filled with a pattern).
struct WorkerBuffer: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer
    init(byteCount: Int, worker: Int) {
        bytes = .allocate(byteCount: byteCount, alignment: 4096)
        for index in 0..<byteCount { bytes[index] = UInt8(truncatingIfNeeded: index &* 31 &+ worker &+ 1) }
    }
}

/// Where one worker's I/Os go: random slots of the span, or a sequential stream through the
/// worker's own zone of it (so queue depth N is N sequential streams).
struct Addresses {
    let blocksPerIO: UInt64, slots: UInt64, zoneStart: UInt64, zoneSlots: UInt64
    let sequential: Bool
    var random: SplitMix64
    var position: UInt64 = 0

    init(_ arguments: Arguments, spanBlocks: UInt64, worker: Int) {
        blocksPerIO = UInt64(arguments.blockBytes / 4096)
        slots = spanBlocks / blocksPerIO
        zoneSlots = max(slots / UInt64(arguments.queueDepth), 1)
        zoneStart = UInt64(worker) * zoneSlots
        sequential = arguments.sequential
        random = SplitMix64(state: UInt64(worker) &* 0x9E37_79B9 &+ DispatchTime.now().uptimeNanoseconds)
    }

    mutating func next() -> UInt64 {
        defer { position += 1 }
        let slot = sequential ? (zoneStart + position % zoneSlots) % slots : random.next() % slots
        return slot * blocksPerIO
    }
}

/// One I/O of the shape; a durable write returns once durable.
func issue(_ volume: Volume, _ arguments: Arguments, at lba: UInt64, _ buffer: WorkerBuffer) async throws {
    guard arguments.writing else { return try await volume.read(at: lba, into: buffer.bytes) }
    try await volume.write(at: lba, from: UnsafeRawBufferPointer(buffer.bytes), fua: arguments.durable == "fua")
    if arguments.durable == "flush" { try await volume.flush() }
}

/// Runs the shape's workers over blocks 0..<spanBlocks until `keepGoing` says stop.
func drive(_ volume: Volume, _ arguments: Arguments, spanBlocks: UInt64, stats: Stats,
           keepGoing: @escaping @Sendable () -> Bool) async throws {
    let batch = 16
    try await withThrowingTaskGroup(of: Void.self) { group in
        for worker in 0..<arguments.queueDepth {
            let buffer = WorkerBuffer(byteCount: arguments.blockBytes, worker: worker)
            group.addTask {
                defer { buffer.bytes.deallocate() }
                var addresses = Addresses(arguments, spanBlocks: spanBlocks, worker: worker)
                var latencies: [UInt64] = []
                while keepGoing() {
                    for _ in 0..<batch {
                        let begin = DispatchTime.now().uptimeNanoseconds
                        try await issue(volume, arguments, at: addresses.next(), buffer)
                        latencies.append(DispatchTime.now().uptimeNanoseconds - begin)
                    }
                    stats.bytes.add(UInt64(batch * arguments.blockBytes), ordering: .relaxed)
                }
                stats.add(latencies.count, latencies)
            }
        }
        try await group.waitForAll()
    }
}

/// Puts data where the reads should find it (not measured).
func prefill(_ volume: Volume, mode: String, walSizeBytes: UInt64) async throws {
    switch mode {
    case "none":
        return
    case "data":
        try await fillOnce(volume, spanBlocks: volume.blockCount, blockBytes: 1 << 20, queueDepth: 8)
        try await volume.checkpoint()
    case "wal":
        try await fillOnce(volume, spanBlocks: walSizeBytes / 4 / 4096, blockBytes: 64 << 10, queueDepth: 1)
        guard volume.info().writeBackRuns == 0 else { fail("the WAL prefill was written back") }
    default:
        fail("bad --prefill \(mode)")
    }
}

/// Writes every block of 0..<spanBlocks exactly once, `queueDepth` zones in parallel.
func fillOnce(_ volume: Volume, spanBlocks: UInt64, blockBytes: Int, queueDepth: Int) async throws {
    let blocksPerIO = UInt64(blockBytes / 4096)
    let zoneBlocks = (spanBlocks / UInt64(queueDepth) + blocksPerIO - 1) / blocksPerIO * blocksPerIO
    try await withThrowingTaskGroup(of: Void.self) { group in
        for worker in 0..<queueDepth {
            let buffer = WorkerBuffer(byteCount: blockBytes, worker: worker)
            group.addTask {
                defer { buffer.bytes.deallocate() }
                var lba = UInt64(worker) * zoneBlocks
                let end = min(lba + zoneBlocks, spanBlocks)
                while lba < end {
                    let count = Int(min(blocksPerIO, end - lba)) * 4096
                    let bytes = UnsafeRawBufferPointer(rebasing: buffer.bytes[0..<count])
                    try await volume.write(at: lba, from: bytes)
                    lba += blocksPerIO
                }
            }
        }
        try await group.waitForAll()
    }
}

/// User plus system CPU time of this process (all threads), in microseconds.
func processCPUMicroseconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    let user = Double(usage.ru_utime.tv_sec) * 1e6 + Double(usage.ru_utime.tv_usec)
    return user + Double(usage.ru_stime.tv_sec) * 1e6 + Double(usage.ru_stime.tv_usec)
}

/// Drops the file's clean pages from the page cache, so that a measured run starts cold.
func dropFromPageCache(_ path: String) {
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else { return }
    _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_DONTNEED)
    close(descriptor)
}

func openVolume(_ arguments: Arguments) async throws -> Volume {
    var options = VolumeOptions()
    options.logger.logLevel = .warning
    // Reads from the WAL need the records to stay there.
    options.backgroundWriteBack = arguments.prefillMode != "wal"
    if FileManager.default.fileExists(atPath: arguments.file) {
        return try await Volume.open(at: arguments.file, options: options)
    }
    let configuration = VolumeConfiguration(sizeBytes: arguments.sizeBytes, blockSizeBytes: 4096,
                                            walSizeBytes: arguments.walSizeBytes)
    return try await Volume.create(at: arguments.file, configuration: configuration, options: options)
}

let arguments = Arguments()
let volume = try await openVolume(arguments)
try await prefill(volume, mode: arguments.prefillMode, walSizeBytes: volume.info().walSizeBytes)
let walSizeBytes = volume.info().walSizeBytes
let spanBlocks = arguments.prefillMode == "wal" ? walSizeBytes / 4 / 4096 : volume.blockCount
dropFromPageCache(arguments.file)
let before = volume.info()
let stats = Stats()
let minimumBytes = arguments.writing ? UInt64(arguments.minWALLaps * Double(walSizeBytes)) : 0
let started = DispatchTime.now().uptimeNanoseconds
let cpuBefore = processCPUMicroseconds()
let deadlineNs = started + UInt64(arguments.seconds * 1e9), hardStopNs = started + UInt64(arguments.seconds * 10e9)
try await drive(volume, arguments, spanBlocks: spanBlocks, stats: stats) {
    let now = DispatchTime.now().uptimeNanoseconds
    return now < hardStopNs && (now < deadlineNs || stats.bytes.load(ordering: .relaxed) < minimumBytes)
}
let elapsedNs = DispatchTime.now().uptimeNanoseconds - started
let cpuMicroseconds = processCPUMicroseconds() - cpuBefore
let after = volume.info()
try await volume.close()
if !arguments.keep { try? FileManager.default.removeItem(atPath: arguments.file) }

let sorted = stats.sortedLatenciesNs
let ios = stats.operations
let iops = Double(ios) / (Double(elapsedNs) / 1e9)
let writtenBytes = arguments.writing ? UInt64(ios) * UInt64(arguments.blockBytes) : 0
func percentileMicros(_ fraction: Double) -> Double {
    sorted.isEmpty ? 0 : Double(sorted[min(Int(Double(sorted.count) * fraction), sorted.count - 1)]) / 1000
}
func fixed(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
let fields: [(String, String)] = [
    ("pattern", arguments.pattern), ("bs", "\(arguments.blockBytes)"), ("qd", "\(arguments.queueDepth)"),
    ("durable", arguments.durable), ("prefill", arguments.prefillMode), ("ios", "\(ios)"),
    ("seconds", fixed(Double(elapsedNs) / 1e9, 2)), ("iops", fixed(iops, 0)),
    ("mibps", fixed(iops * Double(arguments.blockBytes) / 1_048_576)),
    ("p50_us", fixed(percentileMicros(0.5))), ("p99_us", fixed(percentileMicros(0.99))),
    ("cpu_us_per_io", fixed(ios > 0 ? cpuMicroseconds / Double(ios) : 0, 2)),
    ("written_bytes", "\(writtenBytes)"), ("wal_bytes", "\(walSizeBytes)"),
    ("wal_laps", fixed(Double(writtenBytes) / Double(walSizeBytes), 2)),
    ("writeback_bytes", "\(after.writeBackBytes - before.writeBackBytes)"),
    ("syncs", "\(after.groupCommitSyncs - before.groupCommitSyncs)"),
    ("writeback_runs", "\(after.writeBackRuns - before.writeBackRuns)"),
    ("wal_waits", "\(after.walFullWaits - before.walFullWaits)"),
]
print("engine " + fields.map { "\($0.0)=\($0.1)" }.joined(separator: " "))
