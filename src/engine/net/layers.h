/* Layer primitives of the U-Net (internal to the engine).
 *
 * Tensors are NCHW float32; a batch of B images is B contiguous (C, H, W)
 * blocks. Each layer is a forward/backward pair: forward(outputs, inputs,
 * parameters, sizes) writes its outputs; backward(input grads, parameter
 * grads, output grad, saved tensors, parameters, sizes) ACCUMULATES (+=) into
 * every gradient it produces, so a tensor read by two layers (U-Net skips)
 * simply receives both contributions. A NULL input-gradient pointer skips
 * that product. Nothing here allocates: callers pass workspaces sized by the
 * *_workspace functions. */
#ifndef BFN_NET_LAYERS_H
#define BFN_NET_LAYERS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "bfn/rng.h"

#define BFN_GN_EPS 1e-5f

static inline float bfn_sigmoidf(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* ---- convolution (im2col + gemm) ---- */

typedef struct {
    int cin, h, w;      /* input image (cin, h, w) */
    int cout, k;        /* output channels, square kernel size */
    int stride, pad;    /* zero padding on every side */
} bfn_conv2d_shape;

static inline int bfn_conv2d_out_h(const bfn_conv2d_shape *s)
{
    return (s->h + 2 * s->pad - s->k) / s->stride + 1;
}
static inline int bfn_conv2d_out_w(const bfn_conv2d_shape *s)
{
    return (s->w + 2 * s->pad - s->k) / s->stride + 1;
}

/* Column matrix of one image: row (ci, ky, kx), column (oy, ox); the image
 * occupies the first Ho*Wo columns of rows that are ldcol floats apart, so
 * several images can sit side by side in one (cin*k*k, n*Ho*Wo) matrix. */
void bfn_im2col(float *col, size_t ldcol, const float *in, const bfn_conv2d_shape *s);
/* Adjoint of bfn_im2col: accumulates (+=) the columns back into din (cin, h, w). */
void bfn_col2im(float *din, const float *col, size_t ldcol, const bfn_conv2d_shape *s);

/* Floats of workspace bfn_conv2d_forward/backward need for up to B images. */
size_t bfn_conv2d_workspace(const bfn_conv2d_shape *s, int B);
/* out (B, cout, Ho, Wo) = w (cout, cin, k, k) * in (B, cin, h, w) + bias (cout);
 * with accumulate = 1 the result is added to out instead. bias may be NULL. */
void bfn_conv2d_forward(float *out, const float *in, const float *w, const float *bias,
                        float *ws, int B, const bfn_conv2d_shape *s, int accumulate);
void bfn_conv2d_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                         const float *w, float *ws, int B, const bfn_conv2d_shape *s);

/* ---- GroupNorm (Wu & He 2018), optionally fused with SiLU ---- */

/* in, out: (B, C, HW); mean, rstd: (B, G) saved for backward; gamma, beta: (C). */
void bfn_groupnorm_forward(float *out, float *mean, float *rstd, const float *in,
                           const float *gamma, const float *beta, int B, int C, int HW, int G);
/* Recomputes the output from saved statistics (for backward passes that do not
 * keep it). */
void bfn_groupnorm_apply(float *out, const float *in, const float *mean, const float *rstd,
                         const float *gamma, const float *beta, int B, int C, int HW, int G);
void bfn_groupnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                            const float *in, const float *mean, const float *rstd,
                            const float *gamma, int B, int C, int HW, int G);

/* out = SiLU(GroupNorm(in)); the normalized values are never stored. */
void bfn_groupnorm_silu_forward(float *out, float *mean, float *rstd, const float *in,
                                const float *gamma, const float *beta, int B, int C, int HW,
                                int G);
void bfn_groupnorm_silu_apply(float *out, const float *in, const float *mean, const float *rstd,
                              const float *gamma, const float *beta, int B, int C, int HW, int G);
/* dout is overwritten (with the gradient at the SiLU input): every caller
 * passes a scratch buffer, and keeping it saves recomputing SiLU'. */
void bfn_groupnorm_silu_backward(float *din, float *dgamma, float *dbeta, float *dout,
                                 const float *in, const float *mean, const float *rstd,
                                 const float *gamma, const float *beta, int B, int C, int HW,
                                 int G);

/* ---- pointwise and shape layers ---- */

/* SiLU(x) = x·σ(x) (Hendrycks & Gimpel 2016); out may equal in. */
void bfn_silu_forward(float *out, const float *in, size_t n);
void bfn_silu_backward(float *din, const float *dout, const float *in, size_t n);

/* out (B, nout) = in (B, nin) · wᵀ + bias, w (nout, nin) as in PyTorch. */
void bfn_linear_forward(float *out, const float *in, const float *w, const float *bias, int B,
                        int nin, int nout);
void bfn_linear_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                         const float *w, int B, int nin, int nout);

/* Nearest-neighbour 2x: in (B, C, H, W) -> out (B, C, 2H, 2W). */
void bfn_upsample2x_forward(float *out, const float *in, int B, int C, int H, int W);
void bfn_upsample2x_backward(float *din, const float *dout, int B, int C, int H, int W);

/* Channel concatenation: a (B, Ca, HW), b (B, Cb, HW) -> out (B, Ca + Cb, HW). */
void bfn_concat_forward(float *out, const float *a, const float *b, int B, int Ca, int Cb, int HW);
void bfn_concat_backward(float *da, float *db, const float *dout, int B, int Ca, int Cb, int HW);

/* Inverted dropout: mask[i] = 1 keeps element i (probability 1 − p), and kept
 * elements are scaled by 1/(1 − p) so the expectation is unchanged. */
void bfn_dropout_mask(uint8_t *mask, size_t n, float p, bfn_rng *rng);
/* out may equal in. */
void bfn_dropout_forward(float *out, const float *in, const uint8_t *mask, size_t n, float p);
void bfn_dropout_backward(float *din, const float *dout, const uint8_t *mask, size_t n, float p);

/* Adds v (B, C) to every position of x (B, C, HW) channel-wise; backward
 * accumulates dv[b][c] += Σ_hw dx[b][c][hw]. */
void bfn_add_channel_forward(float *x, const float *v, int B, int C, int HW);
void bfn_add_channel_backward(float *dv, const float *dx, int B, int C, int HW);

/* ---- time embedding ---- */

/* Sinusoidal embedding of 1000·t (Vaswani et al. 2017 as used by DDPM, Ho et
 * al. 2020): out (B, dim) = [sin(1000 t f_j), cos(1000 t f_j)],
 * f_j = 10000^(−j/(dim/2 − 1)), j < dim/2; dim even and >= 4. */
void bfn_timestep_embedding(float *out, const float *t, int B, int dim);

/* e = SiLU(lin2(SiLU(lin1(sinusoid(t))))), all (B, dim): the activation that
 * every residual block projects to its width. The trailing SiLU is the one
 * DDPM applies before each block's projection, computed once here. */
typedef struct {
    const float *w1, *b1; /* (dim, dim), (dim) */
    const float *w2, *b2; /* (dim, dim), (dim) */
} bfn_temb_params;
typedef struct {
    float *w1, *b1, *w2, *b2;
} bfn_temb_grads;
typedef struct {
    float *sin; /* (B, dim) sinusoid */
    float *m1;  /* (B, dim) lin1 output */
    float *a1;  /* (B, dim) SiLU(m1) */
    float *m2;  /* (B, dim) lin2 output */
} bfn_temb_saved;
/* Floats of workspace the backward needs: 2·B·dim. */
size_t bfn_temb_workspace(int B, int dim);
void bfn_temb_forward(float *e, const bfn_temb_saved *sv, const float *t,
                      const bfn_temb_params *p, int B, int dim);
void bfn_temb_backward(bfn_temb_grads *g, const float *de, const bfn_temb_saved *sv,
                       const bfn_temb_params *p, float *ws, int B, int dim);

/* ---- multi-head self-attention block ---- */

/* out = in + proj(attention(qkv(GroupNorm(in)))) over the HW positions of
 * each image (Vaswani et al. 2017, eq. 1: softmax(QKᵀ/√d)V per head).
 * qkv is a 1x1 conv C -> 3C whose output channels are [Q | K | V], each split
 * into heads of d = C/heads consecutive channels; proj is a 1x1 conv C -> C. */
typedef struct {
    int C, HW, heads, groups;
} bfn_attn_shape;
typedef struct {
    const float *norm_w, *norm_b; /* (C) */
    const float *qkv_w, *qkv_b;   /* (3C, C, 1, 1), (3C) */
    const float *proj_w, *proj_b; /* (C, C, 1, 1), (C) */
} bfn_attn_params;
typedef struct {
    float *norm_w, *norm_b, *qkv_w, *qkv_b, *proj_w, *proj_b;
} bfn_attn_grads;
typedef struct {
    float *mean, *rstd; /* (B, groups) */
    float *qkv;         /* (B, 3C, HW) */
    float *att;         /* (B, heads, HW, HW) softmax weights */
    float *o;           /* (B, C, HW) attention output before proj */
} bfn_attn_saved;
size_t bfn_attention_workspace(int B, const bfn_attn_shape *s);
void bfn_attention_forward(float *out, const bfn_attn_saved *sv, const float *in,
                           const bfn_attn_params *p, float *ws, int B, const bfn_attn_shape *s);
void bfn_attention_backward(float *din, const bfn_attn_grads *g, const float *dout,
                            const float *in, const bfn_attn_saved *sv, const bfn_attn_params *p,
                            float *ws, int B, const bfn_attn_shape *s);

#endif
