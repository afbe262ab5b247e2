/* Paths that are not regular files, for the loaders' and savers' refusals: a directory, a
 * FIFO, a socket, a character device, and a pseudo-file whose size reads as 0. Include
 * after defining _POSIX_C_SOURCE 200809L. Each reader or writer under test is called
 * through a callback that returns its status and message; an alarm guards against an open,
 * read or write that blocks. The writers' tests also check that a save never leaves a
 * partial file: a write cut short by RLIMIT_FSIZE leaves the old file as it was, and no
 * temporary file stays behind. */
#ifndef MNV3_SPECIAL_FILES_H
#define MNV3_SPECIAL_FILES_H

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "mnv3.h"

typedef mnv3_status (*path_reader)(const char *path, mnv3_error *error);

static void expect_refusal(path_reader reader, const char *path, mnv3_status want,
                           const char *fragment) {
    mnv3_error err;
    mnv3_status st;
    memset(&err, 0, sizeof err);
    alarm(20); /* a blocking open or read ends the test with SIGALRM instead of hanging */
    st = reader(path, &err);
    alarm(0);
    CHECK_MSG(st == want, "%s: got %d (%s: %s), expected %d (%s)", path, (int)st,
              mnv3_status_string(st), err.message, (int)want, mnv3_status_string(want));
    if (fragment)
        CHECK_MSG(strstr(err.message, fragment) != NULL, "%s: message \"%s\" lacks \"%s\"", path,
                  err.message, fragment);
    if (st == MNV3_ERR_IO)
        CHECK_MSG(strstr(err.message, path) != NULL, "message \"%s\" lacks %s", err.message,
                  path);
}

static void test_special_files(path_reader reader, const char *tag) {
    const char *build = getenv("BUILD");
    char dir[512], fifo[600], sock[600];
    int s;
    struct sockaddr_un addr;
    snprintf(dir, sizeof dir, "%s/%s.special.XXXXXX", build ? build : ".", tag);
    if (!mkdtemp(dir)) {
        SKIP("special files: cannot make a temporary directory in %s", build ? build : ".");
        return;
    }
    expect_refusal(reader, dir, MNV3_ERR_IO, "is a directory");

    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    if (mkfifo(fifo, 0600) == 0) {
        expect_refusal(reader, fifo, MNV3_ERR_IO, "is a FIFO");
        remove(fifo);
    } else {
        SKIP("special files: mkfifo failed");
    }

    snprintf(sock, sizeof sock, "%s/sock", dir);
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (s >= 0 && strlen(sock) < sizeof addr.sun_path) {
        memcpy(addr.sun_path, sock, strlen(sock) + 1);
        if (bind(s, (struct sockaddr *)&addr, sizeof addr) == 0) {
            expect_refusal(reader, sock, MNV3_ERR_IO, "is a socket");
            remove(sock);
        } else {
            SKIP("special files: cannot bind a socket");
        }
    } else {
        SKIP("special files: no Unix socket");
    }
    if (s >= 0) close(s);
    rmdir(dir);

    if (access("/dev/null", F_OK) == 0)
        expect_refusal(reader, "/dev/null", MNV3_ERR_IO, "is a character device");
    /* Reported as 0 bytes long, yet it has content: read to its end, then judged by it. */
    if (access("/proc/self/status", R_OK) == 0)
        expect_refusal(reader, "/proc/self/status", MNV3_ERR_BAD_MAGIC, NULL);
    else
        SKIP("special files: no /proc/self/status");
}

static int file_equals(const char *path, const char *text) {
    char buf[256];
    size_t n;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return n == strlen(text) && memcmp(buf, text, n) == 0;
}

static long file_size(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot create %s", path);
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

/* Names in `dir` other than "." and ".." that are not in the NULL-terminated `expected`. */
static int unexpected_entries(const char *dir, const char *const *expected) {
    DIR *d = opendir(dir);
    struct dirent *ent;
    int extra = 0;
    if (!d) return -1;
    while ((ent = readdir(d)) != NULL) {
        const char *const *x;
        int known = strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0;
        for (x = expected; !known && *x; ++x) known = strcmp(ent->d_name, *x) == 0;
        if (!known) {
            fprintf(stderr, "left behind in %s: %s\n", dir, ent->d_name);
            ++extra;
        }
    }
    closedir(d);
    return extra;
}

/* `writer` saves something of more than 1 KiB to a path. */
static void test_special_files_for_writing(path_reader writer, const char *tag) {
    static const char *const left[] = {"fifo", "old", "link", "target", "readonly", NULL};
    const char *build = getenv("BUILD");
    char dir[512], fifo[600], sock[600], old[600], link_path[600], target[600], ro[600],
        dangling[600], missing[600];
    struct stat sb;
    struct rlimit saved, small;
    int s;
    struct sockaddr_un addr;
    snprintf(dir, sizeof dir, "%s/%s.special-w.XXXXXX", build ? build : ".", tag);
    if (!mkdtemp(dir)) {
        SKIP("special files: cannot make a temporary directory in %s", build ? build : ".");
        return;
    }
    expect_refusal(writer, dir, MNV3_ERR_IO, "is a directory");

    /* Without a reader, opening a FIFO for writing would block for ever. */
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    if (mkfifo(fifo, 0600) == 0) {
        expect_refusal(writer, fifo, MNV3_ERR_IO, "is a FIFO");
        CHECK_MSG(lstat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode), "%s was replaced", fifo);
    } else {
        SKIP("special files: mkfifo failed");
    }

    snprintf(sock, sizeof sock, "%s/sock", dir);
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (s >= 0 && strlen(sock) < sizeof addr.sun_path) {
        memcpy(addr.sun_path, sock, strlen(sock) + 1);
        if (bind(s, (struct sockaddr *)&addr, sizeof addr) == 0) {
            expect_refusal(writer, sock, MNV3_ERR_IO, "is a socket");
            remove(sock);
        } else {
            SKIP("special files: cannot bind a socket");
        }
    } else {
        SKIP("special files: no Unix socket");
    }
    if (s >= 0) close(s);
    if (access("/dev/null", F_OK) == 0)
        expect_refusal(writer, "/dev/null", MNV3_ERR_IO, "is a character device");

    snprintf(missing, sizeof missing, "%s/no-such-dir/x", dir);
    expect_refusal(writer, missing, MNV3_ERR_IO, NULL);
    snprintf(dangling, sizeof dangling, "%s/dangling", dir);
    if (symlink("no-such-file", dangling) == 0) {
        expect_refusal(writer, dangling, MNV3_ERR_IO, "symbolic link to nothing");
        remove(dangling);
    }

    /* A write cut short (the file size limit) fails and leaves the old file as it was. */
    snprintf(old, sizeof old, "%s/old", dir);
    write_text(old, "the previous contents");
    if (getrlimit(RLIMIT_FSIZE, &saved) == 0) {
        void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
        small = saved;
        small.rlim_cur = 1024;
        if (setrlimit(RLIMIT_FSIZE, &small) == 0) {
            expect_refusal(writer, old, MNV3_ERR_IO, "unchanged");
            setrlimit(RLIMIT_FSIZE, &saved);
            CHECK_MSG(file_equals(old, "the previous contents"), "%s was changed by a failed save",
                      old);
        } else {
            SKIP("special files: cannot lower RLIMIT_FSIZE");
        }
        signal(SIGXFSZ, was);
    }
    /* A successful save replaces it, with its permissions. */
    chmod(old, 0640);
    expect_refusal(writer, old, MNV3_OK, NULL);
    CHECK_MSG(file_size(old) > 1024, "%s: %ld bytes after the save", old, file_size(old));
    CHECK(stat(old, &sb) == 0 && (sb.st_mode & 0777) == 0640);

    /* A link is followed: the file it names is replaced, the link stays a link. */
    snprintf(target, sizeof target, "%s/target", dir);
    snprintf(link_path, sizeof link_path, "%s/link", dir);
    write_text(target, "x");
    if (symlink("target", link_path) == 0) {
        expect_refusal(writer, link_path, MNV3_OK, NULL);
        CHECK(lstat(link_path, &sb) == 0 && S_ISLNK(sb.st_mode));
        CHECK_MSG(file_size(target) > 1024, "%s: %ld bytes", target, file_size(target));
    } else {
        write_text(link_path, "x");
        SKIP("special files: symlink failed");
    }

    /* A file the caller may not write is not replaced (root may write anything). */
    snprintf(ro, sizeof ro, "%s/readonly", dir);
    write_text(ro, "keep");
    chmod(ro, 0444);
    if (access(ro, W_OK) != 0) {
        expect_refusal(writer, ro, MNV3_ERR_IO, "ermission");
        CHECK(file_equals(ro, "keep"));
    }

    CHECK_MSG(unexpected_entries(dir, left) == 0, "temporary files left in %s", dir);
    remove(fifo);
    remove(old);
    remove(link_path);
    remove(target);
    remove(ro);
    rmdir(dir);
}

#endif
