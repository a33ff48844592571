// Writes the committed seed corpora, Fuzz/Corpus/<FuzzerName>/<seed>, from well-formed inputs
// built here, so a fuzzing run starts from inputs that reach deep into each parser instead of
// from nothing. Run by scripts/fuzz-seeds.sh; the output replaces each fuzzer's directory.
//   FuzzSeeds OUTPUT_DIRECTORY

import Foundation

@main
struct FuzzSeeds {
    static let corpora: [(fuzzer: String, seeds: [Seed])] = [
        ("PDUFuzzer", PDUSeeds.all),
        ("LoginKeyFuzzer", LoginSeeds.all),
        ("CDBFuzzer", CDBSeeds.all),
        ("ParameterListFuzzer", ParameterListSeeds.all),
        ("ConnectionFuzzer", ConnectionSeeds.all),
        ("ReplicationFrameFuzzer", ReplicationSeeds.frames),
        ("ReplicationHandshakeFuzzer", ReplicationSeeds.handshakes),
    ]
    /// libFuzzer's -max_len in scripts/fuzz.sh: a longer seed would be cut.
    static let maximumSeedBytes = 4096

    static func main() throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 2 else {
            FileHandle.standardError.write(Data("usage: FuzzSeeds OUTPUT_DIRECTORY\n".utf8))
            exit(2)
        }
        precondition(crc32c(Array("123456789".utf8)) == 0xE306_9283, "CRC32C check value")
        let manager = FileManager.default
        for (fuzzer, seeds) in corpora {
            let directory = arguments[1] + "/" + fuzzer
            try? manager.removeItem(atPath: directory)
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true)
            precondition(Set(seeds.map(\.name)).count == seeds.count, "\(fuzzer): two seeds share a name")
            for seed in seeds {
                precondition(!seed.bytes.isEmpty && seed.bytes.count <= maximumSeedBytes, "\(fuzzer)/\(seed.name): size")
                try Data(seed.bytes).write(to: URL(fileURLWithPath: directory + "/" + seed.name))
            }
            print("\(fuzzer): \(seeds.count) seeds, \(seeds.reduce(0) { $0 + $1.bytes.count }) bytes")
        }
    }
}
