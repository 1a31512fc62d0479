/* The guided tour of the teaching mode (eight stops, next/previous) and its
 * keyboard cheat sheet. Each stop sets the lesson up so that what the text
 * talks about is on screen, and points at one panel. */
#include <stdio.h>
#include <string.h>

#include "app_internal.h"
#include "teach_internal.h"

enum { P_X = 0, P_Y, P_THETA, P_P, P_COST, P_CHART = 5, P_NONE = -1 };

typedef struct {
    const char *title, *text;
    int focus;          /* panel to frame */
    int mode;           /* bfn_teach_mode */
    int sbs;            /* side-by-side row: 0 off, 1 fewer steps, 2 lower β(1) */
    int where;          /* where in the lesson to stop, ‰ of the timeline */
} stop;

static const stop STOPS[VIZ_TOUR_STOPS] = {
    {"1. Alice and Bob",
     "Alice knows an image x (left). Bob knows nothing yet: his belief θ is ½ for every pixel. "
     "Alice will tell him x through n noisy messages, and we count what they cost.",
     P_X, BFN_TEACH_ALICE, 0, 0},
    {"2. Bob's belief θ",
     "θ is Bob's probability that each pixel is on. Bright pixels: he is fairly sure they are "
     "ink. After a third of the messages he already has a blurred idea of the digit.",
     P_THETA, BFN_TEACH_ALICE, 0, 330},
    {"3. A message y",
     "Each message is one noisy number per pixel: Alice adds noise to ±2α (plus for ink). Early "
     "messages have a tiny accuracy α, so the noise drowns them; Bob adds y to his log-odds.",
     P_Y, BFN_TEACH_ALICE, 0, 40},
    {"4. Why precision grows",
     "The accuracies α_i = β(1)(2i−1)/n² grow with i and sum to β(1): later messages are sharp. "
     "Bob's total accuracy after time t is β(t) = β(1)t², so he becomes certain at the end.",
     P_Y, BFN_TEACH_ALICE, 0, 800},
    {"5. What the network adds",
     "The network looks at all of θ at once and guesses the whole image (p_O). Bob expects the "
     "next message from that guess, so a message costs bits only where the guess is wrong.",
     P_COST, BFN_TEACH_ALICE, 0, 450},
    {"6. The bill",
     "The bits of all messages add up to L^n, the model's loss for this image; the final guess "
     "costs L^r more. The chart compares the running total with bfn eval's L^n for the image.",
     P_CHART, BFN_TEACH_ALICE, 0, 1000},
    {"7. Bob alone: generation",
     "Now Alice is silent: Bob draws a guess from his own network and sends it to himself, with "
     "the same noise (same seed). That is Algorithm 9: a new digit appears instead of x.",
     P_X, BFN_TEACH_BOB, 0, 1000},
    {"8. What n and β(1) change",
     "Two settings on one seed. Fewer steps (lower row) means larger, costlier messages: L^n "
     "grows. β(1) sets how sure Bob is at the end. Now draw your own digit (D), or hide half of "
     "one and let Bob complete it (I).",
     P_CHART, BFN_TEACH_ALICE, 1, 1000},
};

const char *viz_teach_tour_title(int s) { return s >= 0 && s < VIZ_TOUR_STOPS ? STOPS[s].title : ""; }
const char *viz_teach_tour_text(int s) { return s >= 0 && s < VIZ_TOUR_STOPS ? STOPS[s].text : ""; }

void viz_teach_tour(viz_app *a, int s)
{
    viz_teach *t = a->teach;
    a->dirty = 1;
    if (s < 0 || s >= VIZ_TOUR_STOPS) {
        t->stop = -1;
        t->focus = P_NONE;
        t->tour_pos = -1;
        return;
    }
    const stop *st = &STOPS[s];
    t->stop = s;
    t->focus = st->focus;
    t->mode = (bfn_teach_mode)st->mode;
    t->inpaint = 0;
    if (t->n_digits && t->source == VIZ_SRC_DRAW && s == 0)
        t->source = VIZ_SRC_DIGIT;
    t->sbs = st->sbs != 0;
    if (st->sbs == 1)
        viz_teach_set_b(a, a->set.n > 10 ? 10 : 100, a->set.beta1, a->set.argmax);
    t->tour_pos = st->where;
    t->playing = 0;
}

/* ---- cheat sheet ---- */

static const char *const KEYS[][2] = {
    {"L", "leave the teaching mode"},
    {"X", "Alice sends x ↔ Bob alone (same seed)"},
    {"N / Shift+N", "next / previous test digit"},
    {"D", "draw your own digit ↔ test digit"},
    {"Backspace", "clear the drawing"},
    {"I / K", "inpainting on/off / next known half"},
    {"V", "side by side: a second row of settings"},
    {"C", "captions on/off"},
    {"O", "guided tour; PgDn/PgUp or . / , next/previous stop"},
    {"Space ← → Home End", "play, step, jump on the shared timeline"},
    {"↑ ↓  PgUp PgDn  A", "row A: n, β(1), final sample/argmax"},
    {"S / Shift+S / R", "next / previous / random seed (both rows)"},
    {"Ctrl + / −", "zoom (for a projector)"},
    {"F1", "this sheet"},
};

void viz_teach_help_overlay(viz_app *a)
{
    viz_key_sheet(a, "Teaching mode: shortcuts", KEYS, (int)(sizeof KEYS / sizeof KEYS[0]), 190,
                  620, "Draw with the left button on Alice's image when D is on. Any key closes "
                  "this.");
}
