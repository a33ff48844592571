// Linux calls that need _GNU_SOURCE, which Swift's Glibc module is not built with.
#define _GNU_SOURCE
#include "cblocksupport.h"

#include <fcntl.h>
#include <pthread.h>
#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

int cblock_fallocate(int fd, int mode, int64_t offset, int64_t length) {
    return fallocate(fd, mode, (off_t)offset, (off_t)length);
}

void cblock_set_thread_name(const char *name) {
    char shortName[16];
    int i = 0;
    for (; i < 15 && name[i] != 0; i++) shortName[i] = name[i];
    shortName[i] = 0;
    pthread_setname_np(pthread_self(), shortName);
}

int cblock_o_direct_flag(void) {
    return O_DIRECT;
}

int64_t cblock_seek_data(int fd, int64_t offset) {
    return (int64_t)lseek(fd, (off_t)offset, SEEK_DATA);
}

int64_t cblock_seek_hole(int fd, int64_t offset) {
    return (int64_t)lseek(fd, (off_t)offset, SEEK_HOLE);
}

int64_t cblock_pread_nowait(int fd, void *buffer, uint64_t length, int64_t offset) {
    struct iovec vector = { .iov_base = buffer, .iov_len = (size_t)length };
    ssize_t rc = preadv2(fd, &vector, 1, (off_t)offset, RWF_NOWAIT);
    return rc < 0 ? -(int64_t)errno : (int64_t)rc;
}

int64_t cblock_pwrite_dsync(int fd, const void *buffer, uint64_t length, int64_t offset) {
    struct iovec vector = { .iov_base = (void *)buffer, .iov_len = (size_t)length };
    ssize_t rc = pwritev2(fd, &vector, 1, (off_t)offset, RWF_DSYNC);
    return rc < 0 ? -(int64_t)errno : (int64_t)rc;
}
