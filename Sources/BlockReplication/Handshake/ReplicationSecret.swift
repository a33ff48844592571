// The shared secret of a replication group, and how it is read from its file.
//
// Invariants:
// - No error message contains the secret.
// - A secret is 16 to 4096 bytes: an observer of one handshake can test guesses offline
//   (the proofs are HMACs of the secret over public values), so a short one is refused.
// - A secret file is a regular file (not a symlink) that neither group nor others may
//   read or write, and not empty; anything else is refused without using its bytes.

import Crypto

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
        func refuse(_ reason: String) -> SecretError { SecretError("replication secret file \(path) \(reason)") }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard descriptor >= 0 else { throw refuse("cannot be opened: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw refuse("cannot be examined: \(String(cString: strerror(errno)))") }
        guard status.st_mode & S_IFMT == S_IFREG else { throw refuse("is not a regular file") }
        guard status.st_mode & 0o077 == 0 else {
            throw refuse("is readable or writable by group or others; make it private (chmod 600)")
        }
        guard status.st_size <= Self.maximumBytes + 2 else { throw refuse("is larger than \(Self.maximumBytes) bytes") }
        // One byte more than allowed, so a file that grew since fstat is still caught.
        var bytes = [UInt8](repeating: 0, count: Self.maximumBytes + 3)
        var count = 0
        while count < bytes.count {  // bounded: each turn reads at least one byte or ends
            let got = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + count, $0.count - count) }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { throw refuse("cannot be read: \(String(cString: strerror(errno)))") }
            if got == 0 { break }
            count += got
        }
        var secret = Array(bytes[..<count])
        if secret.last == UInt8(ascii: "\n") { secret.removeLast() }
        if secret.last == UInt8(ascii: "\r") { secret.removeLast() }
        guard !secret.isEmpty else { throw refuse("is empty") }
        guard secret.count >= Self.minimumBytes else { throw refuse("holds fewer than \(Self.minimumBytes) bytes") }
        guard secret.count <= Self.maximumBytes else { throw refuse("is larger than \(Self.maximumBytes) bytes") }
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
