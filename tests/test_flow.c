/* Tests of the BFN math (flow.c): golden values from quadrature, closed
 * forms of the schedule, flow and sender laws, the Bayesian update, losses
 * and their gradients, the K = 2 fast path against the general path, the
 * discrete-to-continuous loss limit, and the output distribution.
 * Monte Carlo checks use tolerances of 5 standard errors of the quantity
 * being estimated; every seed is fixed, so results are reproducible. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/flow.h"
#include "bfn/rng.h"
#include "check.h"

#define KMAX 8
#define GOLDEN_KL "tests/golden/bfn_step_kl.tsv"
#define GOLDEN_CTS "tests/golden/bfn_cts_loss.tsv"

/* ------------------------------------------------------------- helpers */

typedef struct {
    int K, x;
    double a, b; /* KL rows: a = α; L∞ rows: a = β(1), b = t */
    double p[KMAX];
    double want;
} golden_row;

static int parse_probs(const char *s, double *p, int K)
{
    char *end;
    for (int k = 0; k < K; k++) {
        p[k] = strtod(s, &end);
        if (end == s)
            return 0;
        s = *end == ',' ? end + 1 : end;
    }
    return 1;
}

/* Reads the data rows of a golden TSV. cts = 1: K x beta1 t p L; else K x alpha p KL. */
static int read_golden(const char *path, int cts, golden_row *rows, int max)
{
    FILE *f = fopen(path, "r");
    if (!CHECK(f != NULL, "open %s (tests run from the repository root)", path))
        return 0;
    char line[1024], ps[512];
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == 'K' || line[0] == '\n')
            continue;
        golden_row *r = &rows[n];
        int got = cts ? sscanf(line, "%d %d %lf %lf %511s %lf", &r->K, &r->x, &r->a, &r->b, ps,
                               &r->want)
                      : sscanf(line, "%d %d %lf %511s %lf", &r->K, &r->x, &r->a, ps, &r->want);
        if (!CHECK(got == (cts ? 6 : 5) && r->K >= 2 && r->K <= KMAX &&
                       parse_probs(ps, r->p, r->K),
                   "parse golden row '%.100s' of %.80s", line, path))
            continue;
        n++;
    }
    fclose(f);
    return n;
}

typedef struct {
    double mean, se;
} mc_stat;

/* Mean and standard error of a KL estimator from independent batches:
 * the SE is measured from the estimator's own spread, not assumed. */
#define KL_BATCHES 20
#define KL_PER_BATCH 10000

static mc_stat kl_pixel_stat(int x, const double *p, int K, double alpha, uint64_t seed)
{
    double v[KL_BATCHES], m = 0.0, ss = 0.0;
    for (int b = 0; b < KL_BATCHES; b++) {
        bfn_rng r;
        bfn_rng_init(&r, seed, (uint64_t)b);
        v[b] = bfn_kl_step_pixel(x, p, K, alpha, KL_PER_BATCH, &r);
        m += v[b];
    }
    m /= KL_BATCHES;
    for (int b = 0; b < KL_BATCHES; b++)
        ss += (v[b] - m) * (v[b] - m);
    return (mc_stat){m, sqrt(ss / (KL_BATCHES - 1) / KL_BATCHES)};
}

static mc_stat kl_binary_stat(uint8_t x, float p_on, double alpha, uint64_t seed)
{
    double v[KL_BATCHES], m = 0.0, ss = 0.0;
    for (int b = 0; b < KL_BATCHES; b++) {
        bfn_rng r;
        bfn_rng_init(&r, seed, (uint64_t)b);
        v[b] = bfn_kl_step(&x, &p_on, 1, 2, alpha, KL_PER_BATCH, &r);
        m += v[b];
    }
    m /= KL_BATCHES;
    for (int b = 0; b < KL_BATCHES; b++)
        ss += (v[b] - m) * (v[b] - m);
    return (mc_stat){m, sqrt(ss / (KL_BATCHES - 1) / KL_BATCHES)};
}

/* Checks that (v[i] − mean_i)/sd_i over n values has mean 0 and variance 1
 * within 5 SE (SE of the mean 1/√n, of the variance √(2/n) for a normal). */
static void check_standardized(const double *zs, int n, const char *what)
{
    double m = 0.0, v = 0.0;
    for (int i = 0; i < n; i++)
        m += zs[i];
    m /= n;
    for (int i = 0; i < n; i++)
        v += (zs[i] - m) * (zs[i] - m);
    v /= n - 1;
    CHECK_NEAR(0.0, m, 5.0 / sqrt(n), "%s: standardized mean", what);
    CHECK_NEAR(1.0, v, 5.0 * sqrt(2.0 / n), "%s: standardized variance", what);
}

/* Direct, deliberately plain evaluation of softmax in double. */
static void softmax_ref(double *p, const double *l, int K)
{
    double m = l[0], s = 0.0;
    for (int k = 1; k < K; k++)
        m = l[k] > m ? l[k] : m;
    for (int k = 0; k < K; k++)
        s += (p[k] = exp(l[k] - m));
    for (int k = 0; k < K; k++)
        p[k] /= s;
}

/* ------------------------------------------------------------ golden */

static void test_kl_step_pixel_matches_golden_quadrature(void)
{
    golden_row rows[32];
    int n = read_golden(GOLDEN_KL, 0, rows, 32);
    CHECK(n >= 11, "golden KL rows read: %d", n);
    for (int i = 0; i < n; i++) {
        golden_row *r = &rows[i];
        mc_stat s = kl_pixel_stat(r->x, r->p, r->K, r->a, 1000 + (uint64_t)i);
        printf("  K=%d x=%d alpha=%-5g golden %.9f  MC %.9f  SE %.2e  (%+.2f SE)\n", r->K,
               r->x, r->a, r->want, s.mean, s.se, (s.mean - r->want) / s.se);
        CHECK_NEAR(r->want, s.mean, 5.0 * s.se + 1e-9,
                   "KL K=%d x=%d alpha=%g (row %d, SE %.2g)", r->K, r->x, r->a, i, s.se);
        /* The SE must be small enough for the check to mean something. */
        CHECK(s.se < 0.01 * r->want + 1e-6, "KL SE %.3g small vs value %.3g (row %d)", s.se,
              r->want, i);
    }
}

static void test_kl_step_binary_fast_path_matches_golden(void)
{
    golden_row rows[32];
    int n = read_golden(GOLDEN_KL, 0, rows, 32), used = 0;
    for (int i = 0; i < n; i++) {
        golden_row *r = &rows[i];
        if (r->K != 2)
            continue;
        used++;
        mc_stat s = kl_binary_stat((uint8_t)r->x, (float)r->p[1], r->a, 2000 + (uint64_t)i);
        CHECK_NEAR(r->want, s.mean, 5.0 * s.se + 1e-7,
                   "fast KL x=%d alpha=%g p_on=%g (row %d, SE %.2g)", r->x, r->a, r->p[1], i,
                   s.se);
    }
    CHECK(used >= 7, "K=2 golden KL rows used: %d", used);
}

static void test_cts_loss_matches_golden_exactly(void)
{
    golden_row rows[32];
    int n = read_golden(GOLDEN_CTS, 1, rows, 32);
    CHECK(n >= 4, "golden L-inf rows read: %d", n);
    for (int i = 0; i < n; i++) {
        golden_row *r = &rows[i];
        double got = bfn_loss_cts_pixel(r->x, r->p, r->K, r->a, r->b);
        CHECK_REL(r->want, got, 1e-9, 1e-12, "L-inf pixel K=%d x=%d row %d", r->K, r->x, i);

        /* Through the logit entry points: logits ln p reproduce p up to
         * float rounding of the logits. */
        float lg[KMAX];
        uint8_t x = (uint8_t)r->x;
        for (int k = 0; k < r->K; k++)
            lg[k] = (float)log(r->p[k]);
        double gen = bfn_loss_cts_general(lg, &x, 1, r->K, r->a, r->b, NULL, 1.0f);
        CHECK_REL(r->want, gen, 1e-6, 1e-6, "L-inf general path K=%d row %d", r->K, i);
        if (r->K == 2) {
            float l = (float)(log(r->p[1]) - log(r->p[0]));
            double fast = bfn_loss_cts(&l, &x, 1, 2, r->a, r->b, NULL, 1.0f);
            CHECK_REL(r->want, fast, 1e-6, 1e-6, "L-inf fast path row %d", i);
        }
    }
}

/* ------------------------------------------------------------ schedule */

static void test_alpha_steps_sum_to_beta1(void)
{
    const int ns[] = {1, 10, 1000};
    for (int j = 0; j < 3; j++) {
        double s = 0.0;
        for (int i = 1; i <= ns[j]; i++)
            s += bfn_alpha_step(3.0, i, ns[j]);
        CHECK_REL(3.0, s, 1e-12, 1.0, "sum of alpha_i for n=%d", ns[j]);
    }
    CHECK_REL(9.0, bfn_alpha_step(9.0, 1, 1), 1e-15, 1.0, "n=1: alpha_1 = beta1");
}

static void test_schedule_closed_forms(void)
{
    const double b1 = 3.0, ts[] = {0.0, 0.1, 0.5, 0.77, 1.0};
    for (int j = 0; j < 5; j++) {
        double t = ts[j];
        CHECK_REL(b1 * t * t, bfn_beta_t(b1, t), 1e-15, 1e-300, "beta(%g)", t);
        CHECK_REL(2.0 * b1 * t, bfn_alpha_t(b1, t), 1e-15, 1e-300, "alpha(%g)", t);
        /* α = dβ/dt, checked by a central difference (exact for a quadratic). */
        double h = 1e-4;
        double fd = (bfn_beta_t(b1, t + h) - bfn_beta_t(b1, t - h)) / (2 * h);
        CHECK_NEAR(bfn_alpha_t(b1, t), fd, 1e-8, "alpha = d beta/dt at %g", t);
    }
    /* α_i = β(i/n) − β((i−1)/n). */
    for (int i = 1; i <= 7; i++)
        CHECK_REL(bfn_beta_t(b1, i / 7.0) - bfn_beta_t(b1, (i - 1) / 7.0),
                  bfn_alpha_step(b1, i, 7), 1e-12, 1e-12, "alpha_%d of 7", i);
}

static void test_flow_at_beta_zero_is_uniform(void)
{
    enum { D = 50 };
    uint8_t x[D];
    float z[3 * D], th[3 * D];
    for (int d = 0; d < D; d++)
        x[d] = (uint8_t)(d % 3);
    bfn_rng r;
    bfn_rng_init(&r, 1, 0);
    for (int K = 2; K <= 3; K++) {
        uint8_t xs[D];
        for (int d = 0; d < D; d++)
            xs[d] = (uint8_t)(x[d] % K);
        bfn_flow_sample(z, xs, D, K, bfn_beta_t(3.0, 0.0), &r);
        int P = bfn_flow_planes(K), bad = 0;
        for (int i = 0; i < P * D; i++)
            bad += z[i] != 0.0f;
        CHECK(bad == 0, "K=%d beta=0: %d of %d z values nonzero", K, bad, P * D);
        bfn_theta(th, z, D, K);
        for (int i = 0; i < P * D; i += 7)
            CHECK_NEAR(K == 2 ? 0.5 : 1.0 / K, th[i], 1e-7, "K=%d theta[%d] at beta=0", K, i);
    }
    bfn_flow_sample_general(z, x, D, 2, 0.0, &r);
    for (int i = 0; i < 2 * D; i += 5)
        CHECK_NEAR(0.0, z[i], 0.0, "general K=2 z[%d] at beta=0", i);
}

/* ---------------------------------------------------- flow and sender laws */

/* Draws with fn (flow or sender, fast or general) at accuracy a and checks
 * each plane against its closed-form law. K = 2 fast: ℓ ~ N(2a(2x−1), 4a).
 * Representation with K planes: y_c ~ N(a(K δ_cx − 1), aK), and for K = 2
 * also y_1 − y_0 ~ N(2a(2x−1), 4a). */
typedef void (*draw_fn)(float *, const uint8_t *, int, int, double, bfn_rng *);

static void check_law(draw_fn fn, int K, int planes, double a, const char *name)
{
    enum { D = 40000 };
    uint8_t *x = malloc(D);
    float *z = malloc(sizeof(float) * (size_t)KMAX * D);
    double *zs = malloc(sizeof(double) * D);
    bfn_rng r;
    bfn_rng_init(&r, 77, (uint64_t)(K * 10 + planes));
    for (int d = 0; d < D; d++)
        x[d] = (uint8_t)bfn_rng_below(&r, (uint64_t)K);
    fn(z, x, D, K, a, &r);
    char what[128];
    if (planes == 1) {
        for (int d = 0; d < D; d++)
            zs[d] = (z[d] - 2.0 * a * (2.0 * x[d] - 1.0)) / sqrt(4.0 * a);
        snprintf(what, sizeof what, "%s K=2 plane l, a=%g", name, a);
        check_standardized(zs, D, what);
    } else {
        for (int c = 0; c < K; c++) {
            for (int d = 0; d < D; d++)
                zs[d] = (z[(size_t)c * D + d] - a * ((x[d] == c ? K : 0) - 1.0)) / sqrt(a * K);
            snprintf(what, sizeof what, "%s K=%d plane %d, a=%g", name, K, c, a);
            check_standardized(zs, D, what);
        }
        /* Planes are independent: correlation of planes 0 and 1 is 0. */
        double cr = 0.0;
        for (int d = 0; d < D; d++) {
            double u = (z[d] - a * ((x[d] == 0 ? K : 0) - 1.0)) / sqrt(a * K);
            double v = (z[(size_t)D + d] - a * ((x[d] == 1 ? K : 0) - 1.0)) / sqrt(a * K);
            cr += u * v;
        }
        CHECK_NEAR(0.0, cr / D, 5.0 / sqrt(D), "%s K=%d planes 0,1 uncorrelated", name, K);
        if (K == 2) {
            for (int d = 0; d < D; d++)
                zs[d] = (z[(size_t)D + d] - z[d] - 2.0 * a * (2.0 * x[d] - 1.0)) / sqrt(4.0 * a);
            snprintf(what, sizeof what, "%s K=2 y1-y0 matches the fast-path law, a=%g", name, a);
            check_standardized(zs, D, what);
        }
    }
    free(x);
    free(z);
    free(zs);
}

static void test_flow_sample_matches_closed_form_law(void)
{
    check_law(bfn_flow_sample, 2, 1, bfn_beta_t(3.0, 0.6), "flow");
    check_law(bfn_flow_sample, 3, 3, bfn_beta_t(3.0, 0.6), "flow");
    check_law(bfn_flow_sample, 5, 5, 0.05, "flow");
    check_law(bfn_flow_sample_general, 2, 2, bfn_beta_t(9.0, 0.9), "flow general");
}

static void test_sender_sample_matches_closed_form_law(void)
{
    check_law(bfn_sender_sample, 2, 1, bfn_alpha_step(3.0, 5, 10), "sender");
    check_law(bfn_sender_sample, 3, 3, 0.3, "sender");
    check_law(bfn_sender_sample_general, 2, 2, 0.3, "sender general");
    check_law(bfn_sender_sample_general, 3, 3, 2.0, "sender general");
}

/* ------------------------------------------------------------- update */

static void check_update(int K)
{
    enum { D = 64, STEPS = 10 };
    const int P = bfn_flow_planes(K);
    uint8_t x[D];
    float z[KMAX * D], y[KMAX * D], th[KMAX * D];
    double mult[KMAX * D]; /* θ_k per pixel, class-major like the planes */
    bfn_rng r;
    bfn_rng_init(&r, 5, (uint64_t)K);
    for (int d = 0; d < D; d++) {
        x[d] = (uint8_t)bfn_rng_below(&r, (uint64_t)K);
        for (int k = 0; k < K; k++)
            mult[k * D + d] = 1.0 / K;
    }
    memset(z, 0, sizeof z);
    for (int i = 1; i <= STEPS; i++) {
        bfn_sender_sample(y, x, D, K, bfn_alpha_step(3.0, i, STEPS), &r);
        bfn_update(z, y, P * D);
        /* θ' = normalize(e^y ⊙ θ) (BFN.md, "Bayesian update"), one step at a
         * time in double.
         * K = 2 stores ℓ = y_1 − y_0, i.e. e^y = (1, e^ℓ) up to a factor. */
        for (int d = 0; d < D; d++) {
            double s = 0.0;
            for (int k = 0; k < K; k++) {
                double e = K == 2 ? (k == 1 ? exp(y[d]) : 1.0) : exp(y[k * D + d]);
                s += (mult[k * D + d] *= e);
            }
            for (int k = 0; k < K; k++)
                mult[k * D + d] /= s;
        }
    }
    bfn_theta(th, z, D, K);
    double worst = 0.0;
    for (int d = 0; d < D; d++)
        for (int k = 0; k < P; k++) {
            double want = K == 2 ? mult[D + d] : mult[k * D + d];
            double diff = fabs(want - th[k * D + d]);
            worst = diff > worst ? diff : worst;
        }
    CHECK_NEAR(0.0, worst, 1e-5, "K=%d: max |theta(sum y) - stepwise Bayes| over %d steps", K,
               STEPS);
}

static void test_update_matches_stepwise_multiplicative_bayes(void)
{
    check_update(2);
    check_update(3);
    check_update(5);
}

static void test_theta_and_net_input_match_definitions(void)
{
    enum { D = 6 };
    const float zb[D] = {0.0f, 1.5f, -2.0f, 30.0f, -1e4f, 1e4f};
    float th[D], in[D];
    bfn_theta(th, zb, D, 2);
    bfn_net_input(in, zb, D, 2);
    for (int d = 0; d < D; d++) {
        double s = 1.0 / (1.0 + exp(-(double)zb[d]));
        CHECK_NEAR(s, th[d], 1e-7, "K=2 theta = sigmoid(%g)", zb[d]);
        CHECK_NEAR(2.0 * s - 1.0, in[d], 2e-7, "K=2 net input 2 theta - 1 at %g", zb[d]);
    }
    /* K = 3, pixels side by side (planes of D = 2). */
    const float z3[6] = {0.1f, 1e4f, -0.7f, -1e4f, 2.0f, 0.0f};
    float t3[6], i3[6];
    bfn_theta(t3, z3, 2, 3);
    bfn_net_input(i3, z3, 2, 3);
    for (int d = 0; d < 2; d++) {
        double l[3] = {z3[d], z3[2 + d], z3[4 + d]}, p[3];
        softmax_ref(p, l, 3);
        for (int k = 0; k < 3; k++) {
            CHECK_NEAR(p[k], t3[k * 2 + d], 1e-7, "K=3 theta pixel %d class %d", d, k);
            CHECK_NEAR(2 * p[k] - 1, i3[k * 2 + d], 2e-7, "K=3 net input pixel %d class %d", d,
                       k);
        }
    }
}

/* -------------------------------------------------------------- losses */

static void fill_logits(float *l, int n, double scale, uint64_t seed)
{
    bfn_rng r;
    bfn_rng_init(&r, seed, 9);
    for (int i = 0; i < n; i++)
        l[i] = (float)(scale * bfn_rng_normal(&r));
}

static void test_cts_loss_equals_direct_evaluation(void)
{
    enum { D = 30 };
    float l[4 * D];
    uint8_t x[D];
    const double b1 = 3.0, t = 0.37;
    for (int K = 2; K <= 4; K++) {
        fill_logits(l, K * D, 2.0, (uint64_t)K);
        for (int d = 0; d < D; d++)
            x[d] = (uint8_t)(d % K);
        double want = 0.0;
        for (int d = 0; d < D; d++) {
            double lg[4], p[4];
            for (int k = 0; k < K; k++)
                lg[k] = l[k * D + d];
            softmax_ref(p, lg, K);
            for (int k = 0; k < K; k++)
                want += K * b1 * t * ((k == x[d]) - p[k]) * ((k == x[d]) - p[k]);
        }
        CHECK_REL(want, bfn_loss_cts_general(l, x, D, K, b1, t, NULL, 1.0f), 1e-12, 1e-12,
                  "general L-inf K=%d", K);
        if (K == 2) {
            double wf = 0.0;
            for (int d = 0; d < D; d++) {
                double p = 1.0 / (1.0 + exp(-(double)l[d]));
                wf += 4.0 * b1 * t * (x[d] - p) * (x[d] - p);
            }
            CHECK_REL(wf, bfn_loss_cts(l, x, D, 2, b1, t, NULL, 1.0f), 1e-12, 1e-12,
                      "fast L-inf K=2");
        }
    }
}

/* Central differences with h = 2^-10 (exact in float for |logit| < 2^13). */
typedef double (*cts_fn)(const float *, const uint8_t *, int, int, double, double, float *,
                         float);

static void check_cts_gradient(cts_fn fn, int K, int planes, const char *name)
{
    enum { D = 12 };
    float l[KMAX * D], g[KMAX * D];
    uint8_t x[D];
    const double b1 = 9.0, t = 0.8, h = 1.0 / 1024.0;
    const float scale = 0.25f;
    fill_logits(l, planes * D, 1.5, (uint64_t)(100 + K));
    for (int d = 0; d < D; d++)
        x[d] = (uint8_t)((d * 7) % K);
    fn(l, x, D, K, b1, t, g, scale);
    for (int i = 0; i < planes * D; i++) {
        float keep = l[i];
        l[i] = (float)(keep + h);
        double up = fn(l, x, D, K, b1, t, NULL, 1.0f);
        l[i] = (float)(keep - h);
        double dn = fn(l, x, D, K, b1, t, NULL, 1.0f);
        l[i] = keep;
        double fd = scale * (up - dn) / (2 * h);
        CHECK_NEAR(fd, g[i], 1e-4 * fabs(fd) + 2e-5, "%s K=%d dL/dlogit[%d]", name, K, i);
    }
}

static void test_cts_loss_gradient_matches_finite_differences(void)
{
    check_cts_gradient(bfn_loss_cts, 2, 1, "fast");
    check_cts_gradient(bfn_loss_cts_general, 2, 2, "general");
    check_cts_gradient(bfn_loss_cts_general, 3, 3, "general");
    check_cts_gradient(bfn_loss_cts, 5, 5, "dispatch");
}

static void test_recon_loss_matches_log_softmax(void)
{
    enum { D = 20 };
    float l[3 * D];
    uint8_t x[D];
    fill_logits(l, 3 * D, 3.0, 55);
    for (int d = 0; d < D; d++)
        x[d] = (uint8_t)(d % 3);
    double want = 0.0;
    for (int d = 0; d < D; d++) {
        double lg[3] = {l[d], l[D + d], l[2 * D + d]}, p[3];
        softmax_ref(p, lg, 3);
        want -= log(p[x[d]]);
    }
    CHECK_REL(want, bfn_loss_recon(l, x, D, 3), 1e-12, 1e-12, "K=3 recon = -ln softmax");
    double wb = 0.0;
    for (int d = 0; d < D; d++) {
        double p = 1.0 / (1.0 + exp(-(double)l[d]));
        wb -= log((d & 1) ? p : 1.0 - p);
        x[d] = (uint8_t)(d & 1);
    }
    CHECK_REL(wb, bfn_loss_recon(l, x, D, 2), 1e-12, 1e-12, "K=2 recon = -ln sigmoid");
    /* Large logits: exact asymptotes, no overflow. */
    float big[2] = {1e4f, -1e4f};
    uint8_t x0[2] = {0, 1}, x1[2] = {1, 0};
    CHECK_REL(2e4, bfn_loss_recon(big, x0, 2, 2), 1e-12, 1.0, "K=2 recon, wrong at |l|=1e4");
    CHECK_NEAR(0.0, bfn_loss_recon(big, x1, 2, 2), 1e-300, "K=2 recon, right at |l|=1e4");
}

/* K = 2 general path fed logits (0, l) must give the fast path's numbers.
 * Softmax depends on l_1 − l_0 only, so with G(l_0, l_1) = F(l_1 − l_0):
 * dG/dl_1 = F'(l) and dG/dl_0 = −F'(l), i.e. F' = (dG/dl_1 − dG/dl_0)/2. */
static void test_binary_fast_path_equals_general_path(void)
{
    enum { D = 16 };
    float l[D], lg[2 * D], gf[D], gg[2 * D], p[D];
    uint8_t x[D];
    fill_logits(l, D, 3.0, 8);
    l[0] = 1e4f;
    l[1] = -1e4f;
    for (int d = 0; d < D; d++) {
        x[d] = (uint8_t)((d / 2) & 1);
        lg[d] = 0.0f;
        lg[D + d] = l[d];
    }
    double ff = bfn_loss_cts(l, x, D, 2, 3.0, 0.6, gf, 1.0f);
    double gn = bfn_loss_cts_general(lg, x, D, 2, 3.0, 0.6, gg, 1.0f);
    CHECK_REL(gn, ff, 1e-12, 1e-12, "L-inf fast vs general");
    for (int d = 0; d < D; d++) {
        CHECK_NEAR(gg[D + d], gf[d], 1e-6 * fabs(gf[d]) + 1e-9, "dL/dl fast vs dG/dl1 [%d]", d);
        CHECK_NEAR(0.5 * (gg[D + d] - gg[d]), gf[d], 1e-6 * fabs(gf[d]) + 1e-9,
                   "dL/dl fast vs (dG/dl1 - dG/dl0)/2 [%d]", d);
    }
    {
        /* The general formula (log-softmax over two planes) on (0, l). */
        double want = 0.0;
        for (int d = 0; d < D; d++) {
            double lv = l[d], m = lv > 0 ? lv : 0;
            want += m + log(exp(-m) + exp(lv - m)) - (x[d] ? lv : 0.0);
        }
        CHECK_REL(want, bfn_loss_recon(l, x, D, 2), 1e-12, 1e-12, "recon fast vs 2-class");
    }
    /* Probabilities: fast p_on equals the general softmax's class 1. */
    bfn_output_probs(p, l, D, 2);
    for (int d = 0; d < D; d++) {
        double pr[2], lv[2] = {lg[d], lg[D + d]};
        softmax_ref(pr, lv, 2);
        CHECK_NEAR(pr[1], p[d], 1e-7, "p_on fast vs softmax(0, l)[1], pixel %d", d);
    }
    /* KL: different draws, so compare within the combined MC error. */
    const double ps[3] = {0.7, 0.2, 0.999}, al[3] = {0.3, 2.0, 0.05};
    for (int j = 0; j < 3; j++)
        for (int xv = 0; xv <= 1; xv++) {
            double pp[2] = {1.0 - ps[j], ps[j]};
            mc_stat a = kl_pixel_stat(xv, pp, 2, al[j], 300 + (uint64_t)j);
            mc_stat b = kl_binary_stat((uint8_t)xv, (float)ps[j], al[j], 400 + (uint64_t)j);
            CHECK_NEAR(a.mean, b.mean, 5.0 * sqrt(a.se * a.se + b.se * b.se) + 1e-7,
                       "KL fast vs general x=%d p_on=%g alpha=%g", xv, ps[j], al[j]);
        }
}

/* Discrete-time loss tends to the continuous-time loss.
 *
 * With a fixed output distribution p (the same at every t), L∞ per pixel is
 * K β(1) ‖e_x − p‖² E_t[t] = ∫_0^1 α(t) (K/2)‖e_x − p‖² dt = K β(1)‖e_x − p‖²/2.
 * The n-step loss is L^n = n E_i KL(α_i) = Σ_i KL(α_i) (exact average over i).
 * As α → 0 the receiver mixture tends to a Gaussian with mean α(K p − 1) and
 * the same covariance αK I, so KL(α) = (αK/2)‖e_x − p‖² + O(α²); summing,
 * Σ α_i = β(1) gives L∞ and the remainder is O(Σ α_i²) = O(β(1)²/n).
 * So the gap L^n − L∞ shrinks like 1/n: n·gap tends to a constant. */
#define LN_REPS 4

typedef struct {
    double gap, se;
} gap_stat;

static void discrete_gaps(int n, double b1, gap_stat *g2, gap_stat *g3)
{
    /* K = 2 image of three pixels (fast path); one K = 3 pixel (general). */
    static const uint8_t x2[3] = {1, 0, 1};
    static const float p2[3] = {0.7f, 0.7f, 0.95f};
    static const double p3[3] = {0.2, 0.3, 0.5};
    const int x3 = 2;
    double linf2 = 0.0, linf3 = bfn_loss_cts_pixel(x3, p3, 3, b1, 0.5); /* t = E[t] */
    for (int d = 0; d < 3; d++) {
        double pp[2] = {1.0 - (double)p2[d], (double)p2[d]};
        linf2 += bfn_loss_cts_pixel(x2[d], pp, 2, b1, 0.5);
    }
    /* A fixed number of draws per replicate whatever n. */
    int n_mc = 400000 / n;
    double v2[LN_REPS], v3[LN_REPS];
    for (int rep = 0; rep < LN_REPS; rep++) {
        bfn_rng r;
        bfn_rng_init(&r, 42 + (uint64_t)rep, (uint64_t)n);
        v2[rep] = v3[rep] = 0.0;
        for (int i = 1; i <= n; i++) {
            double a = bfn_alpha_step(b1, i, n);
            v2[rep] += bfn_kl_step(x2, p2, 3, 2, a, n_mc, &r);
            v3[rep] += bfn_kl_step_pixel(x3, p3, 3, a, n_mc, &r);
        }
    }
    double m2 = 0.0, m3 = 0.0, s2 = 0.0, s3 = 0.0;
    for (int rep = 0; rep < LN_REPS; rep++) {
        m2 += v2[rep] / LN_REPS;
        m3 += v3[rep] / LN_REPS;
    }
    for (int rep = 0; rep < LN_REPS; rep++) {
        s2 += (v2[rep] - m2) * (v2[rep] - m2);
        s3 += (v3[rep] - m3) * (v3[rep] - m3);
    }
    g2->gap = m2 - linf2;
    g2->se = sqrt(s2 / (LN_REPS - 1) / LN_REPS);
    g3->gap = m3 - linf3;
    g3->se = sqrt(s3 / (LN_REPS - 1) / LN_REPS);
    printf("  beta1=%g n=%-5d K=2: L^n %.5f L-inf %.5f gap %+.5f (SE %.1e) | K=3: L^n %.5f "
           "L-inf %.5f gap %+.5f (SE %.1e)\n", b1, n, m2, linf2, g2->gap, g2->se, m3, linf3,
           g3->gap, g3->se);
}

static void test_discrete_loss_tends_to_cts_loss(void)
{
    const int ns[3] = {10, 100, 1000};
    gap_stat g[2][3];
    for (int j = 0; j < 3; j++)
        discrete_gaps(ns[j], 3.0, &g[0][j], &g[1][j]);
    for (int c = 0; c < 2; c++) {
        const char *name = c ? "K=3" : "K=2";
        for (int j = 0; j < 3; j++)
            CHECK(5.0 * g[c][j].se < fabs(g[c][j].gap) / 3.0,
                  "%s n=%d: gap %.5f resolved (SE %.2g)", name, ns[j], g[c][j].gap, g[c][j].se);
        for (int j = 1; j < 3; j++) {
            CHECK(fabs(g[c][j].gap) < 0.3 * fabs(g[c][j - 1].gap),
                  "%s gap shrinks: n=%d %.5f vs n=%d %.5f", name, ns[j], g[c][j].gap, ns[j - 1],
                  g[c][j - 1].gap);
            /* 1/n rate: n·gap about constant (±40%). */
            double ratio = ns[j] * g[c][j].gap / (ns[j - 1] * g[c][j - 1].gap);
            CHECK(ratio > 0.6 && ratio < 1.4, "%s n*gap ratio n=%d/n=%d: %.3f", name, ns[j],
                  ns[j - 1], ratio);
        }
    }
}

/* ------------------------------------------------- output distribution */

static void test_output_sample_frequencies_match_p(void)
{
    enum { D = 60000 };
    uint8_t *k = malloc(D);
    float *p = malloc(sizeof(float) * 3 * D);
    const double pk[2][3] = {{0.2, 0.5, 0.3}, {0.0, 0.25, 0.75}};
    for (int c = 0; c < 2; c++) {
        for (int d = 0; d < D; d++)
            for (int j = 0; j < 3; j++)
                p[j * D + d] = (float)pk[c][j];
        bfn_rng r;
        bfn_rng_init(&r, 3, (uint64_t)c);
        bfn_output_sample(k, p, D, 3, &r);
        double n[3] = {0, 0, 0}, chi = 0.0;
        for (int d = 0; d < D; d++)
            n[k[d]] += 1.0;
        for (int j = 0; j < 3; j++) {
            double e = D * pk[c][j];
            CHECK_NEAR(e, n[j], 5.0 * sqrt(e * (1.0 - pk[c][j])) + 1e-9,
                       "K=3 case %d: count of class %d", c, j);
            if (e > 0)
                chi += (n[j] - e) * (n[j] - e) / e;
        }
        int df = pk[c][0] > 0 ? 2 : 1;
        /* χ² with df degrees of freedom: mean df, sd √(2 df). */
        CHECK(chi < df + 6.0 * sqrt(2.0 * df), "K=3 case %d: chi-square %.2f, df %d", c, chi, df);
    }
    /* K = 2, varying p per pixel: the count of ones matches Σ p. */
    double sp = 0.0, var = 0.0, ones = 0.0;
    for (int d = 0; d < D; d++) {
        p[d] = (float)(d % 101) / 100.0f;
        sp += p[d];
        var += p[d] * (1.0 - p[d]);
    }
    bfn_rng r;
    bfn_rng_init(&r, 4, 0);
    bfn_output_sample(k, p, D, 2, &r);
    int bad = 0;
    for (int d = 0; d < D; d++) {
        ones += k[d];
        bad += (p[d] == 0.0f && k[d]) || (p[d] == 1.0f && !k[d]);
    }
    CHECK_NEAR(sp, ones, 5.0 * sqrt(var), "K=2 number of ones vs sum of p");
    CHECK(bad == 0, "K=2: %d pixels with p in {0,1} drew the impossible class", bad);
    free(k);
    free(p);
}

static void test_output_sample_uses_one_uniform_per_pixel(void)
{
    enum { D = 500 };
    float p2[D], p3[3 * D];
    uint8_t k[D];
    fill_logits(p2, D, 1.0, 6);
    bfn_output_probs(p2, p2, D, 2);
    fill_logits(p3, 3 * D, 1.0, 7);
    bfn_output_probs(p3, p3, D, 3);
    for (int K = 2; K <= 3; K++) {
        const float *p = K == 2 ? p2 : p3;
        bfn_rng r, ref;
        bfn_rng_init(&r, 11, (uint64_t)K);
        ref = r;
        bfn_output_sample(k, p, D, K, &r);
        int bad = 0;
        for (int d = 0; d < D; d++) {
            double u = bfn_rng_uniform(&ref), cum = 0.0;
            int want = K - 1;
            if (K == 2) {
                want = u < p[d];
            } else {
                double tot = (double)p[d] + p[D + d] + p[2 * D + d];
                for (int j = 0; j < K; j++)
                    if ((cum += p[j * D + d]) > u * tot) {
                        want = j;
                        break;
                    }
            }
            bad += k[d] != want;
        }
        CHECK(bad == 0, "K=%d: %d of %d classes differ from inverse CDF of the d-th uniform", K,
              bad, D);
        CHECK(bfn_rng_u64(&r) == bfn_rng_u64(&ref), "K=%d: rng advanced by exactly D uniforms",
              K);
    }
}

static void test_output_argmax_breaks_ties_to_lowest_class(void)
{
    /* K = 3, four pixels: (.3,.3,.4) → 2, (.4,.4,.2) → 0, (1/3 each) → 0, (0,.5,.5) → 1. */
    const float p[12] = {0.3f, 0.4f, 1 / 3.f, 0.0f, 0.3f, 0.4f, 1 / 3.f, 0.5f,
                         0.4f, 0.2f, 1 / 3.f, 0.5f};
    uint8_t k[4];
    bfn_output_argmax(k, p, 4, 3);
    const uint8_t want[4] = {2, 0, 0, 1};
    for (int d = 0; d < 4; d++)
        CHECK_NEAR(want[d], k[d], 0, "K=3 argmax pixel %d", d);
    const float pb[4] = {0.5f, 0.5000001f, 0.4999999f, 0.0f};
    const uint8_t wb[4] = {0, 1, 0, 0};
    uint8_t kb[4];
    bfn_output_argmax(kb, pb, 4, 2);
    for (int d = 0; d < 4; d++)
        CHECK_NEAR(wb[d], kb[d], 0, "K=2 argmax p_on=%.7f", pb[d]);
}

static void test_entropy_matches_closed_form(void)
{
    float z0[3] = {0, 0, 0}, h[4];
    bfn_entropy(h, z0, 1, 3);
    CHECK_NEAR(log(3.0), h[0], 1e-6, "K=3 uniform entropy = ln 3");
    bfn_entropy(h, z0, 1, 2);
    CHECK_NEAR(log(2.0), h[0], 1e-6, "K=2 uniform entropy = ln 2");
    const float zb[4] = {1.3f, -4.0f, 60.0f, -1e4f};
    bfn_entropy(h, zb, 4, 2);
    for (int d = 0; d < 4; d++) {
        double t = 1.0 / (1.0 + exp(-(double)zb[d]));
        double want = (t > 0 && t < 1) ? -t * log(t) - (1 - t) * log1p(-t) : 0.0;
        CHECK_NEAR(want, h[d], 1e-6 * want + 1e-12, "K=2 binary entropy at l=%g", zb[d]);
    }
    /* K = 3, two pixels. */
    const float z3[6] = {0.5f, 1e4f, -1.0f, 0.0f, 2.0f, -1e4f};
    bfn_entropy(h, z3, 2, 3);
    for (int d = 0; d < 2; d++) {
        double l[3] = {z3[d], z3[2 + d], z3[4 + d]}, p[3], want = 0.0;
        softmax_ref(p, l, 3);
        for (int k = 0; k < 3; k++)
            if (p[k] > 0)
                want -= p[k] * log(p[k]);
        CHECK_NEAR(want, h[d], 1e-6 * want + 1e-12, "K=3 entropy pixel %d", d);
    }
}

/* --------------------------------------------------- numerical safety */

static void test_extreme_inputs_give_finite_results(void)
{
    enum { D = 4 };
    const float lb[D] = {1e4f, -1e4f, 88.0f, -120.0f};
    const float l3[3 * D] = {1e4f, -1e4f, 0, 5, -1e4f, 1e4f, 0, -5, 0, 0, 1e4f, 1e4f};
    const uint8_t x[D] = {0, 1, 1, 2};
    const uint8_t xb[D] = {0, 1, 1, 0};
    float g[3 * D], p[3 * D], h[3 * D];
    int bad = 0;
    double v[6];
    v[0] = bfn_loss_cts(lb, xb, D, 2, 9.0, 1.0, g, 1.0f);
    for (int i = 0; i < D; i++)
        bad += !isfinite(g[i]);
    v[1] = bfn_loss_cts_general(l3, x, D, 3, 9.0, 1.0, g, 1.0f);
    for (int i = 0; i < 3 * D; i++)
        bad += !isfinite(g[i]);
    v[2] = bfn_loss_recon(lb, xb, D, 2);
    v[3] = bfn_loss_recon(l3, x, D, 3);
    bfn_output_probs(p, lb, D, 2);
    bfn_entropy(h, lb, D, 2);
    for (int i = 0; i < D; i++)
        bad += !isfinite(p[i]) + !isfinite(h[i]);
    bfn_output_probs(p, l3, D, 3);
    bfn_entropy(h, l3, D, 3);
    for (int i = 0; i < 3 * D; i++)
        bad += !isfinite(p[i]) + (i < D && !isfinite(h[i]));
    bfn_rng r;
    bfn_rng_init(&r, 1, 1);
    const float pe[D] = {0.0f, 1.0f, 0.0f, 1.0f};
    v[4] = bfn_kl_step(xb, pe, D, 2, 9.0, 64, &r);
    const double pz[3] = {0.0, 0.0, 1.0};
    v[5] = bfn_kl_step_pixel(0, pz, 3, 20.0, 64, &r);
    for (int i = 0; i < 6; i++)
        bad += !isfinite(v[i]);
    CHECK(bad == 0, "%d non-finite values from extreme logits / probabilities", bad);
    /* A deterministic receiver that is wrong: KL(N(−2α,4α) ‖ N(2α,4α)) = 2α exactly. */
    uint8_t x0 = 0;
    float pon = 1.0f;
    CHECK_REL(2.0 * 9.0, bfn_kl_step(&x0, &pon, 1, 2, 9.0, 1000, &r), 1e-9, 1.0,
              "KL to a wrong point mass is 2 alpha");
    uint8_t x1 = 1;
    CHECK_NEAR(0.0, bfn_kl_step(&x1, &pon, 1, 2, 9.0, 1000, &r), 1e-12,
               "KL to the right point mass is 0");
}

int main(void)
{
    RUN(test_kl_step_pixel_matches_golden_quadrature);
    RUN(test_kl_step_binary_fast_path_matches_golden);
    RUN(test_cts_loss_matches_golden_exactly);
    RUN(test_alpha_steps_sum_to_beta1);
    RUN(test_schedule_closed_forms);
    RUN(test_flow_at_beta_zero_is_uniform);
    RUN(test_flow_sample_matches_closed_form_law);
    RUN(test_sender_sample_matches_closed_form_law);
    RUN(test_update_matches_stepwise_multiplicative_bayes);
    RUN(test_theta_and_net_input_match_definitions);
    RUN(test_cts_loss_equals_direct_evaluation);
    RUN(test_cts_loss_gradient_matches_finite_differences);
    RUN(test_recon_loss_matches_log_softmax);
    RUN(test_binary_fast_path_equals_general_path);
    RUN(test_discrete_loss_tends_to_cts_loss);
    RUN(test_output_sample_frequencies_match_p);
    RUN(test_output_sample_uses_one_uniform_per_pixel);
    RUN(test_output_argmax_breaks_ties_to_lowest_class);
    RUN(test_entropy_matches_closed_form);
    RUN(test_extreme_inputs_give_finite_results);
    return check_finish();
}
