/* Whole-file reading and writing shared by the model and .npy loaders, with errors that
 * name the file. */
#ifndef MNV3_FILE_IO_H
#define MNV3_FILE_IO_H

#include <stddef.h>
#include <stdint.h>
#include "mnv3.h"

/* Regular files whose size reads as 0 (Linux /proc and /sys pseudo-files) are read to end
 * of file, up to this many bytes; a longer one is refused. */
#define MNV3_UNSIZED_FILE_MAX ((size_t)256 << 20)

/* Reads all of `path` into one 64-byte-aligned heap block. *data points at the bytes,
 * *raw is what to free(). Only regular files are read: a directory, FIFO, device or socket
 * is refused with MNV3_ERR_IO and a message naming what it is (the file is opened without
 * blocking, so a FIFO without a writer cannot hang the call). Fails if the file changes
 * size while being read. */
mnv3_status mnv3_read_whole_file(const char *path, uint8_t **data, void **raw, size_t *size,
                                 mnv3_error *error);

/* Writes `size` bytes to `path`, through a new file in the same directory that is renamed
 * to `path` once it is complete and synced: a failed save leaves the old file unchanged (or
 * no file), never a truncated one. Only a regular file is replaced (a symbolic link to one
 * is followed, and keeps pointing at it; the replaced file keeps its permissions); a
 * directory, FIFO, device or socket is refused with MNV3_ERR_IO and a message naming what
 * it is, without opening it (so a FIFO without a reader cannot hang the call). */
mnv3_status mnv3_write_whole_file(const char *path, const void *data, size_t size,
                                  mnv3_error *error);

#endif
