/*
 * test_cli_atomic.c: nothing lost, nothing half-written (issue 13). Outputs appear whole or
 * not at all: a run that fails (a NaN logit, a write error), or that SIGINT / SIGTERM / SIGHUP
 * stops, leaves an earlier file of the same name as it was and no temporary beside it; an
 * output that is an input is a usage error naming both; inputs that are FIFOs are refused at
 * once.
 * Run from the repository root: make build/tests/test_cli_atomic && build/tests/test_cli_atomic
 */
#include <dirent.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "attnscale.h"
#include "cli_run.h"
#include "test.h"

static char *path(const char *name) {
    static char buf[8][400];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void put(const char *name, const char *text) {
    FILE *f = fopen(path(name), "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

// How many entries of tmpdir start with prefix (".f.csv." for the temporaries of f.csv).
static int count_prefix(const char *prefix) {
    DIR *d = opendir(tmpdir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

static int same_text(const char *name, const char *text) {
    char *got = slurp(path(name));
    int same = strcmp(got, text) == 0;
    free(got);
    return same;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// A long query writing --output f.csv, stopped by sig once its temporary exists.
static void stopped_by(int sig, const char *name) {
    put("f.csv", "the earlier result\n");
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(127);
        execl(bin, bin, "query", "--d", "3", "--n", "1e9", "--tau-prime", "1", "--trials",
              "100", "--output", path("f.csv"), "-q", (char *)NULL);
        _exit(127);
    }
    double t0 = now();
    while (count_prefix(".f.csv.") == 0 && now() - t0 < 20) {
        struct timespec ms = {0, 10000000};
        nanosleep(&ms, NULL);
    }
    int started = count_prefix(".f.csv.") == 1;
    kill(pid, sig);
    int st = 0;
    waitpid(pid, &st, 0);
    int left = count_prefix(".f.csv.");
    ATS_CHECK(started && WIFSIGNALED(st) && WTERMSIG(st) == sig &&
                  same_text("f.csv", "the earlier result\n") && left == 0,
              "%s during query --output f.csv: killed by it, f.csv as it was, no temporary "
              "left (temporary seen: %d; wait status %#x; temporaries left: %d)",
              name, started, (unsigned)st, left);
}

int main(void) {
    if (cli_run_init() != 0)
        return 1;
    char args[2048];
    const char *fix = "tests/golden/fixtures";

    // An output that is an input: usage errors naming both, the input untouched.
    struct stat before, after;
    snprintf(args, sizeof args, "cp %s/scores_2d.npy %s && cp %s/tokens_f64.npy %s", fix,
             path("X.npy"), fix, path("T.npy"));
    ATS_CHECK(system(args) == 0, "fixtures copied");
    stat(path("X.npy"), &before);
    snprintf(args, sizeof args, "diagnose --scores %s --output %s", path("X.npy"), path("X.npy"));
    expect_usage(args, "--output", "is the input --scores");
    snprintf(args, sizeof args, "diagnose --scores %s --plot %s", path("X.npy"), path("X.npy"));
    expect_usage(args, "--plot", "is the input --scores");
    snprintf(args, sizeof args, "ln -s X.npy %s", path("L.npy"));
    ATS_CHECK(system(args) == 0, "a symbolic link to X.npy");
    snprintf(args, sizeof args, "mkdir -p %s/sub", tmpdir);
    ATS_CHECK(system(args) == 0, "a sub-directory");
    snprintf(args, sizeof args, "diagnose --scores %s --output %s/sub/../X.npy", path("L.npy"),
             tmpdir);
    expect_usage(args, "is the input --scores", NULL);
    snprintf(args, sizeof args, "phase --tokens %s --config file --gamma 1 --output %s",
             path("T.npy"), path("T.npy"));
    expect_usage(args, "is the input --tokens", NULL);
    snprintf(args, sizeof args, "simplex --n 16 --rho 0:0.9:3 --gamma 1,2 --plot %s --output %s",
             path("p.png"), path("p.png"));
    expect_usage(args, "is also --plot", NULL);
    stat(path("X.npy"), &after);
    ATS_CHECK(before.st_size == after.st_size && before.st_mtime == after.st_mtime,
              "the inputs are untouched (%lld bytes)", (long long)after.st_size);

    // A run that fails after its first records (a NaN at row 2000 of 2048): exit 1, the earlier
    // file kept, no temporary.
    snprintf(args, sizeof args,
             "/usr/bin/python3 -c \"import numpy as np; a = np.ones((2048, 64)); "
             "a[2000, 3] = np.nan; np.save('%s', a)\"",
             path("nan.npy"));
    ATS_CHECK(system(args) == 0, "a (2048, 64) file with a NaN at row 2000 written with NumPy");
    put("f.csv", "the earlier result\n");
    snprintf(args, sizeof args, "diagnose --scores %s --format csv --output %s",
             path("nan.npy"), path("f.csv"));
    struct run r = run(args);
    ATS_CHECK(r.status == 1 && strstr(r.err, "row 2000, column 3") &&
                  same_text("f.csv", "the earlier result\n") && count_prefix(".f.csv.") == 0,
              "NaN at row 2000: exit 1, f.csv as it was, no temporary (%s)", r.err);
    run_free(&r);

    // Write errors: a file size limit (as a full disk): exit 1, nothing written, for the
    // records and for each figure format; /dev/full is written in place and fails.
    for (int i = 0; i < 4; i++) {
        static const char *const opt[] = {"--output", "--plot", "--plot", "--plot"};
        static const char *const file[] = {"big.json", "big.png", "big.svg", "big.pdf"};
        put(file[i], "old\n");
        snprintf(args, sizeof args,
                 "ulimit -f 4 && trap '' XFSZ && %s simplex --n 16 --rho 0:0.9:40 "
                 "--gamma 0:3:40 -q %s %s >/dev/null 2>%s",
                 bin, opt[i], path(file[i]), path("err"));
        int st = system(args);
        char prefix[32];
        snprintf(prefix, sizeof prefix, ".%s.", file[i]);
        char *err = slurp(path("err"));
        ATS_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1 && same_text(file[i], "old\n") &&
                      count_prefix(prefix) == 0 && strstr(err, file[i]),
                  "%s %s past a 4 KiB file size limit: exit 1 naming it, the earlier file "
                  "kept (%s)",
                  opt[i], file[i], err);
        free(err);
    }
    r = run("simplex --n 16 --rho 0.5 --gamma 1 --output /dev/full");
    ATS_CHECK(r.status == 1 && strstr(r.err, "/dev/full"),
              "--output /dev/full: exit 1 naming it (%s)", r.err);
    run_free(&r);
    r = run("simplex --n 16 --rho 0.5 --gamma 1 --output /dev/null");
    ATS_CHECK(r.status == 0, "--output /dev/null (a device, written in place): exit 0 (%s)",
              r.err);
    run_free(&r);

    // A successful run replaces the earlier file whole, with a new file's mode.
    put("f.csv", "the earlier result\n");
    snprintf(args, sizeof args, "simplex --n 16 --rho 0.5 --gamma 1,2 --format csv --output %s",
             path("f.csv"));
    r = run(args);
    char *text = slurp(path("f.csv"));
    struct stat fs;
    stat(path("f.csv"), &fs);
    ATS_CHECK(r.status == 0 && strncmp(text, "n,d,rho,", 8) == 0 && count_lines(text) == 3 &&
                  (fs.st_mode & 0777) == 0644,
              "a good run replaces f.csv (3 lines, mode %o)", (unsigned)(fs.st_mode & 0777));
    free(text);
    run_free(&r);

    stopped_by(SIGINT, "SIGINT");
    stopped_by(SIGTERM, "SIGTERM");
    stopped_by(SIGHUP, "SIGHUP");

    // A FIFO with no writer as input: refused at once (timeout ends a run that would hang).
    snprintf(args, sizeof args, "mkfifo %s", path("fifo.npy"));
    ATS_CHECK(system(args) == 0, "a FIFO");
    snprintf(args, sizeof args, "timeout 10 %s diagnose --scores %s >/dev/null 2>%s", bin,
             path("fifo.npy"), path("err"));
    int st = system(args);
    char *err = slurp(path("err"));
    ATS_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1 &&
                  strstr(err, "not a regular file (a FIFO)"),
              "--scores FIFO: exit 1 at once, not a hang (%s)", err);
    free(err);

    snprintf(args, sizeof args, "rm -rf %s", tmpdir);
    if (system(args) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return ats_test_summary();
}
