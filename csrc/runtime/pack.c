/* Model-owned packed weights: one path for every precision, the row of each conv's role
 * packing its weights. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/checked.h"
#include "layer.h"
#include "pack.h"

struct mnv3_packed_weights {
    mnv3_packed_weights *next;
    const mnv3_row *rows[MNV3_ROW_KINDS]; /* the rows packed for */
    void *raw;                    /* the allocation (64-byte aligned inside) */
    uint32_t count;
    const mnv3_conv *conv[MNV3_MAX_CONVS];
    const void *weight[MNV3_MAX_CONVS];
    size_t weight_bytes[MNV3_MAX_CONVS];
};

/* Each packed tensor starts on a cache line. */
static int add_aligned(size_t *total, size_t bytes) {
    size_t up;
    return bytes != SIZE_MAX && mnv3_size_align(bytes, 64, &up) && mnv3_size_add(*total, up, total);
}

static const mnv3_row *row_for(const mnv3_model *m, const mnv3_kernels *k, const mnv3_conv *c,
                               mnv3_layer *l) {
    mnv3_layer_of(m, c, l);
    return k->row[l->kind];
}

mnv3_status mnv3_packed_bytes(const mnv3_model *m, const mnv3_kernels *k, size_t *bytes,
                              mnv3_error *e) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    const uint32_t n = mnv3_model_convs((mnv3_model *)m, list);
    size_t total = 0;
    uint32_t i;
    for (i = 0; i < n; ++i) {
        mnv3_layer l;
        const mnv3_row *row = row_for(m, k, list[i], &l);
        if (!add_aligned(&total, row->packed_bytes(row, &l)))
            return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW,
                                  "packed weights for '%s' do not fit in memory", row->name);
    }
    *bytes = total;
    return MNV3_OK;
}

static int same_rows(const mnv3_packed_weights *p, const mnv3_kernels *k) {
    return memcmp(p->rows, k->row, sizeof p->rows) == 0;
}

static mnv3_status pack_model(const mnv3_model *m, const mnv3_kernels *k,
                              mnv3_packed_weights **out, mnv3_error *e) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    const uint32_t n = mnv3_model_convs((mnv3_model *)m, list);
    mnv3_packed_weights *p;
    unsigned char *base = NULL;
    size_t bytes, at = 0;
    uint32_t i;
    MNV3_TRY(mnv3_packed_bytes(m, k, &bytes, e));
    p = (mnv3_packed_weights *)calloc(1, sizeof *p);
    if (!p) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "packed weight table");
    if (bytes) {
        base = (unsigned char *)mnv3_alloc_aligned(bytes, &p->raw);
        if (!base) {
            free(p);
            return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "%zu bytes of packed weights",
                                  bytes);
        }
    }
    memcpy(p->rows, k->row, sizeof p->rows);
    p->count = n;
    for (i = 0; i < n; ++i) {
        const mnv3_conv *c = list[i];
        mnv3_layer l;
        const mnv3_row *row = row_for(m, k, c, &l);
        const size_t sz = row->packed_bytes(row, &l);
        p->conv[i] = c;
        if (sz) {
            row->pack(row, &l, base + at);
            p->weight[i] = base + at;
            p->weight_bytes[i] = sz;
            at += (sz + 63u) & ~(size_t)63u;
        } else {
            p->weight[i] = c->weight; /* the row reads the canonical layout in place */
            p->weight_bytes[i] = mnv3_conv_weight_count(c) * mnv3_dtype_size(c->weight_type);
        }
    }
    *out = p;
    return MNV3_OK;
}

static void free_all(mnv3_packed_weights *list) {
    while (list) {
        mnv3_packed_weights *next = list->next;
        free(list->raw);
        free(list);
        list = next;
    }
}

/* The list and its lock belong to the model but change behind its const: they are a
 * cache of what the model's weights look like to each set of rows. The lock is a spin lock
 * on C11-style atomics: the exchange that takes it acquires, the store that drops it
 * releases (so the list and the packed bytes are complete for the next holder), and the
 * waiting loop reads the word atomically too. */
static void lock(volatile int *l) {
    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
        while (__atomic_load_n(l, __ATOMIC_RELAXED)) {
        }
}

static void unlock(volatile int *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

mnv3_status mnv3_packed_get(const mnv3_model *m, const mnv3_kernels *k,
                            const mnv3_packed_weights **out, mnv3_error *e) {
    mnv3_model *mm = (mnv3_model *)m;
    mnv3_packed_weights *p;
    mnv3_status st = MNV3_OK;
    lock(&mm->packed_lock);
    for (p = mm->packed; p; p = p->next)
        if (same_rows(p, k)) break;
    if (!p) {
        st = pack_model(m, k, &p, e);
        if (st == MNV3_OK) {
            p->next = mm->packed;
            mm->packed = p;
            mm->packed_free = free_all;
        }
    }
    unlock(&mm->packed_lock);
    *out = st == MNV3_OK ? p : NULL;
    return st;
}

static uint32_t find(const mnv3_packed_weights *p, const mnv3_conv *c) {
    uint32_t i;
    for (i = 0; i < p->count; ++i)
        if (p->conv[i] == c) return i;
    MNV3_ASSERT(!"conv of another model");
    return 0;
}

const void *mnv3_packed_weight(const mnv3_packed_weights *p, const mnv3_conv *c) {
    return p->weight[find(p, c)];
}

size_t mnv3_packed_weight_bytes(const mnv3_packed_weights *p, const mnv3_conv *c) {
    return p->weight_bytes[find(p, c)];
}

uint32_t mnv3_packed_set_count(const mnv3_model *m) {
    mnv3_model *mm = (mnv3_model *)m;
    const mnv3_packed_weights *p;
    uint32_t n = 0;
    lock(&mm->packed_lock);
    for (p = mm->packed; p; p = p->next) ++n;
    unlock(&mm->packed_lock);
    return n;
}
