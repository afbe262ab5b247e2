#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file_io.h"
#include "model.h"
#include "weights.h"

mnv3_status mnv3_read_whole_file(const char *path, uint8_t **data, void **raw, size_t *size,
                                 mnv3_error *e) {
    FILE *f;
    long end;
    uint8_t *buf;
    *data = NULL;
    *raw = NULL;
    *size = 0;
    f = fopen(path, "rb");
    if (!f) return mnv3_set_error(e, MNV3_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0 || (end = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        int err = errno;
        fclose(f);
        return mnv3_set_error(e, MNV3_ERR_IO, "cannot determine the size of %s: %s", path,
                              strerror(err));
    }
    if ((unsigned long)end > (unsigned long)(SIZE_MAX - 64)) {
        fclose(f);
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "%s: %ld bytes do not fit in memory",
                              path, end);
    }
    buf = (uint8_t *)mnv3_alloc_aligned(end ? (size_t)end : 1, raw);
    if (!buf) {
        fclose(f);
        return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "%s: %ld bytes", path, end);
    }
    if (fread(buf, 1, (size_t)end, f) != (size_t)end || fgetc(f) != EOF) {
        int err = errno;
        int failed = ferror(f);
        fclose(f);
        free(*raw);
        *raw = NULL;
        return mnv3_set_error(e, MNV3_ERR_IO, "cannot read %s: %s", path,
                              failed ? strerror(err) : "its size changed while reading");
    }
    fclose(f);
    *data = buf;
    *size = (size_t)end;
    return MNV3_OK;
}

mnv3_status mnv3_write_whole_file(const char *path, const void *data, size_t size,
                                  mnv3_error *e) {
    FILE *f = fopen(path, "wb");
    int failed;
    if (!f) return mnv3_set_error(e, MNV3_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    failed = fwrite(data, 1, size, f) != size;
    if (fclose(f) != 0) failed = 1;
    if (failed) {
        int err = errno;
        remove(path);
        return mnv3_set_error(e, MNV3_ERR_IO, "cannot write %s: %s", path, strerror(err));
    }
    return MNV3_OK;
}
