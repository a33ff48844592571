import ArgumentParser
import BlockEngine
import BlockdCore
import Foundation

@main
struct Blockd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blockd",
        abstract: "Crash-safe block volumes in files, served to initiators.",
        subcommands: [VolumeCommand.self])
}

struct VolumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "volume",
        abstract: "Create and examine volume files.",
        subcommands: [CreateVolume.self, InspectVolume.self, CheckVolume.self])
}

extension ByteSize: ExpressibleByArgument {
    public init?(argument: String) {
        guard let size = try? ByteSize(parsing: argument) else { return nil }
        self = size
    }
}

extension DurabilityMode: ExpressibleByArgument {
    public init?(argument: String) {
        guard let mode = try? DurabilityMode(parsing: argument) else { return nil }
        self = mode
    }

    public static var allValueStrings: [String] { allCases.map(\.description) }
}

struct CreateVolume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a new volume file.")

    @Argument(help: "The volume file to create (must not exist).")
    var path: String

    @Option(help: "Logical size, e.g. 10GiB (suffixes KiB, MiB, GiB, TiB).")
    var size: ByteSize

    @Option(help: "Block size in bytes: 512 or 4096.")
    var blockSize: Int = 4096

    @Option(help: "Write-ahead-log size.")
    var walSize: ByteSize = ByteSize(bytes: 64 << 20)

    @Option(help: "When a flush completes: best_effort, sync_all or sync_quorum.")
    var durability: DurabilityMode = .bestEffort

    @Option(help: "Replica factor: copies of the data including this one (sync_quorum needs 3 or more).")
    var replicas: Int = 1

    func validate() throws {
        let configuration = volumeConfiguration
        do {
            try configuration.validate()
        } catch {
            throw ValidationError(error.description)
        }
    }

    var volumeConfiguration: VolumeConfiguration {
        VolumeConfiguration(sizeBytes: size.bytes, blockSizeBytes: blockSize, walSizeBytes: walSize.bytes,
                            durability: durability, replicaFactor: replicas)
    }

    func run() async throws {
        try emit(await VolumeCommands.create(path: path, configuration: volumeConfiguration))
    }
}

struct InspectVolume: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect",
                                                    abstract: "Describe a volume file (reads only).")

    @Argument(help: "The volume file.")
    var path: String

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        try emit(VolumeCommands.inspect(path: path, json: json))
    }
}

struct CheckVolume: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify a volume file: exit 0 when it opens cleanly, 1 with the reason otherwise (reads only).")

    @Argument(help: "The volume file.")
    var path: String

    func run() throws {
        try emit(VolumeCommands.check(path: path))
    }
}

/// Prints a command's output and exits with its status.
func emit(_ output: CommandOutput) throws {
    if !output.standardOutput.isEmpty { print(output.standardOutput, terminator: "") }
    if !output.standardError.isEmpty { FileHandle.standardError.write(Data(output.standardError.utf8)) }
    if output.exitCode != 0 { throw ExitCode(output.exitCode) }
}
