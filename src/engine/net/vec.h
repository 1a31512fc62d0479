/* Elementwise and reduction kernels of the layers (internal to the engine).
 *
 * Each has a plain C version and, on x86-64 CPUs with AVX2 and FMA, an
 * 8-wide version (16-wide with AVX-512 for the exp-bound ones) picked at
 * run time; the build itself targets a baseline CPU. The vector versions
 * handle the last elements with masked loads and stores, so every element
 * goes through the same arithmetic wherever a call starts or ends. Sums are accumulated in double, as the C versions do.
 * The vector exp (Cephes polynomial) is within 2 ulp of expf, so SiLU and
 * its derivative match the C versions to float rounding. */
#ifndef BFN_NET_VEC_H
#define BFN_NET_VEC_H

#include <stddef.h>
#include <stdint.h>

/* The versions in use: 0 plain C, 1 AVX2+FMA, 2 AVX-512 (for SiLU and its
 * derivative, AVX2 for the rest). */
int bfn_vec_active(void);

/* Σ x */
double bfn_vec_sum(const float *x, size_t n);
/* Σ (x − m)² */
double bfn_vec_sumsq_dev(const float *x, size_t n, double m);
/* y = a·x + c, or SiLU(a·x + c) when silu; y may equal x. */
void bfn_vec_affine(float *y, const float *x, size_t n, float a, float c, int silu);
/* y = x + c; y may equal x. */
void bfn_vec_add_const(float *y, const float *x, size_t n, float c);
/* y += x */
void bfn_vec_add(float *y, const float *x, size_t n);
/* For v = a·x + c: d ← d·SiLU'(v) in place, then *sd += Σ d, *sdx += Σ d·x. */
void bfn_vec_silu_grad_sums(float *d, const float *x, size_t n, float a, float c, double *sd,
                            double *sdx);
/* *sd += Σ d, *sdx += Σ d·x */
void bfn_vec_sums2(const float *d, const float *x, size_t n, double *sd, double *sdx);
/* y = k1·d + k2·x + k0, or y += that when accumulate. */
void bfn_vec_lincomb(float *y, const float *d, const float *x, size_t n, float k1, float k2,
                     float k0, int accumulate);
/* y = mask ? x·scale : 0 (inverted dropout); y may equal x. */
void bfn_vec_mask_scale(float *y, const float *x, const uint8_t *mask, size_t n, float scale);
/* y = exp(x − shift); returns Σ y. y may equal x. */
double bfn_vec_exp_shift(float *y, const float *x, size_t n, float shift);
/* y[o] = Σ_i x[i]·w[o·n + i] for o < m: sixteen lane sums (lane i mod 16,
 * fused multiply-adds in i order) added in a fixed tree, so every version
 * (and every BLAS) gives the same bits. */
void bfn_vec_dots(float *y, const float *x, const float *w, size_t n, size_t m);

/* The implementations behind the functions above, so tests can compare
 * them: bfn_vec_kernels_get(0) is the C one, (1) the AVX2 one, (2) the
 * AVX-512 one, NULL when this CPU or build has it not. */
typedef struct {
    double (*sum)(const float *x, size_t n);
    double (*sumsq_dev)(const float *x, size_t n, double m);
    void (*affine)(float *y, const float *x, size_t n, float a, float c, int silu);
    void (*add_const)(float *y, const float *x, size_t n, float c);
    void (*add)(float *y, const float *x, size_t n);
    void (*silu_grad_sums)(float *d, const float *x, size_t n, float a, float c, double *sd,
                           double *sdx);
    void (*sums2)(const float *d, const float *x, size_t n, double *sd, double *sdx);
    void (*lincomb)(float *y, const float *d, const float *x, size_t n, float k1, float k2,
                    float k0, int accumulate);
    void (*mask_scale)(float *y, const float *x, const uint8_t *mask, size_t n, float scale);
    double (*exp_shift)(float *y, const float *x, size_t n, float shift);
    void (*dots)(float *y, const float *x, const float *w, size_t n, size_t m);
} bfn_vec_kernels;
const bfn_vec_kernels *bfn_vec_kernels_get(int level);

#endif
