/* Minimal test harness: CHECK records a failure with its location and goes on; every test
 * binary ends with one "N passed, N failed" line and exits non-zero on any failure. A test
 * that cannot run (missing data) calls SKIP with the reason. */
#ifndef MNV3_CHECK_H
#define MNV3_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int check_passed, check_failed, check_skipped;

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (cond) {                                                                          \
            ++check_passed;                                                                  \
        } else {                                                                             \
            ++check_failed;                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);         \
        }                                                                                    \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                 \
    do {                                                                                     \
        if (cond) {                                                                          \
            ++check_passed;                                                                  \
        } else {                                                                             \
            ++check_failed;                                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fputc('\n', stderr);                                                             \
        }                                                                                    \
    } while (0)

#define CHECK_STATUS(expr, want)                                                             \
    do {                                                                                     \
        mnv3_status got_ = (expr);                                                           \
        CHECK_MSG(got_ == (want), "%s returned %d (%s), expected %d (%s)", #expr, (int)got_,  \
                  mnv3_status_string(got_), (int)(want), mnv3_status_string(want));          \
    } while (0)

#define SKIP(...)                                                                            \
    do {                                                                                     \
        ++check_skipped;                                                                     \
        printf("SKIP: ");                                                                    \
        printf(__VA_ARGS__);                                                                 \
        putchar('\n');                                                                       \
    } while (0)

static int check_summary(const char *name) {
    if (check_skipped)
        printf("%s: %d passed, %d failed, %d skipped\n", name, check_passed, check_failed,
               check_skipped);
    else
        printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
