/* Command-line options for the bfn subcommands: "--name value", "--name=value"
 * and flags, with strict number parsing and range checks. */
#ifndef BFN_CLI_ARGS_H
#define BFN_CLI_ARGS_H

#include <stdint.h>

/* Exit codes of bfn (documented in `bfn --help` and the README). */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,        /* runtime error: I/O, malformed file, ... */
    EXIT_USAGE = 2,       /* bad command line */
    EXIT_NUMERIC = 3,     /* training diverged (NaN/Inf) */
    EXIT_INTERRUPTED = 130 /* stopped by Ctrl-C (after saving) */
};

typedef enum { ARG_INT, ARG_I64, ARG_U64, ARG_DOUBLE, ARG_STR, ARG_FLAG } arg_type;

typedef struct {
    const char *name;   /* without the leading "--" */
    arg_type type;
    void *dst;          /* int*, int64_t*, uint64_t*, double*, const char**, int* (flag) */
    const char *meta;   /* value placeholder in help, e.g. "N" */
    const char *help;
    double min, max;    /* inclusive range for numbers (ignored when min > max) */
    int seen;           /* set by the parser */
} arg_spec;

/* Parses argv[first..argc). Positional arguments are refused. Returns 0 on
 * success, 1 if --help was given (help printed to stdout), -1 on error (one
 * line printed to stderr). */
int args_parse(const char *prog, const char *summary, int argc, char **argv, int first,
               arg_spec *specs, int n);
void args_print_help(const char *prog, const char *summary, const arg_spec *specs, int n);

#endif
