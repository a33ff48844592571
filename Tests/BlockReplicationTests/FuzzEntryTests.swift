import NIOCore
import Testing
@testable import BlockReplication

@Suite("Fuzzing entry points")
struct FuzzEntryTests {
    @Test("the frame fuzzer's checks hold on whole streams, cut streams and random bytes")
    func frames() {
        var stream: [UInt8] = []
        var writer = FrameWriter()
        writer.establish(ReplicationFuzzing.frameFuzzKey)
        var buffer = ByteBuffer()
        for message in Samples.all where !message.type.isHandshake { try! writer.write(message, into: &buffer) }
        stream = Array(buffer.readableBytesView)
        for chunk: UInt8 in [0, 1, 7, 200] {
            ReplicationFuzzing.frames([1, chunk] + stream)
            ReplicationFuzzing.frames([1, chunk] + stream.dropLast(5))
            ReplicationFuzzing.frames([0, chunk] + stream)
            ReplicationFuzzing.frames([5, chunk] + stream)
        }
        var random = generator(3)
        for _ in 0..<200 {
            let length = Int.random(in: 0..<300, using: &random)
            ReplicationFuzzing.frames((0..<length).map { _ in UInt8.random(in: 0...255, using: &random) })
            var mutated = [1, 3] + stream
            mutated[Int.random(in: 2..<mutated.count, using: &random)] ^= UInt8.random(in: 1...255, using: &random)
            ReplicationFuzzing.frames(mutated)
        }
    }

    @Test("the handshake fuzzer's checks hold on an honest run, attacks and random operations")
    func handshake() {
        let seed: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 1]
        let honest: [UInt8] = [0, 1, 0, 12, 0, 1, 0, 13, 1, 5, 1]
        for config: UInt8 in [0, 12] {
            let world = ReplicationFuzzing.runHandshake([config] + seed + honest)
            #expect(world.listenerEstablished && world.dialerAccepted?.status == .ok)
            #expect(world.dataAcceptedByListener == 1 && world.dataAcceptedByDialer == 1)
        }
        let stale = ReplicationFuzzing.runHandshake([1] + seed + honest)
        #expect(!stale.listenerEstablished && stale.dialerAccepted?.status == .staleEpoch)
        let forged = ReplicationFuzzing.runHandshake([16] + seed + [8, 0, 0, 9, 9] + bytes(48, 7) + [8, 1, 8, 3, 0, 5])
        #expect(forged.listenerEstablished && forged.dataAcceptedByListener == 1, "an attacker with the secret gets in")
        let guessed = ReplicationFuzzing.runHandshake([0] + seed + [8, 0, 0, 9, 9] + bytes(48, 7) + [8, 1, 8, 3, 0, 5])
        #expect(!guessed.listenerEstablished && guessed.dataAcceptedByListener == 0, "without it, not")
        for config: UInt8 in [0, 1, 2, 4, 8, 12, 16, 20] {
            ReplicationFuzzing.handshake([config] + seed + honest)
            ReplicationFuzzing.handshake([config] + seed + [0, 1, 8, 1, 0, 8, 3, 4, 0, 6, 0, 9, 2, 5])
            ReplicationFuzzing.handshake([config] + seed + [8, 0, 1, 2, 3] + Array(repeating: 9, count: 60) + [1, 0, 1, 8, 1])
        }
        var random = generator(5)
        for _ in 0..<300 {
            let length = Int.random(in: 0..<200, using: &random)
            ReplicationFuzzing.handshake((0..<length).map { _ in UInt8.random(in: 0...255, using: &random) })
        }
    }
}
