/* Algorithm 9 sampler: reproducibility, observer contract, cancellation, and
 * the statistics of the messages it sends, and the data it gives back when the
 * exact posterior of a small data set stands in for the network. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/flow.h"
#include "bfn/gemm.h"
#include "bfn/net.h"
#include "bfn/sample.h"
#include "check.h"
#include "fixtures.h"

/* A net with random (not zero-init) output so p_O depends on θ and t;
 * perturb_seed picks the perturbation (another seed: another network). */
static bfn_net *make_net_seeded(int K, int max_batch, uint64_t perturb_seed)
{
    bfn_net_config c = fixture_tiny_config(K, 0.1f);
    bfn_net *net = NULL;
    bfn_err err = {0};
    if (bfn_net_create(&net, &c, max_batch, &err) != BFN_OK) {
        fprintf(stderr, "net: %s\n", err.msg);
        exit(1);
    }
    bfn_net_init_params(net, 7);
    float *p = bfn_net_params(net);
    bfn_rng r;
    bfn_rng_init(&r, perturb_seed, 0);
    for (size_t i = 0; i < bfn_net_param_count(net); i++)
        p[i] += 0.05f * (float)bfn_rng_normal(&r);
    return net;
}

static bfn_net *make_net(int K, int max_batch)
{
    return make_net_seeded(K, max_batch, 99);
}

static uint8_t *run_samples(bfn_net *net, int count, int n, uint64_t seed, bfn_final_mode fm)
{
    bfn_sample_config sc = {.n_steps = n, .beta1 = 3.0, .count = count, .seed = seed, .final = fm};
    bfn_sampler *s;
    bfn_err err = {0};
    if (bfn_sampler_create(&s, net, &sc, &err) != BFN_OK || bfn_sampler_run(s, NULL, &err) != BFN_OK) {
        fprintf(stderr, "sampler: %s\n", err.msg);
        exit(1);
    }
    const bfn_net_config *c = bfn_net_get_config(net);
    size_t bytes = (size_t)count * c->H * c->W;
    uint8_t *out = malloc(bytes);
    memcpy(out, bfn_sampler_result(s), bytes);
    bfn_sampler_destroy(s);
    return out;
}

static void test_sample_same_bytes_whatever_threads_and_chunking(void)
{
    bfn_net *a = make_net(2, 8), *b = make_net(2, 3);
    int prev = bfn_gemm_set_threads(1);
    uint8_t *r1 = run_samples(a, 8, 12, 42, BFN_FINAL_SAMPLE);
    bfn_gemm_set_threads(2);
    uint8_t *r2 = run_samples(a, 8, 12, 42, BFN_FINAL_SAMPLE);
    uint8_t *r3 = run_samples(b, 8, 12, 42, BFN_FINAL_SAMPLE); /* chunks of 3 images */
    uint8_t *r4 = run_samples(a, 8, 12, 43, BFN_FINAL_SAMPLE);
    bfn_gemm_set_threads(prev);
    int d12 = 0, d13 = 0, d14 = 0;
    for (int i = 0; i < 8 * 64; i++) {
        d12 += r1[i] != r2[i];
        d13 += r1[i] != r3[i];
        d14 += r1[i] != r4[i];
    }
    CHECK(d12 == 0, "1 vs 2 BLAS threads: %d of 512 pixels differ", d12);
    CHECK(d13 == 0, "batch 8 vs chunks of 3: %d of 512 pixels differ", d13);
    CHECK(d14 > 0, "another seed must give another sample (0 pixels differ)");
    free(r1), free(r2), free(r3), free(r4);
    bfn_net_destroy(a);
    bfn_net_destroy(b);
}

typedef struct {
    int calls, last_step, cancel_at, bad_alpha, bad_t, bad_sum;
    double beta1;
    float *ysum; /* (B, D) running sum of messages */
} obs_state;

static int observer(const bfn_sample_frame *f, void *user)
{
    obs_state *o = user;
    o->calls++;
    if (f->step != o->last_step + 1)
        o->last_step = -1000;
    else
        o->last_step = f->step;
    if (!f->is_final) {
        double a = bfn_alpha_step(o->beta1, f->step, f->n);
        if (fabs(f->alpha - a) > 1e-12)
            o->bad_alpha++;
        if (fabs(f->t - (double)(f->step - 1) / f->n) > 1e-12)
            o->bad_t++;
        for (int i = 0; i < f->B * f->D * f->z_planes; i++) {
            o->ysum[i] += f->y[i];
            if (fabsf(o->ysum[i] - f->z[i]) > 1e-3f * (1 + fabsf(f->z[i])))
                o->bad_sum++;
        }
    } else if (f->t != 1.0) {
        o->bad_t++;
    }
    return o->cancel_at && f->step == o->cancel_at;
}

static void test_sample_observer_sees_every_step_and_z_is_sum_of_messages(void)
{
    bfn_net *net = make_net(3, 4);
    obs_state o = {.beta1 = 2.5};
    o.ysum = calloc(4 * 64 * 3, sizeof(float));
    bfn_sample_config sc = {.n_steps = 9, .beta1 = 2.5, .count = 4, .seed = 5};
    bfn_sampler *s;
    bfn_err err = {0};
    CHECK(bfn_sampler_create(&s, net, &sc, &err) == BFN_OK, "create: %s", err.msg);
    bfn_sampler_set_observer(s, observer, &o);
    CHECK(bfn_sampler_run(s, NULL, &err) == BFN_OK, "run: %s", err.msg);
    CHECK_NEAR(10, o.calls, 0, "observer calls for n = 9 (9 steps + final)");
    CHECK_NEAR(10, o.last_step, 0, "steps reported in order, last = n + 1");
    CHECK_NEAR(0, o.bad_alpha, 0, "steps whose alpha differs from beta1(2i-1)/n^2");
    CHECK_NEAR(0, o.bad_t, 0, "steps whose t differs from (i-1)/n (or 1 at the end)");
    CHECK_NEAR(0, o.bad_sum, 0, "values where z differs from the sum of messages");
    CHECK(bfn_sampler_finished(s) && bfn_sampler_result(s), "finished with a result");
    for (int i = 0; i < 4 * 64; i++)
        if (bfn_sampler_result(s)[i] >= 3) {
            CHECK(0, "result class %d >= K", bfn_sampler_result(s)[i]);
            break;
        }
    CHECK(bfn_sampler_step(s, &err) != BFN_OK, "stepping a finished sampler is an error");
    bfn_sampler_destroy(s);
    free(o.ysum);
    bfn_net_destroy(net);
}

static void test_sample_cancel_stops_within_one_step(void)
{
    bfn_net *net = make_net(2, 2);
    obs_state o = {.beta1 = 3.0, .cancel_at = 3};
    o.ysum = calloc(2 * 64, sizeof(float));
    bfn_sample_config sc = {.n_steps = 50, .beta1 = 3.0, .count = 2, .seed = 1};
    bfn_sampler *s;
    bfn_err err = {0};
    bfn_sampler_create(&s, net, &sc, &err);
    bfn_sampler_set_observer(s, observer, &o);
    bfn_status st = bfn_sampler_run(s, NULL, &err);
    CHECK(st == BFN_ERR_CANCELLED, "observer cancel returns BFN_ERR_CANCELLED (got %d)", st);
    CHECK_NEAR(3, bfn_sampler_steps_done(s), 0, "steps done after cancel at step 3");
    bfn_sampler_destroy(s);

    volatile int flag = 1;
    bfn_sampler_create(&s, net, &sc, &err);
    st = bfn_sampler_run(s, &flag, &err);
    CHECK(st == BFN_ERR_CANCELLED, "cancel flag returns BFN_ERR_CANCELLED (got %d)", st);
    CHECK_NEAR(0, bfn_sampler_steps_done(s), 0, "steps done with the flag set before start");
    bfn_sampler_destroy(s);
    free(o.ysum);
    bfn_net_destroy(net);
}

typedef struct {
    const float *p;
    uint8_t *k_final;
    float *p_final;
    int D;
} final_state;

static int final_observer(const bfn_sample_frame *f, void *user)
{
    final_state *fs = user;
    if (f->is_final) {
        memcpy(fs->k_final, f->k, (size_t)f->B * f->D);
        memcpy(fs->p_final, f->p, (size_t)f->B * f->D * f->p_planes * sizeof(float));
    }
    return 0;
}

static void test_sample_argmax_final_is_argmax_of_output(void)
{
    bfn_net *net = make_net(2, 4);
    final_state fs = {.D = 64};
    fs.k_final = malloc(4 * 64);
    fs.p_final = malloc(4 * 64 * sizeof(float));
    bfn_sample_config sc = {.n_steps = 5, .beta1 = 3.0, .count = 4, .seed = 9,
                            .final = BFN_FINAL_ARGMAX};
    bfn_sampler *s;
    bfn_err err = {0};
    bfn_sampler_create(&s, net, &sc, &err);
    bfn_sampler_set_observer(s, final_observer, &fs);
    bfn_sampler_run(s, NULL, &err);
    int bad = 0;
    for (int i = 0; i < 4 * 64; i++)
        bad += bfn_sampler_result(s)[i] != (fs.p_final[i] > 0.5f);
    CHECK_NEAR(0, bad, 0, "pixels where the argmax result disagrees with p_on > 0.5");
    bfn_sampler_destroy(s);
    free(fs.k_final);
    free(fs.p_final);
    bfn_net_destroy(net);
}

/* "Alice sends x": the messages come from the true image, so the accumulated
 * ℓ of every pixel is N(2β(1)(2x − 1), 4β(1)) whatever the network says. */
static void test_sample_alice_messages_follow_the_flow_law(void)
{
    bfn_net *net = make_net(2, 16);
    const int B = 16, D = 64, n = 20;
    const double beta1 = 2.0;
    uint8_t *x = malloc(B * D);
    for (int i = 0; i < B * D; i++)
        x[i] = (uint8_t)(i % 3 == 0);
    bfn_sample_config sc = {.n_steps = n, .beta1 = beta1, .count = B, .seed = 11, .x_true = x};
    bfn_sampler *s;
    bfn_err err = {0};
    bfn_sampler_create(&s, net, &sc, &err);
    bfn_sampler_run(s, NULL, &err);
    const float *z = bfn_sampler_z(s);
    double m[2] = {0}, v[2] = {0};
    int c[2] = {0};
    for (int i = 0; i < B * D; i++) {
        double d = z[i] - 2 * beta1 * (2 * x[i] - 1);
        m[x[i]] += d;
        v[x[i]] += d * d;
        c[x[i]]++;
    }
    for (int q = 0; q < 2; q++) {
        double var = 4 * beta1;
        CHECK_NEAR(0, m[q] / c[q], 5 * sqrt(var / c[q]), "mean of l - 2b(2x-1) for x = %d", q);
        CHECK_NEAR(var, v[q] / c[q], 5 * var * sqrt(2.0 / c[q]), "variance of l for x = %d", q);
    }
    bfn_sampler_destroy(s);
    free(x);
    bfn_net_destroy(net);
}

/* ---- the sampler against the exact posterior of a small data set ----
 * Data: M images x_m with probabilities π_m. After messages whose sum is z,
 * Bob's posterior over the images is w_m ∝ π_m Π_d θ_d(x_md) (the Gaussian
 * likelihoods of the summed message differ between classes only by z), so the
 * best possible network outputs p_O(k | θ) = Σ_m w_m [x_md = k], at any t.
 * Driven by it, Algorithm 9 must give back the data images in the proportions
 * π as n grows; with n = 1 its per-pixel draws mix images. */
enum { OR_MAX_M = 8 };
typedef struct {
    int M, D, K, max_b, too_big;
    const uint8_t *x;   /* (M, D) */
    double logpi[OR_MAX_M];
} oracle;

static bfn_status oracle_output(void *user, const float *z, double t, int nb, float *p,
                                bfn_err *err)
{
    (void)t;
    (void)err;
    oracle *o = user;
    const int D = o->D, K = o->K, zp = bfn_flow_planes(K), pp = bfn_net_out_channels(K);
    if (nb > o->max_b)
        o->too_big++;
    for (int j = 0; j < nb; j++) {
        const float *zj = z + (size_t)j * zp * D;
        float *pj = p + (size_t)j * pp * D;
        double lw[OR_MAX_M], top = -INFINITY, sum = 0;
        for (int m = 0; m < o->M; m++) {
            lw[m] = o->logpi[m];
            for (int d = 0; d < D; d++) {
                int k = o->x[m * D + d];
                lw[m] += K == 2 ? (k ? zj[d] : 0.0) : zj[k * D + d];
            }
            top = lw[m] > top ? lw[m] : top;
        }
        for (int m = 0; m < o->M; m++)
            sum += lw[m] = exp(lw[m] - top);
        for (int d = 0; d < D; d++) {
            double acc[256] = {0};
            for (int m = 0; m < o->M; m++)
                acc[o->x[m * D + d]] += lw[m] / sum;
            if (K == 2)
                pj[d] = (float)acc[1];
            else
                for (int k = 0; k < K; k++)
                    pj[k * D + d] = (float)acc[k];
        }
    }
    return BFN_OK;
}

typedef struct { const oracle *o; double max_err; int seen; } first_step;

static int first_step_observer(const bfn_sample_frame *f, void *user)
{
    first_step *fs = user;
    if (f->step != 1)
        return 0;
    fs->seen = 1;
    /* t = 0, z = 0: the output is the data's per-pixel marginal Σ_m π_m [x_md = k] */
    const oracle *o = fs->o;
    for (int d = 0; d < f->D; d++)
        for (int k = 0; k < f->p_planes; k++) {
            double want = 0;
            for (int m = 0; m < o->M; m++)
                want += exp(o->logpi[m]) * (o->x[m * f->D + d] == (f->K == 2 ? 1 : k));
            for (int b = 0; b < f->B; b++) {
                double e = fabs(f->p[((size_t)b * f->p_planes + k) * f->D + d] - want);
                fs->max_err = e > fs->max_err ? e : fs->max_err;
            }
        }
    return 0;
}

/* Samples B images with the oracle; returns the share of them that are data
 * images and writes each image's share to share[m]. */
static double oracle_sample(oracle *o, int B, int n, uint64_t seed, double *share,
                            double *first_err)
{
    bfn_sample_config sc = {.n_steps = n, .beta1 = 3.0, .count = B, .seed = seed};
    bfn_sampler *s = NULL;
    bfn_err err = {0};
    first_step fs = {.o = o};
    if (bfn_sampler_create_fn(&s, o->D, o->K, o->max_b, oracle_output, o, &sc, &err) != BFN_OK) {
        fprintf(stderr, "sampler: %s\n", err.msg);
        exit(1);
    }
    bfn_sampler_set_observer(s, first_step_observer, &fs);
    if (bfn_sampler_run(s, NULL, &err) != BFN_OK) {
        fprintf(stderr, "sampler: %s\n", err.msg);
        exit(1);
    }
    CHECK(fs.seen, "observer saw step 1");
    if (first_err)
        *first_err = fs.max_err;
    const uint8_t *r = bfn_sampler_result(s);
    int exact = 0;
    for (int m = 0; m < o->M; m++)
        share[m] = 0;
    for (int b = 0; b < B; b++)
        for (int m = 0; m < o->M; m++)
            if (!memcmp(r + (size_t)b * o->D, o->x + (size_t)m * o->D, (size_t)o->D)) {
                share[m] += 1.0 / B;
                exact++;
                break;
            }
    bfn_sampler_destroy(s);
    return (double)exact / B;
}

/* Pearson's statistic of the counts B·share against B·π over the data images. */
static double chi2(const oracle *o, int B, const double *share)
{
    double c = 0;
    for (int m = 0; m < o->M; m++) {
        double e = B * exp(o->logpi[m]);
        c += (B * share[m] - e) * (B * share[m] - e) / e;
    }
    return c;
}

static void oracle_images(oracle *o, uint8_t *x, int M, int D, int K, const double *pi)
{
    bfn_rng r;
    bfn_rng_init(&r, 2024, 5);
    o->M = M;
    o->D = D;
    o->K = K;
    o->x = x;
    o->max_b = 96; /* below B: the sampler calls the output in chunks */
    for (int m = 0; m < M; m++) {
        o->logpi[m] = log(pi[m]);
        for (int d = 0; d < D; d++)
            x[m * D + d] = (uint8_t)bfn_rng_below(&r, (uint64_t)K);
    }
    int dmin = D;
    for (int a = 0; a < M; a++)
        for (int b = a + 1; b < M; b++) {
            int h = 0;
            for (int d = 0; d < D; d++)
                h += x[a * D + d] != x[b * D + d];
            dmin = h < dmin ? h : dmin;
        }
    CHECK(dmin >= 4, "data images differ in at least 4 pixels (closest pair: %d)", dmin);
}

static void test_sample_with_the_exact_posterior_gives_back_the_data(void)
{
    const double pi[3] = {0.5, 0.3, 0.2};
    const int B = 16000;
    for (int K = 2; K <= 3; K++) {
        const int D = K == 2 ? 16 : 12;
        uint8_t x[3 * 16];
        oracle o;
        memset(&o, 0, sizeof o);
        oracle_images(&o, x, 3, D, K, pi);
        double share[3], first_err = 1;
        double exact = oracle_sample(&o, B, 100, 17, share, &first_err);
        double c = chi2(&o, B, share);
        CHECK_NEAR(0, first_err, 1e-6, "K = %d: step-1 output = the data's marginal", K);
        CHECK(exact >= 0.995, "K = %d, n = 100: %.4f of samples are data images (want >= 0.995)",
              K, exact);
        /* 2 degrees of freedom: P(chi2 > 18.42) = 1e-4 */
        CHECK(c < 18.42, "K = %d, n = 100: shares %.4f %.4f %.4f against 0.5 0.3 0.2 "
              "(chi2 %.2f, want < 18.42)", K, share[0], share[1], share[2], c);
        CHECK(o.too_big == 0, "K = %d: output asked for %d chunks above max batch", K, o.too_big);
        /* n = 1: one message sent from per-pixel draws, which mix the images */
        double share1[3];
        double exact1 = oracle_sample(&o, B, 1, 17, share1, NULL);
        CHECK(exact1 < exact - 0.03, "K = %d: n = 1 gives %.4f data images, n = 100 %.4f: "
              "the test tells a mixing sampler apart", K, exact1, exact);
        printf("  K = %d: n = 100: %.4f data images, shares %.4f %.4f %.4f (chi2 %.2f); "
               "n = 1: %.4f, shares %.4f %.4f %.4f\n", K, exact, share[0], share[1], share[2],
               c, exact1, share1[0], share1[1], share1[2]);
    }
}

/* Autoguidance: the output distribution of every step is the combination of
 * the two networks' logits the header states, computed here from the networks
 * themselves; w = 1, or a guide equal to the network, leaves Algorithm 9's
 * samples unchanged to the bit; bad guides and weights are refused. */
typedef struct {
    bfn_net *net, *guide;
    double w;
    int checked;
    double max_err;
} guide_check;

static int guide_observer(const bfn_sample_frame *f, void *user)
{
    guide_check *g = user;
    if (f->is_final || f->step % 4 != 1)
        return 0;
    /* θ before this step's update: the frame's z less its message */
    int zn = f->B * f->z_planes * f->D, in_ch = bfn_net_in_channels(f->K);
    int pp = bfn_net_out_channels(f->K);
    float *z = malloc(zn * sizeof(float)), *in = malloc((size_t)f->B * in_ch * f->D * sizeof(float));
    float *ln = malloc((size_t)f->B * pp * f->D * sizeof(float));
    float *lg = malloc((size_t)f->B * pp * f->D * sizeof(float));
    float *t = malloc(f->B * sizeof(float)), *p = malloc((size_t)pp * f->D * sizeof(float));
    for (int i = 0; i < zn; i++)
        z[i] = f->z[i] - f->y[i];
    for (int j = 0; j < f->B; j++) {
        bfn_net_input(in + (size_t)j * in_ch * f->D, z + (size_t)j * f->z_planes * f->D, f->D, f->K);
        t[j] = (float)f->t;
    }
    for (int j = 0; j < f->B; j++) { /* one image per call: within both nets' max batch */
        size_t io = (size_t)j * in_ch * f->D, lo = (size_t)j * pp * f->D;
        if (bfn_net_forward(g->net, in + io, t + j, 1, 0, NULL, ln + lo) != BFN_OK ||
            bfn_net_forward(g->guide, in + io, t + j, 1, 0, NULL, lg + lo) != BFN_OK) {
            g->max_err = INFINITY;
            continue;
        }
        float *a = ln + lo, *b = lg + lo;
        for (int i = 0; i < pp * f->D; i++)
            a[i] = b[i] + (float)g->w * (a[i] - b[i]);
        bfn_output_probs(p, a, f->D, f->K);
        const float *fp = f->p + (size_t)j * f->p_planes * f->D;
        for (int i = 0; i < f->p_planes * f->D; i++) {
            double e = fabs((double)p[i] - fp[i]);
            g->max_err = e > g->max_err ? e : g->max_err;
        }
    }
    g->checked++;
    free(z), free(in), free(ln), free(lg), free(t), free(p);
    return 0;
}

static void test_sample_autoguidance(void)
{
    for (int K = 2; K <= 3; K++) {
        bfn_net *net = make_net(K, 3), *guide = make_net_seeded(K, 2, 1234);
        bfn_sample_config sc = {.n_steps = 10, .beta1 = 3.0, .count = 5, .seed = 11};
        bfn_err err = {0};
        bfn_sampler *s = NULL;
        guide_check g = {.net = net, .guide = guide, .w = 2.5};
        CHECK(bfn_sampler_create_guided(&s, net, guide, g.w, &sc, &err) == BFN_OK, "create: %s",
              err.msg);
        bfn_sampler_set_observer(s, guide_observer, &g);
        CHECK(bfn_sampler_run(s, NULL, &err) == BFN_OK, "run: %s", err.msg);
        CHECK(g.checked == 3, "K = %d: steps checked %d, want 3 (1, 5, 9)", K, g.checked);
        CHECK_NEAR(0, g.max_err, 1e-5,
                   "K = %d: largest |p_O - softmax(l_guide + w (l_net - l_guide))| over checked steps", K);
        uint8_t *guided = malloc((size_t)5 * 64);
        memcpy(guided, bfn_sampler_result(s), (size_t)5 * 64);
        bfn_sampler_destroy(s);

        uint8_t *plain = run_samples(net, 5, 10, 11, BFN_FINAL_SAMPLE);
        int d_guided = 0;
        for (int i = 0; i < 5 * 64; i++)
            d_guided += guided[i] != plain[i];
        CHECK(d_guided > 0, "K = %d: w = 2.5 must change some samples (0 pixels differ)", K);
        /* w = 1, and a guide that is the network itself: Algorithm 9's samples */
        double ws[2] = {1.0, 4.0};
        bfn_net *guides[2] = {guide, net};
        for (int c = 0; c < 2; c++) {
            CHECK(bfn_sampler_create_guided(&s, net, guides[c], ws[c], &sc, &err) == BFN_OK &&
                      bfn_sampler_run(s, NULL, &err) == BFN_OK, "guided run: %s", err.msg);
            int d = 0;
            for (int i = 0; i < 5 * 64; i++)
                d += bfn_sampler_result(s)[i] != plain[i];
            CHECK(d == 0, "K = %d, %s, w = %g: %d of 320 pixels differ from unguided sampling", K,
                  c ? "the network as its own guide" : "another guide", ws[c], d);
            bfn_sampler_destroy(s);
        }
        free(guided), free(plain);
        /* refused: a guide of another shape, weights outside [0, max], no guide */
        bfn_net *other = make_net(K == 2 ? 3 : 2, 2);
        s = NULL;
        CHECK(bfn_sampler_create_guided(&s, net, other, 2.0, &sc, &err) == BFN_ERR_MISMATCH && !s,
              "K = %d: a guide with another K refused (%s)", K, err.msg);
        CHECK(bfn_sampler_create_guided(&s, net, guide, -0.5, &sc, &err) == BFN_ERR_ARG && !s,
              "w = -0.5 refused");
        CHECK(bfn_sampler_create_guided(&s, net, guide, NAN, &sc, &err) == BFN_ERR_ARG && !s,
              "w = NaN refused");
        CHECK(bfn_sampler_create_guided(&s, net, guide, BFN_GUIDANCE_MAX + 1, &sc, &err) ==
                      BFN_ERR_ARG && !s, "w above the maximum refused");
        CHECK(bfn_sampler_create_guided(&s, net, NULL, 2.0, &sc, &err) == BFN_ERR_ARG && !s,
              "no guide refused");
        bfn_net_destroy(other);
        bfn_net_destroy(guide);
        bfn_net_destroy(net);
    }
}

static void test_sample_rejects_bad_settings(void)
{
    bfn_net *net = make_net(2, 2);
    bfn_sampler *s = NULL;
    bfn_err err = {0};
    bfn_sample_config ok = {.n_steps = 5, .beta1 = 3.0, .count = 2, .seed = 1};
    bfn_sample_config c = ok;
    c.n_steps = 0;
    CHECK(bfn_sampler_create(&s, net, &c, &err) == BFN_ERR_ARG && !s, "n = 0 rejected");
    c = ok;
    c.beta1 = 0;
    CHECK(bfn_sampler_create(&s, net, &c, &err) == BFN_ERR_ARG && !s, "beta1 = 0 rejected");
    c.beta1 = NAN;
    CHECK(bfn_sampler_create(&s, net, &c, &err) == BFN_ERR_ARG && !s, "beta1 = NaN rejected");
    c = ok;
    c.count = 0;
    CHECK(bfn_sampler_create(&s, net, &c, &err) == BFN_ERR_ARG && !s, "count = 0 rejected");
    /* an output function instead of the network: its shape is checked too */
    oracle o = {.M = 1, .D = 4, .K = 2, .max_b = 2};
    CHECK(bfn_sampler_create_fn(&s, 4, 2, 2, NULL, &o, &ok, &err) == BFN_ERR_ARG && !s,
          "no output function rejected");
    CHECK(bfn_sampler_create_fn(&s, 0, 2, 2, oracle_output, &o, &ok, &err) == BFN_ERR_ARG && !s,
          "D = 0 rejected");
    CHECK(bfn_sampler_create_fn(&s, 4, 1, 2, oracle_output, &o, &ok, &err) == BFN_ERR_ARG && !s,
          "K = 1 rejected");
    CHECK(bfn_sampler_create_fn(&s, 4, 257, 2, oracle_output, &o, &ok, &err) == BFN_ERR_ARG && !s,
          "K = 257 rejected");
    CHECK(bfn_sampler_create_fn(&s, 4, 2, 0, oracle_output, &o, &ok, &err) == BFN_ERR_ARG && !s,
          "max batch 0 rejected");
    c = ok;
    c.n_steps = 0;
    CHECK(bfn_sampler_create_fn(&s, 4, 2, 2, oracle_output, &o, &c, &err) == BFN_ERR_ARG && !s,
          "n = 0 rejected through the output-function path too");
    bfn_net_destroy(net);
}

int main(void)
{
    RUN(test_sample_same_bytes_whatever_threads_and_chunking);
    RUN(test_sample_observer_sees_every_step_and_z_is_sum_of_messages);
    RUN(test_sample_cancel_stops_within_one_step);
    RUN(test_sample_argmax_final_is_argmax_of_output);
    RUN(test_sample_alice_messages_follow_the_flow_law);
    RUN(test_sample_with_the_exact_posterior_gives_back_the_data);
    RUN(test_sample_autoguidance);
    RUN(test_sample_rejects_bad_settings);
    return check_finish();
}
