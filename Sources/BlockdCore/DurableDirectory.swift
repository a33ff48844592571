// Creating the data directory so that it survives a power cut. A new directory's entry
// lives in its parent; until the parent is synced, a crash can lose it (on ext4 without a
// journal even after the files inside it were synced), and with it every volume inside.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

public enum DurableDirectory {
    /// Creates `path` and any missing parents (like `mkdir -p`), syncing the parent of
    /// each directory it creates. An existing path is left as it is.
    public static func create(atPath path: String) throws(DurableDirectoryError) {
        let absolute = path.hasPrefix("/")
        let components = path.split(separator: "/", omittingEmptySubsequences: true)
        var prefix = absolute ? "" : "."
        for component in components {
            let parent = prefix.isEmpty ? "/" : prefix
            prefix += "/" + component
            if mkdir(prefix, 0o755) == 0 {
                try sync(directory: parent)
                continue
            }
            let code = errno
            guard code == EEXIST else { throw DurableDirectoryError(path: prefix, operation: "mkdir", errno: code) }
            var status = stat()
            guard stat(prefix, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
                throw DurableDirectoryError(path: prefix, operation: "mkdir (exists, not a directory)", errno: ENOTDIR)
            }
        }
    }

    /// Makes the entries of `directory` durable.
    public static func sync(directory: String) throws(DurableDirectoryError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw DurableDirectoryError(path: directory, operation: "open", errno: errno) }
        defer { _ = close(fd) }
        guard fsync(fd) == 0 else { throw DurableDirectoryError(path: directory, operation: "fsync", errno: errno) }
    }
}

public struct DurableDirectoryError: Error, CustomStringConvertible {
    public let path: String
    public let operation: String
    public let errno: Int32

    public var description: String { "\(operation) \(path) failed: \(String(cString: strerror(errno)))" }
}
