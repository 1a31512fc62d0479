/* Teaching: one image sent from Alice to Bob one message at a time (BFN.md
 * "The story"), with what every message costs.
 *
 * A session is Algorithm 9 for a single image whose messages encode one of:
 *  - Bob alone: Bob's own draws k ~ p_O (generation). It reproduces image 0
 *    of bfn_sampler for the same (seed, n, β(1), final mode).
 *  - Alice sends x: the true classes x (transmission), as bfn_sampler with
 *    x_true. Message i then costs
 *        KL( p_S(·|x; α_i) ‖ p_R(·|θ_{i−1}; t_{i−1}, α_i) )
 *    nats, and after the n messages Bob's final guess costs −ln p_O(x|θ_n; 1)
 *    more. Bob's θ_{i−1} has the law of the Bayesian flow at t_{i−1} (the
 *    accuracies sent so far sum to β(t_{i−1})), so the n message costs sum to
 *    an unbiased one-run estimate of L^n for this x (BFN.md "Losses"), and
 *    the last term is one draw of L^r: together what bfn eval reports.
 *  - Inpainting: Bob alone, except that the pixels of a mask are known to
 *    him; see bfn_teach_inpaint for the two ways of telling him.
 * The random numbers are bfn_sampler's for image 0: one stream per step,
 * first the draws of k, then the message noise. So with one seed, Bob alone
 * and Alice's messages share the same noise and differ only in its mean.
 *
 * Arrays are planar as in flow.h: z and y have bfn_flow_planes(K) planes of
 * D values, p has bfn_net_out_channels(K) planes. */
#ifndef BFN_TEACH_H
#define BFN_TEACH_H

#include <stdint.h>

#include "bfn/common.h"
#include "bfn/eval.h"
#include "bfn/net.h"
#include "bfn/sample.h"

typedef enum {
    BFN_TEACH_BOB = 0,   /* Bob alone: messages from his own draws (generation) */
    BFN_TEACH_ALICE = 1  /* Alice sends x: messages from the true image, with costs */
} bfn_teach_mode;

/* How Bob is told the known pixels when inpainting (Bob alone with a mask). */
typedef enum {
    /* His belief in a known pixel is set to certainty (logit ±BFN_TEACH_CERTAIN)
     * before every network call, so the network always sees it as settled;
     * that pixel's messages are ignored. */
    BFN_INPAINT_CLAMP = 0,
    /* Alice sends the known pixels with the ordinary schedule while Bob makes
     * up the others: his belief there follows the Bayesian flow the network
     * was trained on, and becomes certain only at the end. */
    BFN_INPAINT_SEND = 1
} bfn_teach_inpaint;

/* The logit of a belief clamped to certainty: σ(30) = 1 − 9e-14, 1 in float. */
#define BFN_TEACH_CERTAIN 30.0f

typedef struct {
    int n_steps;              /* n >= 1 */
    double beta1;             /* β(1) > 0 */
    uint64_t seed;
    bfn_final_mode final;
    bfn_teach_mode mode;
    const uint8_t *x;         /* (D) Alice's image: needed for ALICE and for a mask */
    const uint8_t *known;     /* (D) non-zero = known pixel (BOB only); NULL: none */
    bfn_teach_inpaint inpaint;
    int n_mc;                 /* Monte Carlo draws per pixel of a KL when K > 2 (K = 2 is
                                 computed by quadrature); < 1 counts as 1 */
} bfn_teach_config;

/* What one step did. Pointers stay valid until the next step or destroy. */
typedef struct {
    int step;            /* 1..n for the messages; n + 1 for the final output */
    int n;
    int is_final;        /* the final call: t = 1, no message */
    double t;            /* (step − 1)/n: when the network was asked */
    double alpha;        /* α_i of this message (0 on the final call) */
    int D, K, z_planes, p_planes;
    const uint8_t *sent; /* (D) the classes this message encodes; NULL on the final call */
    const float *y;      /* (z_planes, D) the message; NULL on the final call */
    const float *z;      /* (z_planes, D) Bob's accumulated logits after the update */
    const float *p;      /* (p_planes, D) p_O(·|θ_{i−1}; t): the guess the receiver uses */
    const uint8_t *k;    /* (D) Bob's draw from p (the final call: the result) */
    const float *cost;   /* (D) nats per pixel, Alice mode only (else NULL): this
                            message's KL, or −ln p_O(x) on the final call */
    double cost_sum;     /* Σ cost over pixels, nats (0 without costs) */
    double total;        /* message costs of steps 1..min(step, n), nats: L^n so far */
} bfn_teach_frame;

typedef struct bfn_teach bfn_teach;

/* net must outlive the session; cfg->x and cfg->known are copied. */
bfn_status bfn_teach_create(bfn_teach **out, bfn_net *net, const bfn_teach_config *cfg,
                            bfn_err *err);
void bfn_teach_destroy(bfn_teach *s);
/* Performs the next step (1..n, then the final output) and describes it in f. */
bfn_status bfn_teach_step(bfn_teach *s, bfn_teach_frame *f, bfn_err *err);
int bfn_teach_steps_done(const bfn_teach *s);
int bfn_teach_finished(const bfn_teach *s);
/* The final classes (D) once finished; NULL before. */
const uint8_t *bfn_teach_result(const bfn_teach *s);

/* KL( p_S(·|x; α) ‖ p_R(·|p; α) ) for one K = 2 pixel, nats, without Monte
 * Carlo: on the one-number form it is E_g[−ln(p_x + p_o e^{−2α + 2√α g})],
 * g ~ N(0, 1) (flow.c), integrated by the trapezoid rule, which converges
 * exponentially for this analytic integrand (step below the distance π/(2√α)
 * of its complex singularities). Accurate to about 1e-12 for α <= 1e4. */
double bfn_teach_kl_binary(int x, double p_on, double alpha);

/* The model's L^n (or L∞ when n_steps = 0) and L^r for one fixed image x:
 * bfn_eval_run on `draws` copies of x, so the standard errors are over
 * independent draws of (i, θ, y). */
bfn_status bfn_teach_image_loss(bfn_net *net, const uint8_t *x, int n_steps, double beta1,
                                int draws, int n_mc, uint64_t seed, bfn_eval_result *res,
                                bfn_err *err);

#endif
