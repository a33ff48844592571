// Entry points for the libFuzzer harnesses in Fuzz/ (`ReplicationFrameFuzzer`,
// `ReplicationHandshakeFuzzer`). They turn arbitrary bytes into frame streams and handshake
// runs and check the wire layer's invariants with `precondition`, so a violation is a crash
// the fuzzer reports. Unit tests run them on fixed inputs too.
//
// Frame fuzzer input: [mode, chunk, stream...]. Mode bit 0: the reader is established (data
// frames), bit 1: with no key (zero MACs) instead of `frameFuzzKey`, bit 2: the smallest
// payload limit. `chunk` (0: all at once) splits the stream into reads of that many bytes.
//
// Invariants checked:
// - Decoding never traps; it stops at the first error and reports it again afterwards.
// - Every decoded frame encodes back, at the same sequence with the same key, to exactly
//   the bytes it was read from (decoding is strict, encoding canonical).
// - The same stream gives the same frames and the same error however it is split.
// - While a frame is incomplete, less than one maximal frame is buffered.

import Crypto
import NIOCore

/// Fuzzing entry points for the replication wire.
public enum ReplicationFuzzing {
    /// The key of the frame fuzzer's established reader (seeds are built with it).
    public static var frameFuzzKey: FrameKey { .hmacSHA256(SymmetricKey(data: [UInt8](repeating: 0x5A, count: 32))) }

    /// Runs one frame-fuzzer input.
    public static func frames(_ bytes: [UInt8]) {
        guard bytes.count >= 2 else { return }
        let mode = bytes[0]
        let stream = Array(bytes[2...])
        let limits = mode & 4 != 0 ? WireLimits(maxPayloadBytes: WireLimits.minimumMaxPayloadBytes) : WireLimits()
        let key: FrameKey? = mode & 1 == 0 ? nil : (mode & 2 != 0 ? FrameKey.unauthenticated : frameFuzzKey)
        let whole = decodeStream(stream, chunkBytes: stream.count, limits: limits, key: key)
        let chunked = decodeStream(stream, chunkBytes: bytes[1] == 0 ? stream.count : Int(bytes[1]), limits: limits, key: key)
        precondition(whole.messages == chunked.messages && whole.error == chunked.error,
                     "splitting the stream changed what it decodes to")
    }

    struct Decoded {
        var messages: [ReplicationMessage] = []
        var error: WireError?
    }

    /// Feeds `stream` in reads of `chunkBytes` and decodes what it can.
    static func decodeStream(_ stream: [UInt8], chunkBytes: Int, limits: WireLimits, key: FrameKey?) -> Decoded {
        var reader = FrameReader(limits: limits)
        var writer = FrameWriter(limits: limits)
        if let key {
            reader.establish(key)
            writer.establish(key)
        }
        var result = Decoded()
        var buffer = ByteBuffer()
        var fed = 0
        var consumed = 0
        // Bounded: every turn feeds at least one byte; the inner loop consumes a whole frame
        // (at least 40 bytes) per turn or leaves.
        while fed < stream.count {
            let next = min(stream.count, fed + max(1, chunkBytes))
            _ = stream.withUnsafeBytes { buffer.writeBytes(UnsafeRawBufferPointer(rebasing: $0[fed..<next])) }
            fed = next
            while true {
                let message: ReplicationMessage?
                do throws(WireError) {
                    message = try reader.read(from: &buffer)
                } catch {
                    do throws(WireError) {
                        _ = try reader.read(from: &buffer)
                        preconditionFailure("a reader went on after an error")
                    } catch let again {
                        precondition(again == error, "a reader reported a different error the second time")
                    }
                    result.error = error
                    return result
                }
                guard let message else {
                    precondition(buffer.readableBytes < limits.maxFrameBytes, "a whole frame stayed buffered")
                    break
                }
                let frameBytes = fed - buffer.readableBytes - consumed
                var encoded = ByteBuffer()
                do throws(WireError) {
                    try writer.write(message, into: &encoded)
                } catch {
                    preconditionFailure("a decoded frame does not encode: \(error)")
                }
                precondition(encoded.bytes == Array(stream[consumed..<(consumed + frameBytes)]),
                             "a decoded frame encodes to other bytes")
                consumed += frameBytes
                result.messages.append(message)
            }
        }
        do throws(WireError) {
            try reader.finish(buffer)
        } catch {
            result.error = error
        }
        return result
    }
}

extension ByteBuffer {
    /// The readable bytes, copied at once (the fuzzers' comparisons; per-byte views are slow
    /// in the unoptimized, instrumented builds fuzzers use).
    var bytes: [UInt8] { getBytes(at: readerIndex, length: readableBytes)! }
}
