/* bfn sample: Algorithm 9 into a PNG grid (and optionally an IDX file), and an
 * evolution strip showing the input distribution θ and the output distribution
 * at chosen times. */
#include <math.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/flow.h"
#include "bfn/image.h"
#include "bfn/data.h"
#include "bfn/model_io.h"
#include "bfn/sample.h"
#include "cli.h"

#define STRIP_MAX_COLS 64

/* Evolution strip: for each of `rows` images and each column time τ_c, the
 * input distribution θ_on after the step that reaches τ_c (step round(τ_c n)),
 * and the output distribution p_on the network gave at t = τ_c (the step i
 * with (i−1)/n = τ_c; the final call at τ = 1). */
typedef struct {
    int rows, cols, n, D, K;
    int theta_step[STRIP_MAX_COLS], p_step[STRIP_MAX_COLS];
    float *theta; /* (rows, cols, D) */
    float *p;     /* (rows, cols, D) */
    float *th;    /* (planes, D) scratch */
} strip;

static void strip_store(strip *s, int step, const float *z, const float *p, int p_planes)
{
    for (int c = 0; c < s->cols; c++) {
        for (int r = 0; r < s->rows; r++) {
            float *dst_t = s->theta + ((size_t)r * s->cols + c) * s->D;
            float *dst_p = s->p + ((size_t)r * s->cols + c) * s->D;
            if (z && s->theta_step[c] == step) {
                int zp = bfn_flow_planes(s->K);
                bfn_theta(s->th, z + (size_t)r * zp * s->D, s->D, s->K);
                /* K = 2: θ_on; general: probability of the last class */
                memcpy(dst_t, s->th + (size_t)(zp - 1) * s->D, s->D * sizeof(float));
            }
            if (p && s->p_step[c] == step)
                memcpy(dst_p, p + ((size_t)r * p_planes + (p_planes - 1)) * s->D,
                       s->D * sizeof(float));
        }
    }
}

static int strip_observer(const bfn_sample_frame *f, void *user)
{
    strip *s = user;
    strip_store(s, f->step, f->is_final ? NULL : f->z, f->p, f->p_planes);
    return 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Writes the (n, h, w) classes as an IDX3 ubyte file like MNIST's (class k of
 * K becomes k·255/(K−1), so binary samples are 0/255), atomically
 * (bfn_file_replace) so a reader never sees a partial file. */
static bfn_status write_idx(const char *path, const uint8_t *cls, int K, int n, int h, int w,
                            bfn_err *err)
{
    size_t total = (size_t)n * h * w;
    uint8_t *buf = malloc(16 + total);
    if (!buf)
        return bfn_err_set(err, BFN_ERR_NOMEM, "%s: out of memory", path);
    buf[0] = 0, buf[1] = 0, buf[2] = 0x08, buf[3] = 3; /* magic: unsigned bytes, 3 dimensions */
    put_be32(buf + 4, (uint32_t)n);
    put_be32(buf + 8, (uint32_t)h);
    put_be32(buf + 12, (uint32_t)w);
    for (size_t j = 0; j < total; j++)
        buf[16 + j] = (uint8_t)((cls[j] * 255 + (K - 1) / 2) / (K - 1));
    bfn_status st = bfn_file_replace(path, buf, 16 + total, err);
    free(buf);
    return st;
}

/* The same file named twice (the same path, or two names of one existing file). */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!a || !b)
        return 0;
    return !strcmp(a, b) || (stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
                             sa.st_ino == sb.st_ino);
}

int cmd_sample(int argc, char **argv)
{
    const char *model = NULL, *out = "samples.png", *strip_path = NULL;
    const char *idx_path = NULL, *guide_path = NULL;
    double guidance = -1; /* not given */
    int n = 100, count = 16, cols = 0, scale = 2, argmax = 0, strip_rows = 4, strip_cols = 11;
    int threads = 0;
    double beta1 = 0;
    uint64_t seed = 1;
    arg_spec specs[] = {
        {"model", ARG_STR, &model, "PATH", "model file (default " BFN_DEFAULT_MODEL ")", 1, 0, 0},
        {"steps", ARG_INT, &n, "N", "sampling steps n (default 100)", 1, 100000, 0},
        {"beta1", ARG_DOUBLE, &beta1, "X", "accuracy beta(1) (default: the model's own)", 1e-4, 1e4, 0},
        {"seed", ARG_U64, &seed, "N", "random seed (default 1)", 1, 0, 0},
        {"count", ARG_INT, &count, "N", "images to sample (default 16)", 1, 10000, 0},
        {"out", ARG_STR, &out, "PNG", "output grid (default samples.png)", 1, 0, 0},
        {"idx", ARG_STR, &idx_path, "PATH", "also write the samples as an IDX3 ubyte file (0/255, like MNIST)", 1, 0, 0},
        {"cols", ARG_INT, &cols, "N", "grid columns (default: about square)", 1, 1000, 0},
        {"scale", ARG_INT, &scale, "N", "pixel upscale factor (default 2)", 1, 16, 0},
        {"argmax", ARG_FLAG, &argmax, NULL, "final output = most probable class instead of a draw", 0, 0, 0},
        {"strip", ARG_STR, &strip_path, "PNG", "also write an evolution strip (theta and output rows)", 1, 0, 0},
        {"strip-rows", ARG_INT, &strip_rows, "N", "samples shown in the strip (default 4)", 1, 64, 0},
        {"strip-cols", ARG_INT, &strip_cols, "N", "times shown, evenly from t=0 to 1 (default 11)", 2, STRIP_MAX_COLS, 0},
        {"guide", ARG_STR, &guide_path, "MODEL", "autoguidance: a weaker model of the same data (e.g. an early snapshot) to steer away from", 1, 0, 0},
        {"guidance", ARG_DOUBLE, &guidance, "W", "guidance weight w: logits = guide + w (model - guide) (default 2 with --guide; 1 = the model alone)", 0, BFN_GUIDANCE_MAX, 0},
        {"threads", ARG_INT, &threads, "N", "BLAS threads (default: all cores)", 1, 256, 0},
    };
    int r = args_parse("bfn sample",
                       "Generates images with Algorithm 9 (BFN paper) and writes them as a PNG grid.",
                       argc, argv, 2, specs, (int)(sizeof specs / sizeof specs[0]));
    if (r)
        return r > 0 ? EXIT_OK : EXIT_USAGE;
    if (guidance >= 0 && !guide_path) {
        fprintf(stderr, "bfn sample: --guidance needs --guide MODEL\n");
        return EXIT_USAGE;
    }
    if (guide_path && guidance < 0)
        guidance = 2.0;
    if (same_file(out, idx_path) || same_file(out, strip_path) ||
        same_file(idx_path, strip_path)) {
        fprintf(stderr, "bfn sample: --out, --idx and --strip must name three different files\n");
        return EXIT_USAGE;
    }
    if (cli_check_writable("sample", out) || cli_check_writable("sample", idx_path) ||
        cli_check_writable("sample", strip_path))
        return EXIT_FAIL;
    char model_buf[BFN_PATH_MAX];
    if (!model) {
        bfn_locate(BFN_DEFAULT_MODEL, model_buf, sizeof model_buf);
        model = model_buf;
    }
    cli_set_threads(threads);
    bfn_err err = {0};
    bfn_net *net = NULL;
    bfn_model_meta meta;
    int mb = count < 64 ? count : 64;
    bfn_status st = bfn_model_load_net(model, &net, &meta, mb, &err);
    if (st != BFN_OK)
        return cli_fail("sample", st, &err);
    bfn_net *guide = NULL;
    if (guide_path) {
        bfn_model_meta gmeta;
        st = bfn_model_load_net(guide_path, &guide, &gmeta, mb, &err);
        if (st == BFN_OK && gmeta.beta1 != meta.beta1)
            st = bfn_err_set(&err, BFN_ERR_MISMATCH,
                             "the guide %s was trained at beta(1) = %g, the model %s at %g",
                             guide_path, gmeta.beta1, model, meta.beta1);
        if (st != BFN_OK) {
            bfn_net_destroy(guide);
            bfn_net_destroy(net);
            return cli_fail("sample", st, &err);
        }
    }
    if (beta1 == 0)
        beta1 = meta.beta1;
    const int H = meta.config.H, W = meta.config.W, D = H * W, K = meta.config.K;
    if (strip_rows > count)
        strip_rows = count;
    /* images too large to make fail now, not after the sampling */
    if ((st = cli_grid_check(count, H, W, cols, scale, &err)) != BFN_OK ||
        (strip_path &&
         (st = cli_grid_check(2 * strip_rows * strip_cols, H, W, strip_cols, scale, &err)) != BFN_OK)) {
        bfn_net_destroy(guide);
        bfn_net_destroy(net);
        return cli_fail("sample", st, &err);
    }

    strip s = {.rows = strip_rows, .cols = strip_cols, .n = n, .D = D, .K = K};
    if (strip_path) {
        s.theta = calloc((size_t)strip_rows * strip_cols * D, sizeof(float));
        s.p = calloc((size_t)strip_rows * strip_cols * D, sizeof(float));
        s.th = calloc((size_t)bfn_flow_planes(K) * D, sizeof(float));
        if (!s.theta || !s.p || !s.th) {
            free(s.theta), free(s.p), free(s.th);
            bfn_net_destroy(guide);
            bfn_net_destroy(net);
            return cli_fail("sample", BFN_ERR_NOMEM, NULL);
        }
        for (int c = 0; c < strip_cols; c++) {
            double tau = (double)c / (strip_cols - 1);
            s.theta_step[c] = (int)lround(tau * n);
            s.p_step[c] = (int)lround(tau * n) + 1; /* t = (i − 1)/n; i = n + 1 is the final call */
        }
        for (size_t i = 0; i < (size_t)strip_rows * strip_cols * D; i++)
            s.theta[i] = 1.0f / K; /* step 0: the uniform prior */
    }
    bfn_sample_config sc = {.n_steps = n, .beta1 = beta1, .count = count, .seed = seed,
                            .final = argmax ? BFN_FINAL_ARGMAX : BFN_FINAL_SAMPLE};
    bfn_sampler *smp = NULL;
    double t0 = cli_now();
    st = guide ? bfn_sampler_create_guided(&smp, net, guide, guidance, &sc, &err)
               : bfn_sampler_create(&smp, net, &sc, &err);
    if (st == BFN_OK) {
        if (strip_path)
            bfn_sampler_set_observer(smp, strip_observer, &s);
        st = bfn_sampler_run(smp, cli_interrupt_flag(), &err);
    }
    double el = cli_now() - t0;
    int code = EXIT_OK;
    if (st != BFN_OK) {
        code = cli_fail("sample", st, &err);
        goto done;
    }
    st = cli_write_grid(out, bfn_sampler_result(smp), K - 1, NULL, count, H, W, cols, scale, &err);
    if (st != BFN_OK) {
        code = cli_fail("sample", st, &err);
        goto done;
    }
    printf("wrote %s: %d samples, n = %d, beta1 = %g (sqrt %.3g), seed %llu, %s final, %.2f s\n", out,
           count, n, beta1, sqrt(beta1), (unsigned long long)seed, argmax ? "argmax" : "sampled", el);
    if (guide)
        printf("guided away from %s with w = %g\n", guide_path, guidance);
    if (idx_path) {
        st = write_idx(idx_path, bfn_sampler_result(smp), K, count, H, W, &err);
        if (st != BFN_OK) {
            code = cli_fail("sample", st, &err);
            goto done;
        }
        printf("wrote %s: IDX3 ubyte, %d x %d x %d\n", idx_path, count, H, W);
    }
    if (strip_path) {
        /* rows: for each sample, θ_on then p_on; columns: times 0 .. 1 */
        int rows = 2 * strip_rows;
        float *imgs = malloc((size_t)rows * strip_cols * D * sizeof(float));
        if (!imgs) {
            code = cli_fail("sample", BFN_ERR_NOMEM, NULL);
            goto done;
        }
        for (int q = 0; q < strip_rows; q++)
            for (int c = 0; c < strip_cols; c++) {
                memcpy(imgs + ((size_t)(2 * q) * strip_cols + c) * D,
                       s.theta + ((size_t)q * strip_cols + c) * D, D * sizeof(float));
                memcpy(imgs + ((size_t)(2 * q + 1) * strip_cols + c) * D,
                       s.p + ((size_t)q * strip_cols + c) * D, D * sizeof(float));
            }
        st = cli_write_grid(strip_path, NULL, 0, imgs, rows * strip_cols, H, W, strip_cols, scale, &err);
        free(imgs);
        if (st != BFN_OK) {
            code = cli_fail("sample", st, &err);
            goto done;
        }
        printf("wrote %s: %d samples x %d times (t = 0 .. 1); rows alternate theta_on and output p_on\n",
               strip_path, strip_rows, strip_cols);
    }
done:
    free(s.th);
    free(s.theta);
    free(s.p);
    bfn_sampler_destroy(smp);
    bfn_net_destroy(guide);
    bfn_net_destroy(net);
    return code;
}
