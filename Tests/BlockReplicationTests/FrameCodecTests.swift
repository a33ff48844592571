import Crypto
import NIOCore
import Testing
@testable import BlockEngine
@testable import BlockReplication

@Suite("Frames: layout and round trips")
struct FrameCodecTests {
    @Test("every frame type round-trips through writer and reader, keyed and unkeyed")
    func roundTrips() throws {
        for key in [FrameKey.unauthenticated, hmacKey(0x11)] {
            var writer = FrameWriter()
            var reader = FrameReader()
            var stream = ByteBuffer()
            let handshake = Samples.all.filter { $0.type.isHandshake }
            let data = Samples.all.filter { !$0.type.isHandshake }
            for message in handshake { try writer.write(message, into: &stream) }
            writer.establish(key)
            for message in data { try writer.write(message, into: &stream) }
            var decoded: [ReplicationMessage] = []
            while let message = try reader.read(from: &stream) {
                decoded.append(message)
                if decoded.count == handshake.count { reader.establish(key) }
            }
            try reader.finish(stream)
            #expect(decoded == handshake + data)
            #expect(reader.nextSequence == UInt64(Samples.all.count) && writer.nextSequence == reader.nextSequence)
        }
        #expect(Set(Samples.all.map(\.type)) == Set(FrameType.allCases), "the samples cover every type")
    }

    @Test("the header is laid out as docs/REPLICATION.md says (little-endian, CRC and MAC coverage)")
    func headerBytes() throws {
        let key = hmacKey(0x42)
        let buffer = frame(.ack(Ack(receivedLSN: 0x0102_0304_0506_0708, durableLSN: 5)), sequence: 3, key: key)
        let bytes = Array(buffer.readableBytesView)
        #expect(bytes.count == 40 + 16)
        #expect(Array(bytes[0..<4]) == Array("BRPL".utf8))
        #expect(bytes[4] == 1 && bytes[5] == 6 && bytes[6] == 0 && bytes[7] == 0)
        #expect(Array(bytes[8..<12]) == [16, 0, 0, 0])
        #expect(Array(bytes[12..<20]) == [3, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(bytes[40..<48]) == [8, 7, 6, 5, 4, 3, 2, 1])
        let crc = referenceCRC32C(Array(bytes[0..<20]) + Array(bytes[40...]))
        #expect(Array(bytes[20..<24]) == [0, 8, 16, 24].map { UInt8(truncatingIfNeeded: crc >> $0) })
        let mac = HMAC<SHA256>.authenticationCode(for: Array(bytes[0..<24]) + Array(bytes[40...]),
                                                  using: SymmetricKey(data: [UInt8](repeating: 0x42, count: 32)))
        #expect(Array(bytes[24..<40]) == Array(Array(mac).prefix(16)))
        #expect(Array(frame(.ack(Ack(receivedLSN: 1, durableLSN: 1)), key: .unauthenticated).readableBytesView)[24..<40]
            .allSatisfy { $0 == 0 }, "no key: a zero MAC")
    }

    @Test("payload byte tables: hello, helloAck, records, decision")
    func payloadTables() {
        let hello = payloadBytes(.hello(Samples.hello))
        #expect(hello.count == 69 + "vol-ä1".utf8.count)
        #expect(Array(hello[0..<4]) == [2, 0, 1, 1], "version 2, HMAC mode, role primary")
        #expect(Array(hello[4..<12]) == [7, 0, 0, 0, 0, 0, 0, 0])
        #expect(Array(hello[20..<36]) == Array(0..<16))
        #expect(hello[68] == UInt8("vol-ä1".utf8.count))
        let ack = payloadBytes(.helloAck(Samples.helloAck))
        #expect(ack.count == 105 && ack[0] == 0 && Array(ack[73..<105]) == bytes(32, 0x9F))
        #expect(Array(ack[33..<41]) == [0x4C, 0x04, 0, 0, 0, 0, 0, 0], "checkpoint LSN 1100 after the record epoch")
        let records = payloadBytes(.records(Samples.records))
        #expect(records.count == 2 + 3 * 37 + 1024 + 4096)
        #expect(Array(records[0..<2]) == [3, 0])
        #expect(records[2 + 16] == 1, "kind WRITE")
        #expect(Array(records[(2 + 29)..<(2 + 33)]) == [0, 4, 0, 0], "payload length 1024")
        let decision = payloadBytes(.decision(Decision(mode: .rebuild, fromLSN: 2, truncateAfterLSN: nil)))
        #expect(decision == [3, 2, 0, 0, 0, 0, 0, 0, 0] + bytes(8, 0xFF), "no truncation is 2^64 - 1")
    }

    @Test("shipped kinds and roles use the engine's raw values")
    func engineValues() {
        #expect(ShippedRecordKind.write.rawValue == WALRecordKind.write.rawValue)
        #expect(ShippedRecordKind.trim.rawValue == WALRecordKind.trim.rawValue)
        #expect(ShippedRecordKind(rawValue: WALRecordKind.pad.rawValue) == nil, "PAD is never shipped")
        for role in VolumeRole.allCases {
            var hello = Samples.hello
            hello.role = role
            #expect(payloadBytes(.hello(hello))[3] == role.rawValue)
        }
    }

    @Test("the writer refuses frames out of phase and over the limit, writing nothing")
    func writerRefusals() throws {
        var writer = FrameWriter(limits: WireLimits(maxPayloadBytes: 4096))
        var buffer = ByteBuffer()
        #expect(throws: WireError.unexpectedFrame(.ack, state: "before the handshake completed")) {
            try writer.write(.ack(Ack(receivedLSN: 1, durableLSN: 1)), into: &buffer)
        }
        writer.establish(.unauthenticated)
        #expect(throws: WireError.unexpectedFrame(.hello, state: "after the handshake")) {
            try writer.write(.hello(Samples.hello), into: &buffer)
        }
        #expect(throws: WireError.payloadTooLarge(lengthBytes: UInt32(2 + 37 + 8192), limitBytes: 4096)) {
            try writer.write(.records(RecordBatch(records: [.write(lsn: 1, epoch: 1, lba: 0, blockCount: 2,
                                                                   payload: blockData(8192, seed: 0))])), into: &buffer)
        }
        #expect(buffer.readableBytes == 0 && writer.nextSequence == 0)
        try writer.write(.ack(Ack(receivedLSN: 1, durableLSN: 1)), into: &buffer)
        #expect(writer.nextSequence == 1)
    }

    @Test("decoded payloads share the frame's storage, and the sizes callers batch by are exact")
    func sizes() throws {
        let batch = Samples.records
        #expect(batch.encodedBytes == payloadBytes(.records(batch)).count)
        #expect(batch.firstLSN == 41 && batch.lastLSN == 43)
        var stream = frame(.records(batch), key: .unauthenticated)
        var reader = establishedReader()
        guard case let .records(decoded) = try reader.read(from: &stream) else {
            Issue.record("not a records frame")
            return
        }
        #expect(decoded.records.map(\.payload) == batch.records.map(\.payload))
        #expect(decoded.records[0].payloadCRC == referenceCRC32C(Array(batch.records[0].payload.readableBytesView)))
    }
}
