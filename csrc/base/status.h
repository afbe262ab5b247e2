/* Errors: every fallible internal function returns an mnv3_status and, where the caller
 * passed one, fills an mnv3_error with a message naming the problem. */
#ifndef MNV3_STATUS_H
#define MNV3_STATUS_H

#include "mnv3.h"

/* Returns from the calling function when `expr` is not MNV3_OK. */
#define MNV3_TRY(expr)                                                                       \
    do {                                                                                     \
        mnv3_status try_status_ = (expr);                                                    \
        if (try_status_ != MNV3_OK) return try_status_;                                      \
    } while (0)

/* Sets *error (if non-NULL) with a printf-style message; returns status. */
mnv3_status mnv3_set_error(mnv3_error *error, mnv3_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
