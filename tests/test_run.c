/*
 * test_run.c: the run framework every experiment shares (src/experiments/run.c): the note
 * queue keeps every note in order however many are queued before the front-end reads them,
 * cancellation, progress and the sticky failure.
 * Run: make build/tests/test_run && build/tests/test_run
 */
#include <stdio.h>
#include <string.h>

#include "experiments/run.h"
#include "test.h"

// A run of `left` records of one field each.
static int next(struct ats_run *run, void *state, struct ats_record *rec) {
    int *left = state;
    int rc = run_check_cancel(run);
    if (rc != ATS_STATUS_OK || *left == 0)
        return rc;
    ats_record_int(rec, "i", (*left)--);
    run->done = run->done + 1;
    return ATS_STATUS_OK;
}

static void no_free(void *state) {
    (void)state;
}

int main(void) {
    static const struct run_ops ops = {next, NULL, no_free};
    int left = 3;
    struct ats_run *run;
    ATS_CHECK(run_new(&run, &ops, &left, 3) == ATS_STATUS_OK, "run_new");

    // 100 notes queued at once (more than the first allocation of 16), then 5 more after
    // 40 were read: all come out, in order, once each.
    char want[64];
    int order_ok = 1, got = 0;
    for (int i = 0; i < 100; i++)
        run_note(run, "note %d", i);
    for (int i = 0; i < 40; i++) {
        const char *n = ats_run_note(run);
        snprintf(want, sizeof want, "note %d", i);
        order_ok &= n && strcmp(n, want) == 0;
        got += n != NULL;
    }
    for (int i = 100; i < 105; i++)
        run_note(run, "note %d", i);
    for (int i = 40; i < 105; i++) {
        const char *n = ats_run_note(run);
        snprintf(want, sizeof want, "note %d", i);
        order_ok &= n && strcmp(n, want) == 0;
        got += n != NULL;
    }
    ATS_CHECK(order_ok && got == 105 && ats_run_note(run) == NULL,
              "105 notes read back in order (%d), then none", got);

    double done, total;
    struct ats_record rec;
    ATS_CHECK(ats_run_next(run, &rec) == ATS_STATUS_OK && rec.count == 1, "first record");
    ats_run_progress(run, &done, &total);
    ATS_CHECK(done == 1 && total == 3, "progress %g of %g", done, total);
    ats_run_cancel(run);
    ATS_CHECK(ats_run_next(run, &rec) == ATS_STATUS_ECANCEL && rec.count == 0,
              "a cancelled run returns ATS_STATUS_ECANCEL");
    ATS_CHECK(ats_run_next(run, &rec) == ATS_STATUS_ECANCEL, "and stays failed");
    ATS_CHECK(ats_run_next_figure(run, &(const struct ats_figure *){NULL}) ==
                  ATS_STATUS_ECANCEL,
              "for figures too");
    ats_run_free(run);
    return ats_test_summary();
}
