/* 2-D convolution as im2col + one gemm (Chellapilla et al. 2006; darknet).
 *
 * At low resolution one image gives a gemm only Ho*Wo columns wide, which BLAS
 * runs poorly, so several images are packed side by side into one column
 * matrix of about CONV_COLS columns; their gemm output (cout, n*Ho*Wo) is then
 * scattered back to NCHW. At 28x28 each image is its own gemm and writes its
 * output in place. A 1x1 stride-1 unpadded conv needs no im2col at all: the
 * image (cin, HW) already is its column matrix. */
#include <string.h>

#include "bfn/gemm.h"
#include "net/layers.h"

#define CONV_COLS 1024

static int is_pointwise(const bfn_conv2d_shape *s)
{
    return s->k == 1 && s->stride == 1 && s->pad == 0;
}

/* Images per gemm. */
static int conv_chunk(const bfn_conv2d_shape *s, int B)
{
    int n1 = bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s);
    int nb = CONV_COLS / n1;
    if (nb < 1)
        nb = 1;
    if (nb > B)
        nb = B;
    return nb;
}

/* Output columns ox whose input column ox*stride − pad + kx lies inside [0, w). */
static void valid_range(int *lo, int *hi, int w, int wo, int stride, int pad, int kx)
{
    int a = pad - kx; /* ox*stride >= a */
    int l = a > 0 ? (a + stride - 1) / stride : 0;
    int b = w - 1 + pad - kx; /* ox*stride <= b */
    int h = b < 0 ? 0 : b / stride + 1;
    if (h > wo)
        h = wo;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

void bfn_im2col(float *col, size_t ldcol, const float *in, const bfn_conv2d_shape *s)
{
    int ho = bfn_conv2d_out_h(s), wo = bfn_conv2d_out_w(s), k = s->k, st = s->stride;
    for (int ci = 0; ci < s->cin; ci++) {
        const float *src = in + (size_t)ci * s->h * s->w;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *dst = col + ((size_t)(ci * k + ky) * k + kx) * ldcol;
                int lo, hi;
                valid_range(&lo, &hi, s->w, wo, st, s->pad, kx);
                for (int oy = 0; oy < ho; oy++) {
                    float *d = dst + (size_t)oy * wo;
                    int iy = oy * st - s->pad + ky;
                    if (iy < 0 || iy >= s->h) {
                        memset(d, 0, sizeof(float) * wo);
                        continue;
                    }
                    /* input column of ox is base + ox*st, >= 0 for ox >= lo */
                    long base = (long)iy * s->w - s->pad + kx;
                    for (int ox = 0; ox < lo; ox++)
                        d[ox] = 0.0f;
                    if (st == 1 && hi > lo)
                        memcpy(d + lo, src + (base + lo), sizeof(float) * (hi - lo));
                    else if (st != 1)
                        for (int ox = lo; ox < hi; ox++)
                            d[ox] = src[base + (long)ox * st];
                    for (int ox = hi; ox < wo; ox++)
                        d[ox] = 0.0f;
                }
            }
        }
    }
}

void bfn_col2im(float *din, const float *col, size_t ldcol, const bfn_conv2d_shape *s)
{
    int ho = bfn_conv2d_out_h(s), wo = bfn_conv2d_out_w(s), k = s->k, st = s->stride;
    for (int ci = 0; ci < s->cin; ci++) {
        float *dst = din + (size_t)ci * s->h * s->w;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                const float *src = col + ((size_t)(ci * k + ky) * k + kx) * ldcol;
                int lo, hi;
                valid_range(&lo, &hi, s->w, wo, st, s->pad, kx);
                for (int oy = 0; oy < ho; oy++) {
                    int iy = oy * st - s->pad + ky;
                    if (iy < 0 || iy >= s->h)
                        continue;
                    const float *c = src + (size_t)oy * wo;
                    long base = (long)iy * s->w - s->pad + kx;
                    for (int ox = lo; ox < hi; ox++)
                        dst[base + (long)ox * st] += c[ox];
                }
            }
        }
    }
}

size_t bfn_conv2d_workspace(const bfn_conv2d_shape *s, int B)
{
    if (is_pointwise(s))
        return 0;
    size_t nb = (size_t)conv_chunk(s, B);
    size_t cols = nb * bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s);
    size_t kk = (size_t)s->cin * s->k * s->k;
    /* column matrix, plus a (cout, cols) staging matrix when images are packed */
    return kk * cols + (nb > 1 ? (size_t)s->cout * cols : 0);
}

static void add_bias(float *out, const float *bias, int cout, int n)
{
    for (int co = 0; co < cout; co++) {
        float b = bias[co];
        float *o = out + (size_t)co * n;
        for (int i = 0; i < n; i++)
            o[i] += b;
    }
}

void bfn_conv2d_forward(float *out, const float *in, const float *w, const float *bias,
                        float *ws, int B, const bfn_conv2d_shape *s, int accumulate)
{
    int n1 = bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s);
    int kk = s->cin * s->k * s->k;
    size_t in_sz = (size_t)s->cin * s->h * s->w, out_sz = (size_t)s->cout * n1;
    float beta = accumulate ? 1.0f : 0.0f;
    if (is_pointwise(s)) {
        for (int b = 0; b < B; b++) {
            float *o = out + b * out_sz;
            bfn_gemm(0, 0, s->cout, n1, s->cin, 1.0f, w, s->cin, in + b * in_sz, n1, beta, o, n1);
            if (bias)
                add_bias(o, bias, s->cout, n1);
        }
        return;
    }
    int nb = conv_chunk(s, B);
    float *col = ws;
    float *stage = ws + (size_t)kk * nb * n1; /* (cout, n*n1), only when n > 1 */
    for (int b0 = 0; b0 < B; b0 += nb) {
        int n = B - b0 < nb ? B - b0 : nb;
        int ld = n * n1;
        for (int i = 0; i < n; i++)
            bfn_im2col(col + (size_t)i * n1, ld, in + (b0 + i) * in_sz, s);
        if (n == 1) {
            float *o = out + b0 * out_sz;
            bfn_gemm(0, 0, s->cout, n1, kk, 1.0f, w, kk, col, n1, beta, o, n1);
            if (bias)
                add_bias(o, bias, s->cout, n1);
            continue;
        }
        bfn_gemm(0, 0, s->cout, ld, kk, 1.0f, w, kk, col, ld, 0.0f, stage, ld);
        for (int i = 0; i < n; i++) {
            float *o = out + (b0 + i) * out_sz;
            for (int co = 0; co < s->cout; co++) {
                const float *src = stage + (size_t)co * ld + (size_t)i * n1;
                float *dst = o + (size_t)co * n1;
                float bb = bias ? bias[co] : 0.0f;
                /* same rounding order as the one-image path: (out + conv) + bias */
                if (accumulate)
                    for (int p = 0; p < n1; p++)
                        dst[p] = (dst[p] + src[p]) + bb;
                else
                    for (int p = 0; p < n1; p++)
                        dst[p] = src[p] + bb;
            }
        }
    }
}

static void bias_grad(float *dbias, const float *dout, int cout, int n)
{
    for (int co = 0; co < cout; co++) {
        const float *g = dout + (size_t)co * n;
        double acc = 0.0;
        for (int i = 0; i < n; i++)
            acc += g[i];
        dbias[co] += (float)acc;
    }
}

/* dW += dout · colᵀ, dcol = Wᵀ · dout, din += col2im(dcol) (darknet's order,
 * reusing the column buffer for dcol once dW is done). */
void bfn_conv2d_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                         const float *w, float *ws, int B, const bfn_conv2d_shape *s)
{
    int n1 = bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s);
    int kk = s->cin * s->k * s->k;
    size_t in_sz = (size_t)s->cin * s->h * s->w, out_sz = (size_t)s->cout * n1;
    if (is_pointwise(s)) {
        for (int b = 0; b < B; b++) {
            const float *g = dout + b * out_sz;
            const float *x = in + b * in_sz;
            if (dbias)
                bias_grad(dbias, g, s->cout, n1);
            bfn_gemm(0, 1, s->cout, s->cin, n1, 1.0f, g, n1, x, n1, 1.0f, dw, s->cin);
            if (din)
                bfn_gemm(1, 0, s->cin, n1, s->cout, 1.0f, w, s->cin, g, n1, 1.0f,
                         din + b * in_sz, n1);
        }
        return;
    }
    int nb = conv_chunk(s, B);
    float *col = ws;
    float *stage = ws + (size_t)kk * nb * n1;
    for (int b0 = 0; b0 < B; b0 += nb) {
        int n = B - b0 < nb ? B - b0 : nb;
        int ld = n * n1;
        const float *g = dout + b0 * out_sz;
        if (n > 1) {
            for (int i = 0; i < n; i++)
                for (int co = 0; co < s->cout; co++)
                    memcpy(stage + (size_t)co * ld + (size_t)i * n1,
                           dout + (b0 + i) * out_sz + (size_t)co * n1, sizeof(float) * n1);
            g = stage;
        }
        if (dbias)
            bias_grad(dbias, g, s->cout, ld);
        for (int i = 0; i < n; i++)
            bfn_im2col(col + (size_t)i * n1, ld, in + (b0 + i) * in_sz, s);
        bfn_gemm(0, 1, s->cout, kk, ld, 1.0f, g, ld, col, ld, 1.0f, dw, kk);
        if (!din)
            continue;
        bfn_gemm(1, 0, kk, ld, s->cout, 1.0f, w, kk, g, ld, 0.0f, col, ld);
        for (int i = 0; i < n; i++)
            bfn_col2im(din + (b0 + i) * in_sz, col + (size_t)i * n1, ld, s);
    }
}
