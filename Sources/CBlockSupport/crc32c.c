// CRC32C: the checksum of every on-disk structure (superblock slots, WAL records).
// Hardware path: SSE4.2 `crc32` over 8 bytes at a time. Portable path: slicing-by-8 tables.
#include "cblocksupport.h"

#include <pthread.h>
#include <string.h>

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_tables(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t crc = i;
        for (int bit = 0; bit < 8; bit++) {
            crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        table[0][i] = crc;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int slice = 1; slice < 8; slice++) {
            uint32_t previous = table[slice - 1][i];
            table[slice][i] = (previous >> 8) ^ table[0][previous & 0xFF];
        }
    }
}

uint32_t ccrc32c_extend_portable(uint32_t crc, const void *bytes, size_t length) {
    pthread_once(&table_once, build_tables);
    const uint8_t *p = bytes;
    uint32_t c = ~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        word ^= c; // little-endian hosts only (x86_64, aarch64)
        c = table[7][word & 0xFF] ^ table[6][(word >> 8) & 0xFF] ^
            table[5][(word >> 16) & 0xFF] ^ table[4][(word >> 24) & 0xFF] ^
            table[3][(word >> 32) & 0xFF] ^ table[2][(word >> 40) & 0xFF] ^
            table[1][(word >> 48) & 0xFF] ^ table[0][word >> 56];
        p += 8;
        length -= 8;
    }
    while (length--) {
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xFF];
    }
    return ~c;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2")))
static uint32_t extend_sse42(uint32_t crc, const void *bytes, size_t length) {
    const uint8_t *p = bytes;
    uint64_t c = (uint32_t)~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        length -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (length--) {
        c32 = _mm_crc32_u8(c32, *p++);
    }
    return ~c32;
}

int ccrc32c_hardware_available(void) {
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}

uint32_t ccrc32c_extend(uint32_t crc, const void *bytes, size_t length) {
    static int hardware = -1;
    if (hardware < 0) {
        hardware = ccrc32c_hardware_available();
    }
    return hardware ? extend_sse42(crc, bytes, length) : ccrc32c_extend_portable(crc, bytes, length);
}
#else
int ccrc32c_hardware_available(void) { return 0; }

uint32_t ccrc32c_extend(uint32_t crc, const void *bytes, size_t length) {
    return ccrc32c_extend_portable(crc, bytes, length);
}
#endif
