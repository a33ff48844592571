// Limits of the process that a server carrying many volumes and connections outgrows: each
// volume holds a few descriptors (its file, an O_DIRECT descriptor, io_uring instances) and
// each connection one, so the usual soft limit of 1024 open files is reached well before
// the server's own bounds.

#if canImport(Glibc)
import Glibc
#endif

enum ProcessLimits {
    /// Raises the soft limit on open files to the hard limit; returns the limit in force.
    static func raiseOpenFileLimit() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }
}
