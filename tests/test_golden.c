/*
 * test_golden.c: the attnscale binary against golden outputs recorded from the release
 * (git 784934a): for every case of tests/golden/cases.txt, the exact bytes of stdout, the
 * exit status and each file the case writes, plus that its figures exist and are non-empty.
 * stderr is never compared. The expected files come from tests/golden/generate.sh, which is
 * run against the release only (see its header); a difference here is a change of behaviour.
 * One exception: the numbers of cases computed through BLAS (phase, diagnose --q/--k) may
 * differ in their last bits on a CPU where OpenBLAS runs other kernels than on the machine
 * that recorded them; there every other byte must match and the numbers agree to 1e-12
 * (1e-6 for float32 runs), and the test says so for each such file.
 *
 * Placeholders in a case's arguments: @DATA@ is tests/golden (absolute), @TMP@ a fresh
 * scratch directory per case; in the output they are mapped back before comparing.
 * The binary is $ATS_BUILD/attnscale (default build/attnscale); run from the repository root.
 * Run: make build/tests/test_golden && build/tests/test_golden
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_run.h"
#include "test.h"

#define GOLDEN_DIR "tests/golden"
#define DIRLEN 1024   // the golden and scratch directories
#define PATHLEN 4096  // a file in one of them

struct buf {
    char *p;
    size_t len;
    int ok; // the file could be read
};

// snprintf into a path buffer; a path too long for it is cut (names are short).
#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static void pathf(char *dst, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, size, fmt, ap);
    va_end(ap);
}

static struct buf read_all(const char *path) {
    struct buf b = {NULL, 0, 0};
    FILE *f = fopen(path, "rb");
    if (!f) {
        b.p = calloc(1, 1);
        return b;
    }
    size_t cap = 4096;
    b.p = malloc(cap + 1);
    size_t got;
    while (b.p && (got = fread(b.p + b.len, 1, cap - b.len, f)) > 0) {
        b.len += got;
        if (b.len == cap) {
            cap *= 2;
            char *q = realloc(b.p, cap + 1);
            if (!q) {
                free(b.p);
                b.p = NULL;
                break;
            }
            b.p = q;
        }
    }
    b.ok = b.p && !ferror(f);
    fclose(f);
    if (!b.p) {
        b.p = calloc(1, 1);
        b.len = 0;
        b.ok = 0;
    } else {
        b.p[b.len] = '\0';
    }
    return b;
}

// Replaces every occurrence of from (non-empty) in b by to.
static void replace_all(struct buf *b, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to), count = 0;
    if (fl == 0 || b->len < fl)
        return;
    for (size_t i = 0; i + fl <= b->len;)
        if (memcmp(b->p + i, from, fl) == 0) {
            count++;
            i += fl;
        } else {
            i++;
        }
    if (!count)
        return;
    size_t len = b->len - count * fl + count * tl;
    char *q = malloc(len + 1);
    if (!q)
        return;
    size_t o = 0;
    for (size_t i = 0; i < b->len;)
        if (i + fl <= b->len && memcmp(b->p + i, from, fl) == 0) {
            memcpy(q + o, to, tl);
            o += tl;
            i += fl;
        } else {
            q[o++] = b->p[i++];
        }
    q[len] = '\0';
    free(b->p);
    b->p = q;
    b->len = len;
}

// Replaces every occurrence of from in s (a string) by to; returns a new string.
static char *subst(const char *s, const char *from, const char *to) {
    struct buf b = {strdup(s), strlen(s), 1};
    if (!b.p)
        return calloc(1, 1);
    replace_all(&b, from, to);
    return b.p;
}

// Prints one line of s (from start, at most 300 bytes), escaping control bytes.
static void print_line(const char *label, const struct buf *s, size_t start) {
    printf("    %s: ", label);
    if (start >= s->len) {
        printf("<end of output>\n");
        return;
    }
    size_t i = start;
    for (; i < s->len && s->p[i] != '\n' && i - start < 300; i++) {
        unsigned char ch = (unsigned char)s->p[i];
        if (ch < 32 || ch == 127)
            printf("\\x%02x", ch);
        else
            putchar(ch);
    }
    if (i < s->len && s->p[i] != '\n')
        printf("...");
    else if (i == s->len)
        printf("<no newline at end>");
    printf("\n");
}

static int number_start(const char *p) {
    return (*p >= '0' && *p <= '9') || ((*p == '-' || *p == '.') && p[1] >= '0' && p[1] <= '9');
}

// Whether got equals want but for numbers x, y with |x - y| <= tol (max(|x|, |y|) + 0.1): the
// absolute part for standard errors near 0, which BLAS rounding reaches through cancellation
// (every other byte the same); *worst: the largest relative difference of two numbers.
static int close_numbers(const struct buf *want, const struct buf *got, double tol,
                         double *worst) {
    const char *a = want->p, *b = got->p, *ea = want->p + want->len, *eb = got->p + got->len;
    *worst = 0;
    while (a < ea && b < eb) {
        if (number_start(a) && number_start(b)) {
            char *na, *nb;
            double x = strtod(a, &na), y = strtod(b, &nb);
            double scale = fabs(x) > fabs(y) ? fabs(x) : fabs(y);
            double rel = scale > 0 ? fabs(x - y) / scale : 0;
            if (!(fabs(x - y) <= tol * (scale + 0.1)))
                return 0;
            *worst = rel > *worst ? rel : *worst;
            a = na;
            b = nb;
        } else if (*a++ != *b++) {
            return 0;
        }
    }
    return a == ea && b == eb;
}

// Compares got with expected byte for byte; on a mismatch prints the first differing line.
// tol > 0 (a case whose numbers come through BLAS): numbers may differ by that relative
// amount, since OpenBLAS chooses its kernels per CPU (and OPENBLAS_CORETYPE) and rounds its
// sums in their order; the release's files were recorded on one of them.
static int compare(const char *name, const char *what, const struct buf *want,
                   const struct buf *got, double tol) {
    int same = want->len == got->len && memcmp(want->p, got->p, want->len) == 0;
    double worst = 0;
    int close = !same && tol > 0 && close_numbers(want, got, tol, &worst);
    ATS_CHECK(same || close,
              "%s: %s matches the release (%zu bytes expected, %zu got; BLAS-rounded numbers "
              "within %g (relative, plus %g absolute))",
              name, what, want->len, got->len, tol, tol / 10);
    if (close)
        printf("    note: %s differs from the release only in BLAS rounding (largest relative "
               "difference %.3g): this CPU runs other OpenBLAS kernels\n",
               what, worst);
    if (same || close)
        return 1;
    size_t i = 0, line = 1, start = 0;
    while (i < want->len && i < got->len && want->p[i] == got->p[i]) {
        if (want->p[i] == '\n') {
            line++;
            start = i + 1;
        }
        i++;
    }
    printf("    first difference in line %zu (byte %zu):\n", line, i);
    print_line("expected", want, start);
    print_line("got     ", got, start);
    return 0;
}

static int valid_name(const char *s) {
    if (!*s || strlen(s) > 100)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char path[PATHLEN];
            pathf(path, sizeof path, "%s/%s", dir, e->d_name);
            struct stat st;
            if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                remove_tree(path);
            else
                remove(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int in_list(char *const *list, int count, const char *s) {
    for (int i = 0; i < count; i++)
        if (strcmp(list[i], s) == 0)
            return 1;
    return 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// One case: runs it in a fresh scratch directory and checks every recorded output.
static void run_case(const char *golden, const char *name, const char *args) {
    char scratch[DIRLEN], path[PATHLEN];
    pathf(scratch, sizeof scratch, "%s/%s", tmpdir, name);
    if (mkdir(scratch, 0700) != 0) {
        ATS_CHECK(0, "%s: scratch directory %s: %s", name, scratch, strerror(errno));
        return;
    }
    // Numbers through BLAS (phase's Gram products, diagnose's q.k): the last bits depend on
    // the CPU's OpenBLAS kernels; float32 products carry float32 rounding (2^-24 per sum).
    double tol = 0;
    if (strncmp(args, "phase", 5) == 0 || strstr(args, "--q "))
        tol = strstr(args, "f32") ? 1e-6 : 1e-12;
    char *a1 = subst(args, "@DATA@", golden);
    char *cmd = subst(a1, "@TMP@", scratch);
    free(a1);
    double t0 = now();
    struct run r = run(cmd);
    double dt = now() - t0;
    if (dt > 2)
        ats_test_info("%s: %.1f s", name, dt);
    free(cmd);

    // stdout, read again with its length (slurp stops at a NUL byte).
    pathf(path, sizeof path, "%s/out", tmpdir);
    struct buf got = read_all(path);
    replace_all(&got, scratch, "@TMP@");
    replace_all(&got, golden, "@DATA@");
    pathf(path, sizeof path, "%s/%s.stdout", golden, name);
    struct buf want = read_all(path);
    if (!want.ok)
        ATS_CHECK(0, "%s: no expected output %s (generate.sh against the release makes it)",
                  name, path);
    else
        compare(name, "stdout", &want, &got, tol);
    free(want.p);
    free(got.p);

    pathf(path, sizeof path, "%s/%s.exit", golden, name);
    struct buf ex = read_all(path);
    int want_status = ex.ok ? atoi(ex.p) : -2;
    ATS_CHECK(ex.ok && r.status == want_status, "%s: exit status %d (expected %d)%s%.300s", name,
              r.status, want_status, r.status == want_status ? "" : "; stderr: ",
              r.status == want_status ? "" : r.err);
    free(ex.p);

    // Files: NAME.FILE for each compared file; NAME.nonempty lists the figures.
    char *expected[256];
    int nexpected = 0;
    size_t prefix = strlen(name);
    DIR *d = opendir(golden);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *fn = e->d_name;
        if (strncmp(fn, name, prefix) != 0 || fn[prefix] != '.')
            continue;
        const char *file = fn + prefix + 1;
        if (!*file || strcmp(file, "stdout") == 0 || strcmp(file, "exit") == 0 ||
            strcmp(file, "nonempty") == 0)
            continue;
        if (nexpected < 256)
            expected[nexpected++] = strdup(file);
    }
    if (d)
        closedir(d);
    for (int i = 0; i < nexpected; i++) {
        char what[PATHLEN];
        pathf(path, sizeof path, "%s/%s.%s", golden, name, expected[i]);
        struct buf fw = read_all(path);
        pathf(path, sizeof path, "%s/%s", scratch, expected[i]);
        struct buf fg = read_all(path);
        pathf(what, sizeof what, "file %s", expected[i]);
        if (!fg.ok)
            ATS_CHECK(0, "%s: %s was not written", name, what);
        else {
            replace_all(&fg, scratch, "@TMP@");
            replace_all(&fg, golden, "@DATA@");
            compare(name, what, &fw, &fg, tol);
        }
        free(fw.p);
        free(fg.p);
    }
    pathf(path, sizeof path, "%s/%s.nonempty", golden, name);
    struct buf ne = read_all(path);
    for (char *save = NULL, *tok = ne.ok ? strtok_r(ne.p, "\n", &save) : NULL; tok;
         tok = strtok_r(NULL, "\n", &save)) {
        struct stat st;
        pathf(path, sizeof path, "%s/%s", scratch, tok);
        int ok = stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
        ATS_CHECK(ok, "%s: figure %s exists and is non-empty", name, tok);
        if (nexpected < 256)
            expected[nexpected++] = strdup(tok);
    }
    free(ne.p);

    // A successful case writes no file beyond those recorded (failures: not compared).
    if (want_status == 0) {
        char extra[512] = "";
        d = opendir(scratch);
        while (d && (e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
                in_list(expected, nexpected, e->d_name))
                continue;
            size_t l = strlen(extra);
            snprintf(extra + l, sizeof extra - l, " %s", e->d_name);
        }
        if (d)
            closedir(d);
        ATS_CHECK(extra[0] == '\0', "%s: writes only the recorded files%s%s", name,
                  extra[0] ? "; also wrote:" : "", extra);
    }
    for (int i = 0; i < nexpected; i++)
        free(expected[i]);
    run_free(&r);
    remove_tree(scratch);
}

int main(void) {
    if (cli_run_init() != 0)
        return 1;
    // The absolute path of tests/golden, as generate.sh sees it (getcwd has no symlinks).
    char golden[DIRLEN], cwd[DIRLEN - 32];
    struct stat gst;
    if (!getcwd(cwd, sizeof cwd) ||
        snprintf(golden, sizeof golden, "%s/%s", cwd, GOLDEN_DIR) >= (int)sizeof golden ||
        stat(golden, &gst) != 0 || !S_ISDIR(gst.st_mode)) {
        ATS_CHECK(0, "%s found (run from the repository root)", GOLDEN_DIR);
        remove_tree(tmpdir);
        return ats_test_summary();
    }
    char path[PATHLEN];
    pathf(path, sizeof path, "%s/cases.txt", golden);
    FILE *f = fopen(path, "r");
    if (!f) {
        ATS_CHECK(0, "%s readable: %s", path, strerror(errno));
        remove_tree(tmpdir);
        return ats_test_summary();
    }
    char line[4096];
    int cases = 0, lineno = 0;
    double t0 = now();
    char *seen[512];
    int nseen = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        const char *args = "";
        if (tab) {
            *tab = '\0';
            args = tab + 1;
        }
        if (!valid_name(line) || in_list(seen, nseen, line)) {
            ATS_CHECK(0, "cases.txt line %d: case name '%s' is %s", lineno, line,
                      valid_name(line) ? "listed twice" : "not [A-Za-z0-9_-]{1,100}");
            continue;
        }
        if (nseen < 512)
            seen[nseen++] = strdup(line);
        run_case(golden, line, args);
        cases++;
    }
    fclose(f);
    for (int i = 0; i < nseen; i++)
        free(seen[i]);
    ATS_CHECK(cases > 0, "cases.txt lists cases (%d)", cases);
    ats_test_info("%d golden cases in %.1f s", cases, now() - t0);
    remove_tree(tmpdir);
    return ats_test_summary();
}
