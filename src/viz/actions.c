/* The app's actions: what buttons, keys and scripts do to the settings, the
 * timeline and the training thread. Main thread only. */
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_internal.h"

#define NOTICE_S 6.0 /* seconds a notice stays in the status line */

static int cmp_str(const void *x, const void *y) { return strcmp(x, y); }

/* The *.bfn files of the models and runs directories, sorted. */
void viz_scan_models(viz_app *a)
{
    a->n_models = 0;
    const char *dirs[2] = {a->model_dir, a->runs_dir};
    for (int d = 0; d < 2; d++) {
        DIR *dir = opendir(dirs[d]);
        if (!dir)
            continue;
        struct dirent *e;
        while ((e = readdir(dir)) && a->n_models < VIZ_MODELS_MAX) {
            size_t n = strlen(e->d_name);
            if (n > 4 && !strcmp(e->d_name + n - 4, ".bfn"))
                viz_fmt(a->models[a->n_models++], VIZ_PATH_MAX, "%s/%s", dirs[d], e->d_name);
        }
        closedir(dir);
    }
    qsort(a->models, (size_t)a->n_models, VIZ_PATH_MAX, cmp_str);
}

/* ---- positions on the timeline ---- */

int viz_positions(const viz_app *a)
{
    return a->run && a->run->n_slots ? a->run->n_slots + 1 : 1;
}

int viz_positions_ready(const viz_app *a) { return a->run ? viz_run_ready(a->run) + 1 : 1; }

int viz_pos(const viz_app *a) { return (int)a->pos; }

int viz_insp_in_run(const viz_app *a)
{
    const viz_run *r = a->run;
    return r && a->insp_cell >= 0 && a->insp_cell < r->cells && a->insp_x >= 0 &&
           a->insp_x < r->model.W && a->insp_y >= 0 && a->insp_y < r->model.H;
}

int viz_pos_step(const viz_app *a, int pos)
{
    if (!a->run || pos <= 0 || pos > a->run->n_slots)
        return 0;
    return a->run->slot_step[pos - 1];
}

void viz_act_seek(viz_app *a, int pos)
{
    a->pos = viz_clampi(pos, 0, viz_positions_ready(a) - 1);
    a->dirty = 1;
}

void viz_act_step(viz_app *a, int delta)
{
    a->playing = 0;
    viz_act_seek(a, viz_pos(a) + delta);
}

void viz_act_play(viz_app *a, int play)
{
    a->playing = play < 0 ? !a->playing : play;
    if (a->playing && viz_run_finished(a->run) && viz_pos(a) >= viz_positions(a) - 1)
        a->pos = 0; /* play again from the start */
    a->dirty = 1;
}

void viz_act_speed(viz_app *a, int dir)
{
    a->speed = viz_clampd(dir > 0 ? a->speed * 2 : a->speed / 2, 0.25, 8);
    a->dirty = 1;
}

/* ---- sampling settings ---- */

void viz_act_changed(viz_app *a)
{
    a->want_submit = 1;
    a->dirty = 1;
}

void viz_act_n(viz_app *a, int dir)
{
    static const int nice[] = {1, 2, 3, 5, 10, 15, 20, 25, 30, 50, 75, 100, 150, 200, 250, 300,
                               500, 750, 1000};
    const int cnt = (int)(sizeof nice / sizeof nice[0]);
    int n = a->set.n;
    if (dir > 0) {
        for (int i = 0; i < cnt; i++)
            if (nice[i] > n) {
                n = nice[i];
                break;
            }
    } else {
        for (int i = cnt - 1; i >= 0; i--)
            if (nice[i] < n) {
                n = nice[i];
                break;
            }
    }
    if (n != a->set.n) {
        a->set.n = n;
        viz_act_changed(a);
    }
}

double viz_beta_model(const viz_app *a)
{
    if (a->run && viz_run_get_state(a->run) != VIZ_RUN_ERROR)
        return a->run->model.beta1;
    return NAN;
}

double viz_beta_or_model(const viz_app *a, double beta1)
{
    if (beta1 > 0)
        return beta1;
    double m = viz_beta_model(a);
    return isnan(m) ? 3.0 : m;
}

double viz_beta_shown(const viz_app *a) { return viz_beta_or_model(a, a->set.beta1); }

void viz_act_beta(viz_app *a, double factor)
{
    a->set.beta1 = factor > 0 ? viz_clampd(viz_beta_shown(a) * factor, 0.1, 30) : 0;
    viz_act_changed(a);
}

void viz_act_seed(viz_app *a, int delta)
{
    if (delta)
        a->set.seed += (uint64_t)(int64_t)delta;
    else
        a->set.seed = (SDL_GetPerformanceCounter() * 0x9E3779B97F4A7C15ULL >> 44) + 1;
    if (a->set.seed == 0)
        a->set.seed = 1;
    viz_act_changed(a);
}

void viz_act_grid(viz_app *a, int delta)
{
    int g = viz_clampi(a->set.grid + delta, 1, VIZ_GRID_MAX);
    if (g != a->set.grid) {
        a->set.grid = g;
        a->insp_cell = a->insp_cell >= g * g ? -1 : a->insp_cell;
        viz_act_changed(a);
    }
}

void viz_act_view(viz_app *a, viz_view v)
{
    a->view = v;
    a->dirty = 1;
}

void viz_act_model_load(viz_app *a, const char *path)
{
    viz_strcpy(a->model_path, sizeof a->model_path, path);
    viz_strcpy(a->model_edit, sizeof a->model_edit, path);
    viz_weights_unref(a->snap);
    a->snap = NULL;
    a->snap_wait = 0; /* a snapshot asked for earlier must not replace this choice */
    a->set.beta1 = 0; /* a new model samples at its own β(1) */
    viz_guide_follow_model(a);
    viz_act_changed(a);
}

/* ---- autoguidance (the guide files are found as worker.h says) ---- */

void viz_guide_follow_model(viz_app *a)
{
    char path[VIZ_PATH_MAX];
    if (!a->snap && viz_guide_path(a->model_path, path, sizeof path))
        viz_strcpy(a->guide_path, sizeof a->guide_path, path);
    else
        a->guide_path[0] = '\0';
    if (!a->guide_path[0])
        a->set.guidance = 1;
}

void viz_act_guidance(viz_app *a, double w)
{
    if (isnan(w))
        return;
    double was = a->set.guidance;
    viz_guide_follow_model(a); /* a guide may have come or gone since the model loaded */
    if (a->snap) {
        viz_act_notice(a, 1, "no guide for a training snapshot: guidance needs a model file");
    } else if (!a->guide_path[0]) {
        char want[VIZ_PATH_MAX];
        viz_guide_path(a->model_path, want, sizeof want);
        viz_act_notice(a, 1, "no guide for this model: guidance needs %s", want);
    } else {
        double steps = round((viz_clampd(w, 1, VIZ_GUIDANCE_MAX) - 1) / VIZ_GUIDANCE_STEP);
        a->set.guidance = 1 + steps * VIZ_GUIDANCE_STEP;
    }
    if (a->set.guidance != was)
        viz_act_changed(a);
}

void viz_act_guide_refused(viz_app *a, const viz_run *r)
{
    viz_act_notice(a, 1, "sampling without guidance: %s", r->guide_refused);
    /* r already is the unguided run, so w = 1 needs no new one */
    if (r->gen == viz_worker_generation(a->worker) && !a->want_submit)
        a->set.guidance = 1;
}

void viz_act_model_cycle(viz_app *a, int dir)
{
    viz_scan_models(a);
    if (!a->n_models) {
        viz_act_notice(a, 1, "no .bfn files in %s or %s", a->model_dir, a->runs_dir);
        return;
    }
    int cur = -1;
    for (int i = 0; i < a->n_models; i++)
        if (!strcmp(a->models[i], a->model_path))
            cur = i;
    int next = cur < 0 ? (dir > 0 ? 0 : a->n_models - 1)
                       : (cur + dir + a->n_models) % a->n_models;
    viz_act_model_load(a, a->models[next]);
}

void viz_act_use_snapshot(viz_app *a)
{
    if (!a->tv->step) {
        viz_act_notice(a, 1, "start training first: there are no trained weights yet");
        return;
    }
    if (a->tv->state == VIZ_TRAIN_IDLE || a->tv->state == VIZ_TRAIN_STARTING) {
        /* the training thread has no trainer to copy from: say so */
        viz_act_notice(a, 1, "no training run is loaded: start one, or open its saved model");
        return;
    }
    a->snap_wait = a->tv->snapshot_serial + 1;
    viz_train_request_snapshot(a->train);
}

void viz_act_zoom(viz_app *a, float zoom)
{
    zoom = (float)viz_clampd(zoom, 0.5, 4);
    char err[256];
    if (zoom == a->zoom)
        return;
    if (viz_text_set_zoom(a->text, zoom, err, sizeof err) != 0) {
        viz_act_notice(a, 1, "%s", err);
        return;
    }
    a->zoom = a->ui.zoom = zoom;
    a->dirty = 1;
}

void viz_act_notice(viz_app *a, int is_error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->notice, sizeof a->notice, fmt, ap);
    va_end(ap);
    a->notice_err = is_error;
    a->notice_until = viz_now() + NOTICE_S;
    a->dirty = 1;
}

void viz_act_train_start(viz_app *a)
{
    viz_train_req q = a->treq;
    if (q.from_model) {
        if (a->snap) {
            viz_act_notice(a, 1, "the viewer shows a snapshot: pick a model file to start from");
            return;
        }
        if (!a->model_path[0]) {
            viz_act_notice(a, 1, "no model in the viewer to start from: open one, or start from scratch");
            return;
        }
        viz_strcpy(q.model_path, sizeof q.model_path, a->model_path);
    }
    viz_train_start(a->train, &q);
    a->dirty = 1;
}

void viz_act_train_pause(viz_app *a)
{
    viz_train_state s = a->tv->state;
    if (s == VIZ_TRAIN_RUNNING || s == VIZ_TRAIN_PAUSED)
        viz_train_pause(a->train, s == VIZ_TRAIN_RUNNING);
    else if (s != VIZ_TRAIN_STARTING)
        viz_act_train_start(a);
}
