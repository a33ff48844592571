// The WAL ring's memory follows the records not yet written back, and a budget shared by
// volumes bounds it: pages behind the tail go back to the kernel, writers wait for the
// budget and go on once write-back frees it, closing gives everything back.

import Foundation
import Testing
@testable import BlockEngine

@Suite("Memory: ring pages and the shared budget")
struct MemoryBudgetTests {
    static let chunkBytes = 64 << 10

    /// Writes `totalBytes` in 64 KiB writes from `tasks` concurrent writers, each its own range.
    static func write(_ volume: Volume, totalBytes: Int, tasks: Int, tag: UInt64) async throws {
        let perTask = totalBytes / tasks / chunkBytes
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<tasks {
                group.addTask {
                    for step in 0..<perTask {
                        let lba = UInt64((task * perTask + step) * (chunkBytes / 4096))
                        try await volume.write(at: lba, patterns(tag: tag, lba: lba, blockCount: 16, blockSize: 4096))
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// A volume of 64 MiB with a 32 MiB WAL, without background write-back, on `budget`.
    static func makeBudgetedVolume(_ name: String, in directory: TemporaryDirectory,
                                   budget: MemoryBudget) async throws -> Volume {
        // Without background write-back only the budget's pressure (and each volume's own
        // waiting writers) start write-back, so the budget is certain to fill.
        var options = testOptions(background: false)
        options.memoryBudget = budget
        return try await Volume.create(
            at: directory.file(name),
            configuration: VolumeConfiguration(sizeBytes: 64 << 20, blockSizeBytes: 4096, walSizeBytes: 32 << 20),
            options: options)
    }

    static func expectContent(_ volume: Volume, totalBytes: Int, tag: UInt64) async throws {
        for lba in stride(from: UInt64(0), to: UInt64(totalBytes / 4096), by: 16) {
            let read = try await volume.read(at: lba, blockCount: 16)
            #expect(read == patterns(tag: tag, lba: lba, blockCount: 16, blockSize: 4096), "LBA \(lba)")
        }
    }

    @Test("pages behind the tail are given back once written back")
    func pagesGoBack() async throws {
        let directory = TemporaryDirectory()
        let volume = try await makeVolume(in: directory, sizeBytes: 64 << 20, walSizeBytes: 16 << 20, background: false)
        try await Self.write(volume, totalBytes: 6 << 20, tasks: 4, tag: 1)
        let before = volume.core.mirror.residentBytes()
        #expect(before >= 6 << 20, "the records are in the ring")
        try await volume.checkpoint()
        let after = volume.core.mirror.residentBytes()
        #expect(after <= 8 << 10, "at most the head's page stays; \(after) bytes resident")
        try await Self.expectContent(volume, totalBytes: 6 << 20, tag: 1)
        try await volume.close()
    }

    @Test("a budget below the minimum is refused")
    func tooSmall() {
        #expect(throws: BlockError.self) { try MemoryBudget(limitBytes: MemoryBudget.minimumLimitBytes - 1) }
    }

    @Test("volumes sharing a budget stay within it; writers wait and go on; closing gives it all back")
    func sharedBudget() async throws {
        let directory = TemporaryDirectory()
        let budget = try MemoryBudget(limitBytes: MemoryBudget.minimumLimitBytes)
        var volumes: [Volume] = []
        for index in 0..<4 { volumes.append(try await Self.makeBudgetedVolume("v\(index).blk", in: directory, budget: budget)) }
        // 4 x 24 MiB into rings of 32 MiB each: without the budget 96 MiB would be resident.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, volume) in volumes.enumerated() {
                group.addTask { try await Self.write(volume, totalBytes: 24 << 20, tasks: 4, tag: UInt64(index + 1)) }
            }
            try await group.waitForAll()
        }
        // One record may pass the limit when nothing else is held; records here are 64 KiB.
        #expect(budget.peakBytes <= budget.limitBytes + (1 << 20), "peak \(budget.peakBytes)")
        #expect(budget.failedCharges > 0, "writers had to wait for the budget")
        for (index, volume) in volumes.enumerated() {
            try await Self.expectContent(volume, totalBytes: 24 << 20, tag: UInt64(index + 1))
            #expect(volume.core.mirror.residentBytes() <= budget.limitBytes + (1 << 20))
        }
        for volume in volumes { try await volume.close() }
        volumes.removeAll()
        #expect(budget.usedBytes == 0, "closed volumes hold nothing")
    }

    @Test("a volume that holds nothing gets budget back from the others' write-back")
    func quietVolumeIsServed() async throws {
        let directory = TemporaryDirectory()
        let budget = try MemoryBudget(limitBytes: MemoryBudget.minimumLimitBytes)
        let busy = try await Self.makeBudgetedVolume("busy.blk", in: directory, budget: budget)
        let quiet = try await Self.makeBudgetedVolume("quiet.blk", in: directory, budget: budget)
        // Without background write-back the busy volume keeps its records until asked.
        try await Self.write(busy, totalBytes: 15 << 20, tasks: 1, tag: 7)
        #expect(budget.usedBytes >= 15 << 20)
        // The quiet volume's writes need budget: the busy one is prompted to write back.
        try await Self.write(quiet, totalBytes: 4 << 20, tasks: 2, tag: 8)
        try await Self.expectContent(quiet, totalBytes: 4 << 20, tag: 8)
        try await Self.expectContent(busy, totalBytes: 15 << 20, tag: 7)
        try await busy.close()
        try await quiet.close()
        #expect(budget.usedBytes == 0)
    }
}
