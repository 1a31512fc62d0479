/* The teaching mode of bfnviz: Alice and Bob on screen (BFN.md "The story").
 * Alice's image x is a shipped test digit (assets/teach/digits.pgm) or one
 * drawn with the mouse; per step the window shows x, her message y (one-number
 * form, with α_i), Bob's belief θ after it, the network's guess p_O and what
 * the message cost, in bits, with the running total next to the model's L^n
 * for that image. "Bob alone" (generation) and "Alice sends x" (transmission)
 * are one switch on the same seed; a second row runs other settings (n, β(1),
 * final mode) on the same seed on a shared timeline; inpainting tells Bob a
 * masked part of x; captions and a guided tour explain each part.
 *
 * The main settings (n, β(1), seed, final mode) drive the first row, so their
 * keys keep working here. Main thread only, except teach_job.c. */
#ifndef VIZ_TEACH_H
#define VIZ_TEACH_H

#include <SDL.h>
#include <stdint.h>

#include "bfn/teach.h"
#include "teach_job.h"

struct viz_app;
typedef struct viz_teach viz_teach;

typedef enum { VIZ_SRC_DIGIT = 0, VIZ_SRC_DRAW } viz_teach_source;
typedef enum { VIZ_MASK_TOP = 0, VIZ_MASK_BOTTOM, VIZ_MASK_LEFT, VIZ_MASK_RIGHT,
               VIZ_MASK_COUNT } viz_teach_mask;

#define VIZ_TOUR_STOPS 8

/* ---- life cycle and hooks (app.c, keys.c) ---- */
viz_teach *viz_teach_create(uint32_t wake_type);
void viz_teach_destroy(viz_teach *t);
/* Enters or leaves the teaching mode. */
void viz_teach_toggle(struct viz_app *a);
/* A key in the teaching mode; 1 if it was one of its own. */
int viz_teach_key(struct viz_app *a, SDL_Keycode key, Uint16 mod);
/* Per loop iteration: new lessons, playback, requests. */
void viz_teach_update(struct viz_app *a, double now, double dt);
/* Seconds until the teaching mode needs a frame (-1: no need). */
double viz_teach_next_wake(struct viz_app *a);
void viz_teach_ack(struct viz_app *a);
/* The whole window in the teaching mode (one pass of the interface). */
void viz_teach_pass(struct viz_app *a);
/* The lesson on screen is complete (steps and evaluation) and current. */
int viz_teach_settled(struct viz_app *a);
/* What keeps a lesson from showing (the settings' error, else a failed lesson's);
 * NULL if nothing. */
const char *viz_teach_error(const struct viz_app *a);

/* ---- actions (buttons, keys, tour, tests) ---- */
void viz_teach_set_mode(struct viz_app *a, bfn_teach_mode m);
void viz_teach_set_source(struct viz_app *a, viz_teach_source s);
void viz_teach_digit(struct viz_app *a, int delta);
void viz_teach_clear_canvas(struct viz_app *a);
void viz_teach_set_inpaint(struct viz_app *a, int on, viz_teach_mask mask);
void viz_teach_set_side_by_side(struct viz_app *a, int on);
/* Side B's settings; beta1 <= 0: the model's own. */
void viz_teach_set_b(struct viz_app *a, int n, double beta1, int argmax);
void viz_teach_tour(struct viz_app *a, int stop); /* -1 closes it */

/* ---- state for tests and scripts ---- */
typedef struct {
    int on;
    viz_teach_source source;
    int digit, n_digits, digit_label;
    bfn_teach_mode mode;
    int inpaint;
    viz_teach_mask mask;
    int side_by_side, captions, tour_stop; /* tour_stop -1: closed */
    int H, W;
    int position, positions;    /* shared timeline: 0 prior .. M, M + 1 final */
    int playing;
    int sides;
    char error[600];
} viz_teach_state;

void viz_teach_get_state(struct viz_app *a, viz_teach_state *s);
/* Alice's image as the next lesson will use it (H·W classes); 0 if none. */
int viz_teach_image(struct viz_app *a, uint8_t *x, uint8_t *known, int cap);
/* A new reference to side s of the lesson on screen, or NULL. */
viz_lesson *viz_teach_lesson_ref(struct viz_app *a, int side);
/* Screen position of pixel (x, y) of the drawing canvas (or Alice's image). */
int viz_teach_canvas_pos(struct viz_app *a, int x, int y, int *sx, int *sy);
/* The step side s shows at a timeline position (0 prior, n + 1 final). */
int viz_teach_step_at(const viz_lesson *l, int M, int pos);

/* Brush of the canvas: every pixel whose centre lies within 1.0 of the
 * segment from (x0, y0) to (x1, y1) (pixel units) gets value v — a stroke
 * about as thick as an MNIST pen line. */
void viz_teach_brush(uint8_t *canvas, int H, int W, double x0, double y0, double x1, double y1,
                     uint8_t v);

#endif
