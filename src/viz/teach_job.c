#include "teach_job.h"

#include <SDL.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bfn/flow.h"
#include "bfn/model_io.h"

#define NET_MAX_BATCH 16
#define EVAL_N_MC 8     /* Monte Carlo draws per pixel of each KL in the evaluation */
#define EVAL_SEED 1     /* as bfn eval's default */

struct viz_teach_job {
    SDL_Thread *thread;
    SDL_mutex *mu;
    SDL_cond *cv;
    uint32_t wake_type;
    atomic_uint_fast64_t gen;
    atomic_int wake_pending;
    atomic_int busy;

    /* under mu */
    int quit, has_req;
    viz_teach_req *req;      /* queued request */
    uint64_t req_gen;
    viz_lesson *latest[2];
    int latest_sides;

    /* owned by the thread */
    viz_teach_req *cur;
    bfn_net *net;
    char net_path[VIZ_PATH_MAX];
    struct timespec net_mtime;
};

viz_lesson *viz_lesson_ref(viz_lesson *l)
{
    if (l)
        atomic_fetch_add_explicit(&l->refs, 1, memory_order_relaxed);
    return l;
}

void viz_lesson_unref(viz_lesson *l)
{
    if (!l || atomic_fetch_sub_explicit(&l->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(l->x);
    free(l->known);
    free(l->theta);
    free(l->p);
    free(l->y);
    free(l->cost);
    free(l->k);
    free(l->sent);
    free(l->step_cost);
    free(l->total);
    free(l);
}

static viz_lesson *lesson_create(const viz_teach_req *q, int side, uint64_t gen)
{
    viz_lesson *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    atomic_init(&l->refs, 1);
    atomic_init(&l->ready, 0);
    atomic_init(&l->state, VIZ_LESSON_RUNNING);
    atomic_init(&l->eval_state, VIZ_EVAL_NONE);
    l->gen = gen;
    l->side = side;
    l->lp = q->lp[side];
    l->seed = q->seed;
    l->mode = q->mode;
    l->has_mask = q->has_mask;
    l->H = q->H;
    l->W = q->W;
    l->D = q->H * q->W;
    l->n_slots = l->lp.n + 1;
    size_t D = (size_t)l->D, v = (size_t)l->n_slots * D;
    l->x = malloc(D);
    l->known = malloc(D);
    l->theta = calloc(v, sizeof(float));
    l->p = calloc(v, sizeof(float));
    l->y = calloc(v, sizeof(float));
    l->cost = calloc(v, sizeof(float));
    l->k = calloc(v, 1);
    l->sent = calloc(v, 1);
    l->step_cost = calloc((size_t)l->n_slots, sizeof(double));
    l->total = calloc((size_t)l->n_slots, sizeof(double));
    if (!l->x || !l->known || !l->theta || !l->p || !l->y || !l->cost || !l->k || !l->sent ||
        !l->step_cost || !l->total) {
        viz_lesson_unref(l);
        return NULL;
    }
    memcpy(l->x, q->x, D);
    memcpy(l->known, q->known, D);
    return l;
}

static void wake(viz_teach_job *j)
{
    if (atomic_exchange(&j->wake_pending, 1))
        return;
    SDL_Event e;
    memset(&e, 0, sizeof e);
    e.type = j->wake_type;
    e.user.code = VIZ_TEACH_WAKE_CODE;
    if (SDL_PushEvent(&e) != 1)
        atomic_store(&j->wake_pending, 0);
}

void viz_teach_job_ack(viz_teach_job *j) { atomic_store(&j->wake_pending, 0); }

static void publish(viz_teach_job *j, viz_lesson **ls, int sides)
{
    SDL_LockMutex(j->mu);
    viz_lesson *old[2] = {j->latest[0], j->latest[1]};
    for (int s = 0; s < 2; s++)
        j->latest[s] = s < sides ? viz_lesson_ref(ls[s]) : NULL;
    j->latest_sides = sides;
    SDL_UnlockMutex(j->mu);
    viz_lesson_unref(old[0]);
    viz_lesson_unref(old[1]);
    wake(j);
}

static int ensure_model(viz_teach_job *j, const char *path, char *msg, size_t cap)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        viz_fmt(msg, cap, "cannot open model %s: %s", path, strerror(errno));
        return -1;
    }
    if (j->net && !strcmp(j->net_path, path) && sb.st_mtim.tv_sec == j->net_mtime.tv_sec &&
        sb.st_mtim.tv_nsec == j->net_mtime.tv_nsec)
        return 0;
    bfn_net_destroy(j->net);
    j->net = NULL;
    bfn_model_meta meta;
    bfn_err err = {0};
    if (bfn_model_load_net(path, &j->net, &meta, NET_MAX_BATCH, &err) != BFN_OK) {
        viz_fmt(msg, cap, "%s", err.msg);
        return -1;
    }
    viz_strcpy(j->net_path, sizeof j->net_path, path);
    j->net_mtime = sb.st_mtim;
    return 0;
}

/* Copies one step of a session into the lesson's slot and publishes it. */
static void record(viz_lesson *l, const bfn_teach_frame *f)
{
    const int D = l->D;
    int s = f->step - 1;
    size_t o = (size_t)s * D;
    bfn_theta(l->theta + o, f->z, D, f->K);
    memcpy(l->p + o, f->p, (size_t)D * sizeof(float));
    if (f->y)
        memcpy(l->y + o, f->y, (size_t)D * sizeof(float));
    if (f->cost)
        memcpy(l->cost + o, f->cost, (size_t)D * sizeof(float));
    memcpy(l->k + o, f->k, (size_t)D);
    if (f->sent)
        memcpy(l->sent + o, f->sent, (size_t)D);
    l->step_cost[s] = f->cost_sum;
    l->total[s] = f->total;
    atomic_store_explicit(&l->ready, s + 1, memory_order_release);
}

static void finish_all(viz_lesson **ls, int sides, viz_lesson_state st, const char *msg)
{
    for (int s = 0; s < sides; s++) {
        if (msg)
            viz_strcpy(ls[s]->error, sizeof ls[s]->error, msg);
        if (viz_lesson_get_state(ls[s]) == VIZ_LESSON_RUNNING)
            atomic_store_explicit(&ls[s]->state, st, memory_order_release);
    }
}

static void run_lesson(viz_teach_job *j, const viz_teach_req *q, uint64_t gen)
{
    viz_lesson *ls[2] = {NULL, NULL};
    bfn_teach *ts[2] = {NULL, NULL};
    char msg[600] = "";
    int sides = q->sides == 2 ? 2 : 1;
    for (int s = 0; s < sides; s++)
        if (!(ls[s] = lesson_create(q, s, gen))) {
            for (int r = 0; r < s; r++)
                viz_lesson_unref(ls[r]);
            return;
        }
    publish(j, ls, sides);
    bfn_err err = {0};
    if (ensure_model(j, q->model_path, msg, sizeof msg) != 0) {
        finish_all(ls, sides, VIZ_LESSON_ERROR, msg);
        goto out;
    }
    const bfn_net_config *nc = bfn_net_get_config(j->net);
    if (nc->H != q->H || nc->W != q->W) {
        viz_fmt(msg, sizeof msg, "the model draws %d×%d images, the lesson's image is %d×%d",
                nc->H, nc->W, q->H, q->W);
        finish_all(ls, sides, VIZ_LESSON_ERROR, msg);
        goto out;
    }
    for (int s = 0; s < sides; s++) {
        bfn_teach_config tc = {.n_steps = q->lp[s].n, .beta1 = q->lp[s].beta1, .seed = q->seed,
                               .final = q->lp[s].argmax ? BFN_FINAL_ARGMAX : BFN_FINAL_SAMPLE,
                               .mode = q->mode, .x = q->x,
                               .known = q->has_mask ? q->known : NULL, .inpaint = q->inpaint,
                               .n_mc = 16};
        if (bfn_teach_create(&ts[s], j->net, &tc, &err) != BFN_OK) {
            finish_all(ls, sides, VIZ_LESSON_ERROR, err.msg);
            goto out;
        }
    }
    /* both sides in order of time, so the shared timeline fills evenly */
    for (;;) {
        int next = -1;
        double best = 2.0;
        for (int s = 0; s < sides; s++) {
            if (bfn_teach_finished(ts[s]))
                continue;
            double t = (double)bfn_teach_steps_done(ts[s]) / q->lp[s].n;
            if (t < best) {
                best = t;
                next = s;
            }
        }
        if (next < 0)
            break;
        if (atomic_load(&j->gen) != gen) {
            finish_all(ls, sides, VIZ_LESSON_CANCELLED, NULL);
            goto out;
        }
        bfn_teach_frame f;
        if (bfn_teach_step(ts[next], &f, &err) != BFN_OK) {
            finish_all(ls, sides, VIZ_LESSON_ERROR, err.msg);
            goto out;
        }
        record(ls[next], &f);
        wake(j);
    }
    if (q->mode == BFN_TEACH_ALICE)
        for (int s = 0; s < sides; s++)
            atomic_store(&ls[s]->eval_state, VIZ_EVAL_RUNNING);
    finish_all(ls, sides, VIZ_LESSON_DONE, NULL);
    wake(j);
    if (q->mode != BFN_TEACH_ALICE)
        goto out;
    for (int s = 0; s < sides; s++) {
        if (atomic_load(&j->gen) != gen)
            break;
        bfn_eval_result res;
        int draws = q->eval_draws > 1 ? q->eval_draws : 2;
        if (bfn_teach_image_loss(j->net, q->x, q->lp[s].n, q->lp[s].beta1, draws, EVAL_N_MC,
                                 EVAL_SEED, &res, &err) == BFN_OK) {
            ls[s]->ln = res.ln;
            ls[s]->ln_se = res.ln_se;
            ls[s]->lr = res.lr;
            ls[s]->lr_se = res.lr_se;
            ls[s]->eval_draws = draws;
            atomic_store_explicit(&ls[s]->eval_state, VIZ_EVAL_DONE, memory_order_release);
        } else {
            viz_strcpy(ls[s]->error, sizeof ls[s]->error, err.msg);
            atomic_store_explicit(&ls[s]->eval_state, VIZ_EVAL_ERROR, memory_order_release);
        }
        wake(j);
    }
out:
    for (int s = 0; s < sides; s++) {
        if (atomic_load(&ls[s]->eval_state) == VIZ_EVAL_RUNNING)
            atomic_store(&ls[s]->eval_state, VIZ_EVAL_NONE);
        bfn_teach_destroy(ts[s]);
        viz_lesson_unref(ls[s]);
    }
    wake(j);
}

static int thread_main(void *arg)
{
    viz_teach_job *j = arg;
    SDL_LockMutex(j->mu);
    for (;;) {
        while (!j->has_req && !j->quit)
            SDL_CondWait(j->cv, j->mu);
        if (j->quit)
            break;
        /* swap the queued request into the thread's own buffer */
        viz_teach_req *q = j->req;
        j->req = j->cur;
        j->cur = q;
        uint64_t gen = j->req_gen;
        j->has_req = 0;
        SDL_UnlockMutex(j->mu);
        run_lesson(j, q, gen);
        SDL_LockMutex(j->mu);
        if (!j->has_req)
            atomic_store(&j->busy, 0);
    }
    SDL_UnlockMutex(j->mu);
    return 0;
}

viz_teach_job *viz_teach_job_create(uint32_t wake_type)
{
    viz_teach_job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->wake_type = wake_type;
    atomic_init(&j->gen, 0);
    atomic_init(&j->wake_pending, 0);
    atomic_init(&j->busy, 0);
    j->req = calloc(1, sizeof *j->req);
    j->cur = calloc(1, sizeof *j->cur);
    j->mu = SDL_CreateMutex();
    j->cv = SDL_CreateCond();
    if (j->req && j->cur && j->mu && j->cv)
        j->thread = SDL_CreateThread(thread_main, "bfnviz-teach", j);
    if (!j->thread) {
        if (j->cv)
            SDL_DestroyCond(j->cv);
        if (j->mu)
            SDL_DestroyMutex(j->mu);
        free(j->req);
        free(j->cur);
        free(j);
        return NULL;
    }
    return j;
}

void viz_teach_job_destroy(viz_teach_job *j)
{
    if (!j)
        return;
    SDL_LockMutex(j->mu);
    j->quit = 1;
    atomic_fetch_add(&j->gen, 1);
    SDL_CondSignal(j->cv);
    SDL_UnlockMutex(j->mu);
    SDL_WaitThread(j->thread, NULL);
    viz_lesson_unref(j->latest[0]);
    viz_lesson_unref(j->latest[1]);
    bfn_net_destroy(j->net);
    SDL_DestroyCond(j->cv);
    SDL_DestroyMutex(j->mu);
    free(j->req);
    free(j->cur);
    free(j);
}

uint64_t viz_teach_job_submit(viz_teach_job *j, const viz_teach_req *req)
{
    SDL_LockMutex(j->mu);
    *j->req = *req;
    j->has_req = 1;
    atomic_store(&j->busy, 1);
    j->req_gen = atomic_fetch_add(&j->gen, 1) + 1;
    uint64_t g = j->req_gen;
    SDL_CondSignal(j->cv);
    SDL_UnlockMutex(j->mu);
    return g;
}

uint64_t viz_teach_job_generation(viz_teach_job *j) { return atomic_load(&j->gen); }

int viz_teach_job_take(viz_teach_job *j, uint64_t have, viz_lesson *sides[2])
{
    int n = 0;
    sides[0] = sides[1] = NULL;
    SDL_LockMutex(j->mu);
    if (j->latest[0] && j->latest[0]->gen != have) {
        n = j->latest_sides;
        for (int s = 0; s < n; s++)
            sides[s] = viz_lesson_ref(j->latest[s]);
    }
    SDL_UnlockMutex(j->mu);
    return n;
}

int viz_teach_job_busy(viz_teach_job *j) { return atomic_load(&j->busy); }
