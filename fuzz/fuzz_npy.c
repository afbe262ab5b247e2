/* libFuzzer target: the .npy parser on arbitrary bytes; whatever it accepts must write back
 * and parse to the same array. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mnv3_npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mnv3_npy_array a, b;
    mnv3_error err;
    size_t n = 0;
    uint8_t *buf;
    mnv3_status st = mnv3_npy_parse(data, size, &a, &err);
    if (st != MNV3_OK) {
        if (a.data || err.status != st || !err.message[0]) abort();
        return 0;
    }
    if (mnv3_npy_write_memory(a.dtype, a.ndim, a.shape, a.data, NULL, 0, &n, NULL) != MNV3_OK)
        abort();
    buf = (uint8_t *)malloc(n);
    if (buf) {
        if (mnv3_npy_write_memory(a.dtype, a.ndim, a.shape, a.data, buf, n, &n, NULL) != MNV3_OK ||
            mnv3_npy_parse(buf, n, &b, NULL) != MNV3_OK)
            abort();
        if (b.count != a.count || b.ndim != a.ndim ||
            memcmp(b.data, a.data, a.count * mnv3_npy_dtype_size(a.dtype)) != 0)
            abort();
        mnv3_npy_free(&b);
        free(buf);
    }
    mnv3_npy_free(&a);
    return 0;
}
