/* bfn eval: test NLL bound in nats/image with standard errors. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bfn/data.h"
#include "bfn/eval.h"
#include "bfn/model_io.h"
#include "cli.h"

typedef struct {
    bfn_source *src;
    uint8_t *v; /* (D) intensities */
    int D;
    uint64_t seed;
} image_ctx;

/* Image i binarized afresh for each repeat, from its own stream. */
static bfn_status get_image(void *user, int64_t index, int repeat, uint8_t *x, bfn_err *err)
{
    image_ctx *c = user;
    bfn_status st = bfn_source_item(c->src, index, c->v, NULL, err);
    if (st != BFN_OK)
        return st;
    bfn_rng r;
    bfn_rng_init(&r, c->seed, 0x42494E41U);
    r = bfn_rng_fork(&r, (uint64_t)index);
    r = bfn_rng_fork(&r, (uint64_t)repeat);
    bfn_binarize(x, c->v, (size_t)c->D, &r);
    return BFN_OK;
}

typedef struct {
    double t0, last;
    int tty;
    volatile int *stop; /* Ctrl-C */
} prog;

static int on_progress(void *user, int64_t done, int64_t total)
{
    prog *p = user;
    if (*p->stop) {
        if (p->tty)
            fputc('\n', stderr);
        return 1;
    }
    double now = cli_now();
    if (p->tty && (now - p->last > 0.5 || done == total)) {
        p->last = now;
        double el = now - p->t0;
        char e[32];
        cli_duration(e, sizeof e, done > 0 ? el * (total - done) / done : -1);
        fprintf(stderr, "\r%lld/%lld images  ETA %s   ", (long long)done, (long long)total, e);
        if (done == total)
            fputc('\n', stderr);
    }
    return 0;
}

/* "10,25,inf" → steps {10, 25, 0}; 0 rows and a message on bad input. */
static int parse_steps(const char *list, int *steps, int max)
{
    int rows = 0;
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        char tok[32];
        if (len == 0 || len >= sizeof tok || rows == max)
            goto bad;
        memcpy(tok, p, len);
        tok[len] = 0;
        if (!strcmp(tok, "inf")) {
            steps[rows++] = 0;
        } else {
            char *end;
            long v = isdigit((unsigned char)tok[0]) ? strtol(tok, &end, 10) : 0;
            if (!v || *end || v < 1 || v > 1000000)
                goto bad;
            steps[rows++] = (int)v;
        }
        for (int k = 0; k < rows - 1; k++)
            if (steps[k] == steps[rows - 1]) {
                fprintf(stderr, "bfn eval: --steps '%s': %s appears twice\n", list, tok);
                return 0;
            }
        if (!p[len])
            return rows;
        p += len + 1;
    }
bad:
    fprintf(stderr,
            "bfn eval: --steps '%s': want up to %d comma-separated step counts, each 1..1000000 "
            "or inf (e.g. 10,25,100,inf)\n",
            list, max);
    return 0;
}

int cmd_eval(int argc, char **argv)
{
    const char *model = NULL, *data = NULL, *data_dir = NULL, *split = "test";
    const char *steps_arg = "100";
    int continuous = 0, repeats = 1, n_mc = 2, batch = 64, threads = 0;
    int64_t limit = 0;
    double beta1 = 0;
    uint64_t seed = 1;
    arg_spec specs[] = {
        {"model", ARG_STR, &model, "PATH", "model file (default " BFN_DEFAULT_MODEL ")", 1, 0, 0},
        {"steps", ARG_STR, &steps_arg, "N[,N...]", "discrete-time steps n for L^n (default 100); a list such as 10,25,100,inf gives one row each, sharing L^r", 1, 0, 0},
        {"continuous", ARG_FLAG, &continuous, NULL, "continuous-time loss L_inf (alone, or as one more row after --steps)", 0, 0, 0},
        {"repeats", ARG_INT, &repeats, "R", "draws per image, each re-binarized (default 1)", 1, 100000, 0},
        {"limit", ARG_I64, &limit, "N", "evaluate only the first N images (default all)", 1, 1e9, 0},
        {"mc", ARG_INT, &n_mc, "M", "Monte Carlo draws per pixel for each KL, in antithetic pairs (default 2)", 1, 100000, 0},
        {"beta1", ARG_DOUBLE, &beta1, "X", "beta(1) (default: the model's own)", 1e-4, 1e4, 0},
        {"data", ARG_STR, &data, "NAME", "mnist | fashion | twodigit (default: the model's)", 1, 0, 0},
        {"data-dir", ARG_STR, &data_dir, "DIR", "directory with the IDX files", 1, 0, 0},
        {"split", ARG_STR, &split, "NAME", "test | val | train (default test)", 1, 0, 0},
        {"seed", ARG_U64, &seed, "N", "random seed (default 1)", 1, 0, 0},
        {"batch", ARG_INT, &batch, "B", "network batch (default 64)", 1, 4096, 0},
        {"threads", ARG_INT, &threads, "N", "BLAS threads (default: all cores)", 1, 256, 0},
    };
    int r = args_parse("bfn eval",
                       "Estimates the test NLL bound L^n + L^r (or L_inf + L^r) in nats/image, each\n"
                       "image dynamically binarized afresh for every repeat.",
                       argc, argv, 2, specs, (int)(sizeof specs / sizeof specs[0]));
    if (r)
        return r > 0 ? EXIT_OK : EXIT_USAGE;
    char model_buf[BFN_PATH_MAX], data_buf[BFN_PATH_MAX];
    if (!model) {
        bfn_locate(BFN_DEFAULT_MODEL, model_buf, sizeof model_buf);
        model = model_buf;
    }
    int steps[BFN_EVAL_MAX_ROWS], rows = 0;
    if (!continuous || specs[1].seen) { /* --steps */
        rows = parse_steps(steps_arg, steps, BFN_EVAL_MAX_ROWS - (continuous != 0));
        if (!rows)
            return EXIT_USAGE;
    }
    for (int k = 0; continuous && k < rows; k++)
        if (steps[k] == 0) {
            fprintf(stderr, "bfn eval: --continuous and inf in --steps ask for the same row\n");
            return EXIT_USAGE;
        }
    if (continuous)
        steps[rows++] = 0;
    cli_set_threads(threads);
    bfn_err err = {0};
    bfn_net *net = NULL;
    bfn_model_meta meta;
    bfn_status st = bfn_model_load_net(model, &net, &meta, batch, &err);
    if (st != BFN_OK)
        return cli_fail("eval", st, &err);
    if (beta1 == 0)
        beta1 = meta.beta1;
    if (!data)
        data = meta.dataset[0] ? meta.dataset : "mnist";
    bfn_data_kind kind;
    bfn_split sp;
    bfn_source *src = NULL;
    if ((st = bfn_data_kind_parse(data, &kind, &err)) != BFN_OK ||
        (st = bfn_split_parse(split, &sp, &err)) != BFN_OK) {
        bfn_net_destroy(net);
        return cli_fail("eval", BFN_ERR_ARG, &err);
    }
    if (!data_dir) {
        bfn_locate(bfn_data_default_dir(kind), data_buf, sizeof data_buf);
        data_dir = data_buf;
    }
    if ((st = bfn_source_create(&src, kind, data_dir, sp, 0, &err)) != BFN_OK) {
        bfn_net_destroy(net);
        return cli_fail("eval", st, &err);
    }
    if (bfn_source_height(src) != meta.config.H || bfn_source_width(src) != meta.config.W) {
        fprintf(stderr, "bfn eval: %s is a %dx%d model but %s images are %dx%d\n", model,
                meta.config.H, meta.config.W, data, bfn_source_height(src), bfn_source_width(src));
        bfn_source_destroy(src);
        bfn_net_destroy(net);
        return EXIT_FAIL;
    }
    int64_t count = bfn_source_count(src);
    if (limit > 0 && limit < count)
        count = limit;
    image_ctx ic = {.src = src, .D = meta.config.H * meta.config.W, .seed = seed};
    ic.v = malloc((size_t)ic.D);
    bfn_eval_config ec = {.n_steps = steps[0], .beta1 = beta1, .repeats = repeats,
                          .count = count, .n_mc = n_mc, .seed = seed};
    bfn_eval_result res[BFN_EVAL_MAX_ROWS];
    prog pg = {.t0 = cli_now(), .tty = isatty(2), .stop = cli_interrupt_flag()};
    st = ic.v ? bfn_eval_run_rows(net, &ec, steps, rows, get_image, &ic, on_progress, &pg, res,
                                  NULL, &err)
              : BFN_ERR_NOMEM;
    int code = EXIT_OK;
    if (st != BFN_OK) {
        code = cli_fail("eval", st, &err);
    } else {
        printf("model %s, %s %s: %lld images x %d repeats, beta1 %g, seed %llu, %.1f s\n", model,
               data, split, (long long)res[0].images, res[0].repeats, beta1,
               (unsigned long long)seed, cli_now() - pg.t0);
        for (int k = 0; k < rows; k++) {
            char lname[16];
            if (steps[k] == 0)
                snprintf(lname, sizeof lname, "L_inf");
            else
                snprintf(lname, sizeof lname, "L^%d", steps[k]);
            if (rows > 1) /* one block per row, L^r the same in each */
                printf("%s", k ? "\n" : "");
            printf("%-8s %10.3f +- %.3f nats/image\n", lname, res[k].ln, res[k].ln_se);
            printf("%-8s %10.3f +- %.3f nats/image\n", "L^r", res[k].lr, res[k].lr_se);
            printf("%-8s %10.3f +- %.3f nats/image  (%.4f bits/pixel)\n", "total", res[k].total,
                   res[k].total_se, res[k].total / (ic.D * log(2.0)));
        }
    }
    free(ic.v);
    bfn_source_destroy(src);
    bfn_net_destroy(net);
    return code;
}
