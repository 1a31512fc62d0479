/* Elementwise and reduction kernels: plain C, AVX2+FMA, and AVX-512 for the
 * exp-bound ones, chosen at run time (the functions carry a target
 * attribute, so the rest of the build stays baseline x86-64). */
#include "net/vec.h"

#include "net/layers.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define VEC_X86 1
#include <immintrin.h>
#else
#define VEC_X86 0
#endif

/* ---- plain C ---- */

static inline float sigmoid_c(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* Sums in double over 32 lanes: element i goes to lane i mod 32 in order,
 * and the lanes are added in one fixed tree, in every version (C, AVX2,
 * AVX-512), so the statistics have the same bits whatever the CPU. */
static double tree32(const double l[32])
{
    double a[16];
    for (int i = 0; i < 16; i++)
        a[i] = l[i] + l[i + 16];
    for (int w = 8; w >= 1; w /= 2)
        for (int i = 0; i < w; i++)
            a[i] = a[i] + a[i + w];
    return a[0];
}

static double sum_c(const float *x, size_t n)
{
    double l[32] = {0};
    for (size_t i = 0; i < n; i++)
        l[i & 31] += x[i];
    return tree32(l);
}

static double sumsq_dev_c(const float *x, size_t n, double m)
{
    double l[32] = {0};
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - m;
        l[i & 31] = fma(d, d, l[i & 31]);
    }
    return tree32(l);
}

static void affine_c(float *y, const float *x, size_t n, float a, float c, int silu)
{
    if (silu)
        for (size_t i = 0; i < n; i++) {
            float v = x[i] * a + c;
            y[i] = v * sigmoid_c(v);
        }
    else
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] * a + c;
}

static void add_const_c(float *y, const float *x, size_t n, float c)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] + c;
}

static void add_c(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}

/* SiLU'(v) = σ(v)·(1 + v·(1 − σ(v))) */
static void silu_grad_sums_c(float *d, const float *x, size_t n, float a, float c, double *sd,
                             double *sdx)
{
    double s = 0.0, sx = 0.0;
    for (size_t i = 0; i < n; i++) {
        float v = x[i] * a + c;
        float sg = sigmoid_c(v);
        float g = d[i] * sg * (1.0f + v * (1.0f - sg));
        d[i] = g;
        s += g;
        sx += (double)g * x[i];
    }
    *sd += s;
    *sdx += sx;
}

static void sums2_c(const float *d, const float *x, size_t n, double *sd, double *sdx)
{
    double s = 0.0, sx = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += d[i];
        sx += (double)d[i] * x[i];
    }
    *sd += s;
    *sdx += sx;
}

static void lincomb_c(float *y, const float *d, const float *x, size_t n, float k1, float k2,
                      float k0, int accumulate)
{
    if (accumulate)
        for (size_t i = 0; i < n; i++)
            y[i] += k1 * d[i] + k2 * x[i] + k0;
    else
        for (size_t i = 0; i < n; i++)
            y[i] = k1 * d[i] + k2 * x[i] + k0;
}

static void mask_scale_c(float *y, const float *x, const uint8_t *mask, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        y[i] = mask[i] ? x[i] * scale : 0.0f;
}

static double exp_shift_c(float *y, const float *x, size_t n, float shift)
{
    double l[32] = {0};
    for (size_t i = 0; i < n; i++) {
        y[i] = expf(x[i] - shift);
        l[i & 31] += y[i];
    }
    return tree32(l);
}

/* The 16 lane sums of one dot product, added in one fixed tree (every
 * version: same bits). */
static float dot_tree(const float l[16])
{
    float a[8];
    for (int i = 0; i < 8; i++)
        a[i] = l[i] + l[i + 8];
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

static void dots_c(float *y, const float *x, const float *w, size_t n, size_t m)
{
    for (size_t o = 0; o < m; o++) {
        const float *r = w + o * n;
        float l[16] = {0};
        for (size_t i = 0; i < n; i++)
            l[i & 15] = fmaf(x[i], r[i], l[i & 15]);
        y[o] = dot_tree(l);
    }
}

static const bfn_vec_kernels kernels_c = {
    sum_c, sumsq_dev_c, affine_c, add_const_c, add_c, silu_grad_sums_c, sums2_c, lincomb_c,
    mask_scale_c, exp_shift_c, dots_c,
};

/* ---- AVX2 + FMA ---- */

#if VEC_X86
#define TGT __attribute__((target("avx2,fma")))

static inline TGT __m256i tail_mask(size_t r)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline TGT double hsum_pd(__m256d v)
{
    __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
    lo = _mm_add_pd(lo, hi);
    return _mm_cvtsd_f64(lo) + _mm_cvtsd_f64(_mm_unpackhi_pd(lo, lo));
}

/* exp(x), Cephes expf: x = n·ln2 + r, exp(r) by a degree-6 polynomial. The
 * clamp keeps 2^n finite; max(lo, x) and min(hi, ·) return x when it is NaN,
 * so NaN propagates. */
static inline TGT __m256 exp256(__m256 x)
{
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-88.3762626647949f);
    x = _mm256_min_ps(hi, _mm256_max_ps(lo, x));
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

static inline TGT __m256 sigmoid256(__m256 v)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    return _mm256_div_ps(one, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), v))));
}

static inline TGT __m256 load_tail(const float *x, size_t r)
{
    return _mm256_maskload_ps(x, tail_mask(r));
}

static inline TGT void store_tail(float *y, size_t r, __m256 v)
{
    _mm256_maskstore_ps(y, tail_mask(r), v);
}

static inline TGT void acc_pd(__m256d *a0, __m256d *a1, __m256 v)
{
    *a0 = _mm256_add_pd(*a0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    *a1 = _mm256_add_pd(*a1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}

static inline TGT void acc_prod_pd(__m256d *a0, __m256d *a1, __m256 u, __m256 v)
{
    *a0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(u)),
                          _mm256_cvtps_pd(_mm256_castps256_ps128(v)), *a0);
    *a1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(u, 1)),
                          _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), *a1);
}

/* tree32 on the 32 lanes held as a[k] = lanes 4k..4k+3: the same
 * additions in the same order, in registers. */
static inline TGT double tree32_avx2(const __m256d a[8])
{
    __m256d b0 = _mm256_add_pd(a[0], a[4]), b1 = _mm256_add_pd(a[1], a[5]);
    __m256d b2 = _mm256_add_pd(a[2], a[6]), b3 = _mm256_add_pd(a[3], a[7]);
    __m256d c0 = _mm256_add_pd(b0, b2), c1 = _mm256_add_pd(b1, b3);
    __m256d d = _mm256_add_pd(c0, c1);
    __m128d e = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
    return _mm_cvtsd_f64(e) + _mm_cvtsd_f64(_mm_unpackhi_pd(e, e));
}

/* Lanes 4k..4k+3 of the floats at x (the first r of 32 valid; the rest 0)
 * in double. */
static inline TGT __m256d load4_pd(const float *x, int k, size_t r)
{
    int c = (int)r - 4 * k;
    if (c >= 4)
        return _mm256_cvtps_pd(_mm_loadu_ps(x + 4 * k));
    if (c <= 0)
        return _mm256_setzero_pd();
    return _mm256_cvtps_pd(
        _mm_maskload_ps(x + 4 * k, _mm_cmpgt_epi32(_mm_set1_epi32(c), _mm_setr_epi32(0, 1, 2, 3))));
}

static TGT double sum_avx2(const float *x, size_t n)
{
    __m256d a[8];
    for (int k = 0; k < 8; k++)
        a[k] = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 8; k++)
            a[k] = _mm256_add_pd(a[k], _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * k)));
    if (i < n) /* zero lanes past the end leave a lane as it was */
        for (int k = 0; k < 8; k++)
            a[k] = _mm256_add_pd(a[k], load4_pd(x + i, k, n - i));
    return tree32_avx2(a);
}

static TGT double sumsq_dev_avx2(const float *x, size_t n, double m)
{
    __m256d a[8], md = _mm256_set1_pd(m);
    for (int k = 0; k < 8; k++)
        a[k] = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 8; k++) {
            __m256d d = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i + 4 * k)), md);
            a[k] = _mm256_fmadd_pd(d, d, a[k]);
        }
    for (int k = 0; i < n && k < 8; k++) {
        int c = (int)(n - i) - 4 * k;
        if (c <= 0)
            break;
        __m256d d = _mm256_sub_pd(load4_pd(x + i, k, n - i), md);
        if (c < 4) /* lanes past the end add nothing */
            d = _mm256_and_pd(d, _mm256_castsi256_pd(_mm256_cmpgt_epi64(
                                     _mm256_set1_epi64x(c), _mm256_setr_epi64x(0, 1, 2, 3))));
        a[k] = _mm256_fmadd_pd(d, d, a[k]);
    }
    return tree32_avx2(a);
}

static inline TGT __m256 affine_silu8(__m256 x, __m256 a, __m256 c)
{
    __m256 v = _mm256_fmadd_ps(x, a, c);
    return _mm256_mul_ps(v, sigmoid256(v));
}

static TGT void affine_avx2(float *y, const float *x, size_t n, float a, float c, int silu)
{
    __m256 va = _mm256_set1_ps(a), vc = _mm256_set1_ps(c);
    size_t i = 0, r;
    if (silu) {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(y + i, affine_silu8(_mm256_loadu_ps(x + i), va, vc));
        if ((r = n - i) > 0)
            store_tail(y + i, r, affine_silu8(load_tail(x + i, r), va, vc));
    } else {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), va, vc));
        if ((r = n - i) > 0)
            store_tail(y + i, r, _mm256_fmadd_ps(load_tail(x + i, r), va, vc));
    }
}

static TGT void add_const_avx2(float *y, const float *x, size_t n, float c)
{
    __m256 vc = _mm256_set1_ps(c);
    size_t i = 0, r;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(x + i), vc));
    if ((r = n - i) > 0)
        store_tail(y + i, r, _mm256_add_ps(load_tail(x + i, r), vc));
}

static TGT void add_avx2(float *y, const float *x, size_t n)
{
    size_t i = 0, r;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(x + i)));
    if ((r = n - i) > 0)
        store_tail(y + i, r, _mm256_add_ps(load_tail(y + i, r), load_tail(x + i, r)));
}

static inline TGT __m256 silu_grad8(__m256 d, __m256 x, __m256 a, __m256 c)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 v = _mm256_fmadd_ps(x, a, c);
    __m256 sg = sigmoid256(v);
    __m256 k = _mm256_fmadd_ps(v, _mm256_sub_ps(one, sg), one);
    return _mm256_mul_ps(_mm256_mul_ps(d, sg), k);
}

static TGT void silu_grad_sums_avx2(float *d, const float *x, size_t n, float a, float c,
                                    double *sd, double *sdx)
{
    __m256 va = _mm256_set1_ps(a), vc = _mm256_set1_ps(c);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    __m256d t0 = _mm256_setzero_pd(), t1 = _mm256_setzero_pd();
    size_t i = 0, r;
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        __m256 g = silu_grad8(_mm256_loadu_ps(d + i), xv, va, vc);
        _mm256_storeu_ps(d + i, g);
        acc_pd(&s0, &s1, g);
        acc_prod_pd(&t0, &t1, g, xv);
    }
    if ((r = n - i) > 0) { /* masked lanes load d = x = 0 and so add exact zeros */
        __m256 xv = load_tail(x + i, r);
        __m256 g = silu_grad8(load_tail(d + i, r), xv, va, vc);
        store_tail(d + i, r, g);
        acc_pd(&s0, &s1, g);
        acc_prod_pd(&t0, &t1, g, xv);
    }
    *sd += hsum_pd(_mm256_add_pd(s0, s1));
    *sdx += hsum_pd(_mm256_add_pd(t0, t1));
}

static TGT void sums2_avx2(const float *d, const float *x, size_t n, double *sd, double *sdx)
{
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    __m256d t0 = _mm256_setzero_pd(), t1 = _mm256_setzero_pd();
    size_t i = 0, r;
    for (; i + 8 <= n; i += 8) {
        __m256 dv = _mm256_loadu_ps(d + i);
        acc_pd(&s0, &s1, dv);
        acc_prod_pd(&t0, &t1, dv, _mm256_loadu_ps(x + i));
    }
    if ((r = n - i) > 0) {
        __m256 dv = load_tail(d + i, r);
        acc_pd(&s0, &s1, dv);
        acc_prod_pd(&t0, &t1, dv, load_tail(x + i, r));
    }
    *sd += hsum_pd(_mm256_add_pd(s0, s1));
    *sdx += hsum_pd(_mm256_add_pd(t0, t1));
}

static TGT void lincomb_avx2(float *y, const float *d, const float *x, size_t n, float k1,
                             float k2, float k0, int accumulate)
{
    __m256 a = _mm256_set1_ps(k1), b = _mm256_set1_ps(k2), c = _mm256_set1_ps(k0);
    size_t i = 0, r;
    if (accumulate) {
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_fmadd_ps(a, _mm256_loadu_ps(d + i),
                                       _mm256_fmadd_ps(b, _mm256_loadu_ps(x + i), c));
            _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), v));
        }
        if ((r = n - i) > 0) {
            __m256 v = _mm256_fmadd_ps(a, load_tail(d + i, r), _mm256_fmadd_ps(b, load_tail(x + i, r), c));
            store_tail(y + i, r, _mm256_add_ps(load_tail(y + i, r), v));
        }
    } else {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(d + i),
                                                    _mm256_fmadd_ps(b, _mm256_loadu_ps(x + i), c)));
        if ((r = n - i) > 0)
            store_tail(y + i, r, _mm256_fmadd_ps(a, load_tail(d + i, r),
                                                 _mm256_fmadd_ps(b, load_tail(x + i, r), c)));
    }
}

static inline TGT __m256 mask8(const uint8_t *m)
{
    __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)m));
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(b, _mm256_setzero_si256()));
}

static TGT void mask_scale_avx2(float *y, const float *x, const uint8_t *mask, size_t n,
                                float scale)
{
    __m256 s = _mm256_set1_ps(scale);
    size_t i = 0, r;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_and_ps(mask8(mask + i), _mm256_mul_ps(_mm256_loadu_ps(x + i), s)));
    if ((r = n - i) > 0) {
        uint8_t m[8] = {0};
        memcpy(m, mask + i, r);
        store_tail(y + i, r, _mm256_and_ps(mask8(m), _mm256_mul_ps(load_tail(x + i, r), s)));
    }
}

static TGT double exp_shift_avx2(float *y, const float *x, size_t n, float shift)
{
    __m256 s = _mm256_set1_ps(shift);
    __m256d a[8];
    for (int k = 0; k < 8; k++)
        a[k] = _mm256_setzero_pd();
    for (size_t i = 0; i < n; i += 32)
        for (int k = 0; k < 4; k++) {
            size_t o = i + 8 * (size_t)k, r;
            if (o >= n)
                break;
            __m256 v;
            if ((r = n - o) >= 8) {
                v = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + o), s));
                _mm256_storeu_ps(y + o, v);
            } else { /* masked lanes are zeroed before the sum */
                v = _mm256_and_ps(exp256(_mm256_sub_ps(load_tail(x + o, r), s)),
                                  _mm256_castsi256_ps(tail_mask(r)));
                store_tail(y + o, r, v);
            }
            a[2 * k] = _mm256_add_pd(a[2 * k], _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
            a[2 * k + 1] = _mm256_add_pd(a[2 * k + 1], _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
        }
    return tree32_avx2(a);
}

/* lane l of the 16 sums x[i]·w[i] over i ≡ l (mod 16), two vectors of 8
 * (the tail masked: zero products leave a lane as it was), then dot_tree's
 * additions in registers */
static TGT void dots_avx2(float *y, const float *x, const float *w, size_t n, size_t m)
{
    for (size_t o = 0; o < m; o++) {
        const float *r = w + o * n;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0;
        size_t i = 0;
        for (; i + 16 <= n; i += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(r + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(r + i + 8), a1);
        }
        if (i < n) {
            size_t t = n - i, t1 = t > 8 ? 8 : t;
            a0 = _mm256_fmadd_ps(load_tail(x + i, t1), load_tail(r + i, t1), a0);
            if (t > 8)
                a1 = _mm256_fmadd_ps(load_tail(x + i + 8, t - 8), load_tail(r + i + 8, t - 8), a1);
        }
        __m256 a = _mm256_add_ps(a0, a1); /* a[i] = l[i] + l[i + 8] */
        __m128 v = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        __m128 u = _mm_add_ps(v, _mm_movehl_ps(v, v));                /* (v0 + v2, v1 + v3) */
        y[o] = _mm_cvtss_f32(_mm_add_ss(u, _mm_shuffle_ps(u, u, 1))); /* u0 + u1 */
    }
}

static const bfn_vec_kernels kernels_avx2 = {
    sum_avx2, sumsq_dev_avx2, affine_avx2, add_const_avx2, add_avx2, silu_grad_sums_avx2,
    sums2_avx2, lincomb_avx2, mask_scale_avx2, exp_shift_avx2, dots_avx2,
};

/* ---- AVX-512: the exp-bound kernels, the softmax's exponentials and the
 * GroupNorm statistics 16 wide, the rest as AVX2 ---- */

#define T512 __attribute__((target("avx512f")))

static inline T512 __mmask16 tail16(size_t r)
{
    return (__mmask16)((1u << r) - 1);
}

/* exp256 at 16 lanes (same constants, same operations per lane) */
static inline T512 __m512 exp512(__m512 x)
{
    const __m512 hi = _mm512_set1_ps(88.3762626647949f), lo = _mm512_set1_ps(-88.3762626647949f);
    x = _mm512_min_ps(hi, _mm512_max_ps(lo, x));
    __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    __m512 y = _mm512_set1_ps(1.9875691500e-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
}

static inline T512 __m512 sigmoid512(__m512 v)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    return _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
}

static inline T512 __m512 affine_silu16(__m512 x, __m512 a, __m512 c)
{
    __m512 v = _mm512_fmadd_ps(x, a, c);
    return _mm512_mul_ps(v, sigmoid512(v));
}

static T512 void affine_avx512(float *y, const float *x, size_t n, float a, float c, int silu)
{
    __m512 va = _mm512_set1_ps(a), vc = _mm512_set1_ps(c);
    size_t i = 0, r;
    if (!silu) {
        affine_avx2(y, x, n, a, c, 0);
        return;
    }
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, affine_silu16(_mm512_loadu_ps(x + i), va, vc));
    if ((r = n - i) > 0)
        _mm512_mask_storeu_ps(y + i, tail16(r),
                              affine_silu16(_mm512_maskz_loadu_ps(tail16(r), x + i), va, vc));
}

/* Lanes 0..7 and 8..15 of v in double. */
static inline T512 __m512d lo_pd512(__m512 v)
{
    return _mm512_cvtps_pd(_mm512_castps512_ps256(v));
}

static inline T512 __m512d hi_pd512(__m512 v)
{
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

static inline T512 void acc_pd512(__m512d *a0, __m512d *a1, __m512 v)
{
    *a0 = _mm512_add_pd(*a0, lo_pd512(v));
    *a1 = _mm512_add_pd(*a1, hi_pd512(v));
}

static inline T512 void acc_prod_pd512(__m512d *a0, __m512d *a1, __m512 u, __m512 v)
{
    *a0 = _mm512_fmadd_pd(lo_pd512(u), lo_pd512(v), *a0);
    *a1 = _mm512_fmadd_pd(hi_pd512(u), hi_pd512(v), *a1);
}

static inline T512 __m512 silu_grad16(__m512 d, __m512 x, __m512 a, __m512 c)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 v = _mm512_fmadd_ps(x, a, c);
    __m512 sg = sigmoid512(v);
    __m512 k = _mm512_fmadd_ps(v, _mm512_sub_ps(one, sg), one);
    return _mm512_mul_ps(_mm512_mul_ps(d, sg), k);
}

static T512 void silu_grad_sums_avx512(float *d, const float *x, size_t n, float a, float c,
                                       double *sd, double *sdx)
{
    __m512 va = _mm512_set1_ps(a), vc = _mm512_set1_ps(c);
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    __m512d t0 = _mm512_setzero_pd(), t1 = _mm512_setzero_pd();
    size_t i = 0, r;
    for (; i + 16 <= n; i += 16) {
        __m512 xv = _mm512_loadu_ps(x + i);
        __m512 g = silu_grad16(_mm512_loadu_ps(d + i), xv, va, vc);
        _mm512_storeu_ps(d + i, g);
        acc_pd512(&s0, &s1, g);
        acc_prod_pd512(&t0, &t1, g, xv);
    }
    if ((r = n - i) > 0) { /* masked lanes load d = x = 0 and so add exact zeros */
        __m512 xv = _mm512_maskz_loadu_ps(tail16(r), x + i);
        __m512 g = silu_grad16(_mm512_maskz_loadu_ps(tail16(r), d + i), xv, va, vc);
        _mm512_mask_storeu_ps(d + i, tail16(r), g);
        acc_pd512(&s0, &s1, g);
        acc_prod_pd512(&t0, &t1, g, xv);
    }
    *sd += _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    *sdx += _mm512_reduce_add_pd(_mm512_add_pd(t0, t1));
}

/* tree32 on the 32 lanes held as a[k] = lanes 8k..8k+7, in registers */
static inline T512 double tree32_avx512(const __m512d a[4])
{
    __m512d b0 = _mm512_add_pd(a[0], a[2]), b1 = _mm512_add_pd(a[1], a[3]);
    __m512d c = _mm512_add_pd(b0, b1);
    __m256d d = _mm256_add_pd(_mm512_castpd512_pd256(c), _mm512_extractf64x4_pd(c, 1));
    __m128d e = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
    return _mm_cvtsd_f64(e) + _mm_cvtsd_f64(_mm_unpackhi_pd(e, e));
}

/* 32 floats at x (lanes past the masks k0, k1 zero) into the lanes a[0..3];
 * with sq, their squared deviations from md instead (lanes past the masks
 * add nothing). */
static inline T512 void acc32_pd512(__m512d a[4], const float *x, __mmask16 k0, __mmask16 k1,
                                    int sq, __m512d md)
{
    __m512 v[2] = {_mm512_maskz_loadu_ps(k0, x), _mm512_maskz_loadu_ps(k1, x + 16)};
    __mmask16 k[2] = {k0, k1};
    for (int h = 0; h < 2; h++) {
        __m512d lo = lo_pd512(v[h]), hi = hi_pd512(v[h]);
        if (!sq) {
            a[2 * h] = _mm512_add_pd(a[2 * h], lo);
            a[2 * h + 1] = _mm512_add_pd(a[2 * h + 1], hi);
            continue;
        }
        lo = _mm512_sub_pd(lo, md);
        hi = _mm512_sub_pd(hi, md);
        a[2 * h] = _mm512_mask3_fmadd_pd(lo, lo, a[2 * h], (__mmask8)(k[h] & 0xFF));
        a[2 * h + 1] = _mm512_mask3_fmadd_pd(hi, hi, a[2 * h + 1], (__mmask8)(k[h] >> 8));
    }
}

/* The sum (sq = 0) or the sum of squared deviations from m over the 32
 * lanes, then tree32. */
static inline T512 double sum32_avx512(const float *x, size_t n, int sq, double m)
{
    __m512d a[4], md = _mm512_set1_pd(m);
    for (int k = 0; k < 4; k++)
        a[k] = _mm512_setzero_pd();
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        acc32_pd512(a, x + i, 0xFFFF, 0xFFFF, sq, md);
    if (i < n) {
        size_t r = n - i;
        acc32_pd512(a, x + i, tail16(r < 16 ? r : 16), tail16(r > 16 ? r - 16 : 0), sq, md);
    }
    return tree32_avx512(a);
}

/* exp256's values 16 wide; the sum in the same 32 lanes as the AVX2 version */
static T512 double exp_shift_avx512(float *y, const float *x, size_t n, float shift)
{
    __m512 s = _mm512_set1_ps(shift);
    __m512d a[4];
    for (int k = 0; k < 4; k++)
        a[k] = _mm512_setzero_pd();
    for (size_t i = 0; i < n; i += 32)
        for (int k = 0; k < 2; k++) {
            size_t o = i + 16 * (size_t)k;
            if (o >= n)
                break;
            __mmask16 m = tail16(n - o < 16 ? n - o : 16); /* masked lanes are zeroed */
            __m512 v = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + o), s)));
            _mm512_mask_storeu_ps(y + o, m, v);
            a[2 * k] = _mm512_add_pd(a[2 * k], lo_pd512(v));
            a[2 * k + 1] = _mm512_add_pd(a[2 * k + 1], hi_pd512(v));
        }
    return tree32_avx512(a);
}

/* The GroupNorm statistics: the same 32 lanes as four vectors of 8 doubles. */
static T512 double sum_avx512(const float *x, size_t n) { return sum32_avx512(x, n, 0, 0.0); }

static T512 double sumsq_dev_avx512(const float *x, size_t n, double m)
{
    return sum32_avx512(x, n, 1, m);
}

static const bfn_vec_kernels kernels_avx512 = {
    sum_avx512, sumsq_dev_avx512, affine_avx512, add_const_avx2, add_avx2, silu_grad_sums_avx512,
    sums2_avx2, lincomb_avx2, mask_scale_avx2, exp_shift_avx512, dots_avx2,
};
#endif

/* ---- dispatch ---- */

/* The set in use: this CPU's best, capped like the convolution kernels
 * (BFN_ISA); the levels are the kernel sets' numbers. */
int bfn_vec_active(void) { return bfn_convk_isa(); }

const bfn_vec_kernels *bfn_vec_kernels_get(int level)
{
#if VEC_X86
    int best = bfn_convk_isa_best(); /* what the CPU has, whatever BFN_ISA says */
    if (level == 2 && best == BFN_CONVK_AVX512)
        return &kernels_avx512;
    if (level == 1 && best >= BFN_CONVK_AVX2)
        return &kernels_avx2;
#endif
    return level == 0 ? &kernels_c : NULL;
}

static inline const bfn_vec_kernels *K(void)
{
#if VEC_X86
    int isa = bfn_convk_isa();
    if (isa == BFN_CONVK_AVX512)
        return &kernels_avx512;
    if (isa == BFN_CONVK_AVX2)
        return &kernels_avx2;
#endif
    return &kernels_c;
}

double bfn_vec_sum(const float *x, size_t n) { return K()->sum(x, n); }
double bfn_vec_sumsq_dev(const float *x, size_t n, double m) { return K()->sumsq_dev(x, n, m); }
void bfn_vec_affine(float *y, const float *x, size_t n, float a, float c, int silu)
{
    K()->affine(y, x, n, a, c, silu);
}
void bfn_vec_add_const(float *y, const float *x, size_t n, float c) { K()->add_const(y, x, n, c); }
void bfn_vec_add(float *y, const float *x, size_t n) { K()->add(y, x, n); }
void bfn_vec_silu_grad_sums(float *d, const float *x, size_t n, float a, float c, double *sd,
                            double *sdx)
{
    K()->silu_grad_sums(d, x, n, a, c, sd, sdx);
}
void bfn_vec_sums2(const float *d, const float *x, size_t n, double *sd, double *sdx)
{
    K()->sums2(d, x, n, sd, sdx);
}
void bfn_vec_lincomb(float *y, const float *d, const float *x, size_t n, float k1, float k2,
                     float k0, int accumulate)
{
    K()->lincomb(y, d, x, n, k1, k2, k0, accumulate);
}
void bfn_vec_mask_scale(float *y, const float *x, const uint8_t *mask, size_t n, float scale)
{
    K()->mask_scale(y, x, mask, n, scale);
}
double bfn_vec_exp_shift(float *y, const float *x, size_t n, float shift)
{
    return K()->exp_shift(y, x, n, shift);
}
void bfn_vec_dots(float *y, const float *x, const float *w, size_t n, size_t m)
{
    K()->dots(y, x, w, n, m);
}
