/* The teaching mode's state and actions: Alice's image (a shipped test digit
 * or the drawing canvas), the lesson requests to teach_job.c, the shared
 * timeline, keys and the state tests read. Drawing is in teach_view.c. */
#include "teach.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app_internal.h"
#include "bfn/data.h"
#include "teach_internal.h"

#define PLAY_RUN_S 6.0        /* at 1× a whole lesson plays in this many seconds */
#define EVAL_DRAWS 48         /* copies of x for the model's L^n of the image */
#define DIGIT_STREAM 0x54454143U

/* ---- the shipped digits (assets/teach/digits.pgm, see its README) ---- */

static int open_asset(const char *rel, FILE **f)
{
    char p[VIZ_PATH_MAX];
    bfn_locate(rel, p, sizeof p);
    *f = fopen(p, "rb");
    return *f != NULL;
}

/* Next header token of a PGM, collecting "# labels …" from the comments. */
static int pgm_token(FILE *f, char *labels, size_t cap)
{
    int c;
    for (;;) {
        c = fgetc(f);
        if (c == '#') {
            char line[256];
            if (!fgets(line, sizeof line, f))
                return -1;
            if (!strncmp(line, " labels ", 8)) {
                viz_strcpy(labels, cap, line + 8);
                labels[strcspn(labels, "\r\n")] = '\0';
            }
        } else if (c == EOF) {
            return -1;
        } else if (c > ' ') {
            break;
        }
    }
    int v = 0;
    while (c >= '0' && c <= '9') {
        v = v * 10 + (c - '0');
        if (v > 1 << 20)
            return -1;
        c = fgetc(f);
    }
    return v;
}

static void load_digits(viz_teach *t)
{
    FILE *f;
    if (!open_asset("assets/teach/digits.pgm", &f)) {
        viz_fmt(t->error, sizeof t->error,
                "assets/teach/digits.pgm not found: run from the repository root, or draw a digit");
        return;
    }
    char magic[3] = {0};
    int ok = fread(magic, 1, 2, f) == 2 && !strcmp(magic, "P5");
    int w = ok ? pgm_token(f, t->labels, sizeof t->labels) : -1;
    int h = ok ? pgm_token(f, t->labels, sizeof t->labels) : -1;
    int mx = ok ? pgm_token(f, t->labels, sizeof t->labels) : -1;
    ok = ok && w == DIGIT_SIDE && h > 0 && h % DIGIT_SIDE == 0 && mx == 255;
    if (ok) {
        t->n_digits = h / DIGIT_SIDE;
        t->digits = malloc((size_t)w * h);
        ok = t->digits && fread(t->digits, 1, (size_t)w * h, f) == (size_t)w * h;
    }
    fclose(f);
    if (!ok) {
        free(t->digits);
        t->digits = NULL;
        t->n_digits = 0;
        viz_fmt(t->error, sizeof t->error, "assets/teach/digits.pgm is not a 28-wide P5 PGM");
    }
}

viz_teach *viz_teach_create(uint32_t wake_type)
{
    viz_teach *t = calloc(1, sizeof *t);
    if (!t || !(t->job = viz_teach_job_create(wake_type)) ||
        !(t->req = calloc(1, sizeof *t->req))) {
        if (t)
            viz_teach_job_destroy(t->job);
        free(t);
        return NULL;
    }
    load_digits(t);
    t->source = t->n_digits ? VIZ_SRC_DIGIT : VIZ_SRC_DRAW;
    t->mode = BFN_TEACH_ALICE;
    t->mask = VIZ_MASK_TOP;
    t->method = BFN_INPAINT_CLAMP;
    t->b = (viz_lesson_params){.n = 10, .beta1 = 0, .argmax = 0};
    t->captions = 1;
    t->stop = -1;
    t->focus = -1;
    t->tour_pos = -1;
    t->speed = 1;
    t->want = 1;
    return t;
}

void viz_teach_destroy(viz_teach *t)
{
    if (!t)
        return;
    viz_teach_job_destroy(t->job);
    viz_lesson_unref(t->les[0]);
    viz_lesson_unref(t->les[1]);
    if (t->tex)
        SDL_DestroyTexture(t->tex);
    free(t->digits);
    free(t->req);
    free(t);
}

/* ---- Alice's image ---- */

/* Model size from the main run (the same model file). 0 if unknown. */
static int model_dims(const viz_app *a, int *K, int *H, int *W)
{
    const viz_run *r = a->run;
    if (!r || viz_run_get_state(r) == VIZ_RUN_ERROR)
        return 0;
    *K = r->model.K;
    *H = r->model.H;
    *W = r->model.W;
    return 1;
}

static void mask_fill(uint8_t *known, int H, int W, viz_teach_mask m)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            known[y * W + x] = m == VIZ_MASK_TOP      ? y < H / 2
                               : m == VIZ_MASK_BOTTOM ? y >= H / 2
                               : m == VIZ_MASK_LEFT   ? x < W / 2
                                                      : x >= W / 2;
}

SDL_Rect viz_teach_mask_rect(viz_teach_mask m, int H, int W)
{
    switch (m) {
    case VIZ_MASK_TOP:
        return (SDL_Rect){0, 0, W, H / 2};
    case VIZ_MASK_BOTTOM:
        return (SDL_Rect){0, H / 2, W, H - H / 2};
    case VIZ_MASK_LEFT:
        return (SDL_Rect){0, 0, W / 2, H};
    default:
        return (SDL_Rect){W / 2, 0, W - W / 2, H};
    }
}

/* x for the current source at H × W; returns 0 (with t->error) if impossible. */
static int build_image(viz_app *a, int H, int W, uint8_t *x)
{
    viz_teach *t = a->teach;
    if (t->source == VIZ_SRC_DRAW) {
        if (t->cH != H || t->cW != W) {
            memset(t->canvas, 0, sizeof t->canvas);
            t->cH = H;
            t->cW = W;
        }
        memcpy(x, t->canvas, (size_t)H * W);
        return 1;
    }
    if (!t->n_digits)
        return 0;
    if (H != DIGIT_SIDE || W != DIGIT_SIDE) {
        viz_fmt(t->error, sizeof t->error,
                "the test digits are 28×28 and this model draws %d×%d images: draw one (D)", H,
                W);
        return 0;
    }
    /* one fixed binarization per digit (each pixel Bernoulli(v/255)) */
    bfn_rng r;
    bfn_rng_init(&r, 1000 + (uint64_t)t->digit, DIGIT_STREAM);
    bfn_binarize(x, t->digits + (size_t)t->digit * DIGIT_SIDE * DIGIT_SIDE,
                 (size_t)DIGIT_SIDE * DIGIT_SIDE, &r);
    return 1;
}

/* What the next lesson would be: 1; 0 (with t->error) if none can be made from
 * these settings, -1 if the model is not there yet. */
static int make_request(viz_app *a, viz_teach_req *q)
{
    viz_teach *t = a->teach;
    int K, H, W;
    t->error[0] = '\0';
    if (!model_dims(a, &K, &H, &W)) {
        viz_fmt(t->error, sizeof t->error, a->run ? "the model did not load: %.400s"
                                                  : "loading the model%.0s…",
                a->run ? a->run->error : "");
        return -1;
    }
    if (K != 2) {
        viz_fmt(t->error, sizeof t->error,
                "the teaching mode shows K = 2 (binary) models; this one has K = %d", K);
        return 0;
    }
    if ((size_t)H * W > VIZ_TEACH_D_MAX) {
        viz_fmt(t->error, sizeof t->error, "images of %d×%d are too large to teach with", H, W);
        return 0;
    }
    memset(q, 0, sizeof *q);
    viz_strcpy(q->model_path, sizeof q->model_path, a->model_path);
    q->H = H;
    q->W = W;
    if (!build_image(a, H, W, q->x))
        return 0;
    q->has_mask = t->inpaint && t->mode == BFN_TEACH_BOB;
    if (q->has_mask)
        mask_fill(q->known, H, W, t->mask);
    q->inpaint = t->method;
    q->mode = t->mode;
    q->seed = a->set.seed;
    q->sides = t->sbs ? 2 : 1;
    q->lp[0] = (viz_lesson_params){.n = viz_clampi(a->set.n, 1, VIZ_TEACH_N_MAX),
                                   .beta1 = viz_beta_or_model(a, a->set.beta1), .argmax = a->set.argmax};
    q->lp[1] = (viz_lesson_params){.n = viz_clampi(t->b.n, 1, VIZ_TEACH_N_MAX),
                                   .beta1 = viz_beta_or_model(a, t->b.beta1), .argmax = t->b.argmax};
    q->eval_draws = EVAL_DRAWS;
    return 1;
}

static int params_equal(const viz_lesson_params *p, const viz_lesson_params *q)
{
    return p->n == q->n && p->beta1 == q->beta1 && p->argmax == q->argmax;
}

/* Field by field: a struct's padding bytes are not part of its value. */
static int req_equal(const viz_teach_req *p, const viz_teach_req *q)
{
    size_t d = (size_t)p->H * (size_t)p->W;
    return !strcmp(p->model_path, q->model_path) && p->H == q->H && p->W == q->W &&
           !memcmp(p->x, q->x, d) && p->has_mask == q->has_mask &&
           (!p->has_mask || !memcmp(p->known, q->known, d)) && p->inpaint == q->inpaint &&
           p->mode == q->mode && p->seed == q->seed && p->sides == q->sides &&
           params_equal(&p->lp[0], &q->lp[0]) &&
           (p->sides < 2 || params_equal(&p->lp[1], &q->lp[1])) && p->eval_draws == q->eval_draws;
}

static void submit_if_changed(viz_app *a)
{
    viz_teach *t = a->teach;
    if (t->stroke)
        return; /* the drawing is sent when the stroke ends */
    int made = make_request(a, t->req);
    t->retry = made < 0; /* ask again soon; other errors wait for the user's next change */
    if (made <= 0)
        return;
    if (!t->want && t->submitted && req_equal(t->req, &t->last))
        return;
    t->last = *t->req;
    t->submitted = 1;
    t->want = 0;
    viz_teach_job_submit(t->job, t->req);
    a->dirty = 1;
}

/* ---- the shared timeline ---- */

int viz_teach_positions_max(const viz_teach *t)
{
    int M = 0;
    for (int s = 0; s < t->sides; s++)
        if (t->les[s]->lp.n > M)
            M = t->les[s]->lp.n;
    return M;
}

int viz_teach_step_at(const viz_lesson *l, int M, int pos)
{
    const int n = l->lp.n;
    if (pos <= 0 || M <= 0)
        return 0;
    if (pos > M)
        return n + 1;
    return (int)floor((double)pos * n / M + 1e-9); /* the step whose t_i = i/n <= pos/M */
}

/* Positions whose every side has data (prior included). */
static int positions_ready(const viz_teach *t)
{
    int M = viz_teach_positions_max(t), lim = M + 1;
    if (!t->sides)
        return 1;
    for (int s = 0; s < t->sides; s++) {
        const viz_lesson *l = t->les[s];
        int ready = viz_lesson_ready(l), p;
        if (ready >= l->n_slots)
            p = M + 1;
        else
            p = (int)floor((double)ready * M / l->lp.n + 1e-9);
        if (p < lim)
            lim = p;
    }
    return lim + 1;
}

static int lesson_finished(const viz_teach *t)
{
    for (int s = 0; s < t->sides; s++)
        if (viz_lesson_get_state(t->les[s]) == VIZ_LESSON_RUNNING)
            return 0;
    return t->sides > 0;
}

int viz_teach_pos(const viz_app *a) { return (int)a->teach->pos; }

void viz_teach_seek(viz_app *a, int pos)
{
    viz_teach *t = a->teach;
    t->pos = viz_clampi(pos, 0, positions_ready(t) - 1);
    a->dirty = 1;
}

void viz_teach_play(viz_app *a, int play)
{
    viz_teach *t = a->teach;
    t->playing = play < 0 ? !t->playing : play;
    if (t->playing && lesson_finished(t) && (int)t->pos >= viz_teach_positions_max(t) + 1)
        t->pos = 0;
    a->dirty = 1;
}

static double play_rate(const viz_teach *t)
{
    return t->speed * fmax(2.0, viz_teach_positions_max(t) / PLAY_RUN_S);
}

void viz_teach_update(viz_app *a, double now, double dt)
{
    (void)now;
    viz_teach *t = a->teach;
    if (!a->teach_on)
        return;
    submit_if_changed(a);
    viz_lesson *ls[2];
    int n = viz_teach_job_take(t->job, t->have_gen, ls);
    if (n > 0) {
        viz_lesson_unref(t->les[0]);
        viz_lesson_unref(t->les[1]);
        t->les[0] = ls[0];
        t->les[1] = ls[1];
        t->sides = n;
        t->have_gen = ls[0]->gen;
        t->pos = 0;
        t->playing = 1;
        t->tex_key.gen = 0;
        a->dirty = 1;
    }
    if (t->sides) {
        int ready = positions_ready(t), st = lesson_finished(t);
        int ev = atomic_load(&t->les[0]->eval_state) * 3 +
                 (t->sides > 1 ? atomic_load(&t->les[1]->eval_state) : 0);
        if (ready != t->seen_ready || st != t->seen_state || ev != t->seen_eval) {
            t->seen_ready = ready;
            t->seen_state = st;
            t->seen_eval = ev;
            a->dirty = 1;
        }
        /* a tour stop that asked for a moment of the lesson goes there once it exists */
        if (t->tour_pos >= 0 && !t->want && t->have_gen == viz_teach_job_generation(t->job)) {
            int target = (int)lround(t->tour_pos * (viz_teach_positions_max(t) + 1) / 1000.0);
            if (target < ready) {
                t->pos = target;
                t->playing = 0;
                t->tour_pos = -1;
                a->dirty = 1;
            }
        }
    }
    if (t->playing && t->sides) {
        int before = (int)t->pos, last = positions_ready(t) - 1;
        t->pos = fmin(t->pos + dt * play_rate(t), (double)last);
        if (lesson_finished(t) && t->pos >= viz_teach_positions_max(t) + 1) {
            t->playing = 0;
            a->dirty = 1;
        }
        if ((int)t->pos != before)
            a->dirty = 1;
    }
}

double viz_teach_next_wake(viz_app *a)
{
    viz_teach *t = a->teach;
    if (!a->teach_on)
        return -1;
    if (t->retry || (t->want && !t->error[0]) || (t->tour_pos >= 0 && t->sides))
        return 0.05;
    if (t->playing && t->sides && (int)t->pos < positions_ready(t) - 1)
        return (floor(t->pos) + 1 - t->pos) / play_rate(t);
    return -1;
}

void viz_teach_ack(viz_app *a) { viz_teach_job_ack(a->teach->job); }

int viz_teach_settled(viz_app *a)
{
    viz_teach *t = a->teach;
    if (t->want || t->stroke || viz_teach_job_busy(t->job) || !t->sides ||
        t->have_gen != viz_teach_job_generation(t->job))
        return 0;
    for (int s = 0; s < t->sides; s++)
        if (atomic_load(&t->les[s]->eval_state) == VIZ_EVAL_RUNNING)
            return 0;
    return lesson_finished(t);
}

/* ---- actions ---- */

void viz_teach_toggle(viz_app *a)
{
    viz_teach *t = a->teach;
    a->teach_on = !a->teach_on;
    a->help = 0;
    if (a->teach_on) {
        t->want = 1;
    } else {
        t->playing = 0;
        t->stroke = 0;
    }
    a->dirty = 1;
}

void viz_teach_set_mode(viz_app *a, bfn_teach_mode m)
{
    a->teach->mode = m;
    if (m == BFN_TEACH_ALICE)
        a->teach->inpaint = 0; /* Alice sends every pixel: nothing to complete */
    a->dirty = 1;
}

void viz_teach_set_source(viz_app *a, viz_teach_source s)
{
    viz_teach *t = a->teach;
    if (s == VIZ_SRC_DIGIT && !t->n_digits)
        return;
    t->source = s;
    a->dirty = 1;
}

void viz_teach_digit(viz_app *a, int delta)
{
    viz_teach *t = a->teach;
    if (!t->n_digits)
        return;
    t->digit = ((t->digit + delta) % t->n_digits + t->n_digits) % t->n_digits;
    t->source = VIZ_SRC_DIGIT;
    a->dirty = 1;
}

void viz_teach_clear_canvas(viz_app *a)
{
    viz_teach *t = a->teach;
    memset(t->canvas, 0, sizeof t->canvas);
    t->want = 1;
    a->dirty = 1;
}

void viz_teach_set_inpaint(viz_app *a, int on, viz_teach_mask mask)
{
    viz_teach *t = a->teach;
    t->inpaint = on;
    t->mask = mask;
    if (on)
        t->mode = BFN_TEACH_BOB; /* Bob completes the image: nobody sends the rest */
    a->dirty = 1;
}

void viz_teach_set_side_by_side(viz_app *a, int on)
{
    a->teach->sbs = on;
    a->dirty = 1;
}

void viz_teach_set_b(viz_app *a, int n, double beta1, int argmax)
{
    viz_teach *t = a->teach;
    t->b.n = viz_clampi(n, 1, VIZ_TEACH_N_MAX);
    t->b.beta1 = beta1 > 0 ? viz_clampd(beta1, 0.1, 30) : 0;
    t->b.argmax = argmax;
    a->dirty = 1;
}

/* ---- keys (the ones that differ from the main view; F1 lists them) ---- */

int viz_teach_key(viz_app *a, SDL_Keycode key, Uint16 mod)
{
    viz_teach *t = a->teach;
    int shift = (mod & KMOD_SHIFT) != 0;
    if (mod & (KMOD_CTRL | KMOD_GUI))
        return 0;
    switch (key) {
    case SDLK_SPACE:
        viz_teach_play(a, -1);
        return 1;
    case SDLK_RIGHT:
    case SDLK_LEFT:
        t->playing = 0;
        viz_teach_seek(a, (int)t->pos + (key == SDLK_RIGHT ? 1 : -1));
        return 1;
    case SDLK_HOME:
        t->playing = 0;
        viz_teach_seek(a, 0);
        return 1;
    case SDLK_END:
        t->playing = 0;
        viz_teach_seek(a, viz_teach_positions_max(t) + 1);
        return 1;
    case SDLK_x:
        viz_teach_set_mode(a, t->mode == BFN_TEACH_ALICE ? BFN_TEACH_BOB : BFN_TEACH_ALICE);
        return 1;
    case SDLK_n:
        viz_teach_digit(a, shift ? -1 : 1);
        return 1;
    case SDLK_d:
        viz_teach_set_source(a, t->source == VIZ_SRC_DRAW ? VIZ_SRC_DIGIT : VIZ_SRC_DRAW);
        return 1;
    case SDLK_BACKSPACE:
    case SDLK_DELETE:
        viz_teach_clear_canvas(a);
        return 1;
    case SDLK_i:
        viz_teach_set_inpaint(a, !t->inpaint, t->mask);
        return 1;
    case SDLK_k:
        viz_teach_set_inpaint(a, 1, (viz_teach_mask)((t->mask + 1) % VIZ_MASK_COUNT));
        return 1;
    case SDLK_v:
        viz_teach_set_side_by_side(a, !t->sbs);
        return 1;
    case SDLK_c:
        t->captions = !t->captions;
        return 1;
    case SDLK_o:
        viz_teach_tour(a, t->stop >= 0 ? -1 : 0);
        return 1;
    case SDLK_PAGEDOWN:
    case SDLK_PERIOD:
        if (t->stop < 0)
            return 0;
        viz_teach_tour(a, t->stop + 1 < VIZ_TOUR_STOPS ? t->stop + 1 : t->stop);
        return 1;
    case SDLK_PAGEUP:
    case SDLK_COMMA:
        if (t->stop < 0)
            return 0;
        viz_teach_tour(a, t->stop > 0 ? t->stop - 1 : 0);
        return 1;
    case SDLK_ESCAPE:
        if (t->stop < 0)
            return 0;
        viz_teach_tour(a, -1);
        return 1;
    default:
        return 0;
    }
}

/* ---- state for tests ---- */

void viz_teach_get_state(viz_app *a, viz_teach_state *s)
{
    viz_teach *t = a->teach;
    memset(s, 0, sizeof *s);
    s->on = a->teach_on;
    s->source = t->source;
    s->digit = t->digit;
    s->n_digits = t->n_digits;
    s->digit_label = t->digit < (int)strlen(t->labels) ? t->labels[t->digit] - '0' : -1;
    s->mode = t->mode;
    s->inpaint = t->inpaint;
    s->mask = t->mask;
    s->side_by_side = t->sbs;
    s->captions = t->captions;
    s->tour_stop = t->stop;
    s->H = t->last.H;
    s->W = t->last.W;
    s->position = (int)t->pos;
    s->positions = t->sides ? viz_teach_positions_max(t) + 2 : 1;
    s->playing = t->playing;
    s->sides = t->sides;
    const char *err = viz_teach_error(a);
    viz_strcpy(s->error, sizeof s->error, err ? err : "");
}

const char *viz_teach_error(const viz_app *a)
{
    const viz_teach *t = a->teach;
    if (t->error[0])
        return t->error;
    for (int s = 0; s < t->sides; s++)
        if (viz_lesson_get_state(t->les[s]) == VIZ_LESSON_ERROR && t->les[s]->error[0])
            return t->les[s]->error;
    return NULL;
}

int viz_teach_image(viz_app *a, uint8_t *x, uint8_t *known, int cap)
{
    viz_teach_req *q = a->teach->req;
    if (make_request(a, q) <= 0 || q->H * q->W > cap)
        return 0;
    memcpy(x, q->x, (size_t)q->H * q->W);
    if (known)
        memcpy(known, q->known, (size_t)q->H * q->W);
    return q->H * q->W;
}

viz_lesson *viz_teach_lesson_ref(viz_app *a, int side)
{
    viz_teach *t = a->teach;
    return side < t->sides ? viz_lesson_ref(t->les[side]) : NULL;
}

int viz_teach_canvas_pos(viz_app *a, int x, int y, int *sx, int *sy)
{
    viz_teach *t = a->teach;
    SDL_Rect c = t->canvas_rect;
    if (!a->teach_on || c.w <= 0 || t->img_w <= 0)
        return 0;
    *sx = c.x + (int)((x + 0.5) * c.w / t->img_w);
    *sy = c.y + (int)((y + 0.5) * c.h / t->img_h);
    return 1;
}

void viz_teach_brush(uint8_t *canvas, int H, int W, double x0, double y0, double x1, double y1,
                     uint8_t v)
{
    const double r = 1.0;
    double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    int xa = (int)floor(fmin(x0, x1) - r), xb = (int)ceil(fmax(x0, x1) + r);
    int ya = (int)floor(fmin(y0, y1) - r), yb = (int)ceil(fmax(y0, y1) + r);
    for (int y = ya < 0 ? 0 : ya; y <= yb && y < H; y++)
        for (int x = xa < 0 ? 0 : xa; x <= xb && x < W; x++) {
            double u = len2 > 0 ? ((x - x0) * dx + (y - y0) * dy) / len2 : 0;
            u = u < 0 ? 0 : u > 1 ? 1 : u;
            double ex = x0 + u * dx - x, ey = y0 + u * dy - y;
            if (ex * ex + ey * ey <= r * r + 1e-9)
                canvas[y * W + x] = v;
        }
}
