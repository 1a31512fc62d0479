/* Algorithm 9 (Graves et al. 2023): sample generation for discrete data, as
 * an object that advances one step at a time and reports every step to an
 * observer. Randomness for image j at step i comes from its own counter-based
 * stream derived from (seed, j, i), so a sample depends only on (model, seed,
 * n, β(1), final mode) — not on batch chunking or thread count. */
#ifndef BFN_SAMPLE_H
#define BFN_SAMPLE_H

#include <stdint.h>

#include "bfn/common.h"
#include "bfn/net.h"

typedef enum {
    BFN_FINAL_SAMPLE = 0, /* k ~ p_O(·|θ; 1), as Algorithm 9 */
    BFN_FINAL_ARGMAX = 1  /* most probable class, as the reference code */
} bfn_final_mode;

typedef struct {
    int n_steps;          /* n >= 1 */
    double beta1;         /* β(1) > 0 */
    int count;            /* images sampled together (B) */
    uint64_t seed;
    bfn_final_mode final;
    /* Optional: "Alice sends x" — messages come from these true classes
     * (count × D) instead of Bob's own draws k; k is still drawn and reported.
     * The pointer must stay valid for the sampler's life. NULL: generation. */
    const uint8_t *x_true;
} bfn_sample_config;

/* What one step did, for all images. Arrays are (B, planes, D) with planes as
 * in flow.h; pointers are valid only during the observer call. */
typedef struct {
    int step;          /* 1..n for Algorithm 9's loop; n + 1 for the final output */
    int n;             /* n_steps */
    int is_final;      /* 1 on the final call (t = 1, no message: alpha 0, y NULL) */
    double t;          /* (step − 1)/n, the time the network was evaluated at */
    double alpha;      /* α_i of this step's message */
    int B, D, K;
    int z_planes;      /* planes of z and y */
    int p_planes;      /* planes of p */
    const float *z;    /* (B, z_planes, D) accumulated logits after the update */
    const float *p;    /* (B, p_planes, D) output probabilities at t (before the update) */
    const uint8_t *k;  /* (B, D) classes drawn from p (on the final call: the result) */
    const float *y;    /* (B, z_planes, D) message added at this step; NULL if final */
} bfn_sample_frame;

/* Return non-zero to cancel the run (it stops before the next step). */
typedef int (*bfn_sample_observer)(const bfn_sample_frame *frame, void *user);

typedef struct bfn_sampler bfn_sampler;

/* net must stay valid; its max batch bounds each network call, not count. */
bfn_status bfn_sampler_create(bfn_sampler **out, bfn_net *net, const bfn_sample_config *cfg,
                              bfn_err *err);

/* The output distribution Algorithm 9 draws from, as a function: for nb images
 * whose accumulated logits are z (nb × z_planes × D, flow.h), write p_O(·|θ; t)
 * into p (nb × p_planes × D: p_on for K = 2, K planes otherwise). The network
 * is one such function (bfn_sampler_create); another can stand in for it, e.g.
 * the exact posterior of a small data set, against which the sampler itself
 * can be checked. nb never exceeds the max_batch given at creation. */
typedef bfn_status (*bfn_output_fn)(void *user, const float *z, double t, int nb, float *p,
                                    bfn_err *err);
bfn_status bfn_sampler_create_fn(bfn_sampler **out, int D, int K, int max_batch,
                                 bfn_output_fn fn, void *user, const bfn_sample_config *cfg,
                                 bfn_err *err);

/* Autoguidance (Karras et al. 2024, "Guiding a diffusion model with a bad
 * version of itself"): p_O from the network's logits pushed away from those of
 * a weaker network of the same data shape (an early snapshot of the same run,
 * or a smaller one), l = l_guide + w (l_net − l_guide) per logit plane. w = 1
 * is Algorithm 9 with net alone (the guide is not run: the same samples as
 * bfn_sampler_create); w > 1 moves each step's output distribution away from
 * the guide's errors. w in [0, BFN_GUIDANCE_MAX]. Both nets must stay valid;
 * the smaller max batch bounds each network call. */
#define BFN_GUIDANCE_MAX 10.0
bfn_status bfn_sampler_create_guided(bfn_sampler **out, bfn_net *net, bfn_net *guide,
                                     double guidance, const bfn_sample_config *cfg, bfn_err *err);
void bfn_sampler_destroy(bfn_sampler *s);

/* The settings every run of Algorithm 9 shares (sampler and teacher): n in
 * [1, 1000000], β(1) in (0, 1e4], a known final mode. Errors name `who`. */
bfn_status bfn_sample_settings_check(const char *who, int n_steps, double beta1,
                                     bfn_final_mode final, bfn_err *err);

void bfn_sampler_set_observer(bfn_sampler *s, bfn_sample_observer obs, void *user);

/* Performs the next step (1..n, then the final output). Returns
 * BFN_ERR_CANCELLED if the observer asked to stop. */
bfn_status bfn_sampler_step(bfn_sampler *s, bfn_err *err);
/* Runs the remaining steps. cancel (may be NULL) is polled between steps. */
bfn_status bfn_sampler_run(bfn_sampler *s, const volatile int *cancel, bfn_err *err);

/* Steps done so far: 0 before the first, n + 1 when finished. */
int bfn_sampler_steps_done(const bfn_sampler *s);
int bfn_sampler_finished(const bfn_sampler *s);
/* The final classes (B, D) once finished; NULL before. */
const uint8_t *bfn_sampler_result(const bfn_sampler *s);
/* Current accumulated logits (B, z_planes, D). */
const float *bfn_sampler_z(const bfn_sampler *s);

#endif
