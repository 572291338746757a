/*
 * status.c: status names and the replaceable error handler (THEORY-free plumbing).
 * The library reports every error once, here; the handler is silent unless the program
 * installs one (the CLI does, to show the reason).
 */
#include <stdarg.h>
#include <stdio.h>

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

void ats_error(const char *file, int line, int status, const char *fmt, ...) {
    if (!error_handler)
        return;
    char reason[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    error_handler(reason, file, line, status);
}
