/* Model-owned packed weights. The role of a conv in the network decides which row packs it:
 * the stem is a dense conv, expansions, projections and the last conv are pointwise, the
 * depthwise convs are depthwise, and squeeze-excite and classifier layers are fully
 * connected. */
#include <stdlib.h>
#include <string.h>

#include "base/checked.h"
#include "pack.h"
#include "base/alloc.h"

struct mnv3_packed_weights {
    mnv3_packed_weights *next;
    const mnv3_kernel_set *set;
    const void *rows[8];          /* the rows packed for: one set's f32 or int8 rows */
    size_t bytes;
    void *raw;                    /* the allocation (64-byte aligned inside) */
    uint32_t count;
    const mnv3_conv *conv[MNV3_MAX_CONVS];
    const void *weight[MNV3_MAX_CONVS];
    size_t weight_bytes[MNV3_MAX_CONVS];
};

typedef enum conv_role { ROLE_CONV, ROLE_POINTWISE, ROLE_DEPTHWISE, ROLE_FC } conv_role;

static conv_role role_of(const mnv3_model *m, const mnv3_conv *c) {
    uint32_t b;
    if (c == &m->stem) return ROLE_CONV;
    if (c == &m->last_conv) return ROLE_POINTWISE;
    for (b = 0; b < m->num_blocks; ++b) {
        const mnv3_block *k = &m->blocks[b];
        if (c == &k->depthwise) return ROLE_DEPTHWISE;
        if (c == &k->expand || c == &k->project) return ROLE_POINTWISE;
    }
    return ROLE_FC; /* SE reduce/expand, head */
}

/* An int8 conv as the int8 rows pack it. */
static mnv3_q8_weights q8_weights(const mnv3_conv *c) {
    mnv3_q8_weights w;
    w.weight = (const int8_t *)c->weight;
    w.bias = c->q8.bias;
    w.in_zp = c->q8.input_zero_point;
    w.weight_zp = c->q8.weight_zero_point;
    w.in_channels = c->in_channels;
    w.out_channels = c->out_channels;
    w.kernel = c->kernel;
    return w;
}

static size_t q8_packed_size(const mnv3_kernels *k, conv_role role, const mnv3_conv *c) {
    const mnv3_q8_weights w = q8_weights(c);
    switch (role) {
    case ROLE_CONV: return k->q8_conv->packed_bytes(&w);
    case ROLE_POINTWISE: return k->q8_pointwise->packed_bytes(&w);
    case ROLE_DEPTHWISE: return k->q8_depthwise->packed_bytes(&w);
    case ROLE_FC:
    default: return k->q8_fc->packed_bytes(&w);
    }
}

static void q8_pack_one(const mnv3_kernels *k, conv_role role, const mnv3_conv *c, void *dst) {
    const mnv3_q8_weights w = q8_weights(c);
    switch (role) {
    case ROLE_CONV: k->q8_conv->pack(&w, dst); break;
    case ROLE_POINTWISE: k->q8_pointwise->pack(&w, dst); break;
    case ROLE_DEPTHWISE: k->q8_depthwise->pack(&w, dst); break;
    case ROLE_FC:
    default: k->q8_fc->pack(&w, dst); break;
    }
}

static size_t packed_size(const mnv3_kernels *k, conv_role role, const mnv3_conv *c) {
    if (k->q8_set) return q8_packed_size(k, role, c);
    switch (role) {
    case ROLE_CONV: return k->conv->packed_bytes(c->in_channels, c->out_channels, c->kernel);
    case ROLE_POINTWISE: return k->pointwise->packed_bytes(c->in_channels, c->out_channels);
    case ROLE_DEPTHWISE: return k->depthwise->packed_bytes(c->out_channels, c->kernel);
    case ROLE_FC:
    default: return k->fc->packed_bytes(c->in_channels, c->out_channels);
    }
}

static void pack_one(const mnv3_kernels *k, conv_role role, const mnv3_conv *c, void *dst) {
    if (k->q8_set) {
        q8_pack_one(k, role, c, dst);
        return;
    }
    switch (role) {
    case ROLE_CONV: k->conv->pack(c->weight, c->in_channels, c->out_channels, c->kernel, dst); break;
    case ROLE_POINTWISE: k->pointwise->pack(c->weight, c->in_channels, c->out_channels, dst); break;
    case ROLE_DEPTHWISE: k->depthwise->pack(c->weight, c->out_channels, c->kernel, dst); break;
    case ROLE_FC:
    default: k->fc->pack(c->weight, c->in_channels, c->out_channels, dst); break;
    }
}

/* Each packed tensor starts on a cache line. */
static int add_aligned(size_t *total, size_t bytes) {
    size_t up;
    return mnv3_size_align(bytes, 64, &up) && mnv3_size_add(*total, up, total);
}

mnv3_status mnv3_packed_bytes(const mnv3_model *m, const mnv3_kernels *k, size_t *bytes,
                              mnv3_error *e) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    uint32_t n = mnv3_model_convs((mnv3_model *)m, list), i;
    size_t total = 0;
    for (i = 0; i < n; ++i)
        if (!add_aligned(&total, packed_size(k, role_of(m, list[i]), list[i])))
            return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW,
                                  "packed weights for '%s' do not fit in memory", k->set->name);
    *bytes = total;
    return MNV3_OK;
}

static int same_rows(const mnv3_packed_weights *p, const mnv3_kernels *k) {
    return p->set == k->set && p->rows[0] == (const void *)k->conv &&
           p->rows[1] == (const void *)k->pointwise && p->rows[2] == (const void *)k->depthwise &&
           p->rows[3] == (const void *)k->fc && p->rows[4] == (const void *)k->q8_conv &&
           p->rows[5] == (const void *)k->q8_pointwise &&
           p->rows[6] == (const void *)k->q8_depthwise && p->rows[7] == (const void *)k->q8_fc;
}

static mnv3_status pack_model(const mnv3_model *m, const mnv3_kernels *k,
                              mnv3_packed_weights **out, mnv3_error *e) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    uint32_t n = mnv3_model_convs((mnv3_model *)m, list), i;
    mnv3_packed_weights *p;
    unsigned char *base = NULL;
    size_t bytes, at = 0;
    MNV3_TRY(mnv3_packed_bytes(m, k, &bytes, e));
    p = (mnv3_packed_weights *)calloc(1, sizeof *p);
    if (!p) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "packed weight table");
    if (bytes) {
        base = (unsigned char *)mnv3_alloc_aligned(bytes, &p->raw);
        if (!base) {
            free(p);
            return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY,
                                  "%zu bytes of packed weights for '%s'", bytes, k->set->name);
        }
    }
    p->set = k->set;
    p->rows[0] = k->conv;
    p->rows[1] = k->pointwise;
    p->rows[2] = k->depthwise;
    p->rows[3] = k->fc;
    p->rows[4] = k->q8_conv;
    p->rows[5] = k->q8_pointwise;
    p->rows[6] = k->q8_depthwise;
    p->rows[7] = k->q8_fc;
    p->bytes = bytes;
    p->count = n;
    for (i = 0; i < n; ++i) {
        const mnv3_conv *c = list[i];
        const conv_role role = role_of(m, c);
        const size_t sz = packed_size(k, role, c);
        p->conv[i] = c;
        if (sz) {
            pack_one(k, role, c, base + at);
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

/* The list and its lock belong to the model but change behind its const: they are a
 * cache of what the model's weights look like to each kernel set. The lock is a spin lock
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
            mm->packed_free = mnv3_packed_free_all;
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

void mnv3_packed_free_all(mnv3_packed_weights *list) {
    while (list) {
        mnv3_packed_weights *next = list->next;
        free(list->raw);
        free(list);
        list = next;
    }
}
