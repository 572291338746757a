/*
 * status.c: status names and the replaceable error handler (THEORY-free plumbing).
 * The library reports every error once, here: the reason is kept per thread (ats_last_error)
 * and passed to the handler, which is silent unless the program installs one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

const char *ats_strerror(int status) {
    switch (status) {
    case ATS_STATUS_OK:
        return "success";
    case ATS_STATUS_EINVAL:
        return "invalid input";
    case ATS_STATUS_ENOMEM:
        return "out of memory";
    case ATS_STATUS_EDOM:
        return "parameter outside its domain";
    case ATS_STATUS_ERANGE:
        return "result out of range";
    case ATS_STATUS_EUNSUP:
        return "not supported";
    case ATS_STATUS_EIO:
        return "input/output error";
    case ATS_STATUS_ENUM:
        return "numerical failure";
    case ATS_STATUS_EARG:
        return "invalid arguments";
    case ATS_STATUS_ECANCEL:
        return "cancelled";
    default:
        return "unknown status";
    }
}

static ats_error_handler_t *error_handler;

ats_error_handler_t *ats_set_error_handler(ats_error_handler_t *h) {
    ats_error_handler_t *old = error_handler;
    error_handler = h;
    return old;
}

// The last reason reported on each thread, like errno: a front-end reads it after a failed
// call whatever handler is installed.
static _Thread_local char last_reason[512];

const char *ats_last_error(void) {
    return last_reason;
}

void ats_error(const char *file, int line, int status, const char *fmt, ...) {
    // Formatted apart first: the arguments may point into last_reason itself (a caller
    // passing on an earlier reason).
    char reason[sizeof last_reason];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    memcpy(last_reason, reason, sizeof reason);
    if (error_handler)
        error_handler(reason, file, line, status);
}
