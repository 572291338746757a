/*
 * values.c: the one checked parser for numeric option values (DESIGN.md CLI contract).
 *
 *   "x"        one value
 *   "a,b,c"    a list (items may be surrounded by spaces)
 *   "lo:hi:k"  k evenly spaced values from lo to hi, both ends included
 *   "lo:hi:k:log"  k values evenly spaced in log (lo, hi > 0); for an integer option the
 *              nearest integers, repeats dropped (an extension of DESIGN.md's lo:hi:k)
 *
 * Every number goes through strtod with an end-pointer and errno check; the value must be
 * finite and inside the caller's domain. Nothing is clamped: a bad value is an error that says
 * where it is.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

static void diag_set(struct ats_parse_diag *diag, int64_t offset, int64_t length, double value) {
    if (diag) {
        diag->offset = offset;
        diag->length = length;
        diag->value = value;
    }
}

static int is_space(char c) {
    return c == ' ' || c == '\t';
}

// Parses text[begin, end) as one finite number (surrounding spaces allowed).
static int parse_number(double *out, int *exact, const char *text, int64_t begin, int64_t end,
                        struct ats_parse_diag *diag) {
    while (begin < end && is_space(text[begin]))
        begin++;
    while (end > begin && is_space(text[end - 1]))
        end--;
    diag_set(diag, begin, end - begin, NAN);
    if (begin == end)
        ATS_ERROR(ATS_STATUS_EINVAL, "empty value");
    char buf[128];
    if (end - begin >= (int64_t)sizeof buf)
        ATS_ERROR(ATS_STATUS_EINVAL, "value too long");
    memcpy(buf, text + begin, (size_t)(end - begin));
    buf[end - begin] = '\0';
    // strtod would accept hex floats, "inf" and "nan": plain decimal numbers only.
    for (const char *c = buf; *c; c++) {
        if (!strchr("0123456789+-.eE", *c))
            ATS_ERROR(ATS_STATUS_EINVAL, "'%s' is not a number", buf);
    }
    char *stop;
    errno = 0;
    double v = strtod(buf, &stop);
    if (stop == buf || *stop != '\0')
        ATS_ERROR(ATS_STATUS_EINVAL, "'%s' is not a number", buf);
    if (errno == ERANGE && fabs(v) > 1)
        ATS_ERROR(ATS_STATUS_EDOM, "'%s' overflows a double", buf);
    if (errno == ERANGE) // glibc flags results that underflow to 0 or to a subnormal
        ATS_ERROR(ATS_STATUS_EDOM, "'%s' underflows a double", buf);
    // Integers must be read exactly: 9007199254740993 would round to 2^53. long double (or
    // the same double where that is all there is) shows whether rounding happened.
    long double vl = strtold(buf, NULL);
    *exact = vl == (long double)v;
    *out = v + 0.0; // -0 reads as 0
    return ATS_STATUS_OK;
}

static int in_domain(double v, const struct ats_domain *dom) {
    if (!isfinite(v))
        return 0;
    if (dom->lo_open ? !(v > dom->lo) : !(v >= dom->lo))
        return 0;
    if (dom->hi_open ? !(v < dom->hi) : !(v <= dom->hi))
        return 0;
    return 1;
}

int ats_domain_contains(const struct ats_domain *dom, double v) {
    ATS_ASSERT(dom);
    return in_domain(v, dom) &&
           (!dom->integer || (fabs(v) <= (double)ATS_INT_EXACT_MAX && v == floor(v)));
}

void ats_domain_describe(char *buf, size_t size, const struct ats_domain *d) {
    ATS_ASSERT(buf && d);
    const char *kind = d->integer ? "an integer" : "a number";
    if (d->integer && d->hi == (double)ATS_INT_EXACT_MAX && !d->hi_open) {
        snprintf(buf, size, "%s in [%.17g, 2^53]", kind, d->lo);
        return;
    }
    if (isinf(d->lo) && isinf(d->hi))
        snprintf(buf, size, "%s", kind);
    else if (isinf(d->hi))
        snprintf(buf, size, "%s %s %.17g", kind, d->lo_open ? ">" : ">=", d->lo);
    else if (isinf(d->lo))
        snprintf(buf, size, "%s %s %.17g", kind, d->hi_open ? "<" : "<=", d->hi);
    else
        snprintf(buf, size, "%s in %s%.17g, %.17g%s", kind, d->lo_open ? "(" : "[", d->lo, d->hi,
                 d->hi_open ? ")" : "]");
}

static int check_value(double v, int exact, const struct ats_domain *dom, int64_t begin,
                       int64_t len, struct ats_parse_diag *diag) {
    diag_set(diag, begin, len, v);
    if (!in_domain(v, dom))
        ATS_ERROR(ATS_STATUS_EDOM, "%.17g is outside the domain", v);
    if (dom->integer && !(fabs(v) <= (double)ATS_INT_EXACT_MAX && v == floor(v) && exact))
        ATS_ERROR(ATS_STATUS_EINVAL, "not an integer of at most 2^53 (read as %.17g)", v);
    return ATS_STATUS_OK;
}

static int push(struct ats_values *out, int64_t *cap, double v) {
    if (out->count >= ATS_VALUES_MAX)
        ATS_ERROR(ATS_STATUS_ERANGE, "more than %d values", ATS_VALUES_MAX);
    if (out->count == *cap) {
        int64_t ncap = *cap ? 2 * *cap : 8;
        double *nv = ats_realloc_array(out->v, (size_t)ncap, sizeof *nv);
        if (!nv)
            ATS_ERROR(ATS_STATUS_ENOMEM, "no memory for %lld values", (long long)ncap);
        out->v = nv;
        *cap = ncap;
    }
    out->v[out->count++] = v;
    return ATS_STATUS_OK;
}

// lo:hi:k, or lo:hi:k:log, over text[begin, end) whose colons are at c1, c2 (and c3, or -1).
static int parse_range(struct ats_values *out, int64_t *cap, const char *text, int64_t begin,
                       int64_t c1, int64_t c2, int64_t c3, int64_t end,
                       const struct ats_domain *dom, struct ats_parse_diag *diag) {
    double lo, hi, kd;
    int rc, lo_exact, hi_exact, k_exact, logscale = c3 >= 0;
    int64_t kend = logscale ? c3 : end;
    if (logscale && !(end - c3 - 1 == 3 && strncmp(text + c3 + 1, "log", 3) == 0)) {
        diag_set(diag, c3 + 1, end - c3 - 1, NAN);
        ATS_ERROR(ATS_STATUS_EINVAL, "a range is lo:hi:k or lo:hi:k:log");
    }
    if ((rc = parse_number(&lo, &lo_exact, text, begin, c1, diag)) ||
        (rc = parse_number(&hi, &hi_exact, text, c1 + 1, c2, diag)) ||
        (rc = parse_number(&kd, &k_exact, text, c2 + 1, kend, diag)))
        return rc;
    diag_set(diag, c2 + 1, kend - c2 - 1, kd);
    if (!(kd >= 1 && kd == floor(kd) && k_exact))
        ATS_ERROR(ATS_STATUS_EINVAL, "range count %g must be a whole number >= 1", kd);
    if (kd > ATS_VALUES_MAX)
        ATS_ERROR(ATS_STATUS_ERANGE, "range count %g exceeds %d", kd, ATS_VALUES_MAX);
    int64_t k = (int64_t)kd;
    diag_set(diag, begin, end - begin, kd);
    if (k == 1 && lo != hi)
        ATS_ERROR(ATS_STATUS_EINVAL, "a range of 1 value needs lo == hi");
    if (logscale && !(lo > 0 && hi > 0))
        ATS_ERROR(ATS_STATUS_EDOM, "a log range needs lo > 0 and hi > 0");
    int exact = lo_exact && hi_exact;
    for (int64_t i = 0; i < k; i++) {
        double v;
        if (i == 0 || i == k - 1) {
            v = i == 0 ? lo : hi; // both ends exact
        } else if (!logscale) {
            // lo + ((hi - lo) i)/(k - 1), multiplied first so that integer ranges with integer
            // steps stay exact.
            v = lo + (hi - lo) * (double)i / (double)(k - 1);
        } else {
            v = lo * pow(hi / lo, (double)i / (double)(k - 1));
            if (dom->integer) // k log-spaced integers: the nearest, repeats dropped
                v = nearbyint(v);
        }
        if (logscale && dom->integer && out->count > 0 && i > 0 && v == out->v[out->count - 1])
            continue;
        if ((rc = check_value(v, exact, dom, begin, end - begin, diag)) ||
            (rc = push(out, cap, v)))
            return rc;
    }
    return ATS_STATUS_OK;
}

int ats_values_parse(struct ats_values *out, const char *text, const struct ats_domain *dom,
                     struct ats_parse_diag *diag) {
    ATS_ASSERT(out && text && dom);
    out->v = NULL;
    out->count = 0;
    int64_t cap = 0, len = (int64_t)strlen(text);
    int rc = ATS_STATUS_OK;
    for (int64_t begin = 0; begin <= len && rc == ATS_STATUS_OK;) {
        int64_t end = begin, c1 = -1, c2 = -1, c3 = -1, colons = 0;
        while (end < len && text[end] != ',') {
            if (text[end] == ':') {
                colons++;
                if (colons == 1)
                    c1 = end;
                else if (colons == 2)
                    c2 = end;
                else if (colons == 3)
                    c3 = end;
            }
            end++;
        }
        if (colons == 0) {
            double v;
            int exact;
            rc = parse_number(&v, &exact, text, begin, end, diag);
            if (rc == ATS_STATUS_OK)
                rc = check_value(v, exact, dom, begin, end - begin, diag);
            if (rc == ATS_STATUS_OK)
                rc = push(out, &cap, v);
        } else if (colons == 2 || colons == 3) {
            rc = parse_range(out, &cap, text, begin, c1, c2, colons == 3 ? c3 : -1, end, dom,
                             diag);
        } else {
            diag_set(diag, begin, end - begin, NAN);
            ats_error(__FILE__, __LINE__, ATS_STATUS_EINVAL,
                      "a range is lo:hi:k or lo:hi:k:log");
            rc = ATS_STATUS_EINVAL;
        }
        begin = end + 1;
    }
    if (rc != ATS_STATUS_OK)
        ats_values_clear(out);
    return rc;
}

void ats_values_clear(struct ats_values *v) {
    if (!v)
        return;
    ats_free(v->v);
    v->v = NULL;
    v->count = 0;
}
