/* .npy reading and writing: round trips, the header variants numpy and other writers
 * produce, and a clear refusal for everything the reader does not take. */
#if !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* mkdtemp, mkfifo, alarm */
#endif
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "mnv3.h"
#include "mnv3_npy.h"
#include "special_files.h"

/* Builds a v1.0 file from a header text (padded as given) and raw data bytes. */
static size_t make_npy(uint8_t *out, const char *header, const void *data, size_t data_len) {
    size_t h = strlen(header);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (uint8_t)h;
    out[9] = (uint8_t)(h >> 8);
    memcpy(out + 10, header, h);
    if (data_len) memcpy(out + 10 + h, data, data_len);
    return 10 + h + data_len;
}

static mnv3_status parse(const uint8_t *d, size_t n, mnv3_npy_array *a, mnv3_error *e) {
    mnv3_status st = mnv3_npy_parse(d, n, a, e);
    if (st != MNV3_OK) CHECK(a->data == NULL && a->allocation == NULL);
    return st;
}

static void test_round_trip(void) {
    float f[2 * 3 * 4];
    uint8_t u[5], buf[512];
    size_t shape[3] = {2, 3, 4}, n = 0, i;
    mnv3_npy_array a;
    mnv3_error err;
    const char *dir = getenv("BUILD");
    char path[512];
    for (i = 0; i < 24; ++i) f[i] = (float)i * 0.5f - 3.25f;
    for (i = 0; i < 5; ++i) u[i] = (uint8_t)(i * 60);

    CHECK_STATUS(mnv3_npy_write_memory(MNV3_NPY_FLOAT32, 3, shape, f, NULL, 0, &n, &err), MNV3_OK);
    CHECK(n == 128 + sizeof f); /* header padded so the data starts 64-aligned */
    CHECK_STATUS(mnv3_npy_write_memory(MNV3_NPY_FLOAT32, 3, shape, f, buf, sizeof buf, &n, &err),
                 MNV3_OK);
    CHECK(memcmp(buf + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }", 62) == 0);
    CHECK(buf[127] == '\n');
    CHECK_STATUS(parse(buf, n, &a, &err), MNV3_OK);
    CHECK(a.dtype == MNV3_NPY_FLOAT32 && a.ndim == 3 && a.shape[0] == 2 && a.shape[1] == 3 &&
          a.shape[2] == 4 && a.count == 24);
    CHECK(a.data && ((uintptr_t)a.data & 63u) == 0 && memcmp(a.data, f, sizeof f) == 0);
    mnv3_npy_free(&a);
    CHECK(a.data == NULL);

    snprintf(path, sizeof path, "%s/test_npy.tmp.npy", dir ? dir : ".");
    shape[0] = 5;
    CHECK_STATUS(mnv3_npy_write_file(path, MNV3_NPY_UINT8, 1, shape, u, &err), MNV3_OK);
    CHECK_STATUS(mnv3_npy_read_file(path, &a, &err), MNV3_OK);
    CHECK(a.dtype == MNV3_NPY_UINT8 && a.ndim == 1 && a.shape[0] == 5 && a.count == 5);
    CHECK(a.data && memcmp(a.data, u, 5) == 0);
    mnv3_npy_free(&a);
    remove(path);
    CHECK_STATUS(mnv3_npy_read_file(path, &a, &err), MNV3_ERR_IO);
    CHECK(strstr(err.message, "test_npy.tmp.npy") != NULL);

    /* int8 (quantized tensors): written as '|i1', read back with the sign. */
    {
        const int8_t q[5] = {-128, -1, 0, 1, 127};
        CHECK(mnv3_npy_dtype_size(MNV3_NPY_INT8) == 1);
        CHECK_STATUS(mnv3_npy_write_memory(MNV3_NPY_INT8, 1, shape, q, buf, sizeof buf, &n, &err),
                     MNV3_OK);
        CHECK(memcmp(buf + 10, "{'descr': '|i1', 'fortran_order': False, 'shape': (5,), }", 57) ==
              0);
        CHECK_STATUS(parse(buf, n, &a, &err), MNV3_OK);
        CHECK(a.dtype == MNV3_NPY_INT8 && a.ndim == 1 && a.count == 5);
        CHECK(a.data && memcmp(a.data, q, 5) == 0 && ((const int8_t *)a.data)[0] == -128);
        mnv3_npy_free(&a);
        n = make_npy(buf, "{'descr': '<i1', 'fortran_order': False, 'shape': (2,), }", q, 2);
        CHECK_STATUS(parse(buf, n, &a, &err), MNV3_OK);
        CHECK(a.dtype == MNV3_NPY_INT8 && a.count == 2);
        mnv3_npy_free(&a);
    }

    /* 0-d and empty arrays. */
    CHECK_STATUS(mnv3_npy_write_memory(MNV3_NPY_FLOAT32, 0, NULL, f, buf, sizeof buf, &n, &err),
                 MNV3_OK);
    CHECK_STATUS(parse(buf, n, &a, &err), MNV3_OK);
    CHECK(a.ndim == 0 && a.count == 1 && ((float *)a.data)[0] == f[0]);
    mnv3_npy_free(&a);
    shape[0] = 0;
    CHECK_STATUS(mnv3_npy_write_memory(MNV3_NPY_FLOAT32, 2, shape, NULL, buf, sizeof buf, &n, &err),
                 MNV3_OK);
    CHECK_STATUS(parse(buf, n, &a, &err), MNV3_OK);
    CHECK(a.ndim == 2 && a.count == 0 && a.data != NULL);
    mnv3_npy_free(&a);
    mnv3_npy_free(NULL);
}

static void test_variants(void) {
    uint8_t buf[512];
    float two[2] = {1.5f, -2.0f};
    uint8_t bytes[3] = {1, 2, 3};
    mnv3_npy_array a;
    mnv3_error err;
    size_t n;
    /* Unpadded, double quotes, no spaces, '<u1', Python 2 longs, "(n)" without comma. */
    n = make_npy(buf, "{\"descr\":\"<u1\",\"fortran_order\":False,\"shape\":(3L)}", bytes, 3);
    CHECK_STATUS(parse(buf, n, &a, &err), MNV3_OK);
    CHECK(a.dtype == MNV3_NPY_UINT8 && a.ndim == 1 && a.count == 3);
    mnv3_npy_free(&a);
    /* Keys in another order, trailing comma and newline. */
    n = make_npy(buf, "{'shape': (2,), 'fortran_order': False, 'descr': '<f4', }  \n", two, 8);
    CHECK_STATUS(parse(buf, n, &a, &err), MNV3_OK);
    CHECK(a.count == 2 && ((float *)a.data)[1] == -2.0f);
    mnv3_npy_free(&a);
    /* Version 2.0: 4-byte header length. */
    {
        const char *h = "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }\n";
        size_t hl = strlen(h);
        memcpy(buf, "\x93NUMPY\x02\x00", 8);
        buf[8] = (uint8_t)hl;
        buf[9] = buf[10] = buf[11] = 0;
        memcpy(buf + 12, h, hl);
        memcpy(buf + 12 + hl, bytes, 3);
        CHECK_STATUS(parse(buf, 12 + hl + 3, &a, &err), MNV3_OK);
        CHECK(a.count == 3 && ((uint8_t *)a.data)[2] == 3);
        mnv3_npy_free(&a);
    }
}

static void expect_header(const char *header, size_t data_len, mnv3_status want,
                          const char *fragment) {
    uint8_t buf[512], zeros[64] = {0};
    mnv3_npy_array a;
    mnv3_error err;
    size_t n = make_npy(buf, header, zeros, data_len);
    mnv3_status st = parse(buf, n, &a, &err);
    CHECK_MSG(st == want, "header %s: got %d (%s), expected %d", header, (int)st,
              st == MNV3_OK ? "ok" : err.message, (int)want);
    if (st == MNV3_OK) mnv3_npy_free(&a);
    if (fragment && st != MNV3_OK)
        CHECK_MSG(strstr(err.message, fragment) != NULL, "message \"%s\" lacks \"%s\"",
                  err.message, fragment);
}

static void test_refusals(void) {
    uint8_t buf[512];
    float f[6] = {0};
    size_t shape[2] = {2, 3}, n = 0, cut;
    mnv3_npy_array a;
    mnv3_error err;

    expect_header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24,
                  MNV3_ERR_UNSUPPORTED, "Fortran");
    expect_header("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 24,
                  MNV3_ERR_UNSUPPORTED, "'<f8'");
    expect_header("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", 12,
                  MNV3_ERR_UNSUPPORTED, "'<i4'");
    expect_header("{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", 12,
                  MNV3_ERR_BAD_ENDIANNESS, "big-endian");
    expect_header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", 12,
                  MNV3_ERR_BAD_METADATA, "descr");
    expect_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20,
                  MNV3_ERR_FILE_TRUNCATED, "24 bytes");
    expect_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28,
                  MNV3_ERR_SIZE_OVERFLOW, "follow");
    expect_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, "
                  "4294967296, 4294967296), }", 0, MNV3_ERR_SIZE_OVERFLOW, "overflows");
    expect_header("{'descr': '<f4', 'fortran_order': False, 'shape': "
                  "(99999999999999999999999,), }", 0, MNV3_ERR_SIZE_OVERFLOW, "overflows");
    expect_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }",
                  4, MNV3_ERR_UNSUPPORTED, "dimensions");
    expect_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 4,
                  MNV3_ERR_BAD_METADATA, "shape");
    expect_header("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", 8,
                  MNV3_ERR_BAD_METADATA, "tuple");
    expect_header("{'descr': '<f4', 'fortran_order': False }", 4, MNV3_ERR_BAD_METADATA,
                  "lacks shape");
    expect_header("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4,
                  MNV3_ERR_BAD_METADATA, "repeated");
    expect_header("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", 4,
                  MNV3_ERR_BAD_METADATA, "fortran_order");
    expect_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4,
                  MNV3_ERR_BAD_METADATA, "'x'");
    expect_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } junk", 4,
                  MNV3_ERR_BAD_METADATA, "after");
    expect_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", 4,
                  MNV3_ERR_BAD_METADATA, NULL);
    expect_header("{'descr: '<f4'}", 4, MNV3_ERR_BAD_METADATA, NULL);
    expect_header("", 4, MNV3_ERR_BAD_METADATA, "dict");

    CHECK_STATUS(mnv3_npy_write_memory(MNV3_NPY_FLOAT32, 2, shape, f, buf, sizeof buf, &n, &err),
                 MNV3_OK);
    buf[0] = 'X';
    CHECK_STATUS(parse(buf, n, &a, &err), MNV3_ERR_BAD_MAGIC);
    buf[0] = 0x93;
    buf[6] = 4;
    CHECK_STATUS(parse(buf, n, &a, &err), MNV3_ERR_BAD_VERSION);
    buf[6] = 1;
    buf[8] = 0xFF; /* header longer than the file */
    CHECK_STATUS(parse(buf, n, &a, &err), MNV3_ERR_FILE_TRUNCATED);
    buf[8] = 118;
    CHECK_STATUS(parse(buf, n, &a, &err), MNV3_OK);
    mnv3_npy_free(&a);
    /* Every proper prefix is refused. */
    for (cut = 0; cut < n; ++cut) CHECK(mnv3_npy_parse(buf, cut, &a, NULL) != MNV3_OK);

    CHECK_STATUS(mnv3_npy_parse(NULL, 10, &a, &err), MNV3_ERR_NULL_ARGUMENT);
    CHECK_STATUS(mnv3_npy_write_memory((mnv3_npy_dtype)7, 2, shape, f, NULL, 0, &n, &err),
                 MNV3_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(mnv3_npy_write_memory(MNV3_NPY_FLOAT32, 9, shape, f, NULL, 0, &n, &err),
                 MNV3_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(mnv3_npy_write_memory(MNV3_NPY_FLOAT32, 2, shape, f, buf, 10, &n, &err),
                 MNV3_ERR_INVALID_ARGUMENT);
}

/* Writer and reader agree on every shape: any size_t dimension is written and read back
 * (a shape with a 0 holds no elements however large its other dimensions), and the reader
 * refuses only what does not fit in a size_t, which the writer cannot express. */
static void test_extreme_shapes(void) {
    static const size_t big[] = {SIZE_MAX,      SIZE_MAX - 1,  SIZE_MAX - 5, SIZE_MAX - 6,
                                 SIZE_MAX - 15, SIZE_MAX - 16, SIZE_MAX / 2, SIZE_MAX / 10};
    uint8_t buf[512];
    char header[256], digits[32];
    size_t shape[MNV3_NPY_MAX_DIMS], n, i, k, len;
    mnv3_npy_array a;
    mnv3_error err;
    for (i = 0; i < sizeof big / sizeof *big; ++i) {
        for (k = 0; k < 2; ++k) {
            shape[k] = big[i];
            shape[1 - k] = 0;
            CHECK_STATUS(mnv3_npy_write_memory(MNV3_NPY_FLOAT32, 2, shape, NULL, buf, sizeof buf,
                                               &n, &err), MNV3_OK);
            CHECK_STATUS(parse(buf, n, &a, &err), MNV3_OK);
            CHECK_MSG(a.ndim == 2 && a.shape[k] == big[i] && a.shape[1 - k] == 0 && a.count == 0,
                      "shape with %zu does not read back", big[i]);
            mnv3_npy_free(&a);
        }
    }
    for (i = 0; i < MNV3_NPY_MAX_DIMS; ++i) shape[i] = i == 3 ? 0 : SIZE_MAX;
    CHECK_STATUS(mnv3_npy_write_memory(MNV3_NPY_UINT8, MNV3_NPY_MAX_DIMS, shape, NULL, buf,
                                       sizeof buf, &n, &err), MNV3_OK);
    CHECK_STATUS(parse(buf, n, &a, &err), MNV3_OK);
    CHECK(a.ndim == MNV3_NPY_MAX_DIMS && a.shape[7] == SIZE_MAX && a.count == 0);
    mnv3_npy_free(&a);

    /* Reader direction: SIZE_MAX in the text is taken, SIZE_MAX + 1 is not. Both 2^32 - 1
     * and 2^64 - 1 end in 5, so adding one is a change of the last digit. */
    snprintf(digits, sizeof digits, "%zu", (size_t)SIZE_MAX);
    len = strlen(digits);
    snprintf(header, sizeof header,
             "{'descr': '<f4', 'fortran_order': False, 'shape': (%s, 0), }", digits);
    expect_header(header, 0, MNV3_OK, NULL);
    CHECK(digits[len - 1] == '5');
    digits[len - 1] = '6';
    snprintf(header, sizeof header,
             "{'descr': '<f4', 'fortran_order': False, 'shape': (%s, 0), }", digits);
    expect_header(header, 0, MNV3_ERR_SIZE_OVERFLOW, "overflows");
}

static mnv3_status read_path(const char *path, mnv3_error *err) {
    mnv3_npy_array a;
    mnv3_status st = mnv3_npy_read_file(path, &a, err);
    if (st == MNV3_OK)
        mnv3_npy_free(&a);
    else
        CHECK(a.data == NULL && a.allocation == NULL);
    return st;
}

/* Writes 4096 floats (16 KiB). */
static mnv3_status write_path(const char *path, mnv3_error *err) {
    static float data[4096];
    const size_t shape[2] = {64, 64};
    return mnv3_npy_write_file(path, MNV3_NPY_FLOAT32, 2, shape, data, err);
}

int main(void) {
    test_round_trip();
    test_extreme_shapes();
    test_special_files(read_path, "test_npy");
    test_special_files_for_writing(write_path, "test_npy");
    test_variants();
    test_refusals();
    return check_summary("test_npy");
}
