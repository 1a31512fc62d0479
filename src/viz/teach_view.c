/* The teaching mode's window: controls on the left; one row of five aligned
 * panels per setting (Alice's image x, the message y, Bob's belief θ after
 * it, the network's guess p_O, the cost of the message); the bill (bits per
 * message and the running total against the model's L^n); the shared
 * timeline; captions and the tour box. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_internal.h"
#include "bfn/flow.h"
#include "teach_internal.h"

#define N_PANELS 5
#define BITS (1.0 / 0.69314718055994530942) /* nats → bits */

static const SDL_Color C_A = {255, 150, 50, 255};
static const SDL_Color C_B = {80, 200, 255, 255};
static const SDL_Color C_MASK = {255, 210, 60, 255};
static const SDL_Color C_LN = {200, 200, 200, 255};

/* ---- the heatmaps ---- */

static void hot(float v, uint8_t *o)
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    float r = 3 * v, g = 3 * v - 1, b = 3 * v - 2;
    o[0] = (uint8_t)(255 * (r > 1 ? 1 : r));
    o[1] = (uint8_t)(255 * (g < 0 ? 0 : g > 1 ? 1 : g));
    o[2] = (uint8_t)(255 * (b < 0 ? 0 : b > 1 ? 1 : b));
}

/* Diverging: blue (off) — dark grey (0) — orange (on), v in [−1, 1]. */
static void diverging(float v, uint8_t *o)
{
    v = v < -1 ? -1 : v > 1 ? 1 : v;
    const float z[3] = {40, 40, 48}, neg[3] = {70, 130, 255}, pos[3] = {255, 150, 50};
    const float *e = v < 0 ? neg : pos;
    float u = fabsf(v);
    for (int c = 0; c < 3; c++)
        o[c] = (uint8_t)(z[c] + (e[c] - z[c]) * u);
}

static void gray(float v, uint8_t *o) { o[0] = o[1] = o[2] = (uint8_t)(12 + v * 231); }
static void none(uint8_t *o) { o[0] = o[1] = o[2] = 44; }

/* Scale of a message's colours: its mean ±2α plus two standard deviations 2√α. */
static double y_scale(double alpha) { return 2 * alpha + 4 * sqrt(alpha); }

static double slot_alpha(const viz_lesson *l, int step)
{
    return step >= 1 && step <= l->lp.n ? bfn_alpha_step(l->lp.beta1, step, l->lp.n) : 0;
}

/* Largest per-pixel cost of a slot, nats (the cost panel's scale). */
static float cost_max(const viz_lesson *l, int slot)
{
    float m = 1e-6f;
    const float *c = l->cost + (size_t)slot * l->D;
    for (int d = 0; d < l->D; d++)
        m = c[d] > m ? c[d] : m;
    return m;
}

/* Fills row `row` of the texture (5 panels of W × H) for lesson l at step. */
static void fill_row(viz_app *a, const viz_lesson *l, int row, int step, uint8_t *pix, int pitch)
{
    viz_teach *t = a->teach;
    const int W = l->W, H = l->H, D = l->D, n = l->lp.n;
    const int slot = step - 1, ready = viz_lesson_ready(l);
    const int have = step >= 1 && slot < ready;
    const int alice = l->mode == BFN_TEACH_ALICE;
    const uint8_t *xs = l->x;
    if (row == 0 && t->source == VIZ_SRC_DRAW && t->cW == W && t->cH == H)
        xs = t->canvas; /* the drawing as it is now, also during a stroke */
    double ys = have && step <= n ? y_scale(slot_alpha(l, step)) : 1;
    float cm = have && alice ? cost_max(l, slot) : 1;
    for (int yy = 0; yy < H; yy++)
        for (int xx = 0; xx < W; xx++) {
            int d = yy * W + xx;
            size_t o = (size_t)slot * D + d;
            for (int p = 0; p < N_PANELS; p++) {
                uint8_t *q = pix + (size_t)(row * H + yy) * pitch + (size_t)(p * W + xx) * 4;
                q[3] = 255;
                switch (p) {
                case 0: /* what the messages encode */
                    if (alice)
                        gray(xs[d], q);
                    else if (l->has_mask)
                        l->known[d] ? gray(xs[d], q) : none(q);
                    else if (have)
                        gray(l->k[o], q);
                    else
                        none(q);
                    break;
                case 1:
                    if (have && step <= n)
                        diverging((float)(l->y[o] / ys), q);
                    else
                        none(q);
                    break;
                case 2: {
                    float th = step == 0 ? 0.5f : have ? l->theta[o] : -1;
                    if (th < 0) {
                        none(q);
                    } else {
                        int i = (int)(th * 255 + 0.5f);
                        memcpy(q, a->viridis[i < 0 ? 0 : i > 255 ? 255 : i], 3);
                    }
                    break;
                }
                case 3:
                    if (have) {
                        int i = (int)(l->p[o] * 255 + 0.5f);
                        memcpy(q, a->viridis[i < 0 ? 0 : i > 255 ? 255 : i], 3);
                    } else {
                        none(q);
                    }
                    break;
                default:
                    if (have && alice)
                        hot(l->cost[o] / cm, q);
                    else
                        none(q);
                    break;
                }
            }
        }
}

static int canvas_sum(const viz_teach *t)
{
    int s = 0;
    for (int i = 0; i < t->cH * t->cW; i++)
        s += t->canvas[i] * (i % 251 + 1);
    return s;
}

static void update_texture(viz_app *a, int M)
{
    viz_teach *t = a->teach;
    const viz_lesson *l0 = t->les[0];
    const int W = l0->W, H = l0->H, pos = (int)t->pos;
    int ready = viz_lesson_ready(l0) + (t->sides > 1 ? 1000 * viz_lesson_ready(t->les[1]) : 0);
    int cs = t->source == VIZ_SRC_DRAW ? canvas_sum(t) : 0;
    if (t->tex && t->tex_key.gen == l0->gen && t->tex_key.pos == pos &&
        t->tex_key.ready == ready && t->tex_key.canvas_sum == cs)
        return;
    if (!t->tex || t->tex_w != N_PANELS * W || t->tex_h != 2 * H) {
        if (t->tex)
            SDL_DestroyTexture(t->tex);
        t->tex = SDL_CreateTexture(a->ren, SDL_PIXELFORMAT_RGBA32, SDL_TEXTUREACCESS_STREAMING,
                                   N_PANELS * W, 2 * H);
        if (!t->tex)
            return;
        SDL_SetTextureScaleMode(t->tex, SDL_ScaleModeNearest);
        t->tex_w = N_PANELS * W;
        t->tex_h = 2 * H;
    }
    void *pixels;
    int pitch;
    if (SDL_LockTexture(t->tex, NULL, &pixels, &pitch) != 0)
        return;
    for (int s = 0; s < t->sides; s++)
        if (t->les[s]->W == W && t->les[s]->H == H)
            fill_row(a, t->les[s], s, viz_teach_step_at(t->les[s], M, pos), pixels, pitch);
    SDL_UnlockTexture(t->tex);
    t->tex_key.gen = l0->gen;
    t->tex_key.pos = pos;
    t->tex_key.ready = ready;
    t->tex_key.canvas_sum = cs;
}

/* ---- the canvas ---- */

static void canvas_input(viz_app *a, SDL_Rect r, int W, int H)
{
    viz_teach *t = a->teach;
    viz_ui *ui = &a->ui;
    viz_ui_region(ui, "teach.canvas", r,
                  t->eraser ? "Erase with the left button" : "Draw a digit with the left button");
    double px = (ui->mx - r.x) * (double)W / r.w - 0.5, py = (ui->my - r.y) * (double)H / r.h - 0.5;
    if (t->cH != H || t->cW != W) {
        memset(t->canvas, 0, sizeof t->canvas);
        t->cH = H;
        t->cW = W;
    }
    if (ui->pressed && !ui->blocked && viz_ui_inside(r, ui->mx, ui->my)) {
        t->stroke = 1;
        t->last_px = px;
        t->last_py = py;
    }
    if (t->stroke && (ui->mouse_down || ui->released)) {
        viz_teach_brush(t->canvas, H, W, t->last_px, t->last_py, px, py, !t->eraser);
        t->last_px = px;
        t->last_py = py;
        a->dirty = 1;
    }
    if (t->stroke && (ui->released || !ui->mouse_down))
        t->stroke = 0;
}

/* ---- the left column ---- */

typedef struct {
    viz_app *a;
    int x, y, w, row, gap;
} column;

static void section(column *c, const char *name)
{
    viz_ui *ui = &c->a->ui;
    c->y += c->gap;
    viz_ui_text(ui, VIZ_FONT_SMALL, c->x, c->y, ui->th.accent, name);
    c->y += viz_ui_line_height(ui, VIZ_FONT_SMALL) + c->gap / 2;
}

/* A row of k buttons; returns the index clicked or -1. */
static int buttons(column *c, int k, const char *const *ids, const char *const *labels,
                   const char *const *tips, int selected)
{
    viz_ui *ui = &c->a->ui;
    int gap = viz_ui_px(ui, 4), w = (c->w - (k - 1) * gap) / k, hit = -1;
    for (int i = 0; i < k; i++)
        if (viz_ui_button(ui, ids[i], (SDL_Rect){c->x + i * (w + gap), c->y, w, c->row},
                          labels[i], tips[i], selected == i || selected == k + i))
            hit = i;
    c->y += c->row + c->gap / 2;
    return hit;
}

static const int NICE_N[] = {1, 2, 3, 5, 10, 15, 20, 25, 30, 50, 75, 100, 150, 200, 250, 300,
                             500, 750, 1000};

static int nice_n(int n, int dir)
{
    const int cnt = (int)(sizeof NICE_N / sizeof NICE_N[0]);
    if (dir > 0) {
        for (int i = 0; i < cnt; i++)
            if (NICE_N[i] > n)
                return NICE_N[i];
    } else {
        for (int i = cnt - 1; i >= 0; i--)
            if (NICE_N[i] < n)
                return NICE_N[i];
    }
    return n;
}

/* "caption  [−] value [+]  [final]" for one row's settings. */
static void settings_row(column *c, const char *tag, int side)
{
    viz_app *a = c->a;
    viz_ui *ui = &a->ui;
    viz_teach *t = a->teach;
    int n = side ? t->b.n : a->set.n;
    double b = viz_beta_or_model(a, side ? t->b.beta1 : a->set.beta1);
    int argmax = side ? t->b.argmax : a->set.argmax;
    char id[40], v[40];
    int gap = viz_ui_px(ui, 4), bw = c->row, cap = viz_ui_px(ui, 26);
    int ty = c->y + (c->row - viz_ui_line_height(ui, VIZ_FONT_NORMAL)) / 2;
    viz_ui_text(ui, VIZ_FONT_NORMAL, c->x, ty, side ? C_B : C_A, tag);
    int x = c->x + cap, vw = (c->w - cap - 4 * bw - 2 * gap - viz_ui_px(ui, 58)) / 2;
    int dn = 0, db = 0;
    viz_fmt(id, sizeof id, "teach.%s.n-", side ? "b" : "a");
    dn -= viz_ui_button(ui, id, (SDL_Rect){x, c->y, bw, c->row}, "−", "Fewer steps n", 0);
    viz_fmt(v, sizeof v, "n %d", n);
    viz_ui_text_center(ui, VIZ_FONT_NORMAL, (SDL_Rect){x + bw, c->y, vw, c->row}, ui->th.text, v);
    viz_fmt(id, sizeof id, "teach.%s.n+", side ? "b" : "a");
    dn += viz_ui_button(ui, id, (SDL_Rect){x + bw + vw, c->y, bw, c->row}, "+", "More steps n",
                        0);
    x += 2 * bw + vw + gap;
    viz_fmt(id, sizeof id, "teach.%s.beta-", side ? "b" : "a");
    db -= viz_ui_button(ui, id, (SDL_Rect){x, c->y, bw, c->row}, "−", "β(1) ÷ 1.25", 0);
    viz_fmt(v, sizeof v, "β %.3g", b);
    viz_ui_text_center(ui, VIZ_FONT_NORMAL, (SDL_Rect){x + bw, c->y, vw, c->row}, ui->th.text, v);
    viz_fmt(id, sizeof id, "teach.%s.beta+", side ? "b" : "a");
    db += viz_ui_button(ui, id, (SDL_Rect){x + bw + vw, c->y, bw, c->row}, "+", "β(1) × 1.25",
                        0);
    x += 2 * bw + vw + gap;
    viz_fmt(id, sizeof id, "teach.%s.final", side ? "b" : "a");
    int fa = viz_ui_button(ui, id, (SDL_Rect){x, c->y, c->x + c->w - x, c->row},
                           argmax ? "argmax" : "sample",
                           "Final output: a draw from p_O, or its most probable class", argmax);
    c->y += c->row + c->gap / 2;
    if (!dn && !db && !fa)
        return;
    if (side) {
        viz_teach_set_b(a, dn ? nice_n(n, dn) : n, db ? b * (db > 0 ? 1.25 : 0.8) : t->b.beta1,
                        fa ? !argmax : argmax);
    } else {
        if (dn)
            viz_act_n(a, dn);
        if (db)
            viz_act_beta(a, db > 0 ? 1.25 : 0.8);
        if (fa) {
            a->set.argmax = !a->set.argmax;
            viz_act_changed(a);
        }
    }
}

static void controls(viz_app *a, SDL_Rect r)
{
    viz_ui *ui = &a->ui;
    viz_teach *t = a->teach;
    viz_ui_fill(ui, r, ui->th.panel);
    int pad = viz_ui_px(ui, 14);
    column c = {.a = a, .x = r.x + pad, .y = r.y + viz_ui_px(ui, 8), .w = r.w - 2 * pad,
                .row = viz_ui_px(ui, 28), .gap = viz_ui_px(ui, 9)};
    viz_ui_text(ui, VIZ_FONT_LARGE, c.x, c.y, ui->th.text, "Alice and Bob");
    int bw = viz_ui_px(ui, 96);
    if (viz_ui_button(ui, "teach.leave", (SDL_Rect){c.x + c.w - bw, c.y, bw, c.row}, "sampling",
                      "Back to the sampling view (L)", 0))
        viz_teach_toggle(a);
    c.y += viz_ui_line_height(ui, VIZ_FONT_LARGE) + viz_ui_px(ui, 4);

    section(&c, "ALICE'S IMAGE");
    {
        const char *ids[2] = {"teach.src.digit", "teach.src.draw"};
        const char *lab[2] = {"test digit", "draw (D)"};
        const char *tips[2] = {"A handwritten MNIST test digit (N / Shift+N: next / previous)",
                               "Draw your own digit on Alice's image with the mouse (D)"};
        int h = buttons(&c, 2, ids, lab, tips, (int)t->source);
        if (h >= 0)
            viz_teach_set_source(a, (viz_teach_source)h);
    }
    if (t->source == VIZ_SRC_DIGIT) {
        char v[48];
        int lab = t->digit < (int)strlen(t->labels) ? t->labels[t->digit] - '0' : -1;
        viz_fmt(v, sizeof v, "digit %d of %d: a “%d”", t->digit + 1, t->n_digits, lab);
        const char *ids[3] = {"teach.digit-", "teach.digit.label", "teach.digit+"};
        const char *labs[3] = {"◀", v, "▶"};
        const char *tips[3] = {"Previous test digit (Shift+N)", "The digit Alice sends",
                               "Next test digit (N)"};
        int gap = viz_ui_px(ui, 4), sw = c.row;
        if (viz_ui_button(ui, ids[0], (SDL_Rect){c.x, c.y, sw, c.row}, labs[0], tips[0], 0))
            viz_teach_digit(a, -1);
        viz_ui_region(ui, ids[1], (SDL_Rect){c.x + sw + gap, c.y, c.w - 2 * (sw + gap), c.row},
                      tips[1]);
        viz_ui_text_center(ui, VIZ_FONT_NORMAL,
                           (SDL_Rect){c.x + sw + gap, c.y, c.w - 2 * (sw + gap), c.row},
                           ui->th.text, v);
        if (viz_ui_button(ui, ids[2], (SDL_Rect){c.x + c.w - sw, c.y, sw, c.row}, labs[2],
                          tips[2], 0))
            viz_teach_digit(a, 1);
        c.y += c.row + c.gap / 2;
    } else {
        const char *ids[3] = {"teach.pen", "teach.eraser", "teach.clear"};
        const char *lab[3] = {"pen", "eraser", "clear"};
        const char *tips[3] = {"Draw ink with the left button", "Erase with the left button",
                               "Clear the drawing (Backspace)"};
        int h = buttons(&c, 3, ids, lab, tips, t->eraser);
        if (h == 0 || h == 1)
            t->eraser = h;
        else if (h == 2)
            viz_teach_clear_canvas(a);
    }

    section(&c, "WHO SENDS (X)");
    {
        const char *ids[2] = {"teach.alice", "teach.bob"};
        const char *lab[2] = {"Alice sends x", "Bob alone"};
        const char *tips[2] = {"Transmission: messages encode the true image; each costs bits",
                               "Generation: Bob draws his own messages from his guess (same "
                               "seed, same noise)"};
        int h = buttons(&c, 2, ids, lab, tips, t->mode == BFN_TEACH_ALICE ? 0 : 1);
        if (h >= 0)
            viz_teach_set_mode(a, h == 0 ? BFN_TEACH_ALICE : BFN_TEACH_BOB);
    }

    section(&c, "COMPLETE A DRAWING (I, K)");
    {
        const char *ids[5] = {"teach.inpaint", "teach.mask.top", "teach.mask.bottom",
                              "teach.mask.left", "teach.mask.right"};
        const char *lab[5] = {"off", "top", "bottom", "left", "right"};
        const char *tips[5] = {"No known pixels", "Bob is told the top half for certain",
                               "Bob is told the bottom half", "Bob is told the left half",
                               "Bob is told the right half"};
        int h = buttons(&c, 5, ids, lab, tips, t->inpaint ? 1 + (int)t->mask : 0);
        if (h == 0)
            viz_teach_set_inpaint(a, 0, t->mask);
        else if (h > 0)
            viz_teach_set_inpaint(a, 1, (viz_teach_mask)(h - 1));
        const char *mids[2] = {"teach.method.clamp", "teach.method.send"};
        const char *mlab[2] = {"certain", "sent"};
        const char *mtips[2] = {"Known pixels: Bob's belief is set to certainty at every step",
                                "Known pixels: Alice sends them on the usual schedule"};
        if (t->inpaint) {
            int m = buttons(&c, 2, mids, mlab, mtips, (int)t->method);
            if (m >= 0) {
                t->method = (bfn_teach_inpaint)m;
                a->dirty = 1;
            }
        }
    }

    section(&c, "SETTINGS (one seed for both rows)");
    settings_row(&c, "A", 0);
    {
        const char *ids[1] = {"teach.sbs"};
        const char *lab[1] = {t->sbs ? "side by side: on (V)" : "side by side: off (V)"};
        const char *tips[1] = {"A second row with other settings, same seed, same timeline"};
        if (buttons(&c, 1, ids, lab, tips, t->sbs ? 0 : -1) == 0)
            viz_teach_set_side_by_side(a, !t->sbs);
    }
    if (t->sbs)
        settings_row(&c, "B", 1);
    {
        char v[40];
        viz_fmt(v, sizeof v, "seed %llu", (unsigned long long)a->set.seed);
        int gap = viz_ui_px(ui, 4), sw = c.row;
        if (viz_ui_button(ui, "teach.seed-", (SDL_Rect){c.x, c.y, sw, c.row}, "−",
                          "Previous seed (Shift+S)", 0))
            viz_act_seed(a, -1);
        viz_ui_text_center(ui, VIZ_FONT_NORMAL,
                           (SDL_Rect){c.x + sw + gap, c.y, c.w - 2 * (sw + gap), c.row},
                           ui->th.text, v);
        if (viz_ui_button(ui, "teach.seed+", (SDL_Rect){c.x + c.w - sw, c.y, sw, c.row}, "+",
                          "Next seed (S)", 0))
            viz_act_seed(a, 1);
        c.y += c.row + c.gap / 2;
    }

    section(&c, "EXPLAIN");
    {
        const char *ids[2] = {"teach.captions", "teach.tour"};
        const char *lab[2] = {"captions (C)", "guided tour (O)"};
        const char *tips[2] = {"One sentence per panel, in large type",
                               "Eight stops through the story; PgDn / PgUp move"};
        int h = buttons(&c, 2, ids, lab, tips, (t->captions ? 2 : -1) + 0);
        if (h == 0) {
            t->captions = !t->captions;
            a->dirty = 1;
        } else if (h == 1) {
            viz_teach_tour(a, t->stop >= 0 ? -1 : 0);
        }
        if (t->stop >= 0 && ui->drawing)
            viz_ui_frame(ui, (SDL_Rect){c.x + (c.w + viz_ui_px(ui, 4)) / 2, c.y - c.row - c.gap / 2,
                                        (c.w - viz_ui_px(ui, 4)) / 2, c.row},
                         ui->th.accent);
    }
}

/* ---- captions ---- */

static const char *caption(const viz_teach *t, const viz_lesson *l, int p)
{
    int alice = l->mode == BFN_TEACH_ALICE;
    switch (p) {
    case 0:
        return alice ? "Alice knows the true image x."
               : l->has_mask ? "Bob is told the framed pixels for certain."
                             : "Bob draws a guess k from his network.";
    case 1:
        return alice ? "Alice adds noise to the true pixel and sends it."
                     : "Bob adds noise to his own guess.";
    case 2:
        return "Bob multiplies his belief by e^y and normalizes.";
    case 3:
        return "The network looks at all of θ and guesses the image.";
    default:
        (void)t;
        return alice ? "A message costs bits where the guess was wrong."
                     : "No bill: Bob talks to himself.";
    }
}

/* ---- the bill ---- */

static void chart(viz_app *a, SDL_Rect r, int M)
{
    viz_ui *ui = &a->ui;
    viz_teach *t = a->teach;
    int pad = viz_ui_px(ui, 8), lh = viz_ui_line_height(ui, VIZ_FONT_SMALL);
    viz_ui_region(ui, "teach.chart", r,
                  "Left: bits of each message. Right: the running total against the model's "
                  "L^n for this image (bfn eval; band: ± one standard error)");
    int half = (r.w - pad) / 2;
    SDL_Rect p1 = {r.x, r.y + lh + 2, half, r.h - lh - 2};
    SDL_Rect p2 = {r.x + half + pad, r.y + lh + 2, r.w - half - pad, r.h - lh - 2};
    viz_ui_text(ui, VIZ_FONT_SMALL, p1.x, r.y, ui->th.dim, "bits per message");
    viz_ui_text(ui, VIZ_FONT_SMALL, p2.x, r.y, ui->th.dim,
                "bits so far (line) vs the model's L^n for this image (band)");
    viz_ui_fill(ui, p1, (SDL_Color){22, 23, 28, 255});
    viz_ui_fill(ui, p2, (SDL_Color){22, 23, 28, 255});
    viz_ui_frame(ui, p1, ui->th.border);
    viz_ui_frame(ui, p2, ui->th.border);
    if (!ui->drawing)
        return;
    /* the worker publishes as it goes: read each side's progress once, so the
     * scales and the drawing see the same steps */
    double bmax = 1e-9, tmax = 1e-9;
    int ready_of[2] = {0, 0}, eval_of[2] = {0, 0};
    for (int s = 0; s < t->sides; s++) {
        const viz_lesson *l = t->les[s];
        int ready = ready_of[s] = viz_lesson_ready(l);
        eval_of[s] = atomic_load(&l->eval_state);
        for (int i = 0; i < ready && i < l->lp.n; i++) {
            bmax = fmax(bmax, l->step_cost[i] * BITS);
            tmax = fmax(tmax, l->total[i] * BITS);
        }
        if (eval_of[s] == VIZ_EVAL_DONE)
            tmax = fmax(tmax, (l->ln + l->ln_se) * BITS);
    }
    bmax *= 1.08;
    tmax *= 1.08;
    int pos = (int)t->pos;
    for (int s = 0; s < t->sides; s++) {
        const viz_lesson *l = t->les[s];
        const int n = l->lp.n, ready = ready_of[s];
        SDL_Color c = s ? C_B : C_A;
        int shown = viz_teach_step_at(l, M, pos);
        /* bars, side B drawn thinner on top */
        for (int i = 0; i < ready && i < n; i++) {
            int x0 = p1.x + 1 + (int)((double)i / n * (p1.w - 2));
            int x1 = p1.x + 1 + (int)((double)(i + 1) / n * (p1.w - 2));
            int w = x1 - x0 > 2 ? x1 - x0 - 1 : 1;
            if (s)
                w = w > 2 ? w / 2 : w;
            int h = (int)(l->step_cost[i] * BITS / bmax * (p1.h - 2));
            SDL_Color cc = c;
            if (i + 1 > shown)
                cc = viz_ui_mix(c, (SDL_Color){22, 23, 28, 255}, 0.65f);
            viz_ui_fill(ui, (SDL_Rect){x0, p1.y + p1.h - 1 - h, w, h}, cc);
        }
        if (eval_of[s] == VIZ_EVAL_DONE) {
            int y0 = p2.y + (int)((1 - (l->ln + l->ln_se) * BITS / tmax) * (p2.h - 1));
            int y1 = p2.y + (int)((1 - (l->ln - l->ln_se) * BITS / tmax) * (p2.h - 1));
            SDL_Color band = c;
            band.a = 60;
            viz_ui_fill(ui, (SDL_Rect){p2.x + 1, y0, p2.w - 2, y1 - y0 > 1 ? y1 - y0 : 1}, band);
            int ym = p2.y + (int)((1 - l->ln * BITS / tmax) * (p2.h - 1));
            viz_ui_fill(ui, (SDL_Rect){p2.x + 1, ym, p2.w - 2, 1}, C_LN);
        }
        int cnt = ready < n ? ready : n;
        if (cnt > 0) {
            float *xs = malloc(sizeof(float) * 2 * (size_t)(cnt + 1));
            if (xs) {
                float *ys = xs + cnt + 1;
                xs[0] = 0;
                ys[0] = 0;
                for (int i = 0; i < cnt; i++) {
                    xs[i + 1] = (float)(i + 1) / n;
                    ys[i + 1] = (float)(l->total[i] * BITS);
                }
                viz_draw_polyline(a, p2, xs, ys, cnt + 1, 0, 1, 0, tmax, c);
                free(xs);
            }
        }
    }
    double u = M > 0 ? fmin(1.0, (double)pos / M) : 0;
    SDL_Color now = {255, 255, 255, 120};
    for (int k = 0; k < 2; k++) {
        SDL_Rect p = k ? p2 : p1;
        int x = p.x + (int)(u * (p.w - 1));
        viz_ui_fill(ui, (SDL_Rect){x, p.y, 1, p.h}, now);
    }
    char s[48];
    viz_fmt(s, sizeof s, "%.3g", bmax);
    viz_ui_text_right(ui, VIZ_FONT_SMALL, p1.x + p1.w - 3, p1.y + 2, ui->th.dim, s);
    viz_fmt(s, sizeof s, "%.4g bits", tmax);
    viz_ui_text_right(ui, VIZ_FONT_SMALL, p2.x + p2.w - 3, p2.y + 2, ui->th.dim, s);
    viz_ui_text_right(ui, VIZ_FONT_SMALL, p2.x + p2.w - 3, p2.y + p2.h - lh - 1, ui->th.dim,
                      "t →");
}

/* ---- one row of panels ---- */

static void row_text(viz_app *a, const viz_lesson *l, int side, int M, int x, int y, int w,
                     int header)
{
    viz_ui *ui = &a->ui;
    viz_teach *t = a->teach;
    const int n = l->lp.n, step = viz_teach_step_at(l, M, (int)t->pos);
    const int slot = step - 1, ready = viz_lesson_ready(l);
    char s[400];
    if (header) {
        int tw = viz_ui_textf(ui, VIZ_FONT_NORMAL, x, y, side ? C_B : C_A,
                              "%s  n = %d · β(1) = %.3g · %s", side ? "B" : "A", n, l->lp.beta1,
                              l->lp.argmax ? "argmax" : "sampled");
        if (step == 0)
            viz_fmt(s, sizeof s, "step 0: nothing sent yet, θ = ½ everywhere");
        else if (step > n)
            viz_fmt(s, sizeof s, "final output at t = 1, after %d messages", n);
        else
            viz_fmt(s, sizeof s, "message %d of %d · network asked at t = %.3f · α_%d = %.4g",
                    step, n, (step - 1) / (double)n, step, slot_alpha(l, step));
        viz_ui_text(ui, VIZ_FONT_NORMAL, x + tw + viz_ui_px(ui, 16), y, ui->th.text, s);
        return;
    }
    if (l->mode != BFN_TEACH_ALICE) {
        if (step > n && slot < ready)
            viz_fmt(s, sizeof s, "Bob's own image after %d messages%s", n,
                    l->has_mask ? " (framed pixels kept)" : "");
        else
            viz_fmt(s, sizeof s, "%s: nobody pays for these messages",
                    l->has_mask ? "Bob completes the image" : "Bob alone");
        viz_ui_text(ui, VIZ_FONT_NORMAL, x, y, ui->th.dim, s);
        return;
    }
    char ev[160] = "L^n for this image: evaluating…";
    int es = atomic_load(&l->eval_state);
    if (es == VIZ_EVAL_DONE)
        viz_fmt(ev, sizeof ev, "model's L^n for this image %.1f ± %.1f bits (bfn eval, %d draws)",
                l->ln * BITS, l->ln_se * BITS, l->eval_draws);
    else if (es == VIZ_EVAL_NONE)
        ev[0] = '\0';
    else if (es == VIZ_EVAL_ERROR)
        viz_fmt(ev, sizeof ev, "L^n: %s", l->error);
    if (step == 0 || slot >= ready)
        viz_fmt(s, sizeof s, "total 0 bits · %s", ev);
    else if (step > n)
        viz_fmt(s, sizeof s, "%d messages: %.1f bits · final guess %.1f bits · %s", n,
                l->total[n - 1] * BITS, l->step_cost[n] * BITS, ev);
    else
        viz_fmt(s, sizeof s, "this message %.3g bits · total %.1f bits · %s",
                l->step_cost[slot] * BITS, l->total[slot] * BITS, ev);
    viz_ui_text(ui, VIZ_FONT_NORMAL, x, y, ui->th.text, s);
    (void)w;
}

static const char *TITLES[N_PANELS] = {"Alice's image x", "message y", "Bob's belief θ",
                                       "network's guess p_O", "cost of this message"};
/* when the panels are narrow (side by side, a projector's zoom) */
static const char *TITLES_SHORT[N_PANELS] = {"image x", "message y", "belief θ", "guess p_O",
                                             "cost"};

static void panel_scale(viz_app *a, const viz_lesson *l, int p, int step, int x, int y)
{
    viz_ui *ui = &a->ui;
    const int n = l->lp.n, slot = step - 1;
    char s[80] = "", colours[40];
    if (p == 0 && l->mode != BFN_TEACH_ALICE && !l->has_mask)
        viz_fmt(s, sizeof s, "Bob's own guess k");
    else if (p == 1 && step >= 1 && step <= n) { /* the colour scale only if the column has room */
        viz_fmt(s, sizeof s, "α = %.3g", slot_alpha(l, step));
        viz_fmt(colours, sizeof colours, " · colours ±%.2g", y_scale(slot_alpha(l, step)));
        const char *const alts[2] = {colours, ""};
        viz_ui_text_fit(ui, VIZ_FONT_SMALL, x, y, ui->th.dim,
                        ui->text_area.x + ui->text_area.w - x, s, 2, alts);
        return;
    } else if (p == 4 && l->mode == BFN_TEACH_ALICE && step >= 1 && slot < viz_lesson_ready(l))
        viz_fmt(s, sizeof s, "%s 0 … %.2g bits", step > n ? "−log₂ p_O(x):" : "per pixel",
                cost_max(l, slot) * BITS);
    else if (p == 2 || p == 3)
        viz_fmt(s, sizeof s, "P(pixel on), 0 … 1");
    viz_ui_text(ui, VIZ_FONT_SMALL, x, y, ui->th.dim, s);
}

static void tour_box(viz_app *a, SDL_Rect area)
{
    viz_ui *ui = &a->ui;
    viz_teach *t = a->teach;
    int pad = viz_ui_px(ui, 14), w = area.w * 46 / 100, bh = viz_ui_px(ui, 28);
    int b = viz_ui_px(ui, 90), gap = viz_ui_px(ui, 6);
    if (w < 2 * pad + 4 * b) /* wide enough for its four buttons, or as wide as the area */
        w = 2 * pad + 4 * b < area.w ? 2 * pad + 4 * b : area.w;
    if (2 * pad + 4 * b > w)
        b = (w - 2 * pad) / 4;
    SDL_Rect tr = {0, 0, w - 2 * pad, 0};
    int drawing = ui->drawing;
    ui->drawing = 0;
    int th = viz_draw_wrapped(a, VIZ_FONT_NORMAL, tr, ui->th.text, viz_teach_tour_text(t->stop));
    ui->drawing = drawing;
    int h = pad + viz_ui_line_height(ui, VIZ_FONT_LARGE) + pad / 2 + th + pad / 2 + bh + pad;
    SDL_Rect box = {area.x + area.w - w, area.y, w, h};
    viz_ui_region(ui, "tour", box, NULL);
    viz_ui_fill(ui, box, (SDL_Color){30, 34, 48, 240});
    viz_ui_frame(ui, box, ui->th.accent);
    int y = box.y + pad;
    viz_ui_text(ui, VIZ_FONT_LARGE, box.x + pad, y, ui->th.text, viz_teach_tour_title(t->stop));
    y += viz_ui_line_height(ui, VIZ_FONT_LARGE) + pad / 2;
    viz_draw_wrapped(a, VIZ_FONT_NORMAL, (SDL_Rect){box.x + pad, y, w - 2 * pad, th},
                     ui->th.text, viz_teach_tour_text(t->stop));
    y += th + pad / 2;
    if (viz_ui_button(ui, "tour.prev", (SDL_Rect){box.x + pad, y, b, bh}, "◀ back",
                      "Previous stop (PgUp)", 0) && t->stop > 0)
        viz_teach_tour(a, t->stop - 1);
    char s[32];
    viz_fmt(s, sizeof s, "%d / %d", t->stop + 1, VIZ_TOUR_STOPS);
    viz_ui_text_center(ui, VIZ_FONT_NORMAL, (SDL_Rect){box.x + pad + b, y, b, bh}, ui->th.dim, s);
    if (t->stop + 1 < VIZ_TOUR_STOPS &&
        viz_ui_button(ui, "tour.next", (SDL_Rect){box.x + pad + 2 * b, y, b, bh}, "next ▶",
                      "Next stop (PgDn)", 0))
        viz_teach_tour(a, t->stop + 1);
    if (viz_ui_button(ui, "tour.close", (SDL_Rect){box.x + box.w - pad - b + gap, y, b - gap, bh},
                      "close", "Close the tour (Esc)", 0))
        viz_teach_tour(a, -1);
}

static void timeline(viz_app *a, SDL_Rect r, int M)
{
    viz_ui *ui = &a->ui;
    viz_teach *t = a->teach;
    int gap = viz_ui_px(ui, 6), bh = viz_ui_px(ui, 30), bw = viz_ui_px(ui, 36), x = r.x;
    int y = r.y + viz_ui_px(ui, 4);
    viz_ui_fill(ui, (SDL_Rect){r.x, r.y, r.w, 1}, ui->th.border);
    const struct {
        const char *id;
        viz_icon icon;
        const char *tip;
    } b[5] = {{"teach.first", VIZ_ICON_FIRST, "Before the first message (Home)"},
              {"teach.prev", VIZ_ICON_BACK, "One step back (Left)"},
              {"teach.play", t->playing ? VIZ_ICON_PAUSE : VIZ_ICON_PLAY, "Play / pause (Space)"},
              {"teach.next", VIZ_ICON_FWD, "One step forward (Right)"},
              {"teach.last", VIZ_ICON_LAST, "The final output (End)"}};
    for (int i = 0; i < 5; i++) {
        if (viz_icon_button(a, b[i].id, (SDL_Rect){x, y, bw, bh}, b[i].icon, b[i].tip)) {
            if (i == 2) {
                viz_teach_play(a, -1);
            } else {
                t->playing = 0;
                int p = (int)t->pos;
                viz_teach_seek(a, i == 0 ? 0 : i == 1 ? p - 1 : i == 3 ? p + 1 : M + 1);
            }
        }
        x += bw + gap;
    }
    SDL_Rect track = {x + gap, y, r.x + r.w - x - gap, bh};
    double v = (int)t->pos, hi = M + 1 > 0 ? M + 1 : 1;
    if (viz_ui_slider(ui, "teach.timeline", track, &v, 0, hi, 0, NAN,
                      "The shared timeline: both rows at the same time t")) {
        t->playing = 0;
        viz_teach_seek(a, (int)lround(v));
    }
    int pos = (int)t->pos;
    char s[200];
    if (pos == 0)
        viz_fmt(s, sizeof s, "t = 0: before the first message");
    else if (pos > M)
        viz_fmt(s, sizeof s, "t = 1: the final output");
    else
        viz_fmt(s, sizeof s, "t = %.3f after the messages up to here (position %d of %d)",
                (double)pos / M, pos, M + 1);
    viz_ui_text(ui, VIZ_FONT_SMALL, r.x, y + bh + viz_ui_px(ui, 5), ui->th.text, s);
}

static void status(viz_app *a, SDL_Rect r)
{
    viz_ui *ui = &a->ui;
    viz_teach *t = a->teach;
    viz_ui_fill(ui, r, (SDL_Color){16, 17, 21, 255});
    int pad = viz_ui_px(ui, 10), ty = r.y + (r.h - viz_ui_line_height(ui, VIZ_FONT_SMALL)) / 2;
    char s[300] = "";
    if (t->sides) {
        const viz_lesson *l = t->les[0];
        int done = viz_lesson_ready(l);
        viz_fmt(s, sizeof s, "teaching: %s · %s · seed %llu · %d of %d steps%s",
                viz_basename(a->model_path),
                l->mode == BFN_TEACH_ALICE ? "Alice sends x" : "Bob alone",
                (unsigned long long)l->seed, done > l->lp.n ? l->lp.n : done, l->lp.n,
                viz_teach_settled(a) ? "" : " · working…");
    }
    viz_ui_text(ui, VIZ_FONT_SMALL, r.x + pad, ty, ui->th.dim, s);
    if (a->notice[0] && viz_now() < a->notice_until)
        viz_ui_text_right(ui, VIZ_FONT_SMALL, r.x + r.w - pad, ty,
                          a->notice_err ? ui->th.error : ui->th.ok, a->notice);
    else
        viz_ui_text_right(ui, VIZ_FONT_SMALL, r.x + r.w - pad, ty, ui->th.dim,
                          "F1: shortcuts · L: back to sampling");
}

/* The widest word of the five captions in font f. */
static int widest_word(viz_ui *ui, viz_font f, const viz_lesson *l, const viz_teach *t)
{
    int widest = 0;
    for (int p = 0; p < N_PANELS; p++) {
        const char *c = caption(t, l, p);
        while (*c) {
            while (*c == ' ')
                c++;
            size_t n = strcspn(c, " ");
            if (n > 0 && n < 120) {
                char word[128];
                memcpy(word, c, n);
                word[n] = '\0';
                int w = viz_ui_text_width(ui, f, word);
                widest = w > widest ? w : widest;
            }
            c += n;
        }
    }
    return widest;
}

/* Large type for the captions, unless a word is wider than a column of
 * width cw; measured again only when the width, zoom or captions change. */
static viz_font caption_font(viz_ui *ui, viz_teach *t, const viz_lesson *l, int cw)
{
    int alice = l->mode == BFN_TEACH_ALICE;
    if (t->cap_key.valid && t->cap_key.width == cw && t->cap_key.zoom == ui->zoom &&
        t->cap_key.alice == alice && t->cap_key.mask == l->has_mask)
        return t->cap_key.font;
    viz_font f = VIZ_FONT_LARGE;
    while (f != VIZ_FONT_SMALL && widest_word(ui, f, l, t) > cw)
        f = f == VIZ_FONT_LARGE ? VIZ_FONT_NORMAL : VIZ_FONT_SMALL;
    t->cap_key.valid = 1;
    t->cap_key.width = cw;
    t->cap_key.zoom = ui->zoom;
    t->cap_key.alice = alice;
    t->cap_key.mask = l->has_mask;
    t->cap_key.font = f;
    return f;
}

/* Panel p's column of the lesson, starting at x, for the text under it;
 * the last column reaches the area's right side. */
static SDL_Rect column_area(SDL_Rect area, int x, int p, int side, int gap)
{
    return (SDL_Rect){x, area.y, p + 1 < N_PANELS ? side + gap * 2 / 3 : area.x + area.w - x,
                      area.h};
}

void viz_teach_pass(viz_app *a)
{
    viz_ui *ui = &a->ui;
    viz_teach *t = a->teach;
    int status_h = viz_ui_px(ui, 28), pad = viz_ui_px(ui, 10);
    int left_w = viz_ui_px(ui, 330);
    if (left_w > a->w * 2 / 5)
        left_w = a->w * 2 / 5;
    int body_h = a->h - status_h;
    viz_ui_text_area(ui, (SDL_Rect){0, 0, left_w, body_h});
    controls(a, (SDL_Rect){0, 0, left_w, body_h});
    SDL_Rect m = {left_w + pad, pad, a->w - left_w - 2 * pad, body_h - 2 * pad};
    viz_ui_text_area(ui, (SDL_Rect){0, body_h, a->w, status_h});
    status(a, (SDL_Rect){0, body_h, a->w, status_h});
    viz_ui_text_area(ui, (SDL_Rect){left_w, 0, a->w - left_w, body_h});
    int tl_h = viz_ui_px(ui, 62);
    SDL_Rect tl = {m.x, m.y + m.h - tl_h, m.w, tl_h};
    int M = t->sides ? viz_teach_positions_max(t) : 0;
    timeline(a, tl, M);
    t->canvas_rect = (SDL_Rect){0, 0, 0, 0};
    const char *err = viz_teach_error(a);
    if (!t->sides || err) {
        SDL_Rect msg = {m.x, m.y, m.w, m.h - tl_h};
        if (err)
            viz_draw_wrapped(a, VIZ_FONT_LARGE, (SDL_Rect){m.x + pad, m.y + m.h / 3, m.w - 2 * pad,
                                                           m.h},
                             ui->th.error, err);
        else
            viz_ui_text_center(ui, VIZ_FONT_LARGE, msg, ui->th.dim, "preparing the lesson…");
        if (a->help) {
            viz_ui_text_area(ui, (SDL_Rect){0, 0, a->w, a->h});
            viz_teach_help_overlay(a);
        }
        return;
    }
    const viz_lesson *l0 = t->les[0];
    const int alice = l0->mode == BFN_TEACH_ALICE, W = l0->W, H = l0->H;
    int lhN = viz_ui_line_height(ui, VIZ_FONT_NORMAL), lhS = viz_ui_line_height(ui, VIZ_FONT_SMALL);
    int lhL = viz_ui_line_height(ui, VIZ_FONT_LARGE);
    int chart_h = alice ? viz_ui_px(ui, 128) : 0;
    int gap = viz_ui_px(ui, 12);
    int cap_h = t->captions ? 3 * lhL + viz_ui_px(ui, 6) : 0;
    int rows_h = m.h - tl_h - chart_h - pad;
    /* per row: header, panel titles, panel, scale line, info line; captions once */
    int fixed = t->sides * (lhN + lhS + lhS + lhN + 3 * viz_ui_px(ui, 4) + pad) + cap_h;
    int side = (rows_h - fixed) / t->sides;
    int sw = (m.w - (N_PANELS - 1) * gap) / N_PANELS;
    if (sw < side)
        side = sw;
    if (side >= W)
        side = side / W * W;
    if (side < 8)
        side = 8;
    int ph = side * H / W;
    if (ui->drawing)
        update_texture(a, M);
    int y = m.y;
    for (int s = 0; s < t->sides; s++) {
        const viz_lesson *l = t->les[s];
        int step = viz_teach_step_at(l, M, (int)t->pos);
        row_text(a, l, s, M, m.x, y, m.w, 1);
        y += lhN + viz_ui_px(ui, 4);
        /* titles and scales keep to their column (the last one to the area's edge) */
        SDL_Rect main_area = ui->text_area;
        const char *const *titles = TITLES; /* all long, or all short when one does not fit */
        for (int p = 0; p + 1 < N_PANELS; p++)
            if (viz_ui_text_width(ui, VIZ_FONT_SMALL, TITLES[p]) > side + gap * 2 / 3)
                titles = TITLES_SHORT;
        for (int p = 0; p < N_PANELS; p++) {
            int px = m.x + p * (side + gap);
            viz_ui_text_area(ui, column_area(main_area, px, p, side, gap));
            viz_ui_text(ui, VIZ_FONT_SMALL, px, y, ui->th.text, titles[p]);
        }
        viz_ui_text_area(ui, main_area);
        y += lhS + viz_ui_px(ui, 2);
        for (int p = 0; p < N_PANELS; p++) {
            SDL_Rect dst = {m.x + p * (side + gap), y, side, ph};
            char id[32];
            viz_fmt(id, sizeof id, "teach.panel.%d.%d", s, p);
            viz_ui_region(ui, id, dst, NULL);
            if (ui->drawing && t->tex) {
                SDL_Rect src = {p * W, s * H, W, H};
                SDL_RenderCopy(a->ren, t->tex, &src, &dst);
            }
            if (p == 0 && s == 0) {
                t->canvas_rect = dst;
                t->img_w = W;
                t->img_h = H;
                if (t->source == VIZ_SRC_DRAW && (t->mode == BFN_TEACH_ALICE || t->inpaint))
                    canvas_input(a, dst, W, H);
                else
                    t->stroke = 0; /* a key took the canvas away mid-stroke */
            }
            if (l->has_mask && (p == 0 || p == 2)) {
                SDL_Rect k = viz_teach_mask_rect((viz_teach_mask)t->mask, H, W);
                SDL_Rect f = {dst.x + k.x * side / W, dst.y + k.y * ph / H, k.w * side / W,
                              k.h * ph / H};
                viz_ui_frame(ui, f, C_MASK);
                viz_ui_frame(ui, (SDL_Rect){f.x + 1, f.y + 1, f.w - 2, f.h - 2}, C_MASK);
            }
            if (t->focus == p && s == 0) {
                for (int k = 1; k <= 3; k++)
                    viz_ui_frame(ui, (SDL_Rect){dst.x - k - 1, dst.y - k - 1, dst.w + 2 * k + 2,
                                                dst.h + 2 * k + 2},
                                 ui->th.accent);
            }
            viz_ui_text_area(ui, column_area(main_area, dst.x, p, side, gap));
            panel_scale(a, l, p, step, dst.x, dst.y + ph + viz_ui_px(ui, 2));
            viz_ui_text_area(ui, main_area);
        }
        if (t->source == VIZ_SRC_DRAW && s == 0 && ui->drawing) {
            int empty = 1;
            for (int i = 0; i < t->cH * t->cW && empty; i++)
                empty = !t->canvas[i];
            if (empty)
                viz_ui_text_center(ui, VIZ_FONT_NORMAL, t->canvas_rect, ui->th.text,
                                   "draw here");
        }
        y += ph + lhS + viz_ui_px(ui, 4);
        if (s == 0 && t->captions) {
            int cw = side + gap / 2;
            viz_font cf = caption_font(ui, t, l, cw);
            SDL_Rect main_area = ui->text_area;
            int used = 0;
            for (int p = 0; p < N_PANELS; p++) {
                SDL_Rect col = {m.x + p * (side + gap), y, cw, cap_h};
                viz_ui_text_area(ui, column_area(main_area, col.x, p, side, gap));
                int hgt = viz_draw_wrapped(a, cf, col, (SDL_Color){250, 240, 200, 255},
                                           caption(t, l, p));
                used = hgt > used ? hgt : used;
            }
            viz_ui_text_area(ui, main_area);
            y += used + viz_ui_px(ui, 6);
        }
        row_text(a, l, s, M, m.x, y, m.w, 0);
        y += lhN + pad;
    }
    if (alice) {
        /* the bill takes the room the rows leave, up to a readable height */
        int room = m.y + m.h - tl_h - y;
        if (room > chart_h)
            chart_h = room < viz_ui_px(ui, 300) ? room : viz_ui_px(ui, 300);
        SDL_Rect cr = {m.x, m.y + m.h - tl_h - chart_h, m.w, chart_h - pad};
        chart(a, cr, M);
        if (t->focus == 5)
            for (int k = 1; k <= 3; k++)
                viz_ui_frame(ui, (SDL_Rect){cr.x - k, cr.y - k, cr.w + 2 * k, cr.h + 2 * k},
                             ui->th.accent);
    }
    if (t->stop >= 0)
        tour_box(a, (SDL_Rect){m.x, m.y + (t->sides > 1 ? 0 : y - m.y), m.w, m.h});
    if (a->help) {
        viz_ui_text_area(ui, (SDL_Rect){0, 0, a->w, a->h});
        viz_teach_help_overlay(a);
    }
}
