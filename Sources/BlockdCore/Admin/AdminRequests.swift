// Request bodies of the admin API and its errors (docs/ADMIN.md). Bodies are decoded
// strictly: an unknown key is an error (a misspelt optional field would otherwise be
// dropped silently), and every error says what was wrong.

import BlockEngine
import Foundation

/// A refused or failed admin request: an HTTP status and a message for `{"error": ...}`.
public struct AdminError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var message: String
    /// For 405: the methods the route takes (the `Allow` header).
    public var allow: String?

    public init(_ status: Int, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status): \(message)" }

    static func badRequest(_ message: String) -> AdminError { AdminError(400, message) }
    static func notFound(volume name: String) -> AdminError { AdminError(404, "no volume named '\(name)'") }
    static func conflict(_ message: String) -> AdminError { AdminError(409, message) }

    /// The status for an engine error: the caller's mistake (400), a conflict with the
    /// volume's state (409), a full file system (507), or the server's failure (500).
    static func engine(_ error: BlockError, context: String) -> AdminError {
        let status: Int
        switch error {
        case .invalidArgument, .misaligned, .outOfRange: status = 400
        case .staleEpoch, .inUse, .alreadyExists: status = 409
        case .noSpace: status = 507
        default: status = 500
        }
        return AdminError(status, "\(context): \(error)")
    }
}

/// `POST /v1/volumes`.
public struct CreateVolumeRequest: Sendable, Decodable, Equatable {
    public var name: String
    public var sizeBytes: UInt64
    public var blockSizeBytes: Int?
    /// `best_effort` (default), `sync_all` or `sync_quorum`.
    public var durability: String?
    public var replicaFactor: Int?

    public init(name: String, sizeBytes: UInt64, blockSizeBytes: Int? = nil, durability: String? = nil,
                replicaFactor: Int? = nil) {
        self.name = name
        self.sizeBytes = sizeBytes
        self.blockSizeBytes = blockSizeBytes
        self.durability = durability
        self.replicaFactor = replicaFactor
    }

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case name, sizeBytes, blockSizeBytes, durability, replicaFactor
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        sizeBytes = try container.decodeUnsigned(forKey: .sizeBytes)
        blockSizeBytes = try container.decodeIfPresent(Int.self, forKey: .blockSizeBytes)
        durability = try container.decodeIfPresent(String.self, forKey: .durability)
        replicaFactor = try container.decodeIfPresent(Int.self, forKey: .replicaFactor)
    }

    /// The volume to create, checked as `blockd volume create` checks it; omitted fields
    /// take `defaults` (the block and WAL size of `serve`'s `--block-size`, `--wal-size`).
    func configuration(defaults: VolumeConfiguration) throws(AdminError) -> VolumeConfiguration {
        guard VolumeNames.isValid(name) else {
            throw .badRequest("invalid volume name '\(name)' (letters, digits, '-', '_', '.'; 1 to 64, not starting with '.')")
        }
        do {
            let mode = try durability.map { (text) throws(BlockError) in try DurabilityMode(parsing: text) } ?? .bestEffort
            return try VolumeCommands.checkedConfiguration(
                sizeBytes: sizeBytes, blockSizeBytes: blockSizeBytes ?? defaults.blockSizeBytes,
                walSizeBytes: defaults.walSizeBytes, durability: mode, replicaFactor: replicaFactor ?? 1)
        } catch {
            throw .badRequest("\(error)")
        }
    }
}

/// `PUT /v1/volumes/{name}/role`.
public struct AssignRoleRequest: Sendable, Decodable, Equatable {
    /// `primary`, `replica` or `none`.
    public var role: String
    public var epoch: UInt64
    /// A primary's lease; nil: it does not run out.
    public var leaseMs: Int?
    /// A primary's replicas, `HOST:PORT` each.
    public var replicas: [String]?

    /// Bounds the lease (the engine counts it in nanoseconds) to a day.
    public static let maxLeaseMs = 86_400_000

    public init(role: String, epoch: UInt64, leaseMs: Int? = nil, replicas: [String]? = nil) {
        self.role = role
        self.epoch = epoch
        self.leaseMs = leaseMs
        self.replicas = replicas
    }

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case role, epoch, leaseMs, replicas
    }

    public init(from decoder: any Decoder) throws {
        try rejectUnknownKeys(decoder, known: CodingKeys.allCases)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        role = try container.decode(String.self, forKey: .role)
        epoch = try container.decodeUnsigned(forKey: .epoch)
        leaseMs = try container.decodeIfPresent(Int.self, forKey: .leaseMs)
        replicas = try container.decodeIfPresent([String].self, forKey: .replicas)
    }

    /// The engine's role and the replica list, or what is wrong with the request.
    func checked() throws(AdminError) -> (role: VolumeRole, replicas: [String]) {
        let roles: [VolumeRole] = [.primary, .replica, .none]
        guard let role = roles.first(where: { $0.description == self.role }) else {
            throw .badRequest("role must be primary, replica or none, got '\(self.role)'")
        }
        if let leaseMs {
            guard role == .primary else { throw .badRequest("leaseMs is for a primary only") }
            guard (1...Self.maxLeaseMs).contains(leaseMs) else {
                throw .badRequest("leaseMs must be within 1...\(Self.maxLeaseMs), got \(leaseMs)")
            }
        }
        let replicas = self.replicas ?? []
        guard replicas.isEmpty || role == .primary else { throw .badRequest("replicas are for a primary only") }
        let maxReplicas = DurabilityMode.maxReplicaFactor - 1
        guard replicas.count <= maxReplicas else { throw .badRequest("at most \(maxReplicas) replicas, got \(replicas.count)") }
        guard Set(replicas).count == replicas.count else { throw .badRequest("a replica is named twice") }
        for address in replicas {
            do throws(ServeError) {
                let (_, port) = try NetworkAddress.parse(address, what: "a replica")
                guard port > 0 else { throw ServeError.invalidArgument("a replica's port must not be 0, got '\(address)'") }
            } catch {
                throw .badRequest(error.description)
            }
        }
        return (role, replicas)
    }
}

extension KeyedDecodingContainer {
    /// A UInt64 field. Foundation reports a negative number there as JSON that does not
    /// parse at all; this says what is wrong instead.
    func decodeUnsigned(forKey key: Key) throws -> UInt64 {
        do {
            return try decode(UInt64.self, forKey: key)
        } catch {
            if let signed = try? decode(Int64.self, forKey: key), signed < 0 {
                throw DecodingError.dataCorrupted(DecodingError.Context(
                    codingPath: codingPath + [key], debugDescription: "must not be negative, got \(signed)"))
            }
            throw error
        }
    }
}

/// Any key of a JSON object.
private struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Throws a `DecodingError` naming the first key of the body's object that is not in `known`.
private func rejectUnknownKeys<Key: CodingKey>(_ decoder: any Decoder, known: [Key]) throws {
    let names = Set(known.map(\.stringValue))
    let container = try decoder.container(keyedBy: AnyKey.self)
    if let unknown = container.allKeys.map(\.stringValue).sorted().first(where: { !names.contains($0) }) {
        throw DecodingError.dataCorrupted(DecodingError.Context(
            codingPath: [], debugDescription: "unknown field '\(unknown)' (known: \(names.sorted().joined(separator: ", ")))"))
    }
}

enum AdminJSON {
    /// Decodes a request body; the error says what was wrong, in the body's terms.
    static func decode<T: Decodable>(_ type: T.Type, from body: [UInt8]) throws(AdminError) -> T {
        guard !body.isEmpty else { throw .badRequest("the request needs a JSON body") }
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch let error as DecodingError {
            if case let .dataCorrupted(context) = error, context.codingPath.isEmpty, let reason = syntaxError(body) {
                throw .badRequest("malformed JSON: \(reason)")
            }
            throw .badRequest(describe(error))
        } catch {
            throw .badRequest("malformed JSON: \(error)")
        }
    }

    /// Where `body` stops being JSON, as JSONSerialization says it (JSONDecoder only says
    /// that it is not JSON); nil when it parses.
    private static func syntaxError(_ body: [UInt8]) -> String? {
        do {
            _ = try JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed])
            return nil
        } catch let error as NSError {
            return (error.userInfo[NSDebugDescriptionErrorKey] as? String) ?? error.localizedDescription
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context, _ last: (any CodingKey)? = nil) -> String {
            let keys = context.codingPath + (last.map { [$0] } ?? [])
            return keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case let .keyNotFound(key, context):
            return "missing field '\(path(context, key))'"
        case let .valueNotFound(_, context):
            return "field '\(path(context))' must not be null"
        case let .typeMismatch(type, context):
            guard !context.codingPath.isEmpty else { return "the body must be a JSON object" }
            return "field '\(path(context))' has the wrong type (expected \(describe(type)))"
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty {
                let reason = context.debugDescription
                return reason.contains("unknown field") ? reason : "malformed JSON: \(reason)"
            }
            return "field '\(path(context))': \(context.debugDescription)"
        @unknown default:
            return "malformed JSON: \(error)"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is [String].Type: "an array of strings"
        case is Int.Type, is UInt64.Type: "a whole number"
        default: "an object"
        }
    }

    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding these plain structs cannot fail.
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8))
    }
}
