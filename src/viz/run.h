/* What the app keeps of one sampling run (Algorithm 9 over a grid of cells):
 * for every kept step and every pixel, Bob's belief θ, the network's output
 * p_O, the class k drawn, the message y and the entropy of θ, quantized so
 * that going back in time is instant while memory stays bounded. When n ×
 * cells would exceed the memory cap, only every stride-th step is kept (and
 * always step n and the final output); y then holds the sum of the messages
 * since the previous kept step, i.e. the change of Bob's accumulated logits.
 *
 * The sampling worker fills slots in order and publishes each with a release
 * store of `ready`; readers (the UI thread) only touch slots below an
 * acquire load of it. Everything else in the run is fixed before it is published.
 * Runs are reference counted so either side can drop its copy first.
 *
 * For K > 2 the stored planes are those of the last class (θ_K−1, p_K−1, y of
 * its logit); entropy is always that of the whole distribution. */
#ifndef VIZ_RUN_H
#define VIZ_RUN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bfn/sample.h"

#define VIZ_GRID_MAX 8 /* up to 8 × 8 cells */

/* What the user asked the sampler for. */
typedef struct {
    int n;          /* steps, 1..1000 */
    double beta1;   /* β(1); <= 0 in a request means "the model's own" */
    uint64_t seed;
    int grid;       /* grid × grid cells, 1..VIZ_GRID_MAX */
    int argmax;     /* final output: 1 argmax, 0 sampled */
    double guidance; /* autoguidance weight w, 1..VIZ_GUIDANCE_MAX; 1: off (Algorithm 9) */
} viz_sample_params;

/* The guidance weights the app offers: w = 1 (the network alone, as the
 * paper's Algorithm 9) up to VIZ_GUIDANCE_MAX in steps of VIZ_GUIDANCE_STEP
 * (the engine accepts up to BFN_GUIDANCE_MAX). */
#define VIZ_GUIDANCE_MAX 4.0
#define VIZ_GUIDANCE_STEP 0.25

/* The model a run used. */
typedef struct {
    int K, H, W;
    double beta1;        /* β(1) it was trained with */
    char label[160];     /* file name, or "training snapshot (step N)" */
    char dataset[32];
    size_t params;
    uint64_t step;       /* training steps behind the weights */
    uint64_t images;     /* training images behind them; 0 = not recorded */
} viz_model_info;

typedef enum {
    VIZ_RUN_SAMPLING = 0,
    VIZ_RUN_DONE,
    VIZ_RUN_CANCELLED, /* abandoned for a newer request */
    VIZ_RUN_ERROR      /* error holds the message; there are no slots */
} viz_run_state;

#define VIZ_RUN_BYTES_PER_VALUE 10 /* θ 2 + p 2 + y 4 + k 1 + entropy 1 */

typedef struct viz_run {
    atomic_int refs;
    uint64_t gen;             /* request generation that made it */
    viz_sample_params sp;     /* beta1 resolved; guidance as sampled (1 when refused) */
    viz_model_info model;
    int cells, D;
    int stride;               /* every stride-th step kept (plus n and the final) */
    int n_slots;
    int *slot_step;           /* (n_slots) step of each slot: 1..n, n + 1 = final */
    uint16_t *theta;          /* (n_slots, cells, D) θ after the step's update, × 65535 */
    uint16_t *p;              /* (n_slots, cells, D) p_O at t = (step − 1)/n, × 65535 */
    float *y;                 /* (n_slots, cells, D) messages since the previous slot */
    uint8_t *k;               /* (n_slots, cells, D) class drawn at the step */
    uint8_t *ent;             /* (n_slots, cells, D) entropy of θ / ln K, × 255 */
    float *mean_ent;          /* (n_slots) mean entropy of θ over cells and pixels, nats */
    float *y_acc;             /* (cells, D) worker scratch: messages since the last slot */
    float *scratch;           /* (2, K, D) worker scratch */
    size_t bytes;             /* size of the per-slot arrays */
    atomic_int ready;         /* slots published */
    atomic_int state;         /* viz_run_state */
    atomic_int frames_seen;   /* observer calls (every step, kept or not) */
    char error[512];
    char guide[160];          /* the guide sampled with ("guides/NAME.bfn"; "" none) */
    char guide_refused[400];  /* why guidance asked for was not applied ("" : it was, or w = 1) */
    double t_submit;          /* viz_now() when the request was made */
    double t_first;           /* when slot 0 was published (0 before) */
    double t_done;            /* when the run ended (0 before) */
} viz_run;

/* Smallest stride whose slots fit in cap bytes (at least 1; at most n). */
int viz_run_plan_stride(int n, int cells, int D, size_t cap);
/* Slots kept for n steps at stride s: ⌊n/s⌋ (+1 if s ∤ n) + 1 final. */
int viz_run_slot_count(int n, int stride);

/* A run ready to record. NULL when out of memory (msg says so). */
viz_run *viz_run_create(uint64_t gen, const viz_sample_params *sp, const viz_model_info *model,
                        size_t cap, char *msg, size_t msg_cap);
/* A run that failed before sampling: state ERROR with msg. NULL if no memory. */
viz_run *viz_run_create_error(uint64_t gen, const viz_sample_params *sp, const char *msg);
viz_run *viz_run_ref(viz_run *r);
void viz_run_unref(viz_run *r);

/* Observer side: folds one sampler frame into the run; publishes a slot
 * when the step is a kept one. Returns 1 if a slot was published. */
int viz_run_record(viz_run *r, const bfn_sample_frame *f);
void viz_run_finish(viz_run *r, viz_run_state st, const char *msg, double now);

static inline int viz_run_ready(const viz_run *r)
{
    return atomic_load_explicit(&((viz_run *)r)->ready, memory_order_acquire);
}
static inline viz_run_state viz_run_get_state(const viz_run *r)
{
    return (viz_run_state)atomic_load_explicit(&((viz_run *)r)->state, memory_order_acquire);
}

/* The run has ended (done, cancelled or failed); r may be NULL. */
static inline int viz_run_finished(const viz_run *r)
{
    return r && viz_run_get_state(r) != VIZ_RUN_SAMPLING;
}

/* Offset of (slot, cell, pixel) in the per-slot arrays. */
static inline size_t viz_run_at(const viz_run *r, int slot, int cell, int px)
{
    return ((size_t)slot * r->cells + cell) * r->D + px;
}
static inline float viz_run_theta(const viz_run *r, int slot, int cell, int px)
{
    return r->theta[viz_run_at(r, slot, cell, px)] * (1.0f / 65535.0f);
}
static inline float viz_run_p(const viz_run *r, int slot, int cell, int px)
{
    return r->p[viz_run_at(r, slot, cell, px)] * (1.0f / 65535.0f);
}
/* Entropy of θ in nats (from its 8-bit store). */
float viz_run_entropy(const viz_run *r, int slot, int cell, int px);

/* Slot whose step is the largest <= step, or -1 (step 0 is the prior). */
int viz_run_slot_at_step(const viz_run *r, int step);

#endif
