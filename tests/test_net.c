/* The assembled U-Net: whole-network gradients against finite differences,
 * determinism and batch independence, the zero-initialised output, the
 * parameter registry, config validation, dropout only in training, and the
 * default 28x28 and 64x64 models running end to end, the parameter count
 * from a config alone, and nets running in several threads at once. */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/gemm.h"
#include "bfn/net.h"
#include "check.h"
#include "fixtures.h"
#include "net/layers.h"

static bfn_net *make_net(const bfn_net_config *c, int max_batch)
{
    bfn_net *net = NULL;
    bfn_err err = {0};
    if (bfn_net_create(&net, c, max_batch, &err) != BFN_OK) {
        fprintf(stderr, "bfn_net_create: %s\n", err.msg);
        exit(2);
    }
    return net;
}

static size_t tensor_size(const bfn_tensor_info *t)
{
    size_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= (size_t)t->shape[d];
    return n;
}

/* Every tensor random at the scale its initialiser would use (zero-init ones
 * included), so every gradient path is exercised. */
static void randomize_params(bfn_net *net, uint64_t seed)
{
    bfn_rng r;
    bfn_rng_init(&r, seed, 1);
    float *p = bfn_net_params(net);
    for (int i = 0; i < bfn_net_tensor_count(net); i++) {
        const bfn_tensor_info *t = bfn_net_tensor(net, i);
        size_t n = tensor_size(t);
        int fan_in = 1;
        for (int d = 1; d < t->ndim; d++)
            fan_in *= t->shape[d];
        int is_norm_w = t->ndim == 1 && strstr(t->name, "norm") && strstr(t->name, ".weight");
        for (size_t j = 0; j < n; j++) {
            double u = 2.0 * bfn_rng_uniform(&r) - 1.0;
            p[t->offset + j] = t->ndim > 1 ? (float)(u * sqrt(3.0 / fan_in))
                             : is_norm_w   ? (float)(1.0 + 0.3 * u)
                                           : (float)(0.3 * u);
        }
    }
}

static void random_inputs(float *x, float *t, int B, int in_ch, int hw, uint64_t seed)
{
    bfn_rng r;
    bfn_rng_init(&r, seed, 2);
    for (size_t i = 0; i < (size_t)B * in_ch * hw; i++)
        x[i] = (float)(2.0 * bfn_rng_uniform(&r) - 1.0);
    for (int b = 0; b < B; b++)
        t[b] = (float)bfn_rng_uniform(&r);
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* ---- gradient check ---- */

typedef struct {
    bfn_net *net;
    int B;
    float *x, *t, *logits;
    const float *r;
    size_t nout;
    bfn_rng rng; /* copied for every forward: the same dropout masks each time */
    int failed_forwards;
} net_ctx;

static double net_loss(net_ctx *c)
{
    bfn_rng rng = c->rng;
    c->failed_forwards += bfn_net_forward(c->net, c->x, c->t, c->B, 1, &rng, c->logits) != BFN_OK;
    return dot(c->logits, c->r, c->nout);
}

/* Central difference with step h, in the float actually stored. v may be
 * a parameter: each write goes through a fresh bfn_net_params call, which
 * marks the weights the net keeps between forwards stale. */
static double central(net_ctx *c, float *v, float h)
{
    float old = *v, up = old + h, dn = old - h;
    (void)bfn_net_params(c->net);
    *v = up;
    double lp = net_loss(c);
    (void)bfn_net_params(c->net);
    *v = dn;
    double lm = net_loss(c);
    (void)bfn_net_params(c->net);
    *v = old;
    return (lp - lm) / ((double)up - (double)dn);
}

/* Richardson extrapolation of two central differences, (4·D(h/2) − D(h))/3,
 * cancels the O(h²) error: GroupNorm over few values and softmax over few
 * tokens curve enough that a plain D(1e-2) is off by several percent. The
 * float rounding of the forward enters as noise/h, which at h = 1e-2 reached
 * 3% of the floor at 64 channels; at h = 2e-2 the worst entry of every
 * config here is at most half its tolerance. */
static double check_one(net_ctx *c, float *v, float g, const char *what, size_t i, double floor)
{
    const float h = 2e-2f;
    double num = (4.0 * central(c, v, 0.5f * h) - central(c, v, h)) / 3.0;
    CHECK_REL(num, g, 3e-2, floor, "dL/d%s[%zu]", what, i);
    return fabs(num - g) / (3e-2 * fmax(fabs(num), floor));
}

static void net_gradcheck(const bfn_net_config *cfgp, int per_tensor, int B)
{
    bfn_net_config cfg = *cfgp;
    int K = cfg.K, in_ch = bfn_net_in_channels(K), out_ch = bfn_net_out_channels(K);
    int hw = cfg.H * cfg.W;
    bfn_net *net = make_net(&cfg, B);
    randomize_params(net, 100 + K);
    net_ctx c = {.net = net, .B = B};
    size_t nx = (size_t)B * in_ch * hw;
    c.nout = (size_t)B * out_ch * hw;
    c.x = malloc(sizeof(float) * nx);
    c.t = malloc(sizeof(float) * B);
    c.logits = malloc(sizeof(float) * c.nout);
    float *r = malloc(sizeof(float) * c.nout), *dx = malloc(sizeof(float) * nx);
    random_inputs(c.x, c.t, B, in_ch, hw, 200 + K);
    bfn_rng rr;
    bfn_rng_init(&rr, 300 + K, 3);
    for (size_t i = 0; i < c.nout; i++)
        r[i] = (float)(2.0 * bfn_rng_uniform(&rr) - 1.0);
    c.r = r;
    bfn_rng_init(&c.rng, 400 + K, 4);

    net_loss(&c);
    bfn_net_zero_grads(net);
    CHECK(bfn_net_backward(net, r, dx) == BFN_OK, "backward: %s", bfn_net_last_error(net));

    float *p = bfn_net_params(net), *g = bfn_net_grads(net);
    /* |num − g| <= 3% of max(|num|, floor), floor = 0.1·RMS of all parameter
     * gradients: entries far below that are dominated by float rounding of
     * the forward pass, which no step size removes */
    double rms = sqrt(dot(g, g, bfn_net_param_count(net)) / (double)bfn_net_param_count(net));
    double floor = fmax(1e-3, 0.1 * rms);
    bfn_rng pick;
    bfn_rng_init(&pick, 500 + K, 5);
    int checked = 0;
    double worst = 0.0;
    for (int i = 0; i < bfn_net_tensor_count(net); i++) {
        const bfn_tensor_info *t = bfn_net_tensor(net, i);
        size_t n = tensor_size(t);
        for (int s = 0; s < per_tensor; s++) {
            size_t j = (size_t)bfn_rng_below(&pick, n);
            worst = fmax(worst, check_one(&c, &p[t->offset + j], g[t->offset + j], t->name, j, floor));
            checked++;
        }
    }
    double rms_x = sqrt(dot(dx, dx, nx) / (double)nx);
    for (int s = 0; s < 24; s++) {
        size_t j = (size_t)bfn_rng_below(&pick, nx);
        worst = fmax(worst, check_one(&c, &c.x[j], dx[j], "x", j, fmax(1e-3, 0.1 * rms_x)));
    }
    CHECK(c.failed_forwards == 0, "%d training forwards failed: %s", c.failed_forwards,
          bfn_net_last_error(net));
    printf("  K=%d %dx%d: %d parameter entries from %d tensors and 24 inputs, worst |num − "
           "analytic| / tol = %.3f\n", K, cfg.H, cfg.W, checked, bfn_net_tensor_count(net), worst);
    free(c.x);
    free(c.t);
    free(c.logits);
    free(r);
    free(dx);
    bfn_net_destroy(net);
}

static void test_net_gradients_match_finite_differences_K2(void)
{
    bfn_net_config c = fixture_tiny_config(2, 0.2f);
    net_gradcheck(&c, 2, 2);
}

static void test_net_gradients_match_finite_differences_K3(void)
{
    bfn_net_config c = fixture_tiny_config(3, 0.2f);
    net_gradcheck(&c, 2, 2);
}

/* Corners of the config space: no residual blocks on the way down, no
 * attention, narrowing widths, non-square images, one group; a single
 * level with attention at full resolution; 64 channels on small images;
 * attention in two levels. */
static void test_net_gradients_for_unusual_configs(void)
{
    bfn_net_config a = fixture_tiny_config(4, 0.2f);
    a.W = 12;
    a.n_res = 0;
    a.attn_levels = 0;
    a.base_ch = 4;
    a.ch_mult[0] = 2;
    a.ch_mult[1] = 1;
    a.groups = 1;
    a.temb_dim = 8;
    a.dropout = 0.0f;
    net_gradcheck(&a, 1, 2);
    bfn_net_config b = fixture_tiny_config(2, 0.2f);
    b.H = 4;
    b.W = 6;
    b.n_levels = 1;
    b.n_heads = 4;
    net_gradcheck(&b, 1, 2);
    /* 64 channels on 6×6 images, a batch of 4: the forward and the input
     * gradients of the 3×3 convs on the channel-vector kernels */
    bfn_net_config v = fixture_tiny_config(2, 0.0f);
    v.H = v.W = 6;
    v.n_levels = 1;
    v.base_ch = 64;
    v.ch_mult[0] = 1;
    v.n_res = 0;
    v.attn_levels = 0;
    net_gradcheck(&v, 1, 4);
    /* attention in both levels (8×8 and 4×4) */
    bfn_net_config w = fixture_tiny_config(2, 0.0f);
    w.attn_levels = 2;
    net_gradcheck(&w, 1, 2);
}

/* ---- behaviour ---- */

static void test_net_inference_is_deterministic_and_batch_independent(void)
{
    bfn_net_config cfg = fixture_tiny_config(3, 0.2f);
    int B = 3, in_ch = 3, hw = 64, per_out = 3 * hw;
    bfn_net *net = make_net(&cfg, B);
    randomize_params(net, 7);
    float x[3 * 3 * 64], t[3], a[3 * 3 * 64], b[3 * 3 * 64], one[3 * 64];
    random_inputs(x, t, B, in_ch, hw, 8);
    bfn_net_forward(net, x, t, B, 0, NULL, a);
    bfn_net_forward(net, x, t, B, 0, NULL, b);
    CHECK(memcmp(a, b, sizeof a) == 0, "same batch twice gives identical logits");
    double worst = 0.0, scale = 0.0;
    for (int i = 0; i < B; i++) {
        bfn_net_forward(net, x + (size_t)i * in_ch * hw, t + i, 1, 0, NULL, one);
        for (int j = 0; j < per_out; j++) {
            worst = fmax(worst, fabs(one[j] - a[i * per_out + j]));
            scale = fmax(scale, fabs(a[i * per_out + j]));
        }
    }
    printf("  max |alone − in batch| = %.3g (logit scale %.3g)\n", worst, scale);
    CHECK_NEAR(0.0, worst, 1e-5 * fmax(scale, 1.0), "image alone vs in a batch of 3");
    bfn_net_destroy(net);
}

/* The engine splits work itself (images between threads, or one image's
 * ops between threads when there are fewer images than threads) and sums
 * parameter gradients in a fixed order, so logits, parameter gradients and
 * input gradients are the same bits for 1, 2 and 3 threads, and an image's
 * logits the same alone or in a batch. A 28x28 net at half width runs the
 * shapes of the default model (every kernel path). */
static void test_net_bits_independent_of_threads_and_batch(void)
{
    /* 64 channels at 14×14 and 7×7: a batch of 5 runs those convs on the
     * channel-vector kernels, one image alone on the position-vector ones */
    bfn_net_config cfg = bfn_net_config_default(2, 28, 28);
    cfg.n_res = 1;
    int B = 5, hw = 28 * 28;
    bfn_net *net = make_net(&cfg, B);
    randomize_params(net, 51);
    size_t np = bfn_net_param_count(net), nx = (size_t)B * hw;
    float *x = malloc(sizeof(float) * nx), *t = malloc(sizeof(float) * B);
    float *r = malloc(sizeof(float) * nx), *lg[3], *g[3], *dx[3], *one = malloc(sizeof(float) * hw);
    random_inputs(x, t, B, 1, hw, 52);
    for (size_t i = 0; i < nx; i++)
        r[i] = (float)(0.01 * sin(0.37 * i));
    int prev = bfn_gemm_set_threads(1);
    int alone_bad = 0;
    for (int k = 0; k < 3; k++) {
        bfn_gemm_set_threads(k + 1);
        lg[k] = malloc(sizeof(float) * nx);
        g[k] = malloc(sizeof(float) * np);
        dx[k] = malloc(sizeof(float) * nx);
        CHECK(bfn_net_forward(net, x, t, B, 0, NULL, lg[k]) == BFN_OK, "forward, %d threads", k + 1);
        for (int b = 0; b < B; b++) {
            bfn_net_forward(net, x + (size_t)b * hw, t + b, 1, 0, NULL, one);
            alone_bad += memcmp(one, lg[k] + (size_t)b * hw, sizeof(float) * hw) != 0;
        }
        bfn_rng rng;
        bfn_rng_init(&rng, 53, 0);
        float *scratch = malloc(sizeof(float) * nx);
        bfn_net_forward(net, x, t, B, 1, &rng, scratch);
        bfn_net_zero_grads(net);
        CHECK(bfn_net_backward(net, r, dx[k]) == BFN_OK, "backward, %d threads", k + 1);
        memcpy(g[k], bfn_net_grads(net), sizeof(float) * np);
        free(scratch);
    }
    bfn_gemm_set_threads(prev);
    CHECK(alone_bad == 0, "%d of %d images: logits alone differ from logits in the batch",
          alone_bad, 3 * B);
    for (int k = 1; k < 3; k++) {
        CHECK(memcmp(lg[0], lg[k], sizeof(float) * nx) == 0, "logits: 1 vs %d threads", k + 1);
        CHECK(memcmp(g[0], g[k], sizeof(float) * np) == 0, "parameter gradients: 1 vs %d threads",
              k + 1);
        CHECK(memcmp(dx[0], dx[k], sizeof(float) * nx) == 0, "input gradients: 1 vs %d threads",
              k + 1);
    }
    double gs = dot(g[0], g[0], np);
    CHECK(gs > 0.0 && isfinite(gs), "gradients are finite and non-zero (|g|² = %g)", gs);
    for (int k = 0; k < 3; k++)
        free(lg[k]), free(g[k]), free(dx[k]);
    free(x), free(t), free(r), free(one);
    bfn_net_destroy(net);
}

/* The same logits on every CPU: nets of four shapes (the default 28x28,
 * base 48 with its 48- and 96-channel layers, the 64x64 two-digit shape, and
 * a 64x64 one with attention over the 256 positions of 16x16 too)
 * created and run with the AVX-512 kernels and again with the AVX2 ones
 * (phase convs, attention products and linear layers included) give the
 * same bits, whatever OpenBLAS's own kernels. Without AVX2 the engine falls
 * back to BLAS and the C library, which round differently: close, not equal. */
static void test_net_same_bits_with_avx2_and_avx512_kernels(void)
{
    int best = bfn_convk_isa();
    if (best < BFN_CONVK_AVX2) {
        printf("  (this CPU has no AVX2: nothing to compare)\n");
        return;
    }
    struct {
        int H, W, base, mult[4], levels, attn;
    } shapes[4] = {{28, 28, 32, {1, 2, 2}, 3, 1}, {28, 28, 48, {1, 2, 2}, 3, 1},
                   {64, 64, 16, {1, 2, 4, 4}, 4, 1}, {64, 64, 16, {1, 2, 6, 6}, 4, 2}};
    for (int c = 0; c < 4; c++) {
        bfn_net_config cfg = bfn_net_config_default(2, shapes[c].H, shapes[c].W);
        cfg.base_ch = shapes[c].base;
        cfg.n_levels = shapes[c].levels;
        for (int l = 0; l < cfg.n_levels; l++)
            cfg.ch_mult[l] = shapes[c].mult[l];
        cfg.n_res = 1;
        cfg.attn_levels = shapes[c].attn;
        int B = 5, hw = cfg.H * cfg.W;
        size_t nx = (size_t)B * hw;
        float *x = malloc(sizeof(float) * nx), *t = malloc(sizeof(float) * B), *lg[3];
        random_inputs(x, t, B, 1, hw, 71 + c);
        int isas[3] = {best, BFN_CONVK_AVX2, BFN_CONVK_NONE};
        for (int k = 0; k < 3; k++) {
            int prev = bfn_convk_set_isa(isas[k]);
            bfn_net *net = make_net(&cfg, B);
            randomize_params(net, 70 + c);
            lg[k] = malloc(sizeof(float) * nx);
            CHECK(bfn_net_forward(net, x, t, B, 0, NULL, lg[k]) == BFN_OK, "forward");
            bfn_net_destroy(net);
            bfn_convk_set_isa(prev);
        }
        int differ = 0;
        double worst = 0.0, scale = 0.0;
        for (size_t i = 0; i < nx; i++) {
            differ += memcmp(&lg[0][i], &lg[1][i], sizeof(float)) != 0;
            worst = fmax(worst, fabs(lg[0][i] - lg[2][i]));
            scale = fmax(scale, fabs(lg[0][i]));
        }
        printf("  %dx%d base %d, attn_levels %d: %s vs AVX2 kernels: %d of %zu logits "
               "differ; BLAS fallback: max |difference| %.3g (logit scale %.3g)\n",
               cfg.H, cfg.W, cfg.base_ch, cfg.attn_levels, best == BFN_CONVK_AVX512 ? "AVX-512" : "AVX2", differ,
               nx, worst, scale);
        CHECK(differ == 0, "%dx%d base %d: %d of %zu logits differ between the kernel sets",
              cfg.H, cfg.W, cfg.base_ch, differ, nx);
        CHECK(scale > 0.1, "logits are not trivially zero (scale %g)", scale);
        CHECK_NEAR(0.0, worst, 1e-4 * fmax(scale, 1.0), "BLAS fallback against the vector kernels");
        for (int k = 0; k < 3; k++)
            free(lg[k]);
        free(x), free(t);
    }
}

/* The count from the config alone is the created net's, for every shape of
 * architecture (levels, attention, skips, K), and a config whose net would
 * need tens of GB is counted without allocating it. */
static void test_net_config_param_count_matches_created_nets(void)
{
    bfn_net_config cfgs[7];
    cfgs[0] = bfn_net_config_default(2, 28, 28);
    cfgs[1] = bfn_net_config_default(3, 64, 64);
    cfgs[2] = fixture_tiny_config(2, 0.0f);
    cfgs[3] = fixture_tiny_config(4, 0.1f);
    cfgs[3].attn_levels = 0;
    cfgs[4] = fixture_tiny_config(2, 0.1f);
    cfgs[4].n_res = 0;
    cfgs[4].n_levels = 1;
    cfgs[5] = fixture_tiny_config(3, 0.1f);
    cfgs[5].ch_mult[1] = 3;
    cfgs[5].n_res = 2;
    cfgs[6] = bfn_net_config_default(2, 64, 64);
    cfgs[6].attn_levels = 2;
    for (int i = 0; i < 7; i++) {
        size_t count = 0;
        bfn_err err = {0};
        bfn_err_clear(&err);
        bfn_status st = bfn_net_config_param_count(&cfgs[i], &count, &err);
        bfn_net *net = make_net(&cfgs[i], 1);
        CHECK(st == BFN_OK, "config %d counted: %s", i, err.msg);
        CHECK_NEAR(bfn_net_param_count(net), count, 0, "config %d: count from config vs net", i);
        bfn_net_destroy(net);
    }
    /* 1024 x 1024, 5 levels of 4096 channels, 8 blocks: ~3e10 weights */
    bfn_net_config huge = bfn_net_config_default(2, 1024, 1024);
    huge.n_levels = 5;
    huge.base_ch = 4096;
    for (int l = 0; l < BFN_NET_MAX_LEVELS; l++)
        huge.ch_mult[l] = 1;
    huge.n_res = BFN_NET_MAX_RES;
    huge.temb_dim = 4096;
    size_t count = 0;
    CHECK(bfn_net_config_param_count(&huge, &count, NULL) == BFN_OK, "huge config counted");
    CHECK(count > (size_t)1e10, "huge config: %zu weights (more than 1e10)", count);
    bfn_net_config bad = fixture_tiny_config(2, 0.1f);
    bad.groups = 3;
    bfn_err err = {0};
    bfn_err_clear(&err);
    count = 7;
    CHECK(bfn_net_config_param_count(&bad, &count, &err) == BFN_ERR_ARG && count == 0 &&
              strstr(err.msg, "groups"),
          "invalid config refused naming the field, count 0: %zu, %.150s", count, err.msg);
}

/* The nets' serial sections (gemm.h): while one is open BLAS runs on one
 * thread whatever is set meanwhile; a setting made then is reported at
 * once and applied when the last section closes; sections nest. */
static void test_net_serial_sections_hold_blas_at_one_and_restore_the_setting(void)
{
    int prev = bfn_gemm_set_threads(2);
    CHECK_NEAR(2, openblas_get_num_threads(), 0, "BLAS threads outside any section");
    CHECK_NEAR(2, bfn_gemm_serial_begin(), 0, "begin returns the configured count");
    CHECK_NEAR(1, openblas_get_num_threads(), 0, "BLAS threads inside a section");
    CHECK_NEAR(2, bfn_gemm_set_threads(3), 0, "set inside a section returns the previous value");
    CHECK_NEAR(3, bfn_gemm_threads(), 0, "the new value is reported at once");
    CHECK_NEAR(1, openblas_get_num_threads(), 0, "BLAS stays at 1 thread after the set");
    CHECK_NEAR(3, bfn_gemm_serial_begin(), 0, "a nested section sees the new value");
    bfn_gemm_serial_end();
    CHECK_NEAR(1, openblas_get_num_threads(), 0, "BLAS at 1 while the outer section is open");
    bfn_gemm_serial_end();
    CHECK_NEAR(3, openblas_get_num_threads(), 0, "the last end applies the setting");
    bfn_gemm_set_threads(prev);
    CHECK_NEAR(prev, openblas_get_num_threads(), 0, "setting restored");
}

/* One net's work for the threads test: a training forward (dropout from a
 * fixed seed), backward, then an inference forward, `rounds` times. */
typedef struct {
    bfn_net *net;
    const float *x, *t, *r;
    int B, rounds;
    float *logits, *grads; /* of the last round */
    int failed;
} net_job;

static void *net_job_run(void *arg)
{
    net_job *j = arg;
    size_t nx = (size_t)j->B * 64, np = bfn_net_param_count(j->net);
    float *scratch = malloc(sizeof(float) * nx);
    for (int k = 0; k < j->rounds && scratch; k++) {
        bfn_rng rng;
        bfn_rng_init(&rng, 77, 0);
        j->failed += bfn_net_forward(j->net, j->x, j->t, j->B, 1, &rng, scratch) != BFN_OK;
        bfn_net_zero_grads(j->net);
        j->failed += bfn_net_backward(j->net, j->r, NULL) != BFN_OK;
        j->failed += bfn_net_forward(j->net, j->x, j->t, j->B, 0, NULL, j->logits) != BFN_OK;
    }
    if (scratch)
        memcpy(j->grads, bfn_net_grads(j->net), sizeof(float) * np);
    else
        j->failed++;
    free(scratch);
    return NULL;
}

/* A multi-threaded product outside any net while the nets run. */
typedef struct {
    int n, rounds, bad;
    float *a, *b, *c, *ref;
} gemm_job;

static void *gemm_job_run(void *arg)
{
    gemm_job *g = arg;
    size_t nn = (size_t)g->n * g->n;
    for (int k = 0; k < g->rounds; k++) {
        /* beta = 1 on zeros: with beta = 0 BLAS's threads clear C with
         * memset, which ThreadSanitizer sees without the hand-over inside
         * BLAS (not instrumented) and reports as a race */
        memset(g->c, 0, sizeof(float) * nn);
        bfn_gemm(0, 0, g->n, g->n, g->n, 1.0f, g->a, g->n, g->b, g->n, 1.0f, g->c, g->n);
        for (size_t i = 0; i < nn; i++)
            g->bad += !(fabsf(g->c[i] - g->ref[i]) <= 1e-3f * (1.0f + fabsf(g->ref[i])));
    }
    return NULL;
}

/* Two nets in two threads at once (the app samples and trains together),
 * one with its own thread count and one following the process-wide count,
 * while a third thread runs multi-threaded products and the main thread
 * changes the process-wide count: each net gives the bits it gives alone on
 * one thread, the products stay right, and afterwards BLAS runs with the
 * count last set (no net leaves it at 1). */
static void test_net_nets_in_two_threads_at_once_match_serial_bits(void)
{
    bfn_net_config cfg = fixture_tiny_config(2, 0.1f);
    int B = 3, hw = 64, rounds = 6;
    size_t nx = (size_t)B * hw;
    float *x = malloc(sizeof(float) * nx), *t = malloc(sizeof(float) * B);
    float *r = malloc(sizeof(float) * nx);
    random_inputs(x, t, B, 1, hw, 61);
    for (size_t i = 0; i < nx; i++)
        r[i] = (float)(0.02 * cos(0.21 * i));
    bfn_net *nets[2];
    size_t np = 0;
    float *want_lg[2], *want_g[2];
    net_job jobs[2];
    int prev = bfn_gemm_set_threads(1);
    for (int i = 0; i < 2; i++) {
        nets[i] = make_net(&cfg, B);
        randomize_params(nets[i], 62 + i);
        np = bfn_net_param_count(nets[i]);
        want_lg[i] = malloc(sizeof(float) * nx);
        want_g[i] = malloc(sizeof(float) * np);
        net_job ref = {nets[i], x, t, r, B, 1, want_lg[i], want_g[i], 0};
        net_job_run(&ref);
        CHECK(ref.failed == 0, "net %d alone on one thread ran", i);
        jobs[i] = (net_job){nets[i], x, t, r, B, rounds, malloc(sizeof(float) * nx),
                            malloc(sizeof(float) * np), 0};
    }
    CHECK_NEAR(0, bfn_net_set_threads(nets[0], 3), 0, "a new net follows the process setting");
    bfn_gemm_set_threads(2);

    gemm_job g = {160, 3, 0, NULL, NULL, NULL, NULL};
    size_t nn = (size_t)g.n * g.n;
    g.a = malloc(sizeof(float) * nn);
    g.b = malloc(sizeof(float) * nn);
    g.c = malloc(sizeof(float) * nn);
    g.ref = malloc(sizeof(float) * nn);
    for (size_t i = 0; i < nn; i++) {
        g.a[i] = (float)sin(0.1 * i);
        g.b[i] = (float)cos(0.07 * i);
    }
    bfn_gemm_naive(0, 0, g.n, g.n, g.n, 1.0f, g.a, g.n, g.b, g.n, 0.0f, g.ref, g.n);

    pthread_t th[3];
    int started = 0;
    for (int i = 0; i < 2; i++)
        started += pthread_create(&th[i], NULL, net_job_run, &jobs[i]) == 0;
    started += pthread_create(&th[2], NULL, gemm_job_run, &g) == 0;
    for (int k = 0; k < 20; k++)
        bfn_gemm_set_threads(2 + k % 2);
    bfn_gemm_set_threads(2);
    for (int i = 0; i < 3 && started == 3; i++)
        pthread_join(th[i], NULL);
    CHECK(started == 3, "threads started (%d of 3)", started);

    for (int i = 0; i < 2 && started == 3; i++) {
        CHECK(jobs[i].failed == 0, "net %d: all calls succeeded", i);
        CHECK(memcmp(want_lg[i], jobs[i].logits, sizeof(float) * nx) == 0,
              "net %d: logits equal to its run alone on one thread", i);
        CHECK(memcmp(want_g[i], jobs[i].grads, sizeof(float) * np) == 0,
              "net %d: gradients equal to its run alone on one thread", i);
    }
    CHECK_NEAR(0, g.bad, 0, "entries of the concurrent products off the reference");
    CHECK_NEAR(2, bfn_gemm_threads(), 0, "process-wide count after the runs");
    CHECK_NEAR(2, openblas_get_num_threads(), 0, "BLAS's own count after the runs");
    CHECK_NEAR(3, bfn_net_set_threads(nets[0], 0), 0, "the net kept its own count");
    bfn_gemm_set_threads(prev);
    for (int i = 0; i < 2; i++) {
        free(want_lg[i]), free(want_g[i]), free(jobs[i].logits), free(jobs[i].grads);
        bfn_net_destroy(nets[i]);
    }
    free(g.a), free(g.b), free(g.c), free(g.ref);
    free(x), free(t), free(r);
}

static void test_net_initial_logits_are_zero_and_only_out_conv_learns_first(void)
{
    bfn_net_config cfg = fixture_tiny_config(2, 0.2f);
    int B = 2, hw = 64;
    bfn_net *net = make_net(&cfg, B);
    bfn_net_init_params(net, 3);
    float x[2 * 64], t[2], lg[2 * 64], r[2 * 64];
    random_inputs(x, t, B, 1, hw, 4);
    for (int i = 0; i < B * hw; i++)
        r[i] = (float)((i % 7) - 3);
    bfn_rng rng;
    bfn_rng_init(&rng, 5, 0);
    bfn_net_forward(net, x, t, B, 1, &rng, lg);
    int nonzero = 0;
    for (int i = 0; i < B * hw; i++)
        nonzero += lg[i] != 0.0f;
    CHECK(nonzero == 0, "%d initial logits are not exactly 0", nonzero);
    /* with the output conv zero, only it receives gradient on the first step */
    bfn_net_zero_grads(net);
    bfn_net_backward(net, r, NULL);
    const float *g = bfn_net_grads(net);
    for (int i = 0; i < bfn_net_tensor_count(net); i++) {
        const bfn_tensor_info *ti = bfn_net_tensor(net, i);
        double s = 0.0;
        for (size_t j = 0; j < tensor_size(ti); j++)
            s += fabs(g[ti->offset + j]);
        if (!strncmp(ti->name, "out.conv.", 9))
            CHECK(s > 0.0, "%s has a gradient", ti->name);
        else
            CHECK(s == 0.0, "%s gradient is %g, expected exactly 0", ti->name, s);
    }
    bfn_net_destroy(net);
}

static void test_net_tensors_tile_the_param_array(void)
{
    for (int K = 2; K <= 3; K++) {
        bfn_net_config cfg = K == 2 ? bfn_net_config_default(2, 28, 28) : fixture_tiny_config(3, 0.2f);
        bfn_net *net = make_net(&cfg, 1);
        size_t next = 0;
        int n = bfn_net_tensor_count(net), bad_tile = 0, bad_decay = 0, dup = 0;
        for (int i = 0; i < n; i++) {
            const bfn_tensor_info *t = bfn_net_tensor(net, i);
            bad_tile += t->offset != next;
            next = t->offset + tensor_size(t);
            int is_weight = strlen(t->name) > 7 && !strcmp(t->name + strlen(t->name) - 7, ".weight");
            bad_decay += t->decay != (is_weight && t->ndim > 1);
            for (int j = 0; j < i; j++)
                dup += !strcmp(t->name, bfn_net_tensor(net, j)->name);
        }
        CHECK(bad_tile == 0, "K=%d: %d tensors do not start where the previous one ends", K,
              bad_tile);
        CHECK_NEAR((double)bfn_net_param_count(net), (double)next, 0.0,
                   "K=%d: param count vs end of last tensor", K);
        CHECK(bad_decay == 0, "K=%d: %d tensors with decay != (multi-dim weight)", K, bad_decay);
        CHECK(dup == 0, "K=%d: %d duplicate tensor names", K, dup);
        CHECK(bfn_net_tensor(net, n) == NULL && bfn_net_tensor(net, -1) == NULL,
              "out-of-range tensor index gives NULL");
        const bfn_tensor_info *first = bfn_net_tensor(net, 0), *last = bfn_net_tensor(net, n - 1);
        CHECK(!strcmp(first->name, "temb.lin1.weight"), "first tensor %s", first->name);
        CHECK(!strcmp(last->name, "out.conv.bias"), "last tensor %s", last->name);
        if (K == 2)
            printf("  default 28x28: %zu parameters in %d tensors, %.1f M multiply-adds/image\n",
                   bfn_net_param_count(net), n, bfn_net_flops_per_image(net) / 1e6);
        bfn_net_destroy(net);
    }
}

/* Attention blocks sit after every residual block of the lowest attn_levels
 * levels, down and up, and in the middle: 3 levels, 2 blocks down and 3 up. */
static void test_net_attention_sits_in_the_lowest_attn_levels(void)
{
    for (int a = 0; a <= 3; a++) {
        bfn_net_config cfg = bfn_net_config_default(2, 28, 28);
        cfg.attn_levels = a;
        bfn_net *net = make_net(&cfg, 1);
        int per_level[3] = {0}, mid = 0, other = 0, n = bfn_net_tensor_count(net);
        for (int i = 0; i < n; i++) {
            const char *name = bfn_net_tensor(net, i)->name;
            int l = -1, r = -1;
            char dir[8];
            if (!strstr(name, ".attn") || !strstr(name, ".qkv.weight"))
                continue;
            if (!strcmp(name, "mid.attn.qkv.weight"))
                mid++;
            else if (sscanf(name, "%7[a-z].%d.attn.%d.", dir, &l, &r) == 3 && l >= 0 && l < 3)
                per_level[l]++;
            else
                other++;
        }
        for (int l = 0; l < 3; l++) {
            int want = l >= 3 - a ? 2 + 3 : 0;
            CHECK(per_level[l] == want, "attn_levels %d: level %d has %d attention blocks, want %d",
                  a, l, per_level[l], want);
        }
        CHECK(mid == (a > 0), "attn_levels %d: %d in the middle", a, mid);
        CHECK(other == 0, "attn_levels %d: %d attention tensors elsewhere", a, other);
        bfn_net_destroy(net);
    }
}

/* A network grown from another (attention at more levels, new blocks freshly
 * initialised) takes every weight of the old one by name and computes the
 * same logits, bit for bit: the new blocks' zero output projections make
 * them identities. Copies that cannot be made fail and leave dst as it was. */
static void test_net_copy_params_grows_attention_without_changing_logits(void)
{
    enum { B = 3 };
    bfn_err err = {0};
    for (int a = 0; a < 3; a++)
        for (int g = a + 1; g <= 3; g++) {
            bfn_net_config small = bfn_net_config_default(2, 28, 28), big;
            small.base_ch = 8;
            small.temb_dim = 16;
            small.groups = 4;
            small.n_heads = 2;
            small.attn_levels = a;
            big = small;
            big.attn_levels = g;
            bfn_net *src = make_net(&small, B), *dst = make_net(&big, B);
            randomize_params(src, 100 + (uint64_t)a); /* nonzero everywhere, like trained weights */
            bfn_net_init_params(dst, 7);
            int kept = -1, attn_tensors = 0;
            for (int i = 0; i < bfn_net_tensor_count(dst); i++)
                attn_tensors += strstr(bfn_net_tensor(dst, i)->name, "attn") != NULL;
            for (int i = 0; i < bfn_net_tensor_count(src); i++)
                attn_tensors -= strstr(bfn_net_tensor(src, i)->name, "attn") != NULL;
            bfn_status st = bfn_net_copy_params(dst, src, &kept, &err);
            CHECK(st == BFN_OK, "attn %d -> %d: copy failed: %s", a, g, err.msg);
            CHECK(kept == attn_tensors && kept > 0,
                  "attn %d -> %d: %d tensors kept their fresh values, want the %d new attention ones",
                  a, g, kept, attn_tensors);
            float x[B * 28 * 28], t[B], la[B * 28 * 28], lb[B * 28 * 28];
            random_inputs(x, t, B, 1, 28 * 28, 5);
            CHECK(bfn_net_forward(src, x, t, B, 0, NULL, la) == BFN_OK &&
                      bfn_net_forward(dst, x, t, B, 0, NULL, lb) == BFN_OK,
                  "attn %d -> %d: forward failed", a, g);
            int differ = 0;
            double worst = 0;
            for (int i = 0; i < B * 28 * 28; i++)
                if (la[i] != lb[i]) {
                    differ++;
                    worst = fmax(worst, fabs((double)la[i] - lb[i]));
                }
            CHECK(differ == 0, "attn %d -> %d: %d of %d logits differ (largest by %g)", a, g, differ,
                  B * 28 * 28, worst);
            /* the other way round there is no place for the extra blocks */
            size_t n = bfn_net_param_count(src);
            float *before = malloc(n * sizeof(float));
            memcpy(before, bfn_net_params(src), n * sizeof(float));
            st = bfn_net_copy_params(src, dst, NULL, &err);
            CHECK(st == BFN_ERR_MISMATCH && strstr(err.msg, "attn"),
                  "attn %d <- %d: status %d, message \"%s\" (want a mismatch naming the tensor)", a, g,
                  (int)st, err.msg);
            CHECK(memcmp(before, bfn_net_params(src), n * sizeof(float)) == 0,
                  "attn %d <- %d: a failed copy changed the weights", a, g);
            free(before);
            bfn_net_destroy(src);
            bfn_net_destroy(dst);
        }
    /* another width, or another image size */
    bfn_net_config c8 = fixture_tiny_config(2, 0), c16 = c8, c4 = c8;
    c16.base_ch = 16;
    c4.H = c4.W = 4;
    bfn_net *n8 = make_net(&c8, 1), *n16 = make_net(&c16, 1), *n4 = make_net(&c4, 1);
    bfn_status st = bfn_net_copy_params(n16, n8, NULL, &err);
    CHECK(st == BFN_ERR_MISMATCH && strstr(err.msg, "shape"), "base 8 into base 16: status %d, \"%s\"",
          (int)st, err.msg);
    st = bfn_net_copy_params(n4, n8, NULL, &err);
    CHECK(st == BFN_ERR_MISMATCH && strstr(err.msg, "4x4"), "8x8 into 4x4: status %d, \"%s\"", (int)st,
          err.msg);
    bfn_net_destroy(n8);
    bfn_net_destroy(n16);
    bfn_net_destroy(n4);
}

static void test_net_init_is_deterministic_in_seed(void)
{
    bfn_net_config cfg = fixture_tiny_config(2, 0.2f);
    bfn_net *a = make_net(&cfg, 1), *b = make_net(&cfg, 1);
    size_t n = bfn_net_param_count(a);
    bfn_net_init_params(a, 11);
    bfn_net_init_params(b, 11);
    CHECK(memcmp(bfn_net_params(a), bfn_net_params(b), n * sizeof(float)) == 0,
          "same seed, same parameters");
    bfn_net_init_params(b, 12);
    CHECK(memcmp(bfn_net_params(a), bfn_net_params(b), n * sizeof(float)) != 0,
          "another seed, other parameters");
    bfn_net_destroy(a);
    bfn_net_destroy(b);
}

static void test_net_dropout_changes_outputs_only_in_training(void)
{
    bfn_net_config cfg = fixture_tiny_config(2, 0.2f), nodrop = fixture_tiny_config(2, 0.2f);
    nodrop.dropout = 0.0f;
    bfn_net *net = make_net(&cfg, 2), *ref = make_net(&nodrop, 2);
    randomize_params(net, 21);
    memcpy(bfn_net_params(ref), bfn_net_params(net), sizeof(float) * bfn_net_param_count(net));
    float x[2 * 64], t[2], inf[2 * 64], tr[2 * 64], tr2[2 * 64], nd[2 * 64];
    random_inputs(x, t, 2, 1, 64, 22);
    bfn_rng r1, r2;
    bfn_rng_init(&r1, 1, 0);
    bfn_rng_init(&r2, 2, 0);
    bfn_net_forward(net, x, t, 2, 0, NULL, inf);
    bfn_net_forward(ref, x, t, 2, 1, NULL, nd);
    /* to rounding: inference runs the upsampling convs as phase convs */
    double d0 = 0.0;
    for (int i = 0; i < 128; i++)
        d0 = fmax(d0, fabs(inf[i] - nd[i]));
    CHECK(d0 <= 1e-5, "inference equals a training pass of the same net without dropout "
                      "(max diff %g)", d0);
    bfn_net_forward(net, x, t, 2, 1, &r1, tr);
    bfn_net_forward(net, x, t, 2, 1, &r2, tr2);
    double d1 = 0.0, d2 = 0.0;
    for (int i = 0; i < 128; i++) {
        d1 = fmax(d1, fabs(tr[i] - inf[i]));
        d2 = fmax(d2, fabs(tr[i] - tr2[i]));
    }
    CHECK(d1 > 1e-3, "training output differs from inference (max diff %g)", d1);
    CHECK(d2 > 1e-3, "two dropout draws differ (max diff %g)", d2);
    bfn_net_forward(net, x, t, 2, 0, NULL, tr);
    CHECK(memcmp(inf, tr, sizeof inf) == 0, "inference after training passes is unchanged");
    bfn_net_destroy(net);
    bfn_net_destroy(ref);
}

/* Inference runs each upsample + 3x3 conv of 64 channels as four 2x2
 * convs on the small image (summed weights): the logits match a training
 * pass (which upsamples, and keeps what the backward needs) to rounding. */
static void test_net_inference_upsampling_convs_match_training_pass(void)
{
    bfn_net_config cfg = bfn_net_config_default(2, 28, 28);
    cfg.n_res = 1;
    cfg.dropout = 0.0f;
    int B = 2, hw = 28 * 28;
    bfn_net *net = make_net(&cfg, B);
    randomize_params(net, 61);
    float *x = malloc(sizeof(float) * B * hw), *t = malloc(sizeof(float) * B);
    float *inf = malloc(sizeof(float) * B * hw), *tr = malloc(sizeof(float) * B * hw);
    random_inputs(x, t, B, 1, hw, 62);
    CHECK(bfn_net_forward(net, x, t, B, 0, NULL, inf) == BFN_OK, "inference");
    CHECK(bfn_net_forward(net, x, t, B, 1, NULL, tr) == BFN_OK, "training pass");
    double worst = 0.0, scale = 0.0;
    for (int i = 0; i < B * hw; i++) {
        worst = fmax(worst, fabs(inf[i] - tr[i]));
        scale = fmax(scale, fabs(tr[i]));
    }
    printf("  max |inference − training pass| = %.3g (logit scale %.3g)\n", worst, scale);
    CHECK(scale > 0.1, "logits are not trivially zero (scale %g)", scale);
    CHECK_NEAR(0.0, worst, 1e-4 * fmax(scale, 1.0), "inference vs training pass");
    free(x), free(t), free(inf), free(tr);
    bfn_net_destroy(net);
}

/* Forwards keep weights derived from the parameters (transposed for the
 * channel-vector kernels from batch 4, summed phase weights of the
 * upsampling convs) between calls; parameters written through a fresh
 * bfn_net_params must reach the next forward, at either batch size. */
static void test_net_forward_follows_parameter_writes(void)
{
    bfn_net_config cfg = bfn_net_config_default(2, 28, 28);
    cfg.n_res = 1;
    cfg.dropout = 0.0f;
    int B = 4, hw = 28 * 28;
    bfn_net *net = make_net(&cfg, B), *fresh = make_net(&cfg, B);
    float *x = malloc(sizeof(float) * B * hw), *t = malloc(sizeof(float) * B);
    float *a = malloc(sizeof(float) * B * hw), *b = malloc(sizeof(float) * B * hw);
    float *c = malloc(sizeof(float) * B * hw);
    random_inputs(x, t, B, 1, hw, 72);
    for (int bs = B; bs >= 1; bs -= B - 1) {
        randomize_params(net, 73);
        CHECK(bfn_net_forward(net, x, t, bs, 0, NULL, a) == BFN_OK, "forward, first weights");
        CHECK(bfn_net_forward(net, x, t, bs, 0, NULL, a) == BFN_OK, "again, kept weights");
        randomize_params(net, 74); /* writes through bfn_net_params */
        CHECK(bfn_net_forward(net, x, t, bs, 0, NULL, b) == BFN_OK, "forward, new weights");
        randomize_params(fresh, 74);
        CHECK(bfn_net_forward(fresh, x, t, bs, 0, NULL, c) == BFN_OK, "fresh net, new weights");
        double moved = 0.0;
        for (int i = 0; i < bs * hw; i++)
            moved = fmax(moved, fabs(a[i] - b[i]));
        CHECK(moved > 1e-3, "batch %d: new weights change the logits (max change %g)", bs, moved);
        double off = 0.0;
        for (int i = 0; i < bs * hw; i++)
            off = fmax(off, fabs(b[i] - c[i]));
        int same = memcmp(b, c, sizeof(float) * bs * hw) == 0;
        CHECK(same, "batch %d: after a write the logits equal a fresh net's with those weights "
              "(max difference %g)", bs, off);
    }
    free(x), free(t), free(a), free(b), free(c);
    bfn_net_destroy(net);
    bfn_net_destroy(fresh);
}

static void test_net_backward_accumulates_and_needs_training_forward(void)
{
    bfn_net_config cfg = fixture_tiny_config(2, 0.2f);
    bfn_net *net = make_net(&cfg, 2);
    randomize_params(net, 31);
    size_t n = bfn_net_param_count(net);
    float x[128], t[2], lg[128], r[128];
    random_inputs(x, t, 2, 1, 64, 32);
    for (int i = 0; i < 128; i++)
        r[i] = (float)sin(i);
    bfn_rng rng;
    bfn_rng_init(&rng, 33, 0);
    bfn_net_forward(net, x, t, 2, 0, NULL, lg);
    CHECK(bfn_net_backward(net, r, NULL) == BFN_ERR_ARG, "backward after inference is refused");
    CHECK(strstr(bfn_net_last_error(net), "training") != NULL, "message: %s",
          bfn_net_last_error(net));
    bfn_net_forward(net, x, t, 2, 1, &rng, lg);
    bfn_net_zero_grads(net);
    bfn_net_backward(net, r, NULL);
    float *once = malloc(sizeof(float) * n);
    memcpy(once, bfn_net_grads(net), sizeof(float) * n);
    bfn_net_backward(net, r, NULL);
    const float *g = bfn_net_grads(net);
    double e = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs(g[i] - 2.0 * once[i]));
        s = fmax(s, fabs(once[i]));
    }
    CHECK_NEAR(0.0, e, 1e-6 * s, "second backward doubles the gradients");
    bfn_net_zero_grads(net);
    int nz = 0;
    for (size_t i = 0; i < n; i++)
        nz += g[i] != 0.0f;
    CHECK(nz == 0, "zero_grads leaves %d non-zero", nz);
    free(once);
    bfn_net_destroy(net);
}

static void run_default(int K, int H, int W, int B)
{
    bfn_net_config cfg = bfn_net_config_default(K, H, W);
    bfn_net *net = make_net(&cfg, B);
    bfn_net_init_params(net, 1);
    randomize_params(net, 41); /* non-zero everywhere so every path carries values */
    int in_ch = bfn_net_in_channels(K), out_ch = bfn_net_out_channels(K), hw = H * W;
    size_t nx = (size_t)B * in_ch * hw, no = (size_t)B * out_ch * hw;
    float *x = malloc(sizeof(float) * nx), *t = malloc(sizeof(float) * B);
    float *lg = malloc(sizeof(float) * no), *dx = malloc(sizeof(float) * nx);
    random_inputs(x, t, B, in_ch, hw, 42);
    bfn_rng rng;
    bfn_rng_init(&rng, 43, 0);
    CHECK(bfn_net_forward(net, x, t, B, 1, &rng, lg) == BFN_OK, "forward %dx%d", H, W);
    int bad = 0;
    for (size_t i = 0; i < no; i++)
        bad += !isfinite(lg[i]);
    CHECK(bad == 0, "%dx%d: %d non-finite logits", H, W, bad);
    for (size_t i = 0; i < no; i++)
        lg[i] = (float)(0.01 * ((int)(i % 11) - 5));
    bfn_net_zero_grads(net);
    CHECK(bfn_net_backward(net, lg, dx) == BFN_OK, "backward %dx%d", H, W);
    const float *g = bfn_net_grads(net);
    bad = 0;
    double gs = 0.0;
    for (size_t i = 0; i < bfn_net_param_count(net); i++) {
        bad += !isfinite(g[i]);
        gs += fabs(g[i]);
    }
    for (size_t i = 0; i < nx; i++)
        bad += !isfinite(dx[i]);
    CHECK(bad == 0 && gs > 0.0, "%dx%d: %d non-finite gradients, Σ|g| = %g", H, W, bad, gs);
    printf("  default K=%d %dx%d: %d levels, %zu parameters, %.1f M multiply-adds/image\n", K, H,
           W, cfg.n_levels, bfn_net_param_count(net), bfn_net_flops_per_image(net) / 1e6);
    free(x);
    free(t);
    free(lg);
    free(dx);
    bfn_net_destroy(net);
}

static void test_net_default_28x28_and_64x64_run_with_finite_outputs(void)
{
    run_default(2, 28, 28, 2);
    run_default(3, 64, 64, 1);
}

typedef struct {
    const char *field;
    void (*edit)(bfn_net_config *c);
} bad_case;

static void e_k(bfn_net_config *c) { c->K = 1; }
static void e_h(bfn_net_config *c) { c->H = 30; }
static void e_w(bfn_net_config *c) { c->W = 0; }
static void e_big(bfn_net_config *c) { c->H = c->W = 100000; }
static void e_levels(bfn_net_config *c) { c->n_levels = BFN_NET_MAX_LEVELS + 1; }
static void e_levels0(bfn_net_config *c) { c->n_levels = 0; }
static void e_base(bfn_net_config *c) { c->base_ch = 0; }
static void e_groups(bfn_net_config *c) { c->groups = 5; }
static void e_mult(bfn_net_config *c) { c->ch_mult[1] = 0; }
static void e_heads(bfn_net_config *c) { c->n_heads = 3; }
static void e_nres(bfn_net_config *c) { c->n_res = -1; }
static void e_temb(bfn_net_config *c) { c->temb_dim = 7; }
static void e_drop(bfn_net_config *c) { c->dropout = 1.0f; }
static void e_drop_nan(bfn_net_config *c) { c->dropout = NAN; }
static void e_attn(bfn_net_config *c) { c->attn_levels = 4; } /* 3 levels */
static void e_attn_neg(bfn_net_config *c) { c->attn_levels = -1; }
/* 64 heads divide the widths of levels 1 and 2 (64) but not level 0's (32) */
static void e_heads_lvl(bfn_net_config *c) { c->attn_levels = 3; c->n_heads = 64; }

static void test_net_rejects_bad_configs_naming_the_field(void)
{
    bad_case cases[] = {
        {"K", e_k},           {"H", e_h},           {"W", e_w},         {"H", e_big},
        {"n_levels", e_levels}, {"n_levels", e_levels0}, {"base_ch", e_base}, {"groups", e_groups},
        {"ch_mult[1]", e_mult}, {"n_heads", e_heads}, {"n_res", e_nres},
        {"temb_dim", e_temb}, {"dropout", e_drop},  {"dropout", e_drop_nan}, {"attn_levels", e_attn},
        {"attn_levels", e_attn_neg}, {"n_heads", e_heads_lvl},
    };
    bfn_net_config good = bfn_net_config_default(2, 28, 28);
    CHECK(bfn_net_config_check(&good, NULL) == BFN_OK, "default config is valid");
    bfn_net_config tc = fixture_tiny_config(2, 0.2f);
    bfn_net *sentinel = make_net(&tc, 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bfn_net_config c = good;
        cases[i].edit(&c);
        bfn_err err = {0};
        bfn_err_clear(&err);
        bfn_status st = bfn_net_config_check(&c, &err);
        CHECK(st == BFN_ERR_ARG, "case %zu (%s): status %d", i, cases[i].field, (int)st);
        CHECK(strstr(err.msg, cases[i].field) != NULL, "case %zu: message names %s: \"%.150s\"", i,
              cases[i].field, err.msg);
        bfn_net *net = sentinel; /* must be reset to NULL on failure */
        CHECK(bfn_net_create(&net, &c, 4, &err) == BFN_ERR_ARG && net == NULL,
              "case %zu: create refuses it", i);
    }
    bfn_net_destroy(sentinel);
    bfn_net *net = NULL;
    bfn_err err = {0};
    CHECK(bfn_net_create(&net, &good, 0, &err) == BFN_ERR_ARG && strstr(err.msg, "max_batch"),
          "max_batch 0 refused: %.150s", err.msg);
    /* runtime argument errors */
    net = make_net(&tc, 2);
    float x[3 * 64] = {0}, t[3] = {0.5f, 0.5f, 0.5f}, lg[3 * 64];
    CHECK(bfn_net_forward(net, x, t, 3, 0, NULL, lg) == BFN_ERR_ARG, "batch above max refused");
    CHECK(bfn_net_forward(net, x, t, 1, 1, NULL, lg) == BFN_ERR_ARG,
          "training with dropout and no rng refused");
    t[0] = NAN;
    CHECK(bfn_net_forward(net, x, t, 1, 0, NULL, lg) == BFN_ERR_NUMERIC, "non-finite t refused");
    bfn_net_destroy(net);
}

int main(void)
{
    RUN(test_net_gradients_match_finite_differences_K2);
    RUN(test_net_gradients_match_finite_differences_K3);
    RUN(test_net_gradients_for_unusual_configs);
    RUN(test_net_inference_is_deterministic_and_batch_independent);
    RUN(test_net_bits_independent_of_threads_and_batch);
    RUN(test_net_config_param_count_matches_created_nets);
    RUN(test_net_serial_sections_hold_blas_at_one_and_restore_the_setting);
    RUN(test_net_nets_in_two_threads_at_once_match_serial_bits);
    RUN(test_net_initial_logits_are_zero_and_only_out_conv_learns_first);
    RUN(test_net_tensors_tile_the_param_array);
    RUN(test_net_attention_sits_in_the_lowest_attn_levels);
    RUN(test_net_copy_params_grows_attention_without_changing_logits);
    RUN(test_net_init_is_deterministic_in_seed);
    RUN(test_net_dropout_changes_outputs_only_in_training);
    RUN(test_net_inference_upsampling_convs_match_training_pass);
    RUN(test_net_same_bits_with_avx2_and_avx512_kernels);
    RUN(test_net_forward_follows_parameter_writes);
    RUN(test_net_backward_accumulates_and_needs_training_forward);
    RUN(test_net_default_28x28_and_64x64_run_with_finite_outputs);
    RUN(test_net_rejects_bad_configs_naming_the_field);
    return check_finish();
}
