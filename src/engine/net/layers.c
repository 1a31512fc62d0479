/* Pointwise, linear and shape layers, dropout and the time embedding. */
#include <math.h>
#include <string.h>

#include "bfn/gemm.h"
#include "net/layers.h"
#include "net/vec.h"

void bfn_silu_forward(float *out, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = in[i] * bfn_sigmoidf(in[i]);
}

/* d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x))) */
void bfn_silu_backward(float *din, const float *dout, const float *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float s = bfn_sigmoidf(in[i]);
        din[i] += dout[i] * s * (1.0f + in[i] * (1.0f - s));
    }
}

/* Each output a fixed-order dot product (bfn_vec_dots), not a BLAS call:
 * the same bits on every CPU, BLAS build and batch size. */
void bfn_linear_forward(float *out, const float *in, const float *w, const float *bias, int B,
                        int nin, int nout)
{
    for (int b = 0; b < B; b++) {
        float *y = out + (size_t)b * nout;
        bfn_vec_dots(y, in + (size_t)b * nin, w, (size_t)nin, (size_t)nout);
        if (bias)
            for (int o = 0; o < nout; o++)
                y[o] += bias[o];
    }
}

void bfn_linear_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                         const float *w, int B, int nin, int nout)
{
    if (din)
        bfn_gemm_serial(0, 0, B, nin, nout, 1.0f, dout, nout, w, nin, 1.0f, din, nin);
    bfn_gemm_serial(1, 0, nout, nin, B, 1.0f, dout, nout, in, nin, 1.0f, dw, nin);
    if (!dbias)
        return;
    for (int o = 0; o < nout; o++) {
        double acc = 0.0;
        for (int b = 0; b < B; b++)
            acc += dout[(size_t)b * nout + o];
        dbias[o] += (float)acc;
    }
}

void bfn_upsample2x_forward(float *out, const float *in, int B, int C, int H, int W)
{
    int W2 = 2 * W;
    for (size_t bc = 0; bc < (size_t)B * C; bc++) {
        const float *x = in + bc * H * W;
        float *y = out + bc * 4 * H * W;
        for (int i = 0; i < H; i++) {
            float *r0 = y + (size_t)(2 * i) * W2;
            for (int j = 0; j < W; j++)
                r0[2 * j] = r0[2 * j + 1] = x[(size_t)i * W + j];
            memcpy(r0 + W2, r0, sizeof(float) * W2);
        }
    }
}

void bfn_upsample2x_backward(float *din, const float *dout, int B, int C, int H, int W)
{
    int W2 = 2 * W;
    for (size_t bc = 0; bc < (size_t)B * C; bc++) {
        float *dx = din + bc * H * W;
        const float *dy = dout + bc * 4 * H * W;
        for (int i = 0; i < H; i++) {
            const float *r0 = dy + (size_t)(2 * i) * W2, *r1 = r0 + W2;
            for (int j = 0; j < W; j++)
                dx[(size_t)i * W + j] += (r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]);
        }
    }
}

void bfn_concat_forward(float *out, const float *a, const float *b, int B, int Ca, int Cb, int HW)
{
    size_t na = (size_t)Ca * HW, nb = (size_t)Cb * HW;
    for (int i = 0; i < B; i++) {
        memcpy(out + i * (na + nb), a + i * na, sizeof(float) * na);
        memcpy(out + i * (na + nb) + na, b + i * nb, sizeof(float) * nb);
    }
}

void bfn_concat_backward(float *da, float *db, const float *dout, int B, int Ca, int Cb, int HW)
{
    size_t na = (size_t)Ca * HW, nb = (size_t)Cb * HW;
    for (int i = 0; i < B; i++) {
        const float *d = dout + i * (na + nb);
        if (da)
            for (size_t j = 0; j < na; j++)
                da[i * na + j] += d[j];
        if (db)
            for (size_t j = 0; j < nb; j++)
                db[i * nb + j] += d[na + j];
    }
}

/* Two masks per 64-bit draw: keep when a 32-bit uniform is >= p·2^32. */
void bfn_dropout_mask(uint8_t *mask, size_t n, float p, bfn_rng *rng)
{
    uint64_t thr = (uint64_t)((double)p * 4294967296.0);
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        uint64_t u = bfn_rng_u64(rng);
        mask[i] = (u & 0xFFFFFFFFu) >= thr;
        mask[i + 1] = (u >> 32) >= thr;
    }
    if (i < n)
        mask[i] = (bfn_rng_u64(rng) & 0xFFFFFFFFu) >= thr;
}

/* Entry i comes from half i % 2 of draw i / 2 of the stream, so any range
 * can be drawn on its own by starting the counter at from / 2. */
void bfn_dropout_mask_range(uint8_t *mask, size_t from, size_t to, float p, const bfn_rng *rng)
{
    uint64_t thr = (uint64_t)((double)p * 4294967296.0);
    bfn_rng r = *rng;
    r.ctr += from / 2;
    size_t i = from;
    if (i < to && (i & 1)) {
        mask[0] = (bfn_rng_u64(&r) >> 32) >= thr;
        i++;
    }
    for (; i + 2 <= to; i += 2) {
        uint64_t u = bfn_rng_u64(&r);
        mask[i - from] = (u & 0xFFFFFFFFu) >= thr;
        mask[i + 1 - from] = (u >> 32) >= thr;
    }
    if (i < to)
        mask[i - from] = (bfn_rng_u64(&r) & 0xFFFFFFFFu) >= thr;
}

void bfn_dropout_forward(float *out, const float *in, const uint8_t *mask, size_t n, float p)
{
    bfn_vec_mask_scale(out, in, mask, n, 1.0f / (1.0f - p));
}

void bfn_dropout_backward(float *din, const float *dout, const uint8_t *mask, size_t n, float p)
{
    float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++)
        if (mask[i])
            din[i] += dout[i] * scale;
}

void bfn_add_channel_forward(float *x, const float *v, int B, int C, int HW)
{
    for (size_t bc = 0; bc < (size_t)B * C; bc++)
        bfn_vec_add_const(x + bc * HW, x + bc * HW, HW, v[bc]);
}

void bfn_add_channel_backward(float *dv, const float *dx, int B, int C, int HW)
{
    for (size_t bc = 0; bc < (size_t)B * C; bc++) {
        dv[bc] += (float)bfn_vec_sum(dx + bc * HW, HW);
    }
}

void bfn_timestep_embedding(float *out, const float *t, int B, int dim)
{
    int half = dim / 2;
    double step = log(10000.0) / (half - 1);
    for (int b = 0; b < B; b++) {
        double s = 1000.0 * t[b];
        for (int j = 0; j < half; j++) {
            double a = s * exp(-step * j);
            out[(size_t)b * dim + j] = (float)sin(a);
            out[(size_t)b * dim + half + j] = (float)cos(a);
        }
    }
}

size_t bfn_temb_workspace(int B, int dim)
{
    return 2 * (size_t)B * dim;
}

void bfn_temb_forward(float *e, const bfn_temb_saved *sv, const float *t,
                      const bfn_temb_params *p, int B, int dim)
{
    size_t n = (size_t)B * dim;
    bfn_timestep_embedding(sv->sin, t, B, dim);
    bfn_linear_forward(sv->m1, sv->sin, p->w1, p->b1, B, dim, dim);
    bfn_silu_forward(sv->a1, sv->m1, n);
    bfn_linear_forward(sv->m2, sv->a1, p->w2, p->b2, B, dim, dim);
    bfn_silu_forward(e, sv->m2, n);
}

void bfn_temb_backward(bfn_temb_grads *g, const float *de, const bfn_temb_saved *sv,
                       const bfn_temb_params *p, float *ws, int B, int dim)
{
    size_t n = (size_t)B * dim;
    float *dm = ws, *da = ws + n;
    memset(ws, 0, sizeof(float) * 2 * n);
    bfn_silu_backward(dm, de, sv->m2, n);
    bfn_linear_backward(da, g->w2, g->b2, dm, sv->a1, p->w2, B, dim, dim);
    memset(dm, 0, sizeof(float) * n);
    bfn_silu_backward(dm, da, sv->m1, n);
    bfn_linear_backward(NULL, g->w1, g->b1, dm, sv->sin, p->w1, B, dim, dim);
}
