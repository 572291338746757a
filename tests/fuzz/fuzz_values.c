/*
 * fuzz_values.c: libFuzzer target for the numeric option parser (ats_values_parse).
 * Any input must either parse into values that satisfy the domain, or fail with a status and
 * a diagnostic span inside the text; never crash, leak or read out of bounds.
 * Run: make fuzz (builds with clang -fsanitize=fuzzer,address,undefined).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "attnscale.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096)
        return 0;
    // The first byte picks a domain; the rest is the option text.
    static const struct ats_domain domains[] = {
        {-HUGE_VAL, HUGE_VAL, 0, 0, 0}, {0, 1, 0, 1, 0}, {2, 9007199254740992.0, 0, 0, 1},
        {0, HUGE_VAL, 1, 0, 0}};
    const struct ats_domain *dom = &domains[data[0] % 4];
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    struct ats_values v;
    struct ats_parse_diag diag = {0, 0, 0};
    int rc = ats_values_parse(&v, text, dom, &diag);
    size_t len = strlen(text);
    if (rc == ATS_STATUS_OK) {
        for (int64_t i = 0; i < v.count; i++) {
            double x = v.v[i];
            if (!isfinite(x) || x < dom->lo || x > dom->hi || (dom->lo_open && x == dom->lo) ||
                (dom->hi_open && x == dom->hi) || (dom->integer && x != floor(x)))
                abort();
        }
    } else if (v.count != 0 || v.v != NULL || diag.offset < 0 || diag.length < 0 ||
               (size_t)(diag.offset + diag.length) > len) {
        abort();
    }
    ats_values_clear(&v);
    free(text);
    return 0;
}
