/*
 * mnv3_npy — reading and writing NumPy .npy files (format versions 1.0, 2.0 and 3.0) for
 * the element types the library's tools exchange: little-endian float32 ('<f4'), uint8
 * ('|u1', also accepted as '<u1') and int8 ('|i1', also '<i1'; quantized tensors). Arrays are C order; Fortran order is refused.
 * A dimension may be any size_t value, and a shape with a 0 dimension holds no elements
 * however large the others; what the writer writes, the reader reads back. The reader
 * refuses a dimension or an element count that does not fit in a size_t.
 * Part of libmnv3 (plain C99, no dependencies); errors use the mnv3_status codes.
 */
#ifndef MNV3_NPY_H
#define MNV3_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "mnv3.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MNV3_NPY_MAX_DIMS 8

typedef enum mnv3_npy_dtype {
    MNV3_NPY_FLOAT32 = 1,  /* '<f4' */
    MNV3_NPY_UINT8 = 2,    /* '|u1' */
    MNV3_NPY_INT8 = 3      /* '|i1' */
} mnv3_npy_dtype;

typedef struct mnv3_npy_array {
    mnv3_npy_dtype dtype;
    uint32_t ndim;                     /* 0 (a scalar) .. MNV3_NPY_MAX_DIMS */
    size_t shape[MNV3_NPY_MAX_DIMS];   /* unused entries are 0 */
    size_t count;                      /* elements: product of shape, 1 when ndim is 0 */
    void *data;                        /* count elements in host byte order, 64-byte aligned;
                                        * never NULL after a successful read */
    void *allocation;                  /* owned by the array; release with mnv3_npy_free() */
} mnv3_npy_array;

/* Bytes per element of a dtype (4 or 1), 0 for an unknown value. */
MNV3_API size_t mnv3_npy_dtype_size(mnv3_npy_dtype dtype);

/* Parses a complete .npy image. The data is copied, so `bytes` may be released after. */
MNV3_API mnv3_status mnv3_npy_parse(const void *bytes, size_t size, mnv3_npy_array *out,
                                    mnv3_error *error);
/* Reads a regular file; anything else (directory, FIFO, device, socket) is MNV3_ERR_IO. */
MNV3_API mnv3_status mnv3_npy_read_file(const char *path, mnv3_npy_array *out,
                                        mnv3_error *error);
/* Releases what a read allocated and zeroes the struct. NULL and zeroed arrays are fine. */
MNV3_API void mnv3_npy_free(mnv3_npy_array *array);

/* Serialises `data` (product of shape elements, host byte order, C order). Call with
 * buffer == NULL to learn *size. */
MNV3_API mnv3_status mnv3_npy_write_memory(mnv3_npy_dtype dtype, uint32_t ndim,
                                           const size_t *shape, const void *data, void *buffer,
                                           size_t capacity, size_t *size, mnv3_error *error);
/* Writes as mnv3_model_save_file() does: through a temporary file renamed into place, a
 * directory, FIFO, device or socket refused with MNV3_ERR_IO without opening it. */
MNV3_API mnv3_status mnv3_npy_write_file(const char *path, mnv3_npy_dtype dtype, uint32_t ndim,
                                         const size_t *shape, const void *data,
                                         mnv3_error *error);

#ifdef __cplusplus
}
#endif
#endif /* MNV3_NPY_H */
