/*
 * test.h: a minimal test harness. Each check prints one PASS/FAIL line; ats_test_summary()
 * prints "N passed, N failed" and returns the process exit status.
 *
 *   ATS_CHECK(cond, fmt, ...)                    passes when cond is true
 *   ATS_CHECK_CLOSE(got, ref, atol, rtol, fmt, ...)  passes when |got - ref| <= atol + rtol |ref|
 *
 * Set ATS_TEST_QUIET=1 in the environment to print only failures and the summary.
 */
#ifndef ATS_TEST_H
#define ATS_TEST_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static long ats_test_passed, ats_test_failed;

static inline int ats_test_quiet(void) {
    const char *q = getenv("ATS_TEST_QUIET");
    return q && q[0] == '1';
}

static inline void ats_test_report(int ok, const char *detail, const char *fmt, va_list ap) {
    if (ok) {
        ats_test_passed++;
        if (ats_test_quiet())
            return;
    } else {
        ats_test_failed++;
    }
    printf("%s: ", ok ? "PASS" : "FAIL");
    vprintf(fmt, ap);
    if (detail[0])
        printf(" (%s)", detail);
    printf("\n");
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static inline int ats_check(int ok, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ats_test_report(ok, "", fmt, ap);
    va_end(ap);
    return ok;
}

#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static inline int ats_check_close(long double got, long double ref, long double atol, long double rtol,
                           const char *fmt, ...) {
    long double err = fabsl(got - ref);
    int ok = isfinite(got) && isfinite(ref) && err <= atol + rtol * fabsl(ref);
    if (isnan(got) && isnan(ref))
        ok = 1;
    if (isinf(got) && isinf(ref) && signbit(got) == signbit(ref))
        ok = 1;
    char detail[160];
    snprintf(detail, sizeof detail, "got %.17Lg ref %.17Lg err %.3Lg rel %.3Lg", got, ref, err,
             ref != 0 ? err / fabsl(ref) : err);
    va_list ap;
    va_start(ap, fmt);
    ats_test_report(ok, detail, fmt, ap);
    va_end(ap);
    return ok;
}

#define ATS_CHECK(cond, ...) ats_check((cond) != 0, __VA_ARGS__)
#define ATS_CHECK_CLOSE(got, ref, atol, rtol, ...)                                             \
    ats_check_close((long double)(got), (long double)(ref), (long double)(atol),               \
                    (long double)(rtol), __VA_ARGS__)

// An "INFO: ..." line (a measured figure, not a check); silent under ATS_TEST_QUIET=1.
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static inline void ats_test_info(const char *fmt, ...) {
    if (ats_test_quiet())
        return;
    va_list ap;
    va_start(ap, fmt);
    printf("INFO: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static inline int ats_test_summary(void) {
    printf("%ld passed, %ld failed\n", ats_test_passed, ats_test_failed);
    return ats_test_failed ? 1 : 0;
}

#endif // ATS_TEST_H
