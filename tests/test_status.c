/*
 * test_status.c: status names and the replaceable error handler.
 * Run: make build/tests/test_status && build/tests/test_status
 */
#include <string.h>

#include "attnscale.h"
#include "test.h"

static int calls, last_status;
static char last_reason[256];

static void handler(const char *reason, const char *file, int line, int status) {
    calls++;
    last_status = status;
    snprintf(last_reason, sizeof last_reason, "%s", reason);
    (void)file;
    (void)line;
}

int main(void) {
    const int codes[] = {ATS_STATUS_OK,    ATS_STATUS_EINVAL, ATS_STATUS_ENOMEM, ATS_STATUS_EDOM,
                         ATS_STATUS_ERANGE, ATS_STATUS_EUNSUP, ATS_STATUS_EIO,   ATS_STATUS_ENUM};
    enum { NCODES = sizeof codes / sizeof codes[0] };
    for (int i = 0; i < NCODES; i++) {
        const char *s = ats_strerror(codes[i]);
        int distinct = 1;
        for (int j = 0; j < i; j++)
            distinct &= strcmp(s, ats_strerror(codes[j])) != 0;
        ATS_CHECK(s && s[0] && strcmp(s, "unknown status") != 0 && distinct,
                  "status %d has its own name: %s", codes[i], s);
    }
    ATS_CHECK(strcmp(ats_strerror(-1), "unknown status") == 0 &&
                  strcmp(ats_strerror(999), "unknown status") == 0,
              "unknown statuses are named as such");

    // Silent by default; a handler sees every reported error with its status.
    struct ats_simplex s;
    struct ats_simplex_params p = ats_simplex_params_default();
    p.rho = 1;
    ATS_CHECK(ats_set_error_handler(handler) == NULL, "the default handler is the silent one");
    ATS_CHECK(ats_simplex_eval(&s, &p) == ATS_STATUS_EDOM && calls == 1 &&
                  last_status == ATS_STATUS_EDOM && strstr(last_reason, "rho") != NULL,
              "the handler receives the status and a reason naming the parameter: %s",
              last_reason);
    ATS_CHECK(ats_set_error_handler(NULL) == handler, "installing returns the previous handler");
    ats_simplex_eval(&s, &p);
    ATS_CHECK(calls == 1, "after restoring the default, errors are silent again");
    return ats_test_summary();
}
