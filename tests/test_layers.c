/* U-Net layers: forward values against direct definitions, and every
 * backward against central finite differences of L = Σ r ⊙ out (r random,
 * L summed in double), perturbing float inputs and parameters one at a time. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/gemm.h"
#include "bfn/rng.h"
#include "check.h"
#include "net/layers.h"
#include "net/pool.h"
#include "net/vec.h"

/* ---- helpers ---- */

static float *fvec(size_t n)
{
    float *v = calloc(n ? n : 1, sizeof(float));
    if (!v) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return v;
}

static float *rvec(size_t n, bfn_rng *r, float lo, float hi)
{
    float *v = fvec(n);
    for (size_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * (float)bfn_rng_uniform(r);
    return v;
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

typedef double (*loss_fn)(void *ctx); /* runs the forward pass, returns Σ r ⊙ out */

typedef struct {
    const char *name;
    float *v;       /* perturbed in place */
    const float *g; /* analytic dL/dv */
    size_t n;
} gc_var;

/* Compares g[i] with (L(v_i + eps) − L(v_i − eps)) / (2 eps) for up to
 * max_samples entries of each variable: |num − g| <= rtol·max(|num|, floor),
 * floor = max(abs_floor, 0.1·rms(g)) so entries whose gradient is tiny next
 * to the others are judged on the variable's scale. */
static void gradcheck(const char *op, loss_fn f, void *ctx, const gc_var *vars, int nvars,
                      float eps, double rtol, double abs_floor, size_t max_samples)
{
    bfn_rng pick;
    bfn_rng_init(&pick, 12345, 7);
    double worst = 0.0;
    for (int k = 0; k < nvars; k++) {
        const gc_var *x = &vars[k];
        double rms = sqrt(dot(x->g, x->g, x->n) / (double)x->n);
        double floor = fmax(abs_floor, 0.1 * rms);
        size_t m = x->n < max_samples ? x->n : max_samples;
        for (size_t s = 0; s < m; s++) {
            size_t i = m == x->n ? s : (size_t)bfn_rng_below(&pick, x->n);
            float old = x->v[i];
            float up = old + eps, dn = old - eps;
            x->v[i] = up;
            double lp = f(ctx);
            x->v[i] = dn;
            double lm = f(ctx);
            x->v[i] = old;
            double num = (lp - lm) / ((double)up - (double)dn);
            CHECK_REL(num, x->g[i], rtol, floor, "%s: dL/d%s[%zu]", op, x->name, i);
            worst = fmax(worst, fabs(num - x->g[i]) / (rtol * fmax(fabs(num), floor)));
        }
    }
    printf("  %s: worst |num − analytic| / tol = %.3f\n", op, worst);
}

/* ---- convolution ---- */

/* Direct definition: out[b][co][oy][ox] = bias[co] + Σ w[co][ci][ky][kx] in[b][ci][iy][ix]. */
static void conv_direct(double *out, const float *in, const float *w, const float *bias, int B,
                        const bfn_conv2d_shape *s)
{
    int ho = bfn_conv2d_out_h(s), wo = bfn_conv2d_out_w(s), k = s->k;
    for (int b = 0; b < B; b++)
        for (int co = 0; co < s->cout; co++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    double acc = bias ? bias[co] : 0.0;
                    for (int ci = 0; ci < s->cin; ci++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = oy * s->stride - s->pad + ky;
                                int ix = ox * s->stride - s->pad + kx;
                                if (iy < 0 || iy >= s->h || ix < 0 || ix >= s->w)
                                    continue;
                                acc += (double)w[((co * s->cin + ci) * k + ky) * k + kx] *
                                       in[((size_t)(b * s->cin + ci) * s->h + iy) * s->w + ix];
                            }
                    out[(((size_t)b * s->cout + co) * ho + oy) * wo + ox] = acc;
                }
}

static const bfn_conv2d_shape conv_cases[] = {
    {.cin = 3, .h = 6, .w = 5, .cout = 4, .k = 3, .stride = 1, .pad = 1},   /* packed images */
    {.cin = 2, .h = 7, .w = 8, .cout = 3, .k = 3, .stride = 2, .pad = 1},   /* stride 2, odd h */
    {.cin = 5, .h = 4, .w = 4, .cout = 6, .k = 1, .stride = 1, .pad = 0},   /* pointwise */
    {.cin = 2, .h = 36, .w = 36, .cout = 3, .k = 3, .stride = 1, .pad = 1}, /* one image per gemm */
    {.cin = 2, .h = 9, .w = 6, .cout = 2, .k = 5, .stride = 2, .pad = 2},   /* wider kernel */
};
#define N_CONV_CASES ((int)(sizeof conv_cases / sizeof conv_cases[0]))

static void test_im2col_matches_direct_indexing(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 1, 0);
    for (int c = 0; c < N_CONV_CASES; c++) {
        const bfn_conv2d_shape *s = &conv_cases[c];
        int ho = bfn_conv2d_out_h(s), wo = bfn_conv2d_out_w(s), k = s->k;
        size_t ld = (size_t)ho * wo + 3; /* a wider row stride, as when images are packed */
        float *in = rvec((size_t)s->cin * s->h * s->w, &r, -1, 1);
        float *col = fvec((size_t)s->cin * k * k * ld);
        bfn_im2col(col, ld, in, s);
        int bad = 0;
        for (int ci = 0; ci < s->cin; ci++)
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++)
                    for (int oy = 0; oy < ho; oy++)
                        for (int ox = 0; ox < wo; ox++) {
                            int iy = oy * s->stride - s->pad + ky, ix = ox * s->stride - s->pad + kx;
                            float want = iy < 0 || iy >= s->h || ix < 0 || ix >= s->w
                                             ? 0.0f
                                             : in[((size_t)ci * s->h + iy) * s->w + ix];
                            float got = col[((size_t)(ci * k + ky) * k + kx) * ld + oy * wo + ox];
                            bad += got != want;
                        }
        CHECK(bad == 0, "case %d: %d column entries differ from the definition", c, bad);
        free(in);
        free(col);
    }
}

static void test_col2im_is_adjoint_of_im2col(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 2, 0);
    for (int c = 0; c < N_CONV_CASES; c++) {
        const bfn_conv2d_shape *s = &conv_cases[c];
        size_t ld = (size_t)bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s);
        size_t nin = (size_t)s->cin * s->h * s->w, ncol = (size_t)s->cin * s->k * s->k * ld;
        float *x = rvec(nin, &r, -1, 1), *cv = rvec(ncol, &r, -1, 1);
        float *colx = fvec(ncol), *imc = fvec(nin);
        bfn_im2col(colx, ld, x, s);
        bfn_col2im(imc, cv, ld, s);
        double a = dot(cv, colx, ncol), b = dot(imc, x, nin);
        CHECK_REL(a, b, 1e-5, 1.0, "case %d: <c, im2col(x)> vs <col2im(c), x>", c);
        free(x);
        free(cv);
        free(colx);
        free(imc);
    }
}

static void test_conv_forward_matches_direct_loop(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 3, 0);
    for (int c = 0; c < N_CONV_CASES; c++) {
        const bfn_conv2d_shape *s = &conv_cases[c];
        for (int B = 1; B <= 5; B += 4) {
            size_t nin = (size_t)B * s->cin * s->h * s->w;
            size_t nout = (size_t)B * s->cout * bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s);
            size_t nw = (size_t)s->cout * s->cin * s->k * s->k;
            float *in = rvec(nin, &r, -1, 1), *w = rvec(nw, &r, -1, 1);
            float *bias = rvec(s->cout, &r, -1, 1), *out = fvec(nout);
            float *ws = fvec(bfn_conv2d_workspace(s, B));
            double *ref = calloc(nout, sizeof(double));
            conv_direct(ref, in, w, bias, B, s);
            bfn_conv2d_forward(out, in, w, bias, ws, B, s, 0);
            double worst = 0.0;
            for (size_t i = 0; i < nout; i++)
                worst = fmax(worst, fabs(out[i] - ref[i]));
            CHECK_NEAR(0.0, worst, 1e-5 * s->cin * s->k * s->k, "case %d B %d: max |gemm − direct|",
                       c, B);
            /* accumulate = 1 adds onto what is there */
            for (size_t i = 0; i < nout; i++)
                out[i] = 1.0f;
            bfn_conv2d_forward(out, in, w, bias, ws, B, s, 1);
            worst = 0.0;
            for (size_t i = 0; i < nout; i++)
                worst = fmax(worst, fabs(out[i] - (ref[i] + 1.0)));
            CHECK_NEAR(0.0, worst, 1e-5 * s->cin * s->k * s->k,
                       "case %d B %d: accumulate adds to out", c, B);
            free(in);
            free(w);
            free(bias);
            free(out);
            free(ws);
            free(ref);
        }
    }
}

typedef struct {
    const bfn_conv2d_shape *s;
    int B;
    float *in, *w, *bias, *out, *ws;
    const float *r;
    size_t nout;
} conv_ctx;

static double conv_loss(void *p)
{
    conv_ctx *c = p;
    bfn_conv2d_forward(c->out, c->in, c->w, c->bias, c->ws, c->B, c->s, 0);
    return dot(c->out, c->r, c->nout);
}

static void conv_gradcheck(const char *name, const bfn_conv2d_shape *s, int B)
{
    bfn_rng r;
    bfn_rng_init(&r, 4, (uint64_t)s->k * 100 + s->stride);
    size_t nin = (size_t)B * s->cin * s->h * s->w;
    size_t nout = (size_t)B * s->cout * bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s);
    size_t nw = (size_t)s->cout * s->cin * s->k * s->k;
    conv_ctx c = {s, B, rvec(nin, &r, -1, 1), rvec(nw, &r, -0.5f, 0.5f),
                  rvec(s->cout, &r, -0.5f, 0.5f), fvec(nout), fvec(bfn_conv2d_workspace(s, B)),
                  rvec(nout, &r, -1, 1), nout};
    float *din = fvec(nin), *dw = fvec(nw), *db = fvec(s->cout);
    conv_loss(&c);
    bfn_conv2d_backward(din, dw, db, c.r, c.in, c.w, c.ws, B, s);
    gc_var v[] = {{"in", c.in, din, nin}, {"w", c.w, dw, nw}, {"bias", c.bias, db, s->cout}};
    gradcheck(name, conv_loss, &c, v, 3, 1e-2f, 1e-2, 1e-3, 200);
    free(c.in);
    free(c.w);
    free(c.bias);
    free(c.out);
    free(c.ws);
    free((float *)c.r);
    free(din);
    free(dw);
    free(db);
}

static void test_conv3x3_stride1_gradients(void)
{
    bfn_conv2d_shape s = {.cin = 3, .h = 5, .w = 6, .cout = 4, .k = 3, .stride = 1, .pad = 1};
    conv_gradcheck("conv3x3", &s, 3); /* several images per gemm */
    bfn_conv2d_shape big = {.cin = 2, .h = 33, .w = 33, .cout = 2, .k = 3, .stride = 1, .pad = 1};
    conv_gradcheck("conv3x3 33x33", &big, 2); /* one image per gemm */
}

static void test_conv3x3_stride2_gradients(void)
{
    bfn_conv2d_shape s = {.cin = 3, .h = 8, .w = 6, .cout = 4, .k = 3, .stride = 2, .pad = 1};
    conv_gradcheck("conv3x3/2", &s, 2);
}

static void test_conv1x1_gradients(void)
{
    bfn_conv2d_shape s = {.cin = 5, .h = 3, .w = 4, .cout = 3, .k = 1, .stride = 1, .pad = 0};
    conv_gradcheck("conv1x1", &s, 2);
}

static void test_conv_backward_accumulates(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 5, 0);
    bfn_conv2d_shape s = {.cin = 2, .h = 4, .w = 4, .cout = 3, .k = 3, .stride = 1, .pad = 1};
    int B = 2;
    size_t nin = (size_t)B * 2 * 16, nout = (size_t)B * 3 * 16, nw = 3 * 2 * 9;
    float *in = rvec(nin, &r, -1, 1), *w = rvec(nw, &r, -1, 1), *dout = rvec(nout, &r, -1, 1);
    float *ws = fvec(bfn_conv2d_workspace(&s, B));
    float *din1 = fvec(nin), *dw1 = fvec(nw), *db1 = fvec(3);
    float *din2 = fvec(nin), *dw2 = fvec(nw), *db2 = fvec(3);
    bfn_conv2d_backward(din1, dw1, db1, dout, in, w, ws, B, &s);
    for (size_t i = 0; i < nin; i++)
        din2[i] = 0.5f;
    for (size_t i = 0; i < nw; i++)
        dw2[i] = -2.0f;
    db2[0] = db2[1] = db2[2] = 3.0f;
    bfn_conv2d_backward(din2, dw2, db2, dout, in, w, ws, B, &s);
    double e = 0.0;
    for (size_t i = 0; i < nin; i++)
        e = fmax(e, fabs(din2[i] - (din1[i] + 0.5f)));
    for (size_t i = 0; i < nw; i++)
        e = fmax(e, fabs(dw2[i] - (dw1[i] - 2.0f)));
    for (int i = 0; i < 3; i++)
        e = fmax(e, fabs(db2[i] - (db1[i] + 3.0f)));
    CHECK_NEAR(0.0, e, 1e-5, "max |(g0 + backward) − (g0 + grad)|");
    free(in);
    free(w);
    free(dout);
    free(ws);
    free(din1);
    free(dw1);
    free(db1);
    free(din2);
    free(dw2);
    free(db2);
}

/* ---- GroupNorm ---- */

typedef struct {
    int B, C, HW, G, silu;
    float *in, *gamma, *beta, *out, *mean, *rstd;
    const float *r;
} gn_ctx;

static double gn_loss(void *p)
{
    gn_ctx *c = p;
    if (c->silu)
        bfn_groupnorm_silu_forward(c->out, c->mean, c->rstd, c->in, c->gamma, c->beta, c->B, c->C,
                                   c->HW, c->G);
    else
        bfn_groupnorm_forward(c->out, c->mean, c->rstd, c->in, c->gamma, c->beta, c->B, c->C,
                              c->HW, c->G);
    return dot(c->out, c->r, (size_t)c->B * c->C * c->HW);
}

static void gn_gradcheck(int silu)
{
    bfn_rng r;
    bfn_rng_init(&r, 6, (uint64_t)silu);
    int B = 2, C = 6, HW = 5, G = 3;
    size_t n = (size_t)B * C * HW;
    gn_ctx c = {B, C, HW, G, silu, rvec(n, &r, -2, 3), rvec(C, &r, 0.5f, 1.5f),
                rvec(C, &r, -0.5f, 0.5f), fvec(n), fvec(B * G), fvec(B * G), rvec(n, &r, -1, 1)};
    float *din = fvec(n), *dg = fvec(C), *db = fvec(C);
    gn_loss(&c);
    float *dout = fvec(n); /* the fused backward overwrites its dout */
    memcpy(dout, c.r, sizeof(float) * n);
    if (silu)
        bfn_groupnorm_silu_backward(din, dg, db, dout, c.in, c.mean, c.rstd, c.gamma, c.beta, B, C,
                                    HW, G, 1);
    else
        bfn_groupnorm_backward(din, dg, db, c.r, c.in, c.mean, c.rstd, c.gamma, B, C, HW, G, 1);
    gc_var v[] = {{"in", c.in, din, n}, {"gamma", c.gamma, dg, C}, {"beta", c.beta, db, C}};
    gradcheck(silu ? "groupnorm+silu" : "groupnorm", gn_loss, &c, v, 3, 1e-2f, 1e-2, 1e-3, 200);
    free(c.in);
    free(c.gamma);
    free(c.beta);
    free(c.out);
    free(c.mean);
    free(c.rstd);
    free((float *)c.r);
    free(dout);
    free(din);
    free(dg);
    free(db);
}

static void test_groupnorm_gradients(void) { gn_gradcheck(0); }
static void test_groupnorm_silu_gradients(void) { gn_gradcheck(1); }

static void test_groupnorm_output_has_zero_mean_unit_variance_per_group(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 7, 0);
    int B = 2, C = 8, HW = 49, G = 4, cg = C / G;
    size_t n = (size_t)B * C * HW;
    float *in = rvec(n, &r, 3, 7), *out = fvec(n), *mean = fvec(B * G), *rstd = fvec(B * G);
    float *one = fvec(C), *zero = fvec(C), *silu = fvec(n), *again = fvec(n);
    for (int c = 0; c < C; c++)
        one[c] = 1.0f;
    bfn_groupnorm_forward(out, mean, rstd, in, one, zero, B, C, HW, G);
    for (int i = 0; i < B * G; i++) {
        const float *y = out + (size_t)i * cg * HW;
        double m = 0.0, v = 0.0;
        for (int j = 0; j < cg * HW; j++)
            m += y[j];
        m /= cg * HW;
        for (int j = 0; j < cg * HW; j++)
            v += (y[j] - m) * (y[j] - m);
        v /= cg * HW;
        CHECK_NEAR(0.0, m, 1e-5, "group %d mean", i);
        CHECK_NEAR(1.0, v, 1e-3, "group %d variance (eps 1e-5 shrinks it slightly)", i);
    }
    /* fused path equals SiLU of the plain one, and apply() reproduces forward */
    bfn_groupnorm_silu_forward(silu, mean, rstd, in, one, zero, B, C, HW, G);
    double e = 0.0;
    for (size_t i = 0; i < n; i++)
        e = fmax(e, fabs(silu[i] - out[i] / (1.0 + exp(-out[i]))));
    CHECK_NEAR(0.0, e, 1e-6, "max |fused − silu(groupnorm)|");
    bfn_groupnorm_silu_apply(again, in, mean, rstd, one, zero, B, C, HW, G);
    CHECK(memcmp(again, silu, sizeof(float) * n) == 0, "apply() reproduces forward bit for bit");
    free(in);
    free(out);
    free(mean);
    free(rstd);
    free(one);
    free(zero);
    free(silu);
    free(again);
}

/* ---- pointwise, linear, shape ---- */

typedef struct {
    float *in, *out;
    const float *r;
    size_t n;
} silu_ctx;

static double silu_loss(void *p)
{
    silu_ctx *c = p;
    bfn_silu_forward(c->out, c->in, c->n);
    return dot(c->out, c->r, c->n);
}

static void test_silu_gradients(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 8, 0);
    size_t n = 64;
    silu_ctx c = {rvec(n, &r, -6, 6), fvec(n), rvec(n, &r, -1, 1), n};
    float *din = fvec(n);
    silu_loss(&c);
    bfn_silu_backward(din, c.r, c.in, n);
    gc_var v[] = {{"in", c.in, din, n}};
    gradcheck("silu", silu_loss, &c, v, 1, 1e-2f, 1e-2, 1e-3, 64);
    float two = 2.0f, s2;
    bfn_silu_forward(&s2, &two, 1);
    CHECK_NEAR(2.0 / (1.0 + exp(-2.0)), s2, 1e-6, "silu(2)");
    free(c.in);
    free(c.out);
    free((float *)c.r);
    free(din);
}

typedef struct {
    int B, nin, nout;
    float *in, *w, *b, *out;
    const float *r;
} lin_ctx;

static double lin_loss(void *p)
{
    lin_ctx *c = p;
    bfn_linear_forward(c->out, c->in, c->w, c->b, c->B, c->nin, c->nout);
    return dot(c->out, c->r, (size_t)c->B * c->nout);
}

static void test_linear_gradients(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 9, 0);
    int B = 3, nin = 7, nout = 5;
    lin_ctx c = {B, nin, nout, rvec(B * nin, &r, -1, 1), rvec(nout * nin, &r, -1, 1),
                 rvec(nout, &r, -1, 1), fvec(B * nout), rvec(B * nout, &r, -1, 1)};
    float *din = fvec(B * nin), *dw = fvec(nout * nin), *db = fvec(nout);
    lin_loss(&c);
    /* forward against the definition */
    double e = 0.0;
    for (int b = 0; b < B; b++)
        for (int o = 0; o < nout; o++)
            e = fmax(e, fabs(c.out[b * nout + o] - (c.b[o] + dot(c.in + b * nin, c.w + o * nin, nin))));
    CHECK_NEAR(0.0, e, 1e-5, "max |linear − definition|");
    bfn_linear_backward(din, dw, db, c.r, c.in, c.w, B, nin, nout);
    gc_var v[] = {{"in", c.in, din, B * nin}, {"w", c.w, dw, nout * nin}, {"bias", c.b, db, nout}};
    gradcheck("linear", lin_loss, &c, v, 3, 1e-2f, 1e-2, 1e-3, 100);
    free(c.in);
    free(c.w);
    free(c.b);
    free(c.out);
    free((float *)c.r);
    free(din);
    free(dw);
    free(db);
}

static void test_timestep_embedding_values(void)
{
    int D = 8;
    float t[2] = {0.0f, 0.25f}, e[16];
    bfn_timestep_embedding(e, t, 2, D);
    for (int j = 0; j < 4; j++) {
        CHECK_NEAR(0.0, e[j], 0.0, "t=0: sin part %d", j);
        CHECK_NEAR(1.0, e[4 + j], 0.0, "t=0: cos part %d", j);
        double f = pow(10000.0, -j / 3.0), a = 250.0 * f;
        CHECK_NEAR(sin(a), e[8 + j], 1e-6, "t=0.25: sin(1000 t f_%d)", j);
        CHECK_NEAR(cos(a), e[12 + j], 1e-6, "t=0.25: cos(1000 t f_%d)", j);
    }
}

typedef struct {
    int B, D;
    float *w1, *b1, *w2, *b2, *e;
    const float *t, *r;
    bfn_temb_saved sv;
} temb_ctx;

static double temb_loss(void *p)
{
    temb_ctx *c = p;
    bfn_temb_params tp = {c->w1, c->b1, c->w2, c->b2};
    bfn_temb_forward(c->e, &c->sv, c->t, &tp, c->B, c->D);
    return dot(c->e, c->r, (size_t)c->B * c->D);
}

static void test_temb_mlp_gradients(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 10, 0);
    int B = 3, D = 8;
    size_t n = (size_t)B * D;
    float t[3] = {0.0f, 0.37f, 0.99f};
    temb_ctx c = {B, D, rvec(D * D, &r, -0.6f, 0.6f), rvec(D, &r, -0.3f, 0.3f),
                  rvec(D * D, &r, -0.6f, 0.6f), rvec(D, &r, -0.3f, 0.3f), fvec(n), t,
                  rvec(n, &r, -1, 1), {fvec(n), fvec(n), fvec(n), fvec(n)}};
    float *g1 = fvec(D * D), *gb1 = fvec(D), *g2 = fvec(D * D), *gb2 = fvec(D);
    float *ws = fvec(bfn_temb_workspace(B, D));
    bfn_temb_params tp = {c.w1, c.b1, c.w2, c.b2};
    bfn_temb_grads tg = {g1, gb1, g2, gb2};
    temb_loss(&c);
    bfn_temb_backward(&tg, c.r, &c.sv, &tp, ws, B, D);
    gc_var v[] = {{"lin1.w", c.w1, g1, D * D}, {"lin1.b", c.b1, gb1, D},
                  {"lin2.w", c.w2, g2, D * D}, {"lin2.b", c.b2, gb2, D}};
    gradcheck("temb", temb_loss, &c, v, 4, 1e-2f, 1e-2, 1e-3, 64);
    free(c.w1);
    free(c.b1);
    free(c.w2);
    free(c.b2);
    free(c.e);
    free((float *)c.r);
    free(c.sv.sin);
    free(c.sv.m1);
    free(c.sv.a1);
    free(c.sv.m2);
    free(g1);
    free(gb1);
    free(g2);
    free(gb2);
    free(ws);
}

typedef struct {
    int B, C, H, W, Cb, HW;
    float *in, *in2, *out;
    const float *r;
    const uint8_t *mask;
    float p;
    int kind; /* 0 upsample, 1 concat, 2 dropout, 3 add channel */
} shape_ctx;

static size_t shape_out_n(const shape_ctx *c)
{
    switch (c->kind) {
    case 0: return (size_t)c->B * c->C * 4 * c->H * c->W;
    case 1: return (size_t)c->B * (c->C + c->Cb) * c->HW;
    default: return (size_t)c->B * c->C * c->HW;
    }
}

static double shape_loss(void *p)
{
    shape_ctx *c = p;
    size_t n = shape_out_n(c);
    switch (c->kind) {
    case 0: bfn_upsample2x_forward(c->out, c->in, c->B, c->C, c->H, c->W); break;
    case 1: bfn_concat_forward(c->out, c->in, c->in2, c->B, c->C, c->Cb, c->HW); break;
    case 2: bfn_dropout_forward(c->out, c->in, c->mask, n, c->p); break;
    default:
        memcpy(c->out, c->in, sizeof(float) * n);
        bfn_add_channel_forward(c->out, c->in2, c->B, c->C, c->HW);
    }
    return dot(c->out, c->r, n);
}

static void test_upsample_values_and_gradients(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 11, 0);
    shape_ctx c = {.B = 2, .C = 3, .H = 3, .W = 4, .kind = 0};
    size_t nin = 2 * 3 * 12, nout = 4 * nin;
    c.in = rvec(nin, &r, -1, 1);
    c.out = fvec(nout);
    c.r = rvec(nout, &r, -1, 1);
    shape_loss(&c);
    int bad = 0;
    for (int bc = 0; bc < 6; bc++)
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 8; x++)
                bad += c.out[(size_t)bc * 48 + y * 8 + x] != c.in[(size_t)bc * 12 + (y / 2) * 4 + x / 2];
    CHECK(bad == 0, "%d upsampled values differ from their nearest source", bad);
    float *din = fvec(nin);
    bfn_upsample2x_backward(din, c.r, 2, 3, 3, 4);
    gc_var v[] = {{"in", c.in, din, nin}};
    gradcheck("upsample2x", shape_loss, &c, v, 1, 1e-2f, 1e-2, 1e-3, 100);
    free(c.in);
    free(c.out);
    free((float *)c.r);
    free(din);
}

static void test_concat_gradients(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 12, 0);
    shape_ctx c = {.B = 2, .C = 2, .Cb = 3, .HW = 5, .kind = 1};
    size_t na = 2 * 2 * 5, nb = 2 * 3 * 5, nout = na + nb;
    c.in = rvec(na, &r, -1, 1);
    c.in2 = rvec(nb, &r, -1, 1);
    c.out = fvec(nout);
    c.r = rvec(nout, &r, -1, 1);
    shape_loss(&c);
    CHECK(c.out[10] == c.in2[0] && c.out[9] == c.in[9] && c.out[25] == c.in[10],
          "concat places image 0's b after its a, then image 1");
    float *da = fvec(na), *db = fvec(nb);
    bfn_concat_backward(da, db, c.r, 2, 2, 3, 5);
    gc_var v[] = {{"a", c.in, da, na}, {"b", c.in2, db, nb}};
    gradcheck("concat", shape_loss, &c, v, 2, 1e-2f, 1e-2, 1e-3, 100);
    free(c.in);
    free(c.in2);
    free(c.out);
    free((float *)c.r);
    free(da);
    free(db);
}

static void test_dropout_fixed_mask_gradients(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 13, 0);
    size_t n = 60;
    uint8_t mask[60];
    bfn_rng mr;
    bfn_rng_init(&mr, 14, 0);
    bfn_dropout_mask(mask, n, 0.3f, &mr);
    shape_ctx c = {.B = 1, .C = 1, .HW = 60, .kind = 2, .mask = mask, .p = 0.3f};
    c.in = rvec(n, &r, -1, 1);
    c.out = fvec(n);
    c.r = rvec(n, &r, -1, 1);
    shape_loss(&c);
    int bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += fabsf(c.out[i] - (mask[i] ? c.in[i] / 0.7f : 0.0f)) > 1e-6f;
    CHECK(bad == 0, "%d outputs differ from mask·x/(1−p)", bad);
    float *din = fvec(n);
    bfn_dropout_backward(din, c.r, mask, n, 0.3f);
    gc_var v[] = {{"in", c.in, din, n}};
    gradcheck("dropout", shape_loss, &c, v, 1, 1e-2f, 1e-2, 1e-3, 60);
    free(c.in);
    free(c.out);
    free((float *)c.r);
    free(din);
}

static void test_dropout_mask_keeps_one_minus_p(void)
{
    size_t n = 200000;
    uint8_t *mask = malloc(n);
    bfn_rng r;
    bfn_rng_init(&r, 15, 0);
    float ps[3] = {0.0f, 0.1f, 0.5f};
    for (int k = 0; k < 3; k++) {
        bfn_dropout_mask(mask, n, ps[k], &r);
        size_t kept = 0;
        for (size_t i = 0; i < n; i++)
            kept += mask[i];
        double f = (double)kept / n, sd = sqrt(ps[k] * (1.0 - ps[k]) / n);
        CHECK_NEAR(1.0 - ps[k], f, 5 * sd + 1e-12, "kept fraction at p = %.1f", ps[k]);
    }
    free(mask);
}

static void test_add_channel_gradients(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 16, 0);
    shape_ctx c = {.B = 2, .C = 3, .HW = 4, .kind = 3};
    size_t n = 24;
    c.in = rvec(n, &r, -1, 1);
    c.in2 = rvec(6, &r, -1, 1);
    c.out = fvec(n);
    c.r = rvec(n, &r, -1, 1);
    shape_loss(&c);
    float *dx = fvec(n), *dv = fvec(6);
    memcpy(dx, c.r, sizeof(float) * n); /* d(x + v)/dx is the identity */
    bfn_add_channel_backward(dv, c.r, 2, 3, 4);
    gc_var v[] = {{"x", c.in, dx, n}, {"v", c.in2, dv, 6}};
    gradcheck("add_channel", shape_loss, &c, v, 2, 1e-2f, 1e-2, 1e-3, 100);
    free(c.in);
    free(c.in2);
    free(c.out);
    free((float *)c.r);
    free(dx);
    free(dv);
}

/* ---- attention ---- */

typedef struct {
    bfn_attn_shape s;
    int B;
    float *in, *out, *ws;
    float *p[6]; /* norm_w, norm_b, qkv_w, qkv_b, proj_w, proj_b */
    bfn_attn_saved sv;
    const float *r;
} attn_ctx;

static double attn_loss(void *v)
{
    attn_ctx *c = v;
    bfn_attn_params p = {c->p[0], c->p[1], c->p[2], c->p[3], c->p[4], c->p[5]};
    bfn_attention_forward(c->out, &c->sv, c->in, &p, c->ws, c->B, &c->s);
    return dot(c->out, c->r, (size_t)c->B * c->s.C * c->s.HW);
}

static void attn_setup(attn_ctx *c, bfn_rng *r, int B, int C, int HW, int heads, int groups)
{
    c->s = (bfn_attn_shape){.C = C, .HW = HW, .heads = heads, .groups = groups};
    c->B = B;
    size_t n = (size_t)B * C * HW;
    c->in = rvec(n, r, -1, 1);
    c->out = fvec(n);
    c->ws = fvec(bfn_attention_workspace(B, &c->s));
    c->p[0] = rvec(C, r, 0.5f, 1.5f);
    c->p[1] = rvec(C, r, -0.5f, 0.5f);
    c->p[2] = rvec((size_t)3 * C * C, r, -0.8f, 0.8f);
    c->p[3] = rvec(3 * C, r, -0.3f, 0.3f);
    c->p[4] = rvec((size_t)C * C, r, -0.5f, 0.5f);
    c->p[5] = rvec(C, r, -0.3f, 0.3f);
    c->sv.mean = fvec(B * groups);
    c->sv.rstd = fvec(B * groups);
    c->sv.qkv = fvec(3 * n);
    c->sv.att = fvec((size_t)B * heads * HW * HW);
    c->sv.o = fvec(n);
    c->r = rvec(n, r, -1, 1);
}

static void attn_free(attn_ctx *c)
{
    free(c->in);
    free(c->out);
    free(c->ws);
    for (int i = 0; i < 6; i++)
        free(c->p[i]);
    free(c->sv.mean);
    free(c->sv.rstd);
    free(c->sv.qkv);
    free(c->sv.att);
    free(c->sv.o);
    free((float *)c->r);
}

/* Straightforward double-precision attention block for one image. */
static void attn_reference(double *out, const attn_ctx *c, int b)
{
    int C = c->s.C, HW = c->s.HW, nh = c->s.heads, d = C / nh, G = c->s.groups, cg = C / G;
    const float *x = c->in + (size_t)b * C * HW;
    double *h = calloc((size_t)C * HW, sizeof(double)), *qkv = calloc((size_t)3 * C * HW, sizeof(double));
    double *o = calloc((size_t)C * HW, sizeof(double)), *s = calloc(HW, sizeof(double));
    for (int g = 0; g < G; g++) {
        double m = 0.0, v = 0.0;
        for (int i = 0; i < cg * HW; i++)
            m += x[g * cg * HW + i];
        m /= cg * HW;
        for (int i = 0; i < cg * HW; i++)
            v += (x[g * cg * HW + i] - m) * (x[g * cg * HW + i] - m);
        v /= cg * HW;
        for (int ch = g * cg; ch < (g + 1) * cg; ch++)
            for (int i = 0; i < HW; i++)
                h[ch * HW + i] = (x[ch * HW + i] - m) / sqrt(v + 1e-5) * c->p[0][ch] + c->p[1][ch];
    }
    for (int co = 0; co < 3 * C; co++)
        for (int i = 0; i < HW; i++) {
            double a = c->p[3][co];
            for (int ci = 0; ci < C; ci++)
                a += c->p[2][co * C + ci] * h[ci * HW + i];
            qkv[co * HW + i] = a;
        }
    for (int hd = 0; hd < nh; hd++)
        for (int i = 0; i < HW; i++) {
            double mx = -1e300, z = 0.0;
            for (int j = 0; j < HW; j++) {
                double a = 0.0;
                for (int k = 0; k < d; k++)
                    a += qkv[(hd * d + k) * HW + i] * qkv[(C + hd * d + k) * HW + j];
                s[j] = a / sqrt((double)d);
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < HW; j++)
                z += (s[j] = exp(s[j] - mx));
            for (int k = 0; k < d; k++) {
                double a = 0.0;
                for (int j = 0; j < HW; j++)
                    a += s[j] / z * qkv[(2 * C + hd * d + k) * HW + j];
                o[(hd * d + k) * HW + i] = a;
            }
        }
    for (int co = 0; co < C; co++)
        for (int i = 0; i < HW; i++) {
            double a = c->p[5][co] + x[co * HW + i];
            for (int ci = 0; ci < C; ci++)
                a += c->p[4][co * C + ci] * o[ci * HW + i];
            out[co * HW + i] = a;
        }
    free(h);
    free(qkv);
    free(o);
    free(s);
}

/* A small block (2 channels a head, 12 positions: partial vectors), the
 * models' (64 channels in 4 heads at 7×7 and 8×8) and one past a single
 * pass of the score loop (80 positions, 32 channels a head). */
static void test_attention_matches_reference(void)
{
    static const int shapes[][4] = {{8, 12, 2, 4}, {64, 49, 4, 8}, {64, 64, 4, 8}, {64, 80, 2, 8}};
    bfn_rng r;
    bfn_rng_init(&r, 17, 0);
    for (int k = 0; k < 4; k++) {
        int C = shapes[k][0], HW = shapes[k][1], B = 2;
        attn_ctx c;
        attn_setup(&c, &r, B, C, HW, shapes[k][2], shapes[k][3]);
        attn_loss(&c);
        double *ref = calloc((size_t)C * HW, sizeof(double)), e = 0.0;
        for (int b = 0; b < B; b++) {
            attn_reference(ref, &c, b);
            for (int i = 0; i < C * HW; i++)
                e = fmax(e, fabs(c.out[(size_t)b * C * HW + i] - ref[i]));
        }
        CHECK_NEAR(0.0, e, 1e-4, "C %d, HW %d, %d heads: max |attention − double reference|", C,
                   HW, shapes[k][2]);
        free(ref);
        attn_free(&c);
    }
}

static void test_attention_gradients(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 18, 0);
    attn_ctx c;
    int B = 2, C = 8, HW = 9, heads = 2, groups = 2;
    attn_setup(&c, &r, B, C, HW, heads, groups);
    size_t n = (size_t)B * C * HW;
    float *din = fvec(n), *g[6];
    size_t sz[6] = {C, C, (size_t)3 * C * C, 3 * C, (size_t)C * C, C};
    for (int i = 0; i < 6; i++)
        g[i] = fvec(sz[i]);
    bfn_attn_params p = {c.p[0], c.p[1], c.p[2], c.p[3], c.p[4], c.p[5]};
    bfn_attn_grads ag = {g[0], g[1], g[2], g[3], g[4], g[5]};
    attn_loss(&c);
    bfn_attention_backward(din, &ag, c.r, c.in, &c.sv, &p, c.ws, B, &c.s, 1);
    gc_var v[] = {{"in", c.in, din, n},          {"norm.w", c.p[0], g[0], sz[0]},
                  {"norm.b", c.p[1], g[1], sz[1]}, {"qkv.w", c.p[2], g[2], sz[2]},
                  {"qkv.b", c.p[3], g[3], sz[3]},  {"proj.w", c.p[4], g[4], sz[4]},
                  {"proj.b", c.p[5], g[5], sz[5]}};
    gradcheck("attention", attn_loss, &c, v, 7, 1e-2f, 1e-2, 1e-3, 80);
    free(din);
    for (int i = 0; i < 6; i++)
        free(g[i]);
    attn_free(&c);
}


/* ---- direct kernels, pieces, vector kernels, pool ---- */

/* Shapes the direct kernels treat differently: stride-1 "same" (padded
 * grid, rows of 28, 14, 7 and 5 wide), 1x1 in place, stride 2 (packed
 * panels); channel counts at, past and short of one register tile. */
static const bfn_conv2d_shape direct_cases[] = {
    {.cin = 3, .h = 28, .w = 28, .cout = 8, .k = 3, .stride = 1, .pad = 1},
    {.cin = 16, .h = 14, .w = 14, .cout = 32, .k = 3, .stride = 1, .pad = 1},
    {.cin = 5, .h = 7, .w = 7, .cout = 16, .k = 3, .stride = 1, .pad = 1},
    {.cin = 4, .h = 6, .w = 5, .cout = 24, .k = 5, .stride = 1, .pad = 2},
    {.cin = 7, .h = 9, .w = 11, .cout = 8, .k = 1, .stride = 1, .pad = 0},
    {.cin = 6, .h = 14, .w = 14, .cout = 16, .k = 3, .stride = 2, .pad = 1},
    {.cin = 8, .h = 14, .w = 14, .cout = 64, .k = 3, .stride = 1, .pad = 1},
    {.cin = 9, .h = 5, .w = 6, .cout = 48, .k = 1, .stride = 1, .pad = 0},
    /* output channels that leave a partial register tile: the network's
     * 2-channel output conv, and 3, 5, 13 through each kind of shape */
    {.cin = 32, .h = 28, .w = 28, .cout = 2, .k = 3, .stride = 1, .pad = 1},
    {.cin = 5, .h = 7, .w = 7, .cout = 3, .k = 3, .stride = 1, .pad = 1},
    {.cin = 6, .h = 14, .w = 14, .cout = 5, .k = 3, .stride = 2, .pad = 1},
    {.cin = 9, .h = 5, .w = 6, .cout = 13, .k = 1, .stride = 1, .pad = 0},
    /* the channel-vector kernel's shapes: 64 and 128 channels at 7×7, 5×6 */
    {.cin = 12, .h = 7, .w = 7, .cout = 128, .k = 3, .stride = 1, .pad = 1},
    {.cin = 3, .h = 5, .w = 6, .cout = 64, .k = 3, .stride = 1, .pad = 1},
    /* and its narrower tiles past the last 64 channels: 96, 48, 144 (a
     * base-48 network's 14×14 and 7×7 layers), 16, 32 */
    {.cin = 96, .h = 14, .w = 14, .cout = 96, .k = 3, .stride = 1, .pad = 1},
    {.cin = 7, .h = 7, .w = 7, .cout = 48, .k = 3, .stride = 1, .pad = 1},
    {.cin = 10, .h = 7, .w = 7, .cout = 144, .k = 1, .stride = 1, .pad = 0},
    {.cin = 4, .h = 5, .w = 6, .cout = 16, .k = 3, .stride = 1, .pad = 1},
    {.cin = 6, .h = 9, .w = 11, .cout = 32, .k = 3, .stride = 1, .pad = 1},
};
#define N_DIRECT ((int)(sizeof direct_cases / sizeof direct_cases[0]))

/* Every kernel set this CPU has, on ranges that cut rows anywhere, against
 * the double-precision definition; and the same bits whatever the split. */
static void test_direct_conv_kernels_match_definition_and_any_split(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 31, 0);
    int best = bfn_convk_isa(), runs = 0, cv_runs = 0;
    for (int isa = BFN_CONVK_AVX2; isa <= best; isa++) {
        for (int c = 0; c < N_DIRECT; c++) {
            const bfn_conv2d_shape *s = &direct_cases[c];
            int n1 = bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s);
            size_t nin = (size_t)s->cin * s->h * s->w, nout = (size_t)s->cout * n1;
            size_t nw = (size_t)s->cout * s->cin * s->k * s->k;
            float *in = rvec(nin, &r, -1, 1), *w = rvec(nw, &r, -1, 1);
            float *bias = rvec(s->cout, &r, -1, 1), *add = rvec(nout, &r, -1, 1);
            float *whole = fvec(nout), *split = fvec(nout);
            float *ws = fvec(bfn_convk_workspace(s));
            double *ref = calloc(nout, sizeof(double));
            conv_direct(ref, in, w, bias, 1, s);
            bfn_convk_forward_isa(isa, whole, in, w, bias, add, ws, s, 0, n1);
            double worst = 0.0;
            for (size_t i = 0; i < nout; i++)
                worst = fmax(worst, fabs(whole[i] - (ref[i] + add[i])));
            CHECK_NEAR(0.0, worst, 2e-6 * s->cin * s->k * s->k,
                       "isa %d case %d: max |kernel − definition|", isa, c);
            /* cuts at odd places, computed last piece first */
            int cuts[] = {n1, n1 * 2 / 3 + 1, n1 / 3 - 1, 5, 0};
            for (int i = 0; i + 1 < 5; i++)
                if (cuts[i + 1] < cuts[i] && cuts[i + 1] >= 0)
                    bfn_convk_forward_isa(isa, split, in, w, bias, add, ws, s, cuts[i + 1], cuts[i]);
            CHECK(memcmp(whole, split, sizeof(float) * nout) == 0,
                  "isa %d case %d: split ranges give the same bits", isa, c);
            /* add may be out itself, bias may be absent */
            memcpy(split, add, sizeof(float) * nout);
            bfn_convk_forward_isa(isa, split, in, w, NULL, split, ws, s, 0, n1);
            worst = 0.0;
            for (size_t i = 0; i < nout; i++)
                worst = fmax(worst, fabs(split[i] - (ref[i] - bias[i / n1] + add[i])));
            CHECK_NEAR(0.0, worst, 2e-6 * s->cin * s->k * s->k,
                       "isa %d case %d: in-place add, no bias", isa, c);
            if (isa == BFN_CONVK_AVX512 && bfn_convk_cv_supported(s)) {
                /* the channel-vector kernel: the same bits, whole or split, with
                 * the addend in place */
                float *wt = fvec(nw);
                bfn_convk_cv_transpose(wt, w, s);
                memset(split, 0, sizeof(float) * nout);
                for (int i = 0; i + 1 < 5; i++)
                    if (cuts[i + 1] < cuts[i] && cuts[i + 1] >= 0)
                        bfn_convk_forward_cv(split, in, wt, bias, add, ws, s, cuts[i + 1],
                                             cuts[i]);
                CHECK(memcmp(whole, split, sizeof(float) * nout) == 0,
                      "case %d: channel-vector kernel, split ranges, same bits as the direct one",
                      c);
                memcpy(split, add, sizeof(float) * nout);
                bfn_convk_forward_cv(split, in, wt, bias, split, ws, s, 0, n1);
                CHECK(memcmp(whole, split, sizeof(float) * nout) == 0,
                      "case %d: channel-vector kernel, addend in place", c);
                cv_runs++;
                free(wt);
            }
            runs++;
            free(in), free(w), free(bias), free(add), free(whole), free(split), free(ws);
            free(ref);
        }
    }
    printf("  kernel sets on this CPU: %s, %d shape runs (%d channel-vector)\n",
           best == BFN_CONVK_AVX512 ? "AVX2, AVX-512" : best == BFN_CONVK_AVX2 ? "AVX2" : "none",
           runs, cv_runs);
    CHECK(cv_runs >= (best == BFN_CONVK_AVX512 ? 8 : 0), "%d shapes through the channel-vector kernel",
          cv_runs);
}

/* Upsampling 2× then a 3×3 conv as four 2×2 phase convs on the small
 * image: against the double-precision definition of conv(upsample(x))
 * (the summed weights round differently, so to rounding), the same bits
 * for any split of the small image's positions, with and without bias and
 * addend (in place too), the same bits with AVX2's kernels as AVX-512's;
 * and only the shapes it was made for. */
static void test_upsampling_conv_phases_match_upsample_then_conv(void)
{
    static const bfn_conv2d_shape cases[] = {
        {.cin = 64, .h = 14, .w = 14, .cout = 64, .k = 3, .stride = 1, .pad = 1},
        {.cin = 64, .h = 28, .w = 28, .cout = 64, .k = 3, .stride = 1, .pad = 1},
        {.cin = 5, .h = 16, .w = 12, .cout = 128, .k = 3, .stride = 1, .pad = 1},
        {.cin = 3, .h = 2, .w = 4, .cout = 64, .k = 3, .stride = 1, .pad = 1},
        {.cin = 96, .h = 28, .w = 28, .cout = 96, .k = 3, .stride = 1, .pad = 1},
        {.cin = 9, .h = 14, .w = 10, .cout = 48, .k = 3, .stride = 1, .pad = 1},
    };
    bfn_rng r;
    bfn_rng_init(&r, 37, 0);
    int runs = 0, avx2_compared = 0;
    for (int c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++) {
        const bfn_conv2d_shape *s = &cases[c];
        if (!bfn_convk_up_supported(s))
            continue;
        int h = s->h / 2, w = s->w / 2, n1 = s->h * s->w, ns = h * w;
        size_t nin = (size_t)s->cin * h * w, nout = (size_t)s->cout * n1;
        size_t nw = (size_t)s->cout * s->cin * 9;
        float *in = rvec(nin, &r, -1, 1), *wgt = rvec(nw, &r, -1, 1);
        float *bias = rvec(s->cout, &r, -1, 1), *add = rvec(nout, &r, -1, 1);
        float *up = fvec((size_t)s->cin * n1), *wu = fvec(bfn_convk_up_weights_size(s));
        float *whole = fvec(nout), *split = fvec(nout), *ws = fvec(bfn_convk_up_workspace(s));
        double *ref = calloc(nout, sizeof(double));
        bfn_upsample2x_forward(up, in, 1, s->cin, h, w);
        conv_direct(ref, up, wgt, bias, 1, s);
        bfn_convk_up_weights(wu, wgt, s);
        bfn_convk_forward_up(whole, in, wu, bias, NULL, ws, s, 0, ns);
        double worst = 0.0;
        for (size_t i = 0; i < nout; i++)
            worst = fmax(worst, fabs(whole[i] - ref[i]));
        CHECK_NEAR(0.0, worst, 2e-6 * s->cin * 9, "case %d: max |phases − upsample then conv|", c);
        /* cuts at odd places (kept in order on tiny images), last piece first */
        int cuts[] = {0, 1, ns / 3 - 1, ns * 2 / 3 + 1, ns};
        for (int i = 1; i < 5; i++)
            cuts[i] = cuts[i] < cuts[i - 1] ? cuts[i - 1] : cuts[i] > ns ? ns : cuts[i];
        memset(split, 0, sizeof(float) * nout);
        for (int i = 3; i >= 0; i--)
            if (cuts[i + 1] > cuts[i])
                bfn_convk_forward_up(split, in, wu, bias, NULL, ws, s, cuts[i], cuts[i + 1]);
        CHECK(memcmp(whole, split, sizeof(float) * nout) == 0,
              "case %d: split ranges give the same bits", c);
        if (bfn_convk_isa() == BFN_CONVK_AVX512) { /* AVX2's weights and tile: the same bits */
            int prev = bfn_convk_set_isa(BFN_CONVK_AVX2);
            float *wu2 = fvec(bfn_convk_up_weights_size(s));
            bfn_convk_up_weights(wu2, wgt, s);
            bfn_convk_forward_up(split, in, wu2, bias, NULL, ws, s, 0, ns);
            bfn_convk_set_isa(prev);
            CHECK(memcmp(wu, wu2, sizeof(float) * bfn_convk_up_weights_size(s)) == 0 &&
                      memcmp(whole, split, sizeof(float) * nout) == 0,
                  "case %d: the AVX2 phase weights and outputs have AVX-512's bits", c);
            free(wu2);
            avx2_compared++;
        }
        memcpy(split, add, sizeof(float) * nout);
        bfn_convk_forward_up(split, in, wu, NULL, split, ws, s, 0, ns);
        worst = 0.0;
        for (size_t i = 0; i < nout; i++)
            worst = fmax(worst, fabs(split[i] - (ref[i] - bias[i / n1] + add[i])));
        CHECK_NEAR(0.0, worst, 2e-6 * s->cin * 9, "case %d: addend in place, no bias", c);
        runs++;
        free(in), free(wgt), free(bias), free(add), free(up), free(wu), free(whole), free(split);
        free(ws), free(ref);
    }
    int isa = bfn_convk_isa();
    printf("  %d upsampling-conv shapes run (%s), %d compared with the AVX2 kernels\n", runs,
           isa == BFN_CONVK_AVX512 ? "AVX-512" : isa == BFN_CONVK_AVX2 ? "AVX2" : "no AVX2",
           avx2_compared);
    CHECK(runs == (isa >= BFN_CONVK_AVX2 ? 6 : 0), "%d of 6 shapes supported", runs);
    CHECK(avx2_compared == (isa == BFN_CONVK_AVX512 ? 6 : 0), "%d of 6 shapes compared with AVX2",
          avx2_compared);
    bfn_conv2d_shape odd = cases[0], small = cases[0], strided = cases[0], wide = cases[0];
    odd.h = 13;
    small.cout = 40;
    strided.stride = 2;
    wide.h = wide.w = 34; /* 17 × 17 = 289 small positions, past the channel-vector kernel */
    CHECK(!bfn_convk_up_supported(&odd) && !bfn_convk_up_supported(&small) &&
              !bfn_convk_up_supported(&strided) && !bfn_convk_up_supported(&wide),
          "odd height, 40 output channels, stride 2 and 17x17 small images are not supported");
}

static void test_direct_weight_grad_matches_gemm(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 32, 0);
    int checked = 0;
    for (int c = 0; c < N_DIRECT; c++) {
        const bfn_conv2d_shape *s = &direct_cases[c];
        if (!bfn_convk_dw_supported(s))
            continue;
        int n1 = bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s), kk = s->cin * s->k * s->k;
        size_t nin = (size_t)s->cin * s->h * s->w, nout = (size_t)s->cout * n1;
        float *in = rvec(nin, &r, -1, 1), *dout = rvec(nout, &r, -1, 1);
        float *dw = rvec((size_t)s->cout * kk, &r, -1, 1), *ref = fvec((size_t)s->cout * kk);
        float *col = fvec((size_t)kk * n1), *ws = fvec(bfn_convk_dw_workspace(s));
        memcpy(ref, dw, sizeof(float) * s->cout * kk);
        bfn_im2col(col, n1, in, s);
        bfn_gemm_naive(0, 1, s->cout, kk, n1, 1.0f, dout, n1, col, n1, 1.0f, ref, kk);
        /* transposed: dwᵀ starts as the transpose of dw's start */
        float *dwt = fvec((size_t)s->cout * kk);
        for (int co = 0; co < s->cout; co++)
            for (int j = 0; j < kk; j++)
                dwt[(size_t)j * s->cout + co] = dw[(size_t)co * kk + j];
        bfn_convk_weight_grad(dw, 0, dout, in, ws, s);
        bfn_convk_weight_grad(dwt, 1, dout, in, ws, s);
        double worst = 0.0;
        int same = 1;
        for (int co = 0; co < s->cout; co++)
            for (int j = 0; j < kk; j++) {
                worst = fmax(worst, fabs(dw[(size_t)co * kk + j] - ref[(size_t)co * kk + j]));
                same &= dw[(size_t)co * kk + j] == dwt[(size_t)j * s->cout + co];
            }
        CHECK_NEAR(0.0, worst, 2e-6 * n1, "case %d: max |kernel dW − gemm dW| (accumulated)", c);
        CHECK(same, "case %d: transposed layout holds the same values", c);
        free(dwt);
        checked++;
        free(in), free(dout), free(dw), free(ref), free(col), free(ws);
    }
    CHECK(checked >= (bfn_convk_isa() == BFN_CONVK_AVX512 ? 4 : 0),
          "%d shapes went through the dW kernel", checked);
}

/* The layer's forward in its fixed pieces, pieces computed in either order
 * and by the range function, gives identical bits; the backward through
 * the flipped kernel equals the col2im adjoint. */
static void test_conv_pieces_are_fixed_and_transposed_backward_matches_col2im(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 33, 0);
    for (int c = 0; c < N_DIRECT; c++) {
        const bfn_conv2d_shape *s = &direct_cases[c];
        int n1 = bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s), P = bfn_conv2d_pieces(s);
        size_t nin = (size_t)s->cin * s->h * s->w, nout = (size_t)s->cout * n1;
        size_t nw = (size_t)s->cout * s->cin * s->k * s->k;
        float *in = rvec(nin, &r, -1, 1), *w = rvec(nw, &r, -1, 1), *bias = rvec(s->cout, &r, -1, 1);
        float *a = fvec(nout), *b = fvec(nout), *ws = fvec(bfn_conv2d_workspace(s, 1));
        bfn_conv2d_forward(a, in, w, bias, ws, 1, s, 0);
        int covered = 0;
        for (int q = P - 1; q >= 0; q--) {
            int p0, p1;
            bfn_conv2d_piece(s, q, &p0, &p1);
            covered += p1 - p0;
            bfn_conv2d_forward_range(b, in, w, bias, NULL, ws + (size_t)q * bfn_conv2d_piece_ws(s),
                                     s, p0, p1);
        }
        CHECK(covered == n1 && memcmp(a, b, sizeof(float) * nout) == 0,
              "case %d: %d pieces cover %d of %d positions with the same bits", c, P, covered, n1);
        if (bfn_conv2d_transposable(s)) {
            float *dout = rvec(nout, &r, -1, 1), *wt = fvec(bfn_conv2d_flipped_size(s));
            float *d1 = rvec(nin, &r, -1, 1), *d2 = fvec(nin);
            float *col = fvec(bfn_conv2d_col_size(s)), *dcol = fvec((size_t)s->cin * s->k * s->k * n1);
            memcpy(d2, d1, sizeof(float) * nin);
            bfn_conv2d_flip_weights(wt, w, s);
            bfn_conv2d_backward_image(d1, 1, NULL, NULL, dout, in, w, wt, NULL, col, s);
            bfn_gemm_naive(1, 0, s->cin * s->k * s->k, n1, s->cout, 1.0f, w, s->cin * s->k * s->k,
                           dout, n1, 0.0f, dcol, n1);
            bfn_col2im(d2, dcol, n1, s);
            double worst = 0.0;
            for (size_t i = 0; i < nin; i++)
                worst = fmax(worst, fabs(d1[i] - d2[i]));
            CHECK_NEAR(0.0, worst, 2e-6 * s->cout * s->k * s->k,
                       "case %d: din by flipped kernel vs col2im", c);
            /* din_accumulate = 0 overwrites */
            bfn_conv2d_backward_image(d1, 0, NULL, NULL, dout, in, w, wt, NULL, col, s);
            memset(d2, 0, sizeof(float) * nin);
            bfn_col2im(d2, dcol, n1, s);
            worst = 0.0;
            for (size_t i = 0; i < nin; i++)
                worst = fmax(worst, fabs(d1[i] - d2[i]));
            CHECK_NEAR(0.0, worst, 2e-6 * s->cout * s->k * s->k, "case %d: din overwritten", c);
            free(dout), free(wt), free(d1), free(d2), free(col), free(dcol);
        }
        free(in), free(w), free(bias), free(a), free(b), free(ws);
    }
}

/* The 8-wide kernels against the plain C ones, on lengths that leave every
 * tail size, with values that reach the exp clamp; and NaN propagates.
 * The vector code forms v = a·x + c with one rounding (FMA), the C code
 * with two; exp turns that 1-ulp difference in v into a relative
 * difference of about |v| ulp, which the tolerances allow for. */
static void vector_vs_scalar(int level)
{
    const bfn_vec_kernels *c = bfn_vec_kernels_get(0), *v = bfn_vec_kernels_get(level);
    if (!v) {
        printf("  no level %d kernels on this CPU: skipped\n", level);
        return;
    }
    bfn_rng r;
    bfn_rng_init(&r, 34, 0);
    double worst = 0.0, worst_sum = 0.0, worst_dot = 0.0; /* in units of the tolerance */
    for (size_t n = 1; n <= 67; n += 3) {
        float *x = rvec(n, &r, -30, 30), *d = rvec(n, &r, -2, 2);
        float *yc = fvec(n), *yv = fvec(n), *dc = fvec(n), *dv = fvec(n);
        uint8_t *mask = malloc(n);
        for (size_t i = 0; i < n; i++)
            mask[i] = (uint8_t)(i % 3 != 0);
        x[0] = -100.0f; /* past the clamp */
        for (int silu = 0; silu <= 1; silu++) {
            c->affine(yc, x, n, 0.7f, 0.2f, silu);
            v->affine(yv, x, n, 0.7f, 0.2f, silu);
            for (size_t i = 0; i < n; i++) {
                double vv = fabs(0.7 * x[i] + 0.2);
                worst = fmax(worst, fabs(yc[i] - yv[i]) / (1e-6 * (1.0 + vv) * fabs(yc[i]) + 1e-37));
            }
        }
        memcpy(dc, d, sizeof(float) * n);
        memcpy(dv, d, sizeof(float) * n);
        double s1 = 0, s2 = 0, t1 = 0, t2 = 0, diff = 0, diffx = 0, ad = 0;
        c->silu_grad_sums(dc, x, n, 0.3f, -0.1f, &s1, &t1);
        v->silu_grad_sums(dv, x, n, 0.3f, -0.1f, &s2, &t2);
        for (size_t i = 0; i < n; i++) {
            double vv = fabs(0.3 * x[i] - 0.1);
            worst = fmax(worst, fabs(dc[i] - dv[i]) / (1e-6 * (1.0 + vv) * fabs(d[i]) + 1e-37));
            diff += fabs(dc[i] - dv[i]);
            diffx += fabs((double)(dc[i] - dv[i]) * x[i]);
            ad += fabs(dc[i]) + fabs((double)dc[i] * x[i]);
        }
        /* the sums differ by what their terms differ by, plus double rounding */
        worst_sum = fmax(worst_sum, fabs(s1 - s2) / (diff + 1e-12 * ad + 1e-300));
        worst_sum = fmax(worst_sum, fabs(t1 - t2) / (diffx + 1e-12 * ad + 1e-300));
        double ax = 0.0;
        for (size_t i = 0; i < n; i++)
            ax += fabs(x[i]) + fabs((double)d[i] * x[i]) + fabs(d[i]);
        /* the statistics: 32 lanes in double, one tree, so the same bits */
        double sc = c->sum(x, n), sv = v->sum(x, n), qc = c->sumsq_dev(x, n, 0.5),
               qv = v->sumsq_dev(x, n, 0.5);
        CHECK(sc == sv && qc == qv, "n = %zu: sum %.17g vs %.17g, sum of squares %.17g vs %.17g",
              n, sc, sv, qc, qv);
        s1 = s2 = t1 = t2 = 0;
        c->sums2(d, x, n, &s1, &t1);
        v->sums2(d, x, n, &s2, &t2);
        worst_sum = fmax(worst_sum, (fabs(s1 - s2) + fabs(t1 - t2)) / (1e-12 * ax));
        for (int acc = 0; acc <= 1; acc++) {
            for (size_t i = 0; i < n; i++)
                yc[i] = yv[i] = (float)i;
            c->lincomb(yc, d, x, n, 0.5f, -0.25f, 0.125f, acc);
            v->lincomb(yv, d, x, n, 0.5f, -0.25f, 0.125f, acc);
            /* relative to the terms' size: the two round the sum differently */
            for (size_t i = 0; i < n; i++)
                worst = fmax(worst, fabs(yc[i] - yv[i]) /
                                        (1e-6 * (fabs(0.5 * d[i]) + fabs(0.25 * x[i]) + 0.125 + i)));
        }
        double ec = c->exp_shift(yc, x, n, 5.0f), ev = v->exp_shift(yv, x, n, 5.0f);
        for (size_t i = 0; i < n; i++)
            worst = fmax(worst, fabs(yc[i] - yv[i]) / (4e-7 * fabs(yc[i]) + 1e-37));
        worst_sum = fmax(worst_sum, fabs(ec - ev) / (4e-7 * ec));
        if (level == 2) { /* AVX2 and AVX-512: the same exponentials, the same sum */
            const bfn_vec_kernels *v2 = bfn_vec_kernels_get(1);
            float *y2 = fvec(n);
            double e2 = v2->exp_shift(y2, x, n, 5.0f);
            CHECK(e2 == ev && memcmp(y2, yv, sizeof(float) * n) == 0,
                  "n = %zu: softmax exponentials and their sum (%.17g vs %.17g) as AVX2's", n, ev, e2);
            free(y2);
        }
        c->mask_scale(yc, x, mask, n, 1.25f);
        v->mask_scale(yv, x, mask, n, 1.25f);
        c->add_const(dc, x, n, 0.5f);
        v->add_const(dv, x, n, 0.5f);
        int exact = memcmp(yc, yv, sizeof(float) * n) == 0 && memcmp(dc, dv, sizeof(float) * n) == 0;
        c->add(dc, x, n);
        v->add(dv, x, n);
        exact = exact && memcmp(dc, dv, sizeof(float) * n) == 0;
        CHECK(exact, "n = %zu: mask_scale, add_const, add give the same bits", n);
        /* dot products: the same bits (a fixed order of fused multiply-adds),
         * near the double-precision value */
        float w3[3 * 67], dot_c[3], dot_v[3];
        for (size_t i = 0; i < 3 * n; i++)
            w3[i] = (float)(2.0 * bfn_rng_uniform(&r) - 1.0);
        c->dots(dot_c, x, w3, n, 3);
        v->dots(dot_v, x, w3, n, 3);
        CHECK(memcmp(dot_c, dot_v, sizeof dot_c) == 0,
              "n = %zu: dot products give the same bits (%.9g %.9g %.9g vs %.9g %.9g %.9g)", n,
              dot_c[0], dot_c[1], dot_c[2], dot_v[0], dot_v[1], dot_v[2]);
        for (int o = 0; o < 3; o++) {
            double ref = 0.0, mag = 0.0;
            for (size_t i = 0; i < n; i++)
                ref += (double)x[i] * w3[o * n + i], mag += fabs((double)x[i] * w3[o * n + i]);
            worst_dot = fmax(worst_dot, fabs(dot_c[o] - ref) / (1e-6 * mag + 1e-30));
        }
        free(x), free(d), free(yc), free(yv), free(dc), free(dv), free(mask);
    }
    printf("  level %d: worst difference / tolerance: elementwise %.3f, sums %.3f, dot products "
           "against double %.3f\n",
           level, worst, worst_sum, worst_dot);
    CHECK(worst_dot <= 1.0, "dot products within 1e-6 of their terms' magnitude (worst %.3f of it)",
          worst_dot);
    CHECK(worst <= 1.0, "elementwise results within tolerance (worst %.3f of it)", worst);
    CHECK(worst_sum <= 1.0, "sums within tolerance (worst %.3f of it)", worst_sum);
    float nan_in[9], out[9];
    for (int i = 0; i < 9; i++)
        nan_in[i] = i == 4 ? NAN : 1.0f;
    v->affine(out, nan_in, 9, 1.0f, 0.0f, 1);
    CHECK(isnan(out[4]) && !isnan(out[3]), "SiLU of NaN is NaN, neighbours unaffected");
}

static void test_vector_kernels_match_scalar_versions(void)
{
    vector_vs_scalar(1); /* AVX2 */
    vector_vs_scalar(2); /* AVX-512 */
}

static void test_dropout_mask_range_matches_whole_mask(void)
{
    bfn_rng r, w;
    bfn_rng_init(&r, 35, 0);
    size_t n = 101;
    uint8_t whole[101], part[101];
    w = r;
    bfn_dropout_mask(whole, n, 0.3f, &w);
    int bad = 0;
    for (size_t a = 0; a < n; a += 7)
        for (size_t b = a; b <= n; b += 13) {
            bfn_dropout_mask_range(part, a, b, 0.3f, &r);
            bad += b > a && memcmp(part, whole + a, b - a) != 0;
        }
    CHECK(bad == 0, "%d sub-ranges differ from the whole mask", bad);
}

typedef struct {
    atomic_int hits[8];
    int order_bad;
    atomic_int phase_count;
    bfn_barrier bar;
} pool_ctx;

static void pool_fn(void *arg, int tid, int n)
{
    pool_ctx *c = arg;
    atomic_fetch_add(&c->hits[tid], 1);
    for (int phase = 0; phase < 50; phase++) {
        atomic_fetch_add(&c->phase_count, 1);
        bfn_barrier_wait(&c->bar);
        /* after the barrier every thread has counted this phase */
        if (atomic_load(&c->phase_count) < (phase + 1) * n)
            c->order_bad = 1;
        bfn_barrier_wait(&c->bar);
    }
}

static void test_pool_runs_each_thread_once_and_barrier_separates_phases(void)
{
    bfn_pool *p = bfn_pool_create();
    CHECK(p != NULL, "pool created");
    for (int n = 1; n <= 3; n++) {
        for (int rep = 0; rep < 20; rep++) {
            pool_ctx c;
            memset(&c, 0, sizeof c);
            for (int i = 0; i < 8; i++)
                atomic_init(&c.hits[i], 0);
            atomic_init(&c.phase_count, 0);
            int used = bfn_pool_reserve(p, n);
            bfn_barrier_init(&c.bar, used);
            int ran = bfn_pool_run(p, used, pool_fn, &c);
            int bad = ran != used;
            for (int i = 0; i < 8; i++)
                bad += atomic_load(&c.hits[i]) != (i < used ? 1 : 0);
            CHECK(bad == 0 && !c.order_bad, "n = %d rep %d: each of %d threads ran once, phases "
                  "ordered", n, rep, used);
        }
    }
    bfn_pool_destroy(p);
}

int main(void)
{
    RUN(test_im2col_matches_direct_indexing);
    RUN(test_col2im_is_adjoint_of_im2col);
    RUN(test_conv_forward_matches_direct_loop);
    RUN(test_conv3x3_stride1_gradients);
    RUN(test_conv3x3_stride2_gradients);
    RUN(test_conv1x1_gradients);
    RUN(test_conv_backward_accumulates);
    RUN(test_groupnorm_gradients);
    RUN(test_groupnorm_silu_gradients);
    RUN(test_groupnorm_output_has_zero_mean_unit_variance_per_group);
    RUN(test_silu_gradients);
    RUN(test_linear_gradients);
    RUN(test_timestep_embedding_values);
    RUN(test_temb_mlp_gradients);
    RUN(test_upsample_values_and_gradients);
    RUN(test_concat_gradients);
    RUN(test_dropout_fixed_mask_gradients);
    RUN(test_dropout_mask_keeps_one_minus_p);
    RUN(test_add_channel_gradients);
    RUN(test_attention_matches_reference);
    RUN(test_attention_gradients);
    RUN(test_direct_conv_kernels_match_definition_and_any_split);
    RUN(test_upsampling_conv_phases_match_upsample_then_conv);
    RUN(test_direct_weight_grad_matches_gemm);
    RUN(test_conv_pieces_are_fixed_and_transposed_backward_matches_col2im);
    RUN(test_vector_kernels_match_scalar_versions);
    RUN(test_dropout_mask_range_matches_whole_mask);
    RUN(test_pool_runs_each_thread_once_and_barrier_separates_phases);
    return check_finish();
}
