/* Engine benchmark: machine sgemm rate, training images/s and sampling speed
#define _POSIX_C_SOURCE 200809L
 * for the default 28×28 model. Prints figures; asserts nothing.
 *   bench_engine [--batch B] [--seconds S] [--threads T] [--base-ch C] [--n-res N] [--attn 0|1] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static double sgemm_gflops(int M, int N, int K, double seconds)
{
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C = calloc((size_t)M * N, sizeof(float));
    for (long i = 0; i < (long)M * K; i++)
        A[i] = (float)((i * 7919) % 1000) / 1000.0f;
    for (long i = 0; i < (long)K * N; i++)
        B[i] = (float)((i * 104729) % 1000) / 1000.0f;
    bfn_gemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N); /* warm-up */
    int reps = 0;
    double t0 = now(), t;
    do {
        bfn_gemm(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
        reps++;
        t = now() - t0;
    } while (t < seconds);
    free(A);
    free(B);
    free(C);
    return 2.0 * M * N * K * reps / t / 1e9;
}

static bfn_status random_batch(void *user, int B, uint8_t *x, bfn_rng *rng, bfn_err *err)
{
    (void)err;
    int D = *(int *)user;
    for (long i = 0; i < (long)B * D; i++)
        x[i] = bfn_rng_uniform(rng) < 0.2;
    return BFN_OK;
}

int main(int argc, char **argv)
{
    int batch = 64, threads = 2, base_ch = 0, n_res = -1, attn = -1;
    double seconds = 5.0;
    for (int i = 1; i + 1 < argc; i += 2) {
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
    }
    bfn_gemm_set_threads(threads);
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("threads %d, OPENBLAS_CORETYPE=%s\n", threads, ct ? ct : "(unset)");
    printf("sgemm 1024x1024x1024: %.1f GFLOP/s\n", sgemm_gflops(1024, 1024, 1024, seconds / 2));
    printf("sgemm 64x784x576 (conv-shaped): %.1f GFLOP/s\n", sgemm_gflops(64, 784, 576, seconds / 2));

    bfn_err err;
    bfn_net_config cfg = bfn_net_config_default(2, 28, 28);
    if (base_ch > 0)
        cfg.base_ch = base_ch;
    if (n_res >= 0)
        cfg.n_res = n_res;
    if (attn >= 0)
        cfg.attn_lowest = attn;
    bfn_net *net;
    if (bfn_net_create(&net, &cfg, batch, &err) != BFN_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    bfn_net_init_params(net, 1);
    double fl = bfn_net_flops_per_image(net);
    printf("model: 28x28 base %d n_res %d,", cfg.base_ch, cfg.n_res); printf(" %zu parameters, %.1f MFLOP (multiply-adds) per image forward\n",
           bfn_net_param_count(net), fl / 1e6);

    bfn_train_config tc = bfn_train_config_default();
    tc.batch = batch;
    bfn_trainer *tr;
    if (bfn_trainer_create(&tr, net, &tc, &err) != BFN_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    int D = 28 * 28;
    bfn_train_stats st;
    bfn_trainer_step(tr, random_batch, &D, &st, &err); /* warm-up */
    int steps = 0;
    double t0 = now(), t;
    do {
        if (bfn_trainer_step(tr, random_batch, &D, &st, &err) != BFN_OK) {
            fprintf(stderr, "bench: %s\n", err.msg);
            return 1;
        }
        steps++;
        t = now() - t0;
    } while (t < seconds);
    double ips = steps * batch / t;
    /* forward + backward ≈ 3× forward multiply-adds; 2 flops per multiply-add */
    printf("train: batch %d, %.1f images/s, %.1f ms/step, ~%.1f GFLOP/s\n", batch, ips,
           1e3 * t / steps, ips * fl * 3 * 2 / 1e9);
    bfn_trainer_destroy(tr);

    int fb[3] = {1, 16, 64};
    for (int q = 0; q < 3; q++) {
        if (fb[q] > batch)
            continue;
        float *in = calloc((size_t)fb[q] * D, sizeof(float));
        float *tt = calloc((size_t)fb[q], sizeof(float));
        float *lg = calloc((size_t)fb[q] * D, sizeof(float));
        int reps = 0;
        t0 = now();
        do {
            bfn_net_forward(net, in, tt, fb[q], 0, NULL, lg);
            reps++;
            t = now() - t0;
        } while (t < seconds / 2);
        printf("forward: batch %2d, %.1f images/s (%.2f ms/call)\n", fb[q], reps * fb[q] / t,
               1e3 * t / reps);
        free(in);
        free(tt);
        free(lg);
    }

    bfn_sample_config sc = {.n_steps = 20, .beta1 = 3.0, .count = 16, .seed = 1};
    bfn_sampler *s;
    if (16 <= batch && bfn_sampler_create(&s, net, &sc, &err) == BFN_OK) {
        t0 = now();
        bfn_sampler_run(s, NULL, &err);
        t = now() - t0;
        printf("sample: 16 images, %.1f steps/s (%d steps in %.2f s)\n", (sc.n_steps + 1) / t,
               sc.n_steps + 1, t);
        bfn_sampler_destroy(s);
    }
    bfn_net_destroy(net);
    return 0;
}
