#include "arena.h"
#include "base/checked.h"

mnv3_status mnv3_arena_layout(const mnv3_region *r, uint32_t count, unsigned char *base,
                              size_t part_bytes[MNV3_PART_COUNT], size_t *total,
                              mnv3_error *e) {
    size_t used = 0, part_start = 0, bytes;
    uint32_t i, part = 0;
    for (i = 0; i < MNV3_PART_COUNT; ++i) part_bytes[i] = 0;
    for (i = 0; i <= count; ++i) {
        const uint32_t next = i < count ? (uint32_t)r[i].part : MNV3_PART_COUNT;
        MNV3_ASSERT(next >= part);
        while (part < next) { /* close the parts before this region's */
            if (!mnv3_size_align(used, MNV3_ARENA_ALIGNMENT, &used)) goto overflow;
            part_bytes[part++] = used - part_start;
            part_start = used;
        }
        if (i == count) break;
        if (!mnv3_size_mul(r[i].count, r[i].size, &bytes) ||
            !mnv3_size_align(used, MNV3_ARENA_ALIGNMENT, &used) ||
            !mnv3_size_add(used, bytes, &used)) {
            return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW,
                                  "arena region '%s' (%zu x %zu bytes) does not fit in memory",
                                  r[i].name, r[i].count, r[i].size);
        }
        if (base && r[i].at) *r[i].at = base + (used - bytes);
    }
    *total = used;
    return MNV3_OK;
overflow:
    return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "the arena does not fit in memory");
}
