// Damage on top of a power cut: a record that a later record of the log claims durable is
// damaged in the crash image, and the open must refuse the volume (corruption), not cut the
// log there as if it were a torn tail, and must write nothing.

import Testing
@testable import BlockEngine

extension CrashSimulationTests {
    /// Damages one recovered record of `image` that a later recovered record claims durable,
    /// preferring one whose successor does not claim it (the proof is further along the
    /// chain), and expects the open to fail naming it. Returns false when no record of the
    /// image is claimed durable by a later one.
    func expectProvenDamageReported(image: [UInt8], generator: inout SeededGenerator,
                                    context: String) async throws -> Bool {
        let state = try Recovery.recover(file: SimulatedFile(image: image), path: "sim")
        let walOffset = state.superblock.walOffsetBytes, walSize = state.superblock.walSizeBytes
        let offsets = state.records.map { Int(walOffset + $0.headerPosition % walSize) }
        let hints = offsets.map { offset -> UInt64 in
            guard case let .valid(header) = image[offset..<(offset + WALRecord.headerBytes)]
                .withUnsafeBytes({ WALRecordHeader.decode($0) }) else { return 0 }
            return header.durableHintLSN
        }
        // The highest hint among the records after each one.
        var laterHint = [UInt64](repeating: 0, count: hints.count + 1)
        for index in hints.indices.reversed() { laterHint[index] = max(laterHint[index + 1], hints[index]) }
        let proven = state.records.indices.filter { laterHint[$0 + 1] >= state.records[$0].lsn }
        let provenFurther = proven.filter { hints[$0 + 1] < state.records[$0].lsn }
        guard let target = provenFurther.randomElement(using: &generator) ?? proven.randomElement(using: &generator)
        else { return false }
        let record = state.records[target]
        let payloadBytes = Int(record.endPosition - record.payloadPosition)
        let damageHeader = record.kind != .write || Bool.random(using: &generator)
        let offset = damageHeader ? Int.random(in: 0..<WALRecord.headerBytes, using: &generator)
            : WALRecord.headerBytes + Int.random(in: 0..<payloadBytes, using: &generator)
        var damaged = image
        damaged[offsets[target] + offset] ^= 0x01
        let file = SimulatedFile(image: damaged)
        let what = "record \(record.lsn) damaged at byte \(offset) (\(context))"
        do {
            let volume = try Volume.open(file: file, path: "sim", options: Self.options())
            Issue.record("a damaged record proven durable was cut as a torn tail: \(what)")
            try await volume.close()
        } catch {
            if case let .corrupt(location, _) = error {
                #expect(location.hasPrefix("WAL record \(record.lsn) "), "\(location): \(what)")
            } else {
                Issue.record("unexpected error \(error): \(what)")
            }
            #expect(file.historyCount == 0, "the volume that failed to open was written: \(what)")
        }
        return true
    }
}
