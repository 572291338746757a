/*
 * test_cli.c: the attnscale binary as users and scripts see it: exit codes, messages that
 * name the option, --help/--version, JSON and CSV output read back with cJSON.
 * The binary is $ATS_BUILD/attnscale (default build/attnscale).
 * Run: make build/tests/test_cli && build/tests/test_cli
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attnscale.h"
#include "cli_run.h"
#include "test.h"

int main(void) {
    if (cli_run_init() != 0)
        return 1;

    // Made consistent (issue 13): -h is --help for every command; a repeated policy is
    // refused as a repeated metric is; a policy parameter without --policy is refused, not
    // ignored; reproduce neither lists nor takes --output/--format; query --n beyond the exact
    // sampler's streams names the largest n it reaches.
    struct run h = run("simplex -h");
    ATS_CHECK(h.status == 0 && strstr(h.out, "Usage: attnscale simplex"), "simplex -h: help, "
                                                                          "exit %d",
              h.status);
    run_free(&h);
    expect_usage("policies --policy yarn,qwen-logn,yarn --n 10", "--policy", "'yarn' is given twice");
    expect_usage("phase --n 8 --gamma 1 --metric lambda,lambda", "--metric", "lambda");
    expect_usage("diagnose --scores tests/golden/fixtures/scores_2d.npy --train-len 4",
                 "--train-len is a policy parameter", "--policy");
    expect_usage("diagnose --scores tests/golden/fixtures/scores_2d.npy --finetuned",
                 "--finetuned is a policy parameter", NULL);
    h = run("reproduce --help");
    ATS_CHECK(h.status == 0 && !strstr(h.out, "--output") && !strstr(h.out, "--format") &&
                  strstr(h.out, "--outdir"),
              "reproduce --help lists --outdir but neither --output nor --format");
    run_free(&h);
    expect_usage("reproduce paper2 --quick --format csv", "--format does not apply", "--outdir");
    expect_usage("reproduce paper2 --quick --output x", "--output does not apply", "--outdir");
    h = run("query --d 3 --n 1e15 --tau-prime 1");
    ATS_CHECK(h.status == 1 && strstr(h.err, "the exact sampler reaches n = 281474976710656") &&
                  !strstr(h.err, "raise chunk"),
              "query --n 1e15: names the largest n of the exact sampler (%s)", h.err);
    run_free(&h);

    // Work bounded before it starts: a grid of more records than one run writes, and a phase
    // run needing more memory than the machine has, are usage errors that say what they
    // would need, at once (before the value lists are crossed or tokens allocated).
    expect_usage("simplex --n 16 --rho 0:0.9:1000 --gamma 0:4:1000000",
                 "--rho 1000 x --gamma 1000000 values make 1e+09 records", "split the run");
    expect_usage("phase --n 16 --d 4 --rho 0:0.9:1e7 --gamma 0:10:1e7", "1e+14 records", NULL);
    expect_usage("phase --n 200000 --config simplex --eta-method hutchinson --metric eta "
                 "--gamma 1",
                 "phase at n = 200000, d = 200001 needs at least 960 GB of memory", "lower --n");

    // A run estimated longer than ten minutes says so before it starts (the long ones are
    // ended by timeout once the note is out); short runs say nothing.
    {
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "timeout 3 %s query --d 3 --n 1e10 --tau-prime 1 --trials 100 >/dev/null "
                 "2>%s/long; timeout 3 %s phase --n 200000 --gamma 1 >/dev/null 2>>%s/long",
                 bin, tmpdir, bin, tmpdir);
        int st = system(cmd);
        snprintf(cmd, sizeof cmd, "%s/long", tmpdir);
        char *err = slurp(cmd);
        struct run q = run("query --d 3 --n 1e4 --tau-prime 1 --trials 10");
        ATS_CHECK(st != -1 && strstr(err, "about 1e+12 keys to draw: roughly 2.3 hours") &&
                      strstr(err, "--sampler ppp") && strstr(err, "flops in the layer's products") &&
                      q.status == 0 && !strstr(q.err, "roughly"),
                  "cost notes before long query and phase runs, none for a short one (%s)", err);
        free(err);
        run_free(&q);
    }

    // Progress on a terminal (script(1) gives the run one): nothing for a short run, a line
    // with rate and ETA for one longer than two seconds, none with -q.
    if (system("command -v script >/dev/null 2>&1") == 0) {
        char cmd[1024];
        static const char *const runs[3] = {
            "simplex --n 16 --rho 0.5 --gamma 1",
            "query --d 3 --n 1e6 --tau-prime 1 --trials 500",
            "query --d 3 --n 1e6 --tau-prime 1 --trials 500 -q"};
        char *tty[3];
        for (int i = 0; i < 3; i++) {
            snprintf(cmd, sizeof cmd, "script -qec '%s %s >/dev/null' /dev/null > %s/tty%d", bin,
                     runs[i], tmpdir, i);
            int st = system(cmd);
            snprintf(cmd, sizeof cmd, "%s/tty%d", tmpdir, i);
            tty[i] = st == 0 ? slurp(cmd) : calloc(1, 1);
        }
        ATS_CHECK(!strstr(tty[0], "%") && strstr(tty[1], "/s),") && strstr(tty[1], "ETA") &&
                      strstr(tty[1], "100% (500/500") && !strstr(tty[2], "%"),
                  "progress: none for a short run, rate and ETA past 2 s, none with -q");
        for (int i = 0; i < 3; i++)
            free(tty[i]);
    } else {
        printf("SKIP: progress on a terminal not checked: script(1) is not installed\n");
    }

    // Usage errors (exit 2) name the option and what it accepts.
    expect_usage("", "Usage", NULL);
    expect_usage("frobnicate", "unknown command 'frobnicate'", NULL);
    expect_usage("simplex --n 1024 --rho 0.5 --gamma 1 --bogus 3", "unknown option '--bogus'",
                 NULL);
    expect_usage("simplex --n abc --rho 0.5 --gamma 1", "--n", "not a number");
    expect_usage("simplex --n 1024 --rho 1 --gamma 1", "--rho", "[0, 1)");
    expect_usage("simplex --n 1024 --rho -0.1 --gamma 1", "--rho", "outside");
    expect_usage("simplex --n -5 --rho 0.5 --gamma 1", "--n", "'-5'");
    expect_usage("simplex --n 1 --rho 0.5 --gamma 1", "--n", "[2, 2^53]");
    expect_usage("simplex --n 10.5 --rho 0.5 --gamma 1", "--n", "integer");
    expect_usage("simplex --n 1024 --rho 0.5 --gamma 0:4:0", "--gamma", "'0'");
    expect_usage("simplex --n 1024 --rho 0.5 --gamma 0:4", "--gamma", "lo:hi:k");
    expect_usage("simplex --n 1024 --rho 0.5 --gamma 1,", "--gamma", "empty");
    expect_usage("simplex --n 1024 --rho 0.5 --gamma -1", "--gamma", ">= 0");
    expect_usage("simplex --n 1024 --rho 0.5 --beta -2", "--beta", ">= 0");
    expect_usage("simplex --n 1024 --rho 0.5 --gamma 1 --q 0", "--q", "> 0");
    expect_usage("simplex --n 1024 --rho 0.5 --gamma 1 --alpha nan", "--alpha", "not a number");
    expect_usage("simplex --n 1024 --rho 0.5 --gamma 1 --d 1", "--d", "[2, 2^53]");
    expect_usage("simplex --n 1024 --rho 0.5 --gamma 1 --beta 2", "--gamma and --beta", NULL);
    expect_usage("simplex --rho 0.5 --gamma 1", "--n is required", NULL);
    expect_usage("simplex --n 1024 --gamma 1", "--rho is required", NULL);
    expect_usage("simplex --n 1024 --rho 0.5", "--gamma", "--beta");
    expect_usage("simplex --n 1024 --rho 0.5 --gamma", "--gamma", "needs a value");
    expect_usage("simplex --n 1024 --rho 0.5 --gamma 1 --format xml", "--format", "'xml'");
    expect_usage("simplex --n 1024 --rho 0.5 --gamma 1 extra", "unexpected argument 'extra'",
                 NULL);
    expect_usage("simplex --n 1024 --rho 0.5 --gamma 1e308", "gamma", "overflow");

    // Runtime failure (exit 1): the output cannot be opened.
    {
        struct run r = run("simplex --n 8 --rho 0.5 --gamma 1 --output /nonexistent/dir/x.json");
        ATS_CHECK(r.status == 1 && strstr(r.err, "/nonexistent/dir/x.json"),
                  "unwritable --output -> exit 1 naming the file (exit %d, stderr: %s)",
                  r.status, r.err);
        run_free(&r);
    }
    {
        struct run r = run("simplex --n 8 --rho 0.5 --gamma 1 --output /dev/full");
        ATS_CHECK(r.status == 1, "a full device -> exit 1 (exit %d, stderr: %s)", r.status,
                  r.err);
        run_free(&r);
    }

    // Help and version go to stdout with exit 0.
    {
        struct run r = run("--help");
        ATS_CHECK(r.status == 0 && strstr(r.out, "simplex") && strstr(r.out, "Exit status"),
                  "--help lists the commands and exit codes");
        run_free(&r);
        r = run("simplex --help");
        ATS_CHECK(r.status == 0 && strstr(r.out, "--gamma") && strstr(r.out, "--format") &&
                      strstr(r.out, "lo:hi:k") && strstr(r.out, "Exit status"),
                  "simplex --help lists its options, formats and exit codes");
        run_free(&r);
        r = run("--version");
        ATS_CHECK(r.status == 0 && strstr(r.out, ATS_VERSION) && strstr(r.out, "git") &&
                      strstr(r.out, "blas") && strstr(r.out, "threads"),
                  "--version gives version, git hash, BLAS and threads: %s", r.out);
        run_free(&r);
    }

    // One record per combination; every record carries its inputs.
    {
        struct run r = run("simplex --n 16,32 --rho 0.1:0.9:3 --alpha 0,0.5 --beta 2 --q 2.385");
        ATS_CHECK(r.status == 0 && count_lines(r.out) == 12, "2 x 3 x 2 combinations -> 12 records");
        cJSON *first = cJSON_Parse(r.out);
        const char *keys[] = {"n",     "d",      "rho",     "alpha",  "q",
                              "gamma", "beta",   "gamma_c", "kappa",  "regime",
                              "a_self", "rho_out", "lambda", "eta",   "rho_out_limit",
                              "eta_limit"};
        int all = first != NULL;
        for (size_t i = 0; all && i < sizeof keys / sizeof keys[0]; i++)
            all = cJSON_GetObjectItemCaseSensitive(first, keys[i]) != NULL;
        ATS_CHECK(all, "a simplex record has every contract key");
        ATS_CHECK(first && cJSON_GetObjectItem(first, "d")->valuedouble == 16 &&
                      cJSON_GetObjectItem(first, "q")->valuedouble == 2.385,
                  "d defaults to n; q is echoed");
        cJSON_Delete(first);
        run_free(&r);
    }
    {
        struct run r = run("simplex --n 64 --rho 0.5 --gamma 0:4:5 --format csv");
        ATS_CHECK(r.status == 0 && count_lines(r.out) == 6 &&
                      strncmp(r.out, "n,d,rho,alpha,q,gamma,beta,gamma_c,kappa,regime,", 48) == 0,
                  "CSV: header and 5 rows");
        run_free(&r);
    }
    {
        char args[2048];
        snprintf(args, sizeof args, "simplex --n 64 --rho 0.5 --gamma 1 --output %s/o.json -q",
                 tmpdir);
        struct run r = run(args);
        char path[300];
        snprintf(path, sizeof path, "%s/o.json", tmpdir);
        char *o = slurp(path);
        ATS_CHECK(r.status == 0 && r.out[0] == '\0' && count_lines(o) == 1,
                  "--output writes the records to the file, not stdout");
        free(o);
        remove(path);
        run_free(&r);
    }
    {
        struct run r = run("simplex --n 1024 --d 16 --rho 0.5 --gamma 1");
        ATS_CHECK(r.status == 0 && strstr(r.err, "d >= n"), "d < n is computed with a note");
        run_free(&r);
        r = run("simplex --n 1024 --d 16 --rho 0.5 --gamma 1 -q");
        ATS_CHECK(r.status == 0 && r.err[0] == '\0', "-q silences the note");
        run_free(&r);
    }

    // Figures: a heat map over (rho, gamma), a line plot over gamma; misuse is a usage error.
    {
        char args[2048], png[300];
        snprintf(png, sizeof png, "%s/f.png", tmpdir);
        snprintf(args, sizeof args, "simplex --n 64 --rho 0.1:0.9:5 --gamma 0:4:9 --plot %s", png);
        struct run r = run(args);
        FILE *f = fopen(png, "rb");
        unsigned char magic[4] = {0};
        if (f) {
            if (fread(magic, 1, 4, f) != 4)
                magic[0] = 0;
            fclose(f);
        }
        ATS_CHECK(r.status == 0 && count_lines(r.out) == 45 && magic[0] == 0x89 && magic[1] == 'P',
                  "--plot writes a PNG heat map beside the 45 records");
        remove(png);
        run_free(&r);
        snprintf(args, sizeof args,
                 "simplex --n 64,128 --rho 0.5 --gamma 0:4:9 --metric eta --plot %s", png);
        r = run(args);
        ATS_CHECK(r.status == 0 && access(png, F_OK) == 0, "--plot draws lines per n");
        remove(png);
        run_free(&r);
    }
    {
        // Figure misuse is a usage error found before anything is computed or written.
        char args[2048];
        snprintf(args, sizeof args,
                 "simplex --n 64,128 --rho 0.1:0.9:5 --gamma 0:4:9 --plot %s/x.png", tmpdir);
        expect_usage(args, "--plot", "one value of --n");
        snprintf(args, sizeof args, "simplex --n 64 --rho 0.5 --gamma 1 --plot %s/x.png", tmpdir);
        expect_usage(args, "--plot", "several");
        snprintf(args, sizeof args, "simplex --n 64 --rho 0.5 --gamma 3,2,1 --plot %s/x.png",
                 tmpdir);
        expect_usage(args, "--plot", "increasing");
        snprintf(args, sizeof args, "simplex --n 64 --rho 0.5 --gamma 0:1:3 --plot %s/x.jpg",
                 tmpdir);
        expect_usage(args, "--plot", ".png, .svg or .pdf");
        snprintf(args, sizeof args,
                 "simplex --n 2:65537:65536 --d 2:65537:65536 --alpha 0:65535:65536 "
                 "--q 1:16384:16384 --rho 0.5 --gamma 0:3:4 --plot %s/x.png",
                 tmpdir);
        expect_usage(args, "1.84e+19 records", "split the run");
        snprintf(args, sizeof args, "%s/x.png", tmpdir);
        ATS_CHECK(access(args, F_OK) != 0, "no figure written by a refused command");
    }
    expect_usage("simplex --n 64 --rho 0.5 --gamma 1 --metric entropy", "--metric", "'entropy'");
    expect_usage("simplex --n 64 --rho 0.5 --gamma 1 --metric eta", "--metric", "--plot");
    expect_usage("simplex --n 64 --rho 0.5 --gamma 1 --plot", "--plot", "needs a value");
    expect_usage("simplex --n 64 --rho 0.5 --gamma 1 --output", "--output", "needs a value");
    expect_usage("simplex --n 64 --rho 0.5 --gamma 1 --output ''", "--output", "empty");
    expect_usage("simplex --n 64 --rho 0.5 --gamma 2 -xq", "unknown option '-x'", NULL);
    expect_usage("simplex --n 64 --rho 0.5 --gamma 1 --d 12.5", "--d", "integer");
    expect_usage("simplex --n 64 --rho 0.5 --gamma 1 --d 1e300", "--d", "[2, 2^53]");
    expect_usage("simplex --n 9007199254740993 --rho 0.5 --gamma 1", "--n", "2^53");
    expect_usage("simplex --n 64 --rho 0.5 --gamma 1 --alpha -1", "--alpha", ">= 0");
    expect_usage("simplex --n 64 --rho 0.5 --gamma 1 --alpha x", "--alpha", "not a number");
    expect_usage("simplex --n 64 --rho 0.5 --gamma 1 --q -2", "--q", "> 0");
    expect_usage("simplex --n 64 --rho 0.5 --gamma 1 --q two", "--q", "not a number");
    expect_usage("simplex --n 64 --rho 0.5 --beta abc", "--beta", "not a number");
    expect_usage("simplex --n 64 --rho 0.5 --beta 1e999", "--beta", "overflows");
    expect_usage("simplex --n 64 --rho 0.5 --gamma -1e-400", "--gamma", "underflows");
    expect_usage("simplex --n 64 --rho 0.5 --gamma 1 --seed -1", "--seed", "[0, 2^53]");
    expect_usage("simplex --n 64 --rho 0.5 --gamma 1 --seed 1,2", "--seed", "one value");
    expect_usage("simplex --n 64 --rho 0.5 --gamma 1 --threads 0", "--threads", "[1, 4096]");
    {
        struct run r = run("simplex --n 64 --rho -0 --gamma 1 --seed 7 --threads 2");
        ATS_CHECK(r.status == 0 && strstr(r.out, "\"rho\":0,") && !strstr(r.out, "-0"),
                  "-0 is echoed as 0; --seed and --threads accepted: %s", r.out);
        run_free(&r);
    }

    // Every command's --help (generated from the library's option table) exits 0 on stdout
    // and lists every option, the common ones and the exit codes.
    for (int64_t i = 0; i < ats_command_count(); i++) {
        const struct ats_command *cmd = ats_command_get(i);
        char args[64];
        snprintf(args, sizeof args, "%s --help", cmd->name);
        struct run r = run(args);
        int missing = 0;
        for (int64_t k = 0; k < cmd->noptions; k++) {
            char opt[80];
            snprintf(opt, sizeof opt, "--%s", cmd->options[k].name);
            if (cmd->options[k].kind != ATS_OPTION_ARRAY && !strstr(r.out, opt)) {
                printf("  %s --help lacks %s\n", cmd->name, opt);
                missing++;
            }
        }
        // Commands with records take --format (reproduce writes figures: neither).
        ATS_CHECK(r.status == 0 && !missing && strstr(r.out, "Usage: attnscale") &&
                      (strstr(r.out, "--format") == NULL) == (cmd->operand != 0) &&
                      strstr(r.out, "Exit status") &&
                      !r.err[0],
                  "%s --help: exit %d, every one of its %lld options listed", cmd->name, r.status,
                  (long long)cmd->noptions);
        run_free(&r);
    }

    char path[300];
    snprintf(path, sizeof path, "%s/out", tmpdir);
    remove(path);
    snprintf(path, sizeof path, "%s/err", tmpdir);
    remove(path);
    rmdir(tmpdir);
    return ats_test_summary();
}
