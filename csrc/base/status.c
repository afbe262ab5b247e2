#include <stdarg.h>
#include <stdio.h>

#include "status.h"

mnv3_status mnv3_set_error(mnv3_error *error, mnv3_status status, const char *fmt, ...) {
    if (error) {
        va_list ap;
        error->status = status;
        va_start(ap, fmt);
        vsnprintf(error->message, sizeof error->message, fmt, ap);
        va_end(ap);
    }
    return status;
}
