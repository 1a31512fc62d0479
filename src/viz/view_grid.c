/* The grid of cells as heatmaps at the shown step, the hovered pixel, the
 * colour legend and the value under the cursor. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "app_internal.h"

static const char *VIEW_NAMES[VIZ_VIEW_COUNT] = {
    "belief θ_on", "output p_O(on)", "class k drawn", "entropy of θ", "final image"};

const char *viz_view_name(viz_view v)
{
    return v >= 0 && v < VIZ_VIEW_COUNT ? VIEW_NAMES[v] : "?";
}

/* Slot that the final view shows: the final output once it exists, else the
 * newest class draw at or before the position. */
static int final_slot(const viz_run *r, int pos)
{
    int ready = viz_run_ready(r);
    if (ready == r->n_slots)
        return r->n_slots - 1;
    return pos - 1;
}

float viz_pixel_value(const viz_run *r, int pos, viz_view v, int cell, int px, float *real)
{
    const int K = r->model.K;
    float val = -1, re = NAN;
    if (pos <= 0) {
        /* the prior: θ = 1/K everywhere, maximal entropy, nothing drawn yet */
        if (v == VIZ_VIEW_THETA) {
            re = 1.0f / K;
            val = re;
        } else if (v == VIZ_VIEW_ENTROPY) {
            re = (float)log((double)K);
            val = 1;
        }
    } else {
        int slot = v == VIZ_VIEW_FINAL ? final_slot(r, pos) : pos - 1;
        if (slot < 0)
            goto out;
        switch (v) {
        case VIZ_VIEW_THETA:
            re = val = viz_run_theta(r, slot, cell, px);
            break;
        case VIZ_VIEW_P:
            re = val = viz_run_p(r, slot, cell, px);
            break;
        case VIZ_VIEW_K:
        case VIZ_VIEW_FINAL:
            re = r->k[viz_run_at(r, slot, cell, px)];
            val = re / (K - 1);
            break;
        case VIZ_VIEW_ENTROPY:
            re = viz_run_entropy(r, slot, cell, px);
            val = re / (float)log((double)K);
            break;
        default:
            break;
        }
    }
out:
    if (real)
        *real = re;
    return val;
}

void viz_cell_colors(const viz_app *a, const viz_run *r, int pos, viz_view v, int cell,
                     uint8_t *dst, int pitch, int bpp)
{
    const int H = r->model.H, W = r->model.W;
    const int binary = v == VIZ_VIEW_K || v == VIZ_VIEW_FINAL;
    for (int y = 0; y < H; y++) {
        uint8_t *row = dst + (size_t)y * pitch;
        for (int x = 0; x < W; x++) {
            float val = viz_pixel_value(r, pos, v, cell, y * W + x, NULL);
            uint8_t *o = row + (size_t)x * bpp;
            if (val < 0) {
                o[0] = o[1] = o[2] = 44;
            } else if (binary) {
                o[0] = o[1] = o[2] = (uint8_t)(12 + val * 231);
            } else {
                int i = (int)(val * 255 + 0.5f);
                memcpy(o, a->viridis[i < 0 ? 0 : i > 255 ? 255 : i], 3);
            }
            if (bpp == 4)
                o[3] = 255;
        }
    }
}

/* Re-colours the grid texture when the run, position or view changed. */
static void update_texture(viz_app *a)
{
    const viz_run *r = a->run;
    const int g = r->sp.grid, H = r->model.H, W = r->model.W;
    int pos = viz_pos(a), final_ready = viz_run_ready(r) == r->n_slots;
    if (a->grid_tex && a->grid_key.gen == r->gen && a->grid_key.pos == pos &&
        a->grid_key.view == (int)a->view && a->grid_key.final_ready == final_ready)
        return;
    if (!a->grid_tex || a->grid_tex_w != g * W || a->grid_tex_h != g * H) {
        if (a->grid_tex)
            SDL_DestroyTexture(a->grid_tex);
        a->grid_tex = SDL_CreateTexture(a->ren, SDL_PIXELFORMAT_RGBA32,
                                        SDL_TEXTUREACCESS_STREAMING, g * W, g * H);
        if (!a->grid_tex)
            return;
        SDL_SetTextureScaleMode(a->grid_tex, SDL_ScaleModeNearest);
        a->grid_tex_w = g * W;
        a->grid_tex_h = g * H;
    }
    void *pixels;
    int pitch;
    if (SDL_LockTexture(a->grid_tex, NULL, &pixels, &pitch) != 0)
        return;
    for (int c = 0; c < r->cells; c++) {
        uint8_t *dst = (uint8_t *)pixels + (size_t)(c / g) * H * pitch + (size_t)(c % g) * W * 4;
        viz_cell_colors(a, r, pos, a->view, c, dst, pitch, 4);
    }
    SDL_UnlockTexture(a->grid_tex);
    a->grid_key.gen = r->gen;
    a->grid_key.pos = pos;
    a->grid_key.view = (int)a->view;
    a->grid_key.final_ready = final_ready;
}

static void error_box(viz_app *a, SDL_Rect area)
{
    viz_ui *ui = &a->ui;
    int pad = viz_ui_px(ui, 18);
    const char *hint = "Type another path in the Model field and press Enter, cycle through "
                       "models/*.bfn and runs/*.bfn with M, or train a model in the Train tab.";
    SDL_Rect box = {area.x + area.w / 10, 0, area.w * 8 / 10, 0};
    SDL_Rect tr = {box.x + pad, 0, box.w - 2 * pad, 0};
    /* measure first (a pass that does not draw), then draw around it */
    int drawing = ui->drawing;
    ui->drawing = 0;
    int h = viz_ui_line_height(ui, VIZ_FONT_LARGE) + pad / 2 +
            viz_draw_wrapped(a, VIZ_FONT_NORMAL, tr, ui->th.text, a->run->error) + pad +
            viz_draw_wrapped(a, VIZ_FONT_NORMAL, tr, ui->th.dim, hint);
    ui->drawing = drawing;
    box.h = h + 2 * pad;
    box.y = area.y + (area.h - box.h) / 3;
    viz_ui_fill(ui, box, (SDL_Color){48, 30, 32, 255});
    viz_ui_frame(ui, box, ui->th.error);
    int y = box.y + pad;
    viz_ui_text(ui, VIZ_FONT_LARGE, box.x + pad, y, ui->th.error,
                "Cannot sample: the model did not load");
    y += viz_ui_line_height(ui, VIZ_FONT_LARGE) + pad / 2;
    tr.y = y;
    y += viz_draw_wrapped(a, VIZ_FONT_NORMAL, tr, ui->th.text, a->run->error) + pad;
    tr.y = y;
    viz_draw_wrapped(a, VIZ_FONT_NORMAL, tr, ui->th.dim, hint);
}

void viz_grid_view(viz_app *a, SDL_Rect area)
{
    viz_ui *ui = &a->ui;
    a->n_cells_drawn = 0;
    a->hover_cell = -1;
    const viz_run *r = a->run;
    if (!r) {
        viz_ui_text_center(ui, VIZ_FONT_LARGE, area, ui->th.dim, "loading the model…");
        return;
    }
    if (viz_run_get_state(r) == VIZ_RUN_ERROR) {
        error_box(a, area);
        return;
    }
    const int g = r->sp.grid, H = r->model.H, W = r->model.W;
    int gap = viz_ui_px(ui, g > 4 ? 4 : 8);
    double fx = (double)(area.w - gap * (g - 1)) / (g * W);
    double fy = (double)(area.h - gap * (g - 1)) / (g * H);
    double f = fmin(fx, fy);
    if (f >= 1)
        f = floor(f); /* whole screen pixels per image pixel where possible */
    int cw = (int)(f * W), ch = (int)(f * H);
    if (cw < 1 || ch < 1)
        return;
    int total_w = g * cw + (g - 1) * gap, total_h = g * ch + (g - 1) * gap;
    int x0 = area.x + (area.w - total_w) / 2, y0 = area.y + (area.h - total_h) / 2;
    if (ui->drawing)
        update_texture(a);
    for (int c = 0; c < r->cells; c++) {
        SDL_Rect dst = {x0 + (c % g) * (cw + gap), y0 + (c / g) * (ch + gap), cw, ch};
        a->cell_rect[c] = dst;
        char id[32];
        viz_fmt(id, sizeof id, "cell.%d", c);
        if (viz_ui_region(ui, id, dst, NULL)) {
            int px = (ui->mx - dst.x) * W / cw, py = (ui->my - dst.y) * H / ch;
            a->hover_cell = c;
            a->hover_x = viz_clampi(px, 0, W - 1);
            a->hover_y = viz_clampi(py, 0, H - 1);
            if (ui->pressed) {
                a->insp_pinned = 1;
                a->insp_cell = c;
                a->insp_x = a->hover_x;
                a->insp_y = a->hover_y;
            } else if (!a->insp_pinned) {
                a->insp_cell = c;
                a->insp_x = a->hover_x;
                a->insp_y = a->hover_y;
            }
        }
        if (ui->drawing && a->grid_tex) {
            SDL_Rect src = {(c % g) * W, (c / g) * H, W, H};
            SDL_RenderCopy(a->ren, a->grid_tex, &src, &dst);
        }
    }
    a->n_cells_drawn = r->cells;
    if (!ui->drawing)
        return;
    /* the inspected pixel (pinned: yellow; following the mouse: white) */
    if (viz_insp_in_run(a)) {
        SDL_Rect c = a->cell_rect[a->insp_cell];
        int pw = cw / W > 2 ? cw / W : 3, ph = ch / H > 2 ? ch / H : 3;
        SDL_Rect m = {c.x + a->insp_x * cw / W, c.y + a->insp_y * ch / H, pw, ph};
        SDL_Color col = a->insp_pinned ? (SDL_Color){255, 210, 60, 255}
                                       : (SDL_Color){255, 255, 255, 255};
        viz_ui_frame(ui, (SDL_Rect){m.x - 1, m.y - 1, m.w + 2, m.h + 2}, col);
        viz_ui_frame(ui, (SDL_Rect){m.x - 2, m.y - 2, m.w + 4, m.h + 4},
                     (SDL_Color){0, 0, 0, 255});
    }
    int pos = viz_pos(a);
    if (pos == 0 && (a->view == VIZ_VIEW_P || a->view == VIZ_VIEW_K))
        viz_ui_text_center(ui, VIZ_FONT_NORMAL, area, ui->th.text,
                           "step 0: the network has not been asked yet");
}

void viz_legend_view(viz_app *a, SDL_Rect r)
{
    viz_ui *ui = &a->ui;
    const viz_run *run = a->run;
    if (!run || viz_run_get_state(run) == VIZ_RUN_ERROR)
        return;
    int pad = viz_ui_px(ui, 6), lh = viz_ui_line_height(ui, VIZ_FONT_SMALL);
    int bar_w = r.w * 38 / 100, bar_h = viz_ui_px(ui, 12);
    SDL_Rect bar = {r.x, r.y + pad + lh, bar_w, bar_h};
    viz_ui_region(ui, "legend", (SDL_Rect){r.x, r.y, bar_w, r.h},
                  "Colour scale of the heatmaps (viridis: dark = 0, yellow = 1)");
    const int binary = a->view == VIZ_VIEW_K || a->view == VIZ_VIEW_FINAL;
    char lo[32], hi[32], title[96];
    const int K = run->model.K;
    if (binary) {
        viz_fmt(title, sizeof title, "%s (classes 0..%d)", viz_view_name(a->view), K - 1);
        viz_fmt(lo, sizeof lo, "0 off");
        viz_fmt(hi, sizeof hi, "%d on", K - 1);
    } else if (a->view == VIZ_VIEW_ENTROPY) {
        viz_fmt(title, sizeof title, "%s (nats per pixel)", viz_view_name(a->view));
        viz_fmt(lo, sizeof lo, "0");
        viz_fmt(hi, sizeof hi, "ln %d = %.3f", K, log((double)K));
    } else {
        viz_fmt(title, sizeof title, "%s%s", viz_view_name(a->view),
                K > 2 ? " (last class)" : "");
        viz_fmt(lo, sizeof lo, "0");
        viz_fmt(hi, sizeof hi, "1");
    }
    viz_ui_text(ui, VIZ_FONT_SMALL, r.x, r.y + pad / 2, ui->th.dim, title);
    if (ui->drawing) {
        if (binary) {
            viz_ui_fill(ui, (SDL_Rect){bar.x, bar.y, bar.w / 2, bar.h},
                        (SDL_Color){12, 12, 12, 255});
            viz_ui_fill(ui, (SDL_Rect){bar.x + bar.w / 2, bar.y, bar.w - bar.w / 2, bar.h},
                        (SDL_Color){243, 243, 243, 255});
        } else {
            SDL_RenderCopy(a->ren, a->cmap_tex, NULL, &bar);
        }
        viz_ui_frame(ui, bar, ui->th.border);
    }
    viz_ui_text(ui, VIZ_FONT_SMALL, bar.x, bar.y + bar.h + 2, ui->th.dim, lo);
    viz_ui_text_right(ui, VIZ_FONT_SMALL, bar.x + bar.w, bar.y + bar.h + 2, ui->th.dim, hi);

    /* value under the cursor */
    int vx = r.x + bar_w + viz_ui_px(ui, 24);
    viz_ui_region(ui, "legend.value", (SDL_Rect){vx, r.y, r.x + r.w - vx, r.h},
                  "The shown view's value at the pixel under the mouse, at the shown step");
    if (a->hover_cell >= 0) {
        float real;
        int px = a->hover_y * run->model.W + a->hover_x;
        float v = viz_pixel_value(run, viz_pos(a), a->view, a->hover_cell, px, &real);
        char val[64];
        if (v < 0)
            viz_fmt(val, sizeof val, "no value at step 0");
        else if (binary)
            viz_fmt(val, sizeof val, "k = %d", (int)real);
        else if (a->view == VIZ_VIEW_ENTROPY)
            viz_fmt(val, sizeof val, "H = %.3f nats", real);
        else
            viz_fmt(val, sizeof val, "%s = %.4f", a->view == VIZ_VIEW_P ? "p_O(on)" : "θ_on", real);
        viz_ui_text(ui, VIZ_FONT_NORMAL, vx, r.y + pad / 2, ui->th.text, val);
        int y2 = r.y + pad / 2 + viz_ui_line_height(ui, VIZ_FONT_NORMAL);
        /* the longest hint that fits beside the colour bar ("pinned" alone would read
         * as if this pixel were the pinned one) */
        static const char *const hints[2][3] = {
            {" · click to pin the inspector", " · click pins it", ""},
            {" · inspector pinned (right click frees it)", " · inspector pinned", ""}};
        char cell[64];
        viz_fmt(cell, sizeof cell, "cell %d · pixel (x %d, y %d)", a->hover_cell, a->hover_x,
                a->hover_y);
        viz_ui_text_fit(ui, VIZ_FONT_SMALL, vx, y2, ui->th.dim, r.x + r.w - vx, cell, 3,
                        hints[a->insp_pinned != 0]);
    } else {
        static const char *const msg[2] = {"; click to pin it in the inspector.", "."};
        viz_ui_text_fit(ui, VIZ_FONT_SMALL, vx, r.y + pad / 2, ui->th.dim, r.x + r.w - vx,
                        "Point at a pixel to read its value", 2, msg);
    }
}
