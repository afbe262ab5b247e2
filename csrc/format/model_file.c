/* Reader and writer of the .mnv3 model file (docs/FORMAT.md).
 *
 * The reader treats every byte as hostile: fields are decoded byte by byte, every offset
 * and size is checked in 64-bit arithmetic before use, and no pointer into the image is
 * formed until the range behind it has been proven to lie inside the image. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/half.h"
#include "model/model.h"
#include "file_io.h"
#include "model_file.h"
#include "base/alloc.h"

/* The format stores IEEE-754 binary32; a platform with another float cannot read it. */
typedef char mnv3_float_is_binary32[(sizeof(float) == 4 && FLT_MANT_DIG == 24 &&
                                     FLT_MAX_EXP == 128) ? 1 : -1];

static const uint8_t file_magic[8] = {0x4D, 0x4E, 0x56, 0x33, 0x00, 0x4D, 0x44, 0x4C};

enum {
    SEC_NETWORK = 1,
    SEC_TENSORS = 2,
    SEC_PREPROCESS = 3,
    SEC_LABELS = 4,
    SEC_QUANT = 5,
    SEC_TYPES = 6
};

#define NO_TENSOR 0xFFFFFFFFu
#define BYTE_ORDER_MARK 0x01020304u
#define DTYPE_FLOAT32 1u
#define DTYPE_INT8 2u
#define DTYPE_INT32 3u
#define DTYPE_FLOAT16 4u
#define QUANT_HEADER_SIZE 24u
#define QUANT_BLOCK_SIZE 32u
#define QUANT_CONV_SIZE 48u

static uint64_t dtype_bytes(uint32_t dtype) {
    return dtype == DTYPE_INT8 ? 1u : dtype == DTYPE_FLOAT16 ? 2u : 4u;
}

/* ------------------------------------------------------------------------------------ */
/* CRC-32 and byte order                                                                 */
/* ------------------------------------------------------------------------------------ */

/* A constant table rather than a lazily built one: the library keeps no mutable globals. */
static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xEE0E612Cu, 0x990951BAu, 0x076DC419u, 0x706AF48Fu,
    0xE963A535u, 0x9E6495A3u, 0x0EDB8832u, 0x79DCB8A4u, 0xE0D5E91Eu, 0x97D2D988u,
    0x09B64C2Bu, 0x7EB17CBDu, 0xE7B82D07u, 0x90BF1D91u, 0x1DB71064u, 0x6AB020F2u,
    0xF3B97148u, 0x84BE41DEu, 0x1ADAD47Du, 0x6DDDE4EBu, 0xF4D4B551u, 0x83D385C7u,
    0x136C9856u, 0x646BA8C0u, 0xFD62F97Au, 0x8A65C9ECu, 0x14015C4Fu, 0x63066CD9u,
    0xFA0F3D63u, 0x8D080DF5u, 0x3B6E20C8u, 0x4C69105Eu, 0xD56041E4u, 0xA2677172u,
    0x3C03E4D1u, 0x4B04D447u, 0xD20D85FDu, 0xA50AB56Bu, 0x35B5A8FAu, 0x42B2986Cu,
    0xDBBBC9D6u, 0xACBCF940u, 0x32D86CE3u, 0x45DF5C75u, 0xDCD60DCFu, 0xABD13D59u,
    0x26D930ACu, 0x51DE003Au, 0xC8D75180u, 0xBFD06116u, 0x21B4F4B5u, 0x56B3C423u,
    0xCFBA9599u, 0xB8BDA50Fu, 0x2802B89Eu, 0x5F058808u, 0xC60CD9B2u, 0xB10BE924u,
    0x2F6F7C87u, 0x58684C11u, 0xC1611DABu, 0xB6662D3Du, 0x76DC4190u, 0x01DB7106u,
    0x98D220BCu, 0xEFD5102Au, 0x71B18589u, 0x06B6B51Fu, 0x9FBFE4A5u, 0xE8B8D433u,
    0x7807C9A2u, 0x0F00F934u, 0x9609A88Eu, 0xE10E9818u, 0x7F6A0DBBu, 0x086D3D2Du,
    0x91646C97u, 0xE6635C01u, 0x6B6B51F4u, 0x1C6C6162u, 0x856530D8u, 0xF262004Eu,
    0x6C0695EDu, 0x1B01A57Bu, 0x8208F4C1u, 0xF50FC457u, 0x65B0D9C6u, 0x12B7E950u,
    0x8BBEB8EAu, 0xFCB9887Cu, 0x62DD1DDFu, 0x15DA2D49u, 0x8CD37CF3u, 0xFBD44C65u,
    0x4DB26158u, 0x3AB551CEu, 0xA3BC0074u, 0xD4BB30E2u, 0x4ADFA541u, 0x3DD895D7u,
    0xA4D1C46Du, 0xD3D6F4FBu, 0x4369E96Au, 0x346ED9FCu, 0xAD678846u, 0xDA60B8D0u,
    0x44042D73u, 0x33031DE5u, 0xAA0A4C5Fu, 0xDD0D7CC9u, 0x5005713Cu, 0x270241AAu,
    0xBE0B1010u, 0xC90C2086u, 0x5768B525u, 0x206F85B3u, 0xB966D409u, 0xCE61E49Fu,
    0x5EDEF90Eu, 0x29D9C998u, 0xB0D09822u, 0xC7D7A8B4u, 0x59B33D17u, 0x2EB40D81u,
    0xB7BD5C3Bu, 0xC0BA6CADu, 0xEDB88320u, 0x9ABFB3B6u, 0x03B6E20Cu, 0x74B1D29Au,
    0xEAD54739u, 0x9DD277AFu, 0x04DB2615u, 0x73DC1683u, 0xE3630B12u, 0x94643B84u,
    0x0D6D6A3Eu, 0x7A6A5AA8u, 0xE40ECF0Bu, 0x9309FF9Du, 0x0A00AE27u, 0x7D079EB1u,
    0xF00F9344u, 0x8708A3D2u, 0x1E01F268u, 0x6906C2FEu, 0xF762575Du, 0x806567CBu,
    0x196C3671u, 0x6E6B06E7u, 0xFED41B76u, 0x89D32BE0u, 0x10DA7A5Au, 0x67DD4ACCu,
    0xF9B9DF6Fu, 0x8EBEEFF9u, 0x17B7BE43u, 0x60B08ED5u, 0xD6D6A3E8u, 0xA1D1937Eu,
    0x38D8C2C4u, 0x4FDFF252u, 0xD1BB67F1u, 0xA6BC5767u, 0x3FB506DDu, 0x48B2364Bu,
    0xD80D2BDAu, 0xAF0A1B4Cu, 0x36034AF6u, 0x41047A60u, 0xDF60EFC3u, 0xA867DF55u,
    0x316E8EEFu, 0x4669BE79u, 0xCB61B38Cu, 0xBC66831Au, 0x256FD2A0u, 0x5268E236u,
    0xCC0C7795u, 0xBB0B4703u, 0x220216B9u, 0x5505262Fu, 0xC5BA3BBEu, 0xB2BD0B28u,
    0x2BB45A92u, 0x5CB36A04u, 0xC2D7FFA7u, 0xB5D0CF31u, 0x2CD99E8Bu, 0x5BDEAE1Du,
    0x9B64C2B0u, 0xEC63F226u, 0x756AA39Cu, 0x026D930Au, 0x9C0906A9u, 0xEB0E363Fu,
    0x72076785u, 0x05005713u, 0x95BF4A82u, 0xE2B87A14u, 0x7BB12BAEu, 0x0CB61B38u,
    0x92D28E9Bu, 0xE5D5BE0Du, 0x7CDCEFB7u, 0x0BDBDF21u, 0x86D3D2D4u, 0xF1D4E242u,
    0x68DDB3F8u, 0x1FDA836Eu, 0x81BE16CDu, 0xF6B9265Bu, 0x6FB077E1u, 0x18B74777u,
    0x88085AE6u, 0xFF0F6A70u, 0x66063BCAu, 0x11010B5Cu, 0x8F659EFFu, 0xF862AE69u,
    0x616BFFD3u, 0x166CCF45u, 0xA00AE278u, 0xD70DD2EEu, 0x4E048354u, 0x3903B3C2u,
    0xA7672661u, 0xD06016F7u, 0x4969474Du, 0x3E6E77DBu, 0xAED16A4Au, 0xD9D65ADCu,
    0x40DF0B66u, 0x37D83BF0u, 0xA9BCAE53u, 0xDEBB9EC5u, 0x47B2CF7Fu, 0x30B5FFE9u,
    0xBDBDF21Cu, 0xCABAC28Au, 0x53B39330u, 0x24B4A3A6u, 0xBAD03605u, 0xCDD70693u,
    0x54DE5729u, 0x23D967BFu, 0xB3667A2Eu, 0xC4614AB8u, 0x5D681B02u, 0x2A6F2B94u,
    0xB40BBE37u, 0xC30C8EA1u, 0x5A05DF1Bu, 0x2D02EF8Du,
};

uint32_t mnv3_crc32(uint32_t crc, const void *data, size_t len) {
    const uint8_t *p = (const uint8_t *)data;
    crc = ~crc;
    while (len--) crc = crc_table[(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

int mnv3_host_is_little_endian(void) {
    const uint32_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static uint32_t get_u16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p) {
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

static float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t float_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void put_u16(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *p, uint64_t v) {
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static void swap_halves(uint8_t *p, size_t halves) {
    size_t i;
    for (i = 0; i < halves; ++i, p += 2) {
        const uint8_t t = p[0];
        p[0] = p[1];
        p[1] = t;
    }
}

void mnv3_swap_words(uint8_t *p, size_t words) {
    size_t i;
    for (i = 0; i < words; ++i, p += 4) {
        uint8_t t = p[0];
        p[0] = p[3];
        p[3] = t;
        t = p[1];
        p[1] = p[2];
        p[2] = t;
    }
}

/* ------------------------------------------------------------------------------------ */
/* Reader                                                                                */
/* ------------------------------------------------------------------------------------ */

/* A bounded cursor over one section. Running out of bytes is FILE_TRUNCATED: the section
 * announced a structure it does not contain. */
typedef struct cursor {
    const uint8_t *p;
    uint64_t size, pos;
    const char *section;
} cursor;

static mnv3_status need(cursor *c, uint64_t bytes, const char *what, mnv3_error *e) {
    if (bytes > c->size - c->pos)
        return mnv3_set_error(e, MNV3_ERR_FILE_TRUNCATED,
                              "%s section (%llu bytes) ends inside %s", c->section,
                              (unsigned long long)c->size, what);
    return MNV3_OK;
}

static uint32_t take_u32(cursor *c) {
    uint32_t v = get_u32(c->p + c->pos);
    c->pos += 4;
    return v;
}

static float take_f32(cursor *c) { return bits_to_float(take_u32(c)); }

static mnv3_status finish(const cursor *c, mnv3_error *e) {
    if (c->pos != c->size)
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW,
                              "%s section is %llu bytes but its content is %llu", c->section,
                              (unsigned long long)c->size, (unsigned long long)c->pos);
    return MNV3_OK;
}


static int clamp_bad(mnv3_clamp c) { return isnan(c.lo) || isnan(c.hi) || c.lo > c.hi; }

static mnv3_clamp take_clamp(cursor *c) {
    mnv3_clamp r;
    r.lo = take_f32(c);
    r.hi = take_f32(c);
    return r;
}

static mnv3_status clamp_error(const char *what, const char *which, mnv3_clamp c,
                               mnv3_error *e) {
    return mnv3_set_error(e, MNV3_ERR_BAD_LAYER, "%s: %s clamp [%g, %g] is NaN or reversed",
                          what, which, (double)c.lo, (double)c.hi);
}

/* Conv names are formatted only on failure: a load decodes hundreds of convs and
 * formatting each name would dominate the parse. */
static mnv3_status conv_error(const mnv3_model *m, const mnv3_conv *conv, mnv3_error *e,
                              mnv3_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

static mnv3_status conv_error(const mnv3_model *m, const mnv3_conv *conv, mnv3_error *e,
                              mnv3_status status, const char *fmt, ...) {
    char what[48], detail[200];
    va_list ap;
    mnv3_conv_name(m, conv, what, sizeof what);
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return mnv3_set_error(e, status, "%s: %s", what, detail);
}

/* Tensor indices of one conv, kept apart from the model until the table is read. */
typedef struct conv_refs {
    uint32_t weight, bias;
    uint32_t weight_scale, bias_scale, table;   /* quantized models */
} conv_refs;

static mnv3_status read_conv(cursor *c, mnv3_model *m, mnv3_conv *conv, conv_refs *refs,
                             mnv3_error *e) {
    uint32_t groups, flags, act;
    if (MNV3_FILE_CONV_SIZE > c->size - c->pos) {
        char what[48];
        mnv3_conv_name(m, conv, what, sizeof what);
        return need(c, MNV3_FILE_CONV_SIZE, what, e);
    }
    memset(conv, 0, sizeof *conv);
    groups = take_u32(c);
    conv->in_channels = take_u32(c);
    conv->out_channels = take_u32(c);
    conv->kernel = take_u32(c);
    conv->stride = take_u32(c);
    conv->padding_mode = (mnv3_padding_mode)take_u32(c);
    conv->pad_top = take_u32(c);
    conv->pad_left = take_u32(c);
    conv->pad_bottom = take_u32(c);
    conv->pad_right = take_u32(c);
    act = take_u32(c);
    flags = take_u32(c);
    if (groups > 1)
        return conv_error(m, conv, e, MNV3_ERR_BAD_ENUM, "groups_mode %u unknown", groups);
    if ((uint32_t)conv->padding_mode > MNV3_PAD_SAME)
        return conv_error(m, conv, e, MNV3_ERR_BAD_ENUM, "padding_mode %u unknown",
                          (uint32_t)conv->padding_mode);
    if (act > MNV3_ACT_HARD_SIGMOID)
        return conv_error(m, conv, e, MNV3_ERR_BAD_ENUM, "activation %u unknown", act);
    if (flags & ~3u)
        return conv_error(m, conv, e, MNV3_ERR_BAD_ENUM, "flags 0x%x has reserved bits set",
                          flags);
    /* SAME derives the padding from the input size: whatever pads are stored are ignored
     * and read as 0 (docs/FORMAT.md). */
    if (conv->padding_mode == MNV3_PAD_SAME)
        conv->pad_top = conv->pad_left = conv->pad_bottom = conv->pad_right = 0;
    conv->depthwise = groups;
    conv->epilogue.activation = (mnv3_activation)act;
    conv->has_bias = flags & 1u;
    conv->batchnorm_folded = (flags >> 1) & 1u;
    conv->epilogue.pre = take_clamp(c);
    conv->epilogue.post = take_clamp(c);
    if (clamp_bad(conv->epilogue.pre) || clamp_bad(conv->epilogue.post)) {
        char what[48];
        int pre = clamp_bad(conv->epilogue.pre);
        mnv3_conv_name(m, conv, what, sizeof what);
        return clamp_error(what, pre ? "pre" : "post",
                           pre ? conv->epilogue.pre : conv->epilogue.post, e);
    }
    refs->weight = take_u32(c);
    refs->bias = take_u32(c);
    if (!conv->has_bias && refs->bias != NO_TENSOR)
        return conv_error(m, conv, e, MNV3_ERR_BAD_TENSOR,
                          "has no bias but bias_tensor is %u, not 0xFFFFFFFF", refs->bias);
    if (take_u32(c) != 0 || take_u32(c) != 0)
        return conv_error(m, conv, e, MNV3_ERR_BAD_ENUM, "reserved fields are not zero");
    return MNV3_OK;
}

/* The refs array parallels mnv3_model_convs() order, which is also the decoding order. */
static mnv3_status read_network(cursor *c, mnv3_model *m, conv_refs *refs, uint32_t *nrefs,
                                mnv3_error *e) {
    uint32_t b, i, n = 0, reserved;
    MNV3_TRY(need(c, 24, "the network header", e));
    m->arch = (mnv3_arch)take_u32(c);
    m->flavor = (mnv3_flavor)take_u32(c);
    m->input_channels = take_u32(c);
    m->num_blocks = take_u32(c);
    m->num_head = take_u32(c);
    reserved = take_u32(c);
    if ((uint32_t)m->arch > MNV3_ARCH_SMALL)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "network: arch %u unknown",
                              (uint32_t)m->arch);
    if ((uint32_t)m->flavor > MNV3_FLAVOR_TFLITE)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "network: flavor %u unknown",
                              (uint32_t)m->flavor);
    if (reserved != 0)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "network: reserved field is %u, not 0",
                              reserved);
    if (m->num_blocks > MNV3_MAX_BLOCKS)
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "network: num_blocks %u exceeds %u",
                              m->num_blocks, MNV3_MAX_BLOCKS);
    if (m->num_head < 1 || m->num_head > MNV3_MAX_HEAD)
        return mnv3_set_error(e, MNV3_ERR_BAD_LAYER, "network: num_head %u outside 1..%u",
                              m->num_head, MNV3_MAX_HEAD);
    MNV3_TRY(read_conv(c, m, &m->stem, &refs[n++], e));
    for (b = 0; b < m->num_blocks; ++b) {
        mnv3_block *k = &m->blocks[b];
        uint32_t flags;
        if (28 > c->size - c->pos) {
            char what[32];
            snprintf(what, sizeof what, "block %u", b);
            return need(c, 28, what, e);
        }
        flags = take_u32(c);
        if (flags & ~7u)
            return mnv3_set_error(e, MNV3_ERR_BAD_ENUM,
                                  "block %u: flags 0x%x has reserved bits set", b, flags);
        k->has_expand = flags & 1u;
        k->has_se = (flags >> 1) & 1u;
        k->residual = (flags >> 2) & 1u;
        k->residual_clamp = take_clamp(c);
        k->se.squeeze_clamp = take_clamp(c);
        k->se.scale_clamp = take_clamp(c);
        if (clamp_bad(k->residual_clamp) || clamp_bad(k->se.squeeze_clamp) ||
            clamp_bad(k->se.scale_clamp)) {
            char what[32];
            snprintf(what, sizeof what, "block %u", b);
            if (clamp_bad(k->residual_clamp))
                return clamp_error(what, "residual", k->residual_clamp, e);
            if (clamp_bad(k->se.squeeze_clamp))
                return clamp_error(what, "se squeeze", k->se.squeeze_clamp, e);
            return clamp_error(what, "se scale", k->se.scale_clamp, e);
        }
        if (k->has_expand) MNV3_TRY(read_conv(c, m, &k->expand, &refs[n++], e));
        MNV3_TRY(read_conv(c, m, &k->depthwise, &refs[n++], e));
        if (k->has_se) {
            MNV3_TRY(read_conv(c, m, &k->se.reduce, &refs[n++], e));
            MNV3_TRY(read_conv(c, m, &k->se.expand, &refs[n++], e));
        }
        MNV3_TRY(read_conv(c, m, &k->project, &refs[n++], e));
    }
    MNV3_TRY(read_conv(c, m, &m->last_conv, &refs[n++], e));
    MNV3_TRY(need(c, 8, "the pool clamp", e));
    m->pool_clamp = take_clamp(c);
    if (clamp_bad(m->pool_clamp)) return clamp_error("network", "pool", m->pool_clamp, e);
    for (i = 0; i < m->num_head; ++i) MNV3_TRY(read_conv(c, m, &m->head[i], &refs[n++], e));
    *nrefs = n;
    return finish(c, e);
}

static mnv3_status read_preprocess(cursor *c, mnv3_preprocess *p, mnv3_error *e) {
    uint32_t i, order, layout;
    MNV3_TRY(need(c, MNV3_FILE_PREPROCESS_SIZE, "the preprocess record", e));
    p->height = take_u32(c);
    p->width = take_u32(c);
    order = take_u32(c);
    layout = take_u32(c);
    p->scale = take_f32(c);
    for (i = 0; i < 3; ++i) p->mean[i] = take_f32(c);
    for (i = 0; i < 3; ++i) p->std[i] = take_f32(c);
    if (order > MNV3_BGR)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "preprocess: channel_order %u unknown",
                              order);
    if (layout > MNV3_LAYOUT_NHWC)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "preprocess: layout %u unknown", layout);
    p->channel_order = (mnv3_channel_order)order;
    p->layout = (mnv3_layout)layout;
    if (take_u32(c) != 0)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "preprocess: reserved field is not zero");
    if (!isfinite(p->scale) || p->scale == 0.0f)
        return mnv3_set_error(e, MNV3_ERR_BAD_METADATA, "preprocess: scale %g invalid",
                              (double)p->scale);
    for (i = 0; i < 3; ++i) {
        if (!isfinite(p->std[i]) || p->std[i] == 0.0f)
            return mnv3_set_error(e, MNV3_ERR_BAD_METADATA,
                                  "preprocess: std[%u] is %g, must be finite and non-zero", i,
                                  (double)p->std[i]);
        if (!isfinite(p->mean[i]))
            return mnv3_set_error(e, MNV3_ERR_BAD_METADATA, "preprocess: mean[%u] is %g", i,
                                  (double)p->mean[i]);
    }
    return finish(c, e);
}

static int32_t take_i32(cursor *c) { return (int32_t)take_u32(c); }

static mnv3_q8_param take_q(cursor *c) {
    mnv3_q8_param q;
    q.scale = take_f32(c);
    q.zero_point = take_i32(c);
    return q;
}

static int q_is_zero(mnv3_q8_param q) { return float_to_bits(q.scale) == 0 && q.zero_point == 0; }

/* The QUANT section: the quantization of every activation slot and conv (docs/FORMAT.md).
 * Values are range-checked later, by mnv3_model_q8_prepare(), once tensors resolve. */
static mnv3_status read_quant(cursor *c, mnv3_model *m, conv_refs *refs, uint32_t nrefs,
                              mnv3_error *e) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    uint32_t b, i, mode;
    MNV3_TRY(need(c, QUANT_HEADER_SIZE, "the quantization header", e));
    m->quantized = 1;
    m->q8_input = take_q(c);
    mode = take_u32(c);
    m->pool_output = take_q(c);
    if (mode >= MNV3_Q8_POOL_MODE_COUNT)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "quant: pool mode %u unknown", mode);
    m->pool_mode = (mnv3_q8_pool_mode)mode;
    mode = take_u32(c);
    if (mode > MNV3_QTYPE_UINT8)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "quant: io type %u unknown", mode);
    m->q8_io_type = (mnv3_qtype)mode;
    for (b = 0; b < m->num_blocks; ++b) {
        mnv3_block *k = &m->blocks[b];
        MNV3_TRY(need(c, QUANT_BLOCK_SIZE, "a block's quantization", e));
        mode = take_u32(c);
        k->se_pool_output = take_q(c);
        k->se_mul_output = take_q(c);
        k->residual_output = take_q(c);
        if (mode >= MNV3_Q8_POOL_MODE_COUNT)
            return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "block %u: se pool mode %u unknown", b,
                                  mode);
        k->se_pool_mode = (mnv3_q8_pool_mode)mode;
        if (take_u32(c) != 0 ||
            (!k->has_se && (mode != 0 || !q_is_zero(k->se_pool_output) ||
                            !q_is_zero(k->se_mul_output))) ||
            (!k->residual && !q_is_zero(k->residual_output)))
            return mnv3_set_error(e, MNV3_ERR_BAD_ENUM,
                                  "block %u: reserved or unused quantization fields are not zero",
                                  b);
    }
    if (mnv3_model_convs(m, list) != nrefs)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "quant: conv count changed");
    for (i = 0; i < nrefs; ++i) {
        mnv3_conv *conv = list[i];
        if (QUANT_CONV_SIZE > c->size - c->pos) {
            char what[48];
            mnv3_conv_name(m, conv, what, sizeof what);
            return need(c, QUANT_CONV_SIZE, what, e);
        }
        conv->q8.output = take_q(c);
        conv->q8.act_lo = take_i32(c);
        conv->q8.act_hi = take_i32(c);
        conv->q8.weight_zero_point = take_i32(c);
        mode = take_u32(c);
        refs[i].weight_scale = take_u32(c);
        refs[i].bias_scale = take_u32(c);
        refs[i].table = take_u32(c);
        conv->q8.table_output = take_q(c);
        if (mode >= MNV3_Q8_MULT_MODE_COUNT)
            return conv_error(m, conv, e, MNV3_ERR_BAD_ENUM, "multiplier mode %u unknown", mode);
        conv->q8.mult_mode = (mnv3_q8_mult_mode)mode;
        if (!conv->has_bias && refs[i].bias_scale != NO_TENSOR)
            return conv_error(m, conv, e, MNV3_ERR_BAD_TENSOR,
                              "has no bias but bias_scale_tensor is %u, not 0xFFFFFFFF",
                              refs[i].bias_scale);
        if (take_u32(c) != 0 || (refs[i].table == NO_TENSOR && !q_is_zero(conv->q8.table_output)))
            return conv_error(m, conv, e, MNV3_ERR_BAD_ENUM,
                              "reserved or unused quantization fields are not zero");
    }
    return finish(c, e);
}

/* Strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF. */
static int utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        size_t len, k;
        uint32_t cp;
        if (b < 0x80) { ++i; continue; }
        if (b >= 0xC2 && b <= 0xDF) { len = 2; cp = b & 0x1Fu; }
        else if (b >= 0xE0 && b <= 0xEF) { len = 3; cp = b & 0x0Fu; }
        else if (b >= 0xF0 && b <= 0xF4) { len = 4; cp = b & 0x07u; }
        else return 0;
        if (n - i < len) return 0;
        for (k = 1; k < len; ++k) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* First pass: counts and checks the strings without keeping pointers, so the pointer array
 * can share the model's allocation. */
static mnv3_status scan_labels(const uint8_t *p, uint64_t size, uint32_t *count,
                               mnv3_error *e) {
    uint64_t pos = 4;
    uint32_t i, n;
    if (size < 4)
        return mnv3_set_error(e, MNV3_ERR_FILE_TRUNCATED,
                              "LABELS section (%llu bytes) ends inside its count",
                              (unsigned long long)size);
    n = get_u32(p);
    if (n == 0 || n > MNV3_MAX_CLASSES)
        return mnv3_set_error(e, MNV3_ERR_BAD_METADATA, "labels: count %u outside 1..%u", n,
                              MNV3_MAX_CLASSES);
    for (i = 0; i < n; ++i) {
        const uint8_t *s = p + pos;
        const uint8_t *nul = (const uint8_t *)memchr(s, 0, (size_t)(size - pos));
        if (!nul)
            return mnv3_set_error(e, MNV3_ERR_BAD_METADATA,
                                  "labels: label %u of %u is not NUL-terminated inside the "
                                  "section", i, n);
        if (!utf8_valid(s, (size_t)(nul - s)))
            return mnv3_set_error(e, MNV3_ERR_BAD_METADATA, "labels: label %u is not UTF-8", i);
        pos += (uint64_t)(nul - s) + 1;
    }
    if (pos != size)
        return mnv3_set_error(e, MNV3_ERR_BAD_METADATA,
                              "labels: %llu bytes follow the last of %u labels",
                              (unsigned long long)(size - pos), n);
    *count = n;
    return MNV3_OK;
}

typedef struct section {
    uint64_t offset, size;
    int present;
} section;

typedef struct tensor_entry {
    uint64_t offset, count;
    uint32_t dtype;
} tensor_entry;

static const char *section_name(uint32_t type) {
    switch (type) {
    case SEC_NETWORK: return "NETWORK";
    case SEC_TENSORS: return "TENSORS";
    case SEC_PREPROCESS: return "PREPROCESS";
    case SEC_LABELS: return "LABELS";
    case SEC_QUANT: return "QUANT";
    default: return "extension";
    }
}

/* Checks the fixed header. Everything here is outside the CRC, so it is checked first. */
static mnv3_status read_header(const uint8_t *d, size_t size, uint32_t *section_count,
                               mnv3_error *e) {
    uint64_t file_size, table_offset;
    uint32_t major, bom, header_size, i;
    if (size < sizeof file_magic)
        return mnv3_set_error(e, MNV3_ERR_FILE_TRUNCATED,
                              "%zu bytes is too short for the magic", size);
    if (memcmp(d, file_magic, sizeof file_magic) != 0)
        return mnv3_set_error(e, MNV3_ERR_BAD_MAGIC, "magic is not \"MNV3\\0MDL\"");
    if (size < MNV3_FILE_HEADER_SIZE)
        return mnv3_set_error(e, MNV3_ERR_FILE_TRUNCATED,
                              "%zu bytes is too short for the 64-byte header", size);
    /* The byte-order mark comes before the version: a big-endian writer would also have
     * garbled the version, and the mark names the real problem. */
    bom = get_u32(d + 12);
    if (bom != BYTE_ORDER_MARK)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENDIANNESS,
                              "byte_order_mark is 0x%08X, expected 0x01020304", bom);
    major = get_u16(d + 8);
    if (major != 1)
        return mnv3_set_error(e, MNV3_ERR_BAD_VERSION,
                              "version %u.%u, this library reads major version 1", major,
                              get_u16(d + 10));
    file_size = get_u64(d + 16);
    if (file_size != (uint64_t)size)
        return mnv3_set_error(e, file_size > (uint64_t)size ? MNV3_ERR_FILE_TRUNCATED
                                                            : MNV3_ERR_SIZE_OVERFLOW,
                              "file_size field says %llu bytes, %zu were given",
                              (unsigned long long)file_size, size);
    header_size = get_u32(d + 24);
    if (header_size != MNV3_FILE_HEADER_SIZE)
        return mnv3_set_error(e, MNV3_ERR_BAD_OFFSET, "header_size is %u, expected 64",
                              header_size);
    *section_count = get_u32(d + 28);
    if (*section_count < 1 || *section_count > MNV3_FILE_MAX_SECTIONS)
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "section_count %u outside 1..%u",
                              *section_count, MNV3_FILE_MAX_SECTIONS);
    table_offset = get_u64(d + 32);
    if (table_offset != MNV3_FILE_HEADER_SIZE)
        return mnv3_set_error(e, MNV3_ERR_BAD_OFFSET, "section_table_offset is %llu, expected 64",
                              (unsigned long long)table_offset);
    if (get_u32(d + 44) != 0)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "header flags 0x%x has reserved bits set",
                              get_u32(d + 44));
    for (i = 48; i < 64; ++i)
        if (d[i] != 0)
            return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "header reserved byte %u is not zero", i);
    if ((uint64_t)size < MNV3_FILE_HEADER_SIZE +
                             (uint64_t)*section_count * MNV3_FILE_SECTION_ENTRY_SIZE)
        return mnv3_set_error(e, MNV3_ERR_FILE_TRUNCATED,
                              "file ends inside the section table (%u entries)", *section_count);
    return MNV3_OK;
}

static mnv3_status read_section_table(const uint8_t *d, uint64_t size, uint32_t count,
                                      section sec[SEC_TYPES], uint64_t *sections_end, mnv3_error *e) {
    uint64_t table_end = MNV3_FILE_HEADER_SIZE + (uint64_t)count * MNV3_FILE_SECTION_ENTRY_SIZE;
    uint32_t i;
    memset(sec, 0, SEC_TYPES * sizeof *sec);
    *sections_end = table_end;
    for (i = 0; i < count; ++i) {
        const uint8_t *p = d + MNV3_FILE_HEADER_SIZE + (size_t)i * MNV3_FILE_SECTION_ENTRY_SIZE;
        uint32_t type = get_u32(p);
        uint64_t off = get_u64(p + 8), len = get_u64(p + 16);
        if (get_u32(p + 4) != 0)
            return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "section %u: reserved field is not zero",
                                  i);
        if (type < SEC_NETWORK || (type >= SEC_TYPES && !(type & 0x80000000u)))
            return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "section %u: type %u unknown", i, type);
        if (off % 8 != 0)
            return mnv3_set_error(e, MNV3_ERR_BAD_OFFSET,
                                  "section %u (%s): offset %llu is not 8-aligned", i,
                                  section_name(type), (unsigned long long)off);
        if (len > UINT64_MAX - off)
            return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW,
                                  "section %u (%s): offset %llu + size %llu overflows", i,
                                  section_name(type), (unsigned long long)off,
                                  (unsigned long long)len);
        if (off < table_end || off + len > size)
            return mnv3_set_error(e, MNV3_ERR_BAD_OFFSET,
                                  "section %u (%s): bytes [%llu, %llu) are not between the "
                                  "section table and the end of the file (%llu)",
                                  i, section_name(type), (unsigned long long)off,
                                  (unsigned long long)(off + len), (unsigned long long)size);
        if (off + len > *sections_end) *sections_end = off + len;
        if (type & 0x80000000u) continue;
        if (sec[type].present)
            return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "section type %u (%s) appears twice",
                                  type, section_name(type));
        sec[type].present = 1;
        sec[type].offset = off;
        sec[type].size = len;
    }
    for (i = SEC_NETWORK; i <= SEC_PREPROCESS; ++i)
        if (!sec[i].present)
            return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "required section %s is missing",
                                  section_name(i));
    return MNV3_OK;
}

static mnv3_status read_tensor_table(const uint8_t *d, uint64_t size, const section *s,
                                     uint64_t sections_end, tensor_entry **out_entries,
                                     uint32_t *out_count, mnv3_error *e) {
    const uint8_t *p = d + s->offset;
    uint64_t prev_end = sections_end;
    uint32_t n, i;
    tensor_entry *t;
    if (s->size < 8)
        return mnv3_set_error(e, MNV3_ERR_FILE_TRUNCATED,
                              "TENSORS section (%llu bytes) ends inside its count",
                              (unsigned long long)s->size);
    n = get_u32(p);
    if (n < 1 || n > MNV3_FILE_MAX_TENSORS)
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "tensor count %u outside 1..%u", n,
                              MNV3_FILE_MAX_TENSORS);
    if (get_u32(p + 4) != 0)
        return mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "tensors: reserved field is not zero");
    if (s->size != 8 + (uint64_t)n * 24)
        return mnv3_set_error(e, s->size < 8 + (uint64_t)n * 24 ? MNV3_ERR_FILE_TRUNCATED
                                                                 : MNV3_ERR_SIZE_OVERFLOW,
                              "TENSORS section is %llu bytes, %u entries need %llu",
                              (unsigned long long)s->size, n,
                              (unsigned long long)(8 + (uint64_t)n * 24));
    t = (tensor_entry *)malloc(n * sizeof *t);
    if (!t) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "tensor table (%u entries)", n);
    for (i = 0; i < n; ++i) {
        const uint8_t *q = p + 8 + (size_t)i * 24;
        uint32_t dtype = get_u32(q);
        uint64_t off = get_u64(q + 8), count = get_u64(q + 16), bytes = 0;
        mnv3_status st = MNV3_OK;
        if (dtype < DTYPE_FLOAT32 || dtype > DTYPE_FLOAT16)
            st = mnv3_set_error(e, MNV3_ERR_BAD_TENSOR, "tensor %u: dtype %u unknown", i, dtype);
        else if (get_u32(q + 4) != 0)
            st = mnv3_set_error(e, MNV3_ERR_BAD_ENUM, "tensor %u: reserved field is not zero", i);
        else if (off % 64 != 0)
            st = mnv3_set_error(e, MNV3_ERR_BAD_OFFSET, "tensor %u: offset %llu is not 64-aligned",
                                i, (unsigned long long)off);
        else if (count > UINT64_MAX / 4 || (bytes = count * dtype_bytes(dtype)) > UINT64_MAX - off)
            st = mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW,
                                "tensor %u: offset %llu + %llu elements overflows", i,
                                (unsigned long long)off, (unsigned long long)count);
        else if (off < prev_end || off + bytes > size)
            st = mnv3_set_error(e, MNV3_ERR_BAD_OFFSET,
                                "tensor %u: bytes [%llu, %llu) must lie after the sections and "
                                "the previous tensor (%llu) and inside the file (%llu)",
                                i, (unsigned long long)off, (unsigned long long)(off + bytes),
                                (unsigned long long)prev_end, (unsigned long long)size);
        if (st != MNV3_OK) {
            free(t);
            return st;
        }
        t[i].offset = off;
        t[i].count = count;
        t[i].dtype = dtype;
        prev_end = off + bytes;
    }
    *out_entries = t;
    *out_count = n;
    return MNV3_OK;
}

static const char *dtype_file_name(uint32_t dtype) {
    return dtype == DTYPE_INT8    ? "int8"
           : dtype == DTYPE_INT32 ? "int32"
           : dtype == DTYPE_FLOAT16 ? "float16"
                                  : "float32";
}

/* One tensor reference of a conv: in range, of the right type and element count. */
static mnv3_status tensor_ref(const uint8_t *base, const mnv3_model *m, const mnv3_conv *c,
                              const tensor_entry *t, uint32_t ntensors, uint32_t index,
                              const char *role, uint32_t dtype, uint64_t count,
                              const void **ptr, mnv3_error *e) {
    if (index >= ntensors)
        return conv_error(m, c, e, MNV3_ERR_BAD_TENSOR, "%s tensor %u out of range (%u tensors)",
                          role, index, ntensors);
    if (t[index].dtype != dtype)
        return conv_error(m, c, e, MNV3_ERR_BAD_TENSOR, "%s tensor %u is %s, expected %s", role,
                          index, dtype_file_name(t[index].dtype), dtype_file_name(dtype));
    if (t[index].count != count)
        return conv_error(m, c, e, MNV3_ERR_BAD_TENSOR,
                          "%s tensor %u has %llu elements, expected %llu", role, index,
                          (unsigned long long)t[index].count, (unsigned long long)count);
    *ptr = (const void *)(base + t[index].offset);
    return MNV3_OK;
}

static mnv3_status resolve(const uint8_t *base, mnv3_model *m, const tensor_entry *t,
                           uint32_t ntensors, const conv_refs *refs, mnv3_error *e) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    uint32_t n = mnv3_model_convs(m, list), i;
    const int q = m->quantized;
    /* A float model's weights are all float32 or all float16 (the stem's tensor says
     * which): one context runs one row per layer kind. */
    const int half = !q && refs[0].weight < ntensors && t[refs[0].weight].dtype == DTYPE_FLOAT16;
    const uint32_t weight_dtype = q ? DTYPE_INT8 : half ? DTYPE_FLOAT16 : DTYPE_FLOAT32;
    for (i = 0; i < n; ++i) {
        mnv3_conv *c = list[i];
        const void *p;
        MNV3_TRY(tensor_ref(base, m, c, t, ntensors, refs[i].weight,
                            half ? "weight (as the stem's)" : "weight", weight_dtype,
                            mnv3_conv_weight_count(c), &c->weight, e));
        c->weight_type = q ? MNV3_DTYPE_I8 : half ? MNV3_DTYPE_F16 : MNV3_DTYPE_F32;
        c->bias = NULL;
        c->q8.bias = NULL;
        if (c->has_bias) {
            MNV3_TRY(tensor_ref(base, m, c, t, ntensors, refs[i].bias, "bias",
                                q ? DTYPE_INT32 : DTYPE_FLOAT32, c->out_channels, &p, e));
            if (q) c->q8.bias = (const int32_t *)p;
            else c->bias = (const float *)p;
        }
        if (!q) continue;
        MNV3_TRY(tensor_ref(base, m, c, t, ntensors, refs[i].weight_scale, "weight scale",
                            DTYPE_FLOAT32, c->out_channels, &p, e));
        c->q8.weight_scale = (const float *)p;
        c->q8.bias_scale = NULL;
        if (c->has_bias) {
            MNV3_TRY(tensor_ref(base, m, c, t, ntensors, refs[i].bias_scale, "bias scale",
                                DTYPE_FLOAT32, c->out_channels, &p, e));
            c->q8.bias_scale = (const float *)p;
        }
        c->q8.table = NULL;
        if (refs[i].table != NO_TENSOR) {
            MNV3_TRY(tensor_ref(base, m, c, t, ntensors, refs[i].table, "table", DTYPE_INT8,
                                256, &p, e));
            c->q8.table = (const int8_t *)p;
        }
    }
    return MNV3_OK;
}

/* Index of the first NaN or infinity among n floats, or n when all are finite. The
 * exponent test on the bits vectorises, so a whole network is checked in a few ms. */
static size_t first_non_finite(const float *v, size_t n) {
    size_t i, bad = 0;
    for (i = 0; i < n; ++i) {
        uint32_t u;
        memcpy(&u, v + i, sizeof u);
        bad |= (u & 0x7F800000u) == 0x7F800000u;
    }
    if (!bad) return n;
    i = 0;
    while (i < n && isfinite(v[i])) ++i;
    return i;
}

/* Index of the first infinity or NaN among n halves, or n. */
static size_t first_non_finite_half(const uint16_t *v, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i)
        if (!mnv3_f16_is_finite(v[i])) return i;
    return n;
}

/* Weights and biases must be finite: a NaN or infinity would reach every logit. `refs`
 * (parallel to the conv list) names the file's tensor indices, when there is a file. */
static mnv3_status check_finite(const mnv3_model *m, const conv_refs *refs, mnv3_error *e) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    uint32_t n = mnv3_model_convs((mnv3_model *)m, list), i, k;
    /* Integer weights are finite by construction; scales are checked with the rest of the
     * quantization (mnv3_model_q8_prepare). */
    if (m->quantized) return MNV3_OK;
    for (i = 0; i < n; ++i) {
        const mnv3_conv *c = list[i];
        for (k = 0; k < (c->has_bias ? 2u : 1u); ++k) {
            const int half = !k && c->weight_type == MNV3_DTYPE_F16;
            const void *v = k ? (const void *)c->bias : c->weight;
            size_t count = k ? c->out_channels : mnv3_conv_weight_count(c);
            size_t at = half ? first_non_finite_half((const uint16_t *)v, count)
                             : first_non_finite((const float *)v, count);
            char tensor[24] = "", encoding[24] = "";
            float bad;
            if (at == count) continue;
            bad = half ? mnv3_f16_to_f32(((const uint16_t *)v)[at]) : ((const float *)v)[at];
            if (refs)
                snprintf(tensor, sizeof tensor, " tensor %u", k ? refs[i].bias : refs[i].weight);
            if (half)
                snprintf(encoding, sizeof encoding, " (float16 0x%04X)",
                         (unsigned)((const uint16_t *)v)[at]);
            return conv_error(m, c, e, MNV3_ERR_BAD_TENSOR, "%s%s element %zu is %s%s",
                              k ? "bias" : "weight", tensor, at,
                              isnan(bad) ? "NaN" : "infinite", encoding);
        }
    }
    return MNV3_OK;
}

/* Parses `d` (64-byte aligned) into a new model whose pointers refer into `d`. With
 * `writable`, `d` is the library's own copy and may be byte-swapped for a big-endian host. */
static mnv3_status parse_image(const uint8_t *d, size_t size, uint32_t flags, uint8_t *writable,
                               mnv3_model **out, mnv3_error *e) {
    static const float structure_only = 0.0f;
    section sec[SEC_TYPES];
    conv_refs refs[MNV3_MAX_CONVS];
    mnv3_conv *list[MNV3_MAX_CONVS];
    uint32_t section_count = 0, nrefs = 0, ntensors = 0, nlabels = 0, i;
    uint64_t sections_end;
    tensor_entry *tensors = NULL;
    mnv3_model *m;
    mnv3_status st;
    cursor c;

    MNV3_TRY(read_header(d, size, &section_count, e));
    if (!(flags & MNV3_LOAD_SKIP_CHECKSUM)) {
        uint32_t want = get_u32(d + MNV3_FILE_CRC_OFFSET);
        uint32_t got = mnv3_crc32(0, d + MNV3_FILE_HEADER_SIZE, size - MNV3_FILE_HEADER_SIZE);
        if (got != want)
            return mnv3_set_error(e, MNV3_ERR_CHECKSUM,
                                  "payload CRC-32 is 0x%08X, header says 0x%08X", got, want);
    }
    MNV3_TRY(read_section_table(d, size, section_count, sec, &sections_end, e));
    if (sec[SEC_LABELS].present)
        MNV3_TRY(scan_labels(d + sec[SEC_LABELS].offset, sec[SEC_LABELS].size, &nlabels, e));

    /* The label pointers share the description's allocation. */
    m = (mnv3_model *)calloc(1, sizeof *m + (size_t)nlabels * sizeof(char *));
    if (!m) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "model description");

    c.p = d + sec[SEC_NETWORK].offset;
    c.size = sec[SEC_NETWORK].size;
    c.pos = 0;
    c.section = "NETWORK";
    st = read_network(&c, m, refs, &nrefs, e);
    if (st == MNV3_OK) {
        c.p = d + sec[SEC_PREPROCESS].offset;
        c.size = sec[SEC_PREPROCESS].size;
        c.pos = 0;
        c.section = "PREPROCESS";
        st = read_preprocess(&c, &m->preprocess, e);
    }
    if (st == MNV3_OK && sec[SEC_QUANT].present) {
        c.p = d + sec[SEC_QUANT].offset;
        c.size = sec[SEC_QUANT].size;
        c.pos = 0;
        c.section = "QUANT";
        st = read_quant(&c, m, refs, nrefs, e);
    }
    if (st == MNV3_OK && nlabels) {
        const char **ptrs = (const char **)(void *)(m + 1);
        const char *s = (const char *)d + sec[SEC_LABELS].offset + 4;
        for (i = 0; i < nlabels; ++i) {
            ptrs[i] = s;
            s += strlen(s) + 1;
        }
        m->labels = ptrs;
        m->num_labels = nlabels;
    }
    /* Shapes are judged before tensor sizes so that an absurd channel count is reported as
     * such (and never multiplied into an element count); the stand-in weights only satisfy
     * the presence check that the second validation repeats with the real ones. */
    if (st == MNV3_OK) {
        uint32_t n = mnv3_model_convs(m, list);
        for (i = 0; i < n; ++i) {
            list[i]->weight = &structure_only;
            list[i]->bias = list[i]->has_bias ? &structure_only : NULL;
        }
        st = mnv3_model_validate(m, e);
    }
    if (st == MNV3_OK)
        st = read_tensor_table(d, size, &sec[SEC_TENSORS], sections_end, &tensors, &ntensors, e);
    if (st == MNV3_OK) st = resolve(d, m, tensors, ntensors, refs, e);
    if (st == MNV3_OK) st = mnv3_model_validate(m, e);
    if (st == MNV3_OK && writable && !mnv3_host_is_little_endian())
        for (i = 0; i < ntensors; ++i) {
            if (tensors[i].dtype == DTYPE_FLOAT16)
                swap_halves(writable + tensors[i].offset, (size_t)tensors[i].count);
            else if (tensors[i].dtype != DTYPE_INT8)
                mnv3_swap_words(writable + tensors[i].offset, (size_t)tensors[i].count);
        }
    if (st == MNV3_OK) st = check_finite(m, refs, e);
    if (st == MNV3_OK) st = mnv3_model_q8_prepare(m, e);
    free(tensors);
    if (st != MNV3_OK) {
        free(m->owned_quant);
        free(m);
        return st;
    }
    *out = m;
    return MNV3_OK;
}

static mnv3_status check_load_args(const void *data, uint32_t flags, mnv3_model **out,
                                   mnv3_error *e) {
    if (!out) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "out_model is NULL");
    *out = NULL;
    if (!data) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "data is NULL");
    if (flags & ~(uint32_t)(MNV3_LOAD_IN_PLACE | MNV3_LOAD_SKIP_CHECKSUM))
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT, "unknown load flags 0x%x", flags);
    return MNV3_OK;
}

/* Takes ownership of `raw` (the allocation behind `copy`) whatever the outcome. */
static mnv3_status load_owned_copy(uint8_t *copy, void *raw, size_t size, uint32_t flags,
                                   mnv3_model **out, mnv3_error *e) {
    mnv3_status st = parse_image(copy, size, flags, copy, out, e);
    if (st != MNV3_OK) {
        free(raw);
        return st;
    }
    (*out)->owned_weights = raw;
    (*out)->owned_weight_bytes = size;
    return MNV3_OK;
}

mnv3_status mnv3_model_load_memory(const void *data, size_t size, uint32_t flags,
                                   mnv3_model **out, mnv3_error *e) {
    uint8_t *copy;
    void *raw;
    MNV3_TRY(check_load_args(data, flags, out, e));
    if (flags & MNV3_LOAD_IN_PLACE) {
        if (!mnv3_host_is_little_endian())
            return mnv3_set_error(e, MNV3_ERR_UNSUPPORTED,
                                  "in-place loading needs a little-endian host; load a copy");
        if ((uintptr_t)data % 64 != 0)
            return mnv3_set_error(e, MNV3_ERR_MISALIGNED_DATA,
                                  "in-place data at %p is not 64-byte aligned", data);
        return parse_image((const uint8_t *)data, size, flags, NULL, out, e);
    }
    /* Parsing our own copy, not the caller's bytes, means nothing can change between the
     * checks and the use. */
    copy = (uint8_t *)mnv3_alloc_aligned(size ? size : 1, &raw);
    if (!copy) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "copy of %zu bytes", size);
    if (size) memcpy(copy, data, size);
    return load_owned_copy(copy, raw, size, flags, out, e);
}

mnv3_status mnv3_model_load_file(const char *path, uint32_t flags, mnv3_model **out,
                                 mnv3_error *e) {
    uint8_t *copy;
    void *raw;
    size_t size;
    if (!path) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "path is NULL");
    MNV3_TRY(check_load_args(path, flags, out, e));
    MNV3_TRY(mnv3_read_whole_file(path, &copy, &raw, &size, e));
    /* The file's bytes are already the library's own copy; in-place makes no sense here. */
    return load_owned_copy(copy, raw, size, flags & ~(uint32_t)MNV3_LOAD_IN_PLACE, out, e);
}

/* ------------------------------------------------------------------------------------ */
/* Writer                                                                                */
/* ------------------------------------------------------------------------------------ */

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

typedef struct layout {
    uint32_t sections, nconvs, ntensors;
    uint64_t network_off, network_size;
    uint64_t tensors_off, tensors_size;
    uint64_t preprocess_off;
    uint64_t labels_off, labels_size;
    uint64_t quant_off, quant_size;
    uint64_t data_off, file_size;
} layout;

/* Tensors of one conv, in canonical order: weight, bias; for quantized models then the
 * weight scales, the bias scales and the table. */
static uint32_t conv_tensor_count(const mnv3_model *m, const mnv3_conv *c) {
    uint32_t n = 1 + (c->has_bias ? 1u : 0u);
    if (m->quantized) n += 1 + (c->has_bias ? 1u : 0u) + (c->q8.table ? 1u : 0u);
    return n;
}

/* The k-th tensor of a conv: its file dtype, element count and data. */
static uint32_t conv_tensor(const mnv3_model *m, const mnv3_conv *c, uint32_t k, uint64_t *count,
                            const void **data) {
    /* Without a bias the list skips its two entries (bias, bias scales): weight, weight
     * scales, table. */
    if (!c->has_bias) k *= 2;
    switch (k) {
    case 0:
        *count = mnv3_conv_weight_count(c);
        *data = c->weight;
        return m->quantized ? DTYPE_INT8 : c->weight_type == MNV3_DTYPE_F16 ? DTYPE_FLOAT16 : DTYPE_FLOAT32;
    case 1:
        *count = c->out_channels;
        *data = m->quantized ? (const void *)c->q8.bias : (const void *)c->bias;
        return m->quantized ? DTYPE_INT32 : DTYPE_FLOAT32;
    case 2:
        *count = c->out_channels;
        *data = c->q8.weight_scale;
        return DTYPE_FLOAT32;
    case 3:
        *count = c->out_channels;
        *data = c->q8.bias_scale;
        return DTYPE_FLOAT32;
    default:
        *count = 256;
        *data = c->q8.table;
        return DTYPE_INT8;
    }
}

static uint64_t network_bytes(const mnv3_model *m, uint32_t nconvs) {
    return 24 + 28 * (uint64_t)m->num_blocks + 8 + (uint64_t)nconvs * MNV3_FILE_CONV_SIZE;
}

static void plan_layout(const mnv3_model *m, mnv3_conv **list, layout *L) {
    uint32_t i;
    uint64_t pos;
    memset(L, 0, sizeof *L);
    L->nconvs = mnv3_model_convs((mnv3_model *)m, list);
    for (i = 0; i < L->nconvs; ++i) L->ntensors += conv_tensor_count(m, list[i]);
    L->sections = (m->num_labels ? 4u : 3u) + (m->quantized ? 1u : 0u);
    pos = MNV3_FILE_HEADER_SIZE + (uint64_t)L->sections * MNV3_FILE_SECTION_ENTRY_SIZE;
    L->network_off = align_up(pos, 8);
    L->network_size = network_bytes(m, L->nconvs);
    L->tensors_off = align_up(L->network_off + L->network_size, 8);
    L->tensors_size = 8 + (uint64_t)L->ntensors * 24;
    L->preprocess_off = align_up(L->tensors_off + L->tensors_size, 8);
    pos = L->preprocess_off + MNV3_FILE_PREPROCESS_SIZE;
    if (m->num_labels) {
        L->labels_off = align_up(pos, 8);
        L->labels_size = 4;
        for (i = 0; i < m->num_labels; ++i) L->labels_size += strlen(m->labels[i]) + 1;
        pos = L->labels_off + L->labels_size;
    }
    if (m->quantized) {
        L->quant_off = align_up(pos, 8);
        L->quant_size = QUANT_HEADER_SIZE + (uint64_t)m->num_blocks * QUANT_BLOCK_SIZE +
                        (uint64_t)L->nconvs * QUANT_CONV_SIZE;
        pos = L->quant_off + L->quant_size;
    }
    L->data_off = align_up(pos, 64);
    pos = L->data_off;
    for (i = 0; i < L->nconvs; ++i) {
        uint32_t k;
        for (k = 0; k < conv_tensor_count(m, list[i]); ++k) {
            uint64_t count;
            const void *data;
            const uint32_t dtype = conv_tensor(m, list[i], k, &count, &data);
            pos = align_up(pos, 64) + dtype_bytes(dtype) * count;
        }
    }
    L->file_size = pos;
}

static uint8_t *put_clamp(uint8_t *p, mnv3_clamp c) {
    put_u32(p, float_to_bits(c.lo));
    put_u32(p + 4, float_to_bits(c.hi));
    return p + 8;
}

static uint8_t *put_conv(uint8_t *p, const mnv3_model *m, const mnv3_conv *c,
                         uint32_t *next_tensor) {
    const uint32_t first = *next_tensor;
    const int same = c->padding_mode == MNV3_PAD_SAME; /* SAME pads are written as 0 */
    put_u32(p, c->depthwise ? 1u : 0u);
    put_u32(p + 4, c->in_channels);
    put_u32(p + 8, c->out_channels);
    put_u32(p + 12, c->kernel);
    put_u32(p + 16, c->stride);
    put_u32(p + 20, (uint32_t)c->padding_mode);
    put_u32(p + 24, same ? 0u : c->pad_top);
    put_u32(p + 28, same ? 0u : c->pad_left);
    put_u32(p + 32, same ? 0u : c->pad_bottom);
    put_u32(p + 36, same ? 0u : c->pad_right);
    put_u32(p + 40, (uint32_t)c->epilogue.activation);
    put_u32(p + 44, (c->has_bias ? 1u : 0u) | (c->batchnorm_folded ? 2u : 0u));
    put_clamp(p + 48, c->epilogue.pre);
    put_clamp(p + 56, c->epilogue.post);
    put_u32(p + 64, first);
    put_u32(p + 68, c->has_bias ? first + 1 : NO_TENSOR);
    put_u32(p + 72, 0);
    put_u32(p + 76, 0);
    *next_tensor += conv_tensor_count(m, c);
    return p + MNV3_FILE_CONV_SIZE;
}

static uint8_t *put_q(uint8_t *p, mnv3_q8_param q) {
    put_u32(p, float_to_bits(q.scale));
    put_u32(p + 4, (uint32_t)q.zero_point);
    return p + 8;
}

/* The QUANT section; `first` numbers each conv's first tensor as the NETWORK section did. */
static void put_quant(uint8_t *p, const mnv3_model *m, mnv3_conv **list, uint32_t nconvs) {
    uint32_t b, i, first = 0;
    p = put_q(p, m->q8_input);
    put_u32(p, (uint32_t)m->pool_mode);
    p = put_q(p + 4, m->pool_output);
    put_u32(p, (uint32_t)m->q8_io_type);
    p += 4;
    for (b = 0; b < m->num_blocks; ++b) {
        const mnv3_block *k = &m->blocks[b];
        const mnv3_q8_param none = {0.0f, 0};
        put_u32(p, k->has_se ? (uint32_t)k->se_pool_mode : 0u);
        p = put_q(p + 4, k->has_se ? k->se_pool_output : none);
        p = put_q(p, k->has_se ? k->se_mul_output : none);
        p = put_q(p, k->residual ? k->residual_output : none);
        put_u32(p, 0);
        p += 4;
    }
    for (i = 0; i < nconvs; ++i) {
        const mnv3_conv *c = list[i];
        const mnv3_q8_param none = {0.0f, 0};
        const uint32_t scales = first + 1 + (c->has_bias ? 1u : 0u);
        p = put_q(p, c->q8.output);
        put_u32(p, (uint32_t)c->q8.act_lo);
        put_u32(p + 4, (uint32_t)c->q8.act_hi);
        put_u32(p + 8, (uint32_t)c->q8.weight_zero_point);
        put_u32(p + 12, (uint32_t)c->q8.mult_mode);
        put_u32(p + 16, scales);
        put_u32(p + 20, c->has_bias ? scales + 1 : NO_TENSOR);
        put_u32(p + 24, c->q8.table ? scales + 1 + (c->has_bias ? 1u : 0u) : NO_TENSOR);
        p = put_q(p + 28, c->q8.table ? c->q8.table_output : none);
        put_u32(p, 0);
        p += 4;
        first += conv_tensor_count(m, c);
    }
}

static void put_section(uint8_t *d, uint32_t index, uint32_t type, uint64_t off, uint64_t size) {
    uint8_t *p = d + MNV3_FILE_HEADER_SIZE + (size_t)index * MNV3_FILE_SECTION_ENTRY_SIZE;
    put_u32(p, type);
    put_u32(p + 4, 0);
    put_u64(p + 8, off);
    put_u64(p + 16, size);
}

static void put_words(uint8_t *p, const void *src, size_t n) {
    size_t i;
    if (mnv3_host_is_little_endian()) {
        memcpy(p, src, n * 4);
        return;
    }
    for (i = 0; i < n; ++i) {
        uint32_t u;
        memcpy(&u, (const uint8_t *)src + 4 * i, 4);
        put_u32(p + 4 * i, u);
    }
}

static void put_halves(uint8_t *p, const uint16_t *src, size_t n) {
    size_t i;
    for (i = 0; i < n; ++i) put_u16(p + 2 * i, src[i]);
}

static void write_image(const mnv3_model *m, mnv3_conv **list, const layout *L, uint8_t *d) {
    uint32_t b, i, tensor = 0, k;
    uint64_t pos;
    uint8_t *p, *entry;
    memset(d, 0, (size_t)L->file_size);
    memcpy(d, file_magic, sizeof file_magic);
    put_u16(d + 8, 1);
    /* float32 models stay 1.0 files, byte for byte; quantized and float16 ones need 1.1
     * readers. */
    put_u16(d + 10, m->quantized || m->stem.weight_type == MNV3_DTYPE_F16 ? 1u : 0u);
    put_u32(d + 12, BYTE_ORDER_MARK);
    put_u64(d + 16, L->file_size);
    put_u32(d + 24, MNV3_FILE_HEADER_SIZE);
    put_u32(d + 28, L->sections);
    put_u64(d + 32, MNV3_FILE_HEADER_SIZE);

    put_section(d, 0, SEC_NETWORK, L->network_off, L->network_size);
    put_section(d, 1, SEC_TENSORS, L->tensors_off, L->tensors_size);
    put_section(d, 2, SEC_PREPROCESS, L->preprocess_off, MNV3_FILE_PREPROCESS_SIZE);
    if (m->num_labels) put_section(d, 3, SEC_LABELS, L->labels_off, L->labels_size);
    if (m->quantized)
        put_section(d, m->num_labels ? 4 : 3, SEC_QUANT, L->quant_off, L->quant_size);

    p = d + L->network_off;
    put_u32(p, (uint32_t)m->arch);
    put_u32(p + 4, (uint32_t)m->flavor);
    put_u32(p + 8, m->input_channels);
    put_u32(p + 12, m->num_blocks);
    put_u32(p + 16, m->num_head);
    p += 24;
    p = put_conv(p, m, &m->stem, &tensor);
    for (b = 0; b < m->num_blocks; ++b) {
        const mnv3_block *k2 = &m->blocks[b];
        put_u32(p, (k2->has_expand ? 1u : 0u) | (k2->has_se ? 2u : 0u) | (k2->residual ? 4u : 0u));
        p = put_clamp(p + 4, k2->residual_clamp);
        p = put_clamp(p, k2->se.squeeze_clamp);
        p = put_clamp(p, k2->se.scale_clamp);
        if (k2->has_expand) p = put_conv(p, m, &k2->expand, &tensor);
        p = put_conv(p, m, &k2->depthwise, &tensor);
        if (k2->has_se) {
            p = put_conv(p, m, &k2->se.reduce, &tensor);
            p = put_conv(p, m, &k2->se.expand, &tensor);
        }
        p = put_conv(p, m, &k2->project, &tensor);
    }
    p = put_conv(p, m, &m->last_conv, &tensor);
    p = put_clamp(p, m->pool_clamp);
    for (i = 0; i < m->num_head; ++i) p = put_conv(p, m, &m->head[i], &tensor);

    p = d + L->tensors_off;
    put_u32(p, L->ntensors);
    entry = p + 8;
    pos = L->data_off;
    for (i = 0; i < L->nconvs; ++i) {
        const mnv3_conv *c = list[i];
        for (k = 0; k < conv_tensor_count(m, c); ++k) {
            uint64_t count;
            const void *data;
            const uint32_t dtype = conv_tensor(m, c, k, &count, &data);
            pos = align_up(pos, 64);
            put_u32(entry, dtype);
            put_u64(entry + 8, pos);
            put_u64(entry + 16, count);
            if (dtype == DTYPE_INT8) memcpy(d + pos, data, (size_t)count);
            else if (dtype == DTYPE_FLOAT16) put_halves(d + pos, (const uint16_t *)data, (size_t)count);
            else put_words(d + pos, data, (size_t)count);
            entry += 24;
            pos += dtype_bytes(dtype) * count;
        }
    }
    if (m->quantized) put_quant(d + L->quant_off, m, list, L->nconvs);

    p = d + L->preprocess_off;
    put_u32(p, m->preprocess.height);
    put_u32(p + 4, m->preprocess.width);
    put_u32(p + 8, (uint32_t)m->preprocess.channel_order);
    put_u32(p + 12, (uint32_t)m->preprocess.layout);
    put_u32(p + 16, float_to_bits(m->preprocess.scale));
    for (i = 0; i < 3; ++i) put_u32(p + 20 + 4 * i, float_to_bits(m->preprocess.mean[i]));
    for (i = 0; i < 3; ++i) put_u32(p + 32 + 4 * i, float_to_bits(m->preprocess.std[i]));

    if (m->num_labels) {
        p = d + L->labels_off;
        put_u32(p, m->num_labels);
        p += 4;
        for (i = 0; i < m->num_labels; ++i) {
            size_t len = strlen(m->labels[i]) + 1;
            memcpy(p, m->labels[i], len);
            p += len;
        }
    }
    put_u32(d + MNV3_FILE_CRC_OFFSET,
            mnv3_crc32(0, d + MNV3_FILE_HEADER_SIZE, (size_t)(L->file_size - MNV3_FILE_HEADER_SIZE)));
}

/* Only what a reader would accept is written, so every saved file loads. */
static mnv3_status check_savable(const mnv3_model *m, mnv3_conv **list, layout *L,
                                 mnv3_error *e) {
    uint32_t i;
    MNV3_TRY(mnv3_model_validate(m, e));
    plan_layout(m, list, L);
    if (L->ntensors > MNV3_FILE_MAX_TENSORS)
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "%u tensors exceed %u", L->ntensors,
                              MNV3_FILE_MAX_TENSORS);
    for (i = 0; i < L->nconvs; ++i) {
        const mnv3_conv *c = list[i];
        if (c->has_bias && !(m->quantized ? (const void *)c->q8.bias : (const void *)c->bias))
            return mnv3_set_error(e, MNV3_ERR_BAD_TENSOR, "conv %u: bias missing", i);
        if (m->quantized && (c->weight_type != MNV3_DTYPE_I8 || !c->q8.weight_scale ||
                             (c->has_bias && !c->q8.bias_scale)))
            return mnv3_set_error(e, MNV3_ERR_BAD_TENSOR,
                                  "conv %u: int8 weights or their scales missing", i);
        if (!m->quantized && c->weight_type != list[0]->weight_type)
            return mnv3_set_error(e, MNV3_ERR_BAD_TENSOR,
                                  "conv %u: %s weights in a model whose stem has %s", i,
                                  mnv3_dtype_name(c->weight_type),
                                  mnv3_dtype_name(list[0]->weight_type));
    }
    MNV3_TRY(check_finite(m, NULL, e));
    /* A model is immutable once shared; its quantization was checked when it was made. */
    if (m->quantized && !m->owned_quant)
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT,
                              "quantized model was not prepared (mnv3_model_q8_prepare)");
    for (i = 0; i < m->num_labels; ++i) {
        size_t len = m->labels[i] ? strlen(m->labels[i]) : 0;
        if (!m->labels[i] || !utf8_valid((const uint8_t *)m->labels[i], len))
            return mnv3_set_error(e, MNV3_ERR_BAD_METADATA, "label %u is missing or not UTF-8",
                                  i);
    }
    if (L->file_size > (uint64_t)SIZE_MAX)
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "%llu bytes do not fit in memory",
                              (unsigned long long)L->file_size);
    return MNV3_OK;
}

mnv3_status mnv3_model_save_memory(const mnv3_model *m, void *buffer, size_t capacity,
                                   size_t *size, mnv3_error *e) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    layout L;
    if (!m) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "model is NULL");
    if (!buffer && !size)
        return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "buffer and size are both NULL");
    MNV3_TRY(check_savable(m, list, &L, e));
    if (size) *size = (size_t)L.file_size;
    if (!buffer) return MNV3_OK;
    if (capacity < L.file_size)
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT,
                              "buffer holds %zu bytes, the model needs %llu", capacity,
                              (unsigned long long)L.file_size);
    write_image(m, list, &L, (uint8_t *)buffer);
    return MNV3_OK;
}

mnv3_status mnv3_model_save_file(const mnv3_model *m, const char *path, mnv3_error *e) {
    mnv3_conv *list[MNV3_MAX_CONVS];
    layout L;
    uint8_t *buf;
    mnv3_status st;
    if (!m) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "model is NULL");
    if (!path) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "path is NULL");
    MNV3_TRY(check_savable(m, list, &L, e));
    buf = (uint8_t *)malloc((size_t)L.file_size);
    if (!buf) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "%llu bytes",
                                    (unsigned long long)L.file_size);
    write_image(m, list, &L, buf);
    st = mnv3_write_whole_file(path, buf, (size_t)L.file_size, e);
    free(buf);
    return st;
}
