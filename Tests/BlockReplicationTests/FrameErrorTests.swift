import NIOCore
import Testing
@testable import BlockReplication

@Suite("Frames: every decode error")
struct FrameErrorTests {
    let ack = ReplicationMessage.ack(Ack(receivedLSN: 9, durableLSN: 8))

    @Test("a frame cut anywhere is incomplete, not an error, until the stream ends")
    func truncated() throws {
        let whole = Array(frame(ack, key: .unauthenticated).readableBytesView)
        for cut in 0..<whole.count {
            var reader = establishedReader()
            var buffer = ByteBuffer(bytes: whole[0..<cut])
            #expect(try reader.read(from: &buffer) == nil)
            #expect(buffer.readableBytes == cut, "nothing consumed")
            if cut > 0 {
                #expect(throws: WireError.truncatedFrame(bufferedBytes: cut)) { try reader.finish(buffer) }
            }
        }
    }

    @Test("an oversized payload is refused from the first 12 bytes")
    func oversized() throws {
        let limits = WireLimits(maxPayloadBytes: 4096)
        let header = Array(rawFrame(type: FrameType.records.rawValue, payload: [], length: 4097).readableBytesView[0..<12])
        var reader = establishedReader(limits: limits)
        var buffer = ByteBuffer(bytes: header)
        #expect(throws: WireError.payloadTooLarge(lengthBytes: 4097, limitBytes: 4096)) { try reader.read(from: &buffer) }
        var atLimit = ByteBuffer(bytes: Array(rawFrame(type: 6, payload: [], length: 4096).readableBytesView[0..<12]))
        var fresh = establishedReader(limits: limits)
        #expect(try fresh.read(from: &atLimit) == nil, "at the limit: waits for the payload")
        #expect(readError(rawFrame(type: 5, payload: [], length: UInt32.max), reader: establishedReader())
            == .payloadTooLarge(lengthBytes: UInt32.max, limitBytes: WireLimits.defaultMaxPayloadBytes))
    }

    @Test("magic, version, type and flags are checked as soon as their bytes are there")
    func headerFields() {
        let payload = payloadBytes(ack)
        #expect(readError(rawFrame(type: 6, payload: payload, magic: 0x1234_5678)) == .badMagic(0x1234_5678))
        #expect(readError(rawFrame(type: 6, payload: payload, version: 2)) == .unsupportedFrameVersion(2))
        #expect(readError(rawFrame(type: 0, payload: payload)) == .unknownFrameType(0))
        #expect(readError(rawFrame(type: 16, payload: payload)) == .unknownFrameType(16))
        #expect(readError(rawFrame(type: 6, payload: payload, flags: 0x8000)) == .reservedFlagsSet(0x8000))
        var reader = FrameReader()
        var prefix = ByteBuffer(bytes: [0x42, 0x52, 0x50, 0x4C, 9])
        #expect(throws: WireError.unsupportedFrameVersion(9)) { try reader.read(from: &prefix) }
    }

    @Test("a flipped bit is a checksum error; with the CRC fixed up, a MAC error")
    func checksumAndMAC() {
        let key = hmacKey(7)
        var damaged = frame(ack, sequence: 0, key: key)
        damaged.setInteger(damaged.getInteger(at: 45, as: UInt8.self)! ^ 1, at: 45)
        #expect(readError(damaged, reader: establishedReader(key)) == .badChecksum(sequence: 0))
        let payload = payloadBytes(.ack(Ack(receivedLSN: 10, durableLSN: 8)))
        #expect(readError(rawFrame(type: 6, payload: payload, key: hmacKey(8)), reader: establishedReader(key))
            == .badMAC(sequence: 0), "another key")
        #expect(readError(rawFrame(type: 6, payload: payload, key: .unauthenticated), reader: establishedReader(key))
            == .badMAC(sequence: 0), "no MAC where one is required")
        #expect(readError(rawFrame(type: 6, payload: payload, key: key), reader: establishedReader(.unauthenticated))
            == .badMAC(sequence: 0), "a MAC where zeros are required")
        #expect(readError(rawFrame(type: 1, payload: payloadBytes(.hello(Samples.hello)), key: key))
            == .badMAC(sequence: 0), "handshake frames carry a zero MAC")
        #expect(readError(rawFrame(type: 6, payload: payload, key: key), reader: establishedReader(key)) == nil)
    }

    @Test("sequence numbers: a replayed, skipped or reordered frame is refused")
    func sequences() throws {
        let key = hmacKey(3)
        var stream = frame(ack, sequence: 0, key: key)
        var replay = frame(ack, sequence: 0, key: key)
        stream.writeBuffer(&replay)
        #expect(readError(stream, reader: establishedReader(key)) == .sequenceOutOfOrder(expected: 1, received: 0))
        #expect(readError(frame(ack, sequence: 1, key: key), reader: establishedReader(key))
            == .sequenceOutOfOrder(expected: 0, received: 1))
    }

    @Test("phase: data frames before the handshake, handshake frames after it")
    func phase() {
        #expect(readError(frame(ack)) == .unexpectedFrame(.ack, state: "before the handshake completed"))
        #expect(readError(frame(.hello(Samples.hello)), reader: establishedReader())
            == .unexpectedFrame(.hello, state: "after the handshake"))
    }

    @Test("an error sticks: the reader never reads past it")
    func sticky() throws {
        var reader = establishedReader()
        var bad = rawFrame(type: 6, payload: payloadBytes(ack), magic: 1)
        #expect(throws: WireError.badMagic(1)) { try reader.read(from: &bad) }
        var good = frame(ack)
        #expect(throws: WireError.badMagic(1)) { try reader.read(from: &good) }
        #expect(throws: WireError.badMagic(1)) { try reader.finish(ByteBuffer()) }
    }

    func payloadError(_ type: FrameType, _ payload: [UInt8]) -> WireError? {
        readError(rawFrame(type: type.rawValue, payload: payload), reader: type.isHandshake ? FrameReader() : establishedReader())
    }

    @Test("payloads: truncated, trailing bytes, every bound and enum")
    func payloads() {
        for message in Samples.all {
            let payload = payloadBytes(message)
            #expect(payloadError(message.type, Array(payload.dropLast())) != nil, "\(message.type) cut by one byte")
            #expect(payloadError(message.type, payload + [0]) == .trailingBytes(message.type, count: 1))
        }
        #expect(payloadError(.ack, payloadBytes(ack).dropLast(1)) == .truncatedPayload(.ack))
        var hello = payloadBytes(.hello(Samples.hello))
        hello[3] = 5
        #expect(payloadError(.hello, hello) == .invalidField(.hello, field: "role", value: 5))
        hello = payloadBytes(.hello(Samples.hello))
        hello[2] = 2
        #expect(payloadError(.hello, hello) == .invalidField(.hello, field: "auth mode", value: 2))
        hello = Array(payloadBytes(.hello(Samples.hello))[0..<68]) + [0]
        #expect(payloadError(.hello, hello) == .invalidField(.hello, field: "volume name length", value: 0))
        hello = Array(payloadBytes(.hello(Samples.hello))[0..<68]) + [2, 0xC3, 0x28]
        #expect(payloadError(.hello, hello) == .invalidText(.hello, field: "volume name"))
        var helloAck = payloadBytes(.helloAck(Samples.helloAck))
        helloAck[0] = 7
        #expect(payloadError(.helloAck, helloAck) == .invalidField(.helloAck, field: "status", value: 7))
        var ackBytes = payloadBytes(.ack(Ack(receivedLSN: 3, durableLSN: 3)))
        ackBytes[8] = 4
        #expect(payloadError(.ack, ackBytes) == .invalidField(.ack, field: "durable LSN", value: 4))
        var decision = payloadBytes(.decision(Decision(mode: .stream, fromLSN: 1, truncateAfterLSN: nil)))
        decision[0] = 0
        #expect(payloadError(.decision, decision) == .invalidField(.decision, field: "mode", value: 0))
        let longReason = [UInt8](repeating: 0x61, count: 1025)
        #expect(payloadError(.goodbye, [0, 0, 0x01, 0x04] + longReason)
            == .invalidField(.goodbye, field: "message length", value: 1025))
        #expect(payloadError(.epochNotice, bytes(8, 0) + [0x01, 0x04] + longReason)
            == .invalidField(.epochNotice, field: "reason length", value: 1025))
        #expect(payloadError(.barrierReply, bytes(8, 0) + [3] + bytes(8, 0))
            == .invalidField(.barrierReply, field: "status", value: 3))
    }

    /// A records payload of `records`, each (lsn, epoch, kind, lba, blockCount, payload, crc).
    func recordsPayload(_ records: [(UInt64, UInt64, UInt8, UInt64, UInt32, [UInt8], UInt32?)], count: UInt16? = nil) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(count ?? UInt16(records.count), endianness: .little)
        for (lsn, epoch, kind, lba, blockCount, payload, crc) in records {
            buffer.writeInteger(lsn, endianness: .little)
            buffer.writeInteger(epoch, endianness: .little)
            buffer.writeInteger(kind)
            buffer.writeInteger(lba, endianness: .little)
            buffer.writeInteger(blockCount, endianness: .little)
            buffer.writeInteger(UInt32(payload.count), endianness: .little)
            buffer.writeInteger(crc ?? referenceCRC32C(payload), endianness: .little)
            buffer.writeBytes(payload)
        }
        return Array(buffer.readableBytesView)
    }

    @Test("records: contiguity, epochs, kinds, lengths, checksums")
    func records() {
        let block = bytes(512, 0xAB)
        func error(_ records: [(UInt64, UInt64, UInt8, UInt64, UInt32, [UInt8], UInt32?)], count: UInt16? = nil) -> WireError? {
            payloadError(.records, recordsPayload(records, count: count))
        }
        #expect(error([(5, 1, 1, 0, 1, block, nil), (6, 1, 2, 9, 3, [], 0)]) == nil)
        #expect(error([(5, 1, 1, 0, 1, block, nil), (7, 1, 1, 0, 1, block, nil)])
            == .nonContiguousRecords(expectedLSN: 6, receivedLSN: 7))
        #expect(error([(5, 1, 1, 0, 1, block, nil), (5, 1, 1, 0, 1, block, nil)])
            == .nonContiguousRecords(expectedLSN: 6, receivedLSN: 5))
        #expect(error([(UInt64.max, 1, 2, 0, 1, [], 0), (0, 1, 2, 0, 1, [], 0)])
            == .nonContiguousRecords(expectedLSN: 0, receivedLSN: 0), "no wrap past 2^64 - 1")
        #expect(error([(5, 2, 1, 0, 1, block, nil), (6, 1, 1, 0, 1, block, nil)])
            == .invalidField(.records, field: "record epoch", value: 1))
        #expect(error([], count: 0) == .invalidField(.records, field: "record count", value: 0))
        #expect(error([(5, 1, 1, 0, 1, block, nil)], count: 2) == .truncatedPayload(.records))
        #expect(error([(5, 1, 3, 0, 0, [], 0)]) == .invalidField(.records, field: "record kind", value: 3), "PAD")
        #expect(error([(0, 1, 2, 0, 1, [], 0)]) == .invalidField(.records, field: "record LSN", value: 0))
        #expect(error([(5, 1, 2, 0, 0, [], 0)]) == .invalidField(.records, field: "record block count", value: 0))
        #expect(error([(5, 1, 2, UInt64.max, 1, [], 0)]) == .invalidField(.records, field: "record LBA", value: .max))
        #expect(error([(5, 1, 2, 0, 1, block, nil)]) == .invalidField(.records, field: "trim payload length", value: 512))
        #expect(error([(5, 1, 2, 0, 1, [], 7)]) == .invalidField(.records, field: "trim payload CRC", value: 7))
        #expect(error([(5, 1, 1, 0, 2, block, nil)]) == .invalidField(.records, field: "write payload length", value: 512))
        #expect(error([(5, 1, 1, 0, 1, [], nil)]) == .invalidField(.records, field: "write payload length", value: 0))
        #expect(error([(5, 1, 1, 0, 1, block, 1)]) == .badRecordChecksum(lsn: 5))
    }

    @Test("rebuild: chunk lengths and checksums, digest counts")
    func rebuild() {
        var chunk = ByteBuffer()
        RebuildChunk(offsetBlocks: 0, blockCount: 1, data: blockData(512, seed: 0)).encode(into: &chunk)
        var corrupt = Array(chunk.readableBytesView)
        corrupt[corrupt.count - 1] ^= 1
        #expect(payloadError(.rebuildChunk, corrupt) == .badChunkChecksum(offsetBlocks: 0))
        var wrongCount = Array(chunk.readableBytesView)
        wrongCount[8] = 3
        #expect(payloadError(.rebuildChunk, wrongCount) == .invalidField(.rebuildChunk, field: "data length", value: 512))
        let range = bytes(8, 0) + [0x01, 0x20, 0, 0] + [1, 0, 0, 0]  // 8193 segments
        #expect(payloadError(.rebuildDigestRequest, range)
            == .invalidField(.rebuildDigestRequest, field: "segment count", value: 8193))
        #expect(payloadError(.rebuildDigestReply, bytes(8, 0) + [2, 0, 0, 0] + [1, 0, 0, 0] + bytes(32, 1))
            == .truncatedPayload(.rebuildDigestReply))
        #expect(payloadError(.rebuildDigestRequest, bytes(8, 0) + [2, 0, 0, 0] + [0, 0, 0, 0])
            == .invalidField(.rebuildDigestRequest, field: "blocks per segment", value: 0))
    }
}
