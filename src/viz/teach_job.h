/* The teaching mode's worker: a thread with its own copy of the network that
 * runs one lesson at a time — one or two bfn_teach sessions on one image
 * (side A and, for the side-by-side view, side B with other settings and the
 * same seed), stepped together in order of time t, then, when Alice sends x,
 * the model's L^n and L^r for that image (bfn_teach_image_loss).
 *
 * Every step of a side is kept in a viz_lesson (no memory cap is needed: one
 * image of at most VIZ_TEACH_D_MAX pixels and n <= 1000). The thread fills
 * slots in order and publishes each with a release store of `ready`; the UI
 * thread reads slots below an acquire load of it. Same contract as worker.h:
 * a newer request bumps the generation and the running lesson stops at its
 * next step boundary; progress wakes the UI with one SDL user event (code 3). */
#ifndef VIZ_TEACH_JOB_H
#define VIZ_TEACH_JOB_H

#include <stdatomic.h>
#include <stdint.h>

#include "bfn/teach.h"
#include "viz.h"

#define VIZ_TEACH_D_MAX (128 * 128)
#define VIZ_TEACH_N_MAX 1000
#define VIZ_TEACH_WAKE_CODE 3

typedef struct {
    int n;          /* steps */
    double beta1;   /* β(1) > 0 (resolved by the UI) */
    int argmax;     /* final output: 1 argmax, 0 sampled */
} viz_lesson_params;

typedef enum {
    VIZ_LESSON_RUNNING = 0,
    VIZ_LESSON_DONE,
    VIZ_LESSON_CANCELLED,
    VIZ_LESSON_ERROR
} viz_lesson_state;

typedef enum { VIZ_EVAL_NONE = 0, VIZ_EVAL_RUNNING, VIZ_EVAL_DONE, VIZ_EVAL_ERROR } viz_eval_state;

/* One side of a lesson: slot s holds step s + 1 (1..n), slot n the final output. */
typedef struct {
    atomic_int refs;
    uint64_t gen;
    int side;                /* 0: A, 1: B */
    viz_lesson_params lp;
    uint64_t seed;
    bfn_teach_mode mode;
    int has_mask;
    int H, W, D;
    int n_slots;             /* n + 1 */
    uint8_t *x, *known;      /* (D) Alice's image and the known mask (0/1) */
    float *theta;            /* (n_slots, D) θ_on after the step's update */
    float *p;                /* (n_slots, D) p_O(on) at t = (step − 1)/n (final: t = 1) */
    float *y;                /* (n_slots, D) the message, one-number form (final: 0) */
    float *cost;             /* (n_slots, D) nats: KL of the message; final: −ln p_O(x) */
    uint8_t *k;              /* (n_slots, D) Bob's draw (final: the result) */
    uint8_t *sent;           /* (n_slots, D) classes the message encodes */
    double *step_cost;       /* (n_slots) Σ cost, nats */
    double *total;           /* (n_slots) message costs so far, nats */
    atomic_int ready;
    atomic_int state;        /* viz_lesson_state */
    atomic_int eval_state;   /* viz_eval_state */
    double ln, ln_se, lr, lr_se; /* the model's L^n, L^r for x (valid when eval DONE), nats */
    int eval_draws;
    char error[512];
} viz_lesson;

typedef struct {
    char model_path[VIZ_PATH_MAX];
    int H, W;                     /* the image size the UI built x for */
    uint8_t x[VIZ_TEACH_D_MAX];   /* (H·W) */
    uint8_t known[VIZ_TEACH_D_MAX];
    int has_mask;                 /* inpainting (Bob alone) */
    bfn_teach_inpaint inpaint;
    bfn_teach_mode mode;
    uint64_t seed;
    int sides;                    /* 1 or 2 */
    viz_lesson_params lp[2];
    int eval_draws;               /* copies of x for L^n (Alice mode) */
} viz_teach_req;

viz_lesson *viz_lesson_ref(viz_lesson *l);
void viz_lesson_unref(viz_lesson *l);
static inline int viz_lesson_ready(const viz_lesson *l)
{
    return atomic_load_explicit(&((viz_lesson *)l)->ready, memory_order_acquire);
}
static inline viz_lesson_state viz_lesson_get_state(const viz_lesson *l)
{
    return (viz_lesson_state)atomic_load_explicit(&((viz_lesson *)l)->state,
                                                  memory_order_acquire);
}

typedef struct viz_teach_job viz_teach_job;

viz_teach_job *viz_teach_job_create(uint32_t wake_type);
void viz_teach_job_destroy(viz_teach_job *j);
/* Queues a lesson (copied), replacing any queued one; returns its generation. */
uint64_t viz_teach_job_submit(viz_teach_job *j, const viz_teach_req *req);
uint64_t viz_teach_job_generation(viz_teach_job *j);
/* New references to the latest lesson's sides if its generation differs from
 * have (sides[1] NULL for one side); returns how many (0: nothing newer). */
int viz_teach_job_take(viz_teach_job *j, uint64_t have, viz_lesson *sides[2]);
void viz_teach_job_ack(viz_teach_job *j);
/* 1 while a lesson or its evaluation is running or queued. */
int viz_teach_job_busy(viz_teach_job *j);

#endif
