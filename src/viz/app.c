/* The app object: creation, the frame loop (events → update → draw when
 * something changed) and the API that tests and the scripted mode use. */
#include "app.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app_internal.h"
#include "bfn/data.h"
#include "bfn/gemm.h"
#include "bfn/image.h"

#define FRAME_MIN_S (1.0 / 60.0) /* draws are paced to at most 60 per second */
#define PLAY_RUN_S 5.0           /* at 1× a whole run plays in this many seconds */
#define TRAIN_REDRAW_HZ 10.0     /* how often training progress may redraw the window */

void viz_options_default(viz_options *o)
{
    memset(o, 0, sizeof *o);
    o->width = 1280;
    o->height = 800;
    o->scale = 1.0;
    o->n_steps = 100;
    o->grid = 4;
    o->seed = 1;
    o->blas_threads = 0; /* one per core, at most VIZ_AUTO_THREADS_MAX */
    o->mem_cap_mb = 256;
    o->preview_every_s = 30;
}

int viz_threads_for(int asked)
{
    if (asked > 0)
        return asked;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1)
        return 1;
    return cores < VIZ_AUTO_THREADS_MAX ? (int)cores : VIZ_AUTO_THREADS_MAX;
}

static int file_exists(const char *p)
{
    struct stat sb;
    return p && stat(p, &sb) == 0;
}

/* The font: the option, else assets/ under the working directory, the source
 * tree or beside the executable's directory, else the system's DejaVu Sans. */
static int find_font(const char *want, char *out, size_t cap)
{
    if (want) {
        viz_strcpy(out, cap, want);
        return file_exists(want);
    }
    if (bfn_locate("assets/fonts/DejaVuSans.ttf", out, cap))
        return 1;
    viz_strcpy(out, cap, "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
    return file_exists(out);
}

static int create_video(viz_app *a, char *err, size_t cap)
{
    if (a->opt.headless) {
        /* No display at all: the software renderer draws into a surface. */
        if (SDL_Init(SDL_INIT_EVENTS | SDL_INIT_TIMER) != 0) {
            viz_fmt(err, cap, "SDL_Init: %s", SDL_GetError());
            return -1;
        }
        a->surf = SDL_CreateRGBSurfaceWithFormat(0, a->opt.width, a->opt.height, 32,
                                                 SDL_PIXELFORMAT_ARGB8888);
        if (a->surf)
            a->ren = SDL_CreateSoftwareRenderer(a->surf);
    } else {
        if (SDL_Init(SDL_INIT_VIDEO | SDL_INIT_EVENTS | SDL_INIT_TIMER) != 0) {
            viz_fmt(err, cap, "SDL_Init: %s (no display? try --headless)", SDL_GetError());
            return -1;
        }
        a->win = SDL_CreateWindow("bfnviz — Bayesian Flow Networks", SDL_WINDOWPOS_CENTERED,
                                  SDL_WINDOWPOS_CENTERED, a->opt.width, a->opt.height,
                                  SDL_WINDOW_RESIZABLE);
        if (a->win) {
            SDL_SetWindowMinimumSize(a->win, 640, 480);
            a->ren = SDL_CreateRenderer(a->win, -1,
                                        SDL_RENDERER_ACCELERATED | SDL_RENDERER_PRESENTVSYNC);
            if (!a->ren)
                a->ren = SDL_CreateRenderer(a->win, -1, SDL_RENDERER_SOFTWARE);
        }
    }
    if (!a->ren) {
        viz_fmt(err, cap, "cannot create a renderer: %s", SDL_GetError());
        return -1;
    }
    SDL_GetRendererOutputSize(a->ren, &a->w, &a->h);
    SDL_RendererInfo info;
    if (SDL_GetRendererInfo(a->ren, &info) == 0) {
        viz_strcpy(a->renderer_name, sizeof a->renderer_name, info.name);
        /* a present that waits for vsync already paces the frames */
        a->frame_min_s = info.flags & SDL_RENDERER_PRESENTVSYNC ? 0 : FRAME_MIN_S;
    } else {
        a->frame_min_s = FRAME_MIN_S;
    }
    SDL_StopTextInput(); /* text events only while a text field has the keyboard */
    return 0;
}

static int create_textures(viz_app *a)
{
    for (int i = 0; i < 256; i++)
        bfn_colormap(i / 255.0f, a->viridis[i]);
    a->cmap_tex = SDL_CreateTexture(a->ren, SDL_PIXELFORMAT_RGB24, SDL_TEXTUREACCESS_STATIC, 256,
                                    1);
    if (!a->cmap_tex)
        return -1;
    SDL_UpdateTexture(a->cmap_tex, NULL, a->viridis, 256 * 3);
    return 0;
}

viz_app *viz_app_create(const viz_options *o, char *err, size_t cap)
{
    viz_app *a = calloc(1, sizeof *a);
    if (!a || !(a->tv = calloc(1, sizeof *a->tv))) {
        free(a);
        viz_fmt(err, cap, "out of memory");
        return NULL;
    }
    a->opt = *o;
    a->opt.scale = viz_clampd(o->scale > 0 ? o->scale : 1, 0.5, 4);
    if (o->models_dir)
        viz_strcpy(a->model_dir, sizeof a->model_dir, o->models_dir);
    else /* the shipped models, also when started outside the repository */
        bfn_locate("models", a->model_dir, sizeof a->model_dir);
    viz_strcpy(a->runs_dir, sizeof a->runs_dir, o->runs_dir ? o->runs_dir : "runs");
    viz_strcpy(a->data_dir, sizeof a->data_dir, o->data_dir ? o->data_dir : "");
    viz_strcpy(a->out_dir, sizeof a->out_dir, o->out_dir ? o->out_dir : "out");
    a->opt.models_dir = a->opt.runs_dir = a->opt.data_dir = a->opt.out_dir = NULL;
    a->opt.font_path = a->opt.model_path = NULL; /* the copies above are the ones used */
    if (!find_font(o->font_path, a->font_path, sizeof a->font_path)) {
        viz_fmt(err, cap, "font not found (%s); run from the repository root or pass --font",
                a->font_path);
        free(a->tv);
        free(a);
        return NULL;
    }
    bfn_gemm_set_threads(viz_threads_for(o->blas_threads));
    a->zoom = (float)a->opt.scale;
    if (create_video(a, err, cap) != 0 ||
        !(a->text = viz_text_create(a->ren, a->font_path, a->zoom, err, cap))) {
        viz_app_destroy(a);
        return NULL;
    }
    viz_ui_init(&a->ui, a->ren, a->text, a->zoom);
    a->ui.mx = a->ui.my = -1;
    a->wake_type = SDL_RegisterEvents(1);
    size_t mem = (o->mem_cap_mb ? o->mem_cap_mb : 256) * (size_t)1 << 20;
    if (a->wake_type == (uint32_t)-1 || create_textures(a) != 0 ||
        !(a->worker = viz_worker_create(a->wake_type, mem)) ||
        !(a->train = viz_train_create(a->wake_type, a->runs_dir)) ||
        !(a->teach = viz_teach_create(a->wake_type))) {
        viz_fmt(err, cap, "cannot start: %s", SDL_GetError());
        viz_app_destroy(a);
        return NULL;
    }
    viz_train_set_preview_interval(a->train, o->preview_every_s > 0 ? o->preview_every_s : 30);

    a->set = (viz_sample_params){.n = viz_clampi(o->n_steps, 1, 1000), .beta1 = o->beta1,
                                 .seed = o->seed, .grid = viz_clampi(o->grid, 1, VIZ_GRID_MAX),
                                 .argmax = o->argmax, .guidance = 1};
    if (o->model_path)
        viz_strcpy(a->model_path, sizeof a->model_path, o->model_path);
    else
        viz_fmt(a->model_path, sizeof a->model_path, "%s/mnist.bfn", a->model_dir);
    viz_strcpy(a->model_edit, sizeof a->model_edit, a->model_path);
    viz_guide_follow_model(a);
    a->view = VIZ_VIEW_THETA;
    a->speed = 1;
    a->tab = VIZ_TAB_INSPECT;
    a->narrow_tab = VIZ_TAB_CONTROLS;
    a->hover_cell = a->insp_cell = -1;
    a->restart_ms = -1;
    a->treq = (viz_train_req){.data = BFN_DATA_MNIST, .size = VIZ_SIZE_TINY, .steps = 2000,
                              .beta1 = 3.0, .seed = 1};
    viz_strcpy(a->treq.data_dir, sizeof a->treq.data_dir, a->data_dir);
    viz_scan_models(a);
    a->want_submit = 1;
    a->dirty = 1;
    a->last_update = viz_now();
    return a;
}

void viz_app_destroy(viz_app *a)
{
    if (!a)
        return;
    viz_worker_destroy(a->worker);
    viz_train_destroy(a->train);
    viz_teach_destroy(a->teach);
    viz_run_unref(a->run);
    viz_run_unref(a->frames_run);
    viz_weights_unref(a->snap);
    if (a->grid_tex)
        SDL_DestroyTexture(a->grid_tex);
    if (a->cmap_tex)
        SDL_DestroyTexture(a->cmap_tex);
    if (a->preview_tex)
        SDL_DestroyTexture(a->preview_tex);
    viz_text_destroy(a->text);
    if (a->ren)
        SDL_DestroyRenderer(a->ren);
    if (a->surf)
        SDL_FreeSurface(a->surf);
    if (a->win)
        SDL_DestroyWindow(a->win);
    SDL_Quit();
    free(a->tv);
    free(a);
}

/* ---- frame loop ---- */

static viz_layout layout(viz_app *a)
{
    viz_ui *ui = &a->ui;
    viz_layout L;
    memset(&L, 0, sizeof L);
    int status_h = viz_ui_px(ui, 28), pad = viz_ui_px(ui, 10);
    int left_w = viz_ui_px(ui, 300), right_w = viz_ui_px(ui, 400);
    int body_h = a->h - status_h;
    L.narrow = a->w < left_w + right_w + viz_ui_px(ui, 420);
    if (L.narrow) {
        left_w = viz_ui_px(ui, 340);
        if (left_w > a->w / 2)
            left_w = a->w / 2;
        right_w = 0;
    }
    L.left = (SDL_Rect){0, 0, left_w, body_h};
    L.right = (SDL_Rect){a->w - right_w, 0, right_w, body_h};
    int cx = left_w + pad, cw = a->w - left_w - right_w - 2 * pad;
    int tl_h = viz_ui_px(ui, 70), lg_h = viz_ui_px(ui, 52);
    L.grid = (SDL_Rect){cx, pad, cw, body_h - tl_h - lg_h - 2 * pad};
    L.legend = (SDL_Rect){cx, L.grid.y + L.grid.h, cw, lg_h};
    L.timeline = (SDL_Rect){cx, L.legend.y + lg_h, cw, tl_h};
    L.status = (SDL_Rect){0, body_h, a->w, status_h};
    return L;
}

static const char *TAB_TIPS[3] = {
    "Sampling settings, views and exports",
    "Pixel inspector and the accuracy schedule",
    "Train a model in the background and watch its loss",
};

/* A row of tab buttons over r; returns the height used. */
static int tab_row(viz_app *a, SDL_Rect r, int narrow)
{
    static const char *names[3] = {"Controls", "Inspect", "Train"};
    static const char *ids[3] = {"tab.controls", "tab.inspect", "tab.train"};
    int first = narrow ? 0 : 1, shown = narrow ? (int)a->narrow_tab : (int)a->tab;
    int h = viz_ui_px(&a->ui, 30), n = 3 - first, gap = viz_ui_px(&a->ui, 4);
    int w = (r.w - (n + 2) * gap) / (n + 1); /* one more button: the teaching mode */
    for (int i = first; i < 3; i++) {
        SDL_Rect b = {r.x + gap + (i - first) * (w + gap), r.y + gap, w, h};
        if (viz_ui_button(&a->ui, ids[i], b, names[i], TAB_TIPS[i], shown == i)) {
            if (narrow)
                a->narrow_tab = (viz_tab)i;
            if (i != VIZ_TAB_CONTROLS)
                a->tab = (viz_tab)i;
            a->dirty = 1;
        }
    }
    if (viz_ui_button(&a->ui, "teach.open", (SDL_Rect){r.x + gap + n * (w + gap), r.y + gap, w, h},
                      "Teach", "Teaching mode: Alice sends an image to Bob (L)", 0))
        viz_teach_toggle(a);
    return h + 2 * gap;
}

static void right_content(viz_app *a, SDL_Rect r)
{
    if (a->tab == VIZ_TAB_TRAIN) {
        viz_train_panel(a, r);
        return;
    }
    int h1 = r.h * 55 / 100;
    viz_inspector_view(a, (SDL_Rect){r.x, r.y, r.w, h1});
    viz_schedule_view(a, (SDL_Rect){r.x, r.y + h1, r.w, r.h - h1});
}

static void status_line(viz_app *a, SDL_Rect r)
{
    viz_ui *ui = &a->ui;
    viz_ui_fill(ui, r, (SDL_Color){16, 17, 21, 255});
    char s[400] = "", t[300] = "";
    const viz_run *run = a->run;
    SDL_Color sc = ui->th.dim;
    char wstat[128];
    viz_worker_status(a->worker, wstat, sizeof wstat);
    if (!strncmp(wstat, "loading", 7)) {
        viz_fmt(s, sizeof s, "%s…", wstat);
    } else if (!run) {
        viz_fmt(s, sizeof s, "starting…");
    } else if (run->gen != viz_worker_generation(a->worker) && !a->want_submit) {
        viz_fmt(s, sizeof s, "restarting with the new settings… (%s)", wstat);
        sc = ui->th.text;
    } else {
        int st = viz_run_get_state(run), done = atomic_load(&run->frames_seen);
        double el = (st == VIZ_RUN_SAMPLING ? viz_now() : run->t_done) - run->t_submit;
        if (st == VIZ_RUN_ERROR) {
            viz_fmt(s, sizeof s, "model error — see the message in the grid area");
            sc = ui->th.error;
        } else if (st == VIZ_RUN_SAMPLING) {
            viz_fmt(s, sizeof s, "sampling: step %d of %d · %.1f steps/s · %d×%d cells", done,
                    run->sp.n, el > 0 ? done / el : 0, run->sp.grid, run->sp.grid);
            sc = ui->th.text;
        } else {
            viz_fmt(s, sizeof s, "%s %d steps in %.2f s · first frame after %.0f ms%s",
                    st == VIZ_RUN_DONE ? "sampled" : "stopped after", done - (st == VIZ_RUN_DONE),
                    el, a->restart_ms,
                    run->stride > 1 ? " · every few steps kept (memory cap)" : "");
        }
    }
    const viz_train_view *tv = a->tv;
    if (tv->state == VIZ_TRAIN_RUNNING || tv->state == VIZ_TRAIN_PAUSED) {
        char eta[32] = "?";
        if (tv->eta_s >= 0)
            viz_fmt(eta, sizeof eta, "%dm%02ds", (int)(tv->eta_s / 60), (int)tv->eta_s % 60);
        viz_fmt(t, sizeof t, "training%s %lld/%lld · loss %.1f · %.0f img/s · ETA %s",
                tv->state == VIZ_TRAIN_PAUSED ? " (paused)" : "", (long long)tv->step,
                (long long)tv->total, tv->loss, tv->images_per_s, eta);
    } else if (tv->state != VIZ_TRAIN_IDLE) {
        viz_fmt(t, sizeof t, "training %s", viz_train_state_name(tv->state));
    }
    int pad = viz_ui_px(ui, 10), ty = r.y + (r.h - viz_ui_line_height(ui, VIZ_FONT_SMALL)) / 2;
    viz_ui_text(ui, VIZ_FONT_SMALL, r.x + pad, ty, sc, s);
    int x2 = r.x + r.w * 45 / 100;
    viz_ui_text(ui, VIZ_FONT_SMALL, x2, ty, ui->th.dim, t);
    if (a->notice[0] && viz_now() < a->notice_until)
        viz_ui_text_right(ui, VIZ_FONT_SMALL, r.x + r.w - pad, ty,
                          a->notice_err ? ui->th.error : ui->th.ok, a->notice);
    else
        viz_ui_text_right(ui, VIZ_FONT_SMALL, r.x + r.w - pad, ty, ui->th.dim, "F1: shortcuts");
}

/* One pass over the whole interface; drawing or only handling input. */
static void pass(viz_app *a, int drawing)
{
    viz_ui *ui = &a->ui;
    viz_ui_begin(ui, drawing, a->w, a->h, viz_now());
    ui->blocked = a->help;
    if (drawing) {
        SDL_SetRenderDrawColor(a->ren, ui->th.bg.r, ui->th.bg.g, ui->th.bg.b, 255);
        SDL_RenderClear(a->ren);
    }
    if (a->teach_on) {
        viz_teach_pass(a);
        viz_ui_end(ui);
        return;
    }
    viz_layout L = layout(a);
    /* the grid first: it decides which pixel the inspector shows */
    viz_ui_text_area(ui, (SDL_Rect){L.grid.x, 0, L.grid.w, L.status.y});
    viz_grid_view(a, L.grid);
    viz_legend_view(a, L.legend);
    viz_timeline_view(a, L.timeline);
    a->narrow = L.narrow;
    viz_ui_text_area(ui, L.left);
    if (L.narrow) {
        viz_ui_fill(ui, L.left, ui->th.panel);
        int th = tab_row(a, L.left, 1);
        SDL_Rect body = {L.left.x, L.left.y + th, L.left.w, L.left.h - th};
        if (a->narrow_tab == VIZ_TAB_CONTROLS)
            viz_controls_panel(a, body);
        else
            right_content(a, body);
    } else {
        viz_controls_panel(a, L.left);
        viz_ui_text_area(ui, L.right);
        viz_ui_fill(ui, L.right, ui->th.panel);
        int th = tab_row(a, L.right, 0);
        right_content(a, (SDL_Rect){L.right.x, L.right.y + th, L.right.w, L.right.h - th});
    }
    viz_ui_text_area(ui, L.status);
    status_line(a, L.status);
    viz_ui_text_area(ui, (SDL_Rect){0, 0, a->w, a->h});
    if (a->help)
        viz_help_overlay(a);
    viz_ui_end(ui);
}

static void wake_handled(viz_app *a, const SDL_Event *e)
{
    if (e->user.code == 1)
        viz_worker_ack(a->worker);
    else if (e->user.code == VIZ_TEACH_WAKE_CODE)
        viz_teach_ack(a);
    else
        viz_train_ack(a->train);
}

static void handle_event(viz_app *a, const SDL_Event *e)
{
    viz_ui *ui = &a->ui;
    switch (e->type) {
    case SDL_QUIT:
        a->quit = 1;
        break;
    case SDL_WINDOWEVENT:
        if (e->window.event == SDL_WINDOWEVENT_SIZE_CHANGED ||
            e->window.event == SDL_WINDOWEVENT_EXPOSED)
            SDL_GetRendererOutputSize(a->ren, &a->w, &a->h);
        if (e->window.event == SDL_WINDOWEVENT_LEAVE)
            ui->mx = ui->my = -1;
        a->dirty = 1;
        break;
    case SDL_MOUSEMOTION:
        ui->mx = e->motion.x;
        ui->my = e->motion.y;
        a->dirty = 1;
        break;
    case SDL_MOUSEBUTTONDOWN:
    case SDL_MOUSEBUTTONUP: {
        int down = e->type == SDL_MOUSEBUTTONDOWN;
        ui->mx = e->button.x;
        ui->my = e->button.y;
        a->dirty = 1;
        if (a->help) {
            if (down)
                a->help = 0; /* any click closes the cheat sheet */
            break;
        }
        if (e->button.button == SDL_BUTTON_RIGHT && down) {
            a->insp_pinned = 0; /* right click lets the inspector follow the mouse again */
            break;
        }
        if (e->button.button != SDL_BUTTON_LEFT)
            break;
        ui->mouse_down = down;
        ui->pressed = down;
        ui->released = !down;
        pass(a, 0);
        break;
    }
    case SDL_MOUSEWHEEL:
        ui->wheel += e->wheel.y;
        pass(a, 0);
        a->dirty = 1;
        break;
    case SDL_KEYDOWN:
        a->dirty = 1;
        if (viz_ui_editing(ui)) {
            ui->key = e->key.keysym.sym;
            pass(a, 0);
        } else {
            viz_keys_handle(a, e->key.keysym.sym, e->key.keysym.mod);
        }
        break;
    case SDL_TEXTINPUT:
        if (viz_ui_editing(ui)) {
            viz_strcpy(ui->text_in, sizeof ui->text_in, e->text.text);
            pass(a, 0);
            a->dirty = 1;
        }
        break;
    default:
        if (e->type == a->wake_type)
            wake_handled(a, e);
        break;
    }
}

static void submit(viz_app *a)
{
    viz_sample_req req;
    memset(&req, 0, sizeof req);
    req.sp = a->set;
    viz_strcpy(req.model_path, sizeof req.model_path, a->model_path);
    req.weights = a->snap;
    viz_worker_submit(a->worker, &req);
    a->want_submit = 0;
}

/* Positions per second of playback: at 1× a whole run takes PLAY_RUN_S. */
static double play_rate(const viz_app *a)
{
    return a->speed * fmax(2.0, (viz_positions(a) - 1) / PLAY_RUN_S);
}

static void update(viz_app *a, double now)
{
    double dt = now - a->last_update;
    a->last_update = now;
    /* training news redraws at most TRAIN_REDRAW_HZ unless its state changed */
    uint64_t ts = viz_train_serial(a->train);
    if (ts != a->tv_serial && now - a->train_seen_t >= 1.0 / TRAIN_REDRAW_HZ) {
        a->tv_serial = ts;
        a->train_seen_t = now;
        viz_train_get(a->train, a->tv);
        a->dirty = 1;
        a->train_pending = 0;
        if (a->snap_wait && a->tv->snapshot_serial >= a->snap_wait) {
            viz_weights *w = viz_train_snapshot(a->train);
            if (w) {
                viz_weights_unref(a->snap);
                a->snap = w;
                a->set.beta1 = 0;
                viz_guide_follow_model(a);
                viz_fmt(a->model_edit, sizeof a->model_edit, "(training snapshot, step %lld)",
                        (long long)w->step);
                a->want_submit = 1;
            }
            a->snap_wait = 0;
        }
    } else if (ts != a->tv_serial) {
        a->train_pending = 1; /* picked up when the throttle allows */
    }
    /* the teaching mode runs its own lessons; it only needs the model's description */
    if (a->want_submit && (!a->teach_on || !a->run))
        submit(a);
    viz_teach_update(a, now, dt);

    /* Switch to the newest run once it has something to show, so that a
     * restart never blanks the screen while the model loads. */
    viz_run *r = viz_worker_take(a->worker, a->run ? a->run->gen : 0);
    if (r) {
        int st = viz_run_get_state(r);
        if (viz_run_ready(r) > 0 || st == VIZ_RUN_ERROR || st == VIZ_RUN_DONE || !a->run) {
            viz_run_unref(a->run);
            a->run = r;
            a->pos = 0;
            a->playing = 1;
            a->seen_ready = -1;
            a->restart_ms = -1;
            a->dirty = 1;
            if (r->guide_refused[0])
                viz_act_guide_refused(a, r);
        } else {
            viz_run_unref(r);
        }
    }
    if (a->run) {
        int ready = viz_run_ready(a->run), st = viz_run_get_state(a->run);
        if (ready != a->seen_ready || st != a->seen_state) {
            a->seen_ready = ready;
            a->seen_state = st;
            a->dirty = 1;
        }
        if (a->restart_ms < 0 && ready > 0)
            a->restart_ms = (a->run->t_first - a->run->t_submit) * 1000;
    }
    if (a->playing) {
        /* redraw only when the shown position changes */
        int before = viz_pos(a), last = viz_positions_ready(a) - 1;
        a->pos = fmin(a->pos + dt * play_rate(a), (double)last);
        if (viz_run_finished(a->run) && a->pos >= viz_positions(a) - 1) {
            a->playing = 0;
            a->dirty = 1;
        }
        if (viz_pos(a) != before)
            a->dirty = 1;
    }
    if (a->frames_run)
        viz_export_step(a);
    if (viz_ui_tip_due(&a->ui, now))
        a->dirty = 1;
    if (a->notice[0] && now >= a->notice_until && a->notice_until > 0) {
        a->notice_until = 0;
        a->dirty = 1;
    }
}

static void draw(viz_app *a)
{
    double t0 = viz_now();
    pass(a, 1);
    if (a->want_view_png) {
        a->want_view_png = 0;
        char err[BFN_ERR_MSG_MAX];
        if (viz_app_screenshot(a, a->view_png_path, err, sizeof err) == 0)
            viz_act_notice(a, 0, "wrote %s", a->view_png_path);
        else
            viz_act_notice(a, 1, "%s", err);
    }
    double ms = (viz_now() - t0) * 1000; /* the work; presenting may wait for vsync */
    SDL_RenderPresent(a->ren);
    viz_text_end_frame(a->text);
    a->dirty = 0;
    a->frames_drawn++;
    a->stat_frames++;
    a->stat_ms_sum += ms;
    a->stat_slow += ms > 1000.0 * FRAME_MIN_S;
    if (ms > a->stat_ms_max)
        a->stat_ms_max = ms;
    if (t0 - a->last_draw < 0.1) { /* part of a continuous animation */
        a->stat_anim_frames++;
        a->stat_anim_s += t0 - a->last_draw;
    }
    a->last_draw = t0;
}

/* Milliseconds to block waiting for events; -1: until one arrives. */
static int idle_timeout(viz_app *a, double now)
{
    double t = -1;
    if (a->dirty || a->frames_run)
        t = fmax(0, a->last_draw + a->frame_min_s - now);
    else if (a->playing && viz_pos(a) < viz_positions_ready(a) - 1)
        t = (floor(a->pos) + 1 - a->pos) / play_rate(a); /* until the next position */
    if (a->train_pending) {
        double tt = fmax(0, a->train_seen_t + 1.0 / TRAIN_REDRAW_HZ - now);
        if (t < 0 || tt < t)
            t = tt;
    }
    double tip = viz_ui_next_wake(&a->ui);
    if (tip >= 0 && (t < 0 || tip < t))
        t = tip;
    if (a->notice_until > 0 && (t < 0 || a->notice_until - now < t))
        t = fmax(0, a->notice_until - now);
    double tw = viz_teach_next_wake(a);
    if (tw >= 0 && (t < 0 || tw < t))
        t = tw;
    if (a->run && viz_run_get_state(a->run) == VIZ_RUN_SAMPLING && (t < 0 || t > 0.5))
        t = 0.5; /* keeps the steps/s figure moving during slow steps */
    return t < 0 ? -1 : (int)(t * 1000) + 1;
}

int viz_app_run(viz_app *a)
{
    while (!a->quit) {
        int timeout = idle_timeout(a, viz_now());
        SDL_Event e;
        int got = timeout < 0 ? SDL_WaitEvent(&e) : SDL_WaitEventTimeout(&e, timeout);
        if (got) {
            handle_event(a, &e);
            while (!a->quit && SDL_PollEvent(&e))
                handle_event(a, &e);
        }
        double now = viz_now();
        update(a, now);
        if (a->dirty && now - a->last_draw >= a->frame_min_s)
            draw(a);
    }
    return 0;
}

void viz_app_run_frames(viz_app *a, int n)
{
    for (int i = 0; i < n; i++) {
        SDL_Event e;
        while (SDL_PollEvent(&e))
            handle_event(a, &e);
        update(a, viz_now());
        draw(a);
    }
}

int viz_app_wait_run(viz_app *a, double timeout_s)
{
    double end = viz_now() + timeout_s;
    while (!a->quit) {
        viz_app_run_frames(a, 1);
        if (a->teach_on && viz_teach_settled(a))
            return 1;
        if (!a->teach_on && a->run && !a->want_submit &&
            a->run->gen == viz_worker_generation(a->worker) && viz_run_finished(a->run))
            return 1;
        if (viz_now() > end)
            return 0;
        SDL_Delay(5);
    }
    return 0;
}

int viz_app_quit_requested(const viz_app *a) { return a->quit; }

Uint32 viz_push_quit(Uint32 interval, void *user)
{
    (void)interval;
    (void)user;
    SDL_Event e;
    memset(&e, 0, sizeof e);
    e.type = SDL_QUIT;
    SDL_PushEvent(&e);
    return 0;
}

void viz_app_reset_stats(viz_app *a)
{
    a->stat_frames = a->stat_slow = a->stat_anim_frames = 0;
    a->stat_ms_sum = a->stat_ms_max = a->stat_anim_s = 0;
}

/* ---- test and script API ---- */

int viz_app_push_event(viz_app *a, const SDL_Event *e)
{
    (void)a;
    SDL_Event copy = *e;
    return SDL_PushEvent(&copy) == 1;
}

void viz_app_mouse_move(viz_app *a, int x, int y)
{
    SDL_Event e;
    memset(&e, 0, sizeof e);
    e.type = SDL_MOUSEMOTION;
    e.motion.x = x;
    e.motion.y = y;
    viz_app_push_event(a, &e);
}

void viz_app_mouse_button(viz_app *a, int x, int y, int down)
{
    SDL_Event e;
    memset(&e, 0, sizeof e);
    e.type = down ? SDL_MOUSEBUTTONDOWN : SDL_MOUSEBUTTONUP;
    e.button.button = SDL_BUTTON_LEFT;
    e.button.state = down ? SDL_PRESSED : SDL_RELEASED;
    e.button.clicks = 1;
    e.button.x = x;
    e.button.y = y;
    viz_app_push_event(a, &e);
}

void viz_app_key(viz_app *a, SDL_Keycode key, Uint16 mod)
{
    SDL_Event e;
    memset(&e, 0, sizeof e);
    e.type = SDL_KEYDOWN;
    e.key.state = SDL_PRESSED;
    e.key.keysym.sym = key;
    e.key.keysym.scancode = SDL_GetScancodeFromKey(key);
    e.key.keysym.mod = mod;
    viz_app_push_event(a, &e);
}

void viz_app_type(viz_app *a, const char *text)
{
    SDL_Event e;
    memset(&e, 0, sizeof e);
    e.type = SDL_TEXTINPUT;
    viz_strcpy(e.text.text, sizeof e.text.text, text);
    viz_app_push_event(a, &e);
}

uint8_t *viz_app_read_pixels(viz_app *a, int *w, int *h)
{
    uint8_t *rgb = malloc((size_t)a->w * a->h * 3);
    if (!rgb)
        return NULL;
    if (SDL_RenderReadPixels(a->ren, NULL, SDL_PIXELFORMAT_RGB24, rgb, a->w * 3) != 0) {
        free(rgb);
        return NULL;
    }
    *w = a->w;
    *h = a->h;
    return rgb;
}

int viz_app_screenshot(viz_app *a, const char *path, char *err, size_t cap)
{
    int w, h;
    uint8_t *rgb = viz_app_read_pixels(a, &w, &h);
    if (!rgb) {
        viz_fmt(err, cap, "cannot read the window's pixels: %s", SDL_GetError());
        return -1;
    }
    bfn_err e = {0};
    bfn_status st = bfn_png_write_rgb(path, rgb, h, w, &e);
    free(rgb);
    if (st != BFN_OK) {
        viz_fmt(err, cap, "%s", e.msg);
        return -1;
    }
    return 0;
}

void viz_app_set_guidance(viz_app *a, double w)
{
    viz_act_guidance(a, w);
}

int viz_app_widget_rect(viz_app *a, const char *id, SDL_Rect *r)
{
    return viz_ui_widget_rect(&a->ui, id, r);
}

int viz_app_pixel_pos(viz_app *a, int cell, int x, int y, int *sx, int *sy)
{
    if (!a->run || cell < 0 || cell >= a->n_cells_drawn)
        return 0;
    const viz_model_info *m = &a->run->model;
    SDL_Rect c = a->cell_rect[cell];
    *sx = c.x + (int)((x + 0.5) * c.w / m->W);
    *sy = c.y + (int)((y + 0.5) * c.h / m->H);
    return 1;
}

void viz_app_get_state(viz_app *a, viz_app_state *s)
{
    memset(s, 0, sizeof *s);
    s->text_cut = a->ui.text_cut;
    viz_strcpy(s->text_cut_what, sizeof s->text_cut_what, a->ui.text_cut_what);
    if (a->notice[0] && viz_now() < a->notice_until) {
        viz_strcpy(s->notice, sizeof s->notice, a->notice);
        s->notice_err = a->notice_err;
    }
    s->text_shortened = a->ui.text_shortened;
    viz_strcpy(s->text_shortened_what, sizeof s->text_shortened_what, a->ui.text_shortened_what);
    s->settings = a->set;
    viz_strcpy(s->model_path, sizeof s->model_path, a->model_path);
    s->guide_available = a->guide_path[0] != '\0';
    s->view = a->view;
    s->playing = a->playing;
    s->speed = a->speed;
    s->position = viz_pos(a);
    s->positions = viz_positions(a);
    s->shown_step = viz_pos_step(a, viz_pos(a));
    if (a->run) {
        s->run_gen = a->run->gen;
        s->run_state = viz_run_get_state(a->run);
        s->run_ready = viz_run_ready(a->run);
        s->run_slots = a->run->n_slots;
        viz_strcpy(s->model_label, sizeof s->model_label, a->run->model.label);
        viz_strcpy(s->guide, sizeof s->guide, a->run->guide);
        if (s->run_state == VIZ_RUN_ERROR)
            viz_strcpy(s->error, sizeof s->error, a->run->error);
    }
    s->frames_drawn = a->frames_drawn;
    s->insp_cell = a->insp_cell;
    s->insp_x = a->insp_cell >= 0 ? a->insp_x : -1;
    s->insp_y = a->insp_cell >= 0 ? a->insp_y : -1;
    s->help_open = a->help;
    s->train_state = a->tv->state;
    s->train_step = a->tv->step;
    s->train_loss = a->tv->loss;
    s->train_previews = a->tv->preview_serial;
    viz_strcpy(s->train_message, sizeof s->train_message, a->tv->message);
    s->restart_ms = a->restart_ms;
    s->frame_ms_avg = a->stat_frames ? a->stat_ms_sum / a->stat_frames : 0;
    s->frame_ms_max = a->stat_ms_max;
    s->frames_slow = a->stat_slow;
    s->anim_fps = a->stat_anim_s > 0 ? a->stat_anim_frames / a->stat_anim_s : 0;
    viz_strcpy(s->renderer, sizeof s->renderer, a->renderer_name);
    /* the status line as text, for scripts and tests */
    char w[128];
    viz_worker_status(a->worker, w, sizeof w);
    viz_fmt(s->status, sizeof s->status, "worker: %s", w);
}

viz_run *viz_app_run_ref(viz_app *a) { return viz_run_ref(a->run); }

int viz_app_inspector(viz_app *a, float *theta, float *p, float *y, uint8_t *k, int cap)
{
    const viz_run *r = a->run;
    if (!viz_insp_in_run(a) || viz_run_get_state(r) == VIZ_RUN_ERROR)
        return 0;
    int n = viz_run_ready(r), px = a->insp_y * r->model.W + a->insp_x;
    if (n > cap)
        n = cap;
    for (int s = 0; s < n; s++) {
        size_t o = viz_run_at(r, s, a->insp_cell, px);
        if (theta)
            theta[s] = viz_run_theta(r, s, a->insp_cell, px);
        if (p)
            p[s] = viz_run_p(r, s, a->insp_cell, px);
        if (y)
            y[s] = r->y[o];
        if (k)
            k[s] = r->k[o];
    }
    return n;
}
