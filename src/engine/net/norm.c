/* GroupNorm (Wu & He 2018, eq. 1-3) with per-channel affine, alone or fused
 * with SiLU. Each (image, group) is one contiguous block of (C/G)·HW floats.
 * Statistics are summed in double so large groups lose no precision.
 *
 * Backward, with x̂ = (x − μ)·r, y = γ x̂ + β and n the group size:
 *   dγ_c += Σ dy·x̂,  dβ_c += Σ dy,
 *   dx = r·(γ dy − mean(γ dy) − x̂·mean(γ dy·x̂)). */
#include <math.h>

#include "net/layers.h"

static double sum_f(const float *x, size_t n)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i];
        s1 += x[i + 1];
        s2 += x[i + 2];
        s3 += x[i + 3];
    }
    for (; i < n; i++)
        s0 += x[i];
    return (s0 + s1) + (s2 + s3);
}

static double sumsq_dev(const float *x, size_t n, double m)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        double a = x[i] - m, b = x[i + 1] - m, c = x[i + 2] - m, d = x[i + 3] - m;
        s0 += a * a;
        s1 += b * b;
        s2 += c * c;
        s3 += d * d;
    }
    for (; i < n; i++)
        s0 += (x[i] - m) * (x[i] - m);
    return (s0 + s1) + (s2 + s3);
}

static void gn_stats(float *mean, float *rstd, const float *in, int B, int C, int HW, int G)
{
    size_t n = (size_t)(C / G) * HW;
    for (int i = 0; i < B * G; i++) {
        const float *x = in + (size_t)i * n;
        double m = sum_f(x, n) / (double)n;
        double v = sumsq_dev(x, n, m) / (double)n; /* biased, as PyTorch */
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
            const float *x = in + off;
            float *y = out + off;
            if (silu)
                for (int p = 0; p < HW; p++) {
                    float v = x[p] * a + sh;
                    y[p] = v * bfn_sigmoidf(v);
                }
            else
                for (int p = 0; p < HW; p++)
                    y[p] = x[p] * a + sh;
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
 * SiLU, stores dy = dout·SiLU'(y) in dy_out (plain GroupNorm: dy = dout);
 * pass 2 is then dx += k1·dy + k2·x + k0 per channel, no exp recomputed. */
static void gn_backward(float *din, float *dgamma, float *dbeta, const float *dout, float *dy_out,
                        const float *in, const float *mean, const float *rstd,
                        const float *gamma, const float *beta, int B, int C, int HW, int G,
                        int silu)
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
                const float *x = in + off, *d = dout + off;
                double sdy = 0.0, sdyx = 0.0;
                if (silu) {
                    float a = gamma[c] * rstd[i];
                    float sh = beta[c] - mean[i] * a;
                    float *dy = dy_out + off;
                    for (int p = 0; p < HW; p++) {
                        float y = x[p] * a + sh;
                        float sg = bfn_sigmoidf(y);
                        float v = d[p] * sg * (1.0f + y * (1.0f - sg));
                        dy[p] = v;
                        sdy += v;
                        sdyx += (double)v * x[p];
                    }
                } else {
                    for (int p = 0; p < HW; p++) {
                        sdy += d[p];
                        sdyx += (double)d[p] * x[p];
                    }
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
                const float *x = in + off, *dy = (silu ? dy_out : dout) + off;
                float *dx = din + off;
                float k1 = (float)(r * gamma[c]);
                for (int p = 0; p < HW; p++)
                    dx[p] += k1 * dy[p] + k2 * x[p] + k0;
            }
        }
    }
}

void bfn_groupnorm_backward(float *din, float *dgamma, float *dbeta, const float *dout,
                            const float *in, const float *mean, const float *rstd,
                            const float *gamma, int B, int C, int HW, int G)
{
    gn_backward(din, dgamma, dbeta, dout, NULL, in, mean, rstd, gamma, NULL, B, C, HW, G, 0);
}

void bfn_groupnorm_silu_backward(float *din, float *dgamma, float *dbeta, float *dout,
                                 const float *in, const float *mean, const float *rstd,
                                 const float *gamma, const float *beta, int B, int C, int HW,
                                 int G)
{
    gn_backward(din, dgamma, dbeta, dout, dout, in, mean, rstd, gamma, beta, B, C, HW, G, 1);
}
