// The volume the fuzzers that execute commands run against: 1 MiB of 512-byte blocks in a
// temporary directory, created once per process and removed at exit. Small blocks keep
// COMPARE AND WRITE and WRITE SAME lists within the fuzzers' input length.

import BlockEngine
import BlockSCSI
import Dispatch
import Foundation
import Logging
import Synchronization

public enum FuzzVolume {
    static let directory: String = {
        let path = NSTemporaryDirectory() + "swift-block-fuzzer-\(getpid())"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: FuzzVolume.directory) }
        return path
    }()

    public static let shared: Volume = waitFor {
        var options = VolumeOptions()
        options.logger = quietLogger
        return try! await Volume.create(
            at: directory + "/fuzz.blk",
            configuration: VolumeConfiguration(sizeBytes: 1 << 20, blockSizeBytes: 512, walSizeBytes: 1 << 20),
            options: options)
    }

    public static let quietLogger: Logger = {
        var logger = Logger(label: "fuzzer")
        logger.logLevel = .critical
        return logger
    }()

    /// A new logical unit over the shared volume: no registrations, default mode pages.
    public static func makeUnit(targetName: String) -> SCSILogicalUnit {
        let configuration = SCSILogicalUnitConfiguration(targetName: targetName, maximumTransferLengthBytes: 64 << 10,
                                                         maximumWriteSameLengthBytes: 64 << 10,
                                                         maximumCompareAndWriteBlocks: 4, maximumUnmapBlockCount: 1024,
                                                         maximumUnmapDescriptorCount: 16, logger: quietLogger)
        return try! SCSILogicalUnit(volume: shared, configuration: configuration)
    }
}

/// Runs `body` to completion from synchronous code (libFuzzer calls in on its own thread,
/// never on a Swift concurrency thread, so blocking it is safe).
public func waitFor<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let outcome = Outcome<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        outcome.set(await body())
        done.signal()
    }
    done.wait()
    return outcome.value!
}

private final class Outcome<T: Sendable>: Sendable {
    private let storage = Mutex<T?>(nil)
    func set(_ value: T) { storage.withLock { $0 = value } }
    var value: T? { storage.withLock { $0 } }
}
