/* Arena layout from one declarative list of regions. The same list is measured (no base)
 * and then placed (a base), by one routine, so the two can never disagree; every size is
 * overflow-checked, so a request that cannot be addressed fails instead of wrapping. */
#ifndef MNV3_ARENA_H
#define MNV3_ARENA_H

#include <stddef.h>
#include "base/status.h"

typedef enum mnv3_arena_part {
    MNV3_PART_CONTEXT = 0,       /* the context structure, step table, thread pool */
    MNV3_PART_SCRATCH = 1,       /* per-thread workspaces, rings, small vectors */
    MNV3_PART_ACTIVATIONS = 2,   /* lifetime-planned activation buffers */
    MNV3_PART_COUNT = 3
} mnv3_arena_part;

typedef struct mnv3_region {
    const char *name;            /* for error messages */
    mnv3_arena_part part;
    size_t count, size;          /* count elements of size bytes */
    void **at;                   /* receives the address when placing */
} mnv3_region;

/* Regions must come in part order. Each starts on MNV3_ARENA_ALIGNMENT; each part's bytes
 * include the padding up to the next part. With base == NULL only measures. */
mnv3_status mnv3_arena_layout(const mnv3_region *regions, uint32_t count, unsigned char *base,
                              size_t part_bytes[MNV3_PART_COUNT], size_t *total,
                              mnv3_error *error);

#endif
