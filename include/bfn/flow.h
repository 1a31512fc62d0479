/* BFN math for discrete data (Graves et al. 2023, section 6): accuracy
 * schedule, Bayesian flow, sender, Bayesian update, output distribution, and
 * the continuous-time, discrete-time and reconstruction losses.
 *
 * Per-image arrays are planar, matching the network's NCHW layout:
 *  - x, k: class per pixel, uint8, (D) with values in [0, K).
 *  - z: accumulated logits (Bob's belief before normalizing), "zp" planes of D
 *    floats where zp = 1 for K = 2 (the single number ℓ = y_1 − y_0, θ_on = σ(ℓ))
 *    and zp = K otherwise (θ = softmax over the planes). Messages y use the
 *    same representation, and the Bayesian update is z += y (exact; BFN.md).
 *  - network logits and output probabilities: bfn_net_out_channels(K) planes
 *    (1 plane = p_on for K = 2; K planes otherwise).
 * Functions named *_general always use the K-plane representation (even for
 * K = 2); they exist so tests can check the K = 2 fast path against them. */
#ifndef BFN_FLOW_H
#define BFN_FLOW_H

#include <stdint.h>

#include "bfn/rng.h"

/* Planes used for z / y / θ: 1 for K = 2, K otherwise. */
static inline int bfn_flow_planes(int K) { return K == 2 ? 1 : K; }

/* ---- accuracy schedule: β(t) = β(1) t², α(t) = 2 β(1) t ---- */
double bfn_beta_t(double beta1, double t);
double bfn_alpha_t(double beta1, double t);
/* n-step accuracy α_i = β(1)(2i − 1)/n², i = 1..n; they sum to β(1). */
double bfn_alpha_step(double beta1, int i, int n);

/* ---- Bayesian flow: z such that θ = softmax(z) ~ flow(x, β) ----
 * K = 2: ℓ ~ N(2β(2x − 1), 4β); general: y ~ N(β(K e_x − 1), βK I). β = 0 gives z = 0. */
void bfn_flow_sample(float *z, const uint8_t *x, int D, int K, double beta, bfn_rng *rng);
void bfn_flow_sample_general(float *z, const uint8_t *x, int D, int K, double beta, bfn_rng *rng);

/* ---- sender: one message y for classes k at accuracy α (same representation as z) ---- */
void bfn_sender_sample(float *y, const uint8_t *k, int D, int K, double alpha, bfn_rng *rng);
void bfn_sender_sample_general(float *y, const uint8_t *k, int D, int K, double alpha,
                               bfn_rng *rng);

/* ---- Bayesian update on accumulated logits: z += y (n = planes * D) ---- */
void bfn_update(float *z, const float *y, int n);

/* θ from z: K = 2 → θ_on (1 plane); general → softmax over K planes. */
void bfn_theta(float *theta, const float *z, int D, int K);
/* Network input from z: 2θ − 1 per input plane (see net.h). */
void bfn_net_input(float *in, const float *z, int D, int K);

/* ---- output distribution from network logits ----
 * K = 2: p_on = σ(logit) (1 plane); general: softmax over K planes. */
void bfn_output_probs(float *p, const float *logits, int D, int K);
/* Draws k ~ p per pixel from one uniform per pixel, in pixel order. */
void bfn_output_sample(uint8_t *k, const float *p, int D, int K, bfn_rng *rng);
/* Most probable class per pixel (ties → lowest class). */
void bfn_output_argmax(uint8_t *k, const float *p, int D, int K);
/* Per-pixel entropy of θ in nats, from z. */
void bfn_entropy(float *h, const float *z, int D, int K);

/* ---- losses, per image, nats, summed over pixels ---- */

/* Continuous-time loss L∞ = K β(1) t ‖e_x − p‖² summed over pixels, for one
 * image and its network logits. If dlogits is not NULL it receives
 * grad_scale * d(L∞)/d(logits) (overwritten), same layout as logits. */
double bfn_loss_cts(const float *logits, const uint8_t *x, int D, int K, double beta1, double t,
                    float *dlogits, float grad_scale);
/* Same from K logit planes (general path), also for K = 2. */
double bfn_loss_cts_general(const float *logits, const uint8_t *x, int D, int K, double beta1,
                            double t, float *dlogits, float grad_scale);
/* L∞ for one pixel from K explicit probabilities (double, no logits):
 * K β(1) t ‖e_x − p‖², the per-pixel term of the two functions above. */
double bfn_loss_cts_pixel(int x, const double *p, int K, double beta1, double t);

/* One-step KL( p_S(·|x; α) ‖ p_R(·|p; α) ) summed over pixels, estimated by
 * n_mc Monte Carlo draws of y per pixel with log-sum-exp for the mixture.
 * Unbiased; antithetic pairs and a control variate cut its variance (see
 * flow.c). n_mc < 1 counts as 1. p: output probabilities (planes as
 * bfn_output_probs). */
double bfn_kl_step(const uint8_t *x, const float *p, int D, int K, double alpha, int n_mc,
                   bfn_rng *rng);
/* The same for one pixel with K explicit probabilities (general path). */
double bfn_kl_step_pixel(int x, const double *p, int K, double alpha, int n_mc, bfn_rng *rng);

/* Reconstruction loss −ln p_O(x | logits), summed over pixels. */
double bfn_loss_recon(const float *logits, const uint8_t *x, int D, int K);

#endif
