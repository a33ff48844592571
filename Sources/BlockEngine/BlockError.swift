// The one error taxonomy of the engine. Frontends map these cases (iSCSI: SCSI sense, HTTP:
// status codes); see docs/ERRORS.md. Every public throwing API throws `BlockError`.

/// Every way an engine operation can fail.
public enum BlockError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The request addresses blocks past the end of the volume.
    case outOfRange(lba: UInt64, blockCount: UInt64, volumeBlocks: UInt64)
    /// A length or buffer is not a whole number of blocks, or a size is not aligned.
    case misaligned(what: String, value: UInt64, alignmentBytes: UInt64)
    /// An argument or configuration value is invalid; the message says which and why.
    case invalidArgument(String)
    /// The volume is closed, or closing.
    case closed
    /// A writer waited for write-ahead-log space longer than the configured bound.
    case walFullTimeout(waitedMs: Int)
    /// A system call failed. `errno` is the raw error number.
    case io(operation: String, errno: Int32)
    /// A checksummed structure failed validation: where it is and what is wrong.
    case corrupt(location: String, reason: String)
    /// The file is shorter than its superblock says it must be.
    case truncated(expectedBytes: UInt64, actualBytes: UInt64)
    /// The file carries no volume superblock at all.
    case notAVolume(path: String)
    /// The volume was written by a newer (or unknown) format version.
    case unsupportedVersion(found: UInt32, supported: UInt32)
    /// The file to create already exists.
    case alreadyExists(path: String)
    /// Another open volume (in this process or another) holds the file for writing.
    case inUse(path: String)
    /// The file system has no space for the write-back to place data in the volume file.
    /// Writes that find the log full fail with it until space is freed; reads, flushes and
    /// writes that fit the log go on, and the write-back retries.
    case noSpace(String)
    /// A strict durability mode could not confirm the flush on the replicas it needs.
    case barrierFailed(String)
    /// `sync_quorum`: fewer durable copies than a majority of the replica factor.
    case quorumLost(durableCopies: Int, requiredCopies: Int)
    /// This copy may not accept writes: a replica, or a copy with no role.
    case notPrimary(String)
    /// A newer epoch exists: this copy stopped acknowledging writes and flushes until it is
    /// assigned again.
    case fenced(String)
    /// A primary whose lease ran out, or that was primary before this open and has not been
    /// assigned again: no writes or flushes until its role is renewed.
    case leaseExpired(String)
    /// An assignment or a replication peer carried an epoch older than the volume's (or an
    /// equal epoch where only a higher one may change the role).
    case staleEpoch(current: UInt64, offered: UInt64)
    /// An earlier I/O failure made the in-memory state untrustworthy (for example a failed
    /// `fdatasync`); the volume refuses further work until it is reopened and recovered.
    case failed(String)

    public var description: String {
        switch self {
        case let .outOfRange(lba, count, blocks):
            return "LBA range \(lba)+\(count) is outside the volume (\(blocks) blocks)"
        case let .misaligned(what, value, alignment):
            return "\(what) \(value) is not a multiple of \(alignment) bytes"
        case let .invalidArgument(message):
            return "invalid argument: \(message)"
        case .closed:
            return "the volume is closed"
        case let .walFullTimeout(waitedMs):
            return "write-ahead log stayed full for \(waitedMs) ms"
        case let .io(operation, errno):
            return "\(operation) failed: \(errnoName(errno))"
        case let .corrupt(location, reason):
            return "corrupt \(location): \(reason)"
        case let .truncated(expected, actual):
            return "file is truncated: \(actual) bytes, the volume needs \(expected)"
        case let .notAVolume(path):
            return "\(path) is not a block volume (no superblock magic in either slot)"
        case let .unsupportedVersion(found, supported):
            return "format version \(found) is not supported (this build reads up to \(supported))"
        case let .alreadyExists(path):
            return "\(path) already exists"
        case let .inUse(path):
            return "\(path) is in use: another process (or another open of it) has it open for writing"
        case let .noSpace(message):
            return "no space for the volume's data: \(message)"
        case let .barrierFailed(message):
            return "durability barrier failed: \(message)"
        case let .quorumLost(durable, required):
            return "durability quorum lost: \(durable) durable copies, \(required) required"
        case let .notPrimary(message):
            return "not primary: \(message)"
        case let .fenced(message):
            return "fenced: \(message)"
        case let .leaseExpired(message):
            return "lease expired: \(message)"
        case let .staleEpoch(current, offered):
            return "stale epoch: \(offered) offered, the volume is at epoch \(current)"
        case let .failed(message):
            return "volume failed: \(message)"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

func errnoName(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return "\(String(cString: text)) (errno \(code))"
}
