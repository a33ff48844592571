#ifndef CBLOCKSUPPORT_H
#define CBLOCKSUPPORT_H

#include <stddef.h>
#include <stdint.h>

/// Extends a CRC32C (Castagnoli, reflected polynomial 0x82F63B78) over `length` bytes.
/// Start with `crc = 0`; the pre- and post-inversion happen inside, so
/// `ccrc32c_extend(ccrc32c_extend(0, a), b) == crc32c(a || b)`.
/// Uses the SSE4.2 `crc32` instruction when the CPU has it, a table otherwise.
uint32_t ccrc32c_extend(uint32_t crc, const void *bytes, size_t length);

/// The table-driven implementation, exposed so tests can compare both paths.
uint32_t ccrc32c_extend_portable(uint32_t crc, const void *bytes, size_t length);

/// 1 when the hardware path is in use.
int ccrc32c_hardware_available(void);

/// Copies `length` bytes from `source` to `destination` (not overlapping) and returns
/// `ccrc32c_extend(crc, source, length)`. Long copies bypass the cache (non-temporal stores,
/// fenced before returning): for memory the caller writes now and reads much later.
uint32_t ccrc32c_copy(uint32_t crc, void *destination, const void *source, size_t length);

/// fallocate(2) (a GNU extension the Swift Glibc module does not export). Returns 0 or -1
/// with errno set.
int cblock_fallocate(int fd, int mode, int64_t offset, int64_t length);

/// lseek(2) with SEEK_DATA / SEEK_HOLE: the next offset at or after `offset` that holds data
/// (or a hole). Returns -1 with errno set (ENXIO: no more data past `offset`).
int64_t cblock_seek_data(int fd, int64_t offset);
int64_t cblock_seek_hole(int fd, int64_t offset);

/// preadv2(2) with RWF_NOWAIT: reads only what the page cache already holds. Returns the
/// bytes read, or -errno (-EAGAIN: the read would block).
int64_t cblock_pread_nowait(int fd, void *buffer, uint64_t length, int64_t offset);

/// pwritev2 with RWF_DSYNC: one write that returns once it is durable, as if followed by
/// fdatasync (on a device without FUA the kernel flushes its cache after the write).
/// Returns the bytes written or -errno.
int64_t cblock_pwrite_dsync(int fd, const void *buffer, uint64_t length, int64_t offset);

/// The O_DIRECT open flag (its value differs between architectures).
int cblock_o_direct_flag(void);

/// Names the calling thread (at most 15 bytes are kept).
void cblock_set_thread_name(const char *name);

#endif
