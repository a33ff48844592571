// Settings of the admin API of `blockd serve` (`--admin`, `--admin-token-file`) and the
// HOST:PORT syntax it shares with `--portal` and replica addresses.
//
// Invariants:
// - A token that passes `readToken` can be sent in an Authorization header: 1 to 4096
//   visible ASCII characters, no spaces.
// - No error message or log line contains the token.

/// How the admin API listens and whom it lets in.
public struct AdminConfiguration: Sendable {
    public var host: String
    /// 0 takes any free port (tests); `BlockDaemon.adminPort` tells which.
    public var port: Int
    /// When set, every request must carry `Authorization: Bearer <token>`.
    public var token: String?
    /// Connections the admin server holds at once; more wait in the listen backlog.
    public var maxConnections: Int = 64
    /// Larger request bodies are refused (413).
    public var maxBodyBytes: Int = 64 << 10
    /// A connection idle this long is closed.
    public var idleTimeoutMs: Int64 = 60_000

    public static let defaultHost = "127.0.0.1"
    /// Beside iSCSI's 3260, easy to remember; documented in README.md and docs/ADMIN.md.
    public static let defaultPort = 9260
    /// A token shorter than this only logs a warning.
    public static let recommendedTokenBytes = 16

    public init(host: String = AdminConfiguration.defaultHost, port: Int = AdminConfiguration.defaultPort,
                token: String? = nil) {
        self.host = host
        self.port = port
        self.token = token
    }

    /// True for addresses only this machine reaches.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Reads the bearer token from `path` (`--admin-token-file`): a regular file readable by
    /// its owner only (chmod 600), not empty; one final newline is not part of the token.
    public static func readToken(path: String) throws(ServeError) -> String {
        let token = try CHAPOption.readSecretFile(path, option: "--admin-token-file", ownerOnly: true, kind: "token file")
        guard token.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            throw .invalidArgument("--admin-token-file: token file \(path) must hold one token of visible ASCII "
                + "characters without spaces")
        }
        return token
    }
}

/// `HOST:PORT` as the command line and the API take it; an IPv6 host in brackets.
public enum NetworkAddress {
    /// Splits `text` into host and port (0...65535); the error names `what`.
    public static func parse(_ text: String, what: String) throws(ServeError) -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (0...65535).contains(port) else {
            throw .invalidArgument("\(what) expects HOST:PORT, got '\(text)'")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "/" }) else {
            throw .invalidArgument("\(what) expects HOST:PORT, got '\(text)'")
        }
        return (host, port)
    }
}
