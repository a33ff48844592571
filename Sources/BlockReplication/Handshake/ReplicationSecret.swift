// The shared secret of a replication group, and how it is read from its file.
//
// Invariants:
// - No error message contains the secret.
// - A secret is 16 to 4096 bytes: an observer of one handshake can test guesses offline
//   (the proofs are HMACs of the secret over public values), so a short one is refused.
// - A secret file is a regular file (not a symlink) that neither group nor others may
//   read or write, and not empty; anything else is refused without using its bytes.

import Crypto

/// Why a secret was refused.
public struct SecretError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// The secret every member of a replication group holds.
public struct ReplicationSecret: Sendable {
    public static let minimumBytes = 16
    public static let maximumBytes = 4096

    private let box: SendableKey

    var key: SymmetricKey { box.key }

    /// A secret of `bytes` (16 to 4096 of them, any values).
    public init(bytes: [UInt8]) throws(SecretError) {
        guard (Self.minimumBytes...Self.maximumBytes).contains(bytes.count) else {
            throw SecretError("a replication secret must be \(Self.minimumBytes) to \(Self.maximumBytes) bytes, not \(bytes.count)")
        }
        box = SendableKey(key: SymmetricKey(data: bytes))
    }

    /// The secret in the file at `path`: its bytes without one final newline (or CR LF). The
    /// file must be a regular file that group and others can neither read nor write (mode
    /// 600 or 400) and hold 16 to 4096 bytes.
    public init(contentsOfFile path: String) throws(SecretError) {
        let secret: [UInt8]
        do throws(PrivateFile.Refusal) {
            secret = try PrivateFile.contents(of: path, maxBytes: Self.maximumBytes, ownerOnly: true)
        } catch {
            throw SecretError("replication secret file \(path) \(error.reason)")
        }
        guard secret.count >= Self.minimumBytes else {
            throw SecretError("replication secret file \(path) holds fewer than \(Self.minimumBytes) bytes")
        }
        try self.init(bytes: secret)
    }
}


/// How one side of a connection authenticates.
public enum ReplicationAuthentication: Sendable {
    /// No secret: zero proofs and zero MACs. For tests and loopback only; a side with a
    /// secret refuses a peer without one, and the channel handler refuses it for peers
    /// that are not loopback.
    case none
    case sharedSecret(ReplicationSecret)

    public var mode: AuthenticationMode {
        switch self {
        case .none: .none
        case .sharedSecret: .hmacSHA256
        }
    }
}
