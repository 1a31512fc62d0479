#include "train_job.h"

#include <SDL.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/model_io.h"
#include "bfn/sample.h"
#include "bfn/train.h"

#define CKPT_EVERY_STEPS 500
#define CKPT_EVERY_S 300.0
#define VAL_BATCHES 2
#define VAL_SEED 12345
#define PREVIEW_STEPS 25
#define RATE_WINDOW_S 2.0

struct viz_train {
    SDL_Thread *thread;
    SDL_mutex *mu;
    SDL_cond *cv;
    uint32_t wake_type;
    atomic_int wake_pending;
    atomic_int quitting; /* read by the preview sampler's observer */
    char runs_dir[VIZ_PATH_MAX];

    /* under mu */
    int quit, want_start, want_stop, want_save, want_snapshot, want_preview;
    double preview_interval;
    viz_train_req req;
    viz_train_view view;
    uint64_t serial;
    viz_weights *snapshot;

    /* owned by the thread */
    bfn_net *net, *pnet; /* training net; preview net holding EMA copies */
    bfn_trainer *tr;
    bfn_source *src, *val_src;
    viz_train_req cur;
    int64_t images_seen;
    double smooth;
    double bucket_sum;
    int bucket_n, bucket;
    double last_ckpt_t, last_preview_t, rate_t;
    int64_t rate_images;
    uint64_t snap_id;
    int64_t val_every;
};

static const struct {
    const char *name;
    int base_ch, mult2, n_res, heads, temb, groups, batch;
} SIZES[VIZ_SIZE_COUNT] = {
    {"tiny", 8, 2, 1, 2, 16, 4, 16},
    {"small", 16, 2, 1, 2, 64, 8, 32},
    {"default", 0, 0, 0, 0, 0, 0, 64}, /* bfn_net_config_default */
};

const char *viz_train_size_name(viz_train_size s)
{
    return s >= 0 && s < VIZ_SIZE_COUNT ? SIZES[s].name : "?";
}

const char *viz_train_state_name(viz_train_state s)
{
    static const char *names[] = {"idle", "starting", "training", "paused", "done", "error"};
    return s >= 0 && s <= VIZ_TRAIN_ERROR ? names[s] : "?";
}

static void wake(viz_train *t)
{
    if (atomic_exchange(&t->wake_pending, 1))
        return;
    SDL_Event e;
    memset(&e, 0, sizeof e);
    e.type = t->wake_type;
    e.user.code = 2;
    if (SDL_PushEvent(&e) != 1)
        atomic_store(&t->wake_pending, 0);
}

void viz_train_ack(viz_train *t) { atomic_store(&t->wake_pending, 0); }

/* Call with mu held after changing view. */
static void changed(viz_train *t)
{
    t->serial++;
    wake(t);
}

static void set_message(viz_train *t, const char *msg)
{
    SDL_LockMutex(t->mu);
    viz_strcpy(t->view.message, sizeof t->view.message, msg);
    changed(t);
    SDL_UnlockMutex(t->mu);
}

static void teardown(viz_train *t)
{
    bfn_trainer_destroy(t->tr);
    bfn_net_destroy(t->net);
    bfn_net_destroy(t->pnet);
    bfn_source_destroy(t->src);
    bfn_source_destroy(t->val_src);
    t->tr = NULL;
    t->net = t->pnet = NULL;
    t->src = t->val_src = NULL;
}

/* Builds data sources, network and trainer for t->cur. */
static bfn_status setup(viz_train *t, char *msg, size_t cap)
{
    const viz_train_req *q = &t->cur;
    bfn_err err = {0};
    char found[VIZ_PATH_MAX];
    const char *dir = q->data_dir;
    if (!dir[0]) { /* the default place, also when started outside the repository */
        bfn_locate(bfn_data_default_dir(q->data), found, sizeof found);
        dir = found;
    }
    bfn_status st = bfn_source_create(&t->src, q->data, dir, BFN_SPLIT_TRAIN, q->seed, &err);
    if (st == BFN_OK)
        st = bfn_source_create(&t->val_src, q->data, dir, BFN_SPLIT_VAL, 0, &err);
    if (st != BFN_OK) {
        viz_fmt(msg, cap, "%s (fetch MNIST with: build/bfn data fetch)", err.msg);
        return st;
    }
    const int H = bfn_source_height(t->src), W = bfn_source_width(t->src);
    const int size = viz_clampi((int)q->size, 0, VIZ_SIZE_COUNT - 1);
    bfn_train_config tc = bfn_train_config_default();
    tc.batch = SIZES[size].batch;
    tc.seed = q->seed;
    tc.total_steps = q->steps;
    tc.warmup = q->steps / 10 < 500 ? q->steps / 10 : 500;
    if (q->from_model) {
        bfn_model_meta meta;
        st = bfn_model_load_net(q->model_path, &t->net, &meta, tc.batch, &err);
        if (st != BFN_OK) {
            viz_fmt(msg, cap, "%s", err.msg);
            return st;
        }
        const bfn_net_config *c = bfn_net_get_config(t->net);
        if (c->H != H || c->W != W || c->K != 2) {
            viz_fmt(msg, cap, "%s is a %dx%d K=%d model; %s images are %dx%d binary",
                    q->model_path, c->H, c->W, c->K, bfn_data_kind_name(q->data), H, W);
            return BFN_ERR_MISMATCH;
        }
        tc.beta1 = meta.beta1;
    } else {
        bfn_net_config c = bfn_net_config_default(2, H, W);
        if (SIZES[size].base_ch) {
            c.base_ch = SIZES[size].base_ch;
            for (int l = 1; l < c.n_levels; l++)
                c.ch_mult[l] = SIZES[size].mult2;
            c.n_res = SIZES[size].n_res;
            c.n_heads = SIZES[size].heads;
            c.temb_dim = SIZES[size].temb;
            c.groups = SIZES[size].groups;
        }
        tc.beta1 = q->beta1 > 0 ? q->beta1 : tc.beta1;
        if ((st = bfn_net_create(&t->net, &c, tc.batch, &err)) != BFN_OK) {
            viz_fmt(msg, cap, "%s", err.msg);
            return st;
        }
        bfn_net_init_params(t->net, q->seed);
    }
    if ((st = bfn_train_config_check(&tc, &err)) != BFN_OK ||
        (st = bfn_trainer_create(&t->tr, t->net, &tc, &err)) != BFN_OK ||
        (st = bfn_net_create(&t->pnet, bfn_net_get_config(t->net), VIZ_TRAIN_PREVIEW_MAX, &err)) !=
            BFN_OK) {
        viz_fmt(msg, cap, "%s", err.msg);
        return st;
    }
    if (viz_mkdir(t->runs_dir) != 0) {
        viz_fmt(msg, cap, "cannot create directory %s", t->runs_dir);
        return BFN_ERR_IO;
    }
    t->images_seen = 0;
    t->smooth = NAN;
    t->bucket_sum = 0;
    t->bucket_n = 0;
    t->bucket = 1;
    t->last_ckpt_t = t->last_preview_t = t->rate_t = viz_now();
    t->rate_images = 0;
    t->val_every = q->steps / 40 < 25 ? 25 : q->steps / 40 > 500 ? 500 : q->steps / 40;
    return BFN_OK;
}

/* Appends one training-loss value to the curve, in buckets of t->bucket
 * steps; a full curve halves (pairs averaged) and the bucket doubles. */
static void curve_add(viz_train *t, int64_t step, double loss)
{
    t->bucket_sum += loss;
    if (++t->bucket_n < t->bucket)
        return;
    viz_train_view *v = &t->view;
    if (v->n_loss == VIZ_TRAIN_CURVE_MAX) {
        for (int i = 0; i < VIZ_TRAIN_CURVE_MAX / 2; i++) {
            v->loss_step[i] = v->loss_step[2 * i + 1];
            v->loss_val[i] = 0.5f * (v->loss_val[2 * i] + v->loss_val[2 * i + 1]);
        }
        v->n_loss = VIZ_TRAIN_CURVE_MAX / 2;
        t->bucket *= 2;
    }
    v->loss_step[v->n_loss] = (float)step;
    v->loss_val[v->n_loss] = (float)(t->bucket_sum / t->bucket_n);
    v->n_loss++;
    t->bucket_sum = 0;
    t->bucket_n = 0;
}

static void val_add(viz_train_view *v, int64_t step, double loss)
{
    if (v->n_val == VIZ_TRAIN_CURVE_MAX) {
        for (int i = 0; i < VIZ_TRAIN_CURVE_MAX / 2; i++) {
            v->val_step[i] = v->val_step[2 * i + 1];
            v->val_val[i] = v->val_val[2 * i + 1];
        }
        v->n_val = VIZ_TRAIN_CURVE_MAX / 2;
    }
    v->val_step[v->n_val] = (float)step;
    v->val_val[v->n_val] = (float)loss;
    v->n_val++;
}

static bfn_status save(viz_train *t, int ckpt, int model, char *msg, size_t cap)
{
    bfn_err err = {0};
    const char *data = bfn_data_kind_name(t->cur.data);
    bfn_status st = BFN_OK;
    if (ckpt)
        st = bfn_trainer_save(t->tr, t->view.ckpt_path, data, t->images_seen, "bfnviz", &err);
    if (st == BFN_OK && model)
        st = bfn_trainer_save_model(t->tr, t->view.model_path, data, t->images_seen, "bfnviz",
                                    &err);
    if (st != BFN_OK)
        viz_fmt(msg, cap, "save failed: %s", err.msg);
    else
        viz_fmt(msg, cap, "saved %s (step %lld)", model ? t->view.model_path : t->view.ckpt_path,
                (long long)bfn_trainer_steps(t->tr));
    return st;
}

static int preview_observer(const bfn_sample_frame *f, void *user)
{
    (void)f;
    viz_train *t = user;
    return atomic_load(&t->quitting);
}

/* Samples a small grid from the current EMA weights on the preview net. */
static void preview(viz_train *t)
{
    const bfn_net_config *c = bfn_net_get_config(t->pnet);
    size_t count = bfn_net_param_count(t->pnet);
    memcpy(bfn_net_params(t->pnet), bfn_trainer_ema(t->tr), count * sizeof(float));
    int n_img = c->H * c->W <= 64 * 64 ? VIZ_TRAIN_PREVIEW_MAX : 0;
    if (!n_img)
        return;
    bfn_sample_config sc = {.n_steps = PREVIEW_STEPS, .beta1 = bfn_trainer_config(t->tr)->beta1,
                            .count = n_img, .seed = 1, .final = BFN_FINAL_SAMPLE};
    bfn_sampler *s = NULL;
    bfn_err err = {0};
    if (bfn_sampler_create(&s, t->pnet, &sc, &err) != BFN_OK)
        return;
    bfn_sampler_set_observer(s, preview_observer, t);
    if (bfn_sampler_run(s, NULL, &err) != BFN_OK) {
        bfn_sampler_destroy(s);
        return;
    }
    SDL_LockMutex(t->mu);
    viz_train_view *v = &t->view;
    memcpy(v->preview, bfn_sampler_result(s), (size_t)n_img * c->H * c->W);
    v->preview_n = n_img;
    v->preview_h = c->H;
    v->preview_w = c->W;
    v->preview_step = bfn_trainer_steps(t->tr);
    v->preview_serial++;
    changed(t);
    SDL_UnlockMutex(t->mu);
    bfn_sampler_destroy(s);
    t->last_preview_t = viz_now();
}

static void snapshot(viz_train *t)
{
    viz_weights *w = viz_weights_create(++t->snap_id, bfn_net_get_config(t->net),
                                        bfn_trainer_config(t->tr)->beta1,
                                        bfn_trainer_steps(t->tr),
                                        bfn_data_kind_name(t->cur.data), bfn_trainer_ema(t->tr),
                                        bfn_net_param_count(t->net));
    if (!w) {
        set_message(t, "out of memory for a weight snapshot");
        return;
    }
    SDL_LockMutex(t->mu);
    viz_weights *old = t->snapshot;
    t->snapshot = w;
    t->view.snapshot_serial++;
    changed(t);
    SDL_UnlockMutex(t->mu);
    viz_weights_unref(old);
}

/* One optimizer step plus what is due after it. Called without the lock. */
static void train_step(viz_train *t)
{
    bfn_train_stats s;
    bfn_err err = {0};
    bfn_status st = bfn_trainer_step(t->tr, bfn_source_train_batch, t->src, &s, &err);
    if (st != BFN_OK) {
        char msg[600];
        viz_fmt(msg, sizeof msg, "%s%s", err.msg,
                st == BFN_ERR_NUMERIC ? " (training diverged; the last checkpoint is kept)" : "");
        SDL_LockMutex(t->mu);
        t->view.state = VIZ_TRAIN_ERROR;
        viz_strcpy(t->view.message, sizeof t->view.message, msg);
        changed(t);
        SDL_UnlockMutex(t->mu);
        return;
    }
    const bfn_train_config *cfg = bfn_trainer_config(t->tr);
    t->images_seen += cfg->batch;
    t->smooth = isnan(t->smooth) ? s.loss : 0.98 * t->smooth + 0.02 * s.loss;
    double val = -1;
    if (s.step % t->val_every == 0 || s.step == cfg->total_steps)
        if (bfn_trainer_validate(t->tr, bfn_source_train_batch, t->val_src, VAL_BATCHES, VAL_SEED,
                                 1, &val, &err) != BFN_OK)
            val = -1;
    double now = viz_now();
    int finished = s.step >= cfg->total_steps;
    char msg[BFN_ERR_MSG_MAX + 64] = "";
    if (finished || s.step % CKPT_EVERY_STEPS == 0 || now - t->last_ckpt_t > CKPT_EVERY_S) {
        save(t, 1, finished, msg, sizeof msg);
        t->last_ckpt_t = now;
    }
    SDL_LockMutex(t->mu);
    viz_train_view *v = &t->view;
    v->step = s.step;
    v->loss = t->smooth;
    v->lr = s.lr;
    curve_add(t, s.step, s.loss);
    if (val >= 0) {
        v->val = val;
        val_add(v, s.step, val);
    }
    if (now - t->rate_t >= RATE_WINDOW_S) {
        double ips = (t->images_seen - t->rate_images) / (now - t->rate_t);
        v->images_per_s = v->images_per_s > 0 ? 0.5 * v->images_per_s + 0.5 * ips : ips;
        t->rate_t = now;
        t->rate_images = t->images_seen;
    }
    v->eta_s = v->images_per_s > 0
                   ? (double)(cfg->total_steps - s.step) * cfg->batch / v->images_per_s
                   : -1;
    if (msg[0])
        viz_strcpy(v->message, sizeof v->message, msg);
    if (finished && v->state == VIZ_TRAIN_RUNNING)
        v->state = VIZ_TRAIN_DONE;
    int want_preview = finished || now - t->last_preview_t >= t->preview_interval;
    changed(t);
    SDL_UnlockMutex(t->mu);
    if (want_preview)
        preview(t);
}

static void start(viz_train *t)
{
    teardown(t);
    char msg[BFN_ERR_MSG_MAX + 64] = "";
    bfn_status st = setup(t, msg, sizeof msg);
    SDL_LockMutex(t->mu);
    viz_train_view *v = &t->view;
    uint64_t ps = v->preview_serial, ss = v->snapshot_serial;
    memset(v, 0, sizeof *v);
    v->preview_serial = ps;
    v->snapshot_serial = ss;
    v->val = -1;
    v->eta_s = -1;
    viz_strcpy(v->data_name, sizeof v->data_name, bfn_data_kind_name(t->cur.data));
    if (st != BFN_OK) {
        v->state = VIZ_TRAIN_ERROR;
        viz_strcpy(v->message, sizeof v->message, msg);
    } else {
        const bfn_train_config *cfg = bfn_trainer_config(t->tr);
        v->state = VIZ_TRAIN_RUNNING;
        v->total = cfg->total_steps;
        v->batch = cfg->batch;
        v->beta1 = cfg->beta1;
        v->params = bfn_net_param_count(t->net);
        viz_fmt(v->ckpt_path, sizeof v->ckpt_path, "%s/viz-%s.ckpt", t->runs_dir, v->data_name);
        viz_fmt(v->model_path, sizeof v->model_path, "%s/viz-%s.bfn", t->runs_dir, v->data_name);
        viz_fmt(v->message, sizeof v->message, "training %s from %s", v->data_name,
                t->cur.from_model ? viz_basename(t->cur.model_path) : "scratch");
    }
    changed(t);
    SDL_UnlockMutex(t->mu);
    if (st != BFN_OK)
        teardown(t);
}

static int busy(const viz_train *t)
{
    return t->view.state == VIZ_TRAIN_RUNNING || t->want_start || t->want_stop || t->quit ||
           ((t->want_save || t->want_snapshot || t->want_preview) && t->tr);
}

static int thread_main(void *arg)
{
    viz_train *t = arg;
    SDL_LockMutex(t->mu);
    for (;;) {
        while (!busy(t)) {
            t->want_save = t->want_snapshot = t->want_preview = 0; /* nothing to serve them */
            SDL_CondWait(t->cv, t->mu);
        }
        if (t->quit)
            break;
        if (t->want_start) {
            t->want_start = 0;
            t->cur = t->req;
            t->view.state = VIZ_TRAIN_STARTING;
            changed(t);
            SDL_UnlockMutex(t->mu);
            start(t);
            SDL_LockMutex(t->mu);
            continue;
        }
        if (t->want_stop) {
            t->want_stop = 0;
            SDL_UnlockMutex(t->mu);
            char msg[BFN_ERR_MSG_MAX + 64] = "";
            if (t->tr)
                save(t, 1, 0, msg, sizeof msg);
            teardown(t);
            SDL_LockMutex(t->mu);
            t->view.state = VIZ_TRAIN_IDLE;
            viz_fmt(t->view.message, sizeof t->view.message, "stopped%s%s", msg[0] ? "; " : "",
                    msg);
            changed(t);
            continue;
        }
        if (t->want_save && t->tr) {
            t->want_save = 0;
            SDL_UnlockMutex(t->mu);
            char msg[BFN_ERR_MSG_MAX + 64];
            save(t, 1, 1, msg, sizeof msg);
            set_message(t, msg);
            SDL_LockMutex(t->mu);
            continue;
        }
        if (t->want_snapshot && t->tr) {
            t->want_snapshot = 0;
            SDL_UnlockMutex(t->mu);
            snapshot(t);
            SDL_LockMutex(t->mu);
            continue;
        }
        if (t->want_preview && t->tr) {
            t->want_preview = 0;
            SDL_UnlockMutex(t->mu);
            preview(t);
            SDL_LockMutex(t->mu);
            continue;
        }
        if (t->view.state == VIZ_TRAIN_RUNNING) {
            SDL_UnlockMutex(t->mu);
            train_step(t);
            SDL_LockMutex(t->mu);
        }
    }
    SDL_UnlockMutex(t->mu);
    teardown(t);
    return 0;
}

viz_train *viz_train_create(uint32_t wake_type, const char *runs_dir)
{
    viz_train *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->wake_type = wake_type;
    atomic_init(&t->wake_pending, 0);
    atomic_init(&t->quitting, 0);
    viz_strcpy(t->runs_dir, sizeof t->runs_dir, runs_dir);
    t->preview_interval = 30.0;
    t->view.val = -1;
    t->view.eta_s = -1;
    t->mu = SDL_CreateMutex();
    t->cv = SDL_CreateCond();
    if (t->mu && t->cv)
        t->thread = SDL_CreateThread(thread_main, "bfnviz-trainer", t);
    if (!t->thread) {
        if (t->cv)
            SDL_DestroyCond(t->cv);
        if (t->mu)
            SDL_DestroyMutex(t->mu);
        free(t);
        return NULL;
    }
    return t;
}

void viz_train_destroy(viz_train *t)
{
    if (!t)
        return;
    atomic_store(&t->quitting, 1);
    SDL_LockMutex(t->mu);
    t->quit = 1;
    SDL_CondSignal(t->cv);
    SDL_UnlockMutex(t->mu);
    SDL_WaitThread(t->thread, NULL);
    viz_weights_unref(t->snapshot);
    SDL_DestroyCond(t->cv);
    SDL_DestroyMutex(t->mu);
    free(t);
}

void viz_train_start(viz_train *t, const viz_train_req *req)
{
    SDL_LockMutex(t->mu);
    viz_train_state s = t->view.state;
    if (s != VIZ_TRAIN_STARTING && s != VIZ_TRAIN_RUNNING && s != VIZ_TRAIN_PAUSED) {
        t->req = *req;
        t->want_start = 1;
        SDL_CondSignal(t->cv);
    }
    SDL_UnlockMutex(t->mu);
}

void viz_train_pause(viz_train *t, int pause)
{
    SDL_LockMutex(t->mu);
    if (pause && t->view.state == VIZ_TRAIN_RUNNING)
        t->view.state = VIZ_TRAIN_PAUSED;
    else if (!pause && t->view.state == VIZ_TRAIN_PAUSED)
        t->view.state = VIZ_TRAIN_RUNNING;
    changed(t);
    SDL_CondSignal(t->cv);
    SDL_UnlockMutex(t->mu);
}

static void request(viz_train *t, int *flag)
{
    SDL_LockMutex(t->mu);
    *flag = 1;
    SDL_CondSignal(t->cv);
    SDL_UnlockMutex(t->mu);
}

void viz_train_stop(viz_train *t) { request(t, &t->want_stop); }
void viz_train_request_save(viz_train *t) { request(t, &t->want_save); }
void viz_train_request_snapshot(viz_train *t) { request(t, &t->want_snapshot); }
void viz_train_request_preview(viz_train *t) { request(t, &t->want_preview); }

void viz_train_set_preview_interval(viz_train *t, double seconds)
{
    SDL_LockMutex(t->mu);
    t->preview_interval = seconds;
    SDL_UnlockMutex(t->mu);
}

void viz_train_get(viz_train *t, viz_train_view *out)
{
    SDL_LockMutex(t->mu);
    memcpy(out, &t->view, sizeof *out);
    SDL_UnlockMutex(t->mu);
}

uint64_t viz_train_serial(viz_train *t)
{
    SDL_LockMutex(t->mu);
    uint64_t s = t->serial;
    SDL_UnlockMutex(t->mu);
    return s;
}

viz_weights *viz_train_snapshot(viz_train *t)
{
    SDL_LockMutex(t->mu);
    viz_weights *w = viz_weights_ref(t->snapshot);
    SDL_UnlockMutex(t->mu);
    return w;
}
