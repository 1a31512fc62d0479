/* 2-D convolution as im2col + gemm (Chellapilla et al. 2006; darknet), one
 * image per gemm.
 *
 * Forward: out (cout, P) = w (cout, cin·k·k) · col (cin·k·k, P) over the
 * output positions P of one image; the bias (or whatever the caller put in
 * out) is the gemm's C with beta = 1, so nothing makes a second pass over
 * out. An image's positions are always cut into the same pieces, one gemm
 * each, whoever computes them: BLAS kernels round differently depending on
 * a column's place in the call (edge blocks), so only identical calls give
 * identical numbers. Two pieces let two threads share one image.
 *
 * Backward: dW += dout · colᵀ. For stride 1 and "same" padding, din is the
 * convolution of dout with the flipped, transposed kernel wt (cin, cout, k,
 * k), i.e. one more im2col + gemm written straight into din; no col2im
 * scatter. Other shapes (stride 2) use dcol = wᵀ · dout and col2im.
 * A 1x1 stride-1 unpadded conv needs no im2col: the image (cin, HW) already
 * is its column matrix. */
#include <string.h>

#include "bfn/gemm.h"
#include "net/layers.h"
#include "net/vec.h"

static int is_pointwise(const bfn_conv2d_shape *s)
{
    return s->k == 1 && s->stride == 1 && s->pad == 0;
}

int bfn_conv2d_transposable(const bfn_conv2d_shape *s)
{
    return !is_pointwise(s) && s->stride == 1 && 2 * s->pad == s->k - 1;
}

/* The convolution that maps dout to din when bfn_conv2d_transposable(s). */
bfn_conv2d_shape bfn_conv2d_transposed(const bfn_conv2d_shape *s)
{
    bfn_conv2d_shape t = {.cin = s->cout, .h = s->h, .w = s->w, .cout = s->cin, .k = s->k,
                          .stride = 1, .pad = s->pad};
    return t;
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

/* Columns p0..p1-1 (flattened output positions) of the column matrix. */
static void im2col_range(float *col, size_t ldcol, const float *in, const bfn_conv2d_shape *s,
                         int p0, int p1)
{
    int wo = bfn_conv2d_out_w(s), k = s->k, st = s->stride;
    int oy0 = p0 / wo, oy1 = (p1 + wo - 1) / wo;
    for (int ci = 0; ci < s->cin; ci++) {
        const float *src = in + (size_t)ci * s->h * s->w;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *row = col + ((size_t)(ci * k + ky) * k + kx) * ldcol;
                int lo, hi;
                valid_range(&lo, &hi, s->w, wo, st, s->pad, kx);
                for (int oy = oy0; oy < oy1; oy++) {
                    /* this output row's slice [a, b) of [p0, p1), stored from d */
                    int a = oy * wo < p0 ? p0 - oy * wo : 0;
                    int b = (oy + 1) * wo > p1 ? p1 - oy * wo : wo;
                    float *d = row + (oy * wo + a - p0);
                    int iy = oy * st - s->pad + ky;
                    if (iy < 0 || iy >= s->h) {
                        memset(d, 0, sizeof(float) * (b - a));
                        continue;
                    }
                    long base = (long)iy * s->w - s->pad + kx;
                    int l = lo > a ? lo : a, h = hi < b ? hi : b;
                    if (h < l)
                        h = l;
                    for (int ox = a; ox < l; ox++)
                        d[ox - a] = 0.0f;
                    if (st == 1)
                        memcpy(d + (l - a), src + (base + l), sizeof(float) * (h - l));
                    else
                        for (int ox = l; ox < h; ox++)
                            d[ox - a] = src[base + (long)ox * st];
                    for (int ox = h; ox < b; ox++)
                        d[ox - a] = 0.0f;
                }
            }
        }
    }
}

void bfn_im2col(float *col, size_t ldcol, const float *in, const bfn_conv2d_shape *s)
{
    im2col_range(col, ldcol, in, s, 0, bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s));
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

int bfn_conv2d_pieces(const bfn_conv2d_shape *s)
{
    return bfn_conv2d_out_h(s) >= 2 && bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s) >= 16 ? 2 : 1;
}

void bfn_conv2d_piece(const bfn_conv2d_shape *s, int q, int *p0, int *p1)
{
    int n1 = bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s);
    if (bfn_conv2d_pieces(s) == 1) {
        *p0 = 0;
        *p1 = n1;
        return;
    }
    int mid = bfn_conv2d_out_h(s) / 2 * bfn_conv2d_out_w(s); /* whole output rows */
    *p0 = q == 0 ? 0 : mid;
    *p1 = q == 0 ? mid : n1;
}

size_t bfn_conv2d_piece_ws(const bfn_conv2d_shape *s)
{
    if (bfn_convk_supported(s))
        return bfn_convk_workspace(s);
    if (is_pointwise(s))
        return 0;
    int p0, p1, w = 0;
    for (int q = 0; q < bfn_conv2d_pieces(s); q++) {
        bfn_conv2d_piece(s, q, &p0, &p1);
        w = p1 - p0 > w ? p1 - p0 : w;
    }
    return (size_t)s->cin * s->k * s->k * w;
}

size_t bfn_conv2d_col_size(const bfn_conv2d_shape *s)
{
    size_t n = bfn_conv2d_pieces(s) * bfn_conv2d_piece_ws(s);
    if (bfn_convk_dw_supported(s) && bfn_convk_dw_workspace(s) > n)
        n = bfn_convk_dw_workspace(s);
    if (is_pointwise(s))
        return n;
    size_t dw = (size_t)s->cin * s->k * s->k * bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s);
    n = dw > n ? dw : n;
    if (bfn_conv2d_transposable(s)) {
        bfn_conv2d_shape t = bfn_conv2d_transposed(s);
        size_t tr = bfn_convk_supported(&t) ? bfn_convk_workspace(&t)
                                            : (size_t)s->cout * s->k * s->k * s->h * s->w;
        n = tr > n ? tr : n;
    }
    return n;
}

size_t bfn_conv2d_flipped_size(const bfn_conv2d_shape *s)
{
    return bfn_conv2d_transposable(s) ? (size_t)s->cout * s->cin * s->k * s->k : 0;
}

void bfn_conv2d_flip_weights(float *wt, const float *w, const bfn_conv2d_shape *s)
{
    int k = s->k, kk = k * k;
    for (int co = 0; co < s->cout; co++)
        for (int ci = 0; ci < s->cin; ci++) {
            const float *src = w + ((size_t)co * s->cin + ci) * kk;
            float *dst = wt + ((size_t)ci * s->cout + co) * kk;
            for (int i = 0; i < kk; i++)
                dst[i] = src[kk - 1 - i];
        }
}

size_t bfn_conv2d_workspace(const bfn_conv2d_shape *s, int B)
{
    (void)B;
    return bfn_conv2d_flipped_size(s) + bfn_conv2d_col_size(s);
}

void bfn_conv2d_forward_range(float *out, const float *in, const float *w, const float *bias,
                              const float *add, float *col, const bfn_conv2d_shape *s, int p0,
                              int p1)
{
    int n1 = bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s), np = p1 - p0;
    int kk = s->cin * s->k * s->k;
    if (np <= 0)
        return;
    if (bfn_convk_supported(s)) {
        bfn_convk_forward(out, in, w, bias, add, col, s, p0, p1);
        return;
    }
    /* BLAS: the gemm adds onto C = add + bias */
    if (bias || add)
        for (int co = 0; co < s->cout; co++) {
            float *o = out + (size_t)co * n1 + p0;
            const float *a = add ? add + (size_t)co * n1 + p0 : NULL;
            float b = bias ? bias[co] : 0.0f;
            if (a)
                bfn_vec_add_const(o, a, np, b);
            else
                for (int i = 0; i < np; i++)
                    o[i] = b;
        }
    float beta = bias || add ? 1.0f : 0.0f;
    if (is_pointwise(s)) {
        bfn_gemm_serial(0, 0, s->cout, np, s->cin, 1.0f, w, s->cin, in + p0, n1, beta, out + p0,
                        n1);
        return;
    }
    im2col_range(col, np, in, s, p0, p1);
    bfn_gemm_serial(0, 0, s->cout, np, kk, 1.0f, w, kk, col, np, beta, out + p0, n1);
}

void bfn_conv2d_forward(float *out, const float *in, const float *w, const float *bias,
                        float *ws, int B, const bfn_conv2d_shape *s, int accumulate)
{
    int n1 = bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s);
    size_t in_sz = (size_t)s->cin * s->h * s->w, out_sz = (size_t)s->cout * n1;
    for (int b = 0; b < B; b++)
        for (int q = 0; q < bfn_conv2d_pieces(s); q++) {
            int p0, p1;
            bfn_conv2d_piece(s, q, &p0, &p1);
            bfn_conv2d_forward_range(out + b * out_sz, in + b * in_sz, w, bias,
                                     accumulate ? out + b * out_sz : NULL, ws, s, p0, p1);
        }
}

void bfn_conv2d_backward_image(float *din, int din_accumulate, float *dw, float *dbias,
                               const float *dout, const float *in, const float *w,
                               const float *wt, const float *wt_cv, float *col,
                               const bfn_conv2d_shape *s)
{
    int n1 = bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s);
    int kk = s->cin * s->k * s->k, hw = s->h * s->w;
    float beta = din_accumulate ? 1.0f : 0.0f;
    if (dbias)
        for (int co = 0; co < s->cout; co++)
            dbias[co] += (float)bfn_vec_sum(dout + (size_t)co * n1, n1);
    if (dw && col && bfn_convk_dw_supported(s)) {
        bfn_convk_weight_grad(dw, 0, dout, in, col, s);
        dw = NULL;
    }
    if (is_pointwise(s)) {
        if (dw)
            bfn_gemm_serial(0, 1, s->cout, s->cin, n1, 1.0f, dout, n1, in, n1, 1.0f, dw, s->cin);
        if (din)
            bfn_gemm_serial(1, 0, s->cin, n1, s->cout, 1.0f, w, s->cin, dout, n1, beta, din, n1);
        return;
    }
    if (dw) {
        im2col_range(col, n1, in, s, 0, n1);
        bfn_gemm_serial(0, 1, s->cout, kk, n1, 1.0f, dout, n1, col, n1, 1.0f, dw, kk);
    }
    if (!din)
        return;
    if (wt && bfn_conv2d_transposable(s)) {
        bfn_conv2d_shape t = bfn_conv2d_transposed(s);
        int kt = s->cout * s->k * s->k;
        if (wt_cv) {
            bfn_convk_forward_cv(din, dout, wt_cv, NULL, din_accumulate ? din : NULL, col, &t, 0,
                                 hw);
            return;
        }
        if (bfn_convk_supported(&t)) {
            bfn_convk_forward(din, dout, wt, NULL, din_accumulate ? din : NULL, col, &t, 0, hw);
            return;
        }
        im2col_range(col, hw, dout, &t, 0, hw);
        bfn_gemm_serial(0, 0, s->cin, hw, kt, 1.0f, wt, kt, col, hw, beta, din, hw);
        return;
    }
    bfn_gemm_serial(1, 0, kk, n1, s->cout, 1.0f, w, kk, dout, n1, 0.0f, col, n1);
    if (!din_accumulate)
        memset(din, 0, sizeof(float) * s->cin * hw);
    bfn_col2im(din, col, n1, s);
}

void bfn_conv2d_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                         const float *w, float *ws, int B, const bfn_conv2d_shape *s)
{
    int n1 = bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s);
    size_t in_sz = (size_t)s->cin * s->h * s->w, out_sz = (size_t)s->cout * n1;
    float *wt = NULL, *col = ws;
    if (din && bfn_conv2d_transposable(s)) {
        wt = ws;
        col = ws + bfn_conv2d_flipped_size(s);
        bfn_conv2d_flip_weights(wt, w, s);
    }
    for (int b = 0; b < B; b++)
        bfn_conv2d_backward_image(din ? din + b * in_sz : NULL, 1, dw, dbias, dout + b * out_sz,
                                  in + b * in_sz, w, wt, NULL, col, s);
}
