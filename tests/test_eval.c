/* Evaluator: against closed forms for a network whose output is uniform
 * (zero-initialised output layer), and reproducibility. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/eval.h"
#include "bfn/flow.h"
#include "bfn/net.h"
#include "check.h"
#include "fixtures.h"

static bfn_net *uniform_net(int max_batch)
{
    bfn_net_config c = fixture_tiny_config(2, 0.1f);
    bfn_net *net;
    bfn_err err = {0};
    if (bfn_net_create(&net, &c, max_batch, &err) != BFN_OK) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    bfn_net_init_params(net, 1); /* zero-init output conv: logits 0, p_on = 1/2 */
    return net;
}

static bfn_status random_image(void *user, int64_t index, int repeat, uint8_t *x, bfn_err *err)
{
    (void)user;
    (void)err;
    bfn_rng r;
    bfn_rng_init(&r, (uint64_t)index, (uint64_t)repeat);
    for (int i = 0; i < 64; i++)
        x[i] = bfn_rng_uniform(&r) < 0.3;
    return BFN_OK;
}

static void test_eval_uniform_output_matches_closed_forms(void)
{
    bfn_net *net = uniform_net(16);
    float in[64] = {0}, t = 0.3f, lg[64];
    bfn_net_forward(net, in, &t, 1, 0, NULL, lg);
    double maxabs = 0;
    for (int i = 0; i < 64; i++)
        maxabs = fmax(maxabs, fabs(lg[i]));
    CHECK_NEAR(0, maxabs, 1e-6, "initial logits (zero-init output layer)");

    bfn_eval_config ec = {.n_steps = 0, .beta1 = 3.0, .repeats = 4, .count = 200, .n_mc = 1,
                          .seed = 1};
    bfn_eval_result r;
    bfn_err err = {0};
    CHECK(bfn_eval_run(net, &ec, random_image, NULL, NULL, NULL, &r, NULL, &err) == BFN_OK,
          "eval: %s", err.msg);
    /* L∞ of p = ½: K β(1) E[t] ‖e_x − p‖² = 2·3·½·½ = 1.5 nats per pixel */
    CHECK_NEAR(96.0, r.ln, 4 * r.ln_se + 1e-9, "L_inf of the uniform model (SE %.3f)", r.ln_se);
    CHECK_NEAR(64 * log(2.0), r.lr, 1e-4, "L^r of the uniform model = D ln 2");
    CHECK_NEAR(r.ln + r.lr, r.total, 1e-9, "total = L_inf + L^r");

    /* L^n of p = ½: n E_i KL_i = Σ_i KL(α_i) per pixel, the same for x = 0 and 1 */
    const int n = 5;
    double ref = 0, ref_var = 0;
    for (int i = 1; i <= n; i++) {
        bfn_rng rr;
        bfn_rng_init(&rr, 1000 + i, 0);
        double pk[2] = {0.5, 0.5};
        /* the estimator's standard error from two independent halves */
        double a = bfn_kl_step_pixel(1, pk, 2, bfn_alpha_step(3.0, i, n), 100000, &rr);
        double b = bfn_kl_step_pixel(1, pk, 2, bfn_alpha_step(3.0, i, n), 100000, &rr);
        ref += 0.5 * (a + b);
        ref_var += 0.25 * (a - b) * (a - b) / 2;
    }
    ref *= 64;
    ec.n_steps = n;
    ec.n_mc = 4;
    CHECK(bfn_eval_run(net, &ec, random_image, NULL, NULL, NULL, &r, NULL, &err) == BFN_OK,
          "eval: %s", err.msg);
    CHECK_NEAR(ref, r.ln, 4 * r.ln_se + 64 * 4 * sqrt(ref_var) + 1e-9,
               "L^n (n = 5) of the uniform model (SE %.3f)", r.ln_se);
    bfn_net_destroy(net);
}

/* uniform_net(7) with its parameters moved by N(0, 0.05²) noise from seed. */
static bfn_net *perturbed_net(uint64_t seed)
{
    bfn_net *net = uniform_net(7);
    float *p = bfn_net_params(net);
    bfn_rng r;
    bfn_rng_init(&r, seed, 3);
    for (size_t i = 0; i < bfn_net_param_count(net); i++)
        p[i] += 0.05f * (float)bfn_rng_normal(&r);
    return net;
}

static void test_eval_same_seed_same_numbers(void)
{
    bfn_net *net = perturbed_net(3);
    bfn_eval_config ec = {.n_steps = 10, .beta1 = 3.0, .repeats = 2, .count = 30, .n_mc = 2,
                          .seed = 9};
    bfn_eval_result a, b, c;
    bfn_err err = {0};
    double per[30];
    bfn_eval_run(net, &ec, random_image, NULL, NULL, NULL, &a, per, &err);
    bfn_eval_run(net, &ec, random_image, NULL, NULL, NULL, &b, NULL, &err);
    ec.seed = 10;
    bfn_eval_run(net, &ec, random_image, NULL, NULL, NULL, &c, NULL, &err);
    CHECK(a.total == b.total && a.total_se == b.total_se, "same seed: %.17g vs %.17g", a.total,
          b.total);
    CHECK(a.total != c.total, "another seed gives another estimate (%.17g)", a.total);
    double mean = 0;
    for (int i = 0; i < 30; i++)
        mean += per[i] / 30;
    CHECK_NEAR(a.ln, mean, 1e-9 * fabs(a.ln), "per-image values average to L^n");
    bfn_net_destroy(net);
}

/* Several step counts in one run: each row equals its own run to the bit,
 * L^r is shared, and per-image values land in their row. */
static void test_eval_rows_equal_separate_runs(void)
{
    bfn_net *net = perturbed_net(4);
    const int steps[3] = {10, 0, 3};
    bfn_eval_config ec = {.beta1 = 3.0, .repeats = 3, .count = 20, .n_mc = 2, .seed = 5};
    bfn_eval_result rows[3], one;
    double per[3 * 20], per1[20];
    bfn_err err = {0};
    CHECK(bfn_eval_run_rows(net, &ec, steps, 3, random_image, NULL, NULL, NULL, rows, per, &err) ==
              BFN_OK,
          "three rows: %s", err.msg);
    for (int k = 0; k < 3; k++) {
        ec.n_steps = steps[k];
        bfn_eval_run(net, &ec, random_image, NULL, NULL, NULL, &one, per1, &err);
        CHECK(rows[k].ln == one.ln && rows[k].ln_se == one.ln_se && rows[k].total == one.total &&
                  rows[k].total_se == one.total_se && rows[k].lr == one.lr,
              "n = %d: row %.17g ± %.17g (L^r %.17g), alone %.17g ± %.17g (L^r %.17g)", steps[k],
              rows[k].ln, rows[k].ln_se, rows[k].lr, one.ln, one.ln_se, one.lr);
        CHECK(memcmp(per + 20 * k, per1, sizeof per1) == 0, "n = %d: per-image values", steps[k]);
    }
    CHECK(rows[0].ln != rows[1].ln && rows[1].ln != rows[2].ln, "rows differ: %.6f %.6f %.6f",
          rows[0].ln, rows[1].ln, rows[2].ln);
    int bad[2] = {10, -1};
    CHECK(bfn_eval_run_rows(net, &ec, bad, 2, random_image, NULL, NULL, NULL, rows, NULL, &err) ==
              BFN_ERR_ARG,
          "a negative step count is refused");
    CHECK(bfn_eval_run_rows(net, &ec, steps, 0, random_image, NULL, NULL, NULL, rows, NULL, &err) ==
              BFN_ERR_ARG,
          "no rows refused");
    bfn_net_destroy(net);
}

static void test_eval_rejects_bad_config(void)
{
    bfn_net *net = uniform_net(2);
    bfn_eval_result r;
    bfn_eval_config ec = {.n_steps = 10, .beta1 = 3.0, .repeats = 0, .count = 3, .n_mc = 1};
    CHECK(bfn_eval_run(net, &ec, random_image, NULL, NULL, NULL, &r, NULL, NULL) == BFN_ERR_ARG,
          "repeats 0 rejected");
    ec.repeats = 1;
    ec.beta1 = -1;
    CHECK(bfn_eval_run(net, &ec, random_image, NULL, NULL, NULL, &r, NULL, NULL) == BFN_ERR_ARG,
          "negative beta1 rejected");
    bfn_net_destroy(net);
}

int main(void)
{
    RUN(test_eval_uniform_output_matches_closed_forms);
    RUN(test_eval_same_seed_same_numbers);
    RUN(test_eval_rows_equal_separate_runs);
    RUN(test_eval_rejects_bad_config);
    return check_finish();
}
