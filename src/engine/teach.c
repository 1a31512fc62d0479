/* Alice and Bob, one message at a time: Algorithm 9 for one image with the
 * cost of every message (see teach.h). */
#include "bfn/teach.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/flow.h"
#include "bfn/rng.h"

/* bfn_sampler's stream (sample.c): step i of image 0 draws from
 * fork(fork(init(seed, STREAM_SAMPLE), 0), i), k first, then the message, so
 * a session reproduces bfn_sampler's image 0 (tests/test_teach.c checks it).
 * Costs for K > 2 use a child of that stream, leaving it untouched. */
enum { STREAM_SAMPLE = 0x5A4D504CU, TAG_COST = 0x434F5354U };

struct bfn_teach {
    bfn_net *net;
    bfn_teach_config cfg;
    int D, K, zp, pp, ic;
    int done;          /* steps done: 0..n+1 */
    double total;      /* message costs so far, nats */
    bfn_rng base;      /* the sampler's stream of image 0 */
    uint8_t *x;        /* (D) Alice's image, or NULL */
    uint8_t *known;    /* (D) mask, or NULL */
    float *z;          /* (zp, D) accumulated logits */
    float *y;          /* (zp, D) this step's message */
    float *p;          /* (pp, D) output probabilities */
    float *in;         /* (ic, D) network input */
    float *logits;     /* (pp, D) */
    float *cost;       /* (D) nats per pixel */
    float *tmp;        /* (K) one pixel's logits */
    double *pk;        /* (K) one pixel's probabilities */
    uint8_t *k;        /* (D) Bob's draws */
    uint8_t *sent;     /* (D) classes the message encodes */
};

bfn_status bfn_teach_create(bfn_teach **out, bfn_net *net, const bfn_teach_config *cfg,
                            bfn_err *err)
{
    *out = NULL;
    if (!net || !cfg)
        return bfn_err_set(err, BFN_ERR_ARG, "teach: no network or config");
    bfn_status cst = bfn_sample_settings_check("teach", cfg->n_steps, cfg->beta1, cfg->final, err);
    if (cst != BFN_OK)
        return cst;
    if (cfg->mode != BFN_TEACH_BOB && cfg->mode != BFN_TEACH_ALICE)
        return bfn_err_set(err, BFN_ERR_ARG, "teach: unknown mode %d", (int)cfg->mode);
    if ((cfg->mode == BFN_TEACH_ALICE || cfg->known) && !cfg->x)
        return bfn_err_set(err, BFN_ERR_ARG, "teach: Alice's image x is missing");
    if (cfg->known && cfg->mode != BFN_TEACH_BOB)
        return bfn_err_set(err, BFN_ERR_ARG, "teach: inpainting is for Bob alone");
    if (cfg->known && cfg->inpaint != BFN_INPAINT_CLAMP && cfg->inpaint != BFN_INPAINT_SEND)
        return bfn_err_set(err, BFN_ERR_ARG, "teach: unknown inpainting method %d",
                           (int)cfg->inpaint);
    const bfn_net_config *nc = bfn_net_get_config(net);
    bfn_teach *s = calloc(1, sizeof *s);
    if (!s)
        return bfn_err_set(err, BFN_ERR_NOMEM, "teach: out of memory");
    s->net = net;
    s->cfg = *cfg;
    s->D = nc->H * nc->W;
    s->K = nc->K;
    s->zp = bfn_flow_planes(s->K);
    s->pp = bfn_net_out_channels(s->K);
    s->ic = bfn_net_in_channels(s->K);
    const size_t D = (size_t)s->D;
    s->z = calloc(D * s->zp, sizeof(float));
    s->y = calloc(D * s->zp, sizeof(float));
    s->p = calloc(D * s->pp, sizeof(float));
    s->in = calloc(D * s->ic, sizeof(float));
    s->logits = calloc(D * s->pp, sizeof(float));
    s->cost = calloc(D, sizeof(float));
    s->tmp = calloc((size_t)s->K, sizeof(float));
    s->pk = calloc((size_t)s->K, sizeof(double));
    s->k = calloc(D, 1);
    s->sent = calloc(D, 1);
    int ok = s->z && s->y && s->p && s->in && s->logits && s->cost && s->tmp && s->pk && s->k &&
             s->sent;
    if (ok && cfg->x) {
        ok = (s->x = malloc(D)) != NULL;
        if (ok)
            memcpy(s->x, cfg->x, D);
    }
    if (ok && cfg->known) {
        ok = (s->known = malloc(D)) != NULL;
        if (ok)
            for (size_t d = 0; d < D; d++)
                s->known[d] = cfg->known[d] != 0;
    }
    if (!ok) {
        bfn_teach_destroy(s);
        return bfn_err_set(err, BFN_ERR_NOMEM, "teach: out of memory");
    }
    for (size_t d = 0; s->x && d < D; d++)
        if (s->x[d] >= s->K) {
            bfn_teach_destroy(s);
            return bfn_err_set(err, BFN_ERR_ARG, "teach: pixel %zu of x is class %d, K = %d", d,
                               cfg->x[d], nc->K);
        }
    s->cfg.x = s->x;
    s->cfg.known = s->known;
    bfn_rng_init(&s->base, cfg->seed, STREAM_SAMPLE);
    s->base = bfn_rng_fork(&s->base, 0);
    *out = s;
    return BFN_OK;
}

void bfn_teach_destroy(bfn_teach *s)
{
    if (!s)
        return;
    free(s->z);
    free(s->y);
    free(s->p);
    free(s->in);
    free(s->logits);
    free(s->cost);
    free(s->tmp);
    free(s->pk);
    free(s->k);
    free(s->sent);
    free(s->x);
    free(s->known);
    free(s);
}

/* Known pixels with the certain belief in their class x (K = 2: the logit
 * ±CERTAIN; otherwise CERTAIN on x's plane and 0 on the others). */
static void clamp_known(bfn_teach *s)
{
    const int D = s->D;
    for (int d = 0; d < D; d++) {
        if (!s->known[d])
            continue;
        if (s->K == 2) {
            s->z[d] = s->x[d] ? BFN_TEACH_CERTAIN : -BFN_TEACH_CERTAIN;
        } else {
            for (int c = 0; c < s->K; c++)
                s->z[(size_t)c * D + d] = c == s->x[d] ? BFN_TEACH_CERTAIN : 0.0f;
        }
    }
}

/* Per-pixel cost of this step's message (α > 0) or of the final guess
 * (α = 0: −ln p_O(x), the reconstruction term). */
static double costs(bfn_teach *s, double alpha, bfn_rng *rc)
{
    const int D = s->D, K = s->K;
    double sum = 0.0;
    for (int d = 0; d < D; d++) {
        double c;
        if (alpha <= 0.0) {
            for (int j = 0; j < s->pp; j++)
                s->tmp[j] = s->logits[(size_t)j * D + d];
            c = bfn_loss_recon(s->tmp, &s->x[d], 1, K);
        } else if (K == 2) {
            c = bfn_teach_kl_binary(s->x[d], s->p[d], alpha);
        } else {
            for (int j = 0; j < K; j++)
                s->pk[j] = s->p[(size_t)j * D + d];
            c = bfn_kl_step_pixel(s->x[d], s->pk, K, alpha, s->cfg.n_mc, rc);
        }
        s->cost[d] = (float)c;
        sum += c;
    }
    return sum;
}

bfn_status bfn_teach_step(bfn_teach *s, bfn_teach_frame *f, bfn_err *err)
{
    const int n = s->cfg.n_steps, D = s->D, K = s->K;
    if (s->done > n)
        return bfn_err_set(err, BFN_ERR_ARG, "teach: already finished");
    const int i = s->done + 1, is_final = i == n + 1;
    const double t = is_final ? 1.0 : (double)(i - 1) / n;
    const double alpha = is_final ? 0.0 : bfn_alpha_step(s->cfg.beta1, i, n);
    const int clamp = s->known && s->cfg.inpaint == BFN_INPAINT_CLAMP;
    const int alice = s->cfg.mode == BFN_TEACH_ALICE;

    if (clamp)
        clamp_known(s);
    bfn_net_input(s->in, s->z, D, K);
    float tf = (float)t;
    bfn_status st = bfn_net_forward(s->net, s->in, &tf, 1, 0, NULL, s->logits);
    if (st != BFN_OK)
        return bfn_err_set(err, st, "teach: network forward failed (%s)", bfn_status_str(st));
    bfn_output_probs(s->p, s->logits, D, K);

    bfn_rng r = bfn_rng_fork(&s->base, (uint64_t)i);
    bfn_rng rc = bfn_rng_fork(&r, TAG_COST);
    if (is_final && s->cfg.final == BFN_FINAL_ARGMAX)
        bfn_output_argmax(s->k, s->p, D, K);
    else
        bfn_output_sample(s->k, s->p, D, K, &r);
    double cost_sum = 0.0;
    if (alice)
        cost_sum = costs(s, alpha, &rc);
    if (!is_final) {
        for (int d = 0; d < D; d++)
            s->sent[d] = alice || (s->known && s->known[d]) ? s->x[d] : s->k[d];
        bfn_sender_sample(s->y, s->sent, D, K, alpha, &r);
        bfn_update(s->z, s->y, s->zp * D);
        if (clamp) {
            /* a settled pixel needs no message: show none, keep it certain */
            for (int d = 0; d < D; d++)
                if (s->known[d])
                    for (int c = 0; c < s->zp; c++)
                        s->y[(size_t)c * D + d] = 0.0f;
            clamp_known(s);
        }
        s->total += cost_sum;
    } else if (s->known) {
        /* told with certainty: the final image keeps every known pixel */
        for (int d = 0; d < D; d++)
            if (s->known[d])
                s->k[d] = s->x[d];
    }
    s->done = i;
    if (f) {
        *f = (bfn_teach_frame){
            .step = i, .n = n, .is_final = is_final, .t = t, .alpha = alpha, .D = D, .K = K,
            .z_planes = s->zp, .p_planes = s->pp, .sent = is_final ? NULL : s->sent,
            .y = is_final ? NULL : s->y, .z = s->z, .p = s->p, .k = s->k,
            .cost = alice ? s->cost : NULL, .cost_sum = cost_sum, .total = s->total,
        };
    }
    return BFN_OK;
}

int bfn_teach_steps_done(const bfn_teach *s) { return s->done; }
int bfn_teach_finished(const bfn_teach *s) { return s->done > s->cfg.n_steps; }
const uint8_t *bfn_teach_result(const bfn_teach *s)
{
    return bfn_teach_finished(s) ? s->k : NULL;
}

/* −ln(p_x + p_o e^e) without cancellation or overflow: log1p where the sum is
 * near 1 (small α, where the KL is a small difference), factored for e > 0. */
static double neg_log_mix(double px, double po, double e)
{
    if (po == 0.0)
        return 0.0;
    if (px == 0.0)
        return -e;
    if (e <= 0.0) {
        double u = po * expm1(e);
        return u > -0.5 ? -log1p(u) : -log(px + po * exp(e));
    }
    return -(e + log(po + px * exp(-e)));
}

double bfn_teach_kl_binary(int x, double p_on, double alpha)
{
    if (!(alpha > 0.0))
        return 0.0;
    if (isnan(p_on))
        p_on = 0.5;
    p_on = fmin(fmax(p_on, 0.0), 1.0);
    const double px = x ? p_on : 1.0 - p_on, po = 1.0 - px;
    const double sigma = 2.0 * sqrt(alpha);
    /* The integrand is analytic in a strip of half-width π/σ around the real
     * axis; the trapezoid error decays like exp(−2π(π/σ)/h), so h = 0.66/σ
     * gives about e^-30. The Gaussian weight is below 1e-18 past |g| = 9. */
    const double G = 9.0;
    double h = fmin(0.25, 0.66 / sigma);
    const int m = (int)ceil(G / h);
    h = G / m;
    const double c = 0.3989422804014327; /* 1/√(2π) */
    double acc = 0.0;
    for (int j = -m; j <= m; j++) {
        double g = j * h, w = c * exp(-0.5 * g * g) * (j == -m || j == m ? 0.5 : 1.0);
        acc += w * neg_log_mix(px, po, -2.0 * alpha + sigma * g);
    }
    return acc * h;
}

typedef struct {
    const uint8_t *x;
    int D;
} one_image;

static bfn_status copy_image(void *user, int64_t index, int repeat, uint8_t *x, bfn_err *err)
{
    (void)index;
    (void)repeat;
    (void)err;
    const one_image *im = user;
    memcpy(x, im->x, (size_t)im->D);
    return BFN_OK;
}

bfn_status bfn_teach_image_loss(bfn_net *net, const uint8_t *x, int n_steps, double beta1,
                                int draws, int n_mc, uint64_t seed, bfn_eval_result *res,
                                bfn_err *err)
{
    if (!net || !x || !res)
        return bfn_err_set(err, BFN_ERR_ARG, "teach: image loss needs a network, x and a result");
    const bfn_net_config *nc = bfn_net_get_config(net);
    one_image im = {x, nc->H * nc->W};
    /* draws copies of one image, one repeat each: the evaluator's standard
     * error across "images" is then the error of the mean over draws */
    bfn_eval_config ec = {.n_steps = n_steps, .beta1 = beta1, .repeats = 1, .count = draws,
                          .n_mc = n_mc < 1 ? 1 : n_mc, .seed = seed};
    return bfn_eval_run(net, &ec, copy_image, &im, NULL, NULL, res, NULL, err);
}
