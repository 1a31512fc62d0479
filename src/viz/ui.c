#include "ui.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "viz.h"

static uint32_t hash_id(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h ? h : 1;
}

void viz_ui_init(viz_ui *ui, SDL_Renderer *ren, viz_text *text, float zoom)
{
    memset(ui, 0, sizeof *ui);
    ui->ren = ren;
    ui->text = text;
    ui->zoom = zoom;
    ui->th = (viz_theme){
        .bg = {24, 25, 30, 255},
        .panel = {34, 36, 43, 255},
        .widget = {52, 55, 65, 255},
        .hot = {68, 73, 86, 255},
        .active = {52, 104, 178, 255},
        .accent = {94, 156, 236, 255},
        .text = {232, 234, 237, 255},
        .dim = {150, 156, 166, 255},
        .border = {78, 82, 94, 255},
        .error = {240, 98, 86, 255},
        .ok = {120, 200, 120, 255},
    };
}

void viz_ui_begin(viz_ui *ui, int drawing, int w, int h, double now)
{
    ui->drawing = drawing;
    ui->w = w;
    ui->h = h;
    ui->now = now;
    ui->n_reg = 0;
    ui->hot_pass = 0;
    ui->tip_pass[0] = '\0';
    ui->focus_seen = 0;
    ui->text_area = (SDL_Rect){0, 0, w, h};
    if (drawing) {
        ui->text_cut = ui->text_shortened = 0;
        ui->text_cut_what[0] = ui->text_shortened_what[0] = '\0';
    }
}

void viz_ui_text_area(viz_ui *ui, SDL_Rect r) { ui->text_area = r; }

static void draw_tooltip(viz_ui *ui)
{
    int pad = viz_ui_px(ui, 6), tw, th;
    viz_text_size(ui->text, VIZ_FONT_SMALL, ui->tip, &tw, &th);
    SDL_Rect r = {ui->mx + viz_ui_px(ui, 14), ui->my + viz_ui_px(ui, 18), tw + 2 * pad,
                  th + 2 * pad};
    if (r.x + r.w > ui->w)
        r.x = ui->w - r.w - 2;
    if (r.y + r.h > ui->h)
        r.y = ui->my - r.h - viz_ui_px(ui, 6);
    if (r.x < 0)
        r.x = 0;
    if (r.y < 0)
        r.y = 0;
    viz_ui_fill(ui, r, (SDL_Color){250, 246, 214, 255});
    viz_ui_frame(ui, r, (SDL_Color){120, 110, 70, 255});
    viz_text_draw(ui->text, VIZ_FONT_SMALL, ui->tip, r.x + pad, r.y + pad,
                  (SDL_Color){30, 30, 30, 255});
}

void viz_ui_end(viz_ui *ui)
{
    if (ui->focus && !ui->focus_seen) {
        /* the field with the keyboard is gone (a resize or another tab hid
         * it): release the keyboard, or every shortcut would go to it */
        ui->focus = 0;
        SDL_StopTextInput();
    }
    if (ui->hot_pass != ui->hot) {
        ui->hot = ui->hot_pass;
        ui->hot_since = ui->now;
        ui->tip_drawn = 0;
    }
    viz_strcpy(ui->tip, sizeof ui->tip, ui->tip_pass);
    if (ui->drawing && ui->tip[0] && !ui->mouse_down && !ui->blocked &&
        ui->now - ui->hot_since >= VIZ_UI_TIP_DELAY) {
        draw_tooltip(ui);
        ui->tip_drawn = 1;
    }
    if (ui->released)
        ui->active = 0;
    ui->pressed = ui->released = 0;
    ui->wheel = 0;
    ui->key = 0;
    ui->text_in[0] = '\0';
}

double viz_ui_next_wake(const viz_ui *ui)
{
    if (!ui->tip[0] || ui->mouse_down || ui->tip_drawn || ui->blocked)
        return -1;
    double left = ui->hot_since + VIZ_UI_TIP_DELAY - ui->now;
    return left > 0 ? left : 0;
}

int viz_ui_tip_due(const viz_ui *ui, double now)
{
    return ui->tip[0] && !ui->mouse_down && !ui->tip_drawn && !ui->blocked &&
           now - ui->hot_since >= VIZ_UI_TIP_DELAY;
}

/* ---- drawing ---- */

void viz_ui_fill(viz_ui *ui, SDL_Rect r, SDL_Color c)
{
    if (!ui->drawing || r.w <= 0 || r.h <= 0)
        return;
    SDL_SetRenderDrawBlendMode(ui->ren, c.a == 255 ? SDL_BLENDMODE_NONE : SDL_BLENDMODE_BLEND);
    SDL_SetRenderDrawColor(ui->ren, c.r, c.g, c.b, c.a);
    SDL_RenderFillRect(ui->ren, &r);
}

void viz_ui_frame(viz_ui *ui, SDL_Rect r, SDL_Color c)
{
    if (!ui->drawing || r.w <= 0 || r.h <= 0)
        return;
    SDL_SetRenderDrawBlendMode(ui->ren, SDL_BLENDMODE_NONE);
    SDL_SetRenderDrawColor(ui->ren, c.r, c.g, c.b, c.a);
    SDL_RenderDrawRect(ui->ren, &r);
}

void viz_ui_line(viz_ui *ui, float x0, float y0, float x1, float y1, SDL_Color c)
{
    if (!ui->drawing)
        return;
    SDL_SetRenderDrawBlendMode(ui->ren, SDL_BLENDMODE_NONE);
    SDL_SetRenderDrawColor(ui->ren, c.r, c.g, c.b, c.a);
    SDL_RenderDrawLineF(ui->ren, x0, y0, x1, y1);
}

/* Draws s at (x, y) inside the panel being drawn: a text that would run past
 * the panel's right side is shortened to fit with "…" (counted in
 * text_shortened); one that starts left of it, or cannot fit even
 * shortened, is drawn as it is and counted in text_cut. Returns the width
 * drawn. */
static int draw_in_area(viz_ui *ui, viz_font f, int x, int y, SDL_Color c, const char *s)
{
    if (!s || !*s)
        return 0;
    SDL_Rect a = ui->text_area;
    int avail = a.x + a.w - x;
    int w = viz_text_draw_within(ui->text, f, s, x, y, c, x >= a.x ? avail : -1);
    if (x >= a.x && w <= avail)
        return w; /* drawn */
    if (x >= a.x) {
        /* the longest prefix (whole UTF-8 characters) that fits with "…" */
        char buf[520];
        int cuts[512], nc = 0;
        size_t n = strlen(s);
        for (size_t i = 1; i <= n && i < 500 && nc < 512; i++)
            if (i == n || ((unsigned char)s[i] & 0xC0) != 0x80)
                cuts[nc++] = (int)i;
        int lo = 0, hi = nc; /* prefixes cuts[0..lo-1] are known to fit */
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2, bw;
            snprintf(buf, sizeof buf, "%.*s…", cuts[mid - 1], s);
            viz_text_size(ui->text, f, buf, &bw, NULL);
            if (bw <= avail)
                lo = mid;
            else
                hi = mid - 1;
        }
        if (lo > 0) {
            snprintf(buf, sizeof buf, "%.*s…", cuts[lo - 1], s);
            if (ui->text_shortened++ == 0)
                viz_fmt(ui->text_shortened_what, sizeof ui->text_shortened_what, "'%.120s'", s);
            return viz_text_draw(ui->text, f, buf, x, y, c);
        }
    }
    int over = x < a.x ? a.x - x : w - avail;
    if (ui->text_cut++ == 0)
        viz_fmt(ui->text_cut_what, sizeof ui->text_cut_what, "'%.100s' by %d px", s, over);
    return viz_text_draw(ui->text, f, s, x, y, c);
}

int viz_ui_text(viz_ui *ui, viz_font f, int x, int y, SDL_Color c, const char *s)
{
    if (ui->drawing)
        return draw_in_area(ui, f, x, y, c, s);
    int w;
    viz_text_size(ui->text, f, s, &w, NULL);
    return w;
}

int viz_ui_text_fit(viz_ui *ui, viz_font f, int x, int y, SDL_Color c, int max_w,
                    const char *prefix, int n, const char *const *alts)
{
    char line[512];
    int i = 0;
    for (; i < n; i++) {
        snprintf(line, sizeof line, "%s%s", prefix, alts[i]);
        if (i == n - 1 || viz_ui_text_width(ui, f, line) <= max_w)
            break;
    }
    viz_ui_text(ui, f, x, y, c, line);
    return i;
}

int viz_ui_textf(viz_ui *ui, viz_font f, int x, int y, SDL_Color c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return viz_ui_text(ui, f, x, y, c, buf);
}

int viz_ui_text_width(viz_ui *ui, viz_font f, const char *s)
{
    int w;
    viz_text_size(ui->text, f, s, &w, NULL);
    return w;
}

int viz_ui_line_height(viz_ui *ui, viz_font f) { return viz_text_height(ui->text, f); }

void viz_ui_text_center(viz_ui *ui, viz_font f, SDL_Rect r, SDL_Color c, const char *s)
{
    if (!ui->drawing)
        return;
    int w, h;
    viz_text_size(ui->text, f, s, &w, &h);
    int x = r.x + (r.w - w) / 2;
    draw_in_area(ui, f, x < ui->text_area.x && x < r.x ? r.x : x, r.y + (r.h - h) / 2, c, s);
}

void viz_ui_text_right(viz_ui *ui, viz_font f, int x, int y, SDL_Color c, const char *s)
{
    if (!ui->drawing)
        return;
    int w;
    viz_text_size(ui->text, f, s, &w, NULL);
    int x0 = x - w;
    draw_in_area(ui, f, x0 < ui->text_area.x ? ui->text_area.x : x0, y, c, s);
}

SDL_Color viz_ui_mix(SDL_Color a, SDL_Color b, float t)
{
    return (SDL_Color){(Uint8)(a.r + (b.r - a.r) * t), (Uint8)(a.g + (b.g - a.g) * t),
                       (Uint8)(a.b + (b.b - a.b) * t), (Uint8)(a.a + (b.a - a.a) * t)};
}

/* ---- widgets ---- */

static void reg_widget(viz_ui *ui, const char *id, SDL_Rect r)
{
    if (ui->n_reg >= VIZ_UI_MAX_WIDGETS)
        return;
    viz_widget_rect *w = &ui->reg[ui->n_reg++];
    viz_strcpy(w->id, sizeof w->id, id);
    w->r = r;
}

/* Registers the widget and returns whether the mouse is over it. */
static int over(viz_ui *ui, uint32_t h, const char *id, SDL_Rect r, const char *tip)
{
    reg_widget(ui, id, r);
    if (ui->blocked || !viz_ui_inside(r, ui->mx, ui->my))
        return 0;
    if (ui->active && ui->active != h)
        return 0; /* another widget holds the mouse (a slider being dragged) */
    ui->hot_pass = h;
    viz_strcpy(ui->tip_pass, sizeof ui->tip_pass, tip ? tip : "");
    return 1;
}

int viz_ui_widget_rect(const viz_ui *ui, const char *id, SDL_Rect *r)
{
    for (int i = 0; i < ui->n_reg; i++)
        if (!strcmp(ui->reg[i].id, id)) {
            *r = ui->reg[i].r;
            return 1;
        }
    return 0;
}

int viz_ui_region(viz_ui *ui, const char *id, SDL_Rect r, const char *tip)
{
    return over(ui, hash_id(id), id, r, tip);
}

int viz_ui_button(viz_ui *ui, const char *id, SDL_Rect r, const char *label, const char *tip,
                  int selected)
{
    uint32_t h = hash_id(id);
    int is_over = over(ui, h, id, r, tip), clicked = 0;
    if (is_over && ui->pressed)
        ui->active = h;
    if (ui->released && ui->active == h) {
        clicked = is_over;
        ui->active = 0;
    }
    if (ui->drawing) {
        SDL_Color c = selected ? ui->th.active : ui->th.widget;
        if (is_over)
            c = viz_ui_mix(c, (SDL_Color){255, 255, 255, 255}, ui->active == h ? 0.25f : 0.12f);
        viz_ui_fill(ui, r, c);
        if (selected)
            viz_ui_frame(ui, r, ui->th.accent);
        viz_ui_text_center(ui, VIZ_FONT_NORMAL, r, ui->th.text, label);
    }
    return clicked;
}

static double to_unit(double v, double lo, double hi, int log_scale)
{
    if (log_scale)
        return (log(v) - log(lo)) / (log(hi) - log(lo));
    return (v - lo) / (hi - lo);
}

static double from_unit(double u, double lo, double hi, int log_scale)
{
    u = viz_clampd(u, 0, 1);
    if (log_scale)
        return exp(log(lo) + u * (log(hi) - log(lo)));
    return lo + u * (hi - lo);
}

/* The knob travels between the track's ends inset by half a knob. */
static void track_span(SDL_Rect r, int *x0, int *x1)
{
    int inset = r.h / 3;
    *x0 = r.x + inset;
    *x1 = r.x + r.w - 1 - inset;
}

double viz_ui_slider_value_at(SDL_Rect r, int x, double lo, double hi, int log_scale)
{
    int x0, x1;
    track_span(r, &x0, &x1);
    return from_unit(x1 > x0 ? (double)(x - x0) / (x1 - x0) : 0, lo, hi, log_scale);
}

int viz_ui_slider_x_of(SDL_Rect r, double v, double lo, double hi, int log_scale)
{
    int x0, x1;
    track_span(r, &x0, &x1);
    double u = viz_clampd(to_unit(v, lo, hi, log_scale), 0, 1);
    return x0 + (int)lround(u * (x1 - x0));
}

int viz_ui_slider(viz_ui *ui, const char *id, SDL_Rect r, double *v, double lo, double hi,
                  int log_scale, double mark, const char *tip)
{
    uint32_t h = hash_id(id);
    int is_over = over(ui, h, id, r, tip);
    double old = *v;
    if (is_over && ui->pressed)
        ui->active = h;
    if (ui->active == h)
        *v = viz_ui_slider_value_at(r, ui->mx, lo, hi, log_scale);
    else if (is_over && ui->wheel)
        *v = from_unit(to_unit(*v, lo, hi, log_scale) + 0.02 * ui->wheel, lo, hi, log_scale);
    if (ui->released && ui->active == h)
        ui->active = 0;
    if (ui->drawing) {
        int x0, x1, cy = r.y + r.h / 2, th = viz_ui_px(ui, 4);
        track_span(r, &x0, &x1);
        int kx = viz_ui_slider_x_of(r, *v, lo, hi, log_scale);
        viz_ui_fill(ui, (SDL_Rect){x0, cy - th / 2, x1 - x0, th}, ui->th.widget);
        viz_ui_fill(ui, (SDL_Rect){x0, cy - th / 2, kx - x0, th}, ui->th.active);
        if (!isnan(mark) && mark >= lo && mark <= hi) {
            int mx = viz_ui_slider_x_of(r, mark, lo, hi, log_scale);
            viz_ui_fill(ui, (SDL_Rect){mx - 1, r.y + 1, viz_ui_px(ui, 2), r.h - 2},
                        (SDL_Color){242, 193, 78, 255});
        }
        int kw = viz_ui_px(ui, 10), kh = r.h * 2 / 3;
        SDL_Color kc = ui->active == h ? ui->th.text : is_over ? (SDL_Color){210, 214, 222, 255}
                                                                : ui->th.accent;
        viz_ui_fill(ui, (SDL_Rect){kx - kw / 2, cy - kh / 2, kw, kh}, kc);
    }
    return *v != old;
}

/* Removes the last UTF-8 character of s. */
static void utf8_pop(char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        unsigned char c = (unsigned char)s[--n];
        s[n] = '\0';
        if ((c & 0xC0) != 0x80)
            break;
    }
}

int viz_ui_field(viz_ui *ui, const char *id, SDL_Rect r, char *buf, size_t cap, const char *tip)
{
    uint32_t h = hash_id(id);
    int is_over = over(ui, h, id, r, tip), submitted = 0;
    if (ui->pressed) {
        if (is_over && ui->focus != h) {
            ui->focus = h;
            SDL_StartTextInput();
        } else if (!is_over && ui->focus == h) {
            ui->focus = 0;
            SDL_StopTextInput();
        }
    }
    if (ui->focus == h) {
        ui->focus_seen = 1;
        if (ui->text_in[0] && strlen(buf) + strlen(ui->text_in) < cap)
            strcat(buf, ui->text_in);
        if (ui->key == SDLK_BACKSPACE)
            utf8_pop(buf);
        if (ui->key == SDLK_RETURN || ui->key == SDLK_KP_ENTER || ui->key == SDLK_ESCAPE) {
            submitted = ui->key != SDLK_ESCAPE;
            ui->focus = 0;
            SDL_StopTextInput();
        }
        ui->text_in[0] = '\0';
        ui->key = 0;
    }
    if (ui->drawing) {
        viz_ui_fill(ui, r, (SDL_Color){20, 21, 25, 255});
        viz_ui_frame(ui, r, ui->focus == h ? ui->th.accent : is_over ? ui->th.hot : ui->th.border);
        int pad = viz_ui_px(ui, 5), w, th;
        viz_text_size(ui->text, VIZ_FONT_NORMAL, buf, &w, &th);
        SDL_Rect clip = {r.x + pad, r.y, r.w - 2 * pad, r.h};
        int x = clip.x;
        if (w > clip.w - 2)
            x = clip.x + clip.w - 2 - w; /* keep the end of a long path visible */
        SDL_RenderSetClipRect(ui->ren, &clip);
        viz_text_draw(ui->text, VIZ_FONT_NORMAL, buf, x, r.y + (r.h - th) / 2, ui->th.text);
        if (ui->focus == h)
            viz_ui_fill(ui, (SDL_Rect){x + w + 1, r.y + pad, viz_ui_px(ui, 2), r.h - 2 * pad},
                        ui->th.accent);
        SDL_RenderSetClipRect(ui->ren, NULL);
    }
    return submitted;
}
