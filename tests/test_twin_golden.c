/* Golden tests against the PyTorch twin (tools/twin, llm.c style).
 *
 * Each tests/golden/twin_*.bin was written by tools/twin/write_golden.py: a
 * model file (loaded here with the engine's own loader, so it also checks
 * that the twin writes our format) whose "params" are random non-zero
 * weights of a tiny network, plus sections with inputs and what the twin
 * computed for them in float64 (layout: the docstring of write_golden.py).
 * The engine runs in float32, so the tolerances below are float32 rounding
 * through a few dozen layers, far below what any real mistake produces:
 *   init        bfn_net_init_params(seed) equal to 1e-7 relative (same streams)
 *   logits      1e-4 relative, floor 1e-2 of the largest logit
 *   loss        1e-5 relative
 *   gradients   1e-3 relative, floor 1e-2 of the tensor's largest |value|
 *               (parameters, per tensor) or of the array's (input gradient)
 *   AdamW       after 4 steps of the real bfn_trainer_step on the stored
 *               batches (the twin replays its random streams): loss 1e-5,
 *               gradient norm 1e-4, lr 1e-12 relative; Adam moments as
 *               gradients (v: twice the tolerance, it is quadratic); weights
 *               and EMA 1e-5 relative + 1e-3 of the summed learning rates.
 *               Elements whose gradient is 0 (by symmetry: attention key
 *               biases) or comes near 0 in a step are only bounded (moved
 *               within 3 * summed lr of the twin): Adam divides a gradient by
 *               its own size, so there rounding picks the update; at most 1%
 *               of the weights may be such.
 * Each comparison prints its worst |error| / tolerance, so shrinking margins
 * show before they fail.
 * A failure prints the tensor, the index in it, expected, got and the
 * tolerance (the first few per array), then how many values differed.
 *
 * usage: test_twin_golden [golden files...] (default: both committed files) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/flow.h"
#include "bfn/model_io.h"
#include "bfn/net.h"
#include "bfn/train.h"
#include "check.h"

#define GOLDEN_VERSION 1
#define TRAIN_STEPS 4
#define SHOW_FAILURES 6

static const char *default_files[] = {"tests/golden/twin_k2.bin", "tests/golden/twin_k3.bin"};

/* The golden file the tests run on; set by main before each round. */
static const char *golden_path;

typedef struct {
    bfn_model_meta meta;
    bfn_model_sections secs;
    bfn_net *net;
    int B, D, in_ch, out_ch;
} golden;

static void golden_close(golden *g)
{
    bfn_net_destroy(g->net);
    bfn_model_sections_free(&g->secs);
    memset(g, 0, sizeof *g);
}

/* Loads golden_path twice: the sections, and a net through bfn_model_load_net
 * (the same path `bfn sample` takes for a model file). */
static int golden_open(golden *g)
{
    bfn_err err = {0};
    memset(g, 0, sizeof *g);
    if (!CHECK(bfn_model_load(golden_path, &g->meta, &g->secs, &err) == BFN_OK,
               "load %s: %s", golden_path, err.msg))
        return 0;
    const bfn_model_section *t = bfn_model_find(&g->secs, "fwd.t");
    const bfn_model_section *v = bfn_model_find(&g->secs, "golden.version");
    if (!CHECK(t && v && v->type == BFN_MODEL_U64 && v->count == 1,
               "%s: sections fwd.t and golden.version present", golden_path) ||
        !CHECK(((const uint64_t *)v->data)[0] == GOLDEN_VERSION,
               "%s: golden layout version %llu, this test reads %d", golden_path,
               (unsigned long long)((const uint64_t *)v->data)[0], GOLDEN_VERSION)) {
        golden_close(g);
        return 0;
    }
    g->B = (int)t->count;
    g->D = g->meta.config.H * g->meta.config.W;
    g->in_ch = bfn_net_in_channels(g->meta.config.K);
    g->out_ch = bfn_net_out_channels(g->meta.config.K);
    if (!CHECK(bfn_model_load_net(golden_path, &g->net, NULL, g->B, &err) == BFN_OK,
               "load net from %s: %s", golden_path, err.msg)) {
        golden_close(g);
        return 0;
    }
    return 1;
}

/* Section data of the given type and count, or NULL after a failed check. */
static const void *section(golden *g, const char *name, bfn_model_type type, uint64_t count)
{
    const void *data = NULL;
    bfn_err err = {0};
    CHECK(bfn_model_get(&g->secs, name, type, count, &data, &err) == BFN_OK, "%s: %s",
          golden_path, err.msg);
    return data;
}

static double f64_of(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* "tensor[i]" for flat parameter index k. */
static void param_label(char *buf, size_t cap, const bfn_net *net, size_t k)
{
    int n = bfn_net_tensor_count(net);
    for (int i = n - 1; i >= 0; i--) {
        const bfn_tensor_info *ti = bfn_net_tensor(net, i);
        if (ti->offset <= k) {
            snprintf(buf, cap, "%s[%zu]", ti->name, k - ti->offset);
            return;
        }
    }
    snprintf(buf, cap, "param[%zu]", k);
}

typedef struct {
    const char *what;    /* array name for messages */
    const bfn_net *net;  /* non-NULL: the array is parameter-shaped, floors per tensor */
    double rtol;         /* relative tolerance */
    double floor_frac;   /* floor = floor_frac * largest |expected| of the tensor/array */
    double atol;         /* added to every tolerance */
    const uint8_t *skip; /* elements not compared (may be NULL) */
    int dims[4];         /* without net: (B, C, H, W) of the array, for labels */
} cmp_spec;

static double max_abs(const float *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)x[i]));
    return m;
}

/* Compares one range [lo, hi) with its own floor; returns failures, updates
 * the worst |err|/tol seen. */
static size_t compare_range(const cmp_spec *s, const float *exp, const float *got, size_t lo,
                            size_t hi, double *worst, size_t *shown)
{
    double fl = s->floor_frac * max_abs(exp + lo, hi - lo);
    size_t bad = 0;
    for (size_t i = lo; i < hi; i++) {
        if (s->skip && s->skip[i])
            continue;
        double e = exp[i], g = got[i];
        double tol = s->rtol * fmax(fabs(e), fl) + s->atol;
        double diff = fabs(e - g);
        double r = tol > 0.0 ? diff / tol : diff > 0.0 ? INFINITY : 0.0;
        if (!(diff <= tol)) {
            bad++;
            if ((*shown)++ < SHOW_FAILURES) {
                char label[160];
                if (s->net)
                    param_label(label, sizeof label, s->net, i);
                else
                    snprintf(label, sizeof label, "[b %zu, c %zu, y %zu, x %zu]",
                             i / ((size_t)s->dims[1] * s->dims[2] * s->dims[3]),
                             i / ((size_t)s->dims[2] * s->dims[3]) % (size_t)s->dims[1],
                             i / (size_t)s->dims[3] % (size_t)s->dims[2],
                             i % (size_t)s->dims[3]);
                CHECK_NEAR(e, g, tol, "%s %s %s", golden_path, s->what, label);
            }
            r = isnan(r) ? INFINITY : r;
        }
        *worst = fmax(*worst, r);
    }
    return bad;
}

/* Checks n values; prints the worst error as a fraction of its tolerance. */
static void compare(const cmp_spec *s, const float *exp, const float *got, size_t n)
{
    double worst = 0.0;
    size_t bad = 0, shown = 0;
    if (s->net) {
        for (int i = 0; i < bfn_net_tensor_count(s->net); i++) {
            const bfn_tensor_info *ti = bfn_net_tensor(s->net, i);
            size_t sz = 1;
            for (int d = 0; d < ti->ndim; d++)
                sz *= (size_t)ti->shape[d];
            bad += compare_range(s, exp, got, ti->offset, ti->offset + sz, &worst, &shown);
        }
    } else {
        bad = compare_range(s, exp, got, 0, n, &worst, &shown);
    }
    CHECK(bad == 0, "%s %s: %zu of %zu values outside tolerance", golden_path, s->what, bad, n);
    printf("    %-14s %7zu values, worst |err|/tol %.3g\n", s->what, n, worst);
}

/* ---- tests ---- */

static void test_tensor_table_matches_twin(void)
{
    golden g;
    if (!golden_open(&g))
        return;
    int n = bfn_net_tensor_count(g.net);
    const bfn_model_section *names = bfn_model_find(&g.secs, "tensors.names");
    const uint64_t *shapes = section(&g, "tensors.shapes", BFN_MODEL_U64, (uint64_t)n * 6);
    if (!CHECK(names && names->type == BFN_MODEL_U8, "%s: tensors.names present", golden_path) ||
        !shapes) {
        golden_close(&g);
        return;
    }
    const char *p = names->data, *end = p + names->count;
    size_t expect_off = 0;
    for (int i = 0; i < n; i++) {
        const bfn_tensor_info *ti = bfn_net_tensor(g.net, i);
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (!CHECK(len == strlen(ti->name) && memcmp(p, ti->name, len) == 0,
                   "tensor %d: twin name '%.*s', engine '%s'", i, (int)len, p, ti->name))
            break;
        const uint64_t *s = shapes + 6 * i;
        CHECK((int)s[0] == ti->ndim, "%s: ndim twin %d engine %d", ti->name, (int)s[0],
              ti->ndim);
        for (int d = 0; d < ti->ndim; d++)
            CHECK((int)s[1 + d] == ti->shape[d], "%s: shape[%d] twin %d engine %d", ti->name, d,
                  (int)s[1 + d], ti->shape[d]);
        CHECK((int)s[5] == ti->decay, "%s: decay twin %d engine %d", ti->name, (int)s[5],
              ti->decay);
        CHECK(ti->offset == expect_off, "%s: offset %zu, twin order gives %zu", ti->name,
              ti->offset, expect_off);
        size_t sz = 1;
        for (int d = 0; d < ti->ndim; d++)
            sz *= (size_t)ti->shape[d];
        expect_off += sz;
        p = nl ? nl + 1 : end;
    }
    CHECK(p == end, "%s: the twin lists more tensors than the engine's %d", golden_path, n);
    CHECK(expect_off == bfn_net_param_count(g.net), "parameter count twin %zu engine %zu",
          expect_off, bfn_net_param_count(g.net));
    golden_close(&g);
}

static void test_init_matches_twin(void)
{
    golden g;
    if (!golden_open(&g))
        return;
    size_t np = bfn_net_param_count(g.net);
    const uint64_t *seed = section(&g, "init.seed", BFN_MODEL_U64, 1);
    const float *e = section(&g, "init.params", BFN_MODEL_F32, np);
    if (seed && e) {
        bfn_net_init_params(g.net, seed[0]);
        /* the same streams and the same double arithmetic: equal to the last bit or so */
        compare(&(cmp_spec){"init weights", g.net, 1e-7, 0.0, 0.0, NULL, {0, 0, 0, 0}}, e,
                bfn_net_params(g.net), np);
    }
    golden_close(&g);
}

/* Runs the stored forward/backward; fills logits, per-image loss, grads, dx. */
static int run_forward_backward(golden *g, float *logits, double *loss, float *dx)
{
    size_t nx = (size_t)g->B * g->in_ch * g->D, nl = (size_t)g->B * g->out_ch * g->D;
    const float *x = section(g, "fwd.x", BFN_MODEL_F32, nx);
    const float *t = section(g, "fwd.t", BFN_MODEL_F32, (uint64_t)g->B);
    const uint8_t *target = section(g, "fwd.target", BFN_MODEL_U8, (uint64_t)g->B * g->D);
    if (!x || !t || !target)
        return 0;
    float *dlogits = calloc(nl, sizeof(float));
    if (!CHECK(dlogits != NULL, "out of memory"))
        return 0;
    /* training forward (dropout is 0 in the golden config) so backward may follow */
    int ok = CHECK(bfn_net_forward(g->net, x, t, g->B, 1, NULL, logits) == BFN_OK,
                   "forward: %s", bfn_net_last_error(g->net));
    for (int b = 0; ok && b < g->B; b++) {
        size_t os = (size_t)g->out_ch * g->D;
        loss[b] = bfn_loss_cts(logits + b * os, target + (size_t)b * g->D, g->D, g->meta.config.K,
                               g->meta.beta1, t[b], dlogits + b * os, (float)(1.0 / g->B));
    }
    bfn_net_zero_grads(g->net);
    ok = ok && CHECK(bfn_net_backward(g->net, dlogits, dx) == BFN_OK, "backward: %s",
                     bfn_net_last_error(g->net));
    free(dlogits);
    return ok;
}

static void test_logits_loss_and_gradients_match_twin(void)
{
    golden g;
    if (!golden_open(&g))
        return;
    size_t np = bfn_net_param_count(g.net);
    size_t nx = (size_t)g.B * g.in_ch * g.D, nl = (size_t)g.B * g.out_ch * g.D;
    const float *e_logits = section(&g, "fwd.logits", BFN_MODEL_F32, nl);
    const uint64_t *e_loss = section(&g, "fwd.loss", BFN_MODEL_U64, (uint64_t)g.B);
    const float *e_grads = section(&g, "fwd.grads", BFN_MODEL_F32, np);
    const float *e_dx = section(&g, "fwd.dx", BFN_MODEL_F32, nx);
    const uint8_t *zero = section(&g, "fwd.zero_grad", BFN_MODEL_U8, np);
    float *logits = calloc(nl, sizeof(float)), *dx = calloc(nx, sizeof(float));
    double *loss = calloc((size_t)g.B, sizeof(double));
    if (e_logits && e_loss && e_grads && e_dx && zero && logits && dx && loss &&
        run_forward_backward(&g, logits, loss, dx)) {
        const bfn_net_config *nc = &g.meta.config;
        compare(&(cmp_spec){"logits", NULL, 1e-4, 1e-2, 0.0, NULL,
                            {g.B, g.out_ch, nc->H, nc->W}}, e_logits, logits, nl);
        for (int b = 0; b < g.B; b++)
            CHECK_REL(f64_of(e_loss[b]), loss[b], 1e-5, 1e-6, "%s loss of image %d", golden_path,
                      b);
        const float *grads = bfn_net_grads(g.net);
        compare(&(cmp_spec){"param grads", g.net, 1e-3, 1e-2, 0.0, zero, {0, 0, 0, 0}}, e_grads, grads, np);
        compare(&(cmp_spec){"input grad", NULL, 1e-3, 1e-2, 0.0, NULL,
                            {g.B, g.in_ch, nc->H, nc->W}}, e_dx, dx, nx);
        /* exactly zero in exact arithmetic: rounding-level here */
        double gmax = max_abs(e_grads, np), zmax = 0.0;
        for (size_t i = 0; i < np; i++)
            if (zero[i])
                zmax = fmax(zmax, fabs((double)grads[i]));
        CHECK(zmax <= 1e-5 * gmax, "%s attention key-bias grads (0 by symmetry): max |g| %g > "
              "1e-5 * max |grad| = %g", golden_path, zmax, 1e-5 * gmax);
    }
    free(logits);
    free(dx);
    free(loss);
    golden_close(&g);
}

typedef struct {
    const uint8_t *x; /* (TRAIN_STEPS, B, D) */
    int step, D;
} replay;

/* Hands the trainer the stored batches in order (ignoring rng: the twin
 * stored what the data stream would have drawn). */
static bfn_status replay_batch(void *user, int B, uint8_t *x, bfn_rng *rng, bfn_err *err)
{
    replay *r = user;
    (void)rng;
    if (r->step >= TRAIN_STEPS)
        return bfn_err_set(err, BFN_ERR_ARG, "replay: only %d stored batches", TRAIN_STEPS);
    memcpy(x, r->x + (size_t)r->step * B * r->D, (size_t)B * r->D);
    r->step++;
    return BFN_OK;
}

static void test_adamw_steps_match_twin(void)
{
    golden g;
    if (!golden_open(&g))
        return;
    size_t np = bfn_net_param_count(g.net);
    const uint64_t *w = section(&g, "train.cfg", BFN_MODEL_U64, 13);
    const uint8_t *bx = section(&g, "train.x", BFN_MODEL_U8, (uint64_t)TRAIN_STEPS * g.B * g.D);
    const uint64_t *stats = section(&g, "train.stats", BFN_MODEL_U64, 3 * TRAIN_STEPS);
    const float *e_p = section(&g, "train.params", BFN_MODEL_F32, np);
    const float *e_ema = section(&g, "train.ema", BFN_MODEL_F32, np);
    const float *e_m = section(&g, "train.adam_m", BFN_MODEL_F32, np);
    const float *e_v = section(&g, "train.adam_v", BFN_MODEL_F32, np);
    const uint8_t *loose = section(&g, "train.loose", BFN_MODEL_U8, np);
    const float *p0 = section(&g, "params", BFN_MODEL_F32, np);
    if (!w || !bx || !stats || !e_p || !e_ema || !e_m || !e_v || !loose || !p0) {
        golden_close(&g);
        return;
    }
    bfn_train_config c = {
        .batch = (int)w[0], .warmup = (int64_t)w[1], .total_steps = (int64_t)w[2], .seed = w[3],
        .beta1 = f64_of(w[4]), .lr = f64_of(w[5]), .lr_min = f64_of(w[6]),
        .adam_b1 = f64_of(w[7]), .adam_b2 = f64_of(w[8]), .adam_eps = f64_of(w[9]),
        .weight_decay = f64_of(w[10]), .clip = f64_of(w[11]), .ema_decay = f64_of(w[12]),
    };
    bfn_err err = {0};
    bfn_trainer *tr = NULL;
    if (!CHECK(bfn_trainer_create(&tr, g.net, &c, &err) == BFN_OK, "trainer: %s", err.msg)) {
        golden_close(&g);
        return;
    }
    replay rp = {bx, 0, g.D};
    double lr_sum = 0.0;
    int ok = 1;
    for (int s = 0; s < TRAIN_STEPS && ok; s++) {
        bfn_train_stats st;
        ok = CHECK(bfn_trainer_step(tr, replay_batch, &rp, &st, &err) == BFN_OK, "step %d: %s", s,
                   err.msg);
        if (!ok)
            break;
        double e_loss = f64_of(stats[3 * s]), e_norm = f64_of(stats[3 * s + 1]);
        double e_lr = f64_of(stats[3 * s + 2]);
        CHECK_REL(e_loss, st.loss, 1e-5, 1e-6, "%s step %d mean loss", golden_path, s);
        CHECK_REL(e_norm, st.grad_norm, 1e-4, 1e-6, "%s step %d gradient norm (clip %g)",
                  golden_path, s, c.clip);
        CHECK_REL(e_lr, st.lr, 1e-12, 1e-12, "%s step %d learning rate", golden_path, s);
        printf("    step %d: loss %.6f (twin %.6f), grad norm %.6f (twin %.6f, clip %.4g), lr %g\n",
               s, st.loss, e_loss, st.grad_norm, e_norm, c.clip, st.lr);
        lr_sum += e_lr;
    }
    if (ok) {
        compare(&(cmp_spec){"adam m", g.net, 1e-3, 1e-2, 0.0, loose, {0, 0, 0, 0}}, e_m,
                bfn_trainer_adam_m(tr), np);
        compare(&(cmp_spec){"adam v", g.net, 2e-3, 1e-2, 0.0, loose, {0, 0, 0, 0}}, e_v,
                bfn_trainer_adam_v(tr), np);
        compare(&(cmp_spec){"weights", g.net, 1e-5, 0.0, 1e-3 * lr_sum, loose, {0, 0, 0, 0}}, e_p,
                bfn_net_params(g.net), np);
        compare(&(cmp_spec){"ema weights", g.net, 1e-5, 0.0, 1e-3 * lr_sum, loose, {0, 0, 0, 0}}, e_ema,
                bfn_trainer_ema(tr), np);
        /* Loose elements (a gradient near 0 in some step, where Adam's update
         * is set by rounding): each Adam step moves a weight by at most about
         * its lr, decay aside (these are mostly biases). A bound this wide
         * still catches a missing or doubled update. */
        const float *p = bfn_net_params(g.net);
        size_t n_loose = 0, far = 0;
        for (size_t i = 0; i < np; i++) {
            if (!loose[i])
                continue;
            n_loose++;
            if (fabs((double)p[i] - (double)e_p[i]) > 3.0 * lr_sum)
                far++;
        }
        CHECK(far == 0, "%s: %zu loosely compared weights differ by more than 3 * sum(lr) = %g",
              golden_path, far, 3.0 * lr_sum);
        CHECK(n_loose * 100 <= np, "%s: %zu of %zu weights marked loose (at most 1%%)",
              golden_path, n_loose, np);
        printf("    %zu of %zu weights compared loosely\n", n_loose, np);
    }
    bfn_trainer_destroy(tr);
    golden_close(&g);
}

int main(int argc, char **argv)
{
    int nf = argc > 1 ? argc - 1 : (int)(sizeof default_files / sizeof default_files[0]);
    for (int i = 0; i < nf; i++) {
        golden_path = argc > 1 ? argv[i + 1] : default_files[i];
        printf("golden file %s\n", golden_path);
        RUN(test_tensor_table_matches_twin);
        RUN(test_init_matches_twin);
        RUN(test_logits_loss_and_gradients_match_twin);
        RUN(test_adamw_steps_match_twin);
    }
    return check_finish();
}
