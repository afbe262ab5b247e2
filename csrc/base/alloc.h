/* The library's only heap allocations outside the caller's arena (model weights, file
 * copies, packed weights) are aligned blocks from here, never made during inference. */
#ifndef MNV3_ALLOC_H
#define MNV3_ALLOC_H

#include <stddef.h>

/* Tensors, packed panels and arena regions start on cache lines. */
#define MNV3_ALLOC_ALIGNMENT 64u

/* malloc'ed block of `bytes` aligned to MNV3_ALLOC_ALIGNMENT; *raw receives the pointer to
 * free(). NULL (and *raw NULL) when the request cannot be met. */
void *mnv3_alloc_aligned(size_t bytes, void **raw);

#endif
