/* Whole-file reading and writing shared by the model and .npy loaders, with errors that
 * name the file. */
#ifndef MNV3_FILE_IO_H
#define MNV3_FILE_IO_H

#include <stddef.h>
#include <stdint.h>
#include "mnv3.h"

/* Reads all of `path` into one 64-byte-aligned heap block. *data points at the bytes,
 * *raw is what to free(). Fails if the file changes size while being read. */
mnv3_status mnv3_read_whole_file(const char *path, uint8_t **data, void **raw, size_t *size,
                                 mnv3_error *error);

/* Writes `size` bytes to `path`; on a failed write the partial file is removed. */
mnv3_status mnv3_write_whole_file(const char *path, const void *data, size_t size,
                                  mnv3_error *error);

#endif
