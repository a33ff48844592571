// Shared test scaffolding: real engine volumes in temporary directories, a logical unit over
// them, CDB builders and result expectations.

import BlockEngine
import Foundation
import Logging
import NIOCore
import Synchronization
import Testing
@testable import BlockSCSI

/// A fresh directory under the system temp dir, removed when the value is dropped.
final class TemporaryDirectory: Sendable {
    let path: String

    init() {
        let template = NSTemporaryDirectory() + "blockscsi-test-XXXXXX"
        var bytes = Array(template.utf8CString)
        let result = bytes.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(result != nil, "mkdtemp failed")
        path = String(cString: result!)
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The target every fixture's logical unit belongs to.
let testTargetName = "iqn.2024-01.test:target"

let nexusA = ITNexus(initiatorName: "iqn.2024-01.test:initiator-a", initiatorSessionID: 0x0002_3D00_0001,
                     targetName: testTargetName, targetPortalGroupTag: 1)
let nexusB = ITNexus(initiatorName: "iqn.2024-01.test:initiator-b", initiatorSessionID: 0x0002_3D00_0002,
                     targetName: testTargetName, targetPortalGroupTag: 1)
let nexusC = ITNexus(initiatorName: "iqn.2024-01.test:initiator-c", initiatorSessionID: 0x0002_3D00_0003,
                     targetName: testTargetName, targetPortalGroupTag: 1)

extension ITNexus {
    /// The same initiator port logged in to `targetName` instead.
    func through(_ targetName: String) -> ITNexus {
        var other = self
        other.targetName = targetName
        return other
    }
}

func quietLogger() -> Logger {
    var logger = Logger(label: "BlockSCSITests")
    logger.logLevel = .critical
    return logger
}

func testVolumeOptions() -> VolumeOptions {
    var options = VolumeOptions(flushIntervalMs: 20)
    options.logger.logLevel = .critical
    return options
}

/// What a test sees of a result.
struct Response {
    let status: SCSIStatus
    let sense: SenseData?
    let data: [UInt8]

    init(_ result: SCSIResult) {
        status = result.status
        sense = result.sense
        data = result.dataIn.map { Array($0.readableBytesView) } ?? []
        if result.status == .checkCondition {
            precondition(sense != nil, "CHECK CONDITION without decodable sense data")
        }
    }
}

/// A volume plus a logical unit over it.
final class Fixture: Sendable {
    static let blockSizeBytes = 4096
    static let volumeBytes: UInt64 = 64 << 20
    static var blockCount: UInt64 { volumeBytes / UInt64(blockSizeBytes) }

    let directory: TemporaryDirectory
    let volume: Volume
    let unit: SCSILogicalUnit

    init(directory: TemporaryDirectory, volume: Volume, unit: SCSILogicalUnit) {
        self.directory = directory
        self.volume = volume
        self.unit = unit
    }

    static func configuration(_ directory: TemporaryDirectory, persistReservations: Bool = false) -> SCSILogicalUnitConfiguration {
        SCSILogicalUnitConfiguration(targetName: testTargetName,
                                     reservationFilePath: persistReservations ? directory.file("vol.pr") : nil,
                                     maximumWriteSameLengthBytes: 8 << 20, logger: quietLogger())
    }

    /// A new 64 MiB volume with 4 KiB blocks and a logical unit over it.
    static func make(blockSizeBytes: Int = blockSizeBytes,
                     configure: (inout SCSILogicalUnitConfiguration) -> Void = { _ in }) async throws -> Fixture {
        let directory = TemporaryDirectory()
        let volume = try await Volume.create(
            at: directory.file("vol.blk"),
            configuration: VolumeConfiguration(sizeBytes: volumeBytes, blockSizeBytes: blockSizeBytes, walSizeBytes: 4 << 20),
            options: testVolumeOptions())
        var configuration = configuration(directory)
        configure(&configuration)
        let unit = try SCSILogicalUnit(volume: volume, configuration: configuration)
        return Fixture(directory: directory, volume: volume, unit: unit)
    }

    /// Sends `cdb`; `dataOut` sets the expected transfer length unless `expectedLength` does.
    func send(_ cdb: [UInt8], from nexus: ITNexus = nexusA, data dataOut: [UInt8]? = nil,
              expectedLength: Int? = nil) async -> Response {
        Response(await unit.execute(request(cdb, from: nexus, data: dataOut, expectedLength: expectedLength)))
    }

    /// Sends TEST UNIT READY until GOOD, consuming the unit attentions of `nexus`; returns them.
    @discardableResult
    func clearAttentions(_ nexus: ITNexus = nexusA) async -> [SenseCode] {
        var seen: [SenseCode] = []
        for _ in 0..<20 {
            let response = await send(CDB.testUnitReady(), from: nexus)
            guard response.status == .checkCondition, let sense = response.sense, sense.code.key == .unitAttention else {
                return seen
            }
            seen.append(sense.code)
        }
        Issue.record("unit attentions never cleared")
        return seen
    }

    func close() async throws {
        try await volume.close()
    }
}

func request(_ cdb: [UInt8], from nexus: ITNexus = nexusA, data dataOut: [UInt8]? = nil,
             expectedLength: Int? = nil) -> SCSICommandRequest {
    SCSICommandRequest(cdb: ByteBuffer(bytes: cdb), nexus: nexus, lun: 0,
                       expectedDataTransferLength: expectedLength ?? dataOut?.count ?? 0,
                       dataOut: dataOut.map { ByteBuffer(bytes: $0) }, taskTag: 1)
}

func expectGood(_ response: Response, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(response.status == .good, "status \(response.status) sense \(String(describing: response.sense))",
            sourceLocation: sourceLocation)
}

func expectSense(_ response: Response, _ code: SenseCode, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(response.status == .checkCondition, "status \(response.status)", sourceLocation: sourceLocation)
    #expect(response.sense?.code == code, "sense \(String(describing: response.sense))", sourceLocation: sourceLocation)
}

/// Block contents that name their writer: every byte derives from (tag, lba, byte index).
func pattern(tag: UInt8, blocks: Int, blockSize: Int = Fixture.blockSizeBytes, firstLBA: Int = 0) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: blocks * blockSize)
    for index in bytes.indices {
        bytes[index] = UInt8(truncatingIfNeeded: Int(tag) &* 31 &+ (firstLBA + index / blockSize) &* 7 &+ index % 251)
    }
    return bytes
}

/// A deterministic generator (SplitMix64) so randomized tests replay from their seed.
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

/// A backend that forwards to a real volume and records what the logical unit asked of it.
final class RecordingBackend: LogicalUnitBackend {
    struct WriteRecord: Equatable, Sendable {
        var lba: UInt64
        var blockCount: UInt64
        var fua: Bool
    }

    /// One `blockStatus` call: its range, and whether it ran on a `LoopStandIn`.
    struct StatusQuery: Equatable, Sendable {
        var lba: UInt64
        var blockCount: UInt64
        var onLoop: Bool
    }

    let volume: Volume
    private let records = Mutex<[WriteRecord]>([])
    private let statusRecords = Mutex<[StatusQuery]>([])
    private let flushCount = Mutex(0)
    private let flushFailure = Mutex<BlockError?>(nil)

    init(volume: Volume) { self.volume = volume }

    var writes: [WriteRecord] { records.withLock { $0 } }
    var statusQueries: [StatusQuery] { statusRecords.withLock { $0 } }
    var flushes: Int { flushCount.withLock { $0 } }
    func failFlushes(with error: BlockError?) { flushFailure.withLock { $0 = error } }

    var blockSizeBytes: Int { volume.blockSizeBytes }
    var blockCount: UInt64 { volume.blockCount }
    var uuid: VolumeUUID { volume.uuid }
    var role: VolumeRole { volume.role }
    var writeRefusal: BlockError? { volume.writeRefusal }

    func read(at lba: UInt64, into buffer: UnsafeMutableRawBufferPointer, pageCacheChecked: Bool) async throws(BlockError) {
        try await volume.read(at: lba, into: buffer, pageCacheChecked: pageCacheChecked)
    }

    func write(at lba: UInt64, _ source: some BlockWriteSource, fua: Bool) async throws(BlockError) -> UInt64 {
        records.withLock {
            $0.append(WriteRecord(lba: lba, blockCount: UInt64(source.byteCount / volume.blockSizeBytes), fua: fua))
        }
        return try await volume.write(at: lba, source, fua: fua)
    }

    func readWithoutWaiting(at lba: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(BlockError) -> Bool {
        try volume.readWithoutWaiting(at: lba, into: buffer)
    }

    func writeWithoutWaiting(at lba: UInt64, _ source: some BlockWriteSource) throws(BlockError) -> Bool {
        let written = try volume.writeWithoutWaiting(at: lba, source)
        if written {
            records.withLock {
                $0.append(WriteRecord(lba: lba, blockCount: UInt64(source.byteCount / volume.blockSizeBytes), fua: false))
            }
        }
        return written
    }

    func trim(at lba: UInt64, blockCount: UInt64) async throws(BlockError) -> UInt64 {
        try await volume.trim(at: lba, blockCount: blockCount)
    }

    func flush() async throws(BlockError) -> UInt64 {
        flushCount.withLock { $0 += 1 }
        if let failure = flushFailure.withLock({ $0 }) { throw failure }
        return try await volume.flush()
    }

    func blockStatus(at lba: UInt64, blockCount: UInt64) throws(BlockError) -> [BlockStatusExtent] {
        statusRecords.withLock { $0.append(StatusQuery(lba: lba, blockCount: blockCount, onLoop: LoopStandIn.isCurrent)) }
        return try volume.blockStatus(at: lba, blockCount: blockCount)
    }
}

/// A task executor on one serial queue, standing in for a transport's network event loop
/// (whose commands run with it as their executor preference).
final class LoopStandIn: TaskExecutor {
    private static let marker = DispatchSpecificKey<Bool>()
    private let queue = DispatchQueue(label: "loop-stand-in")

    init() { queue.setSpecific(key: Self.marker, value: true) }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }

    /// True on the thread of any `LoopStandIn`.
    static var isCurrent: Bool { DispatchQueue.getSpecific(key: marker) == true }
}

/// A mutable value shared between test tasks (a local `Mutex` cannot be captured by them).
final class Shared<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<R>(_ body: (inout Value) -> R) -> R { mutex.withLock { body(&$0) } }
    var value: Value { mutex.withLock { $0 } }
}
