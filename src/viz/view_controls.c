/* The left panel: model choice, the sampling settings (n, β(1), seed, grid,
 * final output, guidance), what the cells show, and exports. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "app_internal.h"

#define GAP 10     /* spacing between rows and sections (logical px) when there is room */
#define GAP_LEAST 4 /* the spacing of a column too short for GAP (small window, large zoom) */

typedef struct {
    viz_app *a;
    int x, y, w;  /* next row's left edge, top and width */
    int row, gap; /* row height and spacing */
    int halves;   /* half gaps so far: the height used is the rows' plus halves × gap / 2 */
} column;

/* Vertical space of halves half gaps. */
static void space(column *c, int halves)
{
    c->y += halves * c->gap / 2;
    c->halves += halves;
}

static void section(column *c, const char *name)
{
    viz_ui *ui = &c->a->ui;
    space(c, 2);
    viz_ui_text(ui, VIZ_FONT_SMALL, c->x, c->y, ui->th.accent, name);
    c->y += viz_ui_line_height(ui, VIZ_FONT_SMALL);
    space(c, 1);
}

static void label(column *c, SDL_Color col, const char *s)
{
    viz_ui *ui = &c->a->ui;
    viz_ui_text(ui, VIZ_FONT_NORMAL, c->x, c->y, col, s);
    c->y += viz_ui_line_height(ui, VIZ_FONT_NORMAL) + 2;
}

/* "[−] value [+]" with a caption on the left; returns −1, 0 or +1. */
static int stepper(column *c, const char *id, const char *caption, const char *value,
                   const char *tip_minus, const char *tip_plus, const char *tip_value)
{
    viz_ui *ui = &c->a->ui;
    int bw = c->row, cap_w = viz_ui_px(ui, 90), vw = viz_ui_px(ui, 70), r = 0;
    char bid[48];
    int ty = c->y + (c->row - viz_ui_line_height(ui, VIZ_FONT_NORMAL)) / 2;
    viz_ui_text(ui, VIZ_FONT_NORMAL, c->x, ty, ui->th.dim, caption);
    int x = c->x + cap_w;
    viz_fmt(bid, sizeof bid, "%s-", id);
    if (viz_ui_button(ui, bid, (SDL_Rect){x, c->y, bw, c->row}, "−", tip_minus, 0))
        r = -1;
    x += bw;
    viz_ui_region(ui, id, (SDL_Rect){x, c->y, vw, c->row}, tip_value);
    viz_ui_text_center(ui, VIZ_FONT_NORMAL, (SDL_Rect){x, c->y, vw, c->row}, ui->th.text, value);
    x += vw;
    viz_fmt(bid, sizeof bid, "%s+", id);
    if (viz_ui_button(ui, bid, (SDL_Rect){x, c->y, bw, c->row}, "+", tip_plus, 0))
        r = 1;
    return r;
}

/* "1.64M" or "67.9k": parameter and image counts in the model line. */
static void fmt_count(char *buf, size_t cap, double v)
{
    if (v >= 1e6)
        viz_fmt(buf, cap, "%.2fM", v / 1e6);
    else
        viz_fmt(buf, cap, "%.1fk", v / 1e3);
}

static void model_section(column *c)
{
    viz_app *a = c->a;
    viz_ui *ui = &a->ui;
    section(c, "MODEL");
    int bw = c->row, fw = c->w - 2 * bw - 2 * viz_ui_px(ui, 4);
    if (viz_ui_field(ui, "model", (SDL_Rect){c->x, c->y, fw, c->row}, a->model_edit,
                     sizeof a->model_edit,
                     "Model file to sample from: click, type a path, press Enter"))
        viz_act_model_load(a, a->model_edit);
    int x = c->x + fw + viz_ui_px(ui, 4);
    if (viz_icon_button(a, "model-prev", (SDL_Rect){x, c->y, bw, c->row}, VIZ_ICON_BACK,
                        "Previous model in models/ and runs/ (Shift+M)"))
        viz_act_model_cycle(a, -1);
    if (viz_icon_button(a, "model-next", (SDL_Rect){x + bw + viz_ui_px(ui, 4), c->y, bw, c->row},
                        VIZ_ICON_FWD, "Next model in models/ and runs/ (M)"))
        viz_act_model_cycle(a, 1);
    c->y += c->row;
    space(c, 1);
    const viz_run *r = a->run;
    int lh = viz_ui_line_height(ui, VIZ_FONT_SMALL);
    if (r && viz_run_get_state(r) != VIZ_RUN_ERROR) {
        const viz_model_info *m = &r->model;
        char params[16], count[16], amount[40];
        fmt_count(params, sizeof params, (double)m->params);
        viz_ui_textf(ui, VIZ_FONT_SMALL, c->x, c->y, ui->th.text, "%s — %s %d×%d, K = %d",
                     m->label, m->dataset, m->H, m->W, m->K);
        /* images seen says how much training a file had even when it came from
           several runs (bfn train --init restarts the step count) */
        if (m->images > 0) {
            fmt_count(count, sizeof count, (double)m->images);
            viz_fmt(amount, sizeof amount, "%s training images", count);
        } else {
            viz_fmt(amount, sizeof amount, "%llu training steps", (unsigned long long)m->step);
        }
        viz_ui_textf(ui, VIZ_FONT_SMALL, c->x, c->y + lh, ui->th.dim, "%s parameters · %s", params,
                     amount);
    } else if (r) {
        viz_ui_text(ui, VIZ_FONT_SMALL, c->x, c->y, ui->th.error, "not loaded (see the message)");
    }
    c->y += 2 * lh;
}

/* The guidance stepper and, under it, the guide: the one the shown run used,
 * the one that w > 1 would use, or that the model has none. */
static void guidance_row(column *c)
{
    viz_app *a = c->a;
    viz_ui *ui = &a->ui;
    char s[32];
    double w = a->set.guidance;
    if (w == 1)
        viz_fmt(s, sizeof s, "1 (off)");
    else
        viz_fmt(s, sizeof s, "%g", w);
    int d = stepper(c, "guidance", "guidance", s, "Less guidance; 1 is off (Shift+W)",
                    "More guidance, up to 4 (W)",
                    "Autoguidance: logits = guide + w (model − guide), the guide a weaker "
                    "model in guides/. w = 1: the model alone (Algorithm 9)");
    if (d)
        viz_act_guidance(a, w + d * VIZ_GUIDANCE_STEP);
    c->y += c->row + 2;
    const viz_run *r = a->run;
    char name[VIZ_PATH_MAX + 16];
    viz_fmt(name, sizeof name, "guide: %s/%s", VIZ_GUIDE_DIR, viz_basename(a->guide_path));
    if (!a->guide_path[0]) {
        viz_ui_text(ui, VIZ_FONT_SMALL, c->x, c->y, ui->th.dim,
                    a->snap ? "no guide for a training snapshot" : "no guide for this model");
    } else if (r && r->guide[0] && viz_run_get_state(r) != VIZ_RUN_ERROR) {
        viz_ui_textf(ui, VIZ_FONT_SMALL, c->x, c->y, ui->th.text, "guided by %s (w = %g)",
                     r->guide, r->sp.guidance);
    } else if (w == 1) {
        static const char *const off[2] = {" · off at w = 1", ""}; /* the note goes if need be */
        viz_ui_text_fit(ui, VIZ_FONT_SMALL, c->x, c->y, ui->th.dim, c->w, name, 2, off);
    } else {
        viz_ui_text(ui, VIZ_FONT_SMALL, c->x, c->y, ui->th.dim, name); /* its run is on the way */
    }
    c->y += viz_ui_line_height(ui, VIZ_FONT_SMALL);
}

static void sampling_section(column *c)
{
    viz_app *a = c->a;
    viz_ui *ui = &a->ui;
    char s[128];
    section(c, "SAMPLING");
    viz_fmt(s, sizeof s, "steps n = %d", a->set.n);
    label(c, ui->th.text, s);
    double v = a->set.n;
    if (viz_ui_slider(ui, "n", (SDL_Rect){c->x, c->y, c->w, c->row}, &v, 1, 1000, 1, NAN,
                      "Number of Algorithm 9 steps, 1 to 1000 (logarithmic; Up/Down keys)")) {
        int n = viz_clampi((int)lround(v), 1, 1000);
        if (n != a->set.n) {
            a->set.n = n;
            viz_act_changed(a);
        }
    }
    c->y += c->row;
    space(c, 1);

    double b = viz_beta_shown(a), bm = viz_beta_model(a);
    viz_fmt(s, sizeof s, "β(1) = %.3g    √β(1) = %.3g", b, sqrt(b));
    int ly = c->y;
    label(c, ui->th.text, s);
    int bw = viz_ui_px(ui, 64);
    if (viz_ui_button(ui, "beta-model", (SDL_Rect){c->x + c->w - bw, ly - 2, bw, c->row - 4},
                      "model", "Back to the β(1) the model was trained with (B); the yellow mark",
                      a->set.beta1 <= 0))
        viz_act_beta(a, 0);
    if (viz_ui_slider(ui, "beta1", (SDL_Rect){c->x, c->y, c->w, c->row}, &b, 0.1, 30, 1, bm,
                      "Final accuracy β(1), 0.1 to 30 (logarithmic; PageUp/PageDown). "
                      "Yellow mark: the model's trained value")) {
        a->set.beta1 = b;
        viz_act_changed(a);
    }
    c->y += c->row;
    space(c, 2);

    viz_fmt(s, sizeof s, "%llu", (unsigned long long)a->set.seed);
    int d = stepper(c, "seed", "seed", s, "Previous seed (Shift+S)", "Next seed (S)",
                    "Random seed: every cell is one image of this seed");
    if (d)
        viz_act_seed(a, d);
    int rw = viz_ui_px(ui, 60);
    if (viz_ui_button(ui, "seed-random", (SDL_Rect){c->x + c->w - rw, c->y, rw, c->row}, "dice",
                      "A random seed (R)", 0))
        viz_act_seed(a, 0);
    c->y += c->row;
    space(c, 1);

    viz_fmt(s, sizeof s, "%d×%d", a->set.grid, a->set.grid);
    d = stepper(c, "grid", "grid", s, "Fewer cells (Shift+G)", "More cells, up to 8×8 (G)",
                "How many samples are drawn side by side");
    if (d)
        viz_act_grid(a, d);
    c->y += c->row;
    space(c, 1);

    int ty = c->y + (c->row - viz_ui_line_height(ui, VIZ_FONT_NORMAL)) / 2;
    viz_ui_text(ui, VIZ_FONT_NORMAL, c->x, ty, ui->th.dim, "final");
    int x = c->x + viz_ui_px(ui, 90), half = (c->w - viz_ui_px(ui, 90)) / 2;
    if (viz_ui_button(ui, "final.sample", (SDL_Rect){x, c->y, half - 2, c->row}, "sample",
                      "Final output drawn from p_O at t = 1, as Algorithm 9 (A toggles)",
                      !a->set.argmax) && a->set.argmax) {
        a->set.argmax = 0;
        viz_act_changed(a);
    }
    if (viz_ui_button(ui, "final.argmax", (SDL_Rect){x + half, c->y, half - 2, c->row}, "argmax",
                      "Final output = most probable class, as the reference code (A toggles)",
                      a->set.argmax) && !a->set.argmax) {
        a->set.argmax = 1;
        viz_act_changed(a);
    }
    c->y += c->row;
    space(c, 1);
    guidance_row(c);
}

static void show_section(column *c)
{
    viz_app *a = c->a;
    viz_ui *ui = &a->ui;
    static const char *ids[VIZ_VIEW_COUNT] = {"view.theta", "view.p", "view.k", "view.entropy",
                                              "view.final"};
    static const char *names[VIZ_VIEW_COUNT] = {"belief θ", "output p", "class k", "entropy",
                                                "final"};
    static const char *tips[VIZ_VIEW_COUNT] = {
        "Bob's belief θ_on = P(pixel on) after each step's message (1)",
        "The network's output p_O(on) at t = (i−1)/n, from which k is drawn (2)",
        "The class k drawn from p_O at each step: what Bob tells himself (3)",
        "Entropy of Bob's belief per pixel: how unsure he still is (4)",
        "The final image (5); while sampling, the newest classes drawn",
    };
    section(c, "CELLS SHOW");
    int gap = viz_ui_px(ui, 4), w3 = (c->w - 2 * gap) / 3;
    for (int i = 0; i < VIZ_VIEW_COUNT; i++) {
        int col = i % 3, row = i / 3;
        SDL_Rect b = {c->x + col * (w3 + gap), c->y + row * (c->row + gap), w3, c->row};
        if (viz_ui_button(ui, ids[i], b, names[i], tips[i], (int)a->view == i))
            viz_act_view(a, (viz_view)i);
    }
    c->y += 2 * c->row + gap;
}

static void export_section(column *c)
{
    viz_app *a = c->a;
    viz_ui *ui = &a->ui;
    section(c, "EXPORT (to out/)");
    int gap = viz_ui_px(ui, 4), w3 = (c->w - 2 * gap) / 3;
    if (viz_ui_button(ui, "export.view", (SDL_Rect){c->x, c->y, w3, c->row}, "view PNG",
                      "Save the window as a PNG (P)", 0))
        viz_export_view(a);
    if (viz_ui_button(ui, "export.strip", (SDL_Rect){c->x + w3 + gap, c->y, w3, c->row},
                      "strip PNG", "Save an evolution strip: cells × 11 times of the run (E)", 0))
        viz_export_strip(a);
    if (viz_ui_button(ui, "export.frames", (SDL_Rect){c->x + 2 * (w3 + gap), c->y, w3, c->row},
                      "frames", "Save every step of the run as numbered PNGs (F)",
                      a->frames_run != NULL))
        viz_export_frames(a);
    c->y += c->row;
}

/* The spacing that lets the column fit into height h: GAP where it has room,
 * less (down to GAP_LEAST) where it is short, so that the last row stays
 * above the status line. The column's height comes from the last pass. */
static int column_gap(const viz_app *a, int h)
{
    const viz_ui *ui = &a->ui;
    int full = viz_ui_px(ui, GAP);
    if (a->controls_halves <= 0)
        return full; /* not measured yet */
    int rows = viz_ui_px(ui, a->controls_rows_h);
    return viz_clampi(2 * (h - rows) / a->controls_halves, viz_ui_px(ui, GAP_LEAST), full);
}

void viz_controls_panel(viz_app *a, SDL_Rect r)
{
    viz_ui *ui = &a->ui;
    viz_ui_fill(ui, r, ui->th.panel);
    int pad = viz_ui_px(ui, 14), top = viz_ui_px(ui, 8);
    column c = {.a = a, .x = r.x + pad, .y = r.y + top, .w = r.w - 2 * pad,
                .row = viz_ui_px(ui, 28), .gap = column_gap(a, r.h - 2 * top)};
    viz_ui_text(ui, VIZ_FONT_LARGE, c.x, c.y, ui->th.text, "bfnviz");
    int tw = viz_ui_text_width(ui, VIZ_FONT_LARGE, "bfnviz ");
    int dy = viz_ui_line_height(ui, VIZ_FONT_LARGE) - viz_ui_line_height(ui, VIZ_FONT_SMALL);
    static const char *const sub[3] = {"Bayesian Flow Networks · Algorithm 9",
                                       "Bayesian Flow Networks", ""};
    viz_ui_text_fit(ui, VIZ_FONT_SMALL, c.x + tw, c.y + dy - 2, ui->th.dim, c.w - tw, "", 3, sub);
    c.y += viz_ui_line_height(ui, VIZ_FONT_LARGE);
    model_section(&c);
    sampling_section(&c);
    show_section(&c);
    export_section(&c);
    a->controls_halves = c.halves;
    a->controls_rows_h = (c.y - r.y - top - c.halves * c.gap / 2.0f) / ui->zoom;
    int lh = viz_ui_line_height(ui, VIZ_FONT_SMALL);
    int by = r.y + r.h - lh - viz_ui_px(ui, 8);
    if (by > c.y + c.gap)
        viz_ui_textf(ui, VIZ_FONT_SMALL, c.x, by, ui->th.dim,
                     "zoom %d%% (Ctrl + / −) · F1 or ? : shortcuts", (int)lround(a->zoom * 100));
}
