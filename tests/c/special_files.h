/* Paths that are not regular files, for the loaders' refusals: a directory, a FIFO, a
 * socket, a character device, and a pseudo-file whose size reads as 0. Include after
 * defining _POSIX_C_SOURCE 200809L. Each reader under test is called through a callback
 * that returns its status and message; an alarm guards against a read that blocks. */
#ifndef MNV3_SPECIAL_FILES_H
#define MNV3_SPECIAL_FILES_H

#include <signal.h>
#include <stdio.h>
#include <string.h>
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

#endif
