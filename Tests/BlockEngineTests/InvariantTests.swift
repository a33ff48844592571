// The log writer's and the write-back's invariants are checked in every build: a state that
// breaks one stops the process (exit tests; each child sets up the broken state itself).

import Foundation
import Testing
@testable import BlockEngine

@Suite("Invariant checks")
struct InvariantTests {
    /// A volume on a simulated file, opened without background write-back.
    static func openVolume() throws -> Volume {
        let file = SimulatedFile()
        try Volume.format(file: file, configuration: VolumeConfiguration(sizeBytes: 1 << 20, blockSizeBytes: 4096,
                                                                         walSizeBytes: 256 << 10))
        var options = VolumeOptions(backgroundWriteBack: false)
        options.logger.logLevel = .critical
        return try Volume.open(file: file, path: "invariants", options: options)
    }

    @Test("a durable LSN that would go backwards stops the process")
    func durableLSNOnlyGrows() async {
        await #expect(processExitsWith: .failure) {
            do {
                let volume = try InvariantTests.openVolume()
                try await volume.write(at: 0, [UInt8](repeating: 1, count: 4096), fua: true)
                volume.core.publishDurable(0)
            } catch {
                print("setup failed: \(error)")
            }
            exit(0)
        }
    }

    @Test("a log flushed beyond what was written stops the process at the next log round")
    func flushedNeverPassesWritten() async {
        await #expect(processExitsWith: .failure) {
            do {
                let volume = try InvariantTests.openVolume()
                volume.core.commit.withLock { $0.flushedPosition = $0.writtenPosition + 4096 }
                try await volume.write(at: 0, [UInt8](repeating: 1, count: 4096), fua: true)
            } catch {
                print("setup failed: \(error)")
            }
            exit(0)
        }
    }
}
