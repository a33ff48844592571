#ifndef CURING_H
#define CURING_H

#include <stdint.h>

/// An opaque io_uring instance. liburing is included only in curing.c because its headers
/// clash with Swift's Glibc module. One ring must be used by one thread at a time.
typedef struct curing curing_t;

/// Creates a ring with `entries` submission slots. Returns NULL and sets `*error` to a
/// positive errno on failure.
curing_t *curing_create(unsigned entries, int *error);
void curing_destroy(curing_t *ring);

/// Caps the kernel worker threads (io-wq) that serve this ring's blocking operations:
/// `bounded` for regular-file I/O, `unbounded` for the rest, per NUMA node. The cap also
/// applies to threads that submit to the ring later. Returns 0 or a negative errno
/// (-EINVAL on kernels before 5.15, where the kernel's own bound of 4 x CPUs applies).
int curing_limit_workers(curing_t *ring, unsigned bounded, unsigned unbounded);

/// Free submission slots.
unsigned curing_sq_space_left(curing_t *ring);

/// Queue operations. Each returns 0, or -EBUSY when the submission queue is full.
/// `tag` comes back with the completion.
int curing_prep_read(curing_t *ring, int fd, void *buffer, unsigned length, uint64_t offset, uint64_t tag);
int curing_prep_write(curing_t *ring, int fd, const void *buffer, unsigned length, uint64_t offset, uint64_t tag);
int curing_prep_fsync(curing_t *ring, int fd, int datasync, uint64_t tag);
int curing_prep_fallocate(curing_t *ring, int fd, int mode, uint64_t offset, uint64_t length, uint64_t tag);

/// Queues a no-op (used to wake a thread blocked in curing_wait_one).
int curing_prep_nop(curing_t *ring, uint64_t tag);

/// Submits queued operations without waiting. Returns the number submitted or a negative errno.
/// Operations the kernel did not take stay queued (see curing_sq_pending).
int curing_submit(curing_t *ring);

/// Queued operations the kernel has not taken yet (0 after a submit that took them all).
unsigned curing_sq_pending(curing_t *ring);

/// Turns every queued operation the kernel has not taken yet into a no-op tagged
/// `dropped_tag`, so the kernel never touches its buffer (it completes as a no-op whenever a
/// later submit takes it). Writes the tags of up to `capacity` of them (earlier no-ops
/// excluded) to `tags` and returns how many it wrote. The caller must be the ring's only
/// submitter (and the ring has no SQPOLL thread): the kernel reads queued entries only
/// while a submit runs.
unsigned curing_drop_unsubmitted(curing_t *ring, uint64_t dropped_tag, uint64_t *tags, unsigned capacity);

/// Blocks until one completion is ready and takes it. Returns 0, or a negative errno.
int curing_wait_one(curing_t *ring, uint64_t *tag, int32_t *result);

/// Submits queued operations and waits until at least `wait_count` completions are ready.
/// Returns the number submitted or a negative errno.
int curing_submit_and_wait(curing_t *ring, unsigned wait_count);

/// Takes up to `capacity` ready completions without blocking. Returns how many were taken.
/// `results[i]` is the operation's result: bytes transferred or a negative errno.
unsigned curing_reap(curing_t *ring, uint64_t *tags, int32_t *results, unsigned capacity);

#endif
