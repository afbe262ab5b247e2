/* Internal helpers of the .mnv3 reader/writer that other library files (and the fuzzers)
 * may share. */
#ifndef MNV3_MODEL_FILE_H
#define MNV3_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32/ISO-HDLC. Start with crc = 0 and feed the result back in to continue a running
 * checksum over several pieces. */
uint32_t mnv3_crc32(uint32_t crc, const void *data, size_t len);

/* Non-zero on a little-endian host (the file's byte order). */
int mnv3_host_is_little_endian(void);

/* Reverses the bytes of each of `words` consecutive 4-byte words (little <-> big endian). */
void mnv3_swap_words(uint8_t *p, size_t words);

/* Byte offsets of the fixed header fields (docs/FORMAT.md). */
#define MNV3_FILE_HEADER_SIZE 64u
#define MNV3_FILE_SECTION_ENTRY_SIZE 24u
#define MNV3_FILE_MAX_SECTIONS 16u
#define MNV3_FILE_MAX_TENSORS 4096u
#define MNV3_FILE_CONV_SIZE 80u
#define MNV3_FILE_PREPROCESS_SIZE 48u
#define MNV3_FILE_CRC_OFFSET 40u

#endif
