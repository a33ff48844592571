// Directory entries that survive a power cut. A new file's or directory's name lives in its
// parent directory; until that directory is synced a crash can lose the name (on ext4
// without a journal even after the file's own data was synced), and with it the volume.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

public enum DurableDirectory {
    /// Creates `path` and any missing parents (like `mkdir -p`), syncing the parent of
    /// each directory it creates. An existing directory is left as it is.
    public static func create(atPath path: String) throws(BlockError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            let parent = prefix.isEmpty ? "/" : prefix
            prefix += "/" + component
            if mkdir(prefix, 0o755) == 0 {
                try sync(directory: parent)
                continue
            }
            let code = errno
            guard code == EEXIST else { throw .io(operation: "mkdir \(prefix)", errno: code) }
            var status = stat()
            guard stat(prefix, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
                throw .io(operation: "mkdir \(prefix) (exists, not a directory)", errno: ENOTDIR)
            }
        }
    }

    /// Makes the entry of `path` in its directory durable (after creating or renaming it).
    public static func syncEntry(of path: String) throws(BlockError) {
        guard let slash = path.lastIndex(of: "/") else { return try sync(directory: ".") }
        try sync(directory: slash == path.startIndex ? "/" : String(path[..<slash]))
    }

    /// Makes the entries of `directory` durable.
    public static func sync(directory: String) throws(BlockError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .io(operation: "open directory \(directory)", errno: errno) }
        defer { _ = close(fd) }
        guard fsync(fd) == 0 else { throw .io(operation: "fsync directory \(directory)", errno: errno) }
    }
}
