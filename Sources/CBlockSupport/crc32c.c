// CRC32C: the checksum of every on-disk structure (superblock slots, WAL records).
// Hardware path: SSE4.2 `crc32` over 8 bytes at a time, three streams at once for long
// inputs. Portable path: slicing-by-8 tables.
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
#include <immintrin.h>

// The `crc32` instruction has a latency of 3 cycles and a throughput of 1 per cycle, so one
// dependent chain uses a third of it. Long inputs are cut into three streams CRCed side by
// side and joined: for the raw register r, crc(r, A || B) = shift_|B|(crc(r, A)) ^ crc(0, B),
// where shift_n (the effect of n zero bytes) is linear and so a lookup in four byte tables.
#define CRC_LONG_BYTES 1024
#define CRC_SHORT_BYTES 128

static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

static inline uint64_t load64(const uint8_t *p) {
    uint64_t word;
    memcpy(&word, p, 8);
    return word;
}

__attribute__((target("sse4.2")))
static uint32_t crc_of_zeros(uint32_t reg, size_t length) {
    uint64_t c = reg;
    for (size_t done = 0; done < length; done += 8) c = _mm_crc32_u64(c, 0);
    return (uint32_t)c;
}

static void build_shift_tables(void) {
    for (int k = 0; k < 4; k++) {
        for (uint32_t v = 0; v < 256; v++) {
            shift_long[k][v] = crc_of_zeros(v << (8 * k), CRC_LONG_BYTES);
            shift_short[k][v] = crc_of_zeros(v << (8 * k), CRC_SHORT_BYTES);
        }
    }
}

static inline uint32_t shift(const uint32_t table[4][256], uint32_t reg) {
    return table[0][reg & 0xFF] ^ table[1][(reg >> 8) & 0xFF] ^ table[2][(reg >> 16) & 0xFF] ^ table[3][reg >> 24];
}

// Three streams of `stream` bytes each from p, joined into the register c.
__attribute__((target("sse4.2")))
static inline uint64_t crc_three_streams(uint64_t c, const uint8_t *p, size_t stream, const uint32_t table[4][256]) {
    uint64_t c1 = 0, c2 = 0;
    for (size_t i = 0; i < stream; i += 8) {
        c = _mm_crc32_u64(c, load64(p + i));
        c1 = _mm_crc32_u64(c1, load64(p + stream + i));
        c2 = _mm_crc32_u64(c2, load64(p + 2 * stream + i));
    }
    c = shift(table, (uint32_t)c) ^ (uint32_t)c1;
    return shift(table, (uint32_t)c) ^ (uint32_t)c2;
}

__attribute__((target("sse4.2")))
static uint32_t extend_sse42(uint32_t crc, const void *bytes, size_t length) {
    const uint8_t *p = bytes;
    uint64_t c = (uint32_t)~crc;
    if (length >= 3 * CRC_SHORT_BYTES) pthread_once(&shift_once, build_shift_tables);
    while (length >= 3 * CRC_LONG_BYTES) {
        c = crc_three_streams(c, p, CRC_LONG_BYTES, shift_long);
        p += 3 * CRC_LONG_BYTES;
        length -= 3 * CRC_LONG_BYTES;
    }
    while (length >= 3 * CRC_SHORT_BYTES) {
        c = crc_three_streams(c, p, CRC_SHORT_BYTES, shift_short);
        p += 3 * CRC_SHORT_BYTES;
        length -= 3 * CRC_SHORT_BYTES;
    }
    while (length >= 8) {
        c = _mm_crc32_u64(c, load64(p));
        p += 8;
        length -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (length--) {
        c32 = _mm_crc32_u8(c32, *p++);
    }
    return ~c32;
}

// Non-temporal copy: the destination (the WAL ring in memory) is next read by the device and,
// much later, by the write-back, so its lines need not be read in and kept in the cache.
__attribute__((target("sse2")))
static void copy_streaming(uint8_t *dst, const uint8_t *src, size_t length) {
    size_t head = (size_t)(-(uintptr_t)dst & 15);
    if (head > length) head = length;
    memcpy(dst, src, head);
    dst += head;
    src += head;
    length -= head;
    for (; length >= 64; length -= 64, dst += 64, src += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)src);
        __m128i b = _mm_loadu_si128((const __m128i *)(src + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(src + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(src + 48));
        _mm_stream_si128((__m128i *)dst, a);
        _mm_stream_si128((__m128i *)(dst + 16), b);
        _mm_stream_si128((__m128i *)(dst + 32), c);
        _mm_stream_si128((__m128i *)(dst + 48), d);
    }
    memcpy(dst, src, length);
    _mm_sfence();
}

uint32_t ccrc32c_copy(uint32_t crc, void *destination, const void *source, size_t length) {
    uint32_t result = ccrc32c_extend(crc, source, length);
    if (length >= 1024) {
        copy_streaming(destination, source, length);
    } else {
        memcpy(destination, source, length);
    }
    return result;
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

uint32_t ccrc32c_copy(uint32_t crc, void *destination, const void *source, size_t length) {
    memcpy(destination, source, length);
    return ccrc32c_extend_portable(crc, source, length);
}
#endif
