/* Layer primitives of the U-Net (internal to the engine).
 *
 * Tensors are NCHW float32; a batch of B images is B contiguous (C, H, W)
 * blocks. Each layer is a forward/backward pair: forward(outputs, inputs,
 * parameters, sizes) writes its outputs; backward(input grads, parameter
 * grads, output grad, saved tensors, parameters, sizes) ACCUMULATES (+=) into
 * every gradient it produces, so a tensor read by two layers (U-Net skips)
 * simply receives both contributions; where an accumulate flag is offered,
 * 0 writes (=) the input gradient instead, which saves the first reader
 * from zeroing it. A NULL input-gradient pointer skips that product.
 * Nothing here allocates: callers pass workspaces sized by the *_workspace
 * functions. */
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

/* ---- convolution (im2col + gemm, one image per gemm) ---- */

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
 * occupies the first Ho*Wo columns of rows that are ldcol floats apart. */
void bfn_im2col(float *col, size_t ldcol, const float *in, const bfn_conv2d_shape *s);
/* Adjoint of bfn_im2col: accumulates (+=) the columns back into din (cin, h, w). */
void bfn_col2im(float *din, const float *col, size_t ldcol, const bfn_conv2d_shape *s);

/* Floats of workspace bfn_conv2d_forward/backward need (any B). */
size_t bfn_conv2d_workspace(const bfn_conv2d_shape *s, int B);
/* out (B, cout, Ho, Wo) = w (cout, cin, k, k) * in (B, cin, h, w) + bias (cout);
 * with accumulate = 1 the result is added to out instead. bias may be NULL. */
void bfn_conv2d_forward(float *out, const float *in, const float *w, const float *bias,
                        float *ws, int B, const bfn_conv2d_shape *s, int accumulate);
void bfn_conv2d_backward(float *din, float *dw, float *dbias, const float *dout, const float *in,
                         const float *w, float *ws, int B, const bfn_conv2d_shape *s);

/* The per-image pieces behind those two, for callers that split work. */

/* 1 when din is itself a convolution of dout (stride 1, pad = (k − 1)/2, k > 1). */
int bfn_conv2d_transposable(const bfn_conv2d_shape *s);
/* That convolution: cin and cout swapped, same image, kernel and padding. */
bfn_conv2d_shape bfn_conv2d_transposed(const bfn_conv2d_shape *s);
/* Floats of workspace one forward piece needs; piece q of an image may use
 * the block at q * bfn_conv2d_piece_ws(s). */
size_t bfn_conv2d_piece_ws(const bfn_conv2d_shape *s);
/* Floats of column workspace one image needs (all pieces, dW and din). */
size_t bfn_conv2d_col_size(const bfn_conv2d_shape *s);
/* Floats of the flipped kernel (0 unless transposable). */
size_t bfn_conv2d_flipped_size(const bfn_conv2d_shape *s);
/* wt (cin, cout, k, k) = w (cout, cin, k, k) with both spatial axes reversed. */
void bfn_conv2d_flip_weights(float *wt, const float *w, const bfn_conv2d_shape *s);
/* The forward of one image is bfn_conv2d_pieces(s) gemms over fixed ranges
 * [p0, p1) of the flattened output positions (Ho*Wo): results are bitwise
 * the same only when computed piece by piece like this. */
int bfn_conv2d_pieces(const bfn_conv2d_shape *s);
void bfn_conv2d_piece(const bfn_conv2d_shape *s, int q, int *p0, int *p1);
/* One image, output positions [p0, p1): out rows (cout, Ho*Wo) get those
 * columns of add + bias + w * in (add and bias may be NULL, add may equal
 * out). col: bfn_conv2d_piece_ws(s) floats; threads sharing an image pass
 * disjoint pieces and disjoint col blocks. */
void bfn_conv2d_forward_range(float *out, const float *in, const float *w, const float *bias,
                              const float *add, float *col, const bfn_conv2d_shape *s, int p0,
                              int p1);
/* One image: dw += dout·colᵀ (dw may be NULL), dbias += Σ dout (may be
 * NULL), din = or += d(loss)/d(in) as din_accumulate says (din may be NULL).
 * wt is the flipped kernel when transposable (NULL: the col2im path);
 * wt_cv, when not NULL, its transpose for the channel-vector kernel
 * (bfn_convk_cv_supported on bfn_conv2d_transposed(s)), which then
 * computes din. */
void bfn_conv2d_backward_image(float *din, int din_accumulate, float *dw, float *dbias,
                               const float *dout, const float *in, const float *w,
                               const float *wt, const float *wt_cv, float *col,
                               const bfn_conv2d_shape *s);

/* Direct kernels (convk.c) behind the forward and the stride-1 din: 1 when
 * this CPU has them (any cout: a last, partial block of output channels
 * runs on the same tile). */
int bfn_convk_supported(const bfn_conv2d_shape *s);
/* Floats of workspace bfn_convk_forward needs. */
size_t bfn_convk_workspace(const bfn_conv2d_shape *s);
/* out columns [p0, p1) = add + (bias + w · col(in)) over those columns;
 * bias and add may be NULL, add may equal out. */
void bfn_convk_forward(float *out, const float *in, const float *w, const float *bias,
                       const float *add, float *ws, const bfn_conv2d_shape *s, int p0, int p1);
/* The channel-vector kernel (AVX-512, stride-1 "same" shapes, cout a
 * multiple of 16, at most CV_MAX_POSITIONS outputs): the forward from wᵀ
 * (cin·k·k, cout) (bfn_convk_cv_transpose), the same bits as
 * bfn_convk_forward, faster on small images. Same workspace. */
#define CV_MAX_POSITIONS 256
int bfn_convk_cv_supported(const bfn_conv2d_shape *s);
void bfn_convk_cv_transpose(float *wt, const float *w, const bfn_conv2d_shape *s);
void bfn_convk_forward_cv(float *out, const float *in, const float *wt, const float *bias,
                          const float *add, float *ws, const bfn_conv2d_shape *s, int p0, int p1);
/* Nearest-neighbour 2× upsampling followed by the 3×3 "same" conv s (s is
 * the conv on the upsampled image; in is the (cin, h/2, w/2) image before
 * upsampling), as four 2×2 convs on the small image from summed weights
 * wu (bfn_convk_up_weights_size floats, made by bfn_convk_up_weights):
 * 4/9 of the multiply-adds, equal to upsample + conv up to rounding.
 * Supported on AVX2 and AVX-512 (the same bits) where the small image fits
 * the channel-vector kernel.
 * [p0, p1) ranges over the small image's positions (all four outputs of
 * each); workspace bfn_convk_up_workspace floats. */
int bfn_convk_up_supported(const bfn_conv2d_shape *s);
size_t bfn_convk_up_weights_size(const bfn_conv2d_shape *s);
size_t bfn_convk_up_workspace(const bfn_conv2d_shape *s);
void bfn_convk_up_weights(float *wu, const float *w, const bfn_conv2d_shape *s);
void bfn_convk_forward_up(float *out, const float *in, const float *wu, const float *bias,
                          const float *add, float *ws, const bfn_conv2d_shape *s, int p0, int p1);
/* The kernel sets: this CPU's best (bfn_convk_isa), and the forward with a
 * given one (tests run the AVX2 set on AVX-512 machines too). */
enum { BFN_CONVK_NONE, BFN_CONVK_AVX2, BFN_CONVK_AVX512 };
int bfn_convk_isa(void);
/* The best set this CPU has, whatever BFN_ISA says. */
int bfn_convk_isa_best(void);
/* The set a BFN_ISA value names ("none", "avx2", "avx512"), or -1. */
int bfn_convk_isa_named(const char *name);
/* Tests: the set every kernel uses from now on, at most this CPU's best
 * (nets must be created and run under one setting). Returns the previous. */
int bfn_convk_set_isa(int isa);
void bfn_convk_forward_isa(int isa, float *out, const float *in, const float *w,
                           const float *bias, const float *add, float *ws,
                           const bfn_conv2d_shape *s, int p0, int p1);

/* dw (cout, cin·k·k) += dout · colᵀ for one image, when supported (AVX-512,
 * cout a multiple of 16, 1x1 or stride-1 "same" shapes); with transposed =
 * 1, dw is stored transposed, (cin·k·k, cout), which the kernel adds to
 * faster. */
int bfn_convk_dw_supported(const bfn_conv2d_shape *s);
size_t bfn_convk_dw_workspace(const bfn_conv2d_shape *s);
void bfn_convk_weight_grad(float *dw, int transposed, const float *dout, const float *in,
                           float *ws, const bfn_conv2d_shape *s);

/* ---- GroupNorm (Wu & He 2018), optionally fused with SiLU ---- */

/* in, out: (B, C, HW); mean, rstd: (B, G) saved for backward; gamma, beta: (C). */
void bfn_groupnorm_forward(float *out, float *mean, float *rstd, const float *in,
                           const float *gamma, const float *beta, int B, int C, int HW, int G);
/* Recomputes the output from saved statistics (for backward passes that do not
 * keep it). */
void bfn_groupnorm_apply(float *out, const float *in, const float *mean, const float *rstd,
                         const float *gamma, const float *beta, int B, int C, int HW, int G);
/* din = (accumulate 0) or += (1) the input gradient; din may be NULL. */
void bfn_groupnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                            const float *in, const float *mean, const float *rstd,
                            const float *gamma, int B, int C, int HW, int G, int accumulate);

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
                                 int G, int accumulate);

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
/* Entries [from, to) of the mask bfn_dropout_mask would draw from a copy of
 * rng, written to mask[0 .. to − from); rng is not advanced. */
void bfn_dropout_mask_range(uint8_t *mask, size_t from, size_t to, float p, const bfn_rng *rng);
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
/* The same forward for one image as 4 stages of independent pieces
 * (GroupNorm groups; Q, K, V; heads; halves of the projection), for
 * threads that share an image: all pieces of a stage must be done before
 * any of the next starts; they share ws. sv points at the image's part. */
int bfn_attention_pieces(const bfn_attn_shape *s, int stage);
void bfn_attention_forward_piece(float *out, const bfn_attn_saved *sv, const float *in,
                                 const bfn_attn_params *p, float *ws, const bfn_attn_shape *s,
                                 int stage, int q);
void bfn_attention_backward(float *din, const bfn_attn_grads *g, const float *dout,
                            const float *in, const bfn_attn_saved *sv, const bfn_attn_params *p,
                            float *ws, int B, const bfn_attn_shape *s, int accumulate);

#endif
