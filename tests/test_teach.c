/* Teaching sessions (teach.c): the per-pixel KL against the golden quadrature
 * values and Monte Carlo, sessions against bfn_sampler, message costs against
 * closed forms and against the evaluator's L^n for the same image, and
 * inpainting. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/eval.h"
#include "bfn/flow.h"
#include "bfn/net.h"
#include "bfn/rng.h"
#include "bfn/sample.h"
#include "bfn/teach.h"
#include "check.h"
#include "fixtures.h"

#define GOLDEN_KL "tests/golden/bfn_step_kl.tsv"
#define D8 64 /* pixels of the tiny 8×8 network */

/* The tiny network; perturbed = 0 leaves its output layer at zero (p_O = 1/K). */
static bfn_net *tiny_net(int K, int perturbed)
{
    bfn_net_config c = fixture_tiny_config(K, 0.0f);
    bfn_net *net;
    bfn_err err = {0};
    if (bfn_net_create(&net, &c, 16, &err) != BFN_OK) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    bfn_net_init_params(net, 5);
    if (perturbed) {
        float *p = bfn_net_params(net);
        bfn_rng r;
        bfn_rng_init(&r, 5, 99);
        for (size_t i = 0; i < bfn_net_param_count(net); i++)
            p[i] += 0.08f * (float)bfn_rng_normal(&r);
    }
    return net;
}

/* A digit-like 8×8 image: a ring. */
static void ring(uint8_t *x)
{
    for (int y = 0; y < 8; y++)
        for (int i = 0; i < 8; i++) {
            double d = hypot(i - 3.5, y - 3.5);
            x[y * 8 + i] = d > 1.6 && d < 3.3;
        }
}

/* ------------------------------------------------------------ the KL */

static void test_teach_kl_binary_matches_golden_quadrature(void)
{
    FILE *f = fopen(GOLDEN_KL, "r");
    if (!CHECK(f != NULL, "open %s (tests run from the repository root)", GOLDEN_KL))
        return;
    char line[512];
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        int K, x;
        double a, p0, p1, want;
        if (line[0] == '#' || line[0] == 'K' ||
            sscanf(line, "%d %d %lf %lf,%lf %lf", &K, &x, &a, &p0, &p1, &want) != 6 || K != 2)
            continue;
        double got = bfn_teach_kl_binary(x, p1, a);
        CHECK_NEAR(want, got, 1e-9 + 1e-9 * want, "KL(K=2, x=%d, alpha=%g, p_on=%g) nats", x, a,
                   p1);
        rows++;
    }
    fclose(f);
    CHECK_NEAR(7, rows, 0, "K = 2 rows of the golden file");
}

static void test_teach_kl_binary_agrees_with_monte_carlo_beyond_the_golden_range(void)
{
    /* far beyond the golden rows (n = 1 at large β(1)): values from an
     * independent adaptive quadrature at 30 digits (mpmath) */
    const struct {
        int x;
        double p_on, alpha, want;
    } ref[5] = {{1, 0.3, 30, 1.20397270336284}, {1, 0.9, 120, 0.105360515657826},
                {0, 0.02, 800, 0.0202027073175195}, {1, 0.5, 2500, 0.693147180559945},
                {0, 0.999, 0.002, 0.00399197202743724}};
    for (int j = 0; j < 5; j++)
        CHECK_NEAR(ref[j].want, bfn_teach_kl_binary(ref[j].x, ref[j].p_on, ref[j].alpha),
                   1e-11 + 1e-10 * ref[j].want, "KL(x=%d, alpha=%g, p_on=%g) vs mpmath",
                   ref[j].x, ref[j].alpha, ref[j].p_on);
    /* and the engine's Monte Carlo estimator where its tails are well sampled */
    const double alphas[2] = {2.0, 0.5}, pons[2] = {1e-6, 0.4};
    for (int j = 0; j < 2; j++) {
        double p[2] = {1 - pons[j], pons[j]};
        double s = 0, s2 = 0;
        const int B = 20;
        for (int b = 0; b < B; b++) {
            bfn_rng r;
            bfn_rng_init(&r, 77, (uint64_t)(j * 100 + b));
            double v = bfn_kl_step_pixel(1, p, 2, alphas[j], 20000, &r);
            s += v;
            s2 += v * v;
        }
        double mean = s / B, se = sqrt(fmax(0, (s2 - s * s / B) / (B - 1)) / B);
        double got = bfn_teach_kl_binary(1, pons[j], alphas[j]);
        CHECK_NEAR(mean, got, 4 * se + 1e-9, "KL(x=1, alpha=%g, p_on=%g) vs MC (SE %.2g)",
                   alphas[j], pons[j], se);
    }
    /* small α: the KL tends to the L∞ integrand (αK/2)‖e_x − p‖² = 2α p_o² */
    double a = 1e-7, po = 0.3;
    CHECK_REL(2 * a * po * po, bfn_teach_kl_binary(0, po, a), 1e-3, 0,
              "small-alpha limit 2 alpha p_o^2");
    CHECK_NEAR(0, bfn_teach_kl_binary(1, 1.0, 5.0), 1e-15, "a certain, right guess costs 0");
    CHECK_NEAR(2 * 5.0, bfn_teach_kl_binary(1, 0.0, 5.0), 1e-9,
               "a certain, wrong guess costs 2 alpha (the mean log-ratio)");
}

/* ------------------------------------------------------------ sessions */

typedef struct {
    float z[1100][D8];
    int calls;
} z_trace;

static int trace_z(const bfn_sample_frame *f, void *user)
{
    z_trace *t = user;
    if (t->calls < 1100)
        memcpy(t->z[t->calls], f->z, sizeof t->z[0]); /* image 0 */
    t->calls++;
    return 0;
}

/* Runs a session to the end; returns the max |z − sampler's z| over all steps
 * and the pixels whose final class differs, given the sampler's run. */
static void compare_with_sampler(bfn_net *net, bfn_teach_config *tc, const uint8_t *x_true,
                                 int count, double *dz, int *dk)
{
    static z_trace tr;
    memset(&tr, 0, sizeof tr);
    uint8_t *xt = NULL;
    if (x_true) {
        xt = malloc((size_t)count * D8);
        for (int b = 0; b < count; b++)
            memcpy(xt + (size_t)b * D8, x_true, D8);
    }
    bfn_sample_config sc = {.n_steps = tc->n_steps, .beta1 = tc->beta1, .count = count,
                            .seed = tc->seed, .final = tc->final, .x_true = xt};
    bfn_sampler *s;
    bfn_err err = {0};
    CHECK(bfn_sampler_create(&s, net, &sc, &err) == BFN_OK, "sampler: %s", err.msg);
    bfn_sampler_set_observer(s, trace_z, &tr);
    CHECK(bfn_sampler_run(s, NULL, &err) == BFN_OK, "sampler run: %s", err.msg);
    bfn_teach *t;
    CHECK(bfn_teach_create(&t, net, tc, &err) == BFN_OK, "teach: %s", err.msg);
    *dz = 0;
    bfn_teach_frame f;
    for (int i = 0; !bfn_teach_finished(t); i++) {
        CHECK(bfn_teach_step(t, &f, &err) == BFN_OK, "teach step: %s", err.msg);
        for (int d = 0; d < D8; d++)
            *dz = fmax(*dz, fabs(f.z[d] - tr.z[i][d]));
    }
    *dk = 0;
    const uint8_t *a = bfn_sampler_result(s), *b = bfn_teach_result(t);
    for (int d = 0; d < D8; d++)
        *dk += a[d] != b[d];
    bfn_teach_destroy(t);
    bfn_sampler_destroy(s);
    free(xt);
}

static void test_teach_bob_alone_reproduces_sampler_image_0(void)
{
    bfn_net *net = tiny_net(2, 1);
    for (int argmax = 0; argmax < 2; argmax++) {
        bfn_teach_config tc = {.n_steps = 15, .beta1 = 3.0, .seed = 11,
                               .final = argmax ? BFN_FINAL_ARGMAX : BFN_FINAL_SAMPLE,
                               .mode = BFN_TEACH_BOB};
        double dz;
        int dk;
        compare_with_sampler(net, &tc, NULL, 3, &dz, &dk);
        CHECK_NEAR(0, dz, 0, "max |z - sampler z| over 15 steps (argmax %d)", argmax);
        CHECK_NEAR(0, dk, 0, "final pixels differing from sampler image 0 (argmax %d)", argmax);
    }
    bfn_net_destroy(net);
}

static void test_teach_alice_reproduces_sampler_with_x_true(void)
{
    bfn_net *net = tiny_net(2, 1);
    uint8_t x[D8];
    ring(x);
    bfn_teach_config tc = {.n_steps = 12, .beta1 = 5.0, .seed = 4, .mode = BFN_TEACH_ALICE,
                           .x = x};
    double dz;
    int dk;
    compare_with_sampler(net, &tc, x, 2, &dz, &dk);
    CHECK_NEAR(0, dz, 0, "max |z - sampler z| with x_true");
    CHECK_NEAR(0, dk, 0, "final pixels differing from the sampler with x_true");
    bfn_net_destroy(net);
}

static void test_teach_same_seed_gives_bob_and_alice_the_same_noise(void)
{
    /* message = mean + noise with the mean ±2α per pixel (one-number form), so
     * y_alice − y_bob is 0 where x = k and ±4α where they differ */
    bfn_net *net = tiny_net(2, 1);
    uint8_t x[D8];
    ring(x);
    bfn_teach_config tb = {.n_steps = 6, .beta1 = 3.0, .seed = 9, .mode = BFN_TEACH_BOB};
    bfn_teach_config ta = tb;
    ta.mode = BFN_TEACH_ALICE;
    ta.x = x;
    bfn_teach *sb, *sa;
    bfn_err err = {0};
    bfn_teach_create(&sb, net, &tb, &err);
    bfn_teach_create(&sa, net, &ta, &err);
    bfn_teach_frame fb, fa;
    bfn_teach_step(sb, &fb, &err);
    bfn_teach_step(sa, &fa, &err);
    double worst = 0;
    for (int d = 0; d < D8; d++) {
        double want = 2 * fa.alpha * 2 * ((int)x[d] - (int)fb.k[d]);
        worst = fmax(worst, fabs((fa.y[d] - fb.y[d]) - want));
    }
    CHECK_NEAR(0, worst, 1e-6, "step 1: y_alice - y_bob - 4 alpha (x - k), max over pixels");
    bfn_teach_destroy(sb);
    bfn_teach_destroy(sa);
    bfn_net_destroy(net);
}

static void test_teach_uniform_network_costs_match_golden_and_ln2(void)
{
    /* p_O = ½ everywhere: each message costs D·KL(α_i, p = ½), and with n = 1,
     * β(1) = 3 that is the golden row "2 1 3.0 0.5,0.5"; the final guess costs
     * D ln 2 nats (one bit per pixel). */
    bfn_net *net = tiny_net(2, 0);
    uint8_t x[D8];
    ring(x);
    bfn_teach_config tc = {.n_steps = 1, .beta1 = 3.0, .seed = 1, .mode = BFN_TEACH_ALICE,
                           .x = x};
    bfn_teach *t;
    bfn_err err = {0};
    CHECK(bfn_teach_create(&t, net, &tc, &err) == BFN_OK, "create: %s", err.msg);
    bfn_teach_frame f;
    bfn_teach_step(t, &f, &err);
    CHECK_NEAR(D8 * 0.585939350426, f.cost_sum, 1e-8, "message cost, nats (golden x 64)");
    CHECK_NEAR(f.cost_sum, f.total, 0, "running total after the only message");
    bfn_teach_step(t, &f, &err);
    CHECK(f.is_final, "second call is the final output");
    CHECK_NEAR(D8 * log(2.0), f.cost_sum, 1e-5, "final guess costs D ln 2 nats");
    CHECK_NEAR(D8 * 0.585939350426, f.total, 1e-8, "the total counts messages only");
    bfn_teach_destroy(t);
    bfn_net_destroy(net);
}

/* One Alice session: fills steps[] with each message's cost; returns the total
 * and the final (reconstruction) cost in *rec. */
static double alice_run(bfn_net *net, const uint8_t *x, int n, double beta1, uint64_t seed,
                        double *steps, double *rec, double *pix_err, int *nonpos)
{
    bfn_teach_config tc = {.n_steps = n, .beta1 = beta1, .seed = seed, .mode = BFN_TEACH_ALICE,
                           .x = x};
    bfn_teach *t;
    bfn_err err = {0};
    if (!CHECK(bfn_teach_create(&t, net, &tc, &err) == BFN_OK, "create: %s", err.msg))
        return NAN;
    bfn_teach_frame f;
    double total = 0;
    while (!bfn_teach_finished(t)) {
        bfn_teach_step(t, &f, &err);
        double s = 0;
        for (int d = 0; d < f.D; d++)
            s += f.cost[d];
        if (pix_err)
            *pix_err = fmax(*pix_err, fabs(s - f.cost_sum));
        if (f.is_final) {
            *rec = f.cost_sum;
        } else {
            if (steps)
                steps[f.step - 1] = f.cost_sum;
            if (nonpos)
                *nonpos += !(f.cost_sum > 0);
            total = f.total;
        }
    }
    bfn_teach_destroy(t);
    return total;
}

static void test_teach_alice_costs_are_positive_and_sum_to_the_total(void)
{
    bfn_net *net = tiny_net(2, 1);
    uint8_t x[D8];
    ring(x);
    double steps[40], rec, pix_err = 0;
    int nonpos = 0;
    double total = alice_run(net, x, 40, 3.0, 3, steps, &rec, &pix_err, &nonpos);
    double sum = 0;
    for (int i = 0; i < 40; i++)
        sum += steps[i];
    CHECK_NEAR(0, nonpos, 0, "messages whose cost is not positive");
    CHECK_NEAR(sum, total, 1e-9 * sum, "running total = sum of the 40 message costs");
    /* the per-pixel costs are stored as floats: each within 2^-24 of its
     * double, so their sum within 2^-24 of the step's (positive) total */
    CHECK_NEAR(0, pix_err, 1.2e-7 * sum, "per-pixel costs sum to each step's cost");
    CHECK(rec > 0, "the final guess costs something (%g nats)", rec);
    bfn_net_destroy(net);
}

static void test_teach_alice_total_matches_eval_ln_for_the_image(void)
{
    /* The message total of one session is a one-run estimate of L^n for x;
     * its mean over seeds must agree with bfn_eval's L^n for the same image
     * within the two Monte Carlo errors. Also L^r. */
    bfn_net *net = tiny_net(2, 1);
    uint8_t x[D8];
    ring(x);
    const int n = 10, R = 300;
    const double b1 = 3.0;
    double s = 0, s2 = 0, r = 0, r2 = 0;
    for (int j = 0; j < R; j++) {
        double rec;
        double v = alice_run(net, x, n, b1, 1000 + (uint64_t)j, NULL, &rec, NULL, NULL);
        s += v;
        s2 += v * v;
        r += rec;
        r2 += rec * rec;
    }
    double mean = s / R, se = sqrt((s2 - s * s / R) / (R - 1) / R);
    double rmean = r / R, rse = sqrt((r2 - r * r / R) / (R - 1) / R);
    bfn_eval_result res;
    bfn_err err = {0};
    CHECK(bfn_teach_image_loss(net, x, n, b1, 4000, 8, 5, &res, &err) == BFN_OK, "eval: %s",
          err.msg);
    double tol = 4 * sqrt(se * se + res.ln_se * res.ln_se);
    CHECK_NEAR(res.ln, mean, tol, "mean message total (SE %.3f) vs eval L^n (SE %.3f), nats", se,
               res.ln_se);
    CHECK_NEAR(res.lr, rmean, 4 * sqrt(rse * rse + res.lr_se * res.lr_se),
               "mean final cost vs eval L^r, nats");
    CHECK(se < 0.05 * mean, "the comparison is sharp: SE %.3f of %.3f", se, mean);
    bfn_net_destroy(net);
}

/* ------------------------------------------------------------ inpainting */

static void test_teach_inpainting_keeps_every_known_pixel(void)
{
    bfn_net *net = tiny_net(2, 1);
    uint8_t x[D8], known[D8];
    ring(x);
    for (int d = 0; d < D8; d++)
        known[d] = d < D8 / 2; /* the top half */
    for (int m = 0; m < 2; m++) {
        int wrong = 0, unsure = 0;
        for (uint64_t seed = 1; seed <= 10; seed++) {
            bfn_teach_config tc = {.n_steps = 8, .beta1 = 3.0, .seed = seed,
                                   .mode = BFN_TEACH_BOB, .x = x, .known = known,
                                   .inpaint = (bfn_teach_inpaint)m};
            bfn_teach *t;
            bfn_err err = {0};
            if (!CHECK(bfn_teach_create(&t, net, &tc, &err) == BFN_OK, "create: %s", err.msg))
                break;
            bfn_teach_frame f;
            while (!bfn_teach_finished(t)) {
                bfn_teach_step(t, &f, &err);
                if (m == BFN_INPAINT_CLAMP)
                    for (int d = 0; d < D8 / 2; d++)
                        unsure += fabsf(f.z[d]) < BFN_TEACH_CERTAIN;
            }
            const uint8_t *res = bfn_teach_result(t);
            for (int d = 0; d < D8 / 2; d++)
                wrong += res[d] != x[d];
            bfn_teach_destroy(t);
        }
        CHECK_NEAR(0, wrong, 0, "known pixels not kept in the final image (method %d, 10 seeds)",
                   m);
        CHECK_NEAR(0, unsure, 0, "clamped beliefs not certain at some step (method %d)", m);
    }
    bfn_net_destroy(net);
}

static void test_teach_inpainting_with_no_known_pixel_is_bob_alone(void)
{
    bfn_net *net = tiny_net(2, 1);
    uint8_t x[D8], none[D8] = {0};
    ring(x);
    for (int m = 0; m < 2; m++) {
        bfn_teach_config tc = {.n_steps = 9, .beta1 = 3.0, .seed = 21, .mode = BFN_TEACH_BOB,
                               .x = x, .known = none, .inpaint = (bfn_teach_inpaint)m};
        double dz;
        int dk;
        compare_with_sampler(net, &tc, NULL, 1, &dz, &dk);
        CHECK_NEAR(0, dz, 0, "empty mask: max |z - sampler z| (method %d)", m);
        CHECK_NEAR(0, dk, 0, "empty mask: final pixels differing (method %d)", m);
    }
    bfn_net_destroy(net);
}

/* ------------------------------------------------------------ K > 2, errors */

static void test_teach_general_k_costs_are_finite_and_match_the_sampler(void)
{
    bfn_net *net = tiny_net(3, 1);
    uint8_t x[D8];
    for (int d = 0; d < D8; d++)
        x[d] = (uint8_t)(d % 3);
    bfn_teach_config tc = {.n_steps = 5, .beta1 = 2.0, .seed = 3, .mode = BFN_TEACH_ALICE,
                           .x = x, .n_mc = 64};
    bfn_teach *t;
    bfn_err err = {0};
    CHECK(bfn_teach_create(&t, net, &tc, &err) == BFN_OK, "create K=3: %s", err.msg);
    bfn_teach_frame f;
    int bad = 0;
    while (!bfn_teach_finished(t)) {
        bfn_teach_step(t, &f, &err);
        bad += !isfinite(f.cost_sum) || !(f.cost_sum > 0);
    }
    CHECK_NEAR(0, bad, 0, "K = 3 steps whose cost is not finite and positive");
    uint8_t *xt = malloc(D8);
    memcpy(xt, x, D8);
    bfn_sample_config sc = {.n_steps = 5, .beta1 = 2.0, .count = 1, .seed = 3, .x_true = xt};
    bfn_sampler *s;
    bfn_sampler_create(&s, net, &sc, &err);
    bfn_sampler_run(s, NULL, &err);
    int dk = 0;
    for (int d = 0; d < D8; d++)
        dk += bfn_sampler_result(s)[d] != bfn_teach_result(t)[d];
    CHECK_NEAR(0, dk, 0, "K = 3 final pixels differing from the sampler with x_true");
    bfn_sampler_destroy(s);
    free(xt);
    bfn_teach_destroy(t);
    bfn_net_destroy(net);
}

static void test_teach_rejects_bad_configs_with_a_message(void)
{
    bfn_net *net = tiny_net(2, 0);
    uint8_t x[D8] = {0}, known[D8] = {0};
    bfn_teach *t = (bfn_teach *)1;
    bfn_err err = {0};
    bfn_teach_config ok = {.n_steps = 3, .beta1 = 3.0, .seed = 1, .mode = BFN_TEACH_ALICE,
                           .x = x};
    bfn_teach_config c = ok;
    c.x = NULL;
    CHECK(bfn_teach_create(&t, net, &c, &err) == BFN_ERR_ARG && t == NULL &&
              strstr(err.msg, "x is missing"),
          "Alice without x: '%s'", err.msg);
    c = ok;
    c.known = known;
    CHECK(bfn_teach_create(&t, net, &c, &err) == BFN_ERR_ARG && strstr(err.msg, "Bob alone"),
          "a mask in Alice mode: '%s'", err.msg);
    c = ok;
    c.n_steps = 0;
    CHECK(bfn_teach_create(&t, net, &c, &err) == BFN_ERR_ARG && strstr(err.msg, "steps"),
          "n = 0: '%s'", err.msg);
    c = ok;
    x[5] = 2;
    CHECK(bfn_teach_create(&t, net, &c, &err) == BFN_ERR_ARG && strstr(err.msg, "class 2"),
          "x outside the classes: '%s'", err.msg);
    x[5] = 0;
    CHECK(bfn_teach_create(&t, net, &ok, &err) == BFN_OK, "a good config: %s", err.msg);
    bfn_teach_frame f;
    for (int i = 0; i < 4; i++)
        bfn_teach_step(t, &f, &err);
    CHECK(bfn_teach_step(t, &f, &err) == BFN_ERR_ARG, "a step after the end is refused");
    bfn_teach_destroy(t);
    bfn_net_destroy(net);
}

int main(void)
{
    RUN(test_teach_kl_binary_matches_golden_quadrature);
    RUN(test_teach_kl_binary_agrees_with_monte_carlo_beyond_the_golden_range);
    RUN(test_teach_bob_alone_reproduces_sampler_image_0);
    RUN(test_teach_alice_reproduces_sampler_with_x_true);
    RUN(test_teach_same_seed_gives_bob_and_alice_the_same_noise);
    RUN(test_teach_uniform_network_costs_match_golden_and_ln2);
    RUN(test_teach_alice_costs_are_positive_and_sum_to_the_total);
    RUN(test_teach_alice_total_matches_eval_ln_for_the_image);
    RUN(test_teach_inpainting_keeps_every_known_pixel);
    RUN(test_teach_inpainting_with_no_known_pixel_is_bob_alone);
    RUN(test_teach_general_k_costs_are_finite_and_match_the_sampler);
    RUN(test_teach_rejects_bad_configs_with_a_message);
    return check_finish();
}
