/* Algorithm 9 of the BFN paper, one step at a time. */
#include "bfn/sample.h"

#include <stdlib.h>
#include <string.h>

#include "bfn/flow.h"
#include "bfn/model_io.h"

/* rng stream tags */
enum { STREAM_SAMPLE = 0x5A4D504CU };

struct bfn_sampler {
    bfn_output_fn fn;      /* p_O(·|θ; t): the network (net_output) or another */
    void *fn_user;
    bfn_net *net;          /* the network path only (NULL otherwise) */
    bfn_net *guide;        /* autoguidance: the weaker network (NULL: none) */
    double guidance;       /* its weight w (1: the network alone) */
    bfn_sample_config cfg;
    int B, D, K, zp, pp, in_ch, max_b;
    int done;              /* steps done: 0..n+1 */
    bfn_rng base;
    float *z;              /* (B, zp, D) accumulated logits */
    float *y;              /* (B, zp, D) this step's message */
    float *p;              /* (B, pp, D) output probabilities */
    uint8_t *k;            /* (B, D) drawn classes */
    float *net_in;         /* (max_b, in_ch, D), network path */
    float *logits;         /* (max_b, pp, D), network path */
    float *glogits;        /* (max_b, pp, D), the guide's */
    float *t;              /* (max_b), network path */
    bfn_sample_observer obs;
    void *obs_user;
};

/* p_O from the network: θ → network input, one forward for nb images at t. */
static bfn_status net_output(void *user, const float *z, double t, int nb, float *p,
                             bfn_err *err)
{
    bfn_sampler *s = user;
    size_t zs = (size_t)s->zp * s->D, ps = (size_t)s->pp * s->D, is = (size_t)s->in_ch * s->D;
    for (int j = 0; j < nb; j++) {
        bfn_net_input(s->net_in + j * is, z + j * zs, s->D, s->K);
        s->t[j] = (float)t;
    }
    bfn_status st = bfn_net_forward(s->net, s->net_in, s->t, nb, 0, NULL, s->logits);
    if (st != BFN_OK)
        return bfn_err_set(err, st, "sampler: network forward failed (%s)", bfn_status_str(st));
    if (s->glogits) {
        /* autoguidance: l = l_guide + w (l_net − l_guide), per logit plane
         * (p_O is a softmax or a sigmoid of them, so the rule is the same for
         * every K) */
        st = bfn_net_forward(s->guide, s->net_in, s->t, nb, 0, NULL, s->glogits);
        if (st != BFN_OK)
            return bfn_err_set(err, st, "sampler: guide network forward failed (%s)",
                               bfn_status_str(st));
        const float w = (float)s->guidance;
        for (size_t i = 0; i < (size_t)nb * ps; i++)
            s->logits[i] = s->glogits[i] + w * (s->logits[i] - s->glogits[i]);
    }
    for (int j = 0; j < nb; j++)
        bfn_output_probs(p + j * ps, s->logits + j * ps, s->D, s->K);
    return BFN_OK;
}

bfn_status bfn_sampler_create(bfn_sampler **out, bfn_net *net, const bfn_sample_config *cfg,
                              bfn_err *err)
{
    *out = NULL;
    if (!net)
        return bfn_err_set(err, BFN_ERR_ARG, "sampler: no network");
    const bfn_net_config *nc = bfn_net_get_config(net);
    bfn_sampler *s;
    bfn_status st = bfn_sampler_create_fn(&s, nc->H * nc->W, nc->K, bfn_net_max_batch(net),
                                          net_output, NULL, cfg, err);
    if (st != BFN_OK)
        return st;
    /* the network path's own buffers, one network batch each */
    s->fn_user = s;
    s->net = net;
    s->in_ch = bfn_net_in_channels(s->K);
    s->net_in = calloc((size_t)s->max_b * s->in_ch * s->D, sizeof(float));
    s->logits = calloc((size_t)s->max_b * s->pp * s->D, sizeof(float));
    s->t = calloc((size_t)s->max_b, sizeof(float));
    if (!s->net_in || !s->logits || !s->t) {
        bfn_sampler_destroy(s);
        return bfn_err_set(err, BFN_ERR_NOMEM, "sampler: out of memory for %d images",
                           cfg->count);
    }
    *out = s;
    return BFN_OK;
}

bfn_status bfn_sampler_create_guided(bfn_sampler **out, bfn_net *net, bfn_net *guide,
                                     double guidance, const bfn_sample_config *cfg, bfn_err *err)
{
    *out = NULL;
    if (!net || !guide)
        return bfn_err_set(err, BFN_ERR_ARG, "sampler: no network or no guide network");
    if (!(guidance >= 0.0 && guidance <= BFN_GUIDANCE_MAX))
        return bfn_err_set(err, BFN_ERR_ARG, "sampler: guidance w = %g out of range [0, %g]",
                           guidance, BFN_GUIDANCE_MAX);
    const bfn_net_config *a = bfn_net_get_config(net), *g = bfn_net_get_config(guide);
    if (a->K != g->K || a->H != g->H || a->W != g->W)
        return bfn_err_set(err, BFN_ERR_MISMATCH,
                           "sampler: the guide is a K = %d %dx%d network, the model K = %d %dx%d",
                           g->K, g->H, g->W, a->K, a->H, a->W);
    bfn_sampler *s;
    bfn_status st = bfn_sampler_create(&s, net, cfg, err);
    if (st != BFN_OK)
        return st;
    if (guidance != 1.0) { /* w = 1 is the network alone: the guide is not run */
        if (bfn_net_max_batch(guide) < s->max_b)
            s->max_b = bfn_net_max_batch(guide);
        s->guide = guide;
        s->guidance = guidance;
        s->glogits = calloc((size_t)s->max_b * s->pp * s->D, sizeof(float));
        if (!s->glogits) {
            bfn_sampler_destroy(s);
            return bfn_err_set(err, BFN_ERR_NOMEM, "sampler: out of memory for the guide");
        }
    }
    *out = s;
    return BFN_OK;
}

bfn_status bfn_sample_settings_check(const char *who, int n_steps, double beta1,
                                     bfn_final_mode final, bfn_err *err)
{
    if (n_steps < 1 || n_steps > 1000000)
        return bfn_err_set(err, BFN_ERR_ARG, "%s: steps n = %d out of range [1, 1000000]", who,
                           n_steps);
    if (!(beta1 > 0.0 && beta1 <= 1e4))
        return bfn_err_set(err, BFN_ERR_ARG, "%s: beta1 = %g out of range (0, 1e4]", who, beta1);
    if (final != BFN_FINAL_SAMPLE && final != BFN_FINAL_ARGMAX)
        return bfn_err_set(err, BFN_ERR_ARG, "%s: unknown final mode %d", who, (int)final);
    return BFN_OK;
}

bfn_status bfn_sampler_create_fn(bfn_sampler **out, int D, int K, int max_batch,
                                 bfn_output_fn fn, void *user, const bfn_sample_config *cfg,
                                 bfn_err *err)
{
    *out = NULL;
    if (!fn || !cfg)
        return bfn_err_set(err, BFN_ERR_ARG, "sampler: no output function or config");
    if (D < 1 || K < 2 || K > BFN_MODEL_K_MAX || max_batch < 1)
        return bfn_err_set(err, BFN_ERR_ARG,
                           "sampler: D = %d, K = %d, max batch %d (need D >= 1, 2 <= K <= %d, "
                           "max batch >= 1)", D, K, max_batch, BFN_MODEL_K_MAX);
    bfn_status cst = bfn_sample_settings_check("sampler", cfg->n_steps, cfg->beta1, cfg->final,
                                               err);
    if (cst != BFN_OK)
        return cst;
    if (cfg->count < 1 || cfg->count > 100000)
        return bfn_err_set(err, BFN_ERR_ARG, "sampler: count = %d out of range [1, 100000]",
                           cfg->count);
    bfn_sampler *s = calloc(1, sizeof *s);
    if (!s)
        return bfn_err_set(err, BFN_ERR_NOMEM, "sampler: out of memory");
    s->fn = fn;
    s->fn_user = user;
    s->cfg = *cfg;
    s->B = cfg->count;
    s->D = D;
    s->K = K;
    s->zp = bfn_flow_planes(K);
    s->pp = bfn_net_out_channels(K);
    s->max_b = max_batch;
    size_t BD = (size_t)s->B * s->D;
    s->z = calloc(BD * s->zp, sizeof(float));
    s->y = calloc(BD * s->zp, sizeof(float));
    s->p = calloc(BD * s->pp, sizeof(float));
    s->k = calloc(BD, 1);
    if (!s->z || !s->y || !s->p || !s->k) {
        bfn_sampler_destroy(s);
        return bfn_err_set(err, BFN_ERR_NOMEM, "sampler: out of memory for %d images", s->B);
    }
    bfn_rng_init(&s->base, cfg->seed, STREAM_SAMPLE);
    *out = s;
    return BFN_OK;
}

void bfn_sampler_destroy(bfn_sampler *s)
{
    if (!s)
        return;
    free(s->z);
    free(s->y);
    free(s->p);
    free(s->k);
    free(s->net_in);
    free(s->logits);
    free(s->glogits);
    free(s->t);
    free(s);
}

void bfn_sampler_set_observer(bfn_sampler *s, bfn_sample_observer obs, void *user)
{
    s->obs = obs;
    s->obs_user = user;
}

/* p_O(·|θ; t) for every image, in chunks of at most max_b. */
static bfn_status output_probs(bfn_sampler *s, double t, bfn_err *err)
{
    size_t zs = (size_t)s->zp * s->D, ps = (size_t)s->pp * s->D;
    for (int b0 = 0; b0 < s->B; b0 += s->max_b) {
        int nb = s->B - b0 < s->max_b ? s->B - b0 : s->max_b;
        bfn_status st = s->fn(s->fn_user, s->z + (size_t)b0 * zs, t, nb,
                              s->p + (size_t)b0 * ps, err);
        if (st != BFN_OK)
            return st;
    }
    return BFN_OK;
}

bfn_status bfn_sampler_step(bfn_sampler *s, bfn_err *err)
{
    const int n = s->cfg.n_steps;
    if (s->done > n)
        return bfn_err_set(err, BFN_ERR_ARG, "sampler: already finished");
    const int i = s->done + 1; /* 1..n, or n + 1 for the final output */
    const int is_final = i == n + 1;
    const double t = is_final ? 1.0 : (double)(i - 1) / n;
    const double alpha = is_final ? 0.0 : bfn_alpha_step(s->cfg.beta1, i, n);
    size_t zs = (size_t)s->zp * s->D, ps = (size_t)s->pp * s->D;

    bfn_status st = output_probs(s, t, err);
    if (st != BFN_OK)
        return st;
    for (int b = 0; b < s->B; b++) {
        /* one stream per (image, step): independent of chunking and threads */
        bfn_rng r = bfn_rng_fork(&s->base, (uint64_t)b);
        r = bfn_rng_fork(&r, (uint64_t)i);
        uint8_t *kb = s->k + (size_t)b * s->D;
        const float *pb = s->p + (size_t)b * ps;
        if (is_final && s->cfg.final == BFN_FINAL_ARGMAX)
            bfn_output_argmax(kb, pb, s->D, s->K);
        else
            bfn_output_sample(kb, pb, s->D, s->K, &r);
        if (!is_final) {
            const uint8_t *sent = s->cfg.x_true ? s->cfg.x_true + (size_t)b * s->D : kb;
            bfn_sender_sample(s->y + (size_t)b * zs, sent, s->D, s->K, alpha, &r);
            bfn_update(s->z + (size_t)b * zs, s->y + (size_t)b * zs, (int)zs);
        }
    }
    s->done = i;
    if (s->obs) {
        bfn_sample_frame f = {
            .step = i, .n = n, .is_final = is_final, .t = t, .alpha = alpha,
            .B = s->B, .D = s->D, .K = s->K, .z_planes = s->zp, .p_planes = s->pp,
            .z = s->z, .p = s->p, .k = s->k, .y = is_final ? NULL : s->y,
        };
        if (s->obs(&f, s->obs_user))
            return bfn_err_set(err, BFN_ERR_CANCELLED, "sampler: cancelled after step %d", i);
    }
    return BFN_OK;
}

bfn_status bfn_sampler_run(bfn_sampler *s, const volatile int *cancel, bfn_err *err)
{
    while (s->done <= s->cfg.n_steps) {
        if (cancel && *cancel)
            return bfn_err_set(err, BFN_ERR_CANCELLED, "sampler: cancelled after step %d",
                               s->done);
        bfn_status st = bfn_sampler_step(s, err);
        if (st != BFN_OK)
            return st;
    }
    return BFN_OK;
}

int bfn_sampler_steps_done(const bfn_sampler *s) { return s->done; }
int bfn_sampler_finished(const bfn_sampler *s) { return s->done > s->cfg.n_steps; }
const uint8_t *bfn_sampler_result(const bfn_sampler *s)
{
    return bfn_sampler_finished(s) ? s->k : NULL;
}
const float *bfn_sampler_z(const bfn_sampler *s) { return s->z; }
