/* Engine benchmark: the machine's sgemm rate, then for the default 28x28
 * model (or the sizes given) training images/s and the training step's
 * achieved GFLOP/s as a fraction of that sgemm rate, forward images/s at
 * batch 1, 16 and 64, sampling steps/s, and the peak resident memory.
 * Prints figures; asserts nothing.
 *   bench_engine [--batch B] [--seconds S] [--threads T] [--base-ch C]
 *                [--n-res N] [--attn N] [--only sgemm|train|forward|sample]
 * Each timing repeats the operation for the given time and reports the
 * mean and the best repetition: on a machine shared with other jobs the
 * best is the closer estimate of the machine's own speed. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bfn/flow.h"
#include "bfn/gemm.h"
#include "bfn/net.h"
#include "bfn/sample.h"
#include "bfn/train.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    double mean, best; /* seconds per repetition */
    int reps;
} timing;

typedef int (*rep_fn)(void *ctx); /* one repetition; non-zero on failure */

/* Repeats fn for about `seconds` (at least twice) after one warm-up call. */
static int time_reps(rep_fn fn, void *ctx, double seconds, timing *t)
{
    if (fn(ctx))
        return 1;
    double t0 = now(), total;
    t->best = 1e30;
    t->reps = 0;
    do {
        double a = now();
        if (fn(ctx))
            return 1;
        double d = now() - a;
        t->best = d < t->best ? d : t->best;
        t->reps++;
        total = now() - t0;
    } while (total < seconds || t->reps < 2);
    t->mean = total / t->reps;
    return 0;
}

typedef struct {
    int M, N, K;
    float *A, *B, *C;
} gemm_ctx;

static int gemm_rep(void *p)
{
    gemm_ctx *g = p;
    bfn_gemm(0, 0, g->M, g->N, g->K, 1.0f, g->A, g->K, g->B, g->N, 0.0f, g->C, g->N);
    return 0;
}

/* GFLOP/s of C (M,N) = A (M,K) B (K,N), from the best repetition. */
static double sgemm_gflops(int M, int N, int K, double seconds, double *mean_gf)
{
    gemm_ctx g = {M, N, K, malloc(sizeof(float) * M * K), malloc(sizeof(float) * K * N),
                  calloc((size_t)M * N, sizeof(float))};
    for (long i = 0; i < (long)M * K; i++)
        g.A[i] = (float)((i * 7919) % 1000) / 1000.0f;
    for (long i = 0; i < (long)K * N; i++)
        g.B[i] = (float)((i * 104729) % 1000) / 1000.0f;
    timing t;
    time_reps(gemm_rep, &g, seconds, &t);
    free(g.A);
    free(g.B);
    free(g.C);
    *mean_gf = 2.0 * M * N * K / t.mean / 1e9;
    return 2.0 * M * N * K / t.best / 1e9;
}

static bfn_status random_batch(void *user, int B, uint8_t *x, bfn_rng *rng, bfn_err *err)
{
    (void)err;
    int D = *(int *)user;
    for (long i = 0; i < (long)B * D; i++)
        x[i] = bfn_rng_uniform(rng) < 0.2;
    return BFN_OK;
}

typedef struct {
    bfn_trainer *tr;
    int D;
    bfn_err err;
} train_ctx;

static int train_rep(void *p)
{
    train_ctx *c = p;
    bfn_train_stats st;
    return bfn_trainer_step(c->tr, random_batch, &c->D, &st, &c->err) != BFN_OK;
}

typedef struct {
    bfn_net *net;
    int B;
    float *x, *t, *lg;
} fwd_ctx;

static int fwd_rep(void *p)
{
    fwd_ctx *c = p;
    return bfn_net_forward(c->net, c->x, c->t, c->B, 0, NULL, c->lg) != BFN_OK;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0; /* kilobytes on Linux */
}

int main(int argc, char **argv)
{
    int batch = 64, threads = 2, base_ch = 0, n_res = -1, attn = -1;
    double seconds = 5.0;
    const char *only = NULL;
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: bench_engine [--batch B] [--seconds S] [--threads T] [--base-ch C]\n"
                   "                    [--n-res N] [--attn N] [--only sgemm|train|forward|sample]\n");
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_engine: %s needs a value (see --help)\n", argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--base-ch"))
            base_ch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--n-res"))
            n_res = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--attn"))
            attn = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--only"))
            only = argv[i + 1];
        else {
            fprintf(stderr, "bench_engine: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (batch < 1 || threads < 1 || seconds <= 0.0) {
        fprintf(stderr, "bench_engine: --batch and --threads must be >= 1, --seconds > 0\n");
        return 2;
    }
    if (only && strcmp(only, "sgemm") && strcmp(only, "train") && strcmp(only, "forward") &&
        strcmp(only, "sample")) {
        fprintf(stderr, "bench_engine: --only takes sgemm, train, forward or sample, not %s\n", only);
        return 2;
    }
#define RUN(part) (!only || !strcmp(only, part))
    bfn_gemm_set_threads(threads);
    const char *ct = getenv("OPENBLAS_CORETYPE");
    char blas[256];
    bfn_gemm_describe(blas, sizeof blas);
    printf("threads %d, OPENBLAS_CORETYPE=%s\n", threads, ct ? ct : "(unset)");
    printf("backend: %s\n", blas);
    double mgf, gf_big = 0.0;
    if (RUN("sgemm") || RUN("train")) { /* training is reported against this rate */
        gf_big = sgemm_gflops(1024, 1024, 1024, seconds / 2, &mgf);
        printf("sgemm 1024x1024x1024: %.1f GFLOP/s (mean %.1f)\n", gf_big, mgf);
    }
    if (RUN("sgemm")) {
        double gf_conv = sgemm_gflops(64, 784, 576, seconds / 2, &mgf);
        printf("sgemm 64x784x576 (conv-shaped): %.1f GFLOP/s (mean %.1f)\n", gf_conv, mgf);
    }

    bfn_err err;
    bfn_net_config cfg = bfn_net_config_default(2, 28, 28);
    if (base_ch > 0)
        cfg.base_ch = base_ch;
    if (n_res >= 0)
        cfg.n_res = n_res;
    if (attn >= 0)
        cfg.attn_levels = attn;
    bfn_net *net;
    if (bfn_net_create(&net, &cfg, batch, &err) != BFN_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    bfn_net_init_params(net, 1);
    double fl = bfn_net_flops_per_image(net);
    printf("model: 28x28 base %d n_res %d attn %d, %zu parameters, %.1f M multiply-adds per image "
           "forward\n", cfg.base_ch, cfg.n_res, cfg.attn_levels, bfn_net_param_count(net), fl / 1e6);

    timing t;
    train_ctx trc = {.D = 28 * 28};
    bfn_train_config tc = bfn_train_config_default();
    tc.batch = batch;
    if (RUN("train") && bfn_trainer_create(&trc.tr, net, &tc, &err) != BFN_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    if (RUN("train") && time_reps(train_rep, &trc, seconds, &t)) {
        fprintf(stderr, "bench: %s\n", trc.err.msg);
        return 1;
    }
    /* forward + backward = 3 forward passes of multiply-adds (dW and din
     * each cost a forward), 2 flops each */
    if (RUN("train")) {
        double step_flop = fl * 3 * 2 * batch;
        double gf_train = step_flop / t.best / 1e9;
        printf("train: batch %d, %.1f images/s (mean %.1f), %.1f ms/step (mean %.1f), %d steps\n",
               batch, batch / t.best, batch / t.mean, 1e3 * t.best, 1e3 * t.mean, t.reps);
        printf("train: %.1f GFLOP/s achieved (mean %.1f) = %.0f%% of the sgemm 1024^3 rate\n",
               gf_train, step_flop / t.mean / 1e9, 100.0 * gf_train / gf_big);
        bfn_trainer_destroy(trc.tr);
    }

    int fb[3] = {1, 16, 64};
    for (int q = 0; q < 3; q++) {
        if (fb[q] > batch || !RUN("forward"))
            continue;
        fwd_ctx fc = {net, fb[q], calloc((size_t)fb[q] * trc.D, sizeof(float)),
                      calloc((size_t)fb[q], sizeof(float)), calloc((size_t)fb[q] * trc.D, sizeof(float))};
        for (int b = 0; b < fb[q]; b++)
            fc.t[b] = 0.5f;
        time_reps(fwd_rep, &fc, seconds / 2, &t);
        printf("forward: batch %2d, %.1f images/s (mean %.1f), %.2f ms/call (mean %.2f)\n", fb[q],
               fb[q] / t.best, fb[q] / t.mean, 1e3 * t.best, 1e3 * t.mean);
        free(fc.x);
        free(fc.t);
        free(fc.lg);
    }

    bfn_sample_config sc = {.n_steps = 20, .beta1 = 3.0, .count = 16, .seed = 1};
    bfn_sampler *s;
    if (RUN("sample") && 16 <= batch && bfn_sampler_create(&s, net, &sc, &err) == BFN_OK) {
        double t0 = now();
        bfn_sampler_run(s, NULL, &err);
        double d = now() - t0;
        printf("sample: 16 images, %.1f steps/s (%d steps in %.2f s)\n", (sc.n_steps + 1) / d,
               sc.n_steps + 1, d);
        bfn_sampler_destroy(s);
    }
    printf("peak resident memory: %.0f MB\n", peak_rss_mb());
    bfn_net_destroy(net);
    return 0;
}
