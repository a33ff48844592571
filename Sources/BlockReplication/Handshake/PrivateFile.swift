// Small files that hold secrets (the replication secret, CHAP secrets, the admin token):
// read through one descriptor (no symlink followed, no race between the checks and the
// read), refused unless private, bounded in size.

#if canImport(Glibc)
import Glibc
#endif

public enum PrivateFile {
    /// Why a file was refused: a phrase that follows the file's name ("is empty").
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// The bytes of the file at `path`, without one final newline (or CR LF). Refused unless
    /// it is a regular file that other users can neither read nor write (with `ownerOnly`,
    /// nor its group), holds at most `maxBytes` once trimmed, and is not empty.
    public static func contents(of path: String, maxBytes: Int, ownerOnly: Bool) throws(Refusal) -> [UInt8] {
        precondition(maxBytes > 0, "a secret file holds at least one byte")
        func refuse(_ reason: String) -> Refusal { Refusal(reason: reason) }
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard descriptor >= 0 else { throw refuse("cannot be opened: \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw refuse("cannot be examined: \(String(cString: strerror(errno)))") }
        guard status.st_mode & S_IFMT == S_IFREG else { throw refuse("is not a regular file") }
        guard status.st_mode & (ownerOnly ? 0o066 : 0o006) == 0 else {
            throw refuse(ownerOnly ? "is readable or writable by its group or other users; make it private (chmod 600)"
                                   : "is readable or writable by every user; make it private (chmod 600)")
        }
        // Room for CR LF, and one byte more, so a file that grew since fstat is still caught.
        guard status.st_size <= maxBytes + 2 else { throw refuse("is larger than \(maxBytes) bytes") }
        var bytes = [UInt8](repeating: 0, count: maxBytes + 3)
        var count = 0
        while count < bytes.count {  // bounded: each turn reads at least one byte or ends
            let got = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + count, $0.count - count) }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { throw refuse("cannot be read: \(String(cString: strerror(errno)))") }
            if got == 0 { break }
            count += got
        }
        var content = Array(bytes[..<count])
        if content.last == UInt8(ascii: "\n") { content.removeLast() }
        if content.last == UInt8(ascii: "\r") { content.removeLast() }
        guard !content.isEmpty else { throw refuse("is empty") }
        guard content.count <= maxBytes else { throw refuse("is larger than \(maxBytes) bytes") }
        return content
    }
}
