/* Keyboard shortcuts: one table drives both the key handling and the
 * on-screen cheat sheet (F1 or ?), so the two cannot disagree. */
#include <stdio.h>
#include <string.h>

#include "app_internal.h"

enum { M_NONE = 0, M_SHIFT = 1, M_CTRL = 2 };

typedef struct {
    SDL_Keycode key;
    int mod;            /* required modifiers; shifted entries come before plain ones */
    const char *label;  /* as shown in the cheat sheet ("" : shares the previous line) */
    const char *what;
    void (*act)(viz_app *a);
} shortcut;

static void k_play(viz_app *a) { viz_act_play(a, -1); }
static void k_fwd(viz_app *a) { viz_act_step(a, 1); }
static void k_back(viz_app *a) { viz_act_step(a, -1); }
static void k_home(viz_app *a)
{
    a->playing = 0;
    viz_act_seek(a, 0);
}
static void k_end(viz_app *a)
{
    a->playing = 0;
    viz_act_seek(a, viz_positions(a) - 1);
}
static void k_faster(viz_app *a) { viz_act_speed(a, 1); }
static void k_slower(viz_app *a) { viz_act_speed(a, -1); }
static void k_v1(viz_app *a) { viz_act_view(a, VIZ_VIEW_THETA); }
static void k_v2(viz_app *a) { viz_act_view(a, VIZ_VIEW_P); }
static void k_v3(viz_app *a) { viz_act_view(a, VIZ_VIEW_K); }
static void k_v4(viz_app *a) { viz_act_view(a, VIZ_VIEW_ENTROPY); }
static void k_v5(viz_app *a) { viz_act_view(a, VIZ_VIEW_FINAL); }
static void k_n_up(viz_app *a) { viz_act_n(a, 1); }
static void k_n_down(viz_app *a) { viz_act_n(a, -1); }
static void k_beta_up(viz_app *a) { viz_act_beta(a, 1.25); }
static void k_beta_down(viz_app *a) { viz_act_beta(a, 0.8); }
static void k_beta_model(viz_app *a) { viz_act_beta(a, 0); }
static void k_seed_next(viz_app *a) { viz_act_seed(a, 1); }
static void k_seed_prev(viz_app *a) { viz_act_seed(a, -1); }
static void k_seed_rand(viz_app *a) { viz_act_seed(a, 0); }
static void k_guide_up(viz_app *a)
{
    viz_act_guidance(a, a->set.guidance + VIZ_GUIDANCE_STEP);
}
static void k_guide_down(viz_app *a)
{
    viz_act_guidance(a, a->set.guidance - VIZ_GUIDANCE_STEP);
}
static void k_grid_up(viz_app *a) { viz_act_grid(a, 1); }
static void k_grid_down(viz_app *a) { viz_act_grid(a, -1); }
static void k_argmax(viz_app *a)
{
    a->set.argmax = !a->set.argmax;
    viz_act_changed(a);
}
static void k_model_next(viz_app *a) { viz_act_model_cycle(a, 1); }
static void k_model_prev(viz_app *a) { viz_act_model_cycle(a, -1); }
static void k_tab_train(viz_app *a)
{
    int on = a->narrow ? a->narrow_tab == VIZ_TAB_TRAIN : a->tab == VIZ_TAB_TRAIN;
    a->tab = on ? VIZ_TAB_INSPECT : VIZ_TAB_TRAIN;
    a->narrow_tab = on ? VIZ_TAB_CONTROLS : VIZ_TAB_TRAIN;
    a->dirty = 1;
}
static void k_train(viz_app *a) { viz_act_train_pause(a); }
static void k_png(viz_app *a) { viz_export_view(a); }
static void k_strip(viz_app *a) { viz_export_strip(a); }
static void k_frames(viz_app *a) { viz_export_frames(a); }
static void k_zoom_in(viz_app *a) { viz_act_zoom(a, a->zoom * 1.25f); }
static void k_zoom_out(viz_app *a) { viz_act_zoom(a, a->zoom / 1.25f); }
static void k_zoom_reset(viz_app *a) { viz_act_zoom(a, (float)a->opt.scale); }
static void k_help(viz_app *a)
{
    a->help = !a->help;
    a->dirty = 1;
}
static void k_escape(viz_app *a)
{
    if (a->help)
        a->help = 0;
    else
        a->insp_pinned = 0;
    a->dirty = 1;
}
static void k_quit(viz_app *a) { a->quit = 1; }
static void k_teach(viz_app *a) { viz_teach_toggle(a); }

static const shortcut KEYS[] = {
    {SDLK_SPACE, M_NONE, "Space", "play / pause", k_play},
    {SDLK_RIGHT, M_NONE, "→ / ←", "one step forward / back", k_fwd},
    {SDLK_LEFT, M_NONE, "", "", k_back},
    {SDLK_HOME, M_NONE, "Home / End", "jump to the prior / the newest step", k_home},
    {SDLK_END, M_NONE, "", "", k_end},
    {SDLK_RIGHTBRACKET, M_NONE, "] / [", "faster / slower playback", k_faster},
    {SDLK_LEFTBRACKET, M_NONE, "", "", k_slower},
    {SDLK_1, M_NONE, "1 2 3 4 5", "show θ, p_O, k, entropy, final", k_v1},
    {SDLK_2, M_NONE, "", "", k_v2},
    {SDLK_3, M_NONE, "", "", k_v3},
    {SDLK_4, M_NONE, "", "", k_v4},
    {SDLK_5, M_NONE, "", "", k_v5},
    {SDLK_UP, M_NONE, "↑ / ↓", "more / fewer steps n", k_n_up},
    {SDLK_DOWN, M_NONE, "", "", k_n_down},
    {SDLK_PAGEUP, M_NONE, "PgUp / PgDn", "β(1) × 1.25 / ÷ 1.25", k_beta_up},
    {SDLK_PAGEDOWN, M_NONE, "", "", k_beta_down},
    {SDLK_b, M_NONE, "B", "β(1) back to the model's trained value", k_beta_model},
    {SDLK_s, M_SHIFT, "S / Shift+S / R", "next / previous / random seed", k_seed_prev},
    {SDLK_s, M_NONE, "", "", k_seed_next},
    {SDLK_r, M_NONE, "", "", k_seed_rand},
    {SDLK_g, M_SHIFT, "G / Shift+G", "more / fewer cells", k_grid_down},
    {SDLK_g, M_NONE, "", "", k_grid_up},
    {SDLK_a, M_NONE, "A", "final output: sample ↔ argmax", k_argmax},
    {SDLK_w, M_SHIFT, "W / Shift+W", "guidance w ± 0.25 (1 = off; needs a guide)",
     k_guide_down},
    {SDLK_w, M_NONE, "", "", k_guide_up},
    {SDLK_m, M_SHIFT, "M / Shift+M", "next / previous model file", k_model_prev},
    {SDLK_m, M_NONE, "", "", k_model_next},
    {SDLK_t, M_SHIFT, "T / Shift+T", "training panel / start or pause training", k_train},
    {SDLK_t, M_NONE, "", "", k_tab_train},
    {SDLK_l, M_NONE, "L", "teaching mode: Alice sends an image to Bob", k_teach},
    {SDLK_p, M_NONE, "P", "export the window as PNG", k_png},
    {SDLK_e, M_NONE, "E", "export an evolution strip PNG", k_strip},
    {SDLK_f, M_NONE, "F", "export every step as numbered PNGs", k_frames},
    {SDLK_EQUALS, M_CTRL, "Ctrl + / − / 0", "zoom in / out / reset", k_zoom_in},
    {SDLK_PLUS, M_CTRL, "", "", k_zoom_in},
    {SDLK_KP_PLUS, M_CTRL, "", "", k_zoom_in},
    {SDLK_MINUS, M_CTRL, "", "", k_zoom_out},
    {SDLK_KP_MINUS, M_CTRL, "", "", k_zoom_out},
    {SDLK_0, M_CTRL, "", "", k_zoom_reset},
    {SDLK_F1, M_NONE, "F1 or ?", "this cheat sheet", k_help},
    {SDLK_SLASH, M_SHIFT, "", "", k_help},
    {SDLK_QUESTION, M_NONE, "", "", k_help},
    {SDLK_ESCAPE, M_NONE, "Esc", "close the sheet / unpin the inspector", k_escape},
    {SDLK_q, M_CTRL, "Ctrl+Q", "quit", k_quit},
};
#define N_KEYS ((int)(sizeof KEYS / sizeof KEYS[0]))

int viz_keys_handle(viz_app *a, SDL_Keycode key, Uint16 mod)
{
    int shift = (mod & KMOD_SHIFT) != 0, ctrl = (mod & (KMOD_CTRL | KMOD_GUI)) != 0;
    if (a->help && key != SDLK_F1 && key != SDLK_ESCAPE && key != SDLK_SLASH &&
        key != SDLK_QUESTION) {
        a->help = 0; /* any other key closes the sheet first */
        a->dirty = 1;
        return 1;
    }
    if (a->teach_on && viz_teach_key(a, key, mod)) {
        a->dirty = 1;
        return 1;
    }
    for (int i = 0; i < N_KEYS; i++) {
        const shortcut *s = &KEYS[i];
        if (s->key != key || ctrl != ((s->mod & M_CTRL) != 0))
            continue;
        if ((s->mod & M_SHIFT) && !shift)
            continue;
        s->act(a);
        a->dirty = 1;
        return 1;
    }
    return 0;
}

void viz_key_sheet(viz_app *a, const char *title, const char *const (*rows)[2], int n,
                   int key_col, int width, const char *footer)
{
    viz_ui *ui = &a->ui;
    viz_ui_fill(ui, (SDL_Rect){0, 0, a->w, a->h}, (SDL_Color){0, 0, 0, 170});
    int lh = viz_ui_line_height(ui, VIZ_FONT_NORMAL) + viz_ui_px(ui, 4);
    int pad = viz_ui_px(ui, 22), col = viz_ui_px(ui, key_col), w = viz_ui_px(ui, width);
    int h = n * lh + 2 * pad + viz_ui_line_height(ui, VIZ_FONT_LARGE) + 3 * lh;
    if (w > a->w - 20)
        w = a->w - 20;
    SDL_Rect box = {(a->w - w) / 2, (a->h - h) / 2, w, h};
    if (box.y < 4)
        box.y = 4;
    viz_ui_fill(ui, box, ui->th.panel);
    viz_ui_frame(ui, box, ui->th.accent);
    int y = box.y + pad;
    viz_ui_text(ui, VIZ_FONT_LARGE, box.x + pad, y, ui->th.text, title);
    y += viz_ui_line_height(ui, VIZ_FONT_LARGE) + lh / 2;
    for (int i = 0; i < n; i++) {
        viz_ui_text(ui, VIZ_FONT_NORMAL, box.x + pad, y, ui->th.accent, rows[i][0]);
        viz_ui_text(ui, VIZ_FONT_NORMAL, box.x + pad + col, y, ui->th.text, rows[i][1]);
        y += lh;
    }
    y += lh / 2;
    viz_draw_wrapped(a, VIZ_FONT_SMALL, (SDL_Rect){box.x + pad, y, box.w - 2 * pad, 2 * lh},
                     ui->th.dim, footer);
}

void viz_help_overlay(viz_app *a)
{
    const char *rows[N_KEYS][2];
    int n = 0;
    for (int i = 0; i < N_KEYS; i++)
        if (KEYS[i].label[0]) {
            rows[n][0] = KEYS[i].label;
            rows[n++][1] = KEYS[i].what;
        }
    viz_key_sheet(a, "Keyboard shortcuts", (const char *const (*)[2])rows, n, 150, 560,
                  "Mouse: point at a pixel to inspect it, click to pin it, right click to "
                  "free it; the wheel moves a slider. Any key or click closes this sheet.");
}
