// Randomized power-cut simulation. A workload of writes, trims, FUA writes, flushes and
// checkpoints runs on a SimulatedFile; then the file is cut at random points of its I/O
// history and each image is recovered and checked against a model of what the workload was
// promised. The recovered volume of one segment carries on into the next, so recovery of
// recovered volumes (and stale records from before a torn tail) is exercised too. At each
// point a copy of the image also gets a damaged record that a later record proves durable,
// which the open must report as corruption (CrashSimulationTests+Damage.swift).
//
// BLOCKENGINE_CRASH_POINTS (default 2000) sets how many crash points run;
// BLOCKENGINE_CRASH_SEED replays one chain. Failures print the seed. A seed fixes the
// workload and the cut points; the log writer thread still writes on its own schedule, so
// a replay may see a different interleaving of its writes (run the seed a few times).

import Foundation
import Testing
@testable import BlockEngine

/// What the workload did, in order, with where each operation started and ended in the
/// simulated file's I/O history.
struct CrashModel {
    enum Kind { case write(tag: UInt64), trim, flush, checkpoint }
    struct Operation {
        var kind: Kind
        var lba: UInt64 = 0
        var blockCount: UInt64 = 0
        var fua = false
        var start: Int
        var end: Int
    }

    let blockSize: Int
    let blockCount: UInt64
    /// Block contents when the segment started (recovered and verified).
    var baseline: [[UInt8]]
    var operations: [Operation] = []

    func value(of operation: Operation, lba: UInt64) -> [UInt8] {
        if case let .write(tag) = operation.kind { return pattern(tag: tag, lba: lba, blockSize: blockSize) }
        return [UInt8](repeating: 0, count: blockSize)
    }

    /// The newest value of each block, as a read must see it now.
    func latest() -> [[UInt8]] {
        var blocks = baseline
        for operation in operations {
            guard operation.blockCount > 0 else { continue }
            for lba in operation.lba..<(operation.lba + operation.blockCount) {
                blocks[Int(lba)] = value(of: operation, lba: lba)
            }
        }
        return blocks
    }

    /// For each block, the values a power cut after `point` history entries may leave.
    func allowed(at point: Int) -> [[[UInt8]]] {
        // Writes before the last flush that returned by `point` are promised durable, as are
        // FUA writes that returned by then.
        let lastFlush = operations.lastIndex { if case .flush = $0.kind { return $0.end <= point } else { return false } }
        var durableIndex = [Int?](repeating: nil, count: Int(blockCount))
        for (index, operation) in operations.enumerated() where operation.blockCount > 0 {
            let promised = (lastFlush.map { index < $0 } ?? false) || (operation.fua && operation.end <= point)
            guard promised else { continue }
            for lba in operation.lba..<(operation.lba + operation.blockCount) { durableIndex[Int(lba)] = index }
        }
        var allowed = (0..<Int(blockCount)).map { lba in
            [durableIndex[lba].map { value(of: operations[$0], lba: UInt64(lba)) } ?? baseline[lba]]
        }
        for (index, operation) in operations.enumerated() where operation.blockCount > 0 && operation.start < point {
            for lba in operation.lba..<(operation.lba + operation.blockCount)
            where durableIndex[Int(lba)].map({ index > $0 }) ?? true {
                allowed[Int(lba)].append(value(of: operation, lba: lba))
            }
        }
        return allowed
    }
}

@Suite("Crash simulation")
struct CrashSimulationTests {
    static let blockCount: UInt64 = 48
    static let segmentsPerChain = 4
    static let pointsPerSegment = 20
    static let operationsPerSegment = 40

    static func options() -> VolumeOptions {
        var options = VolumeOptions(backgroundWriteBack: false)
        options.logger.logLevel = .critical
        return options
    }

    @Test("every acknowledged flush survives a power cut, nothing unwritten appears, and damage to a record proven durable fails the open")
    func randomizedPowerCuts() async throws {
        let environment = ProcessInfo.processInfo.environment
        let totalPoints = environment["BLOCKENGINE_CRASH_POINTS"].flatMap(Int.init) ?? 2000
        let pointsPerChain = Self.segmentsPerChain * Self.pointsPerSegment
        let seeds: [UInt64]
        if let seed = environment["BLOCKENGINE_CRASH_SEED"].flatMap(UInt64.init) {
            seeds = [seed]
        } else {
            let chains = (totalPoints + pointsPerChain - 1) / pointsPerChain
            seeds = (0..<UInt64(chains)).map { 0xB10C_0000 + $0 }
        }
        var checked = 0, damaged = 0
        for seed in seeds {
            let counts = try await runChain(seed: seed)
            checked += counts.points
            damaged += counts.damaged
        }
        #expect(checked >= min(totalPoints, seeds.count * pointsPerChain))
        #expect(damaged > 0, "some crash image held a record proven durable by a later one")
    }

    /// Runs one chain of segments; returns the number of crash points checked, and of
    /// images checked again with a damaged record proven durable.
    func runChain(seed: UInt64) async throws -> (points: Int, damaged: Int) {
        var generator = SeededGenerator(seed: seed)
        let blockSize = Bool.random(using: &generator) ? 512 : 4096
        let file = SimulatedFile()
        try Volume.format(file: file, configuration: VolumeConfiguration(
            sizeBytes: Self.blockCount * UInt64(blockSize), blockSizeBytes: blockSize,
            walSizeBytes: WALLayout.minimumSizeBytes))
        var current = (file: file, volume: try Volume.open(file: file, path: "sim", options: Self.options()))
        var model = CrashModel(blockSize: blockSize, blockCount: Self.blockCount,
                               baseline: Array(repeating: [UInt8](repeating: 0, count: blockSize),
                                               count: Int(Self.blockCount)))
        var checked = 0, damaged = 0
        for segment in 0..<Self.segmentsPerChain {
            // Later segments keep the history from the crash image on, so power cuts
            // during the open that recovered it (its session superblock) are points too.
            if segment == 0 { current.file.resetHistory() }
            if ProcessInfo.processInfo.environment["BLOCKENGINE_CRASH_DEBUG"] != nil,
               let state = try? Recovery.recover(file: SimulatedFile(image: current.file.image), path: "sim") {
                print("segment \(segment) starts: core session \(current.volume.core.sessionID.load(ordering: .relaxed)), superblock \(state.superblock.sequence) session \(state.superblock.sessionID)")
            }
            model.operations = []
            try await runWorkload(current.volume, file: current.file, model: &model, generator: &generator,
                                  tagBase: seed << 20 | UInt64(segment) << 12)
            let historyLength = current.file.historyCount
            var points = (0..<Self.pointsPerSegment).map { _ in Int.random(in: 0...historyLength, using: &generator) }
            points.sort()
            var next: (file: SimulatedFile, volume: Volume, blocks: [[UInt8]])? = nil
            for (number, point) in points.enumerated() {
                let context = "seed=\(seed) segment=\(segment) point=\(point)/\(historyLength) blockSize=\(blockSize)"
                let image = current.file.crashImage(at: point, using: &generator)
                guard let recovered = try await recoverAndCheck(image: image, model: model, point: point,
                                                                context: context) else {
                    if ProcessInfo.processInfo.environment["BLOCKENGINE_CRASH_DEBUG"] != nil {
                        current.file.dumpHistory(upTo: point, geometry: (blockSize, Self.blockCount))
                        for operation in model.operations { print("  op", operation) }
                    }
                    return (checked, damaged)
                }
                checked += 1
                if try await expectProvenDamageReported(image: image, generator: &generator, context: context) {
                    damaged += 1
                }
                if number == points.count - 1 {
                    next = recovered
                } else {
                    try await recovered.volume.close()
                }
            }
            try await current.volume.close()
            guard let next else { break }
            current = (next.file, next.volume)
            model.baseline = next.blocks
        }
        try await current.volume.close()
        return (checked, damaged)
    }

    func runWorkload(_ volume: Volume, file: SimulatedFile, model: inout CrashModel,
                     generator: inout SeededGenerator, tagBase: UInt64) async throws {
        for step in 0..<Self.operationsPerSegment {
            let roll = Int.random(in: 0..<100, using: &generator)
            let lba = UInt64.random(in: 0..<Self.blockCount, using: &generator)
            let count = UInt64.random(in: 1...min(8, Self.blockCount - lba), using: &generator)
            let start = file.historyCount
            var operation = CrashModel.Operation(kind: .flush, start: start, end: start)
            switch roll {
            case 0..<60:
                let tag = tagBase + UInt64(step)
                let fua = Int.random(in: 0..<5, using: &generator) == 0
                try await volume.write(at: lba, patterns(tag: tag, lba: lba, blockCount: Int(count),
                                                         blockSize: model.blockSize), fua: fua)
                operation = .init(kind: .write(tag: tag), lba: lba, blockCount: count, fua: fua, start: start, end: 0)
            case 60..<72:
                try await volume.trim(at: lba, blockCount: count)
                operation = .init(kind: .trim, lba: lba, blockCount: count, start: start, end: 0)
            case 72..<92:
                try await volume.flush()
                operation = .init(kind: .flush, start: start, end: 0)
            default:
                try await volume.checkpoint()
                operation = .init(kind: .checkpoint, start: start, end: 0)
            }
            operation.end = file.historyCount
            model.operations.append(operation)
            if step % 10 == 9 {
                let live = try await volume.read(at: 0, blockCount: Int(Self.blockCount))
                #expect(live == model.latest().flatMap { $0 }, "live read differs from the newest writes")
            }
        }
    }

    /// Opens a crash image, checks every block against the model, and returns the volume
    /// (still open) with the blocks it holds. Records an issue and returns nil on failure.
    func recoverAndCheck(image: [UInt8], model: CrashModel, point: Int,
                         context: String) async throws -> (file: SimulatedFile, volume: Volume, blocks: [[UInt8]])? {
        let file = SimulatedFile(image: image)
        let volume: Volume
        do {
            volume = try Volume.open(file: file, path: "sim", options: Self.options())
        } catch {
            Issue.record("recovery failed (\(context)): \(error)")
            return nil
        }
        let bytes = try await volume.read(at: 0, blockCount: Int(Self.blockCount))
        let allowed = model.allowed(at: point)
        var blocks: [[UInt8]] = []
        for lba in 0..<Int(Self.blockCount) {
            let block = Array(bytes[(lba * model.blockSize)..<((lba + 1) * model.blockSize)])
            if !allowed[lba].contains(block) {
                if ProcessInfo.processInfo.environment["BLOCKENGINE_CRASH_DEBUG"] != nil,
                   let state = try? Recovery.recover(file: SimulatedFile(image: image), path: "sim") {
                    print("superblock:", state.superblock)
                    print("other slot:", state.otherSlot)
                    print("recovered LSNs:", state.records.map(\.lsn), "stop:", state.scanStop)
                    let owners = allowed[lba].map { value in model.operations.firstIndex { $0.blockCount > 0 && model.value(of: $0, lba: UInt64(lba)) == value } }
                    print("allowed owners:", owners, "baseline match:", block == model.baseline[lba])
                }
                let promised = allowed[lba][0] == block ? "" : " (not the durable value either)"
                Issue.record("block \(lba) holds data no allowed write produced\(promised) (\(context))")
                try await volume.close()
                return nil
            }
            blocks.append(block)
        }
        return (file, volume, blocks)
    }
}
