/* The app object's insides, shared by app.c and the files that draw its
 * parts (controls, grid, timeline, plots, training panel, help) or act on it
 * (keys, export, script). Main thread only. */
#ifndef VIZ_APP_INTERNAL_H
#define VIZ_APP_INTERNAL_H

#include <SDL.h>

#include "app.h"
#include "text.h"
#include "ui.h"
#include "teach.h"
#include "viz.h"
#include "weights.h"
#include "worker.h"

#define VIZ_MODELS_MAX 64

typedef enum { VIZ_TAB_CONTROLS = 0, VIZ_TAB_INSPECT, VIZ_TAB_TRAIN } viz_tab;

typedef struct {
    SDL_Rect left, right, grid, legend, timeline, status;
    int narrow; /* one side column: the right panel's tabs move into the left one */
} viz_layout;

struct viz_app {
    viz_options opt;
    char model_dir[VIZ_PATH_MAX], runs_dir[VIZ_PATH_MAX], data_dir[VIZ_PATH_MAX],
        out_dir[VIZ_PATH_MAX], font_path[VIZ_PATH_MAX];

    SDL_Window *win;
    SDL_Renderer *ren;
    SDL_Surface *surf; /* headless target */
    viz_text *text;
    viz_ui ui;
    float zoom;
    int w, h;
    uint32_t wake_type;

    viz_worker *worker;
    viz_train *train;
    viz_train_view *tv; /* last copy of the training state */
    uint64_t tv_serial;
    double train_seen_t;   /* when tv was last copied */
    int train_pending;     /* newer training state waits for the redraw throttle */

    /* settings (what the controls show) */
    viz_sample_params set;            /* set.beta1 <= 0: the model's own */
    char model_path[VIZ_PATH_MAX];
    char model_edit[VIZ_PATH_MAX];    /* the text field's content */
    viz_weights *snap;                /* non-NULL: the viewer samples this training snapshot */
    char guide_path[VIZ_PATH_MAX];    /* the model's guide file (worker.h; "" none) */
    int want_submit;
    uint64_t snap_wait;               /* > 0: waiting for a snapshot newer than this serial */
    viz_view view;
    double speed;                     /* playback 0.25..8 */
    viz_train_req treq;               /* training panel choices */

    /* the run on screen */
    viz_run *run;
    double pos;                       /* position 0..positions−1 (0: the prior) */
    int playing;
    double last_update;
    int seen_ready, seen_state;
    double restart_ms;

    /* inspector */
    int hover_cell, hover_x, hover_y; /* pixel under the mouse (-1: none) */
    int insp_cell, insp_x, insp_y, insp_pinned;

    /* grid geometry of the last pass */
    SDL_Rect cell_rect[VIZ_GRID_MAX * VIZ_GRID_MAX];
    int n_cells_drawn;

    /* textures */
    SDL_Texture *grid_tex, *cmap_tex, *preview_tex;
    int grid_tex_w, grid_tex_h;
    struct {
        uint64_t gen;                 /* run generation (a pointer could be reused) */
        int pos, view, final_ready;
    } grid_key;                       /* what grid_tex holds */
    uint64_t preview_shown;
    uint8_t viridis[256][3];

    /* interface state */
    viz_tab tab;                      /* the right panel's tab: inspect or train */
    viz_tab narrow_tab;               /* the single column's tab in a narrow window */
    int narrow;                       /* the last layout was narrow */
    int help;
    int controls_halves;              /* the controls column's last pass: half gaps, */
    float controls_rows_h;            /* and the height of all else (logical px) */
    char models[VIZ_MODELS_MAX][VIZ_PATH_MAX];
    int n_models;
    char notice[600];
    int notice_err;
    double notice_until;

    /* exports in progress */
    int want_view_png;
    char view_png_path[VIZ_PATH_MAX];
    viz_run *frames_run;              /* frame sequence being written */
    int frames_next, frames_view;
    char frames_dir[VIZ_PATH_MAX];

    /* loop */
    int quit, dirty;
    double last_draw;
    long frames_drawn;
    double frame_min_s;               /* pacing: 1/60 s, or 0 when present waits for vsync */
    char renderer_name[32];
    long stat_frames, stat_slow;      /* draws measured; those whose work took over 1/60 s */
    double stat_ms_sum, stat_ms_max;  /* work per draw (the pass and any readback) */
    long stat_anim_frames;            /* draws less than 0.1 s after the previous one */
    double stat_anim_s;               /* and the time between them */

    /* teaching mode (teach.h): the whole window while teach_on */
    struct viz_teach *teach;
    int teach_on;
};

/* ---- actions (actions.c), shared by buttons, keys and scripts ---- */
int viz_positions(const viz_app *a);           /* positions of the shown run (1 if none) */
int viz_positions_ready(const viz_app *a);     /* positions that have data */
int viz_pos(const viz_app *a);                 /* current position as an integer */
int viz_pos_step(const viz_app *a, int pos);   /* Algorithm 9 step at a position */
/* The inspected pixel lies in the shown run (a pinned one may come from a
 * run of another model, another grid or image size). */
int viz_insp_in_run(const viz_app *a);
void viz_act_seek(viz_app *a, int pos);
void viz_act_step(viz_app *a, int delta);
void viz_act_play(viz_app *a, int play);       /* -1 toggles */
void viz_act_speed(viz_app *a, int dir);       /* ×2 or ÷2 */
void viz_act_changed(viz_app *a);              /* a sampling setting changed: restart */
void viz_act_n(viz_app *a, int dir);           /* next nicer n up or down */
void viz_act_beta(viz_app *a, double factor);  /* factor 0: back to the model's own */
void viz_act_seed(viz_app *a, int delta);      /* delta 0: a random seed */
void viz_act_grid(viz_app *a, int delta);
void viz_act_view(viz_app *a, viz_view v);
void viz_act_model_cycle(viz_app *a, int dir);
/* Guidance weight w, put on the control's steps in [1, VIZ_GUIDANCE_MAX];
 * refused with a notice (w stays 1) when the model has no guide. */
void viz_act_guidance(viz_app *a, double w);
/* Looks for the guide of the model in the settings again; w goes back to 1
 * when there is none. Called whenever the model changes. */
void viz_guide_follow_model(viz_app *a);
/* The worker sampled r unguided although guidance was asked for: a notice
 * says why, and the control drops to w = 1 when no newer request waits. */
void viz_act_guide_refused(viz_app *a, const viz_run *r);
void viz_act_model_load(viz_app *a, const char *path);
void viz_act_use_snapshot(viz_app *a);
void viz_act_zoom(viz_app *a, float zoom);
void viz_act_notice(viz_app *a, int is_error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void viz_act_train_start(viz_app *a);
void viz_act_train_pause(viz_app *a);
/* The β(1) on screen: the setting, else the shown run's, else 3. */
double viz_beta_shown(const viz_app *a);
/* beta1 when set (> 0), else the shown run's, else 3. */
double viz_beta_or_model(const viz_app *a, double beta1);
/* The model's trained β(1) (NaN when unknown). */
double viz_beta_model(const viz_app *a);
void viz_scan_models(viz_app *a);

/* ---- parts of the window ---- */
void viz_controls_panel(viz_app *a, SDL_Rect r);              /* view_controls.c */
void viz_grid_view(viz_app *a, SDL_Rect r);                   /* view_grid.c */
void viz_legend_view(viz_app *a, SDL_Rect r);
void viz_timeline_view(viz_app *a, SDL_Rect r);               /* view_timeline.c */
void viz_inspector_view(viz_app *a, SDL_Rect r);              /* view_plots.c */
void viz_schedule_view(viz_app *a, SDL_Rect r);
void viz_train_panel(viz_app *a, SDL_Rect r);                 /* train_panel.c */
void viz_help_overlay(viz_app *a);                            /* keys.c */
/* A shortcut sheet over the window: title, rows of (keys, what they do)
 * with the keys in a column key_col px wide, a box width px wide (both
 * before UI zoom), and a footer of up to two lines. */
void viz_key_sheet(viz_app *a, const char *title, const char *const (*rows)[2], int n,
                   int key_col, int width, const char *footer);           /* keys.c */
/* Handles a shortcut; 1 if key was one. */
int viz_keys_handle(viz_app *a, SDL_Keycode key, Uint16 mod);

/* ---- colours of the heatmaps (view_grid.c) ---- */
/* Display value of one pixel in [0, 1] (-1: no data at this position), and
 * its real value (θ, p, k or entropy in nats). */
float viz_pixel_value(const viz_run *r, int pos, viz_view v, int cell, int px, float *real);
/* One cell as colours: (H, W) pixels of bpp bytes (3 RGB or 4 RGBA) with
 * rows pitch bytes apart. */
void viz_cell_colors(const viz_app *a, const viz_run *r, int pos, viz_view v, int cell,
                     uint8_t *dst, int pitch, int bpp);
const char *viz_view_name(viz_view v);

/* ---- exports (export.c) ---- */
void viz_export_view(viz_app *a);     /* next drawn frame goes to a PNG */
void viz_export_strip(viz_app *a);
void viz_export_frames(viz_app *a);   /* starts writing every position */
void viz_export_step(viz_app *a);     /* continues a frame sequence for a few ms */
/* A free numbered path "<out>/<stem>-NNNN<ext>"; 0 on success. */
int viz_export_path(viz_app *a, const char *stem, const char *ext, char *path, size_t cap);

/* ---- small drawing helpers (view_plots.c) ---- */
void viz_draw_panel(viz_app *a, SDL_Rect r, const char *title);
void viz_draw_polyline(viz_app *a, SDL_Rect plot, const float *xs, const float *ys, int n,
                       double x0, double x1, double y0, double y1, SDL_Color c);
/* Text wrapped to r.w; returns the height used. */
int viz_draw_wrapped(viz_app *a, viz_font f, SDL_Rect r, SDL_Color c, const char *s);
typedef enum { VIZ_ICON_FIRST, VIZ_ICON_BACK, VIZ_ICON_PLAY, VIZ_ICON_PAUSE, VIZ_ICON_FWD,
               VIZ_ICON_LAST } viz_icon;
int viz_icon_button(viz_app *a, const char *id, SDL_Rect r, viz_icon icon, const char *tip);

#endif
