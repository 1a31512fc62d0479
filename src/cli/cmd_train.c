/* bfn train: continuous-time BFN training with checkpoints, resume, Ctrl-C
 * save, a progress line and a CSV log. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bfn/data.h"
#include "bfn/model_io.h"
#include "bfn/net.h"
#include "bfn/train.h"
#include "cli.h"

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* Creates the parent directory of path if it is missing (one level). */
static void ensure_parent(const char *path)
{
    char dir[BFN_PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return; /* cli_check_writable says it is too long */
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return;
    *slash = '\0';
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        fprintf(stderr, "bfn train: cannot create directory %s: %s\n", dir, strerror(errno));
}

/* The training and validation sources of one data set; the training draws
 * follow seed (two-digit canvases are a function of it). */
static bfn_status open_sources(bfn_source **train, bfn_source **val, bfn_data_kind kind,
                               const char *dir, uint64_t seed, bfn_err *err)
{
    bfn_status st = bfn_source_create(train, kind, dir, BFN_SPLIT_TRAIN, seed, err);
    if (st == BFN_OK && (st = bfn_source_create(val, kind, dir, BFN_SPLIT_VAL, 0, err)) != BFN_OK) {
        bfn_source_destroy(*train);
        *train = NULL;
    }
    return st;
}

static void run_free(bfn_trainer *tr, bfn_net *net, bfn_source *train, bfn_source *val)
{
    bfn_trainer_destroy(tr);
    bfn_net_destroy(net);
    bfn_source_destroy(train);
    bfn_source_destroy(val);
}

/* A run killed after its last checkpoint has logged steps that the resumed
 * run does again. Before appending, drop the log's rows from the first one
 * past the checkpoint's step on (and a last row cut short by the kill), so
 * each step appears once; the kept rows replace the log atomically
 * (bfn_file_replace), and nothing is rewritten when nothing is dropped.
 * Temporaries of killed trims are removed either way. Returns 0, or -1 after
 * printing why the log was left as it was. */
static int trim_log(const char *path, int64_t step)
{
    if (!file_exists(path))
        return 0; /* no log yet: it is created */
    bfn_err err = {0};
    uint8_t *data;
    size_t n, keep = 0;
    if (bfn_file_read(path, &data, &n, &err) != BFN_OK) {
        fprintf(stderr, "bfn train: cannot trim the log: %s\n", err.msg);
        return -1;
    }
    while (keep < n) {
        const char *row = (const char *)data + keep;
        const char *nl = memchr(row, '\n', n - keep);
        if (!nl)
            break; /* a row the kill cut short */
        if (*row >= '0' && *row <= '9') { /* digits up to the '\n' at most: in bounds */
            char *end;
            errno = 0;
            long long s = strtoll(row, &end, 10);
            if (*end == ',' && !errno && s > step)
                break;
        }
        keep = (size_t)(nl + 1 - (const char *)data);
    }
    int rc = 0;
    if (keep == n)
        bfn_file_remove_dead_temps(path);
    else if (bfn_file_replace(path, data, keep, &err) != BFN_OK) {
        fprintf(stderr, "bfn train: cannot trim the log to step %lld (rows after it may repeat): %s\n",
                (long long)step, err.msg);
        rc = -1;
    }
    free(data);
    return rc;
}

static int parse_mult(const char *s, bfn_net_config *c)
{
    int n = 0;
    const char *p = s;
    while (*p && n < BFN_NET_MAX_LEVELS) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 16)
            return -1;
        c->ch_mult[n++] = (int)v;
        p = end;
        if (*p == ',' && p[1])
            p++;
        else if (*p)
            return -1;
    }
    if (*p || n < 1)
        return -1;
    c->n_levels = n;
    return 0;
}

/* Appends ", " (unless buf is empty) and the formatted text to buf, which
 * holds *len characters; what does not fit is cut. Returns 1 (one item). */
static int list_add(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len + 2 >= cap)
        return 1;
    if (*len)
        *len += (size_t)snprintf(buf + *len, cap - *len, ", ");
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    *len = w < 0 ? *len : (*len + (size_t)w < cap ? *len + (size_t)w : cap - 1);
    return 1;
}

static int spec_seen(const arg_spec *specs, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(specs[i].name, name) == 0)
            return specs[i].seen;
    return 0;
}

/* A resume continues the checkpoint's own data set, recipe and network.
 * Options of these given on its command line must say what the checkpoint
 * holds (the command that started the run, repeated with --resume, is fine);
 * lists in buf those that differ, with the checkpoint's value. Returns their
 * count. */
static int resume_conflicts(const arg_spec *specs, int ns, const bfn_train_config *given,
                            int64_t warmup, const bfn_net_config *given_net, const char *mult,
                            double dropout, const bfn_train_config *run,
                            const bfn_net_config *nc, const char *data, const char *run_data,
                            char *buf, size_t cap)
{
    const struct {
        const char *name;
        double given, run;
    } num[] = {
        {"batch", given->batch, run->batch},
        {"lr", given->lr, run->lr},
        {"lr-min", given->lr_min, run->lr_min},
        {"warmup", (double)warmup, (double)run->warmup},
        {"beta1", given->beta1, run->beta1},
        {"weight-decay", given->weight_decay, run->weight_decay},
        {"clip", given->clip, run->clip},
        {"ema", given->ema_decay, run->ema_decay},
        {"base-ch", given_net->base_ch, nc->base_ch},
        {"n-res", given_net->n_res, nc->n_res},
        {"heads", given_net->n_heads, nc->n_heads},
        {"attn", given_net->attn_levels, nc->attn_levels},
        {"temb", given_net->temb_dim, nc->temb_dim},
        {"groups", given_net->groups, nc->groups},
        {"dropout", (float)dropout, nc->dropout},
    };
    int n = 0;
    size_t len = 0;
    buf[0] = '\0';
    if (spec_seen(specs, ns, "data") && strcmp(data, run_data) != 0)
        n += list_add(buf, cap, &len, "--data %s (checkpoint: %s)", data, run_data);
    for (size_t i = 0; i < sizeof num / sizeof num[0]; i++)
        if (spec_seen(specs, ns, num[i].name) && num[i].given != num[i].run)
            n += list_add(buf, cap, &len, "--%s %g (checkpoint: %g)", num[i].name, num[i].given, num[i].run);
    if (spec_seen(specs, ns, "seed") && given->seed != run->seed)
        n += list_add(buf, cap, &len, "--seed %llu (checkpoint: %llu)", (unsigned long long)given->seed,
                 (unsigned long long)run->seed);
    if (mult) {
        bfn_net_config m = *nc;
        int same = parse_mult(mult, &m) == 0 && m.n_levels == nc->n_levels;
        for (int l = 0; same && l < nc->n_levels; l++)
            same = m.ch_mult[l] == nc->ch_mult[l];
        if (!same) {
            char have[64] = "";
            for (int l = 0, k = 0; l < nc->n_levels; l++)
                k += snprintf(have + k, sizeof have - (size_t)k, "%s%d", l ? "," : "", nc->ch_mult[l]);
            n += list_add(buf, cap, &len, "--mult %s (checkpoint: %s)", mult, have);
        }
    }
    return n;
}

typedef struct {
    FILE *log;
    double t0, last_print;
    int64_t start_step;
    double smooth;
    int tty;
} progress;

static void print_progress(progress *pg, const bfn_train_stats *s, int64_t total, int batch,
                           double val, int final)
{
    double now = cli_now();
    if (!final && now - pg->last_print < (pg->tty ? 0.5 : 30.0))
        return;
    pg->last_print = now;
    double el = now - pg->t0;
    double ips = el > 0 ? (double)(s->step - pg->start_step) * batch / el : 0;
    double eta = ips > 0 ? (double)(total - s->step) * batch / ips : -1;
    char e[32], v[32] = "";
    cli_duration(e, sizeof e, eta);
    if (val >= 0)
        snprintf(v, sizeof v, "  val %.2f", val);
    fprintf(stderr, "%sstep %lld/%lld  loss %.2f%s  lr %.2e  %.0f img/s  ETA %s   %s",
            pg->tty ? "\r" : "", (long long)s->step, (long long)total, pg->smooth, v, s->lr, ips,
            e, pg->tty && !final ? "" : "\n");
    fflush(stderr);
}

int cmd_train(int argc, char **argv)
{
    const char *data = "mnist", *data_dir = NULL, *ckpt = NULL, *out = NULL, *log_path = NULL;
    const char *mult = NULL, *notes = NULL, *init_path = NULL;
    int resume = 0, force = 0, threads = 0, quiet = 0;
    int64_t steps = 20000, warmup = -1, val_every = 500, ckpt_every = 1000;
    int val_batches = 10;
    double ckpt_minutes = 10.0;
    bfn_train_config tc = bfn_train_config_default();
    int base_ch = 0, n_res = -1, heads = 0, temb = 0, groups = 0, attn = -1;
    double dropout = -1;
    arg_spec specs[] = {
        {"data", ARG_STR, &data, "NAME", "mnist | fashion | twodigit (default mnist; with --resume the checkpoint's)", 1, 0, 0},
        {"data-dir", ARG_STR, &data_dir, "DIR", "directory with the IDX files (default data/mnist; fashion: /usr/share/datasets/fashion-mnist)", 1, 0, 0},
        {"ckpt", ARG_STR, &ckpt, "PATH", "checkpoint file (default runs/<data>.ckpt)", 1, 0, 0},
        {"out", ARG_STR, &out, "PATH", "model file with the EMA weights (default runs/<data>.bfn)", 1, 0, 0},
        {"log", ARG_STR, &log_path, "PATH", "CSV log (default: checkpoint path + .csv)", 1, 0, 0},
        {"resume", ARG_FLAG, &resume, NULL, "continue from the checkpoint", 0, 0, 0},
        {"init", ARG_STR, &init_path, "MODEL", "start a new run from this model file's network and weights (its data set and beta(1) unless given; --dropout may change)", 1, 0, 0},
        {"force", ARG_FLAG, &force, NULL, "start afresh even if the checkpoint exists (overwrites it)", 0, 0, 0},
        {"steps", ARG_I64, &steps, "N", "total optimizer steps of the run (default 20000; a resume keeps its own)", 1, 1e12, 0},
        {"batch", ARG_INT, &tc.batch, "B", "images per step (default 64)", 1, 4096, 0},
        {"lr", ARG_DOUBLE, &tc.lr, "X", "peak learning rate (default 1e-3)", 1e-8, 0.5, 0},
        {"lr-min", ARG_DOUBLE, &tc.lr_min, "X", "final learning rate of the cosine decay (default 1e-5)", 0, 0.5, 0},
        {"warmup", ARG_I64, &warmup, "N", "warmup steps (default min(500, steps/10))", 0, 1e12, 0},
        {"beta1", ARG_DOUBLE, &tc.beta1, "X", "BFN accuracy beta(1) (default 3)", 1e-3, 1e4, 0},
        {"weight-decay", ARG_DOUBLE, &tc.weight_decay, "X", "AdamW weight decay (default 0.01)", 0, 0.5, 0},
        {"clip", ARG_DOUBLE, &tc.clip, "X", "gradient-norm clip, 0 = off (default 5)", 0, 1e6, 0},
        {"ema", ARG_DOUBLE, &tc.ema_decay, "X", "EMA decay of the weights (default 0.999)", 0, 0.999999, 0},
        {"seed", ARG_U64, &tc.seed, "N", "random seed (default 1)", 1, 0, 0},
        {"base-ch", ARG_INT, &base_ch, "C", "channels at full resolution (default 32)", 4, 512, 0},
        {"mult", ARG_STR, &mult, "LIST", "channel multipliers per level, e.g. 1,2,2", 1, 0, 0},
        {"n-res", ARG_INT, &n_res, "N", "residual blocks per level", 0, 8, 0},
        {"heads", ARG_INT, &heads, "N", "attention heads", 1, 64, 0},
        {"attn", ARG_INT, &attn, "N", "self-attention in the lowest N levels (default 1: the lowest only; 0: none)", 0, BFN_NET_MAX_LEVELS, 0},
        {"temb", ARG_INT, &temb, "N", "time-embedding width", 4, 2048, 0},
        {"groups", ARG_INT, &groups, "N", "GroupNorm groups", 1, 512, 0},
        {"dropout", ARG_DOUBLE, &dropout, "P", "dropout probability", 0, 0.95, 0},
        {"val-every", ARG_I64, &val_every, "N", "validation every N steps, 0 = never (default 500)", 0, 1e12, 0},
        {"val-batches", ARG_INT, &val_batches, "N", "validation batches (default 10)", 1, 10000, 0},
        {"ckpt-every", ARG_I64, &ckpt_every, "N", "checkpoint every N steps (default 1000)", 1, 1e12, 0},
        {"ckpt-minutes", ARG_DOUBLE, &ckpt_minutes, "M", "and at least every M minutes (default 10)", 0.01, 1e6, 0},
        {"notes", ARG_STR, &notes, "TEXT", "free text stored in the model file", 1, 0, 0},
        {"threads", ARG_INT, &threads, "N", "BLAS threads (default: all cores)", 1, 256, 0},
        {"quiet", ARG_FLAG, &quiet, NULL, "no progress line", 0, 0, 0},
    };
    const int ns = (int)(sizeof specs / sizeof specs[0]);
    int r = args_parse("bfn train",
                       "Trains a BFN with the continuous-time loss. Checkpoints (weights, EMA, Adam\n"
                       "state, step, rng) are written atomically; Ctrl-C saves and exits; --resume\n"
                       "continues exactly where the checkpoint left off.",
                       argc, argv, 2, specs, ns);
    if (r)
        return r > 0 ? EXIT_OK : EXIT_USAGE;
    cli_set_threads(threads);

    bfn_err err = {0};
    bfn_status st;
    bfn_model_meta probe = {0};
    if (notes && bfn_model_meta_set_note(&probe, "notes", notes, &err) != BFN_OK) {
        fprintf(stderr, "bfn train: --notes: %s\n", err.msg); /* not after the first steps */
        return EXIT_USAGE;
    }
    if (resume && force) {
        fprintf(stderr, "bfn train: --resume and --force contradict each other\n");
        return EXIT_USAGE;
    }
    /* --init: a new run that starts from a model file's network and weights;
     * from here on, early exits go through "early" to free it */
    bfn_net *init_net = NULL;
    bfn_model_meta init_meta;
    int early_code;
    if (init_path) {
        static const char *const shape[] = {"base-ch", "mult", "n-res", "heads", "temb", "groups"};
        char given[200] = "";
        size_t len = 0;
        for (size_t j = 0; j < sizeof shape / sizeof shape[0]; j++)
            if (spec_seen(specs, ns, shape[j]))
                list_add(given, sizeof given, &len, "--%s", shape[j]);
        if (resume || len) {
            fprintf(stderr, "bfn train: --init starts a new run with the network of %s; %s\n",
                    init_path, resume ? "--resume continues an old one" : given);
            if (!resume)
                fprintf(stderr, "bfn train: (of the network options only --dropout, and --attn "
                                "to add attention, apply with --init)\n");
            return EXIT_USAGE;
        }
        if ((st = bfn_model_load_net(init_path, &init_net, &init_meta, 1, &err)) != BFN_OK)
            return cli_fail("train", st, &err);
        int had = bfn_net_get_config(init_net)->attn_levels;
        if (attn >= 0 && attn < had) {
            fprintf(stderr, "bfn train: --attn %d: %s has attention in its lowest %d level%s; "
                            "--init can add attention, not remove it\n",
                    attn, init_path, had, had == 1 ? "" : "s");
            bfn_net_destroy(init_net);
            return EXIT_USAGE;
        }
        if (!spec_seen(specs, ns, "data") && init_meta.dataset[0])
            data = init_meta.dataset;
        if (!spec_seen(specs, ns, "beta1"))
            tc.beta1 = init_meta.beta1;
    }
    bfn_data_kind kind;
    st = bfn_data_kind_parse(data, &kind, &err);
    if (st != BFN_OK) {
        early_code = cli_fail("train", BFN_ERR_ARG, &err);
        goto early;
    }
    char data_buf[BFN_PATH_MAX];
    int default_dir = !data_dir;
    if (!data_dir) {
        bfn_locate(bfn_data_default_dir(kind), data_buf, sizeof data_buf);
        data_dir = data_buf;
    }
    char ckpt_buf[64], out_buf[64], log_buf[BFN_PATH_MAX + 8];
    if (!ckpt) {
        snprintf(ckpt_buf, sizeof ckpt_buf, "runs/%s.ckpt", bfn_data_kind_name(kind));
        ckpt = ckpt_buf;
    }
    if (!out) {
        snprintf(out_buf, sizeof out_buf, "runs/%s.bfn", bfn_data_kind_name(kind));
        out = out_buf;
    }
    if (!log_path) {
        if (snprintf(log_buf, sizeof log_buf, "%s.csv", ckpt) >= (int)sizeof log_buf) {
            fprintf(stderr, "bfn train: cannot write %s.csv: path too long\n", ckpt);
            early_code = EXIT_FAIL;
            goto early;
        }
        log_path = log_buf;
    }
    /* an output that cannot be written fails now, not at the first save */
    ensure_parent(ckpt);
    ensure_parent(out);
    if (cli_check_writable("train", ckpt) || cli_check_writable("train", out)) {
        early_code = EXIT_FAIL;
        goto early;
    }
    if (!resume && !force && file_exists(ckpt)) {
        fprintf(stderr, "bfn train: %s exists; use --resume to continue it or --force to start over\n",
                ckpt);
        early_code = EXIT_USAGE;
        goto early;
    }
    if (resume && !file_exists(ckpt)) {
        fprintf(stderr, "bfn train: --resume: no checkpoint at %s\n", ckpt);
        return EXIT_FAIL; /* no --init with --resume */
    }

    /* a resume opens its data once it has read the checkpoint's data set and seed */
    bfn_source *train_src = NULL, *val_src = NULL;
    if (!resume &&
        (st = open_sources(&train_src, &val_src, kind, data_dir, tc.seed, &err)) != BFN_OK) {
        early_code = cli_fail("train", st, &err);
        if (default_dir && kind != BFN_DATA_FASHION)
            fprintf(stderr, "bfn train: fetch MNIST first with: bfn data fetch\n");
        goto early;
    }

    bfn_net *net = NULL;
    bfn_trainer *tr = NULL;
    int64_t images_seen = 0;
    char notes_buf[BFN_MODEL_NOTE_VALUE_MAX];
    if (!resume) { /* a new run's schedule (a resume keeps its checkpoint's) */
        tc.total_steps = steps;
        tc.warmup = warmup >= 0 ? warmup : (steps / 10 < 500 ? steps / 10 : 500);
    }
    if (resume) {
        bfn_model_meta meta;
        st = bfn_trainer_load(ckpt, &net, &tr, &meta, 0, &err);
        if (st == BFN_OK) {
            images_seen = (int64_t)meta.images_seen;
            /* the run's description stays unless --notes replaces it */
            const char *kept = bfn_model_meta_note(&meta, "notes");
            if (!notes && kept) {
                snprintf(notes_buf, sizeof notes_buf, "%s", kept);
                notes = notes_buf;
            }
            const bfn_net_config *nc = bfn_net_get_config(net);
            uint64_t run_seed = bfn_trainer_config(tr)->seed;
            bfn_data_kind run_kind = kind;
            if (meta.dataset[0] && bfn_data_kind_parse(meta.dataset, &run_kind, &err) != BFN_OK)
                st = bfn_err_set(&err, BFN_ERR_FORMAT, "%s was trained on data set '%.32s', "
                                 "which this build does not know", ckpt, meta.dataset);
            bfn_net_config given_net = {.base_ch = base_ch, .n_res = n_res, .n_heads = heads,
                                        .attn_levels = attn, .temb_dim = temb, .groups = groups};
            char diff[600];
            if (st == BFN_OK &&
                resume_conflicts(specs, ns, &tc, warmup, &given_net, mult, dropout,
                                 bfn_trainer_config(tr), nc, bfn_data_kind_name(kind),
                                 bfn_data_kind_name(run_kind), diff, sizeof diff)) {
                fprintf(stderr,
                        "bfn train: --resume continues the checkpoint's own recipe and network; "
                        "these options differ from it: %s. Leave them out, or start a new run "
                        "with --force (--steps moves the end of the learning-rate schedule)\n",
                        diff);
                run_free(tr, net, NULL, NULL);
                return EXIT_USAGE;
            }
            /* --steps moves the end of the schedule; without it the run ends where
             * it was going to */
            int64_t at = bfn_trainer_steps(tr);
            if (st == BFN_OK && spec_seen(specs, ns, "steps") && steps <= at) {
                fprintf(stderr, "bfn train: --steps %lld: %s is at step %lld already; give a later "
                                "end, or leave --steps out to keep the run's own (%lld)\n",
                        (long long)steps, ckpt, (long long)at,
                        (long long)bfn_trainer_config(tr)->total_steps);
                run_free(tr, net, NULL, NULL);
                return EXIT_USAGE;
            }
            if (st == BFN_OK && run_kind != kind) {
                /* continue on the run's own data set (without --data): its data
                 * directory and, unless given, its model file */
                kind = run_kind;
                data = bfn_data_kind_name(kind);
                if (default_dir)
                    bfn_locate(bfn_data_default_dir(kind), data_buf, sizeof data_buf);
                if (out == out_buf) {
                    snprintf(out_buf, sizeof out_buf, "runs/%s.bfn", data);
                    ensure_parent(out);
                    if (cli_check_writable("train", out)) {
                        run_free(tr, net, NULL, NULL);
                        return EXIT_FAIL;
                    }
                }
            }
            if (st == BFN_OK) /* and its seed */
                st = open_sources(&train_src, &val_src, kind, data_dir, run_seed, &err);
            if (st == BFN_OK && spec_seen(specs, ns, "steps"))
                bfn_trainer_set_total_steps(tr, steps);
        }
    } else if (init_path) {
        bfn_net_config nc = *bfn_net_get_config(init_net);
        if (dropout >= 0)
            nc.dropout = (float)dropout;
        int grown = attn > nc.attn_levels, kept = 0;
        if (grown)
            nc.attn_levels = attn; /* new attention blocks start as identities */
        if ((st = bfn_net_config_check(&nc, &err)) == BFN_OK &&
            (st = bfn_net_create(&net, &nc, tc.batch, &err)) == BFN_OK) {
            bfn_net_init_params(net, tc.seed);
            st = bfn_net_copy_params(net, init_net, &kept, &err);
            if (st == BFN_OK && grown)
                fprintf(stderr, "bfn train: attention added in the lowest %d levels (%d new tensors, "
                                "%zu parameters in all); the network starts computing what %s did\n",
                        attn, kept, bfn_net_param_count(net), init_path);
            if (st == BFN_OK)
                st = bfn_trainer_create(&tr, net, &tc, &err);
            images_seen = (int64_t)init_meta.images_seen;
        }
    } else {
        bfn_net_config nc = bfn_net_config_default(2, bfn_source_height(train_src),
                                                   bfn_source_width(train_src));
        if (base_ch) nc.base_ch = base_ch;
        if (n_res >= 0) nc.n_res = n_res;
        if (heads) nc.n_heads = heads;
        if (temb) nc.temb_dim = temb;
        if (groups) nc.groups = groups;
        if (attn >= 0) nc.attn_levels = attn;
        if (dropout >= 0) nc.dropout = (float)dropout;
        if (mult && parse_mult(mult, &nc) != 0) {
            fprintf(stderr, "bfn train: --mult expects a comma list of 1..%d integers 1..16, got '%s'\n",
                    BFN_NET_MAX_LEVELS, mult);
            run_free(NULL, NULL, train_src, val_src);
            return EXIT_USAGE;
        }
        if ((st = bfn_net_config_check(&nc, &err)) == BFN_OK &&
            (st = bfn_net_create(&net, &nc, tc.batch, &err)) == BFN_OK) {
            bfn_net_init_params(net, tc.seed);
            st = bfn_trainer_create(&tr, net, &tc, &err);
        }
    }
    bfn_net_destroy(init_net);
    if (st == BFN_OK && (resume || init_path)) {
        const bfn_net_config *c = bfn_net_get_config(net);
        const char *from = resume ? ckpt : init_path;
        if (c->H != bfn_source_height(train_src) || c->W != bfn_source_width(train_src))
            st = bfn_err_set(&err, BFN_ERR_MISMATCH, "%s is a %dx%d model but %s images are %dx%d",
                             from, c->H, c->W, data, bfn_source_height(train_src),
                             bfn_source_width(train_src));
        else if (resume)
            fprintf(stderr, "bfn train: resuming %s at step %lld (%lld images seen)\n", ckpt,
                    (long long)bfn_trainer_steps(tr), (long long)images_seen);
        else
            fprintf(stderr, "bfn train: new run from %s (step %llu, %lld images seen)\n", init_path,
                    (unsigned long long)init_meta.step, (long long)images_seen);
    }
    if (st != BFN_OK) {
        int code = cli_fail("train", st, &err);
        run_free(tr, net, train_src, val_src);
        return code;
    }
    const bfn_train_config *cfg = bfn_trainer_config(tr);
    if (!quiet)
        fprintf(stderr, "bfn train: %s %dx%d, %zu parameters, beta1 %g, batch %d, lr %g, %lld steps\n",
                bfn_data_kind_name(kind), bfn_source_height(train_src), bfn_source_width(train_src),
                bfn_net_param_count(net), cfg->beta1, cfg->batch, cfg->lr, (long long)cfg->total_steps);

    if (resume)
        trim_log(log_path, bfn_trainer_steps(tr));
    FILE *log = fopen(log_path, resume ? "a" : "w");
    if (!log) {
        fprintf(stderr, "bfn train: cannot write log %s: %s\n", log_path, strerror(errno));
    } else if (!resume || ftell(log) == 0) {
        fprintf(log, "step,images,loss,loss_smoothed,val_loss,lr,grad_norm,elapsed_s\n");
    }

    volatile int *stop = cli_interrupt_flag();
    progress pg = {.log = log, .t0 = cli_now(), .start_step = bfn_trainer_steps(tr),
                   .smooth = NAN, .tty = isatty(2) && !quiet};
    double last_ckpt = cli_now(), val = -1;
    int64_t last_saved = bfn_trainer_steps(tr);
    int code = EXIT_OK;
    bfn_train_stats s = {.step = bfn_trainer_steps(tr)};
    while (bfn_trainer_steps(tr) < cfg->total_steps && !*stop) {
        st = bfn_trainer_step(tr, bfn_source_train_batch, train_src, &s, &err);
        if (st != BFN_OK) {
            if (pg.tty)
                fputc('\n', stderr);
            code = cli_fail("train", st, &err);
            if (st == BFN_ERR_NUMERIC)
                fprintf(stderr, "bfn train: stopped; the last good checkpoint (step %lld) is kept in %s\n",
                        (long long)last_saved, ckpt);
            break;
        }
        images_seen += cfg->batch;
        pg.smooth = isnan(pg.smooth) ? s.loss : 0.98 * pg.smooth + 0.02 * s.loss;
        val = -1;
        if (val_every > 0 && (s.step % val_every == 0 || s.step == cfg->total_steps)) {
            st = bfn_trainer_validate(tr, bfn_source_train_batch, val_src, val_batches, 12345, 1,
                                      &val, &err);
            if (st != BFN_OK) {
                code = cli_fail("train", st, &err);
                break;
            }
        }
        if (log) {
            fprintf(log, "%lld,%lld,%.4f,%.4f,", (long long)s.step, (long long)images_seen, s.loss,
                    pg.smooth);
            if (val >= 0)
                fprintf(log, "%.4f", val);
            fprintf(log, ",%.4e,%.4f,%.1f\n", s.lr, s.grad_norm, cli_now() - pg.t0);
        }
        if (!quiet)
            print_progress(&pg, &s, cfg->total_steps, cfg->batch, val, val >= 0 && !pg.tty);
        int due = s.step % ckpt_every == 0 || cli_now() - last_ckpt > ckpt_minutes * 60 ||
                  s.step == cfg->total_steps;
        if (due) {
            if (log)
                fflush(log);
            if ((st = bfn_trainer_save(tr, ckpt, bfn_data_kind_name(kind), images_seen, notes, &err)) != BFN_OK ||
                (st = bfn_trainer_save_model(tr, out, bfn_data_kind_name(kind), images_seen, notes, &err)) != BFN_OK) {
                code = cli_fail("train", st, &err);
                fprintf(stderr, "bfn train: the previous checkpoint (step %lld) is intact\n",
                        (long long)last_saved);
                break;
            }
            last_ckpt = cli_now();
            last_saved = s.step;
        }
    }
    /* a stop that came during the last step found its save done: the run is complete */
    if (code == EXIT_OK && *stop && bfn_trainer_steps(tr) < cfg->total_steps) {
        if (pg.tty)
            fputc('\n', stderr);
        st = bfn_trainer_save(tr, ckpt, bfn_data_kind_name(kind), images_seen, notes, &err);
        if (st == BFN_OK)
            st = bfn_trainer_save_model(tr, out, bfn_data_kind_name(kind), images_seen, notes, &err);
        if (st != BFN_OK) {
            code = cli_fail("train", st, &err);
        } else {
            fprintf(stderr, "bfn train: interrupted at step %lld; saved %s (resume with --resume)\n",
                    (long long)bfn_trainer_steps(tr), ckpt);
            code = EXIT_INTERRUPTED;
        }
    } else if (code == EXIT_OK) {
        if (!quiet)
            print_progress(&pg, &s, cfg->total_steps, cfg->batch, val, 1);
        fprintf(stderr, "bfn train: done, step %lld; model %s, checkpoint %s\n",
                (long long)bfn_trainer_steps(tr), out, ckpt);
    }
    if (log)
        fclose(log);
    run_free(tr, net, train_src, val_src);
    return code;

early:
    bfn_net_destroy(init_net);
    return early_code;
}
