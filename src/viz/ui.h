/* Immediate-mode widgets: every pass lays out and (when drawing) renders the
 * whole interface from the app's state, and each widget call reports what
 * the mouse and keyboard did to it since the previous pass. Passes without
 * drawing let the app handle each click or key press on its own, so two
 * events in one frame are never merged. Every widget records its rectangle
 * under its id, so tests can aim synthetic events at it.
 * Sizes are logical pixels times the zoom (viz_ui_px). Main thread only. */
#ifndef VIZ_UI_H
#define VIZ_UI_H

#include <SDL.h>
#include <stdint.h>

#include "text.h"

#define VIZ_UI_MAX_WIDGETS 256
#define VIZ_UI_ID_MAX 40
#define VIZ_UI_TIP_DELAY 0.5 /* seconds of hovering before a tooltip shows */

typedef struct {
    SDL_Color bg, panel, widget, hot, active, accent, text, dim, border, error, ok;
} viz_theme;

typedef struct {
    char id[VIZ_UI_ID_MAX];
    SDL_Rect r;
} viz_widget_rect;

typedef struct {
    SDL_Renderer *ren;
    viz_text *text;
    float zoom;
    int w, h;          /* output size in pixels */
    viz_theme th;
    int drawing;       /* this pass renders */
    int blocked;       /* widgets ignore the mouse (an overlay is open) */
    double now;

    /* input since the previous pass */
    int mx, my;
    int mouse_down;    /* left button held */
    int pressed;       /* left button went down */
    int released;      /* left button went up */
    int wheel;         /* wheel steps, up positive */
    SDL_Keycode key;   /* a key for the focused text field (0: none) */
    char text_in[64];  /* typed text for the focused text field */

    /* widget state across passes (ids are hashes of the id strings) */
    uint32_t hot, hot_pass, active, focus;
    int focus_seen;    /* the focused text field took part in this pass */
    double hot_since;
    char tip[256], tip_pass[256];
    int tip_drawn;     /* the pending tooltip is on screen */

    viz_widget_rect reg[VIZ_UI_MAX_WIDGETS];
    int n_reg;

    /* text must stay inside the panel it belongs to: a text that would run
     * past the panel's right side is shortened with "…"; the last drawing
     * pass counts those and any that still ran past a side (tests read it) */
    SDL_Rect text_area;       /* the panel being drawn (begin: the window) */
    int text_cut;             /* texts past a side of their panel */
    char text_cut_what[160];  /* the first of them, and by how many pixels */
    int text_shortened;       /* texts shortened to fit */
    char text_shortened_what[160];
} viz_ui;

void viz_ui_init(viz_ui *ui, SDL_Renderer *ren, viz_text *text, float zoom);
void viz_ui_begin(viz_ui *ui, int drawing, int w, int h, double now);
/* Draws the pending tooltip and clears the per-pass input. */
void viz_ui_end(viz_ui *ui);
/* Seconds until a tooltip is due (to wake the idle loop), or -1. */
double viz_ui_next_wake(const viz_ui *ui);
/* A tooltip is due but not drawn yet (the app should redraw). */
int viz_ui_tip_due(const viz_ui *ui, double now);

static inline int viz_ui_px(const viz_ui *ui, float logical)
{
    return (int)(logical * ui->zoom + (logical >= 0 ? 0.5f : -0.5f));
}
static inline int viz_ui_inside(SDL_Rect r, int x, int y)
{
    return x >= r.x && y >= r.y && x < r.x + r.w && y < r.y + r.h;
}

/* ---- drawing (no-ops in a pass that does not draw) ---- */
void viz_ui_fill(viz_ui *ui, SDL_Rect r, SDL_Color c);
void viz_ui_frame(viz_ui *ui, SDL_Rect r, SDL_Color c);
void viz_ui_line(viz_ui *ui, float x0, float y0, float x1, float y1, SDL_Color c);
/* The panel the following text belongs to: text drawn past its right side
 * is shortened with "…" (see text_cut). */
void viz_ui_text_area(viz_ui *ui, SDL_Rect r);
/* Text with its top-left at (x, y); returns its width (also when not drawing). */
int viz_ui_text(viz_ui *ui, viz_font f, int x, int y, SDL_Color c, const char *s);
/* prefix followed by the first of the n alternatives that makes the line
 * at most max_w wide, else by the last (which the panel may shorten; ""
 * draws nothing more). Returns the alternative's index. */
int viz_ui_text_fit(viz_ui *ui, viz_font f, int x, int y, SDL_Color c, int max_w,
                    const char *prefix, int n, const char *const *alts);
int viz_ui_textf(viz_ui *ui, viz_font f, int x, int y, SDL_Color c, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Text centred in r, or right-aligned against x. */
void viz_ui_text_center(viz_ui *ui, viz_font f, SDL_Rect r, SDL_Color c, const char *s);
void viz_ui_text_right(viz_ui *ui, viz_font f, int x, int y, SDL_Color c, const char *s);
int viz_ui_text_width(viz_ui *ui, viz_font f, const char *s);
int viz_ui_line_height(viz_ui *ui, viz_font f);

/* ---- widgets ---- */
/* A passive region: registers it, shows tip on hover; returns 1 if hovered. */
int viz_ui_region(viz_ui *ui, const char *id, SDL_Rect r, const char *tip);
/* Returns 1 when clicked (released over it after a press on it). */
int viz_ui_button(viz_ui *ui, const char *id, SDL_Rect r, const char *label, const char *tip,
                  int selected);
/* Horizontal slider over [lo, hi] (logarithmic if log). mark: a tick at that
 * value (NaN: none). Returns 1 when *v changed (drag, click or wheel). */
int viz_ui_slider(viz_ui *ui, const char *id, SDL_Rect r, double *v, double lo, double hi,
                  int log, double mark, const char *tip);
/* Value of a slider at pixel x, and the x of a value (for tests and ticks). */
double viz_ui_slider_value_at(SDL_Rect r, int x, double lo, double hi, int log);
int viz_ui_slider_x_of(SDL_Rect r, double v, double lo, double hi, int log);
/* One-line text field: click to edit, Enter returns 1, Escape gives up. */
int viz_ui_field(viz_ui *ui, const char *id, SDL_Rect r, char *buf, size_t cap, const char *tip);
/* Whether a text field has the keyboard. */
static inline int viz_ui_editing(const viz_ui *ui) { return ui->focus != 0; }

/* Rectangle recorded for id in the last pass; 0 if there was none. */
int viz_ui_widget_rect(const viz_ui *ui, const char *id, SDL_Rect *r);

/* Mixes a color toward another (t in [0, 1]). */
SDL_Color viz_ui_mix(SDL_Color a, SDL_Color b, float t);

#endif
