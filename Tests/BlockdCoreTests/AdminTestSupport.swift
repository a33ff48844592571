// What the admin API tests need: a real daemon on ephemeral ports, a raw HTTP/1.1 client
// (requests written byte by byte, so malformed and oversized ones can be sent too), a
// replication seam that records what it is told, and a minimal iSCSI initiator (login,
// one SCSI command) to show that a created volume is served.

import BlockEngine
import BlockdCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import Testing

// MARK: - Daemon

/// A `BlockDaemon` with the admin API on 127.0.0.1, both on ephemeral ports.
struct AdminDaemon {
    let daemon: BlockDaemon
    let directory: ScratchDirectory
    let iscsiPort: Int
    let adminPort: Int
    let token: String?
    let replication: RecordingReplication

    var dataDirectory: String { directory.path + "/data" }

    /// Runs `body` against a started daemon, then stops it gracefully (also when `body` throws).
    static func run(token: String? = nil, creates: [(name: String, sizeBytes: UInt64)] = [],
                    _ body: (AdminDaemon) async throws -> Void) async throws {
        let directory = try ScratchDirectory()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var configuration = ServeConfiguration(dataDirectory: directory.path + "/data", port: 0, creates: creates,
                                               newVolume: VolumeConfiguration(sizeBytes: 8 << 20, walSizeBytes: 1 << 20))
        configuration.admin = AdminConfiguration(host: "127.0.0.1", port: 0, token: token)
        let replication = RecordingReplication()
        let daemon = BlockDaemon(configuration: configuration, logger: logger, replication: replication)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [.init(service: daemon)], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var ports = daemon.boundPorts.makeAsyncIterator()
            let iscsiPort = try #require(await ports.next(), "the daemon starts")
            let adminPort = try #require(daemon.adminPort, "the admin API listens")
            let running = AdminDaemon(daemon: daemon, directory: directory, iscsiPort: iscsiPort, adminPort: adminPort,
                                      token: token, replication: replication)
            do {
                try await body(running)
            } catch {
                await group.triggerGracefulShutdown()
                try? await tasks.waitForAll()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// A request with this daemon's token (unless `token` overrides it; "" sends none).
    func request(_ method: String, _ path: String, json: String? = nil, token: String? = nil,
                 headers: [(String, String)] = []) async throws -> HTTPReply {
        var headers = headers
        if let token = token ?? self.token, !token.isEmpty { headers.append(("Authorization", "Bearer \(token)")) }
        if json != nil { headers.append(("Content-Type", "application/json")) }
        return try await HTTPClient.send(port: adminPort, method: method, path: path, headers: headers,
                                         body: json.map { Array($0.utf8) })
    }

    func createVolume(_ name: String, sizeBytes: UInt64 = 8 << 20, extra: String = "") async throws -> HTTPReply {
        try await request("POST", "/v1/volumes", json: #"{"name":"\#(name)","sizeBytes":\#(sizeBytes)\#(extra)}"#)
    }

    func targetName(_ volume: String) -> String { "\(ServeConfiguration.defaultIQNPrefix):\(volume)" }
}

/// Remembers what the daemon tells replication; reports every primary's replicas as
/// streaming at durable LSN 0.
final class RecordingReplication: ReplicationControl {
    struct Change: Equatable {
        var name: String
        var role: VolumeRole
        var replicas: [String]
    }

    private let state = Mutex<(changes: [Change], closing: [String])>(([], []))

    var changes: [Change] { state.withLock { $0.changes } }
    var closing: [String] { state.withLock { $0.closing } }

    func roleChanged(name: String, volume: Volume, role: VolumeRole, replicas: [String]) async throws {
        state.withLock { $0.changes.append(Change(name: name, role: role, replicas: replicas)) }
    }

    func volumeServed(name: String, volume: Volume) {}

    func volumeClosing(name: String) async {
        state.withLock { $0.closing.append(name) }
    }

    func replicaStatus(name: String) -> [ReplicaStatus] {
        let last = state.withLock { state in state.changes.last { $0.name == name } }
        return (last?.replicas ?? []).map { ReplicaStatus(address: $0, state: "inSync", durableLSN: 0, shippedBytes: 4096) }
    }
}

// MARK: - HTTP

struct HTTPReply {
    var status: Int
    /// Header names in lower case.
    var headers: [String: String]
    var body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONDecoder().decode(type, from: Data(body)) }

    /// The message of an `{"error": ...}` body, nil when the body is not one.
    var errorMessage: String? { (try? decode([String: String].self))?["error"] }
}

enum HTTPClient {
    /// Sends one request on a new connection (`Connection: close`) and reads the answer,
    /// within 20 s. `rawBody` is sent as is, after the head, for bodies of other framings.
    static func send(port: Int, method: String, path: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
                     rawBody: [UInt8]? = nil) async throws -> HTTPReply {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        let bytes = Array(head.utf8) + (body ?? []) + (rawBody ?? [])
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        let received = try await withDeadline(seconds: 20) {
            try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(bytes: bytes))
                var received: [UInt8] = []
                for try await buffer in inbound {
                    received += buffer.readableBytesView
                    if let reply = parse(received), reply.complete { return reply.reply }
                }
                guard let reply = parse(received) else { throw HTTPClientError.malformed(String(decoding: received, as: UTF8.self)) }
                return reply.reply
            }
        }
        return received
    }

    /// The reply in `bytes` and whether its body is complete; nil before the head is.
    private static func parse(_ bytes: [UInt8]) -> (reply: HTTPReply, complete: Bool)? {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = bytes.firstRange(of: separator) else { return nil }
        let lines = String(decoding: bytes[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let rest = Array(bytes[end.upperBound...])
        if let length = headers["content-length"].flatMap({ Int($0) }) {
            return (HTTPReply(status: status, headers: headers, body: Array(rest.prefix(length))), rest.count >= length)
        }
        if headers["transfer-encoding"] == "chunked" {
            var body: [UInt8] = []
            var index = 0
            while let lineEnd = rest[index...].firstRange(of: Array("\r\n".utf8)),
                  let size = Int(String(decoding: rest[index..<lineEnd.lowerBound], as: UTF8.self), radix: 16) {
                if size == 0 { return (HTTPReply(status: status, headers: headers, body: body), true) }
                let start = lineEnd.upperBound
                guard rest.count >= start + size + 2 else { break }
                body += rest[start..<start + size]
                index = start + size + 2
            }
            return (HTTPReply(status: status, headers: headers, body: body), false)
        }
        return (HTTPReply(status: status, headers: headers, body: rest), status == 204 || status == 304)
    }
}

enum HTTPClientError: Error {
    case malformed(String)
    case timedOut
}

/// Runs `body`, failing it after `seconds`.
func withDeadline<T: Sendable>(seconds: Int, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw HTTPClientError.timedOut
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

// MARK: - iSCSI

/// Just enough of an initiator to log in to a target and run a SCSI command that reads.
final class MiniInitiator: Sendable {
    /// What the target sent, and whether it closed the connection.
    private final class Inbox: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let state = Mutex<(bytes: [UInt8], closed: Bool)>(([], false))

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            state.withLock { $0.bytes += buffer.readableBytesView }
        }

        func channelInactive(context: ChannelHandlerContext) {
            state.withLock { $0.closed = true }
        }
    }

    private let channel: any Channel
    private let inbox: Inbox
    /// The next command's CmdSN: the login was immediate with CmdSN 1, so commands start at 1.
    private let nextCmdSN = Mutex<UInt32>(1)

    private init(channel: any Channel, inbox: Inbox) {
        self.channel = channel
        self.inbox = inbox
    }

    static func connect(port: Int) async throws -> MiniInitiator {
        let inbox = Inbox()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in channel.pipeline.addHandler(inbox) }
            .connect(host: "127.0.0.1", port: port).get()
        return MiniInitiator(channel: channel, inbox: inbox)
    }

    enum Failure: Error { case closed, timedOut, unexpected(String) }

    /// Logs in to `target` in one step (security negotiation skipped, operational keys at
    /// their defaults); returns the status class and detail of the Login Response.
    func login(target: String) async throws -> (statusClass: UInt8, statusDetail: UInt8) {
        let keys = "InitiatorName=iqn.2026-01.org.example:admin-test\0TargetName=\(target)\0SessionType=Normal\0"
            + "HeaderDigest=None\0DataDigest=None\0"
        var header = [UInt8](repeating: 0, count: 48)
        header[0] = 0x43                  // Login Request, immediate
        header[1] = 0x87                  // T=1, CSG=1 (operational), NSG=3 (full feature)
        header[8] = 0x80                  // ISID: random format
        header[13] = 0x01
        store32(&header, 16, 1)           // initiator task tag
        store32(&header, 24, 1)           // CmdSN
        try await write(header: header, data: Array(keys.utf8))
        let pdu = try await receive()
        guard pdu.header[0] & 0x3F == 0x23 else { throw Failure.unexpected("opcode \(pdu.header[0])") }
        return (pdu.header[36], pdu.header[37])
    }

    /// Runs `cdb` on LUN 0 reading up to `length` bytes; returns the SCSI status and the data.
    func read(cdb: [UInt8], length: Int) async throws -> (status: UInt8, data: [UInt8]) {
        let cmdSN = nextCmdSN.withLock { next in
            defer { next += 1 }
            return next
        }
        var header = [UInt8](repeating: 0, count: 48)
        header[0] = 0x01                  // SCSI Command
        header[1] = 0xC1                  // F=1, R=1, simple task attribute
        store32(&header, 16, 0x100 + cmdSN)
        store32(&header, 20, UInt32(length))
        store32(&header, 24, cmdSN)
        header.replaceSubrange(32..<32 + cdb.count, with: cdb)
        try await write(header: header, data: [])
        var data: [UInt8] = []
        for _ in 0..<64 {
            let pdu = try await receive()
            switch pdu.header[0] & 0x3F {
            case 0x25:                    // Data-In; with the S bit it carries the status
                data += pdu.data
                if pdu.header[1] & 0x01 != 0 { return (pdu.header[3], data) }
            case 0x21:                    // SCSI Response
                return (pdu.header[3], data)
            case 0x20:                    // NOP-In
                continue
            default:
                throw Failure.unexpected("opcode \(pdu.header[0])")
            }
        }
        throw Failure.unexpected("no status after 64 PDUs")
    }

    /// READ CAPACITY (10): the last LBA and the block size, after clearing the unit
    /// attention a new session starts with.
    func readCapacity() async throws -> (lastLBA: UInt32, blockSizeBytes: UInt32) {
        let cdb: [UInt8] = [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        var (status, data) = try await read(cdb: cdb, length: 8)
        if status == 0x02 { (status, data) = try await read(cdb: cdb, length: 8) }
        guard status == 0, data.count == 8 else { throw Failure.unexpected("READ CAPACITY status \(status)") }
        func be32(_ offset: Int) -> UInt32 { data[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) } }
        return (be32(0), be32(4))
    }

    /// READ (10) of `blocks` blocks at `lba`.
    func readBlocks(lba: UInt32, blocks: UInt16, blockSizeBytes: Int) async throws -> (status: UInt8, data: [UInt8]) {
        let cdb: [UInt8] = [0x28, 0, UInt8(lba >> 24), UInt8(lba >> 16 & 0xFF), UInt8(lba >> 8 & 0xFF), UInt8(lba & 0xFF),
                            0, UInt8(blocks >> 8), UInt8(blocks & 0xFF), 0]
        return try await read(cdb: cdb, length: Int(blocks) * blockSizeBytes)
    }

    /// True once the target closed the connection (within 10 s).
    func closedByTarget() async -> Bool {
        for _ in 0..<1_000 {
            if inbox.state.withLock({ $0.closed }) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    func close() async { try? await channel.close() }

    private func write(header: [UInt8], data: [UInt8]) async throws {
        var header = header
        header[5] = UInt8(data.count >> 16 & 0xFF)
        header[6] = UInt8(data.count >> 8 & 0xFF)
        header[7] = UInt8(data.count & 0xFF)
        let padding = [UInt8](repeating: 0, count: (4 - data.count % 4) % 4)
        try await channel.writeAndFlush(ByteBuffer(bytes: header + data + padding))
    }

    /// The next PDU, waiting at most 10 s.
    private func receive() async throws -> (header: [UInt8], data: [UInt8]) {
        for _ in 0..<1_000 {
            if let pdu = takePDU() { return pdu }
            if inbox.state.withLock({ $0.closed }) { throw Failure.closed }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw Failure.timedOut
    }

    private func takePDU() -> (header: [UInt8], data: [UInt8])? {
        inbox.state.withLock { state in
            guard state.bytes.count >= 48 else { return nil }
            let ahsBytes = Int(state.bytes[4]) * 4
            let dataLength = Int(state.bytes[5]) << 16 | Int(state.bytes[6]) << 8 | Int(state.bytes[7])
            let total = 48 + ahsBytes + dataLength + (4 - dataLength % 4) % 4
            guard state.bytes.count >= total else { return nil }
            let header = Array(state.bytes[0..<48])
            let data = Array(state.bytes[48 + ahsBytes..<48 + ahsBytes + dataLength])
            state.bytes.removeFirst(total)
            return (header, data)
        }
    }

    private func store32(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
        for index in 0..<4 { bytes[offset + index] = UInt8(value >> (24 - 8 * UInt32(index)) & 0xFF) }
    }
}
