/* The teaching mode's insides, shared by teach.c (state, actions, keys),
 * teach_view.c (drawing) and teach_tour.c (the guided tour). Main thread only. */
#ifndef VIZ_TEACH_INTERNAL_H
#define VIZ_TEACH_INTERNAL_H

#include <SDL.h>

#include "teach.h"

#define DIGIT_SIDE 28

struct viz_teach {
    viz_teach_job *job;
    viz_teach_req *req;         /* scratch: the request as the settings make it now */
    viz_teach_req last;         /* the last one submitted */
    int submitted, want;        /* want: submit even if unchanged (entering, clearing) */
    int retry;                  /* the model was not there at the last request */
    char error[600];            /* why no lesson can be made ("" none) */

    /* Alice's image */
    viz_teach_source source;
    uint8_t *digits;            /* (n_digits, 28, 28) intensities */
    int n_digits, digit;
    char labels[64];            /* one character per digit */
    uint8_t canvas[VIZ_TEACH_D_MAX]; /* the drawing, cH × cW classes */
    int cH, cW;
    int stroke;                 /* the left button is drawing on the canvas */
    double last_px, last_py;    /* canvas position of the previous brush point */
    int eraser;

    /* who sends, and how */
    bfn_teach_mode mode;
    int inpaint;
    viz_teach_mask mask;
    bfn_teach_inpaint method;
    int sbs;                    /* side-by-side: a second row with settings b */
    viz_lesson_params b;        /* b.beta1 <= 0: the model's own */
    int captions;
    int stop;                   /* tour stop shown, -1: closed */
    int focus;                  /* panel the tour points at (-1: none) */
    double tour_pos;            /* a tour stop's wish: position in ‰ of the lesson, -1 none */

    /* the lesson on screen */
    viz_lesson *les[2];
    int sides;
    uint64_t have_gen;
    double pos;                 /* shared timeline position: 0 prior .. M, M + 1 final */
    int playing;
    double speed;
    int seen_ready, seen_state, seen_eval;

    /* drawing */
    SDL_Texture *tex;           /* (2 rows × H, 5 panels × W) heatmaps */
    int tex_w, tex_h;
    struct {
        uint64_t gen;
        int pos, ready, canvas_sum, inpaint, mask;
    } tex_key;
    struct {                    /* the captions' type for a column width */
        int valid, width, alice, mask;
        float zoom;
        viz_font font;
    } cap_key;
    SDL_Rect canvas_rect;       /* where row A's image panel was drawn */
    int img_w, img_h;           /* its size in image pixels */
};

int viz_teach_positions_max(const viz_teach *t);
int viz_teach_pos(const struct viz_app *a);
void viz_teach_seek(struct viz_app *a, int pos);
void viz_teach_play(struct viz_app *a, int play);
SDL_Rect viz_teach_mask_rect(viz_teach_mask m, int H, int W);

/* The tour (teach_tour.c): title and text of a stop, and the help overlay. */
const char *viz_teach_tour_title(int stop);
const char *viz_teach_tour_text(int stop);
void viz_teach_help_overlay(struct viz_app *a);

#endif
