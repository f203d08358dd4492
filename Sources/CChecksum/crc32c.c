#include "crc32c.h"

#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>

int fashion_crc32c_hardware_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}

/* Compiled for SSE4.2 on its own, so the rest of the build stays baseline x86-64. One dependent chain of
   8-byte steps: journal frames are a few hundred bytes, too short for interleaved streams to pay off. */
__attribute__((target("sse4.2"))) uint32_t fashion_crc32c_advance_hardware(uint32_t reg, const void *bytes,
                                                                           size_t count) {
    const unsigned char *p = bytes;
    uint64_t crc = reg;
    while (count >= 8) {
        uint64_t word;
        memcpy(&word, p, 8); /* unaligned load, little-endian as the CRC wants */
        crc = _mm_crc32_u64(crc, word);
        p += 8;
        count -= 8;
    }
    uint32_t crc32 = (uint32_t)crc;
    while (count > 0) {
        crc32 = _mm_crc32_u8(crc32, *p++);
        count--;
    }
    return crc32;
}

#else

int fashion_crc32c_hardware_available(void) { return 0; }

uint32_t fashion_crc32c_advance_hardware(uint32_t reg, const void *bytes, size_t count) {
    (void)bytes;
    (void)count;
    return reg;
}

#endif
