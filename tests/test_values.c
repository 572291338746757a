/*
 * test_values.c: the numeric option parser (single values, lists, lo:hi:k ranges) and its
 * error paths. Run: make build/tests/test_values && build/tests/test_values
 */
#include <math.h>
#include <string.h>

#include "attnscale.h"
#include "test.h"

static const struct ats_domain any = {-HUGE_VAL, HUGE_VAL, 0, 0, 0};
static const struct ats_domain rho = {0, 1, 0, 1, 0};
static const struct ats_domain nint = {2, 9007199254740992.0, 0, 0, 1};

static void expect_values(const char *text, const struct ats_domain *dom, const double *want,
                          int64_t count) {
    struct ats_values v;
    int rc = ats_values_parse(&v, text, dom, NULL);
    int ok = rc == ATS_STATUS_OK && v.count == count;
    for (int64_t i = 0; ok && i < count; i++)
        ok = v.v[i] == want[i];
    ATS_CHECK(ok, "'%s' parses to %lld exact values (rc %d, count %lld)", text,
              (long long)count, rc, (long long)v.count);
    ats_values_clear(&v);
}

static void expect_error(const char *text, const struct ats_domain *dom, int status,
                         const char *item) {
    struct ats_values v;
    struct ats_parse_diag diag = {-1, -1, 0};
    int rc = ats_values_parse(&v, text, dom, &diag);
    ATS_CHECK(rc == status && v.count == 0 && v.v == NULL, "'%s' is rejected with status %d (got %d)",
              text, status, rc);
    ATS_CHECK(diag.offset >= 0 && (size_t)(diag.offset + diag.length) <= strlen(text) &&
                  (int64_t)strlen(item) == diag.length &&
                  strncmp(text + diag.offset, item, strlen(item)) == 0,
              "'%s': the diagnostic points at '%s' (offset %lld, length %lld)", text, item,
              (long long)diag.offset, (long long)diag.length);
}

int main(void) {
    // Single values and lists.
    expect_values("2.385", &any, (double[]){2.385}, 1);
    expect_values("-1e-3", &any, (double[]){-1e-3}, 1);
    expect_values("0.1,0.5, 0.9 ", &rho, (double[]){0.1, 0.5, 0.9}, 3);
    expect_values("1e12", &nint, (double[]){1e12}, 1);
    expect_values("1024,4096", &nint, (double[]){1024, 4096}, 2);

    // Ranges: both ends exact, interior lo + (hi - lo) i/(k - 1).
    expect_values("0:4:5", &any, (double[]){0, 1, 2, 3, 4}, 5);
    expect_values("1:0:3", &any, (double[]){1, 0.5, 0}, 3);
    expect_values("0.25:0.25:1", &any, (double[]){0.25}, 1);
    expect_values("0:1:2,5", &any, (double[]){0, 1, 5}, 3);
    {
        struct ats_values v;
        int rc = ats_values_parse(&v, "0:4:41", &any, NULL);
        int ok = rc == ATS_STATUS_OK && v.count == 41 && v.v[0] == 0 && v.v[40] == 4;
        double maxerr = 0;
        for (int64_t i = 0; ok && i < 41; i++)
            maxerr = fmax(maxerr, fabs(v.v[i] - 0.1 * (double)i));
        ATS_CHECK(ok, "0:4:41 has 41 values from 0 to 4 exactly");
        // Each interior value is one product and one sum from exact operands: within 2 ulp of 4.
        ATS_CHECK_CLOSE(maxerr, 0, 2 * 4 * 2.220446049250313e-16, 0, "0:4:41 steps are 0.1");
        ats_values_clear(&v);
    }
    {
        struct ats_values v;
        int rc = ats_values_parse(&v, "0.02:0.98:49", &rho, NULL);
        ATS_CHECK(rc == ATS_STATUS_OK && v.count == 49 && v.v[48] == 0.98,
                  "a range ending inside an open domain keeps its end");
        ats_values_clear(&v);
    }
    {
        struct ats_values v;
        int rc = ats_values_parse(&v, "2:1000001:1000000", &nint, NULL);
        ATS_CHECK(rc == ATS_STATUS_OK && v.count == 1000000 && v.v[999999] == 1000001 &&
                      v.v[500000] == 500002,
                  "an integer range with integer steps is accepted (%lld values)",
                  (long long)v.count);
        ats_values_clear(&v);
    }

    // Errors: each names its item.
    expect_error("abc", &any, ATS_STATUS_EINVAL, "abc");
    expect_error("", &any, ATS_STATUS_EINVAL, "");
    expect_error("1,,2", &any, ATS_STATUS_EINVAL, "");
    expect_error("1,2,", &any, ATS_STATUS_EINVAL, "");
    expect_error("0.5x", &any, ATS_STATUS_EINVAL, "0.5x");
    expect_error("inf", &any, ATS_STATUS_EINVAL, "inf");
    expect_error("nan", &any, ATS_STATUS_EINVAL, "nan");
    expect_error("0x10", &any, ATS_STATUS_EINVAL, "0x10");
    expect_error("1e999", &any, ATS_STATUS_EDOM, "1e999");
    expect_error("0.5,1", &rho, ATS_STATUS_EDOM, "1");
    expect_error("-0.1", &rho, ATS_STATUS_EDOM, "-0.1");
    expect_error("-5", &nint, ATS_STATUS_EDOM, "-5");
    expect_error("1", &nint, ATS_STATUS_EDOM, "1");
    expect_error("2.5", &nint, ATS_STATUS_EINVAL, "2.5");
    expect_error("1e300", &nint, ATS_STATUS_EDOM, "1e300");
    expect_error("0:4:0", &any, ATS_STATUS_EINVAL, "0");
    expect_error("0:4:-3", &any, ATS_STATUS_EINVAL, "-3");
    expect_error("0:4:2.5", &any, ATS_STATUS_EINVAL, "2.5");
    expect_error("0:4:1", &any, ATS_STATUS_EINVAL, "0:4:1");
    expect_error("0:4", &any, ATS_STATUS_EINVAL, "0:4");
    expect_error("0:4:5:6", &any, ATS_STATUS_EINVAL, "6");
    expect_error("0:4:5:log:x", &any, ATS_STATUS_EINVAL, "0:4:5:log:x");
    expect_error("0:4:5:log", &any, ATS_STATUS_EDOM, "0:4:5:log");
    expect_values("1e3:1e6:4:log", &nint, (double[]){1000, 10000, 100000, 1000000}, 4);
    expect_values("2:5:6:log", &nint, (double[]){2, 3, 4, 5}, 4);
    {
        struct ats_values v;
        int rc = ats_values_parse(&v, "0.01:100:5:log", &any, NULL);
        double maxrel = 0;
        for (int64_t i = 0; rc == ATS_STATUS_OK && i < v.count; i++)
            maxrel = fmax(maxrel, fabs(v.v[i] / pow(10, -2 + (double)i) - 1));
        // pow of an exact ratio: a few ulps.
        ATS_CHECK(rc == ATS_STATUS_OK && v.count == 5 && v.v[0] == 0.01 && v.v[4] == 100 &&
                      maxrel < 8 * 2.220446049250313e-16,
                  "0.01:100:5:log is 0.01, 0.1, 1, 10, 100 (max rel err %.2g)", maxrel);
        ats_values_clear(&v);
    }
    expect_error(":4:5", &any, ATS_STATUS_EINVAL, "");
    expect_error("0:1:3", &rho, ATS_STATUS_EDOM, "0:1:3");
    expect_error("2:3:4", &nint, ATS_STATUS_EINVAL, "2:3:4");
    expect_error("0:1:20000000", &any, ATS_STATUS_ERANGE, "20000000");
    expect_error("0:1:6000000,0:1:6000000", &any, ATS_STATUS_ERANGE, "0:1:6000000");
    expect_error("1e-400", &any, ATS_STATUS_EDOM, "1e-400");
    expect_error("-1e-400", &any, ATS_STATUS_EDOM, "-1e-400");
    expect_error("4e-320", &any, ATS_STATUS_EDOM, "4e-320");
    expect_error("9007199254740993", &nint, ATS_STATUS_EINVAL, "9007199254740993");
    expect_error("2:9007199254740993:2", &nint, ATS_STATUS_EINVAL, "2:9007199254740993:2");
    expect_values("9007199254740992", &nint, (double[]){9007199254740992.0}, 1);
    {
        struct ats_values v;
        int rc = ats_values_parse(&v, "-0,0:-0:2", &rho, NULL);
        ATS_CHECK(rc == ATS_STATUS_OK && v.count == 3 && !signbit(v.v[0]) && !signbit(v.v[1]) &&
                      !signbit(v.v[2]),
                  "-0 reads as +0");
        ats_values_clear(&v);
    }

    ats_values_clear(NULL);
    return ats_test_summary();
}
