#include "args.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int in_range(const arg_spec *s, double v)
{
    return s->min > s->max || (v >= s->min && v <= s->max);
}

/* Digits, after one '-' where allowed: strtoll and strtoull would also take
 * leading blanks and a '+' (and strtoull a '-', wrapping " -1" to 2^64 - 1). */
static int plain_integer(const char *v, int negative_ok)
{
    if (negative_ok && *v == '-')
        v++;
    return isdigit((unsigned char)*v);
}

static int parse_value(const char *prog, arg_spec *s, const char *v)
{
    char *end = NULL;
    errno = 0;
    switch (s->type) {
    case ARG_INT:
    case ARG_I64: {
        long long x = plain_integer(v, 1) ? strtoll(v, &end, 10) : 0;
        if (!plain_integer(v, 1) || errno || end == v || *end) {
            fprintf(stderr, "%s: --%s expects an integer, got '%s'\n", prog, s->name, v);
            return -1;
        }
        if (!in_range(s, (double)x) || (s->type == ARG_INT && (x < -2147483647LL || x > 2147483647LL))) {
            fprintf(stderr, "%s: --%s %s is out of range [%.15g, %.15g]\n", prog, s->name, v,
                    s->min, s->max);
            return -1;
        }
        if (s->type == ARG_INT)
            *(int *)s->dst = (int)x;
        else
            *(int64_t *)s->dst = (int64_t)x;
        return 0;
    }
    case ARG_U64: {
        unsigned long long x = plain_integer(v, 0) ? strtoull(v, &end, 10) : 0;
        if (!plain_integer(v, 0) || errno || end == v || *end) {
            fprintf(stderr, "%s: --%s expects a non-negative integer, got '%s'\n", prog, s->name, v);
            return -1;
        }
        *(uint64_t *)s->dst = (uint64_t)x;
        return 0;
    }
    case ARG_DOUBLE: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x)) {
            fprintf(stderr, "%s: --%s expects a number, got '%s'\n", prog, s->name, v);
            return -1;
        }
        if (!in_range(s, x)) {
            fprintf(stderr, "%s: --%s %s is out of range [%g, %g]\n", prog, s->name, v, s->min,
                    s->max);
            return -1;
        }
        *(double *)s->dst = x;
        return 0;
    }
    case ARG_STR:
        if (!*v) {
            fprintf(stderr, "%s: --%s expects a non-empty value\n", prog, s->name);
            return -1;
        }
        *(const char **)s->dst = v;
        return 0;
    case ARG_FLAG:
        break;
    }
    return -1;
}

int args_parse(const char *prog, const char *summary, int argc, char **argv, int first,
               arg_spec *specs, int n)
{
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            args_print_help(prog, summary, specs, n);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog, a);
            return -1;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        arg_spec *s = NULL;
        for (int k = 0; k < n; k++)
            if (strlen(specs[k].name) == len && !strncmp(specs[k].name, name, len))
                s = &specs[k];
        if (!s) {
            fprintf(stderr, "%s: unknown option '--%.*s' (see --help)\n", prog, (int)len, name);
            return -1;
        }
        if (s->type == ARG_FLAG) {
            if (eq) {
                fprintf(stderr, "%s: --%s takes no value\n", prog, s->name);
                return -1;
            }
            *(int *)s->dst = 1;
            s->seen = 1;
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: --%s needs a value\n", prog, s->name);
                return -1;
            }
            v = argv[++i];
        }
        if (parse_value(prog, s, v) != 0)
            return -1;
        s->seen = 1;
    }
    return 0;
}

void args_print_help(const char *prog, const char *summary, const arg_spec *specs, int n)
{
    printf("usage: %s [options]\n%s\n\noptions:\n", prog, summary);
    for (int k = 0; k < n; k++) {
        char left[64];
        if (specs[k].type == ARG_FLAG)
            snprintf(left, sizeof left, "--%s", specs[k].name);
        else
            snprintf(left, sizeof left, "--%s %s", specs[k].name,
                     specs[k].meta ? specs[k].meta : "X");
        printf("  %-24s %s\n", left, specs[k].help);
    }
    printf("  %-24s %s\n", "--help", "show this help");
}
