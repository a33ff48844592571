// The `blockd volume ...` commands, as functions that return text and an exit status so tests
// can run them without a process.

import BlockEngine
import Foundation

/// The outcome of a command: what to print and how to exit.
public struct CommandOutput: Sendable, Equatable {
    public var standardOutput: String
    public var standardError: String
    public var exitCode: Int32

    public init(standardOutput: String = "", standardError: String = "", exitCode: Int32 = 0) {
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.exitCode = exitCode
    }
}

public enum VolumeCommands {
    /// The configuration of a new volume, checked: `blockd volume create` and the admin API
    /// both build theirs here. The error names the first bad field.
    public static func checkedConfiguration(sizeBytes: UInt64, blockSizeBytes: Int, walSizeBytes: UInt64,
                                            durability: DurabilityMode, replicaFactor: Int) throws(BlockError) -> VolumeConfiguration {
        let configuration = VolumeConfiguration(sizeBytes: sizeBytes, blockSizeBytes: blockSizeBytes, walSizeBytes: walSizeBytes,
                                                durability: durability, replicaFactor: replicaFactor)
        try configuration.validate()
        return configuration
    }

    /// `blockd volume create`: creates the file and prints its description.
    public static func create(path: String, configuration: VolumeConfiguration) async -> CommandOutput {
        do {
            var options = VolumeOptions()
            options.logger.logLevel = .warning
            let volume = try await Volume.create(at: path, configuration: configuration, options: options)
            try await volume.close()
            let report = try Volume.inspect(at: path)
            return CommandOutput(standardOutput: "created \(path)\n" + describe(report))
        } catch {
            return CommandOutput(standardError: "error: cannot create \(path): \(error)\n", exitCode: 1)
        }
    }

    /// `blockd volume inspect`: a read-only description, as text or JSON.
    public static func inspect(path: String, json: Bool) -> CommandOutput {
        do {
            let report = try Volume.inspect(at: path)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                let data = try encoder.encode(report)
                return CommandOutput(standardOutput: String(decoding: data, as: UTF8.self) + "\n")
            }
            return CommandOutput(standardOutput: describe(report))
        } catch {
            return CommandOutput(standardError: "error: \(path): \(error)\n", exitCode: 1)
        }
    }

    /// `blockd volume check`: exit 0 when the volume would open cleanly, 1 with the reason
    /// otherwise. Reads only.
    public static func check(path: String) -> CommandOutput {
        do {
            let report = try Volume.inspect(at: path)
            var text = "ok: \(path): \(report.uuid), \(ByteSize(bytes: report.sizeBytes)), "
                + "\(report.walRecords) record(s) to replay\n"
            for warning in report.warnings { text += "warning: \(warning)\n" }
            return CommandOutput(standardOutput: text)
        } catch {
            return CommandOutput(standardError: "error: \(path): \(error)\n", exitCode: 1)
        }
    }

    static func describe(_ report: VolumeReport) -> String {
        let rows: [(String, String)] = [
            ("uuid", report.uuid),
            ("size", "\(ByteSize(bytes: report.sizeBytes)) (\(report.blockCount) blocks of \(report.blockSizeBytes) bytes)"),
            ("durability", "\(report.durability), replica factor \(report.replicaFactor)"),
            ("epoch", "\(report.epoch)"),
            ("wal", "\(ByteSize(bytes: report.walSizeBytes)) at offset \(report.walOffsetBytes), "
                + "\(report.walUsedBytes) bytes in \(report.walRecords) record(s)"),
            ("lsn", "checkpoint \(report.checkpointLSN), last \(report.lastLSN)"),
            ("superblock", report.superblockSlots.enumerated().map { "slot \($0): \($1)" }.joined(separator: "; ")),
            ("file", "\(report.fileSizeBytes) bytes, \(report.allocatedBytes) allocated"),
            ("format", "version \(report.formatVersion)"),
        ]
        var text = rows.map { name, value in name.padding(toLength: 11, withPad: " ", startingAt: 0) + value }
            .joined(separator: "\n") + "\n"
        for warning in report.warnings { text += "warning: \(warning)\n" }
        return text
    }
}
