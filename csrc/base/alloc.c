#include <stdint.h>
#include <stdlib.h>

#include "alloc.h"

void *mnv3_alloc_aligned(size_t bytes, void **raw) {
    unsigned char *p;
    *raw = NULL;
    if (bytes > SIZE_MAX - MNV3_ALLOC_ALIGNMENT) return NULL;
    p = (unsigned char *)malloc(bytes + MNV3_ALLOC_ALIGNMENT);
    if (!p) return NULL;
    *raw = p;
    return p + (MNV3_ALLOC_ALIGNMENT - ((uintptr_t)p & (MNV3_ALLOC_ALIGNMENT - 1u)));
}
