/*
 * attnscale.c: the attnscale command-line tool: dispatch to subcommands, --help, --version.
 * Build: make (binary at build/attnscale). Uses only include/attnscale.h from the library.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char main_help[] =
    "Usage: attnscale <command> [options]\n"
    "       attnscale <command> --help\n"
    "       attnscale --version\n"
    "\n"
    "Phase transitions of softmax attention under inverse-temperature scaling at long context.\n"
    "\n"
    "Commands:\n"
    "  simplex    exact finite-n closed forms of the simplex layer (arXiv 2510.05554)\n"
    "  phase      the self-attention layer on simplex, almost-simplex, sphere or file tokens:\n"
    "             lambda and eta phase diagrams over (rho, gamma) (arXiv 2510.05554)\n"
    "  query      one query against n random keys on the sphere (arXiv 2605.08505): weights,\n"
    "             entropy and output in the sub-, critical and supercritical regimes\n"
    "  policies   logit multipliers of production attention-scaling policies\n"
    "  reproduce  the figures of papers 1 and 2 (and with all, the simplex maps and policies),\n"
    "             PNG with CSV beside each\n"
    "  diagnose   gap-counting diagnostic of attention logits from .npy or safetensors\n"
    "             (arXiv 2605.12697): regime of each row and the law of its critical scale\n"
    "\n"
    "Results go to stdout as JSON Lines (default) or CSV (--format csv); diagnostics to stderr.\n"
    "Exit status: 0 success, 1 runtime failure, 2 usage error.\n";

// SIGINT, SIGTERM, SIGHUP: the files being written are removed (an earlier file of the same
// name stays as it was), then the signal ends the process as it would have.
static void on_signal(int sig) {
    ats_atomic_cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv) {
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
    atexit(ats_atomic_cleanup); // a failure exits before a file is committed
    if (argc < 2) {
        fputs(main_help, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(main_help, stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        fputs(ats_build_info(), stdout);
        return CLI_EXIT_OK;
    }
    const struct ats_command *c = ats_command_find(cmd);
    if (c && c->operand)
        return cli_run_reproduce(c, argc - 1, argv + 1);
    if (c)
        return cli_run_records(c, argc - 1, argv + 1);
    fprintf(stderr, "attnscale: unknown command '%s'\nTry 'attnscale --help'.\n", cmd);
    return CLI_EXIT_USAGE;
}
