// block-bench: drives a BlockEngine volume at a fixed shape and prints one result line.
//   block-bench --file PATH --size 1GiB --pattern randwrite --bs 4096 --qd 32 --durable fua --seconds 10
// Durable writes count only once flushed (FUA, or write + flush per I/O).

import BlockEngine
import Foundation

struct Arguments {
    var file = ""
    var sizeBytes: UInt64 = 1 << 30
    var walSizeBytes: UInt64 = 64 << 20
    var pattern = "randwrite"
    var blockBytes = 4096
    var queueDepth = 32
    var durable = "none"
    var seconds = 10.0
    var keep = false

    init() {
        var iterator = CommandLine.arguments.dropFirst().makeIterator()
        while let flag = iterator.next() {
            guard let value = iterator.next() else { fatalError("missing value for \(flag)") }
            switch flag {
            case "--file": file = value
            case "--size": sizeBytes = parseSize(value)
            case "--wal-size": walSizeBytes = parseSize(value)
            case "--pattern": pattern = value
            case "--bs": blockBytes = Int(parseSize(value))
            case "--qd": queueDepth = Int(value)!
            case "--durable": durable = value
            case "--seconds": seconds = Double(value)!
            case "--keep": keep = value == "1"
            default: fatalError("unknown flag \(flag)")
            }
        }
        precondition(!file.isEmpty, "--file is required")
    }
}

func parseSize(_ text: String) -> UInt64 {
    let units: [(String, UInt64)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)]
    for (suffix, multiplier) in units where text.hasSuffix(suffix) {
        return UInt64(text.dropLast(suffix.count))! * multiplier
    }
    return UInt64(text)!
}

final class Stats: @unchecked Sendable {
    let lock = NSLock()
    var operations = 0
    var latenciesNs: [UInt64] = []
    func add(_ count: Int, _ latencies: [UInt64]) {
        lock.lock(); operations += count; latenciesNs += latencies; lock.unlock()
    }
}

let arguments = Arguments()
var options = VolumeOptions()
options.logger.logLevel = .warning
let volume: Volume
if FileManager.default.fileExists(atPath: arguments.file) {
    volume = try await Volume.open(at: arguments.file, options: options)
} else {
    volume = try await Volume.create(at: arguments.file, configuration: VolumeConfiguration(
        sizeBytes: arguments.sizeBytes, blockSizeBytes: 4096, walSizeBytes: arguments.walSizeBytes), options: options)
}
let blocksPerIO = arguments.blockBytes / 4096
let maxLBA = volume.blockCount - UInt64(blocksPerIO)
let sequential = arguments.pattern.hasPrefix("seq")
let writing = arguments.pattern.hasSuffix("write")
let stats = Stats()
let deadline = Date().addingTimeInterval(arguments.seconds)
let started = DispatchTime.now().uptimeNanoseconds
try await withThrowingTaskGroup(of: Void.self) { group in
    for worker in 0..<arguments.queueDepth {
        group.addTask {
            var generator = SystemRandomNumberGenerator()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: arguments.blockBytes, alignment: 4096)
            defer { buffer.deallocate() }
            for index in 0..<arguments.blockBytes { buffer[index] = UInt8(truncatingIfNeeded: index &* 31 &+ worker) }
            var count = 0
            var latencies: [UInt64] = []
            var sequentialLBA = UInt64(worker) * (maxLBA / UInt64(arguments.queueDepth)) / UInt64(blocksPerIO) * UInt64(blocksPerIO)
            while Date() < deadline {
                for _ in 0..<16 {
                    let lba: UInt64
                    if sequential {
                        lba = sequentialLBA
                        sequentialLBA += UInt64(blocksPerIO)
                        if sequentialLBA > maxLBA { sequentialLBA = 0 }
                    } else {
                        lba = UInt64.random(in: 0...(maxLBA / UInt64(blocksPerIO)), using: &generator) * UInt64(blocksPerIO)
                    }
                    let begin = DispatchTime.now().uptimeNanoseconds
                    if writing {
                        try await volume.write(at: lba, from: UnsafeRawBufferPointer(buffer), fua: arguments.durable == "fua")
                        if arguments.durable == "flush" { try await volume.flush() }
                    } else {
                        try await volume.read(at: lba, into: buffer)
                    }
                    latencies.append(DispatchTime.now().uptimeNanoseconds - begin)
                    count += 1
                }
            }
            stats.add(count, latencies)
        }
    }
    try await group.waitForAll()
}
let elapsedNs = DispatchTime.now().uptimeNanoseconds - started
let info = volume.info()
try await volume.close()
if !arguments.keep { try? FileManager.default.removeItem(atPath: arguments.file) }
let sorted = stats.latenciesNs.sorted()
let iops = Double(stats.operations) / (Double(elapsedNs) / 1e9)
let median = sorted.isEmpty ? 0 : Double(sorted[sorted.count / 2]) / 1000
let p99 = sorted.isEmpty ? 0 : Double(sorted[sorted.count * 99 / 100]) / 1000
print(String(format: "engine pattern=%@ bs=%d qd=%d durable=%@ iops=%.0f mibps=%.1f p50_us=%.1f p99_us=%.1f syncs=%llu writeback_runs=%llu wal_waits=%llu",
             arguments.pattern, arguments.blockBytes, arguments.queueDepth, arguments.durable, iops,
             iops * Double(arguments.blockBytes) / 1_048_576, median, p99, info.groupCommitSyncs, info.writeBackRuns, info.walFullWaits))
