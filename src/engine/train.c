/* Training step for BFN with the continuous-time loss; AdamW; EMA. */
#include "bfn/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/flow.h"

enum { STREAM_TRAIN = 0x54524E31U, TAG_DATA = 1, TAG_TIME = 2, TAG_FLOW = 3, TAG_DROP = 4 };

struct bfn_trainer {
    bfn_net *net;
    bfn_train_config cfg;
    int64_t step;
    bfn_rng base;       /* every step draws from fork(base, step): resumable exactly */
    size_t np;
    int B, D, K, zp, in_ch, out_ch;
    float *m, *v;       /* Adam moments (np) */
    float *ema;         /* EMA weights (np) */
    float *scratch;     /* (np) raw weights while validating with the EMA */
    uint8_t *decay;     /* (np) 1 where weight decay applies */
    uint8_t *x;         /* (B, D) */
    float *z;           /* (B, zp, D) */
    float *net_in;      /* (B, in_ch, D) */
    float *t;           /* (B) */
    float *logits;      /* (B, out_ch, D) */
    float *dlogits;     /* (B, out_ch, D) */
};

bfn_train_config bfn_train_config_default(void)
{
    bfn_train_config c = {
        .beta1 = 3.0, .batch = 64, .lr = 1e-3, .lr_min = 1e-5, .warmup = 500,
        .total_steps = 0, .adam_b1 = 0.9, .adam_b2 = 0.98, .adam_eps = 1e-8,
        .weight_decay = 0.01, .clip = 5.0, .ema_decay = 0.999, .seed = 1,
    };
    return c;
}

bfn_status bfn_train_config_check(const bfn_train_config *c, bfn_err *err)
{
    if (!(c->beta1 > 0 && c->beta1 <= 1e4))
        return bfn_err_set(err, BFN_ERR_ARG, "train: beta1 = %g not in (0, 1e4]", c->beta1);
    if (c->batch < 1 || c->batch > 65536)
        return bfn_err_set(err, BFN_ERR_ARG, "train: batch = %d not in [1, 65536]", c->batch);
    if (!(c->lr > 0 && c->lr < 1))
        return bfn_err_set(err, BFN_ERR_ARG, "train: lr = %g not in (0, 1)", c->lr);
    if (!(c->lr_min >= 0 && c->lr_min <= c->lr))
        return bfn_err_set(err, BFN_ERR_ARG, "train: lr_min = %g not in [0, lr]", c->lr_min);
    if (c->warmup < 0 || c->total_steps < 0)
        return bfn_err_set(err, BFN_ERR_ARG, "train: negative warmup or total steps");
    if (!(c->adam_b1 >= 0 && c->adam_b1 < 1 && c->adam_b2 >= 0 && c->adam_b2 < 1))
        return bfn_err_set(err, BFN_ERR_ARG, "train: Adam betas must be in [0, 1)");
    if (!(c->adam_eps > 0) || !(c->weight_decay >= 0 && c->weight_decay < 1))
        return bfn_err_set(err, BFN_ERR_ARG, "train: adam eps must be > 0, weight decay in [0, 1)");
    if (!(c->ema_decay >= 0 && c->ema_decay < 1))
        return bfn_err_set(err, BFN_ERR_ARG, "train: ema decay = %g not in [0, 1)", c->ema_decay);
    if (!isfinite(c->clip))
        return bfn_err_set(err, BFN_ERR_ARG, "train: clip must be finite");
    return BFN_OK;
}

double bfn_train_lr_at(const bfn_train_config *c, int64_t step)
{
    if (c->warmup > 0 && step < c->warmup)
        return c->lr * (double)(step + 1) / (double)c->warmup;
    if (c->total_steps <= 0 || c->total_steps <= c->warmup)
        return c->lr;
    double f = (double)(step - c->warmup) / (double)(c->total_steps - c->warmup);
    if (f > 1.0)
        f = 1.0;
    return c->lr_min + 0.5 * (c->lr - c->lr_min) * (1.0 + cos(3.14159265358979323846 * f));
}

void bfn_trainer_destroy(bfn_trainer *tr)
{
    if (!tr)
        return;
    free(tr->m);
    free(tr->v);
    free(tr->ema);
    free(tr->scratch);
    free(tr->decay);
    free(tr->x);
    free(tr->z);
    free(tr->net_in);
    free(tr->t);
    free(tr->logits);
    free(tr->dlogits);
    free(tr);
}

bfn_status bfn_trainer_create(bfn_trainer **out, bfn_net *net, const bfn_train_config *cfg,
                              bfn_err *err)
{
    *out = NULL;
    bfn_status st = bfn_train_config_check(cfg, err);
    if (st != BFN_OK)
        return st;
    if (bfn_net_max_batch(net) < cfg->batch)
        return bfn_err_set(err, BFN_ERR_ARG, "train: network built for batch %d < batch %d",
                           bfn_net_max_batch(net), cfg->batch);
    const bfn_net_config *nc = bfn_net_get_config(net);
    bfn_trainer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return bfn_err_set(err, BFN_ERR_NOMEM, "train: out of memory");
    tr->net = net;
    tr->cfg = *cfg;
    tr->np = bfn_net_param_count(net);
    tr->B = cfg->batch;
    tr->D = nc->H * nc->W;
    tr->K = nc->K;
    tr->zp = bfn_flow_planes(tr->K);
    tr->in_ch = bfn_net_in_channels(tr->K);
    tr->out_ch = bfn_net_out_channels(tr->K);
    size_t BD = (size_t)tr->B * tr->D;
    tr->m = calloc(tr->np, sizeof(float));
    tr->v = calloc(tr->np, sizeof(float));
    tr->ema = malloc(tr->np * sizeof(float));
    tr->scratch = malloc(tr->np * sizeof(float));
    tr->decay = calloc(tr->np, 1);
    tr->x = calloc(BD, 1);
    tr->z = calloc(BD * tr->zp, sizeof(float));
    tr->net_in = calloc(BD * tr->in_ch, sizeof(float));
    tr->t = calloc((size_t)tr->B, sizeof(float));
    tr->logits = calloc(BD * tr->out_ch, sizeof(float));
    tr->dlogits = calloc(BD * tr->out_ch, sizeof(float));
    if (!tr->m || !tr->v || !tr->ema || !tr->scratch || !tr->decay || !tr->x || !tr->z ||
        !tr->net_in || !tr->t || !tr->logits || !tr->dlogits) {
        bfn_trainer_destroy(tr);
        return bfn_err_set(err, BFN_ERR_NOMEM, "train: out of memory for batch %d", cfg->batch);
    }
    memcpy(tr->ema, bfn_net_params(net), tr->np * sizeof(float));
    for (int i = 0; i < bfn_net_tensor_count(net); i++) {
        const bfn_tensor_info *ti = bfn_net_tensor(net, i);
        size_t n = 1;
        for (int d = 0; d < ti->ndim; d++)
            n *= (size_t)ti->shape[d];
        if (ti->decay)
            memset(tr->decay + ti->offset, 1, n);
    }
    bfn_rng_init(&tr->base, cfg->seed, STREAM_TRAIN);
    *out = tr;
    return BFN_OK;
}

/* Draws a batch, its times and its flow samples; runs the network forward and
 * returns the mean L∞; fills dlogits with d(mean L∞)/d(logits) when wanted. */
static bfn_status batch_loss(bfn_trainer *tr, bfn_batch_fn get_batch, void *user, bfn_rng *r,
                             int training, int want_grad, double *loss, bfn_err *err)
{
    const int B = tr->B, D = tr->D, K = tr->K;
    bfn_rng rd = bfn_rng_fork(r, TAG_DATA), rt = bfn_rng_fork(r, TAG_TIME);
    bfn_rng rf = bfn_rng_fork(r, TAG_FLOW), rdrop = bfn_rng_fork(r, TAG_DROP);
    bfn_status st = get_batch(user, B, tr->x, &rd, err);
    if (st != BFN_OK)
        return st;
    for (size_t i = 0; i < (size_t)B * D; i++)
        if (tr->x[i] >= K)
            return bfn_err_set(err, BFN_ERR_ARG, "train: batch has class %d >= K = %d",
                               tr->x[i], K);
    /* Stratified times t_b = (b + u)/B: the same marginal U(0,1) per image,
     * lower variance of the batch loss than independent draws. */
    double u = bfn_rng_uniform(&rt);
    for (int b = 0; b < B; b++) {
        bfn_rng rb = bfn_rng_fork(&rf, (uint64_t)b);
        double t = ((double)b + u) / B;
        tr->t[b] = (float)t;
        float *zb = tr->z + (size_t)b * tr->zp * D;
        bfn_flow_sample(zb, tr->x + (size_t)b * D, D, K, bfn_beta_t(tr->cfg.beta1, t), &rb);
        bfn_net_input(tr->net_in + (size_t)b * tr->in_ch * D, zb, D, K);
    }
    st = bfn_net_forward(tr->net, tr->net_in, tr->t, B, training, training ? &rdrop : NULL,
                         tr->logits);
    if (st != BFN_OK)
        return bfn_err_set(err, st, "train: network forward failed (%s)", bfn_status_str(st));
    double sum = 0.0;
    size_t os = (size_t)tr->out_ch * D;
    for (int b = 0; b < B; b++)
        sum += bfn_loss_cts(tr->logits + b * os, tr->x + (size_t)b * D, D, K, tr->cfg.beta1,
                            tr->t[b], want_grad ? tr->dlogits + b * os : NULL,
                            (float)(1.0 / B));
    *loss = sum / B;
    return BFN_OK;
}

bfn_status bfn_trainer_step(bfn_trainer *tr, bfn_batch_fn get_batch, void *user,
                            bfn_train_stats *stats, bfn_err *err)
{
    bfn_rng r = bfn_rng_fork(&tr->base, (uint64_t)tr->step);
    double loss;
    bfn_status st = batch_loss(tr, get_batch, user, &r, 1, 1, &loss, err);
    if (st != BFN_OK)
        return st;
    if (!isfinite(loss))
        return bfn_err_set(err, BFN_ERR_NUMERIC, "train: loss is %g at step %lld", loss,
                           (long long)tr->step);
    bfn_net_zero_grads(tr->net);
    st = bfn_net_backward(tr->net, tr->dlogits, NULL);
    if (st != BFN_OK)
        return bfn_err_set(err, st, "train: network backward failed (%s)", bfn_status_str(st));

    float *p = bfn_net_params(tr->net), *g = bfn_net_grads(tr->net);
    const size_t np = tr->np;
    double sq = 0.0;
    for (size_t i = 0; i < np; i++)
        sq += (double)g[i] * g[i];
    double gnorm = sqrt(sq);
    if (!isfinite(gnorm))
        return bfn_err_set(err, BFN_ERR_NUMERIC, "train: gradient norm is %g at step %lld",
                           gnorm, (long long)tr->step);
    float gscale = (tr->cfg.clip > 0 && gnorm > tr->cfg.clip) ? (float)(tr->cfg.clip / gnorm)
                                                             : 1.0f;
    /* AdamW (Loshchilov & Hutter 2019) with bias correction. */
    const double lr = bfn_train_lr_at(&tr->cfg, tr->step);
    const float b1 = (float)tr->cfg.adam_b1, b2 = (float)tr->cfg.adam_b2;
    const double t1 = (double)(tr->step + 1);
    const float c1 = (float)(1.0 / (1.0 - pow(tr->cfg.adam_b1, t1)));
    const float c2 = (float)(1.0 / (1.0 - pow(tr->cfg.adam_b2, t1)));
    const float eps = (float)tr->cfg.adam_eps, flr = (float)lr;
    const float wd = (float)(lr * tr->cfg.weight_decay);
    const double ed = tr->cfg.ema_decay;
    const double warm = (1.0 + t1) / (10.0 + t1);
    const float d = (float)(warm < ed ? warm : ed);
    for (size_t i = 0; i < np; i++) {
        float gi = g[i] * gscale;
        float mi = tr->m[i] = b1 * tr->m[i] + (1.0f - b1) * gi;
        float vi = tr->v[i] = b2 * tr->v[i] + (1.0f - b2) * gi * gi;
        float pi = p[i];
        if (tr->decay[i])
            pi -= wd * pi;
        pi -= flr * (mi * c1) / (sqrtf(vi * c2) + eps);
        p[i] = pi;
        tr->ema[i] = d * tr->ema[i] + (1.0f - d) * pi;
    }
    tr->step++;
    if (stats) {
        stats->step = tr->step;
        stats->loss = loss;
        stats->grad_norm = gnorm;
        stats->lr = lr;
    }
    return BFN_OK;
}

bfn_status bfn_trainer_validate(bfn_trainer *tr, bfn_batch_fn get_batch, void *user,
                                int n_batches, uint64_t seed, int ema, double *loss,
                                bfn_err *err)
{
    float *p = bfn_net_params(tr->net);
    if (ema) {
        memcpy(tr->scratch, p, tr->np * sizeof(float));
        memcpy(p, tr->ema, tr->np * sizeof(float));
    }
    bfn_rng base;
    bfn_rng_init(&base, seed, STREAM_TRAIN ^ 0x56414CU);
    double sum = 0.0;
    bfn_status st = BFN_OK;
    for (int i = 0; i < n_batches && st == BFN_OK; i++) {
        bfn_rng r = bfn_rng_fork(&base, (uint64_t)i);
        double l;
        st = batch_loss(tr, get_batch, user, &r, 0, 0, &l, err);
        sum += l;
    }
    if (ema) /* a fresh pointer: the forwards above kept weights derived from p */
        memcpy(bfn_net_params(tr->net), tr->scratch, tr->np * sizeof(float));
    if (st == BFN_OK)
        *loss = n_batches > 0 ? sum / n_batches : 0.0;
    return st;
}

const bfn_train_config *bfn_trainer_config(const bfn_trainer *tr) { return &tr->cfg; }
int64_t bfn_trainer_steps(const bfn_trainer *tr) { return tr->step; }
float *bfn_trainer_ema(bfn_trainer *tr) { return tr->ema; }
float *bfn_trainer_adam_m(bfn_trainer *tr) { return tr->m; }
float *bfn_trainer_adam_v(bfn_trainer *tr) { return tr->v; }
bfn_rng *bfn_trainer_rng(bfn_trainer *tr) { return &tr->base; }
void bfn_trainer_set_steps(bfn_trainer *tr, int64_t step) { tr->step = step; }

/* ---- checkpoints ----
 * Sections: "params" = EMA weights (so a checkpoint samples like a model
 * file), "params_raw" = current weights, "adam_m", "adam_v", and "train":
 * u64 words [version, step, rng key, rng ctr, batch, warmup, total_steps,
 * seed, then the doubles beta1, lr, lr_min, b1, b2, eps, weight_decay, clip,
 * ema_decay as IEEE-754 bit patterns]. */
enum { TRAIN_WORDS = 17, TRAIN_STATE_VERSION = 1 };

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static bfn_status fill_meta(bfn_trainer *tr, bfn_model_meta *m, const char *dataset,
                            int64_t images_seen, const char *notes, bfn_err *err)
{
    if (dataset && strlen(dataset) >= sizeof m->dataset)
        return bfn_err_set(err, BFN_ERR_ARG, "train: data set name '%s' longer than %zu bytes",
                           dataset, sizeof m->dataset - 1);
    bfn_model_meta_init(m, bfn_net_get_config(tr->net));
    m->beta1 = tr->cfg.beta1;
    snprintf(m->dataset, sizeof m->dataset, "%s", dataset ? dataset : "");
    m->step = (uint64_t)tr->step;
    m->images_seen = (uint64_t)(images_seen > 0 ? images_seen : 0);
    char v[64];
    bfn_status st;
    snprintf(v, sizeof v, "%g", tr->cfg.lr);
    if ((st = bfn_model_meta_set_note(m, "lr", v, err)) != BFN_OK)
        return st;
    snprintf(v, sizeof v, "%d", tr->cfg.batch);
    if ((st = bfn_model_meta_set_note(m, "batch", v, err)) != BFN_OK)
        return st;
    snprintf(v, sizeof v, "%g", tr->cfg.ema_decay);
    if ((st = bfn_model_meta_set_note(m, "ema", v, err)) != BFN_OK)
        return st;
    if (notes && *notes && (st = bfn_model_meta_set_note(m, "notes", notes, err)) != BFN_OK)
        return st;
    return BFN_OK;
}

/* Index of the first value of x[0..n) that is NaN or infinite (or, with
 * nonneg, negative), or -1. */
static long first_bad(const float *x, size_t n, int nonneg)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || (nonneg && x[i] < 0.0f))
            return (long)i;
    return -1;
}

/* Nothing that could not be resumed is ever written: every array a file
 * holds must be finite (and Adam's second moments >= 0), whatever put a bad
 * value there, so the file on disk stays the last good one. */
static bfn_status check_saveable(bfn_trainer *tr, const char *path, int whole, bfn_err *err)
{
    struct {
        const char *name;
        const float *x;
        int nonneg;
    } arr[4] = {{"EMA weights", tr->ema, 0},
                {"weights", bfn_net_params(tr->net), 0},
                {"Adam first moments", tr->m, 0},
                {"Adam second moments", tr->v, 1}};
    for (int a = 0; a < (whole ? 4 : 1); a++) {
        long i = first_bad(arr[a].x, tr->np, arr[a].nonneg);
        if (i >= 0)
            return bfn_err_set(err, BFN_ERR_NUMERIC,
                               "%s not written: the %s hold %g at index %ld (step %lld); the "
                               "file on disk is unchanged",
                               path, arr[a].name, (double)arr[a].x[i], i, (long long)tr->step);
    }
    return BFN_OK;
}

bfn_status bfn_trainer_save(bfn_trainer *tr, const char *path, const char *dataset,
                            int64_t images_seen, const char *notes, bfn_err *err)
{
    bfn_model_meta m;
    bfn_status st = fill_meta(tr, &m, dataset, images_seen, notes, err);
    if (st != BFN_OK || (st = check_saveable(tr, path, 1, err)) != BFN_OK)
        return st;
    const bfn_train_config *c = &tr->cfg;
    uint64_t w[TRAIN_WORDS] = {
        TRAIN_STATE_VERSION, (uint64_t)tr->step, tr->base.key, tr->base.ctr, (uint64_t)c->batch,
        (uint64_t)c->warmup, (uint64_t)c->total_steps, c->seed, dbits(c->beta1), dbits(c->lr),
        dbits(c->lr_min), dbits(c->adam_b1), dbits(c->adam_b2), dbits(c->adam_eps),
        dbits(c->weight_decay), dbits(c->clip), dbits(c->ema_decay),
    };
    bfn_model_section sec[5] = {
        {"params", BFN_MODEL_F32, tr->np, tr->ema},
        {"params_raw", BFN_MODEL_F32, tr->np, bfn_net_params(tr->net)},
        {"adam_m", BFN_MODEL_F32, tr->np, tr->m},
        {"adam_v", BFN_MODEL_F32, tr->np, tr->v},
        {"train", BFN_MODEL_U64, TRAIN_WORDS, w},
    };
    return bfn_model_save(path, &m, sec, 5, err);
}

bfn_status bfn_trainer_save_model(bfn_trainer *tr, const char *path, const char *dataset,
                                  int64_t images_seen, const char *notes, bfn_err *err)
{
    bfn_model_meta m;
    bfn_status st = fill_meta(tr, &m, dataset, images_seen, notes, err);
    if (st != BFN_OK || (st = check_saveable(tr, path, 0, err)) != BFN_OK)
        return st;
    bfn_model_section sec = {"params", BFN_MODEL_F32, tr->np, tr->ema};
    return bfn_model_save(path, &m, &sec, 1, err);
}

bfn_status bfn_trainer_load(const char *path, bfn_net **net_out, bfn_trainer **tr_out,
                            bfn_model_meta *meta_out, int max_batch, bfn_err *err)
{
    *net_out = NULL;
    *tr_out = NULL;
    bfn_model_meta m;
    bfn_model_sections secs;
    bfn_status st = bfn_model_load(path, &m, &secs, err);
    if (st != BFN_OK)
        return st;
    const void *w_, *ema, *raw, *am, *av;
    bfn_net *net = NULL;
    bfn_trainer *tr = NULL;
    if ((st = bfn_model_get(&secs, "train", BFN_MODEL_U64, TRAIN_WORDS, &w_, err)) != BFN_OK)
        goto fail;
    const uint64_t *w = w_;
    if (w[0] != TRAIN_STATE_VERSION) {
        st = bfn_err_set(err, BFN_ERR_FORMAT, "%s: unknown training state version %llu", path,
                         (unsigned long long)w[0]);
        goto fail;
    }
    bfn_train_config c = {
        .batch = (int)(w[4] > 65536 ? 0 : w[4]), .warmup = (int64_t)w[5],
        .total_steps = (int64_t)w[6], .seed = w[7], .beta1 = bitsd(w[8]), .lr = bitsd(w[9]),
        .lr_min = bitsd(w[10]), .adam_b1 = bitsd(w[11]), .adam_b2 = bitsd(w[12]),
        .adam_eps = bitsd(w[13]), .weight_decay = bitsd(w[14]), .clip = bitsd(w[15]),
        .ema_decay = bitsd(w[16]),
    };
    if ((st = bfn_train_config_check(&c, err)) != BFN_OK) {
        char why[BFN_ERR_MSG_MAX]; /* err->msg cannot be both source and destination */
        snprintf(why, sizeof why, "%s", err ? err->msg : "");
        st = bfn_err_set(err, BFN_ERR_FORMAT, "%s: bad training state: %s", path, why);
        goto fail;
    }
    if ((int64_t)w[1] < 0) {
        st = bfn_err_set(err, BFN_ERR_FORMAT, "%s: bad step count", path);
        goto fail;
    }
    if ((st = bfn_net_config_check(&m.config, err)) != BFN_OK)
        goto fail;
    /* the weight count the header implies must match the file before the
     * net is built, so a header alone cannot make the load allocate a lot */
    size_t want;
    if ((st = bfn_net_config_param_count(&m.config, &want, err)) != BFN_OK ||
        (st = bfn_model_get(&secs, "params", BFN_MODEL_F32, want, &ema, err)) != BFN_OK)
        goto fail;
    if ((st = bfn_net_create(&net, &m.config, max_batch > c.batch ? max_batch : c.batch, err)) !=
        BFN_OK)
        goto fail;
    uint64_t np = bfn_net_param_count(net);
    if ((st = bfn_model_get(&secs, "params", BFN_MODEL_F32, np, &ema, err)) != BFN_OK ||
        (st = bfn_model_get(&secs, "params_raw", BFN_MODEL_F32, np, &raw, err)) != BFN_OK ||
        (st = bfn_model_get(&secs, "adam_m", BFN_MODEL_F32, np, &am, err)) != BFN_OK ||
        (st = bfn_model_get(&secs, "adam_v", BFN_MODEL_F32, np, &av, err)) != BFN_OK)
        goto fail;
    /* A negative second moment would turn the next update into sqrt(< 0) = NaN. */
    for (uint64_t i = 0; i < np; i++)
        if (((const float *)av)[i] < 0) {
            st = bfn_err_set(err, BFN_ERR_FORMAT,
                             "%s: section \"adam_v\" value %llu is %g (Adam second moments are "
                             "never negative)",
                             path, (unsigned long long)i, (double)((const float *)av)[i]);
            goto fail;
        }
    memcpy(bfn_net_params(net), raw, np * sizeof(float));
    if ((st = bfn_trainer_create(&tr, net, &c, err)) != BFN_OK)
        goto fail;
    memcpy(tr->ema, ema, np * sizeof(float));
    memcpy(tr->m, am, np * sizeof(float));
    memcpy(tr->v, av, np * sizeof(float));
    tr->step = (int64_t)w[1];
    tr->base.key = w[2];
    tr->base.ctr = w[3];
    bfn_model_sections_free(&secs);
    if (meta_out)
        *meta_out = m;
    *net_out = net;
    *tr_out = tr;
    return BFN_OK;
fail:
    bfn_trainer_destroy(tr);
    bfn_net_destroy(net);
    bfn_model_sections_free(&secs);
    return st;
}

void bfn_trainer_set_total_steps(bfn_trainer *tr, int64_t total_steps)
{
    tr->cfg.total_steps = total_steps;
}
