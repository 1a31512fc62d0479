/* GroupNorm (Wu & He 2018, eq. 1-3) with per-channel affine, alone or fused
 * with SiLU. Each (image, group) is one contiguous block of (C/G)·HW floats.
 * Statistics are summed in double so large groups lose no precision.
 *
 * Backward, with x̂ = (x − μ)·r, y = γ x̂ + β and n the group size:
 *   dγ_c += Σ dy·x̂,  dβ_c += Σ dy,
 *   dx = r·(γ dy − mean(γ dy) − x̂·mean(γ dy·x̂)). */
#include <math.h>

#include "net/layers.h"
#include "net/vec.h"

static void gn_stats(float *mean, float *rstd, const float *in, int B, int C, int HW, int G)
{
    size_t n = (size_t)(C / G) * HW;
    for (int i = 0; i < B * G; i++) {
        const float *x = in + (size_t)i * n;
        double m = bfn_vec_sum(x, n) / (double)n;
        double v = bfn_vec_sumsq_dev(x, n, m) / (double)n; /* biased, as PyTorch */
        mean[i] = (float)m;
        rstd[i] = (float)(1.0 / sqrt(v + BFN_GN_EPS));
    }
}

/* y = a·x + c per channel, a = γ r, c = β − μ a; then optionally SiLU. */
static void gn_apply(float *out, const float *in, const float *mean, const float *rstd,
                     const float *gamma, const float *beta, int B, int C, int HW, int G,
                     int silu)
{
    int cg = C / G;
    for (int b = 0; b < B; b++) {
        for (int c = 0; c < C; c++) {
            int i = b * G + c / cg;
            float a = gamma[c] * rstd[i];
            float sh = beta[c] - mean[i] * a;
            size_t off = ((size_t)b * C + c) * HW;
            bfn_vec_affine(out + off, in + off, HW, a, sh, silu);
        }
    }
}

void bfn_groupnorm_forward(float *out, float *mean, float *rstd, const float *in,
                           const float *gamma, const float *beta, int B, int C, int HW, int G)
{
    gn_stats(mean, rstd, in, B, C, HW, G);
    gn_apply(out, in, mean, rstd, gamma, beta, B, C, HW, G, 0);
}

void bfn_groupnorm_apply(float *out, const float *in, const float *mean, const float *rstd,
                         const float *gamma, const float *beta, int B, int C, int HW, int G)
{
    gn_apply(out, in, mean, rstd, gamma, beta, B, C, HW, G, 0);
}

void bfn_groupnorm_silu_forward(float *out, float *mean, float *rstd, const float *in,
                                const float *gamma, const float *beta, int B, int C, int HW,
                                int G)
{
    gn_stats(mean, rstd, in, B, C, HW, G);
    gn_apply(out, in, mean, rstd, gamma, beta, B, C, HW, G, 1);
}

void bfn_groupnorm_silu_apply(float *out, const float *in, const float *mean, const float *rstd,
                              const float *gamma, const float *beta, int B, int C, int HW, int G)
{
    gn_apply(out, in, mean, rstd, gamma, beta, B, C, HW, G, 1);
}

/* Pass 1 of each group sums what the closed form needs and, when fused with
 * SiLU, turns dout into dy = dout·SiLU'(y) in place (plain GroupNorm: dy =
 * dout); pass 2 is then dx (+)= k1·dy + k2·x + k0 per channel. */
static void gn_backward(float *din, float *dgamma, float *dbeta, float *dout, const float *in,
                        const float *mean, const float *rstd, const float *gamma,
                        const float *beta, int B, int C, int HW, int G, int silu, int accumulate)
{
    int cg = C / G;
    double n = (double)cg * HW;
    for (int b = 0; b < B; b++) {
        for (int g = 0; g < G; g++) {
            int i = b * G + g;
            double mu = mean[i], r = rstd[i];
            double s_dxh = 0.0, s_dxh_xh = 0.0; /* Σ γ dy, Σ γ dy x̂ over the group */
            for (int c = g * cg; c < (g + 1) * cg; c++) {
                size_t off = ((size_t)b * C + c) * HW;
                double sdy = 0.0, sdyx = 0.0;
                if (silu) {
                    float a = gamma[c] * rstd[i];
                    float sh = beta[c] - mean[i] * a;
                    bfn_vec_silu_grad_sums(dout + off, in + off, HW, a, sh, &sdy, &sdyx);
                } else {
                    bfn_vec_sums2(dout + off, in + off, HW, &sdy, &sdyx);
                }
                double sdyxh = r * (sdyx - mu * sdy); /* Σ dy x̂ */
                dgamma[c] += (float)sdyxh;
                dbeta[c] += (float)sdy;
                s_dxh += gamma[c] * sdy;
                s_dxh_xh += gamma[c] * sdyxh;
            }
            if (!din)
                continue;
            /* dx = r (γ dy − m1 − x̂ m2), x̂ = (x − μ) r */
            double m1 = s_dxh / n, m2 = s_dxh_xh / n;
            float k2 = (float)(-r * r * m2), k0 = (float)(r * (mu * r * m2 - m1));
            for (int c = g * cg; c < (g + 1) * cg; c++) {
                size_t off = ((size_t)b * C + c) * HW;
                bfn_vec_lincomb(din + off, dout + off, in + off, HW, (float)(r * gamma[c]), k2, k0,
                                accumulate);
            }
        }
    }
}

void bfn_groupnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                            const float *in, const float *mean, const float *rstd,
                            const float *gamma, int B, int C, int HW, int G, int accumulate)
{
    /* without SiLU, pass 1 only reads dout */
    gn_backward(din, dgamma, dbeta, (float *)dout, in, mean, rstd, gamma, NULL, B, C, HW, G, 0,
                accumulate);
}

void bfn_groupnorm_silu_backward(float *din, float *dgamma, float *dbeta, float *dout,
                                 const float *in, const float *mean, const float *rstd,
                                 const float *gamma, const float *beta, int B, int C, int HW,
                                 int G, int accumulate)
{
    gn_backward(din, dgamma, dbeta, dout, in, mean, rstd, gamma, beta, B, C, HW, G, 1, accumulate);
}
