// A thin, opaque shim over liburing for the engine's flusher (see docs/ENGINE.md).
#include "curing.h"

#include <errno.h>
#include <liburing.h>
#include <stdlib.h>

struct curing {
    struct io_uring ring;
};

curing_t *curing_create(unsigned entries, int *error) {
    curing_t *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        *error = ENOMEM;
        return NULL;
    }
    int rc = io_uring_queue_init(entries, &r->ring, 0);
    if (rc < 0) {
        *error = -rc;
        free(r);
        return NULL;
    }
    *error = 0;
    return r;
}

void curing_destroy(curing_t *r) {
    if (r == NULL) return;
    io_uring_queue_exit(&r->ring);
    free(r);
}

int curing_limit_workers(curing_t *r, unsigned bounded, unsigned unbounded) {
    unsigned values[2] = {bounded, unbounded};
    return io_uring_register_iowq_max_workers(&r->ring, values);
}

unsigned curing_sq_space_left(curing_t *r) {
    return io_uring_sq_space_left(&r->ring);
}

static struct io_uring_sqe *next_sqe(curing_t *r) {
    return io_uring_get_sqe(&r->ring);
}

int curing_prep_read(curing_t *r, int fd, void *buffer, unsigned length, uint64_t offset, uint64_t tag) {
    struct io_uring_sqe *sqe = next_sqe(r);
    if (sqe == NULL) return -EBUSY;
    io_uring_prep_read(sqe, fd, buffer, length, offset);
    io_uring_sqe_set_data64(sqe, tag);
    return 0;
}

int curing_prep_write(curing_t *r, int fd, const void *buffer, unsigned length, uint64_t offset, uint64_t tag) {
    struct io_uring_sqe *sqe = next_sqe(r);
    if (sqe == NULL) return -EBUSY;
    io_uring_prep_write(sqe, fd, buffer, length, offset);
    io_uring_sqe_set_data64(sqe, tag);
    return 0;
}

int curing_prep_fsync(curing_t *r, int fd, int datasync, uint64_t tag) {
    struct io_uring_sqe *sqe = next_sqe(r);
    if (sqe == NULL) return -EBUSY;
    io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
    io_uring_sqe_set_data64(sqe, tag);
    return 0;
}

int curing_prep_fallocate(curing_t *r, int fd, int mode, uint64_t offset, uint64_t length, uint64_t tag) {
    struct io_uring_sqe *sqe = next_sqe(r);
    if (sqe == NULL) return -EBUSY;
    io_uring_prep_fallocate(sqe, fd, mode, offset, length);
    io_uring_sqe_set_data64(sqe, tag);
    return 0;
}

int curing_prep_nop(curing_t *r, uint64_t tag) {
    struct io_uring_sqe *sqe = next_sqe(r);
    if (sqe == NULL) return -EBUSY;
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, tag);
    return 0;
}

int curing_submit(curing_t *r) {
    int rc;
    do {
        rc = io_uring_submit(&r->ring);
    } while (rc == -EINTR);
    return rc;
}

unsigned curing_sq_pending(curing_t *r) {
    struct io_uring_sq *sq = &r->ring.sq;
    return sq->sqe_tail - io_uring_smp_load_acquire(sq->khead);
}

unsigned curing_drop_unsubmitted(curing_t *r, uint64_t dropped_tag, uint64_t *tags, unsigned capacity) {
    struct io_uring_sq *sq = &r->ring.sq;
    unsigned written = 0;
    // Entries from the kernel's head to the local tail: published but not consumed, or
    // prepared but not yet published. liburing maps SQ index i to sqes[i & ring_mask].
    for (unsigned index = io_uring_smp_load_acquire(sq->khead); index != sq->sqe_tail; index++) {
        struct io_uring_sqe *sqe = &sq->sqes[index & sq->ring_mask];
        if (sqe->user_data != dropped_tag && written < capacity) tags[written++] = sqe->user_data;
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data64(sqe, dropped_tag);
    }
    return written;
}

int curing_wait_one(curing_t *r, uint64_t *tag, int32_t *result) {
    struct io_uring_cqe *cqe;
    int rc;
    do {
        rc = io_uring_wait_cqe(&r->ring, &cqe);
    } while (rc == -EINTR);
    if (rc < 0) return rc;
    *tag = io_uring_cqe_get_data64(cqe);
    *result = cqe->res;
    io_uring_cqe_seen(&r->ring, cqe);
    return 0;
}

int curing_submit_and_wait(curing_t *r, unsigned wait_count) {
    int rc;
    do {
        rc = io_uring_submit_and_wait(&r->ring, wait_count);
    } while (rc == -EINTR);
    return rc;
}

unsigned curing_reap(curing_t *r, uint64_t *tags, int32_t *results, unsigned capacity) {
    unsigned taken = 0;
    struct io_uring_cqe *cqe;
    while (taken < capacity && io_uring_peek_cqe(&r->ring, &cqe) == 0) {
        tags[taken] = io_uring_cqe_get_data64(cqe);
        results[taken] = cqe->res;
        io_uring_cqe_seen(&r->ring, cqe);
        taken++;
    }
    return taken;
}
