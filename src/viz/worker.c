#include "worker.h"

#include <SDL.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "bfn/model_io.h"
#include "bfn/sample.h"

#define NET_MAX_BATCH 16 /* images per network call; results do not depend on it */

struct viz_worker {
    SDL_Thread *thread;
    SDL_mutex *mu;
    SDL_cond *cv;
    uint32_t wake_type;
    size_t mem_cap;
    atomic_uint_fast64_t gen; /* newest request */
    atomic_int wake_pending;

    /* under mu */
    int quit;
    int has_req;
    viz_sample_req req;
    uint64_t req_gen;
    double req_time;
    viz_run *latest;
    char status[256];

    /* owned by the thread */
    bfn_net *net;
    viz_model_info info;
    char net_path[VIZ_PATH_MAX]; /* file the net came from ("" for weights) */
    struct timespec net_mtime;
    off_t net_size;
    uint64_t net_weights_id;     /* snapshot id the net holds (0: a file) */
    bfn_net *guide;              /* the net's guide (NULL: none loaded) */
    char guide_path[VIZ_PATH_MAX];
    struct timespec guide_mtime;
    off_t guide_size;
    viz_run *cur;
    uint64_t cur_gen;
};

static void wake(viz_worker *w)
{
    if (atomic_exchange(&w->wake_pending, 1))
        return;
    SDL_Event e;
    memset(&e, 0, sizeof e);
    e.type = w->wake_type;
    e.user.code = 1;
    if (SDL_PushEvent(&e) != 1)
        atomic_store(&w->wake_pending, 0);
}

void viz_worker_ack(viz_worker *w) { atomic_store(&w->wake_pending, 0); }

static void set_status(viz_worker *w, const char *s)
{
    SDL_LockMutex(w->mu);
    viz_strcpy(w->status, sizeof w->status, s);
    SDL_UnlockMutex(w->mu);
}

static void describe(viz_model_info *info, const bfn_net_config *c, double beta1,
                     const char *dataset, uint64_t step, uint64_t images, size_t params)
{
    info->K = c->K;
    info->H = c->H;
    info->W = c->W;
    info->beta1 = beta1;
    info->params = params;
    info->step = step;
    info->images = images;
    viz_strcpy(info->dataset, sizeof info->dataset, dataset[0] ? dataset : "?");
}

int viz_guide_path(const char *model_path, char *out, size_t cap)
{
    const char *base = viz_basename(model_path);
    int dir_len = (int)(base - model_path); /* includes the '/' */
    viz_fmt(out, cap, "%.*s%s/%s", dir_len, model_path, VIZ_GUIDE_DIR, base);
    struct stat sb;
    return stat(out, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The file behind sb is the version once loaded (same size and time). */
static int same_version(const struct stat *sb, struct timespec mtime, off_t size)
{
    return sb->st_size == size && sb->st_mtim.tv_sec == mtime.tv_sec &&
           sb->st_mtim.tv_nsec == mtime.tv_nsec;
}

/* A guide belongs to the net it was checked against: it goes with it. */
static void drop_guide(viz_worker *w)
{
    bfn_net_destroy(w->guide);
    w->guide = NULL;
    w->guide_path[0] = '\0';
}

/* Makes w->net hold the request's model; reuses it when unchanged. */
static bfn_status ensure_model(viz_worker *w, const viz_sample_req *req, char *msg, size_t cap)
{
    bfn_err err = {0};
    if (req->weights) {
        const viz_weights *ws = req->weights;
        if (w->net && w->net_weights_id == ws->id)
            return BFN_OK;
        drop_guide(w);
        if (w->net && memcmp(bfn_net_get_config(w->net), &ws->cfg, sizeof ws->cfg) != 0) {
            bfn_net_destroy(w->net);
            w->net = NULL;
        }
        if (!w->net) {
            bfn_status st = bfn_net_create(&w->net, &ws->cfg, NET_MAX_BATCH, &err);
            if (st != BFN_OK) {
                viz_fmt(msg, cap, "training snapshot: %s", err.msg);
                return st;
            }
        }
        if (bfn_net_param_count(w->net) != ws->count) {
            bfn_net_destroy(w->net);
            w->net = NULL;
            viz_fmt(msg, cap, "training snapshot does not match its network");
            return BFN_ERR_MISMATCH;
        }
        memcpy(bfn_net_params(w->net), ws->params, ws->count * sizeof(float));
        w->net_path[0] = '\0';
        w->net_weights_id = ws->id;
        describe(&w->info, &ws->cfg, ws->beta1, ws->dataset, (uint64_t)ws->step, 0, ws->count);
        viz_fmt(w->info.label, sizeof w->info.label, "training snapshot (step %lld)",
                (long long)ws->step);
        return BFN_OK;
    }
    struct stat sb;
    if (stat(req->model_path, &sb) != 0) {
        viz_fmt(msg, cap, "cannot open model %s: %s", req->model_path, strerror(errno));
        return BFN_ERR_IO;
    }
    if (w->net && !w->net_weights_id && !strcmp(w->net_path, req->model_path) &&
        same_version(&sb, w->net_mtime, w->net_size))
        return BFN_OK;
    drop_guide(w);
    bfn_net_destroy(w->net);
    w->net = NULL;
    char line[VIZ_PATH_MAX + 32];
    viz_fmt(line, sizeof line, "loading %s", req->model_path);
    set_status(w, line);
    bfn_model_meta meta;
    bfn_status st = bfn_model_load_net(req->model_path, &w->net, &meta, NET_MAX_BATCH, &err);
    if (st != BFN_OK) {
        viz_fmt(msg, cap, "%s", err.msg[0] ? err.msg : bfn_status_str(st));
        return st;
    }
    viz_strcpy(w->net_path, sizeof w->net_path, req->model_path);
    w->net_mtime = sb.st_mtim;
    w->net_size = sb.st_size;
    w->net_weights_id = 0;
    describe(&w->info, &meta.config, meta.beta1, meta.dataset, meta.step, meta.images_seen,
             bfn_net_param_count(w->net));
    viz_strcpy(w->info.label, sizeof w->info.label, viz_basename(req->model_path));
    return BFN_OK;
}

/* The guide at path checked against the model in w->net (same data shape,
 * trained at the same β(1), as guidance mixes their logits); NULL with the
 * reason in why when it cannot serve. */
static bfn_net *load_guide(viz_worker *w, const char *path, char *why, size_t cap)
{
    char line[VIZ_PATH_MAX + 32];
    viz_fmt(line, sizeof line, "loading guide %s", path);
    set_status(w, line);
    const char *name = viz_basename(path);
    bfn_net *g = NULL;
    bfn_model_meta meta;
    bfn_err err = {0};
    bfn_status st = bfn_model_load_net(path, &g, &meta, NET_MAX_BATCH, &err);
    if (st != BFN_OK) {
        viz_fmt(why, cap, "guide %s/%s: %s", VIZ_GUIDE_DIR, name,
                err.msg[0] ? err.msg : bfn_status_str(st));
        return NULL;
    }
    const bfn_net_config *c = &meta.config;
    const viz_model_info *m = &w->info;
    if (c->K != m->K || c->H != m->H || c->W != m->W)
        viz_fmt(why, cap, "guide %s/%s is for K = %d, %d×%d images; the model for K = %d, %d×%d",
                VIZ_GUIDE_DIR, name, c->K, c->H, c->W, m->K, m->H, m->W);
    else if (meta.beta1 != m->beta1)
        viz_fmt(why, cap, "guide %s/%s was trained at β(1) = %g, the model at %g", VIZ_GUIDE_DIR,
                name, meta.beta1, m->beta1);
    else
        return g;
    bfn_net_destroy(g);
    return NULL;
}

/* Makes w->guide hold the guide of the request's model when the request asks
 * for guidance (w->net holds the model). Returns the weight to sample with:
 * the request's, or 1 when there is no usable guide (why says so). */
static double ensure_guide(viz_worker *w, const viz_sample_req *req, char *why, size_t cap)
{
    double g = req->sp.guidance;
    if (!(g > 1)) /* off; an unset or invalid weight is off too */
        return 1;
    if (req->weights) {
        viz_fmt(why, cap, "a training snapshot has no guide");
        return 1;
    }
    char path[VIZ_PATH_MAX];
    struct stat sb;
    if (!viz_guide_path(req->model_path, path, sizeof path) || stat(path, &sb) != 0) {
        drop_guide(w);
        viz_fmt(why, cap, "no guide for this model (no file %s)", path);
        return 1;
    }
    int loaded = w->guide && !strcmp(w->guide_path, path) &&
                 same_version(&sb, w->guide_mtime, w->guide_size);
    if (!loaded) {
        drop_guide(w);
        if (!(w->guide = load_guide(w, path, why, cap)))
            return 1;
        viz_strcpy(w->guide_path, sizeof w->guide_path, path);
        w->guide_mtime = sb.st_mtim;
        w->guide_size = sb.st_size;
    }
    return fmin(g, VIZ_GUIDANCE_MAX);
}

static void publish(viz_worker *w, viz_run *r)
{
    SDL_LockMutex(w->mu);
    viz_run *old = w->latest;
    w->latest = viz_run_ref(r);
    SDL_UnlockMutex(w->mu);
    viz_run_unref(old);
    wake(w);
}

static int observe(const bfn_sample_frame *f, void *user)
{
    viz_worker *w = user;
    if (viz_run_record(w->cur, f))
        wake(w);
    return atomic_load(&w->gen) != w->cur_gen;
}

static void run_job(viz_worker *w, viz_sample_req *req, uint64_t gen, double t_submit)
{
    char msg[BFN_ERR_MSG_MAX + 64] = "", refused[512] = "";
    viz_sample_params sp = req->sp;
    sp.n = viz_clampi(sp.n, 1, 100000);
    sp.grid = viz_clampi(sp.grid, 1, VIZ_GRID_MAX);
    sp.guidance = 1;
    bfn_status st = ensure_model(w, req, msg, sizeof msg);
    if (st == BFN_OK)
        sp.guidance = ensure_guide(w, req, refused, sizeof refused);
    if (atomic_load(&w->gen) != gen)
        return; /* superseded while loading */
    if (st != BFN_OK) {
        viz_run *r = viz_run_create_error(gen, &sp, msg);
        if (r) {
            r->t_submit = t_submit;
            publish(w, r);
            viz_run_unref(r);
        }
        set_status(w, "idle (model error)");
        return;
    }
    if (!(sp.beta1 > 0))
        sp.beta1 = w->info.beta1;
    viz_run *r = viz_run_create(gen, &sp, &w->info, w->mem_cap, msg, sizeof msg);
    if (!r) {
        r = viz_run_create_error(gen, &sp, msg);
        if (r) {
            publish(w, r);
            viz_run_unref(r);
        }
        return;
    }
    if (sp.guidance != 1)
        viz_fmt(r->guide, sizeof r->guide, "%s/%s", VIZ_GUIDE_DIR, viz_basename(w->guide_path));
    viz_strcpy(r->guide_refused, sizeof r->guide_refused, refused);
    r->t_submit = t_submit;
    publish(w, r);
    set_status(w, "sampling");
    bfn_sample_config sc = {.n_steps = sp.n, .beta1 = sp.beta1, .count = r->cells,
                            .seed = sp.seed, .final = sp.argmax ? BFN_FINAL_ARGMAX
                                                                : BFN_FINAL_SAMPLE};
    bfn_sampler *smp = NULL;
    bfn_err err = {0};
    w->cur = r;
    w->cur_gen = gen;
    if (sp.guidance != 1)
        st = bfn_sampler_create_guided(&smp, w->net, w->guide, sp.guidance, &sc, &err);
    else
        st = bfn_sampler_create(&smp, w->net, &sc, &err);
    if (st == BFN_OK) {
        bfn_sampler_set_observer(smp, observe, w);
        st = bfn_sampler_run(smp, NULL, &err);
    }
    bfn_sampler_destroy(smp);
    w->cur = NULL;
    if (st == BFN_OK)
        viz_run_finish(r, VIZ_RUN_DONE, NULL, viz_now());
    else if (st == BFN_ERR_CANCELLED)
        viz_run_finish(r, VIZ_RUN_CANCELLED, NULL, viz_now());
    else
        viz_run_finish(r, VIZ_RUN_ERROR, err.msg, viz_now());
    viz_run_unref(r);
    set_status(w, "idle");
    wake(w);
}

static int thread_main(void *arg)
{
    viz_worker *w = arg;
    SDL_LockMutex(w->mu);
    for (;;) {
        while (!w->has_req && !w->quit)
            SDL_CondWait(w->cv, w->mu);
        if (w->quit)
            break;
        viz_sample_req req = w->req;
        uint64_t gen = w->req_gen;
        double t = w->req_time;
        w->has_req = 0;
        w->req.weights = NULL; /* the reference moves to this job */
        SDL_UnlockMutex(w->mu);
        run_job(w, &req, gen, t);
        viz_weights_unref(req.weights);
        SDL_LockMutex(w->mu);
    }
    SDL_UnlockMutex(w->mu);
    return 0;
}

viz_worker *viz_worker_create(uint32_t wake_type, size_t mem_cap)
{
    viz_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->wake_type = wake_type;
    w->mem_cap = mem_cap;
    atomic_init(&w->gen, 0);
    atomic_init(&w->wake_pending, 0);
    viz_strcpy(w->status, sizeof w->status, "idle");
    w->mu = SDL_CreateMutex();
    w->cv = SDL_CreateCond();
    if (w->mu && w->cv)
        w->thread = SDL_CreateThread(thread_main, "bfnviz-sampler", w);
    if (!w->thread) {
        if (w->cv)
            SDL_DestroyCond(w->cv);
        if (w->mu)
            SDL_DestroyMutex(w->mu);
        free(w);
        return NULL;
    }
    return w;
}

void viz_worker_destroy(viz_worker *w)
{
    if (!w)
        return;
    SDL_LockMutex(w->mu);
    w->quit = 1;
    atomic_fetch_add(&w->gen, 1); /* makes a running job stop at its next step */
    SDL_CondSignal(w->cv);
    SDL_UnlockMutex(w->mu);
    SDL_WaitThread(w->thread, NULL);
    viz_weights_unref(w->req.weights);
    viz_run_unref(w->latest);
    bfn_net_destroy(w->guide);
    bfn_net_destroy(w->net);
    SDL_DestroyCond(w->cv);
    SDL_DestroyMutex(w->mu);
    free(w);
}

uint64_t viz_worker_submit(viz_worker *w, const viz_sample_req *req)
{
    SDL_LockMutex(w->mu);
    viz_weights_unref(w->req.weights);
    w->req = *req;
    viz_weights_ref(w->req.weights);
    w->has_req = 1;
    w->req_time = viz_now();
    w->req_gen = atomic_fetch_add(&w->gen, 1) + 1;
    uint64_t g = w->req_gen;
    SDL_CondSignal(w->cv);
    SDL_UnlockMutex(w->mu);
    return g;
}

uint64_t viz_worker_generation(viz_worker *w) { return atomic_load(&w->gen); }

viz_run *viz_worker_take(viz_worker *w, uint64_t have)
{
    viz_run *r = NULL;
    SDL_LockMutex(w->mu);
    if (w->latest && w->latest->gen != have)
        r = viz_run_ref(w->latest);
    SDL_UnlockMutex(w->mu);
    return r;
}

void viz_worker_status(viz_worker *w, char *buf, size_t cap)
{
    SDL_LockMutex(w->mu);
    viz_strcpy(buf, cap, w->status);
    SDL_UnlockMutex(w->mu);
}
