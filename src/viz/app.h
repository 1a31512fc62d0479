/* bfnviz: the application object. main.c runs it interactively; the headless
 * tests and the scripted mode drive the same object through this API with
 * synthetic SDL events and read back its pixels and state.
 *
 * Threads: everything here runs on the calling (main) thread, which alone
 * touches SDL video, the renderer, textures and fonts. Sampling runs on the
 * worker thread (worker.h), training on its own thread (train_job.h). */
#ifndef VIZ_APP_H
#define VIZ_APP_H

#include <SDL.h>
#include <stddef.h>
#include <stdint.h>

#include "run.h"
#include "train_job.h"

typedef enum {
    VIZ_VIEW_THETA = 0, /* Bob's belief θ_on after the step's update */
    VIZ_VIEW_P,         /* network output p_O(on) at t = (i − 1)/n */
    VIZ_VIEW_K,         /* class drawn from p_O at the step */
    VIZ_VIEW_ENTROPY,   /* entropy of θ per pixel */
    VIZ_VIEW_FINAL,     /* the final image */
    VIZ_VIEW_COUNT
} viz_view;

typedef struct {
    const char *model_path;  /* NULL: <models_dir>/mnist.bfn */
    const char *models_dir;  /* models offered for cycling (default "models") */
    const char *runs_dir;    /* training checkpoints and models (default "runs") */
    const char *data_dir;    /* MNIST IDX files ("": engine default data/mnist) */
    const char *out_dir;     /* exports (default "out") */
    const char *font_path;   /* NULL: assets/fonts/DejaVuSans.ttf, searched */
    int headless;            /* no window: software renderer on a surface */
    int width, height;       /* window or surface size in pixels */
    double scale;            /* UI zoom, 0.5..4 */
    int n_steps, grid, argmax;
    double beta1;            /* <= 0: the model's own */
    uint64_t seed;
    int blas_threads;        /* threads per network call (both threads use it); 0: auto */
    size_t mem_cap_mb;       /* bound on the memory one run keeps */
    double preview_every_s;  /* seconds between training previews */
} viz_options;

/* Defaults: 1280×800, scale 1, n = 100, 4×4 grid, seed 1, 256 MB. */
void viz_options_default(viz_options *o);
/* Threads per network call for --threads asked (<= 0: one per online core,
 * at most VIZ_AUTO_THREADS_MAX, leaving the window its own core on larger
 * machines; a 4x4 grid is a batch of only 16 images). */
#define VIZ_AUTO_THREADS_MAX 4
int viz_threads_for(int asked);

typedef struct viz_app viz_app;

/* Creates the window (or the headless surface), fonts and threads, and
 * submits the first sampling run. NULL with a message in err if SDL or the
 * font cannot start; a missing or corrupt model is not an error here (the
 * app shows it in the window). */
viz_app *viz_app_create(const viz_options *o, char *err, size_t cap);
void viz_app_destroy(viz_app *a);

/* The interactive loop until the window closes: events, update, draw only
 * when something changed, block when idle. Returns 0. */
int viz_app_run(viz_app *a);
/* n frames without waiting: all pending events, update, draw (always). */
void viz_app_run_frames(viz_app *a, int n);
/* Runs frames (sleeping ms_per_frame between them) until the shown run has
 * finished, timeout_s passed or a quit was requested; returns 1 if it finished. */
int viz_app_wait_run(viz_app *a, double timeout_s);
int viz_app_quit_requested(const viz_app *a);
/* SDL timer callback (runs on SDL's timer thread): pushes SDL_QUIT, as the
 * window's close button does, and does not repeat. */
Uint32 viz_push_quit(Uint32 interval, void *user);
/* Restarts the frame-time statistics of viz_app_get_state. */
void viz_app_reset_stats(viz_app *a);

/* Queues a synthetic event (SDL_PushEvent); 1 on success. */
int viz_app_push_event(viz_app *a, const SDL_Event *e);
/* Convenience: mouse motion / press / release at (x, y), key press. */
void viz_app_mouse_move(viz_app *a, int x, int y);
void viz_app_mouse_button(viz_app *a, int x, int y, int down);
void viz_app_key(viz_app *a, SDL_Keycode key, Uint16 mod);
void viz_app_type(viz_app *a, const char *text);

/* The last drawn frame as RGB bytes (h, w, 3), malloc'd; NULL on failure. */
uint8_t *viz_app_read_pixels(viz_app *a, int *w, int *h);
/* Writes the last drawn frame to a PNG. 0 on success. */
int viz_app_screenshot(viz_app *a, const char *path, char *err, size_t cap);

/* Sets the guidance weight w as the controls do: on their steps within
 * [1, VIZ_GUIDANCE_MAX], refused with a notice when the model has no guide. */
void viz_app_set_guidance(viz_app *a, double w);

/* Where widget id was drawn in the last frame (ids such as "beta1", "n",
 * "seed+", "view.theta", "timeline", "cell.5", "tab.train"). 0 if absent. */
int viz_app_widget_rect(viz_app *a, const char *id, SDL_Rect *r);
/* Screen position of pixel (x, y) of cell c in the last frame. 0 if hidden. */
int viz_app_pixel_pos(viz_app *a, int cell, int x, int y, int *sx, int *sy);

typedef struct {
    viz_sample_params settings;   /* what the controls say (beta1 <= 0: model's own) */
    char model_path[1024];
    int guide_available;          /* the model has a guide file (worker.h) */
    viz_view view;
    int playing;
    double speed;
    int position, positions;      /* shown position 0..positions−1; 0 is the prior */
    int shown_step;               /* Algorithm 9 step shown: 0 prior .. n, n + 1 final */
    uint64_t run_gen;             /* run on screen (0: none yet) */
    int run_state, run_ready, run_slots;
    char error[600];              /* error shown in the window ("" none) */
    char status[300];             /* status line */
    long frames_drawn;
    int insp_cell, insp_x, insp_y; /* inspected pixel (-1: none) */
    int help_open;
    viz_train_state train_state;
    int64_t train_step;
    double train_loss;            /* smoothed training loss, nats/image */
    uint64_t train_previews;      /* previews sampled so far */
    char train_message[300];      /* the training panel's last message */
    char model_label[160];        /* what the viewer samples ("m.bfn", "training snapshot …") */
    char guide[160];              /* the guide the shown run used ("guides/m.bfn"; "" none) */
    double restart_ms;            /* request → first frame of the newest run (< 0: none) */
    double frame_ms_avg, frame_ms_max; /* work to draw a frame, since the last reset */
    long frames_slow;             /* frames whose work took longer than 1/60 s */
    double anim_fps;              /* frames per second while animating */
    char renderer[32];            /* SDL renderer in use */
    int text_cut;                 /* texts of the last frame running past their panel */
    char text_cut_what[160];      /* the first of them */
    char notice[200];             /* the status line's notice now shown ("" none) */
    int notice_err;               /* it reports an error */
    int text_shortened;           /* texts of the last frame shortened with "…" to fit */
    char text_shortened_what[160];
} viz_app_state;

void viz_app_get_state(viz_app *a, viz_app_state *s);
/* The run on screen (a new reference; viz_run_unref it), or NULL. */
viz_run *viz_app_run_ref(viz_app *a);
/* The inspector's series for the inspected pixel, one value per stored
 * slot (cap at most): θ_on, p_O(on), y and k. Returns the count (0: none). */
int viz_app_inspector(viz_app *a, float *theta, float *p, float *y, uint8_t *k, int cap);

#endif
