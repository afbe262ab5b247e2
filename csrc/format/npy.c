/* NumPy .npy reader and writer. The header is a Python dict literal; it is parsed with a
 * small tokenizer that accepts exactly what numpy writes (and the spacing variations other
 * writers produce), never evaluates anything, and bounds every read by the header length. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnv3_npy.h"
#include "model/model.h"
#include "file_io.h"
#include "model_file.h"
#include "base/alloc.h"

static const uint8_t npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

size_t mnv3_npy_dtype_size(mnv3_npy_dtype dtype) {
    switch (dtype) {
    case MNV3_NPY_FLOAT32: return 4;
    case MNV3_NPY_UINT8: return 1;
    case MNV3_NPY_INT8: return 1;
    }
    return 0;
}

void mnv3_npy_free(mnv3_npy_array *a) {
    if (!a) return;
    free(a->allocation);
    memset(a, 0, sizeof *a);
}

/* Sets *count to the element count of a shape; returns 0 when the product overflows a
 * size_t. A shape with a 0 dimension holds no elements, however large the others: that
 * product is never formed. Reader and writer share it, so they accept the same shapes. */
static int shape_count(uint32_t ndim, const size_t *shape, size_t *count) {
    size_t n = 1;
    uint32_t i;
    for (i = 0; i < ndim; ++i)
        if (shape[i] == 0) {
            *count = 0;
            return 1;
        }
    for (i = 0; i < ndim; ++i) {
        if (n > SIZE_MAX / shape[i]) return 0;
        n *= shape[i];
    }
    *count = n;
    return 1;
}

/* ---- header dict ---------------------------------------------------------------------- */

typedef struct lexer {
    const char *p, *end;
} lexer;

static void skip_space(lexer *l) {
    while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r'))
        ++l->p;
}

static int accept(lexer *l, char c) {
    skip_space(l);
    if (l->p < l->end && *l->p == c) {
        ++l->p;
        return 1;
    }
    return 0;
}

/* A quoted string without escapes (numpy never writes any in these fields). */
static int read_string(lexer *l, char *buf, size_t cap) {
    char q;
    size_t n = 0;
    skip_space(l);
    if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return 0;
    q = *l->p++;
    while (l->p < l->end && *l->p != q) {
        if (*l->p == '\\' || n + 1 >= cap) return 0;
        buf[n++] = *l->p++;
    }
    if (l->p >= l->end) return 0;
    ++l->p;
    buf[n] = '\0';
    return 1;
}

static int read_word(lexer *l, const char *word) {
    size_t n = strlen(word);
    skip_space(l);
    if ((size_t)(l->end - l->p) < n || memcmp(l->p, word, n) != 0) return 0;
    l->p += n;
    return 1;
}

/* 0 on success, else the status to report. */
static mnv3_status read_shape(lexer *l, mnv3_npy_array *a, mnv3_error *e) {
    if (!accept(l, '('))
        return mnv3_set_error(e, MNV3_ERR_BAD_METADATA, "npy header: shape is not a tuple");
    a->ndim = 0;
    for (;;) {
        uint64_t v = 0;
        int digits = 0;
        if (accept(l, ')')) break;
        skip_space(l);
        while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
            uint64_t digit = (uint64_t)(*l->p++ - '0');
            /* Exact: every value up to UINT64_MAX is taken, so whatever the writer writes
             * (any size_t) reads back. */
            if (v > (UINT64_MAX - digit) / 10)
                return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW,
                                      "npy header: shape entry overflows");
            v = v * 10 + digit;
            ++digits;
        }
        if (!digits)
            return mnv3_set_error(e, MNV3_ERR_BAD_METADATA,
                                  "npy header: shape entry is not a non-negative integer");
        if (l->p < l->end && *l->p == 'L') ++l->p; /* Python 2 long literals */
        if (a->ndim == MNV3_NPY_MAX_DIMS)
            return mnv3_set_error(e, MNV3_ERR_UNSUPPORTED,
                                  "npy header: more than %d dimensions", MNV3_NPY_MAX_DIMS);
        if (v > (uint64_t)SIZE_MAX)
            return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "npy header: shape entry overflows");
        a->shape[a->ndim++] = (size_t)v;
        if (accept(l, ')')) break;
        if (!accept(l, ','))
            return mnv3_set_error(e, MNV3_ERR_BAD_METADATA,
                                  "npy header: shape tuple is malformed");
    }
    return MNV3_OK;
}

static mnv3_status parse_header(const char *h, size_t len, mnv3_npy_array *a, mnv3_error *e) {
    lexer l;
    char key[32], descr[16];
    int have_descr = 0, have_order = 0, have_shape = 0;
    l.p = h;
    l.end = h + len;
    if (!accept(&l, '{'))
        return mnv3_set_error(e, MNV3_ERR_BAD_METADATA, "npy header is not a dict");
    while (!accept(&l, '}')) {
        if (!read_string(&l, key, sizeof key) || !accept(&l, ':'))
            return mnv3_set_error(e, MNV3_ERR_BAD_METADATA, "npy header: malformed key");
        if (strcmp(key, "descr") == 0 && !have_descr) {
            have_descr = 1;
            if (!read_string(&l, descr, sizeof descr))
                return mnv3_set_error(e, MNV3_ERR_BAD_METADATA,
                                      "npy header: descr is not a simple dtype string");
            if (strcmp(descr, "<f4") == 0)
                a->dtype = MNV3_NPY_FLOAT32;
            else if (strcmp(descr, "|u1") == 0 || strcmp(descr, "<u1") == 0 ||
                     strcmp(descr, "u1") == 0)
                a->dtype = MNV3_NPY_UINT8;
            else if (strcmp(descr, "|i1") == 0 || strcmp(descr, "<i1") == 0 ||
                     strcmp(descr, "i1") == 0)
                a->dtype = MNV3_NPY_INT8;
            else if (strcmp(descr, ">f4") == 0)
                return mnv3_set_error(e, MNV3_ERR_BAD_ENDIANNESS,
                                      "npy: big-endian float32 ('>f4') is not supported; "
                                      "save with dtype '<f4'");
            else
                return mnv3_set_error(e, MNV3_ERR_UNSUPPORTED,
                                      "npy: dtype '%s' is not supported (only '<f4', '|u1' and "
                                      "'|i1')",
                                      descr);
        } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
            have_order = 1;
            if (read_word(&l, "True"))
                return mnv3_set_error(e, MNV3_ERR_UNSUPPORTED,
                                      "npy: Fortran-order arrays are not supported; save a "
                                      "C-contiguous array (numpy.ascontiguousarray)");
            if (!read_word(&l, "False"))
                return mnv3_set_error(e, MNV3_ERR_BAD_METADATA,
                                      "npy header: fortran_order is not True or False");
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            mnv3_status st;
            have_shape = 1;
            st = read_shape(&l, a, e);
            if (st != MNV3_OK) return st;
        } else {
            return mnv3_set_error(e, MNV3_ERR_BAD_METADATA,
                                  "npy header: unexpected or repeated key '%s'", key);
        }
        if (!accept(&l, ',')) {
            if (!accept(&l, '}'))
                return mnv3_set_error(e, MNV3_ERR_BAD_METADATA,
                                      "npy header: expected ',' or '}' after '%s'", key);
            break;
        }
    }
    skip_space(&l);
    if (l.p != l.end)
        return mnv3_set_error(e, MNV3_ERR_BAD_METADATA, "npy header: text after the dict");
    if (!have_descr || !have_order || !have_shape)
        return mnv3_set_error(e, MNV3_ERR_BAD_METADATA,
                              "npy header lacks %s", !have_descr ? "descr"
                                                     : !have_order ? "fortran_order" : "shape");
    return MNV3_OK;
}

/* ---- reading -------------------------------------------------------------------------- */

mnv3_status mnv3_npy_parse(const void *bytes, size_t size, mnv3_npy_array *out,
                           mnv3_error *e) {
    const uint8_t *d = (const uint8_t *)bytes;
    mnv3_npy_array a;
    size_t header_len, prefix, elem, bytes_needed;
    mnv3_status st;
    if (!out) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "out is NULL");
    memset(out, 0, sizeof *out);
    if (!bytes) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "bytes is NULL");
    memset(&a, 0, sizeof a);
    if (size < 8)
        return mnv3_set_error(e, MNV3_ERR_FILE_TRUNCATED, "npy: %zu bytes is too short", size);
    if (memcmp(d, npy_magic, sizeof npy_magic) != 0)
        return mnv3_set_error(e, MNV3_ERR_BAD_MAGIC, "not a .npy file (bad magic)");
    if (d[6] == 1) {
        if (size < 10)
            return mnv3_set_error(e, MNV3_ERR_FILE_TRUNCATED, "npy: header length missing");
        header_len = (size_t)d[8] | (size_t)d[9] << 8;
        prefix = 10;
    } else if (d[6] == 2 || d[6] == 3) {
        uint32_t v;
        if (size < 12)
            return mnv3_set_error(e, MNV3_ERR_FILE_TRUNCATED, "npy: header length missing");
        v = (uint32_t)d[8] | (uint32_t)d[9] << 8 | (uint32_t)d[10] << 16 | (uint32_t)d[11] << 24;
        header_len = v;
        prefix = 12;
    } else {
        return mnv3_set_error(e, MNV3_ERR_BAD_VERSION, "npy: format version %u.%u not supported",
                              d[6], d[7]);
    }
    if (header_len > size - prefix)
        return mnv3_set_error(e, MNV3_ERR_FILE_TRUNCATED,
                              "npy: header of %zu bytes does not fit in %zu", header_len, size);
    st = parse_header((const char *)d + prefix, header_len, &a, e);
    if (st != MNV3_OK) return st;
    elem = mnv3_npy_dtype_size(a.dtype);
    if (!shape_count(a.ndim, a.shape, &a.count))
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "npy: shape product overflows");
    if (a.count > (SIZE_MAX - 64) / elem)
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "npy: %zu elements do not fit in memory",
                              a.count);
    bytes_needed = a.count * elem;
    if (bytes_needed > size - prefix - header_len)
        return mnv3_set_error(e, MNV3_ERR_FILE_TRUNCATED,
                              "npy: data needs %zu bytes, the file has %zu", bytes_needed,
                              size - prefix - header_len);
    if (bytes_needed < size - prefix - header_len)
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW,
                              "npy: %zu bytes follow the %zu data bytes",
                              size - prefix - header_len - bytes_needed, bytes_needed);
    a.data = mnv3_alloc_aligned(bytes_needed ? bytes_needed : 1, &a.allocation);
    if (!a.data) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "npy: %zu bytes", bytes_needed);
    if (bytes_needed) memcpy(a.data, d + prefix + header_len, bytes_needed);
    if (elem == 4 && !mnv3_host_is_little_endian()) mnv3_swap_words((uint8_t *)a.data, a.count);
    *out = a;
    return MNV3_OK;
}

mnv3_status mnv3_npy_read_file(const char *path, mnv3_npy_array *out, mnv3_error *e) {
    uint8_t *buf;
    void *raw;
    size_t size;
    mnv3_status st;
    if (!out) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "out is NULL");
    memset(out, 0, sizeof *out);
    if (!path) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "path is NULL");
    MNV3_TRY(mnv3_read_whole_file(path, &buf, &raw, &size, e));
    st = mnv3_npy_parse(buf, size, out, e);
    free(raw);
    if (st != MNV3_OK && e) {
        /* Name the file: the parser only saw bytes. */
        char msg[sizeof e->message];
        memcpy(msg, e->message, sizeof msg);
        mnv3_set_error(e, st, "%s: %s", path, msg);
    }
    return st;
}

/* ---- writing -------------------------------------------------------------------------- */

/* Builds the padded header (without the 10/12-byte prefix); returns its length. */
static size_t format_header(mnv3_npy_dtype dtype, uint32_t ndim, const size_t *shape,
                            char *buf, size_t cap, size_t *prefix) {
    size_t n, total, i;
    n = (size_t)snprintf(buf, cap, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                         dtype == MNV3_NPY_FLOAT32 ? "<f4"
                         : dtype == MNV3_NPY_INT8  ? "|i1"
                                                   : "|u1");
    /* Python tuple syntax: "()", "(5,)", "(2, 3)". */
    for (i = 0; i < ndim; ++i)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %zu" : "%zu", shape[i]);
    n += (size_t)snprintf(buf + n, cap - n, ndim == 1 ? ",), }" : "), }");
    *prefix = 10;
    total = (10 + n + 1 + 63) / 64 * 64; /* data starts 64-aligned, as numpy writes it */
    while (total - *prefix - 1 < n) total += 64;
    for (i = n; i < total - *prefix - 1; ++i) buf[i] = ' ';
    buf[total - *prefix - 1] = '\n';
    return total - *prefix;
}

mnv3_status mnv3_npy_write_memory(mnv3_npy_dtype dtype, uint32_t ndim, const size_t *shape,
                                  const void *data, void *buffer, size_t capacity, size_t *size,
                                  mnv3_error *e) {
    char header[64 * 8];
    size_t elem = mnv3_npy_dtype_size(dtype), count = 1, prefix, hlen, total;
    uint8_t *out = (uint8_t *)buffer;
    if (!elem) return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT, "npy: dtype %d unknown",
                                     (int)dtype);
    if (ndim > MNV3_NPY_MAX_DIMS)
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT, "npy: %u dimensions exceed %d", ndim,
                              MNV3_NPY_MAX_DIMS);
    if ((ndim && !shape) || (!buffer && !size))
        return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "npy: shape or size is NULL");
    if (!shape_count(ndim, shape, &count))
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "npy: shape product overflows");
    if (count > (SIZE_MAX - sizeof header) / elem)
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "npy: %zu elements", count);
    if (count && buffer && !data)
        return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "npy: data is NULL");
    hlen = format_header(dtype, ndim, shape, header, sizeof header, &prefix);
    total = prefix + hlen + count * elem;
    if (size) *size = total;
    if (!buffer) return MNV3_OK;
    if (capacity < total)
        return mnv3_set_error(e, MNV3_ERR_INVALID_ARGUMENT,
                              "npy: buffer holds %zu bytes, %zu needed", capacity, total);
    memcpy(out, npy_magic, sizeof npy_magic);
    out[6] = 1;
    out[7] = 0;
    out[8] = (uint8_t)hlen;
    out[9] = (uint8_t)(hlen >> 8);
    memcpy(out + prefix, header, hlen);
    if (count) memcpy(out + prefix + hlen, data, count * elem);
    if (elem == 4 && !mnv3_host_is_little_endian()) mnv3_swap_words(out + prefix + hlen, count);
    return MNV3_OK;
}

mnv3_status mnv3_npy_write_file(const char *path, mnv3_npy_dtype dtype, uint32_t ndim,
                                const size_t *shape, const void *data, mnv3_error *e) {
    size_t total = 0;
    uint8_t *buf;
    mnv3_status st;
    if (!path) return mnv3_set_error(e, MNV3_ERR_NULL_ARGUMENT, "path is NULL");
    st = mnv3_npy_write_memory(dtype, ndim, shape, data, NULL, 0, &total, e);
    if (st != MNV3_OK) return st;
    buf = (uint8_t *)malloc(total);
    if (!buf) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "npy: %zu bytes", total);
    st = mnv3_npy_write_memory(dtype, ndim, shape, data, buf, total, &total, e);
    if (st != MNV3_OK) {
        free(buf);
        return st;
    }
    st = mnv3_write_whole_file(path, buf, total, e);
    free(buf);
    return st;
}
