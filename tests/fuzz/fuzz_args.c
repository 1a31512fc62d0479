/* Fuzz target: command-line parsing of bfn train, sample, eval, info and
 * data, with their real option tables.
 *
 * Input: one byte choosing the command, then the arguments separated by NUL
 * bytes (so any other byte, spaces and newlines included, can be part of an
 * argument). They become argv = {"bfn", <command>, args...}.
 *
 * The command sources are compiled with args_parse renamed to
 * fuzz_args_parse (tests/fuzz/cli/): it runs the real args_parse on the
 * command's own table, checks what the parser promised, runs the checks the
 * command applies to the strings it got (data set name, split, --mult list),
 * and then jumps back here, so nothing after parsing (files, training) runs. */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "bfn/data.h"
#include "cli.h"

int fuzz_args_parse(const char *prog, const char *summary, int argc, char **argv, int first,
                    arg_spec *specs, int n);
int fuzz_train_mult(const char *s);

static jmp_buf g_back;

static void require(int cond, const char *what, const char *name)
{
    if (!cond) {
        fprintf(stderr, "fuzz_args: %s (--%s)\n", what, name ? name : "");
        abort();
    }
}

int fuzz_args_parse(const char *prog, const char *summary, int argc, char **argv, int first,
                    arg_spec *specs, int n)
{
    int r = args_parse(prog, summary, argc, argv, first, specs, n);
    require(r == -1 || r == 0 || r == 1, "args_parse returned an unknown code", NULL);
    if (r == 0) {
        for (int k = 0; k < n; k++) {
            const arg_spec *s = &specs[k];
            if (!s->seen)
                continue;
            double v = 0;
            switch (s->type) {
            case ARG_INT: v = *(const int *)s->dst; break;
            case ARG_I64: v = (double)*(const int64_t *)s->dst; break;
            case ARG_DOUBLE: v = *(const double *)s->dst; break;
            case ARG_STR: {
                const char *str = *(const char **)s->dst;
                require(str && *str, "empty string accepted", s->name);
                bfn_data_kind kind;
                bfn_split split;
                bfn_err err = {0};
                if (!strcmp(s->name, "data"))
                    (void)bfn_data_kind_parse(str, &kind, &err);
                else if (!strcmp(s->name, "split"))
                    (void)bfn_split_parse(str, &split, &err);
                else if (!strcmp(s->name, "mult"))
                    (void)fuzz_train_mult(str);
                continue;
            }
            case ARG_FLAG:
                require(*(const int *)s->dst == 1, "flag seen but not set", s->name);
                continue;
            case ARG_U64:
                continue;
            }
            if (s->min <= s->max)
                require(v >= s->min && v <= s->max, "value outside its range accepted", s->name);
        }
    }
    longjmp(g_back, 1);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const cmds[] = {"train", "sample", "eval", "info", "data"};
    static int (*const fns[])(int, char **) = {cmd_train, cmd_sample, cmd_eval, cmd_info,
                                               cmd_data};
    if (size < 1)
        return 0;
    int c = data[0] % 5;
    char *buf = malloc(size + 16);
    char *argv[MAX_ARGS + 3];
    if (!buf)
        return 0;
    /* buf = "bfn\0<command>\0<arguments, NUL-terminated>" */
    size_t at = (size_t)snprintf(buf, size + 16, "bfn%c%s", 0, cmds[c]) + 1;
    argv[0] = buf;
    argv[1] = buf + 4;
    memcpy(buf + at, data + 1, size - 1);
    buf[at + size - 1] = '\0';
    int argc = 2;
    for (size_t i = at; i < at + size - 1 && argc < MAX_ARGS + 2; i += strlen(buf + i) + 1)
        argv[argc++] = buf + i;
    argv[argc] = NULL;
    if (!setjmp(g_back))
        fns[c](argc, argv); /* returns by itself only when it rejects argv before parsing */
    free(buf);
    return 0;
}
