#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _XOPEN_SOURCE 700 /* POSIX.1-2008 with realpath() */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file_io.h"
#include "base/alloc.h"
#include "base/status.h"

#if !defined(_WIN32)
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

static const char *file_kind(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
#ifdef S_ISSOCK
    if (S_ISSOCK(mode)) return "a socket";
#endif
    return "not a regular file";
}

static mnv3_status refuse_kind(const char *verb, const char *path, mode_t mode,
                               mnv3_error *e) {
    const char *kind = file_kind(mode);
    return mnv3_set_error(e, MNV3_ERR_IO, "cannot %s %s: it is %s%s", verb, path, kind,
                          kind[0] == 'a' ? ", not a regular file" : "");
}

static mnv3_status not_regular(const char *path, mode_t mode, mnv3_error *e) {
    return refuse_kind("read", path, mode, e);
}

/* read() until `want` bytes or end of file; returns the count, or -1 with errno set. */
static long long read_fully(int fd, uint8_t *buf, size_t want) {
    size_t got = 0;
    while (got < want) {
        size_t chunk = want - got > ((size_t)1 << 30) ? ((size_t)1 << 30) : want - got;
        ssize_t n = read(fd, buf + got, chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    return (long long)got;
}

/* A regular file whose size reads as 0 (Linux /proc and similar pseudo-files): read to
 * end of file, at most MNV3_UNSIZED_FILE_MAX bytes. */
static mnv3_status read_unsized(int fd, const char *path, uint8_t **data, void **raw,
                                size_t *size, mnv3_error *e) {
    const size_t limit = MNV3_UNSIZED_FILE_MAX;
    size_t cap = 4096, used = 0;
    uint8_t *tmp = (uint8_t *)malloc(cap), *buf;
    if (!tmp) return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "%s: %zu bytes", path, cap);
    for (;;) {
        long long n;
        if (used == cap) {
            /* Room for one byte past the limit tells "exactly at" from "over". */
            size_t want = cap > limit / 2 ? limit + 1 : cap * 2;
            uint8_t *bigger;
            if (cap > limit) {
                free(tmp);
                return mnv3_set_error(e, MNV3_ERR_IO,
                                      "cannot read %s: its size reads as 0 and it holds more "
                                      "than %zu bytes", path, limit);
            }
            bigger = (uint8_t *)realloc(tmp, want);
            if (!bigger) {
                free(tmp);
                return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "%s: %zu bytes", path, want);
            }
            tmp = bigger;
            cap = want;
        }
        n = read_fully(fd, tmp + used, cap - used);
        if (n < 0) {
            int err = errno;
            free(tmp);
            return mnv3_set_error(e, MNV3_ERR_IO, "cannot read %s: %s", path, strerror(err));
        }
        if (n == 0) break;
        used += (size_t)n;
    }
    buf = (uint8_t *)mnv3_alloc_aligned(used ? used : 1, raw);
    if (!buf) {
        free(tmp);
        return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "%s: %zu bytes", path, used);
    }
    if (used) memcpy(buf, tmp, used);
    free(tmp);
    *data = buf;
    *size = used;
    return MNV3_OK;
}

static mnv3_status read_open_file(int fd, const char *path, uint8_t **data, void **raw,
                                  size_t *size, mnv3_error *e) {
    struct stat st;
    uint8_t *buf, extra;
    size_t len;
    long long n;
    int flags;
    if (fstat(fd, &st) != 0)
        return mnv3_set_error(e, MNV3_ERR_IO, "cannot determine the size of %s: %s", path,
                              strerror(errno));
    if (!S_ISREG(st.st_mode)) return not_regular(path, st.st_mode, e);
    /* Opened without blocking so that a FIFO could not hang the open; reads of a regular
     * file go back to the ordinary mode. */
    flags = fcntl(fd, F_GETFL);
    if (flags != -1 && (flags & O_NONBLOCK)) (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    if (st.st_size < 0)
        return mnv3_set_error(e, MNV3_ERR_IO, "cannot read %s: negative size", path);
    if ((unsigned long long)st.st_size > (unsigned long long)(SIZE_MAX - 64))
        return mnv3_set_error(e, MNV3_ERR_SIZE_OVERFLOW, "%s: %llu bytes do not fit in memory",
                              path, (unsigned long long)st.st_size);
    if (st.st_size == 0) return read_unsized(fd, path, data, raw, size, e);
    len = (size_t)st.st_size;
    buf = (uint8_t *)mnv3_alloc_aligned(len, raw);
    if (!buf)
        return mnv3_set_error(e, MNV3_ERR_OUT_OF_MEMORY, "%s: %zu bytes", path, len);
    n = read_fully(fd, buf, len);
    if (n == (long long)len) {
        long long more = read_fully(fd, &extra, 1); /* a file that grew is caught here */
        if (more != 0) n = more < 0 ? -1 : n + more;
    }
    if (n != (long long)len) {
        int err = errno;
        free(*raw);
        *raw = NULL;
        return mnv3_set_error(e, MNV3_ERR_IO, "cannot read %s: %s", path,
                              n < 0 ? strerror(err) : "its size changed while reading");
    }
    *data = buf;
    *size = len;
    return MNV3_OK;
}

mnv3_status mnv3_read_whole_file(const char *path, uint8_t **data, void **raw, size_t *size,
                                 mnv3_error *e) {
    int fd, oflags = O_RDONLY | O_NONBLOCK | O_NOCTTY;
    mnv3_status st;
    *data = NULL;
    *raw = NULL;
    *size = 0;
#ifdef O_CLOEXEC
    oflags |= O_CLOEXEC;
#endif
    do {
        fd = open(path, oflags);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int err = errno;
        struct stat sb;
        /* A socket cannot be opened at all: say what it is rather than ENXIO. */
        if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
            return not_regular(path, sb.st_mode, e);
        return mnv3_set_error(e, MNV3_ERR_IO, "cannot open %s: %s", path, strerror(err));
    }
    st = read_open_file(fd, path, data, raw, size, e);
    close(fd);
    return st;
}

#else /* _WIN32: the C library's stdio */

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

#endif

#if !defined(_WIN32)

/* write() until all of `size` bytes are written; 0, or -1 with errno set. */
static int write_fully(int fd, const uint8_t *buf, size_t size) {
    while (size > 0) {
        size_t chunk = size > ((size_t)1 << 30) ? ((size_t)1 << 30) : size;
        ssize_t n = write(fd, buf, chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        buf += n;
        size -= (size_t)n;
    }
    return 0;
}

/* Creates a new file beside `target` (its name plus ".tmp-PID-N"), never one that exists:
 * O_EXCL, and without blocking or following a link planted under that name. */
static int create_temporary(const char *target, char *name, size_t capacity, mnv3_error *e,
                            mnv3_status *status) {
    int oflags = O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK | O_NOCTTY, attempt;
#ifdef O_CLOEXEC
    oflags |= O_CLOEXEC;
#endif
#ifdef O_NOFOLLOW
    oflags |= O_NOFOLLOW;
#endif
    for (attempt = 0; attempt < 100; ++attempt) {
        int fd, n;
        /* The process, the calling thread's stack and the attempt tell concurrent saves of
         * one path apart; a name that exists anyway is skipped. */
        n = snprintf(name, capacity, "%s.tmp-%ld-%lx%02d", target, (long)getpid(),
                     (unsigned long)((size_t)&fd >> 4 & 0xFFFFFu), attempt);
        if (n < 0 || (size_t)n >= capacity) {
            *status = mnv3_set_error(e, MNV3_ERR_IO, "cannot write %s: the path is too long",
                                     target);
            return -1;
        }
        do {
            fd = open(name, oflags, 0666);
        } while (fd < 0 && errno == EINTR);
        if (fd >= 0) return fd;
        if (errno != EEXIST) {
            *status = mnv3_set_error(e, MNV3_ERR_IO, "cannot create %s: %s", target,
                                     strerror(errno));
            return -1;
        }
    }
    *status = mnv3_set_error(e, MNV3_ERR_IO, "cannot create a temporary file beside %s", target);
    return -1;
}

mnv3_status mnv3_write_whole_file(const char *path, const void *data, size_t size,
                                  mnv3_error *e) {
    char resolved[PATH_MAX], temp[PATH_MAX + 64];
    const char *target = path;
    struct stat st, tst;
    int fd, have_old = 0, failed, err;
    mnv3_status status = MNV3_OK;
    /* What the name stands for now, without opening it: opening a FIFO, even without
     * blocking, or a device could have effects of its own. A link is followed, so that
     * the file it names is replaced and the link stays. */
    if (lstat(path, &st) == 0) {
        if (S_ISLNK(st.st_mode)) {
            if (stat(path, &st) != 0)
                return mnv3_set_error(e, MNV3_ERR_IO,
                                      "cannot write %s: it is a symbolic link to nothing (%s)",
                                      path, strerror(errno));
            if (S_ISREG(st.st_mode)) {
                if (!realpath(path, resolved))
                    return mnv3_set_error(e, MNV3_ERR_IO, "cannot write %s: %s", path,
                                          strerror(errno));
                target = resolved;
            }
        }
        if (!S_ISREG(st.st_mode)) return refuse_kind("write", path, st.st_mode, e);
        /* Replacing a file the caller may not write would bypass its permissions. */
        if (access(target, W_OK) != 0)
            return mnv3_set_error(e, MNV3_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        have_old = 1;
    } else if (errno != ENOENT) {
        return mnv3_set_error(e, MNV3_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    }
    /* The bytes go to a new file in the same directory, which then takes the name in one
     * step: a failed save leaves the old file (or none), never a part of the new one. */
    fd = create_temporary(target, temp, sizeof temp, e, &status);
    if (fd < 0) return status;
    if (fstat(fd, &tst) != 0 || !S_ISREG(tst.st_mode)) {
        const char *why = fstat(fd, &tst) != 0 ? strerror(errno) : file_kind(tst.st_mode);
        close(fd);
        unlink(temp);
        return mnv3_set_error(e, MNV3_ERR_IO, "cannot write %s: its temporary file %s: %s", path,
                              temp, why);
    }
    /* A replaced file keeps its permissions, as it would have if written over. */
    if (have_old) (void)fchmod(fd, st.st_mode & 07777);
    failed = write_fully(fd, (const uint8_t *)data, size) != 0 || fsync(fd) != 0;
    err = errno;
    if (close(fd) != 0 && !failed) {
        failed = 1;
        err = errno;
    }
    if (!failed && rename(temp, target) != 0) {
        failed = 1;
        err = errno;
    }
    if (failed) {
        unlink(temp);
        return mnv3_set_error(e, MNV3_ERR_IO, "cannot write %s: %s%s", path, strerror(err),
                              have_old ? " (the file is unchanged)" : "");
    }
    return MNV3_OK;
}

#else /* _WIN32: the C library's stdio; the old file is removed just before the rename */

mnv3_status mnv3_write_whole_file(const char *path, const void *data, size_t size,
                                  mnv3_error *e) {
    char temp[4096];
    FILE *f;
    int failed, n = snprintf(temp, sizeof temp, "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof temp)
        return mnv3_set_error(e, MNV3_ERR_IO, "cannot write %s: the path is too long", path);
    f = fopen(temp, "wb");
    if (!f) return mnv3_set_error(e, MNV3_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    failed = fwrite(data, 1, size, f) != size;
    if (fclose(f) != 0) failed = 1;
    if (!failed) {
        remove(path);
        failed = rename(temp, path) != 0;
    }
    if (failed) {
        int err = errno;
        remove(temp);
        return mnv3_set_error(e, MNV3_ERR_IO, "cannot write %s: %s", path, strerror(err));
    }
    return MNV3_OK;
}

#endif
