/*
 * cli_run.h: running the attnscale binary from tests: exit status, stdout and stderr of one
 * command line, and the usage-error check. The binary is $ATS_BUILD/attnscale (default
 * build/attnscale); scratch files go to a fresh directory under /tmp (tmpdir).
 */
#ifndef ATS_CLI_RUN_H
#define ATS_CLI_RUN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"

struct run {
    int status;   // exit code, or -1 when killed by a signal
    char *out;    // stdout
    char *err;    // stderr
};

static inline char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return calloc(1, 1);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = calloc((size_t)size + 1, 1);
    if (buf && fread(buf, 1, (size_t)size, f) != (size_t)size)
        buf[0] = '\0';
    fclose(f);
    return buf;
}

static char bin[512], tmpdir[256];

// Sets the binary's path and makes tmpdir; non-zero on failure.
static inline int cli_run_init(void) {
    const char *build = getenv("ATS_BUILD");
    snprintf(bin, sizeof bin, "%s/attnscale", build ? build : "build");
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ats_test_cli_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    return 0;
}

// Runs "attnscale ARGS" (ARGS are shell words) and captures its output.
static inline struct run run(const char *args) {
    char cmd[4096], out[300], err[300];
    snprintf(out, sizeof out, "%s/out", tmpdir);
    snprintf(err, sizeof err, "%s/err", tmpdir);
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>%s </dev/null", bin, args, out, err);
    int st = system(cmd);
    struct run r = {WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(out), slurp(err)};
    return r;
}

static inline void run_free(struct run *r) {
    free(r->out);
    free(r->err);
}

// A usage error: exit 2, nothing on stdout, one message on stderr containing every needle.
static inline void expect_usage(const char *args, const char *needle1, const char *needle2) {
    struct run r = run(args);
    int ok = r.status == 2 && r.out[0] == '\0' && strstr(r.err, needle1) &&
             (!needle2 || strstr(r.err, needle2));
    ATS_CHECK(ok, "'%s' -> exit 2 naming '%s'%s%s (exit %d, stderr: %s)", args, needle1,
              needle2 ? " and " : "", needle2 ? needle2 : "", r.status, r.err);
    run_free(&r);
}

static inline int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

#ifdef cJSON__h
// Calls fn(record) for each JSON line of out; returns the number of lines parsed.
static inline int each_record(const char *out, void (*fn)(const cJSON *, void *), void *ctx) {
    int count = 0;
    const char *p = out;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *line = malloc(len + 1);
        memcpy(line, p, len);
        line[len] = '\0';
        cJSON *o = cJSON_Parse(line);
        if (o) {
            fn(o, ctx);
            count++;
        }
        cJSON_Delete(o);
        free(line);
        p = e ? e + 1 : p + len;
    }
    return count;
}

#endif

#endif // ATS_CLI_RUN_H
