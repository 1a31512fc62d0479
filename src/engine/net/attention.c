/* Multi-head self-attention block over the HW positions of each image, as in
 * DDPM's AttnBlock: out = in + proj(softmax(QᵀK/√d) applied to V), with Q, K,
 * V from a 1x1 conv of GroupNorm(in). Per image and head, Q, K, V are (d, HW)
 * slices of the qkv tensor, so every product is a plain gemm on them.
 *
 * Backward per head, with P the softmax weights (HW, HW), S = QᵀK/√d:
 *   dV = dO·P,  dP = dOᵀ·V,  dS = P ⊙ (dP − rowsum(dP ⊙ P)),
 *   dQ = K·dSᵀ/√d,  dK = Q·dS/√d. */
#include <math.h>
#include <string.h>

#include "bfn/gemm.h"
#include "net/layers.h"
#include "net/simd.h"
#include "net/vec.h"

/* ---- one head's two products on AVX-512 ----
 * With d = 16 channels a head and 49 or 64 positions the products are far
 * too small for a gemm library's packing to pay; these loops compute them
 * in place. Each score is Σ_c in channel order, each output Σ_j in key
 * order, whatever thread runs the head. */
#if BFN_X86
/* a (HW, HW) = scale · QᵀK; q, k: (d, HW) */
static BFN_T512 void scores512(float *a, const float *q, const float *k, int d, int HW, float scale)
{
    __m512 sc = _mm512_set1_ps(scale);
    for (int j0 = 0; j0 < HW; j0 += 64) {
        __mmask16 m0 = bfn_lanes16(HW - j0), m1 = bfn_lanes16(HW - j0 - 16);
        __mmask16 m2 = bfn_lanes16(HW - j0 - 32), m3 = bfn_lanes16(HW - j0 - 48);
        /* two query rows at once share the key loads (an odd last row is
         * computed twice); each score's chain is the same as alone */
        for (int i = 0; i < HW; i += 2) {
            int i1 = i + 1 < HW ? i + 1 : i;
            __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
            __m512 e0 = c0, e1 = c0, e2 = c0, e3 = c0;
            for (int c = 0; c < d; c++) {
                const float *kr = k + (size_t)c * HW + j0;
                __m512 x = _mm512_set1_ps(q[(size_t)c * HW + i]);
                __m512 y = _mm512_set1_ps(q[(size_t)c * HW + i1]);
                __m512 k0 = _mm512_maskz_loadu_ps(m0, kr), k1 = _mm512_maskz_loadu_ps(m1, kr + 16);
                __m512 k2 = _mm512_maskz_loadu_ps(m2, kr + 32), k3 = _mm512_maskz_loadu_ps(m3, kr + 48);
                c0 = _mm512_fmadd_ps(x, k0, c0);
                c1 = _mm512_fmadd_ps(x, k1, c1);
                c2 = _mm512_fmadd_ps(x, k2, c2);
                c3 = _mm512_fmadd_ps(x, k3, c3);
                e0 = _mm512_fmadd_ps(y, k0, e0);
                e1 = _mm512_fmadd_ps(y, k1, e1);
                e2 = _mm512_fmadd_ps(y, k2, e2);
                e3 = _mm512_fmadd_ps(y, k3, e3);
            }
            float *ar = a + (size_t)i * HW + j0, *br = a + (size_t)i1 * HW + j0;
            _mm512_mask_storeu_ps(ar, m0, _mm512_mul_ps(c0, sc));
            _mm512_mask_storeu_ps(ar + 16, m1, _mm512_mul_ps(c1, sc));
            _mm512_mask_storeu_ps(ar + 32, m2, _mm512_mul_ps(c2, sc));
            _mm512_mask_storeu_ps(ar + 48, m3, _mm512_mul_ps(c3, sc));
            _mm512_mask_storeu_ps(br, m0, _mm512_mul_ps(e0, sc));
            _mm512_mask_storeu_ps(br + 16, m1, _mm512_mul_ps(e1, sc));
            _mm512_mask_storeu_ps(br + 32, m2, _mm512_mul_ps(e2, sc));
            _mm512_mask_storeu_ps(br + 48, m3, _mm512_mul_ps(e3, sc));
        }
    }
}

/* o (d, HW): o[c][i] = Σ_j v[c][j] · a[i][j], 16 channels a vector, from
 * vt = vᵀ (HW, d) */
static BFN_T512 void pv512(float *o, const float *v, const float *a, float *vt, int d, int HW)
{
    for (int c = 0; c < d; c++)
        for (int j = 0; j < HW; j++)
            vt[(size_t)j * d + c] = v[(size_t)c * HW + j];
    __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(HW));
    for (int c0 = 0; c0 < d; c0 += 16) {
        __mmask16 m = bfn_lanes16(d - c0);
        /* four query rows at once: four independent chains keep the FMA
         * units busy (the last rows repeat when HW is not a multiple of
         * 4); each output's chain is the same as alone */
        for (int i = 0; i < HW; i += 4) {
            int r[4] = {i, i + 1 < HW ? i + 1 : HW - 1, i + 2 < HW ? i + 2 : HW - 1,
                        i + 3 < HW ? i + 3 : HW - 1};
            const float *a0 = a + (size_t)r[0] * HW, *a1 = a + (size_t)r[1] * HW;
            const float *a2 = a + (size_t)r[2] * HW, *a3 = a + (size_t)r[3] * HW;
            __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (int j = 0; j < HW; j++) {
                __m512 x = _mm512_maskz_loadu_ps(m, vt + (size_t)j * d + c0);
                s0 = _mm512_fmadd_ps(_mm512_set1_ps(a0[j]), x, s0);
                s1 = _mm512_fmadd_ps(_mm512_set1_ps(a1[j]), x, s1);
                s2 = _mm512_fmadd_ps(_mm512_set1_ps(a2[j]), x, s2);
                s3 = _mm512_fmadd_ps(_mm512_set1_ps(a3[j]), x, s3);
            }
            float *oc = o + (size_t)c0 * HW;
            _mm512_mask_i32scatter_ps(oc + r[0], m, idx, s0, 4);
            _mm512_mask_i32scatter_ps(oc + r[1], m, idx, s1, 4);
            _mm512_mask_i32scatter_ps(oc + r[2], m, idx, s2, 4);
            _mm512_mask_i32scatter_ps(oc + r[3], m, idx, s3, 4);
        }
    }
}
#endif

#if BFN_X86
/* The same two products on AVX2, 8 lanes a vector: every sum in the same
 * order with the same fused multiply-adds as the AVX-512 loops, so the two
 * kinds of CPU give the same bits. */
#define BFN_T256 __attribute__((target("avx2,fma")))

static inline BFN_T256 __m256i lanes8(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static BFN_T256 void scores256(float *a, const float *q, const float *k, int d, int HW, float scale)
{
    __m256 sc = _mm256_set1_ps(scale);
    for (int j0 = 0; j0 < HW; j0 += 32) {
        __m256i m0 = lanes8(HW - j0), m1 = lanes8(HW - j0 - 8);
        __m256i m2 = lanes8(HW - j0 - 16), m3 = lanes8(HW - j0 - 24);
        for (int i = 0; i < HW; i += 2) {
            int i1 = i + 1 < HW ? i + 1 : i;
            __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
            __m256 e0 = c0, e1 = c0, e2 = c0, e3 = c0;
            for (int c = 0; c < d; c++) {
                const float *kr = k + (size_t)c * HW + j0;
                __m256 x = _mm256_set1_ps(q[(size_t)c * HW + i]);
                __m256 y = _mm256_set1_ps(q[(size_t)c * HW + i1]);
                __m256 k0 = _mm256_maskload_ps(kr, m0), k1 = _mm256_maskload_ps(kr + 8, m1);
                __m256 k2 = _mm256_maskload_ps(kr + 16, m2), k3 = _mm256_maskload_ps(kr + 24, m3);
                c0 = _mm256_fmadd_ps(x, k0, c0);
                c1 = _mm256_fmadd_ps(x, k1, c1);
                c2 = _mm256_fmadd_ps(x, k2, c2);
                c3 = _mm256_fmadd_ps(x, k3, c3);
                e0 = _mm256_fmadd_ps(y, k0, e0);
                e1 = _mm256_fmadd_ps(y, k1, e1);
                e2 = _mm256_fmadd_ps(y, k2, e2);
                e3 = _mm256_fmadd_ps(y, k3, e3);
            }
            float *ar = a + (size_t)i * HW + j0, *br = a + (size_t)i1 * HW + j0;
            _mm256_maskstore_ps(ar, m0, _mm256_mul_ps(c0, sc));
            _mm256_maskstore_ps(ar + 8, m1, _mm256_mul_ps(c1, sc));
            _mm256_maskstore_ps(ar + 16, m2, _mm256_mul_ps(c2, sc));
            _mm256_maskstore_ps(ar + 24, m3, _mm256_mul_ps(c3, sc));
            _mm256_maskstore_ps(br, m0, _mm256_mul_ps(e0, sc));
            _mm256_maskstore_ps(br + 8, m1, _mm256_mul_ps(e1, sc));
            _mm256_maskstore_ps(br + 16, m2, _mm256_mul_ps(e2, sc));
            _mm256_maskstore_ps(br + 24, m3, _mm256_mul_ps(e3, sc));
        }
    }
}

static BFN_T256 void pv256(float *o, const float *v, const float *a, float *vt, int d, int HW)
{
    for (int c = 0; c < d; c++)
        for (int j = 0; j < HW; j++)
            vt[(size_t)j * d + c] = v[(size_t)c * HW + j];
    for (int c0 = 0; c0 < d; c0 += 8) {
        __m256i m = lanes8(d - c0);
        for (int i = 0; i < HW; i += 4) {
            int r[4] = {i, i + 1 < HW ? i + 1 : HW - 1, i + 2 < HW ? i + 2 : HW - 1,
                        i + 3 < HW ? i + 3 : HW - 1};
            const float *a0 = a + (size_t)r[0] * HW, *a1 = a + (size_t)r[1] * HW;
            const float *a2 = a + (size_t)r[2] * HW, *a3 = a + (size_t)r[3] * HW;
            __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            for (int j = 0; j < HW; j++) {
                __m256 x = _mm256_maskload_ps(vt + (size_t)j * d + c0, m);
                s0 = _mm256_fmadd_ps(_mm256_set1_ps(a0[j]), x, s0);
                s1 = _mm256_fmadd_ps(_mm256_set1_ps(a1[j]), x, s1);
                s2 = _mm256_fmadd_ps(_mm256_set1_ps(a2[j]), x, s2);
                s3 = _mm256_fmadd_ps(_mm256_set1_ps(a3[j]), x, s3);
            }
            float out[4][8];
            _mm256_storeu_ps(out[0], s0);
            _mm256_storeu_ps(out[1], s1);
            _mm256_storeu_ps(out[2], s2);
            _mm256_storeu_ps(out[3], s3);
            for (int l = 0; l < 8 && c0 + l < d; l++)
                for (int k = 0; k < 4; k++)
                    o[(size_t)(c0 + l) * HW + r[k]] = out[k][l];
        }
    }
}
#endif

/* max of r[0..n), n >= 1, in four independent chains (a max is exact, so
 * the order does not matter) */
static float row_max(const float *r, int n)
{
    float m[4] = {r[0], r[0], r[0], r[0]};
    int j = 1;
    for (; j + 4 <= n; j += 4)
        for (int k = 0; k < 4; k++)
            m[k] = r[j + k] > m[k] ? r[j + k] : m[k];
    for (; j < n; j++)
        m[0] = r[j] > m[0] ? r[j] : m[0];
    float x = m[0] > m[1] ? m[0] : m[1], y = m[2] > m[3] ? m[2] : m[3];
    return x > y ? x : y;
}

/* One head: a (HW, HW) = scale · QᵀK, and o (d, HW) = V · Pᵀ with P = a
 * (vt: HW · d floats of scratch); single-threaded sgemm where the loops
 * above are not available. */
static void head_scores(float *a, const float *q, const float *k, int d, int HW, float scale)
{
#if BFN_X86
    if (bfn_convk_isa() == BFN_CONVK_AVX512) {
        scores512(a, q, k, d, HW, scale);
        return;
    }
    if (bfn_convk_isa() == BFN_CONVK_AVX2) {
        scores256(a, q, k, d, HW, scale);
        return;
    }
#endif
    bfn_gemm_serial(1, 0, HW, HW, d, scale, q, HW, k, HW, 0.0f, a, HW);
}

static void head_pv(float *o, const float *v, const float *a, float *vt, int d, int HW)
{
#if BFN_X86
    if (bfn_convk_isa() == BFN_CONVK_AVX512) {
        pv512(o, v, a, vt, d, HW);
        return;
    }
    if (bfn_convk_isa() == BFN_CONVK_AVX2) {
        pv256(o, v, a, vt, d, HW);
        return;
    }
#endif
    (void)vt;
    bfn_gemm_serial(0, 1, d, HW, HW, 1.0f, v, HW, a, HW, 0.0f, o, HW);
}

static bfn_conv2d_shape pointwise(int cin, int cout, int HW)
{
    bfn_conv2d_shape c = {.cin = cin, .h = 1, .w = HW, .cout = cout, .k = 1, .stride = 1, .pad = 0};
    return c;
}

/* The projection's pieces: two halves of its output channels when the
 * halves suit the conv kernels' tiles, else one. */
static int proj_pieces(const bfn_attn_shape *s)
{
    return s->C % 16 == 0 ? 2 : 1;
}

/* Floats of the 1x1-conv workspace each of the 3 + 2 conv pieces uses. */
static size_t conv_piece_ws(const bfn_attn_shape *s)
{
    bfn_conv2d_shape c = pointwise(s->C, s->C, s->HW);
    return bfn_conv2d_piece_ws(&c);
}

/* Workspace: forward, per image, h = GroupNorm(in) (C, HW), the five
 * conv pieces' blocks and each head's Vᵀ (C, HW in all); backward, for B
 * images, h, dh, dO (B, C, HW), dqkv (B, 3C, HW) and dP (HW, HW). */
size_t bfn_attention_workspace(int B, const bfn_attn_shape *s)
{
    size_t chw = (size_t)s->C * s->HW;
    size_t fwd = 2 * chw + 5 * conv_piece_ws(s);
    size_t back = 6 * chw * B + (size_t)s->HW * s->HW;
    return fwd > back ? fwd : back;
}

int bfn_attention_pieces(const bfn_attn_shape *s, int stage)
{
    switch (stage) {
    case 0:
        return s->groups;
    case 1:
        return 3;
    case 2:
        return s->heads;
    default:
        return proj_pieces(s);
    }
}

void bfn_attention_forward_piece(float *out, const bfn_attn_saved *sv, const float *in,
                                 const bfn_attn_params *p, float *ws, const bfn_attn_shape *s,
                                 int stage, int q)
{
    int C = s->C, HW = s->HW, nh = s->heads, d = C / nh;
    size_t chw = (size_t)C * HW, cw = conv_piece_ws(s);
    float *h = ws;
    if (stage == 0) { /* h = GroupNorm(in), group q */
        int cg = C / s->groups;
        size_t off = (size_t)q * cg * HW;
        bfn_groupnorm_forward(h + off, sv->mean + q, sv->rstd + q, in + off, p->norm_w + q * cg,
                              p->norm_b + q * cg, 1, cg, HW, 1);
    } else if (stage == 1) { /* block q of [Q | K | V] = qkv conv of h */
        bfn_conv2d_shape c = pointwise(C, C, HW);
        bfn_conv2d_forward_range(sv->qkv + q * chw, h, p->qkv_w + (size_t)q * C * C,
                                 p->qkv_b + q * C, NULL, ws + chw + q * cw, &c, 0, HW);
    } else if (stage == 2) { /* head q: P = softmax(QᵀK/√d) (HW, HW), O = V·Pᵀ (d, HW) */
        const float *qq = sv->qkv + (size_t)q * d * HW;
        const float *k = qq + chw, *v = qq + 2 * chw;
        float *a = sv->att + (size_t)q * HW * HW, *o = sv->o + (size_t)q * d * HW;
        head_scores(a, qq, k, d, HW, 1.0f / sqrtf((float)d));
        for (int i = 0; i < HW; i++) {
            float *r = a + (size_t)i * HW, m = row_max(r, HW);
            bfn_vec_affine(r, r, HW, (float)(1.0 / bfn_vec_exp_shift(r, r, HW, m)), 0.0f, 0);
        }
        head_pv(o, v, a, ws + chw + 5 * cw + (size_t)q * d * HW, d, HW);
    } else { /* out rows of piece q = in + proj(O) + bias */
        int rows = C / proj_pieces(s), r0 = q * rows;
        bfn_conv2d_shape c = pointwise(C, rows, HW);
        bfn_conv2d_forward_range(out + (size_t)r0 * HW, sv->o, p->proj_w + (size_t)r0 * C,
                                 p->proj_b + r0, in + (size_t)r0 * HW, ws + chw + (3 + q) * cw, &c,
                                 0, HW);
    }
}

void bfn_attention_forward(float *out, const bfn_attn_saved *sv, const float *in,
                           const bfn_attn_params *p, float *ws, int B, const bfn_attn_shape *s)
{
    int C = s->C, HW = s->HW, nh = s->heads;
    size_t chw = (size_t)C * HW;
    for (int b = 0; b < B; b++) {
        bfn_attn_saved sb = {sv->mean + (size_t)b * s->groups, sv->rstd + (size_t)b * s->groups,
                             sv->qkv + 3 * chw * b, sv->att + (size_t)b * nh * HW * HW,
                             sv->o + chw * b};
        for (int stage = 0; stage < 4; stage++)
            for (int q = 0; q < bfn_attention_pieces(s, stage); q++)
                bfn_attention_forward_piece(out + chw * b, &sb, in + chw * b, p, ws, s, stage, q);
    }
}

void bfn_attention_backward(float *din, const bfn_attn_grads *g, const float *dout,
                            const float *in, const bfn_attn_saved *sv, const bfn_attn_params *p,
                            float *ws, int B, const bfn_attn_shape *s, int accumulate)
{
    int C = s->C, HW = s->HW, nh = s->heads, d = C / nh;
    float scale = 1.0f / sqrtf((float)d);
    bfn_conv2d_shape qs = pointwise(C, 3 * C, HW), ps = pointwise(C, C, HW);
    size_t chw = (size_t)B * C * HW;
    float *h = ws, *dh = ws + chw, *dO = ws + 2 * chw, *dqkv = ws + 3 * chw, *dP = ws + 6 * chw;

    if (din && accumulate)
        for (size_t i = 0; i < chw; i++)
            din[i] += dout[i];
    else if (din)
        memcpy(din, dout, sizeof(float) * chw);
    memset(dO, 0, sizeof(float) * chw);
    bfn_conv2d_backward(dO, g->proj_w, g->proj_b, dout, sv->o, p->proj_w, NULL, B, &ps);

    for (int b = 0; b < B; b++) {
        for (int hd = 0; hd < nh; hd++) {
            size_t qoff = ((size_t)b * 3 * C + (size_t)hd * d) * HW;
            const float *q = sv->qkv + qoff, *k = q + (size_t)C * HW, *v = q + (size_t)2 * C * HW;
            float *dq = dqkv + qoff, *dk = dq + (size_t)C * HW, *dv = dq + (size_t)2 * C * HW;
            const float *a = sv->att + ((size_t)b * nh + hd) * HW * HW;
            const float *go = dO + ((size_t)b * C + (size_t)hd * d) * HW;
            bfn_gemm_serial(0, 0, d, HW, HW, 1.0f, go, HW, a, HW, 0.0f, dv, HW);
            bfn_gemm_serial(1, 0, HW, HW, d, 1.0f, go, HW, v, HW, 0.0f, dP, HW);
            for (int i = 0; i < HW; i++) {
                float *r = dP + (size_t)i * HW;
                const float *pr = a + (size_t)i * HW;
                double sum_r = 0.0, dot = 0.0;
                bfn_vec_sums2(r, pr, HW, &sum_r, &dot);
                float fd = (float)dot;
                for (int j = 0; j < HW; j++)
                    r[j] = pr[j] * (r[j] - fd);
            }
            bfn_gemm_serial(0, 1, d, HW, HW, scale, k, HW, dP, HW, 0.0f, dq, HW);
            bfn_gemm_serial(0, 0, d, HW, HW, scale, q, HW, dP, HW, 0.0f, dk, HW);
        }
    }

    bfn_groupnorm_apply(h, in, sv->mean, sv->rstd, p->norm_w, p->norm_b, B, C, HW, s->groups);
    memset(dh, 0, sizeof(float) * chw);
    bfn_conv2d_backward(dh, g->qkv_w, g->qkv_b, dqkv, h, p->qkv_w, NULL, B, &qs);
    bfn_groupnorm_backward(din, g->norm_w, g->norm_b, dh, in, sv->mean, sv->rstd, p->norm_w, B,
                           C, HW, s->groups, 1);
}
