/* The pixel inspector (θ_on, p_O(on), the classes drawn and the messages y of
 * one pixel over the whole run) and the schedule plot (β(t), the per-step
 * accuracies α_i, the mean entropy of θ), plus the drawing helpers they and
 * the other panels share. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_internal.h"
#include "bfn/flow.h"

static const SDL_Color C_THETA = {255, 150, 50, 255};
static const SDL_Color C_P = {80, 200, 255, 255};
static const SDL_Color C_K = {170, 170, 170, 255};
static const SDL_Color C_Y = {236, 112, 200, 255};
static const SDL_Color C_BETA = {242, 193, 78, 255};
static const SDL_Color C_ALPHA = {120, 210, 120, 255};
static const SDL_Color C_ENT = {180, 150, 240, 255};
static const SDL_Color C_NOW = {255, 255, 255, 160};

/* ---- helpers ---- */

void viz_draw_panel(viz_app *a, SDL_Rect r, const char *title)
{
    viz_ui *ui = &a->ui;
    int pad = viz_ui_px(ui, 10);
    viz_ui_text(ui, VIZ_FONT_NORMAL, r.x + pad, r.y + pad / 2, ui->th.text, title);
}

void viz_draw_polyline(viz_app *a, SDL_Rect plot, const float *xs, const float *ys, int n,
                       double x0, double x1, double y0, double y1, SDL_Color c)
{
    if (!a->ui.drawing || n < 1)
        return;
    SDL_FPoint buf[256];
    int thick = a->zoom >= 1.5f ? 2 : 1;
    SDL_SetRenderDrawBlendMode(a->ren, SDL_BLENDMODE_NONE);
    SDL_SetRenderDrawColor(a->ren, c.r, c.g, c.b, 255);
    for (int d = 0; d < thick; d++) {
        /* in chunks that overlap by one point so the line stays joined */
        for (int i0 = 0; i0 < n; i0 += 255) {
            int m = n - i0 < 256 ? n - i0 : 256;
            for (int j = 0; j < m; j++) {
                double u = (xs[i0 + j] - x0) / (x1 - x0), v = (ys[i0 + j] - y0) / (y1 - y0);
                buf[j].x = (float)(plot.x + u * (plot.w - 1));
                buf[j].y = (float)(plot.y + (1 - v) * (plot.h - 1)) + d;
            }
            if (m == 1)
                SDL_RenderDrawPointF(a->ren, buf[0].x, buf[0].y);
            else
                SDL_RenderDrawLinesF(a->ren, buf, m);
            if (m < 256)
                break;
        }
    }
}

int viz_draw_wrapped(viz_app *a, viz_font f, SDL_Rect r, SDL_Color c, const char *s)
{
    viz_ui *ui = &a->ui;
    int lh = viz_ui_line_height(ui, f), y = r.y;
    char line[512];
    const char *p = s;
    while (*p) {
        /* the longest run of whole words that fits (at least one word) */
        size_t best = 0, j = 0;
        for (;;) {
            size_t k = j;
            while (p[k] == ' ')
                k++;
            while (p[k] && p[k] != ' ')
                k++;
            if (k == j || k >= sizeof line)
                break;
            memcpy(line, p, k);
            line[k] = '\0';
            if (best && viz_ui_text_width(ui, f, line) > r.w)
                break;
            best = j = k;
        }
        if (!best)
            best = strlen(p) < sizeof line - 1 ? strlen(p) : sizeof line - 1;
        memcpy(line, p, best);
        line[best] = '\0';
        viz_ui_text(ui, f, r.x, y, c, line);
        y += lh;
        p += best;
        while (*p == ' ')
            p++;
    }
    return y - r.y;
}

static void triangle(viz_app *a, float x0, float y0, float x1, float y1, float x2, float y2,
                     SDL_Color c)
{
    SDL_Vertex v[3] = {{{x0, y0}, c, {0, 0}}, {{x1, y1}, c, {0, 0}}, {{x2, y2}, c, {0, 0}}};
    SDL_RenderGeometry(a->ren, NULL, v, 3, NULL, 0);
}

int viz_icon_button(viz_app *a, const char *id, SDL_Rect r, viz_icon icon, const char *tip)
{
    viz_ui *ui = &a->ui;
    int clicked = viz_ui_button(ui, id, r, "", tip, 0);
    if (!ui->drawing)
        return clicked;
    SDL_Color c = ui->th.text;
    float cx = r.x + r.w / 2.0f, cy = r.y + r.h / 2.0f, s = r.h * 0.22f, bar = s * 0.45f;
    switch (icon) {
    case VIZ_ICON_PLAY:
        triangle(a, cx - s, cy - s * 1.2f, cx - s, cy + s * 1.2f, cx + s * 1.2f, cy, c);
        break;
    case VIZ_ICON_PAUSE:
        viz_ui_fill(ui, (SDL_Rect){(int)(cx - s), (int)(cy - s * 1.1f), (int)(bar * 1.6f),
                                   (int)(2.2f * s)}, c);
        viz_ui_fill(ui, (SDL_Rect){(int)(cx + s - bar * 1.6f), (int)(cy - s * 1.1f),
                                   (int)(bar * 1.6f), (int)(2.2f * s)}, c);
        break;
    case VIZ_ICON_FWD:
        triangle(a, cx - s, cy - s, cx - s, cy + s, cx + s, cy, c);
        break;
    case VIZ_ICON_BACK:
        triangle(a, cx + s, cy - s, cx + s, cy + s, cx - s, cy, c);
        break;
    case VIZ_ICON_FIRST:
        triangle(a, cx + s, cy - s, cx + s, cy + s, cx - s * 0.6f, cy, c);
        viz_ui_fill(ui, (SDL_Rect){(int)(cx - s * 0.6f - bar), (int)(cy - s), (int)bar,
                                   (int)(2 * s)}, c);
        break;
    case VIZ_ICON_LAST:
        triangle(a, cx - s, cy - s, cx - s, cy + s, cx + s * 0.6f, cy, c);
        viz_ui_fill(ui, (SDL_Rect){(int)(cx + s * 0.6f), (int)(cy - s), (int)bar, (int)(2 * s)},
                    c);
        break;
    }
    return clicked;
}

/* Plot frame with light grid lines at the quarters. */
static void plot_frame(viz_app *a, SDL_Rect p)
{
    viz_ui *ui = &a->ui;
    viz_ui_fill(ui, p, (SDL_Color){22, 23, 28, 255});
    for (int i = 1; i < 4; i++) {
        viz_ui_fill(ui, (SDL_Rect){p.x, p.y + p.h * i / 4, p.w, 1}, (SDL_Color){44, 46, 54, 255});
        viz_ui_fill(ui, (SDL_Rect){p.x + p.w * i / 4, p.y, 1, p.h}, (SDL_Color){44, 46, 54, 255});
    }
    viz_ui_frame(ui, p, ui->th.border);
}

static void now_marker(viz_app *a, SDL_Rect p, double u)
{
    if (!a->ui.drawing || u < 0)
        return;
    int x = p.x + (int)(u * (p.w - 1));
    SDL_SetRenderDrawBlendMode(a->ren, SDL_BLENDMODE_BLEND);
    SDL_SetRenderDrawColor(a->ren, C_NOW.r, C_NOW.g, C_NOW.b, C_NOW.a);
    SDL_RenderDrawLine(a->ren, x, p.y, x, p.y + p.h - 1);
}

/* A coloured key "■ name" at (x, y); returns the x after it. */
static int key_item(viz_app *a, int x, int y, SDL_Color c, const char *name)
{
    viz_ui *ui = &a->ui;
    int sq = viz_ui_px(ui, 9), lh = viz_ui_line_height(ui, VIZ_FONT_SMALL);
    viz_ui_fill(ui, (SDL_Rect){x, y + (lh - sq) / 2, sq, sq}, c);
    x += sq + viz_ui_px(ui, 4);
    x += viz_ui_text(ui, VIZ_FONT_SMALL, x, y, ui->th.dim, name);
    return x + viz_ui_px(ui, 12);
}

/* The time of a position's θ (after its update): step/n; the prior is 0. */
static double pos_time(const viz_run *r, int pos)
{
    if (pos <= 0)
        return 0;
    int step = r->slot_step[pos - 1];
    return step > r->sp.n ? 1.0 : (double)step / r->sp.n;
}

/* ---- inspector ---- */

void viz_inspector_view(viz_app *a, SDL_Rect r)
{
    viz_ui *ui = &a->ui;
    int pad = viz_ui_px(ui, 10), lh = viz_ui_line_height(ui, VIZ_FONT_SMALL);
    viz_draw_panel(a, r, "Pixel inspector");
    int y = r.y + pad / 2 + viz_ui_line_height(ui, VIZ_FONT_NORMAL) + pad / 2;
    const viz_run *run = a->run;
    SDL_Rect body = {r.x + pad, y, r.w - 2 * pad, r.h - (y - r.y) - pad};
    viz_ui_region(ui, "inspector", body,
                  "θ_on (Bob's belief), p_O(on) (the network's output) and the messages y "
                  "of one pixel over the run");
    if (!viz_insp_in_run(a) || viz_run_get_state(run) == VIZ_RUN_ERROR) {
        viz_draw_wrapped(a, VIZ_FONT_SMALL, body, ui->th.dim,
                         "Point at a pixel of any cell to follow it through the run; click to "
                         "pin it. The plot shows Bob's belief θ_on after each step, the "
                         "network's output p_O(on) he drew the class k from, and the noisy "
                         "message y added to his log-odds.");
        return;
    }
    const int W = run->model.W, px = a->insp_y * W + a->insp_x, cell = a->insp_cell;
    const int ready = viz_run_ready(run), n = run->sp.n;
    /* the longest hint that fits the panel */
    static const char *const hints[2][3] = {
        {" · following the mouse", " · following", ""},
        {" · pinned (right click: follow the mouse)", " · pinned (right click frees it)",
         " · pinned"}};
    char pixel[64];
    viz_fmt(pixel, sizeof pixel, "cell %d · pixel (x %d, y %d)", cell, a->insp_x, a->insp_y);
    viz_ui_text_fit(ui, VIZ_FONT_SMALL, body.x, y, ui->th.dim, body.w, pixel, 3,
                    hints[a->insp_pinned != 0]);
    y += lh + pad / 2;
    int kx = key_item(a, body.x, y, C_THETA, "θ_on");
    kx = key_item(a, kx, y, C_P, "p_O(on)");
    kx = key_item(a, kx, y, C_K, "k drawn");
    key_item(a, kx, y, C_Y, "message y");
    y += lh + pad / 2;

    int text_h = 2 * lh + pad;
    int avail = r.y + r.h - pad - text_h - y;
    int h1 = avail * 62 / 100, h2 = avail - h1 - pad / 2;
    int axis_w = viz_ui_text_width(ui, VIZ_FONT_SMALL, "0.5") + viz_ui_px(ui, 6);
    SDL_Rect p1 = {body.x + axis_w, y, body.w - axis_w, h1};
    SDL_Rect p2 = {body.x + axis_w, y + h1 + pad / 2, body.w - axis_w, h2};
    plot_frame(a, p1);
    plot_frame(a, p2);
    int cnt = ready + 1;
    float *xs = malloc(sizeof(float) * 4 * (size_t)cnt);
    if (!xs)
        return;
    float *th = xs + cnt, *pp = th + cnt, *xp = pp + cnt;
    xs[0] = 0;
    th[0] = 1.0f / run->model.K;
    float ymax = 1e-6f;
    for (int s = 0; s < ready; s++) {
        int step = run->slot_step[s];
        xs[s + 1] = step > n ? 1.0f : (float)step / n;
        xp[s] = (float)(step - 1) / n;
        th[s + 1] = viz_run_theta(run, s, cell, px);
        pp[s] = viz_run_p(run, s, cell, px);
        float yv = fabsf(run->y[viz_run_at(run, s, cell, px)]);
        if (yv > ymax)
            ymax = yv;
    }
    if (ui->drawing) {
        /* classes drawn: grey marks at 0 or 1 */
        for (int s = 0; s < ready; s++) {
            int k = run->k[viz_run_at(run, s, cell, px)];
            int mx = p1.x + (int)(xp[s] * (p1.w - 1));
            int my = k ? p1.y + 2 : p1.y + p1.h - 4;
            viz_ui_fill(ui, (SDL_Rect){mx - 1, my, 3, 3}, C_K);
        }
        /* messages: stems from zero */
        int zy = p2.y + p2.h / 2;
        viz_ui_fill(ui, (SDL_Rect){p2.x, zy, p2.w, 1}, ui->th.border);
        SDL_SetRenderDrawColor(a->ren, C_Y.r, C_Y.g, C_Y.b, 255);
        for (int s = 0; s < ready && run->slot_step[s] <= n; s++) {
            float yv = run->y[viz_run_at(run, s, cell, px)];
            int mx = p2.x + (int)(xs[s + 1] * (p2.w - 1));
            int my = zy - (int)(yv / ymax * (p2.h / 2 - 2));
            SDL_RenderDrawLine(a->ren, mx, zy, mx, my);
        }
    }
    viz_draw_polyline(a, p1, xp, pp, ready, 0, 1, 0, 1, C_P);
    viz_draw_polyline(a, p1, xs, th, cnt, 0, 1, 0, 1, C_THETA);
    int pos = viz_pos(a);
    now_marker(a, p1, pos_time(run, pos));
    now_marker(a, p2, pos_time(run, pos));
    if (ui->drawing && pos > 0) {
        /* the shown step's values as dots on their lines */
        int s = pos - 1, d = viz_ui_px(ui, 3);
        int mx = p1.x + (int)(xs[pos] * (p1.w - 1)), px_ = p1.x + (int)(xp[s] * (p1.w - 1));
        int my = p1.y + (int)((1 - th[pos]) * (p1.h - 1));
        int py_ = p1.y + (int)((1 - pp[s]) * (p1.h - 1));
        viz_ui_fill(ui, (SDL_Rect){px_ - d, py_ - d, 2 * d + 1, 2 * d + 1}, C_P);
        viz_ui_fill(ui, (SDL_Rect){mx - d, my - d, 2 * d + 1, 2 * d + 1}, C_THETA);
    }
    viz_ui_text_right(ui, VIZ_FONT_SMALL, p1.x - 3, p1.y, ui->th.dim, "1");
    viz_ui_text_right(ui, VIZ_FONT_SMALL, p1.x - 3, p1.y + (p1.h - lh) / 2, ui->th.dim, "0.5");
    viz_ui_text_right(ui, VIZ_FONT_SMALL, p1.x - 3, p1.y + p1.h - lh, ui->th.dim, "0");
    viz_ui_text_right(ui, VIZ_FONT_SMALL, p2.x - 3, p2.y + (p2.h - lh) / 2, ui->th.dim, "y");
    viz_ui_textf(ui, VIZ_FONT_SMALL, p2.x + 3, p2.y + 2, ui->th.dim, "±%.3g", ymax);
    viz_ui_text_right(ui, VIZ_FONT_SMALL, p2.x + p2.w - 3, p2.y + p2.h - lh - 1, ui->th.dim,
                      "t →");
    free(xs);

    /* values at the shown step */
    int ty = p2.y + p2.h + pad / 2;
    if (pos == 0) {
        viz_ui_textf(ui, VIZ_FONT_NORMAL, body.x, ty, ui->th.text, "step 0: θ_on = %.4f (prior)",
                     1.0 / run->model.K);
        return;
    }
    int s = pos - 1;
    size_t o = viz_run_at(run, s, cell, px);
    int step = run->slot_step[s];
    viz_ui_textf(ui, VIZ_FONT_NORMAL, body.x, ty, ui->th.text,
                 "%s: θ_on = %.4f   p_O(on) = %.4f   k = %d",
                 step > n ? "final" : "step", viz_run_theta(run, s, cell, px),
                 viz_run_p(run, s, cell, px), run->k[o]);
    int ty2 = ty + viz_ui_line_height(ui, VIZ_FONT_NORMAL);
    if (step <= n)
        viz_ui_textf(ui, VIZ_FONT_SMALL, body.x, ty2, ui->th.dim,
                     "step %d · y = %+.4f%s · entropy of θ = %.3f nats", step, run->y[o],
                     run->stride > 1 ? " (summed since the last kept step)" : "",
                     viz_run_entropy(run, s, cell, px));
    else
        viz_ui_textf(ui, VIZ_FONT_SMALL, body.x, ty2, ui->th.dim,
                     "final output at t = 1: %s of p_O", run->sp.argmax ? "argmax" : "a draw");
}

/* ---- schedule ---- */

void viz_schedule_view(viz_app *a, SDL_Rect r)
{
    viz_ui *ui = &a->ui;
    int pad = viz_ui_px(ui, 10), lh = viz_ui_line_height(ui, VIZ_FONT_SMALL);
    viz_ui_fill(ui, (SDL_Rect){r.x + pad, r.y, r.w - 2 * pad, 1}, ui->th.border);
    viz_draw_panel(a, (SDL_Rect){r.x, r.y + pad / 2, r.w, r.h}, "Accuracy schedule");
    const viz_run *run = a->run;
    if (!run || viz_run_get_state(run) == VIZ_RUN_ERROR)
        return;
    const int n = run->sp.n, K = run->model.K, ready = viz_run_ready(run);
    const double b1 = run->sp.beta1;
    int y = r.y + pad + viz_ui_line_height(ui, VIZ_FONT_NORMAL) + pad / 2;
    char sum_long[64], sum_short[32];
    viz_fmt(sum_long, sizeof sum_long, " (they sum to β(1) = %.3g)", b1);
    viz_fmt(sum_short, sizeof sum_short, ", Σα_i = %.3g", b1);
    const char *const sums[2] = {sum_long, sum_short};
    viz_ui_text_fit(ui, VIZ_FONT_SMALL, r.x + pad, y, ui->th.dim, r.w - 2 * pad,
                    "β(t) = β(1)·t², α_i = β(1)(2i−1)/n²", 2, sums);
    y += lh + pad / 2;
    int kx = key_item(a, r.x + pad, y, C_BETA, "β(t)");
    kx = key_item(a, kx, y, C_ALPHA, "α_i");
    key_item(a, kx, y, C_ENT, "mean entropy of θ");
    viz_ui_text_right(ui, VIZ_FONT_SMALL, r.x + r.w - pad, y, ui->th.dim, "t from 0 to 1 →");
    y += lh + pad / 2;
    SDL_Rect p = {r.x + pad, y, r.w - 2 * pad, r.y + r.h - y - 3 * lh - 2 * pad};
    viz_ui_region(ui, "schedule", p,
                  "β(t): Bob's total accuracy at time t; α_i: the accuracy of message i; "
                  "mean entropy: how unsure Bob still is");
    if (p.h < 10)
        return;
    plot_frame(a, p);
    enum { N = 128 };
    float xs[N], ys[N];
    for (int i = 0; i < N; i++) {
        xs[i] = (float)i / (N - 1);
        ys[i] = (float)bfn_beta_t(b1, xs[i]);
    }
    viz_draw_polyline(a, p, xs, ys, N, 0, 1, 0, b1 * 1.05, C_BETA);
    /* α_i as bars when they fit, else as a line (α_n is the largest) */
    double amax = bfn_alpha_step(b1, n, n) * 1.05;
    if (ui->drawing && n <= p.w / 2) {
        for (int i = 1; i <= n; i++) {
            double al = bfn_alpha_step(b1, i, n);
            int x0 = p.x + (int)((double)(i - 1) / n * (p.w - 1)) + 1;
            int x1 = p.x + (int)((double)i / n * (p.w - 1)) - 1;
            int h = (int)(al / amax * (p.h - 2));
            SDL_Color c = C_ALPHA;
            c.a = 150;
            viz_ui_fill(ui, (SDL_Rect){x0, p.y + p.h - 1 - h, x1 > x0 ? x1 - x0 : 1, h}, c);
        }
    } else {
        float ax[2] = {0.5f / n, 1 - 0.5f / n}, ay[2] = {(float)bfn_alpha_step(b1, 1, n),
                                                         (float)bfn_alpha_step(b1, n, n)};
        viz_draw_polyline(a, p, ax, ay, 2, 0, 1, 0, amax, C_ALPHA);
    }
    if (ready > 0) {
        float *ex = malloc(sizeof(float) * 2 * (size_t)(ready + 1));
        if (ex) {
            float *ey = ex + ready + 1;
            ex[0] = 0;
            ey[0] = (float)log((double)K);
            for (int s = 0; s < ready; s++) {
                int st = run->slot_step[s];
                ex[s + 1] = st > n ? 1.0f : (float)st / n;
                ey[s + 1] = run->mean_ent[s];
            }
            viz_draw_polyline(a, p, ex, ey, ready + 1, 0, 1, 0, log((double)K) * 1.05, C_ENT);
            free(ex);
        }
    }
    int pos = viz_pos(a);
    now_marker(a, p, pos_time(run, pos));
    int ty = p.y + p.h + pad / 2, step = viz_pos_step(a, pos);
    double ent = pos ? run->mean_ent[pos - 1] : log((double)K);
    if (pos == 0)
        viz_ui_text(ui, VIZ_FONT_SMALL, r.x + pad, ty, ui->th.text, "t = 0: β = 0, θ uniform");
    else if (step > n)
        viz_ui_textf(ui, VIZ_FONT_SMALL, r.x + pad, ty, ui->th.text,
                     "final output (t = 1) · β(1) = %.4g", b1);
    else
        viz_ui_textf(ui, VIZ_FONT_SMALL, r.x + pad, ty, ui->th.text,
                     "step %d: α_%d = %.4g · β(%.3f) = %.4g", step, step,
                     bfn_alpha_step(b1, step, n), (double)step / n,
                     bfn_beta_t(b1, (double)step / n));
    viz_ui_textf(ui, VIZ_FONT_SMALL, r.x + pad, ty + lh, ui->th.text,
                 "mean entropy of θ: %.3f nats per pixel", ent);
    viz_ui_textf(ui, VIZ_FONT_SMALL, r.x + pad, ty + 2 * lh, ui->th.dim,
                 "√β(1) = %.3f · the model was trained at β(1) = %.3g", sqrt(b1),
                 run->model.beta1);
}
