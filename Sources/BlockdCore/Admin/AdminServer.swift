// The admin API's HTTP side (docs/ADMIN.md) on Hummingbird: authentication, routes, body
// bounds, JSON in and out. What the routes do is in ServedVolumes.
//
// Invariants:
// - Every response to a refused or failed request is `{"error": "..."}` with a 4xx or 5xx
//   status; nothing a client sends can make a handler trap (errors are values here).
// - The bearer token is checked before anything else, so an unauthenticated client learns
//   nothing, not even which routes exist; it is compared in constant time.
// - A request body is read only up to `maxBodyBytes` (413 beyond); connections are bounded
//   in number and idle time (AdminConfiguration).

import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// The routes of the admin API.
enum AdminRoute: Equatable {
    /// `/v1/volumes`
    case volumes
    /// `/v1/volumes/{name}`
    case volume(String)
    /// `/v1/volumes/{name}/role`
    case role(String)
    /// `/metrics`
    case metrics

    /// The route of `path`, nil for none (404). Empty segments are ignored (`/v1/volumes/`).
    init?(path: String) {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        switch parts.count {
        case 1 where parts[0] == "metrics": self = .metrics
        case 2 where parts[0] == "v1" && parts[1] == "volumes": self = .volumes
        case 3 where parts[0] == "v1" && parts[1] == "volumes": self = .volume(parts[2])
        case 4 where parts[0] == "v1" && parts[1] == "volumes" && parts[3] == "role": self = .role(parts[2])
        default: return nil
        }
    }

    var allowedMethods: [HTTPRequest.Method] {
        switch self {
        case .volumes: [.get, .post]
        case .volume: [.get, .delete]
        case .role: [.put]
        case .metrics: [.get]
        }
    }
}

/// Answers admin requests; one instance serves every connection.
struct AdminResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    let volumes: ServedVolumes
    let metrics: DaemonMetrics
    let replication: any ReplicationControl
    let configuration: AdminConfiguration
    let logger: Logger

    func respond(to request: Request, context: Context) async throws -> Response {
        let response: Response
        do throws(AdminError) {
            response = try await answer(request)
        } catch {
            response = Self.errorResponse(error)
            let level: Logger.Level = error.status >= 500 ? .error : .info
            logger.log(level: level, "admin request refused", metadata: [
                "method": "\(request.method)", "path": "\(request.uri.path)", "status": "\(error.status)",
                "error": "\(error.message)",
            ])
        }
        return response
    }

    private func answer(_ request: Request) async throws(AdminError) -> Response {
        try authenticate(request)
        guard let route = AdminRoute(path: request.uri.path) else { throw AdminError(404, "no such route: \(request.uri.path)") }
        let method = request.method
        guard route.allowedMethods.contains(method) else {
            let allowed = route.allowedMethods.map(\.rawValue).joined(separator: ", ")
            var error = AdminError(405, "\(method) is not allowed on \(request.uri.path) (allowed: \(allowed))")
            error.allow = allowed
            throw error
        }
        switch (route, method) {
        case (.volumes, .get):
            return Self.json(.ok, await volumes.list())
        case (.volumes, .post):
            let body = try await readBody(request)
            let (status, created) = try await volumes.create(AdminJSON.decode(CreateVolumeRequest.self, from: body))
            return Self.json(created ? .created : .ok, status)
        case let (.volume(name), .get):
            return Self.json(.ok, try await volumes.status(name: name))
        case let (.volume(name), .delete):
            try await volumes.delete(name: name)
            return Response(status: .noContent)
        case let (.role(name), .put):
            let body = try await readBody(request)
            return Self.json(.ok, try await volumes.assignRole(name: name, AdminJSON.decode(AssignRoleRequest.self, from: body)))
        case (.metrics, .get):
            let served = await volumes.snapshot()
            let text = metrics.render(volumes: served.map { ($0.name, $0.volume, replication.replicaStatus(name: $0.name)) })
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        default:
            // `allowedMethods` and the cases above list the same pairs.
            throw AdminError(405, "\(method) is not allowed on \(request.uri.path)")
        }
    }

    private func authenticate(_ request: Request) throws(AdminError) {
        guard let token = configuration.token else { return }
        let prefix = "Bearer "
        let header = request.headers[.authorization] ?? ""
        guard header.hasPrefix(prefix), Self.constantTimeEqual(Array(header.utf8.dropFirst(prefix.utf8.count)), Array(token.utf8)) else {
            throw AdminError(401, header.isEmpty ? "this API needs Authorization: Bearer <token>" : "wrong token")
        }
    }

    /// Reads the body, at most `maxBodyBytes`.
    private func readBody(_ request: Request) async throws(AdminError) -> [UInt8] {
        let limit = configuration.maxBodyBytes
        let tooLarge = AdminError(413, "the request body is larger than \(limit) bytes")
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit { throw tooLarge }
        var body: [UInt8] = []
        do {
            for try await buffer in request.body {
                guard body.count + buffer.readableBytes <= limit else { throw tooLarge }
                body += buffer.readableBytesView
            }
        } catch let error as AdminError {
            throw error
        } catch {
            throw AdminError(400, "the request body could not be read: \(error)")
        }
        return body
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        // Only the lengths may show in the timing, not where the first difference is.
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0 && a.count == b.count
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: AdminJSON.encode(value))))
    }

    static func errorResponse(_ error: AdminError) -> Response {
        var response = json(HTTPResponse.Status(code: error.status), ["error": error.message])
        if error.status == 401 { response.headers[.wwwAuthenticate] = "Bearer realm=\"blockd\"" }
        if let allow = error.allow { response.headers[.allow] = allow }
        return response
    }
}

/// The admin HTTP server of one daemon.
enum AdminServer {
    /// A Hummingbird application answering with `responder` on `configuration`'s address;
    /// `listening` gets the bound port once it listens.
    static func application(responder: AdminResponder, configuration: AdminConfiguration, logger: Logger,
                            listening: @escaping @Sendable (Int) async -> Void) -> some ApplicationProtocol {
        precondition(configuration.maxConnections >= 1 && configuration.maxBodyBytes >= 1 && configuration.idleTimeoutMs >= 1,
                     "the admin server's bounds are positive")
        return Application(
            responder: responder,
            server: .http1(configuration: .init(idleTimeout: .milliseconds(configuration.idleTimeoutMs))),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.host, port: configuration.port),
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.maxConnections)),
            onServerRunning: { channel in await listening(channel.localAddress?.port ?? configuration.port) },
            logger: logger)
    }
}
