#ifndef FASHION_CRC32C_H
#define FASHION_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* 1 when the CPU has the SSE4.2 CRC32 instruction (whose polynomial is CRC-32C's), else 0. */
int fashion_crc32c_hardware_available(void);

/* Advances a raw (not inverted) CRC-32C register over `count` bytes with the CRC32 instruction.
   Only call it when fashion_crc32c_hardware_available() said 1; elsewhere it returns `reg` unchanged. */
uint32_t fashion_crc32c_advance_hardware(uint32_t reg, const void *bytes, size_t count);

#endif
