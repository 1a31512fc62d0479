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

/* Workspace: h = GroupNorm(in) (B, C, HW), then for backward dh (B, C, HW),
 * dO (B, C, HW), dqkv (B, 3C, HW) and dP (HW, HW). */
size_t bfn_attention_workspace(int B, const bfn_attn_shape *s)
{
    size_t chw = (size_t)B * s->C * s->HW;
    return 6 * chw + (size_t)s->HW * s->HW;
}

static bfn_conv2d_shape pointwise(int cin, int cout, int HW)
{
    bfn_conv2d_shape c = {.cin = cin, .h = 1, .w = HW, .cout = cout, .k = 1, .stride = 1, .pad = 0};
    return c;
}

static void softmax_rows(float *a, int rows, int cols)
{
    for (int i = 0; i < rows; i++) {
        float *r = a + (size_t)i * cols;
        float m = r[0];
        for (int j = 1; j < cols; j++)
            m = r[j] > m ? r[j] : m;
        double sum = 0.0;
        for (int j = 0; j < cols; j++) {
            r[j] = expf(r[j] - m);
            sum += r[j];
        }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < cols; j++)
            r[j] *= inv;
    }
}

void bfn_attention_forward(float *out, const bfn_attn_saved *sv, const float *in,
                           const bfn_attn_params *p, float *ws, int B, const bfn_attn_shape *s)
{
    int C = s->C, HW = s->HW, nh = s->heads, d = C / nh;
    float scale = 1.0f / sqrtf((float)d);
    bfn_conv2d_shape qs = pointwise(C, 3 * C, HW), ps = pointwise(C, C, HW);
    float *h = ws;
    bfn_groupnorm_forward(h, sv->mean, sv->rstd, in, p->norm_w, p->norm_b, B, C, HW, s->groups);
    bfn_conv2d_forward(sv->qkv, h, p->qkv_w, p->qkv_b, NULL, B, &qs, 0);
    for (int b = 0; b < B; b++) {
        for (int hd = 0; hd < nh; hd++) {
            const float *q = sv->qkv + ((size_t)b * 3 * C + (size_t)hd * d) * HW;
            const float *k = q + (size_t)C * HW, *v = q + (size_t)2 * C * HW;
            float *a = sv->att + ((size_t)b * nh + hd) * HW * HW;
            float *o = sv->o + ((size_t)b * C + (size_t)hd * d) * HW;
            bfn_gemm(1, 0, HW, HW, d, scale, q, HW, k, HW, 0.0f, a, HW); /* S (HW, HW) */
            softmax_rows(a, HW, HW);
            bfn_gemm(0, 1, d, HW, HW, 1.0f, v, HW, a, HW, 0.0f, o, HW); /* O = V·Pᵀ (d, HW) */
        }
    }
    memcpy(out, in, sizeof(float) * B * C * HW);
    bfn_conv2d_forward(out, sv->o, p->proj_w, p->proj_b, NULL, B, &ps, 1);
}

void bfn_attention_backward(float *din, const bfn_attn_grads *g, const float *dout,
                            const float *in, const bfn_attn_saved *sv, const bfn_attn_params *p,
                            float *ws, int B, const bfn_attn_shape *s)
{
    int C = s->C, HW = s->HW, nh = s->heads, d = C / nh;
    float scale = 1.0f / sqrtf((float)d);
    bfn_conv2d_shape qs = pointwise(C, 3 * C, HW), ps = pointwise(C, C, HW);
    size_t chw = (size_t)B * C * HW;
    float *h = ws, *dh = ws + chw, *dO = ws + 2 * chw, *dqkv = ws + 3 * chw, *dP = ws + 6 * chw;

    if (din)
        for (size_t i = 0; i < chw; i++)
            din[i] += dout[i];
    memset(dO, 0, sizeof(float) * chw);
    bfn_conv2d_backward(dO, g->proj_w, g->proj_b, dout, sv->o, p->proj_w, NULL, B, &ps);

    for (int b = 0; b < B; b++) {
        for (int hd = 0; hd < nh; hd++) {
            size_t qoff = ((size_t)b * 3 * C + (size_t)hd * d) * HW;
            const float *q = sv->qkv + qoff, *k = q + (size_t)C * HW, *v = q + (size_t)2 * C * HW;
            float *dq = dqkv + qoff, *dk = dq + (size_t)C * HW, *dv = dq + (size_t)2 * C * HW;
            const float *a = sv->att + ((size_t)b * nh + hd) * HW * HW;
            const float *go = dO + ((size_t)b * C + (size_t)hd * d) * HW;
            bfn_gemm(0, 0, d, HW, HW, 1.0f, go, HW, a, HW, 0.0f, dv, HW);
            bfn_gemm(1, 0, HW, HW, d, 1.0f, go, HW, v, HW, 0.0f, dP, HW);
            for (int i = 0; i < HW; i++) {
                float *r = dP + (size_t)i * HW;
                const float *pr = a + (size_t)i * HW;
                double dot = 0.0;
                for (int j = 0; j < HW; j++)
                    dot += (double)r[j] * pr[j];
                float fd = (float)dot;
                for (int j = 0; j < HW; j++)
                    r[j] = pr[j] * (r[j] - fd);
            }
            bfn_gemm(0, 1, d, HW, HW, scale, k, HW, dP, HW, 0.0f, dq, HW);
            bfn_gemm(0, 0, d, HW, HW, scale, q, HW, dP, HW, 0.0f, dk, HW);
        }
    }

    bfn_groupnorm_apply(h, in, sv->mean, sv->rstd, p->norm_w, p->norm_b, B, C, HW, s->groups);
    memset(dh, 0, sizeof(float) * chw);
    bfn_conv2d_backward(dh, g->qkv_w, g->qkv_b, dqkv, h, p->qkv_w, NULL, B, &qs);
    bfn_groupnorm_backward(din, g->norm_w, g->norm_b, dh, in, sv->mean, sv->rstd, p->norm_w, B,
                           C, HW, s->groups);
}
