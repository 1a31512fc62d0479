/* Direct convolution kernels: out (cout, P) (+)= w (cout, K) · col (K, P)
 * without BLAS, for CPUs with AVX-512F or AVX2+FMA (picked at run time).
 *
 * The column matrix col is never built. A register tile of MR output
 * channels × NR positions accumulates over all K = cin·k·k with one fused
 * multiply-add chain per element: the weight w[m][k] is broadcast from w as
 * stored, and row k of col is read at B + boff[k], where B and the offset
 * table depend on the shape:
 *   - 1x1 stride 1: col is the image itself (cin, P), read in place;
 *   - stride 1 with "same" padding: the rows the range needs are copied
 *     once into a zero-bordered buffer (cin, rows + k − 1, W + pad) (see
 *     pad_rows); tap (ci, ky, kx) of output (y, x) then sits at a fixed
 *     offset from (y, x) on that padded grid, so every row of col is a
 *     contiguous run of it. The kernel computes the grid positions (the
 *     pad border columns of each row too, dropped when storing);
 *   - otherwise (stride 2): NR positions at a time are packed (im2col) into
 *     a (K, NR) panel.
 * Every output is bias + Σ_k in the same order whatever tile or range it
 * falls in (then plus an optional addend, e.g. the residual), so any split
 * of the positions between threads gives the same bits.
 *
 * Tiles: AVX-512 8 channels × 48 positions (24 zmm accumulators), AVX2
 * 4 × 24 (12 ymm); the last vector is masked. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "net/layers.h"
#include "net/simd.h"

#define CONVK_X86 BFN_X86

#define NR_MAX 48
#define MR_MAX 8

enum { ISA_NONE = BFN_CONVK_NONE, ISA_AVX2 = BFN_CONVK_AVX2, ISA_AVX512 = BFN_CONVK_AVX512 };

int bfn_convk_isa_best(void)
{
#if CONVK_X86
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return __builtin_cpu_supports("avx512f") ? ISA_AVX512 : ISA_AVX2;
#endif
    return ISA_NONE;
}

int bfn_convk_isa_named(const char *name)
{
    static const char *const names[] = {"none", "avx2", "avx512"};
    for (int i = ISA_NONE; i <= ISA_AVX512; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

static atomic_int isa_in_use = -1;

/* The best set this CPU has, at most the one the environment variable
 * BFN_ISA names (other values are ignored here; the programs refuse them),
 * so that one machine can compute as a smaller one does. Read once. */
int bfn_convk_isa(void)
{
    int isa = atomic_load_explicit(&isa_in_use, memory_order_relaxed);
    if (isa >= 0)
        return isa;
    isa = bfn_convk_isa_best();
    const char *env = getenv("BFN_ISA");
    int cap = env ? bfn_convk_isa_named(env) : -1;
    if (cap >= 0 && cap < isa)
        isa = cap;
    atomic_store_explicit(&isa_in_use, isa, memory_order_relaxed);
    return isa;
}

int bfn_convk_set_isa(int isa)
{
    int prev = bfn_convk_isa(), best = bfn_convk_isa_best();
    atomic_store_explicit(&isa_in_use, isa < ISA_NONE ? ISA_NONE : isa > best ? best : isa,
                          memory_order_relaxed);
    return prev;
}

static int convk_isa(void)
{
    return bfn_convk_isa();
}

static int tile_mr(int isa)
{
    return isa == ISA_AVX512 ? 8 : 4;
}

static int tile_nr(int isa)
{
    return isa == ISA_AVX512 ? 48 : 24;
}

static int is_pointwise(const bfn_conv2d_shape *s)
{
    return s->k == 1 && s->stride == 1 && s->pad == 0;
}

static int is_same(const bfn_conv2d_shape *s)
{
    return s->stride == 1 && s->k > 1 && 2 * s->pad == s->k - 1;
}

int bfn_convk_supported(const bfn_conv2d_shape *s)
{
    int isa = convk_isa();
    return isa != ISA_NONE && s->cout >= 1;
}

/* Output channels of the register-tile block starting at m: mr, or fewer
 * in the last block (the kernel then repeats row 0 in the rows past them
 * and stores only the real ones). */
static int rows_at(const bfn_conv2d_shape *s, int m, int mr)
{
    return s->cout - m < mr ? s->cout - m : mr;
}

/* Floats: the offset table (K ints), then the padded rows or the panel. */
size_t bfn_convk_workspace(const bfn_conv2d_shape *s)
{
    size_t K = (size_t)s->cin * s->k * s->k, data;
    if (is_pointwise(s))
        data = 0;
    else if (is_same(s))
        data = (size_t)s->cin * ((s->h + s->k - 1) * (s->w + s->pad) + s->pad);
    else
        data = K * NR_MAX;
    return K + data + 16; /* + 16: the data start is rounded up to 64 bytes */
}

/* ---- im2col panel for the general shape: panel[k][j] = col[k][q0 + j] ---- */

static void pack_panel(float *panel, int nr, const float *in, const bfn_conv2d_shape *s, int q0,
                       int q1)
{
    int wo = bfn_conv2d_out_w(s), k = s->k, st = s->stride, K = s->cin * k * k;
    if (q1 - q0 < nr)
        for (int r = 0; r < K; r++)
            memset(panel + (size_t)r * nr + (q1 - q0), 0, sizeof(float) * (nr - (q1 - q0)));
    for (int oy = q0 / wo; oy * wo < q1; oy++) {
        int a = oy * wo < q0 ? q0 - oy * wo : 0; /* ox range of this row */
        int b = (oy + 1) * wo > q1 ? q1 - oy * wo : wo;
        float *dst0 = panel + (oy * wo + a - q0); /* holds ox = a */
        for (int ky = 0; ky < k; ky++) {
            int iy = oy * st - s->pad + ky;
            int row_ok = iy >= 0 && iy < s->h;
            for (int kx = 0; kx < k; kx++) {
                /* ox with input column ox·st − pad + kx inside [0, w) */
                int lo = s->pad - kx > 0 ? (s->pad - kx + st - 1) / st : 0;
                int hi = s->w - 1 + s->pad - kx < 0 ? 0 : (s->w - 1 + s->pad - kx) / st + 1;
                if (lo < a)
                    lo = a;
                if (hi > b)
                    hi = b;
                if (!row_ok || hi < lo)
                    lo = hi = a;
                long base = (long)iy * s->w - s->pad + kx;
                for (int ci = 0; ci < s->cin; ci++) {
                    float *d = dst0 + (size_t)((ci * k + ky) * k + kx) * nr;
                    const float *src = in + (size_t)ci * s->h * s->w + base;
                    int ox = a;
                    for (; ox < lo; ox++)
                        d[ox - a] = 0.0f;
                    for (; ox < hi; ox++)
                        d[ox - a] = src[(long)ox * st];
                    for (; ox < b; ox++)
                        d[ox - a] = 0.0f;
                }
            }
        }
    }
}

/* The padded grid of stride-1 "same" convs: rows iy0 .. iy0 + rows − 1 of
 * every input channel (zero outside the image), each row as pad zeros then
 * the w values, so row stride w + pad: a tap reaching past the right edge
 * lands in the next row's zeros, one past the left edge in its own. One
 * more pad of zeros ends each plane. Returns the plane size. */
static size_t pad_rows_c(float *data, const float *in, const bfn_conv2d_shape *s, int iy0,
                         int rows)
{
    int pad = s->pad, wp = s->w + pad;
    size_t plane = (size_t)rows * wp + pad;
    for (int ci = 0; ci < s->cin; ci++) {
        float *d = data + ci * plane;
        for (int r = 0; r < rows; r++, d += wp) {
            int iy = iy0 + r;
            memset(d, 0, sizeof(float) * pad);
            if (iy < 0 || iy >= s->h)
                memset(d + pad, 0, sizeof(float) * s->w);
            else
                memcpy(d + pad, in + ((size_t)ci * s->h + iy) * s->w, sizeof(float) * s->w);
        }
        memset(d, 0, sizeof(float) * pad);
    }
    return plane;
}

#if CONVK_X86
/* The same with masked vector moves: a plane is many short rows, too
 * short for memcpy and memset calls to pay. */
__attribute__((target("avx512f"))) static size_t
pad_rows512(float *data, const float *in, const bfn_conv2d_shape *s, int iy0, int rows)
{
    int pad = s->pad, w = s->w, wp = w + pad;
    size_t plane = (size_t)rows * wp + pad;
    __m512 z = _mm512_setzero_ps();
    for (int ci = 0; ci < s->cin; ci++) {
        float *d = data + ci * plane;
        const float *src = in + (size_t)ci * s->h * w;
        for (int r = 0; r < rows; r++, d += wp) {
            int iy = iy0 + r;
            for (int x = 0; x < pad; x += 16)
                _mm512_mask_storeu_ps(d + x, bfn_lanes16(pad - x), z);
            for (int x = 0; x < w; x += 16) {
                __mmask16 k = bfn_lanes16(w - x);
                __m512 v = iy < 0 || iy >= s->h ? z : _mm512_maskz_loadu_ps(k, src + iy * w + x);
                _mm512_mask_storeu_ps(d + pad + x, k, v);
            }
        }
        for (int x = 0; x < pad; x += 16)
            _mm512_mask_storeu_ps(d + x, bfn_lanes16(pad - x), z);
    }
    return plane;
}
#endif

static size_t pad_rows(int isa, float *data, const float *in, const bfn_conv2d_shape *s, int iy0,
                       int rows)
{
#if CONVK_X86
    if (isa == ISA_AVX512)
        return pad_rows512(data, in, s, iy0, rows);
#endif
    (void)isa;
    return pad_rows_c(data, in, s, iy0, rows);
}

/* boff[k]: where tap k = (ci, ky, kx) of an output sits on a grid of
 * planes `plane` floats apart and rows wp floats wide, from that output. */
static void tap_offsets(int *boff, const bfn_conv2d_shape *s, size_t plane, int wp)
{
    for (int ci = 0, k = 0; ci < s->cin; ci++)
        for (int ky = 0; ky < s->k; ky++)
            for (int kx = 0; kx < s->k; kx++)
                boff[k++] = (int)(ci * plane + (size_t)ky * wp + kx);
}

/* p rounded up to 64 bytes, for aligned vector loads. */
static float *align64(float *p)
{
    return p + (16 - ((uintptr_t)p / sizeof(float)) % 16) % 16;
}

/* ---- output segments ----
 * Position j of a tile (the j-th B column it computes) belongs to the
 * output at compact index dst + (j − j0) for j in [j0, j0 + cnt) of one
 * segment; positions outside every segment (grid border columns, or
 * outside the range) are dropped. Segments never cross a 16-lane vector. */
typedef struct {
    int j0, dst, cnt;
} seg;

/* ---- micro-kernels: tile[m][j] = bias[m] + Σ_k A[m][k] · B[boff[k] + j] ---- */

#if CONVK_X86
#define T512 __attribute__((target("avx512f")))
#define T256 __attribute__((target("avx2,fma")))

#define ALL8(F) F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7)
#define ALL4(F) F(0) F(1) F(2) F(3)

/* AVX-512: rows a0..a7 of w, NV vectors of 16 positions. */
#define Z_DECL1(m) const float *a##m = A + (m < rows ? m : 0) * lda; \
    __m512 c##m##0 = _mm512_set1_ps(bias ? bias[m < rows ? m : 0] : 0.0f);
#define Z_DECL2(m) Z_DECL1(m) __m512 c##m##1 = c##m##0;
#define Z_DECL3(m) Z_DECL2(m) __m512 c##m##2 = c##m##0;
#define Z_FMA1(m) { __m512 x = _mm512_set1_ps(a##m[k]); c##m##0 = _mm512_fmadd_ps(x, b0, c##m##0); }
#define Z_FMA2(m) { __m512 x = _mm512_set1_ps(a##m[k]); c##m##0 = _mm512_fmadd_ps(x, b0, c##m##0); \
    c##m##1 = _mm512_fmadd_ps(x, b1, c##m##1); }
#define Z_FMA3(m) { __m512 x = _mm512_set1_ps(a##m[k]); c##m##0 = _mm512_fmadd_ps(x, b0, c##m##0); \
    c##m##1 = _mm512_fmadd_ps(x, b1, c##m##1); c##m##2 = _mm512_fmadd_ps(x, b2, c##m##2); }
/* Stores vector v of row m: each of its segments compressed to the front
 * and written at its destination, plus the addend there. */
static inline T512 void store_vec(__m512 c, int v, const seg *sg, const int *vs, float *out,
                                  const float *add)
{
    for (int i = vs[v]; i < vs[v + 1]; i++) {
        __mmask16 k = (__mmask16)((1u << sg[i].cnt) - 1);
        __m512 r = _mm512_maskz_compress_ps((__mmask16)(k << (sg[i].j0 & 15)), c);
        if (add)
            r = _mm512_add_ps(_mm512_maskz_loadu_ps(k, add + sg[i].dst), r);
        _mm512_mask_storeu_ps(out + sg[i].dst, k, r);
    }
}

#define Z_STV(m, v) \
    if (m < rows)   \
        store_vec(c##m##v, v, sg, vs, out + m * ldc, add ? add + m * ldc : NULL);
#define Z_ST1(m) Z_STV(m, 0)
#define Z_ST2(m) Z_ST1(m) Z_STV(m, 1)
#define Z_ST3(m) Z_ST2(m) Z_STV(m, 2)

/* vs[v] .. vs[v + 1] − 1: the segments of vector v */
#define Z_KERNEL(NV, LOADS)                                                                  \
    static T512 void kern512_##NV(int K, int rows, const float *A, size_t lda,              \
                                  const float *bias,                                         \
                                  const float *B, const int *boff, __mmask16 lm,             \
                                  const seg *sg, const int *vs, float *out, const float *add, \
                                  size_t ldc)                                                \
    {                                                                                        \
        ALL8(Z_DECL##NV)                                                                     \
        for (int k = 0; k < K; k++) {                                                        \
            const float *b = B + boff[k];                                                    \
            LOADS                                                                            \
            ALL8(Z_FMA##NV)                                                                  \
        }                                                                                    \
        ALL8(Z_ST##NV)                                                                       \
    }

Z_KERNEL(1, __m512 b0 = _mm512_maskz_loadu_ps(lm, b);)
Z_KERNEL(2, __m512 b0 = _mm512_loadu_ps(b); __m512 b1 = _mm512_maskz_loadu_ps(lm, b + 16);)
Z_KERNEL(3, __m512 b0 = _mm512_loadu_ps(b); __m512 b1 = _mm512_loadu_ps(b + 16);
         __m512 b2 = _mm512_maskz_loadu_ps(lm, b + 32);)

/* AVX2: rows a0..a3, NV vectors of 8 positions. */
#define Y_DECL1(m) const float *a##m = A + (m < rows ? m : 0) * lda; \
    __m256 c##m##0 = _mm256_set1_ps(bias ? bias[m < rows ? m : 0] : 0.0f);
#define Y_DECL2(m) Y_DECL1(m) __m256 c##m##1 = c##m##0;
#define Y_DECL3(m) Y_DECL2(m) __m256 c##m##2 = c##m##0;
#define Y_FMA1(m) { __m256 x = _mm256_set1_ps(a##m[k]); c##m##0 = _mm256_fmadd_ps(x, b0, c##m##0); }
#define Y_FMA2(m) { __m256 x = _mm256_set1_ps(a##m[k]); c##m##0 = _mm256_fmadd_ps(x, b0, c##m##0); \
    c##m##1 = _mm256_fmadd_ps(x, b1, c##m##1); }
#define Y_FMA3(m) { __m256 x = _mm256_set1_ps(a##m[k]); c##m##0 = _mm256_fmadd_ps(x, b0, c##m##0); \
    c##m##1 = _mm256_fmadd_ps(x, b1, c##m##1); c##m##2 = _mm256_fmadd_ps(x, b2, c##m##2); }
#define Y_ST1(m) _mm256_store_ps(tile + m * NR_MAX, c##m##0);
#define Y_ST2(m) Y_ST1(m) _mm256_store_ps(tile + m * NR_MAX + 8, c##m##1);
#define Y_ST3(m) Y_ST2(m) _mm256_store_ps(tile + m * NR_MAX + 16, c##m##2);

#define Y_KERNEL(NV, LOADS)                                                                  \
    static T256 void kern256_##NV(int K, int rows, const float *A, size_t lda,              \
                                  const float *bias,                                         \
                                  const float *B, const int *boff, __m256i lm, float *tile)  \
    {                                                                                        \
        ALL4(Y_DECL##NV)                                                                     \
        for (int k = 0; k < K; k++) {                                                        \
            const float *b = B + boff[k];                                                    \
            LOADS                                                                            \
            ALL4(Y_FMA##NV)                                                                  \
        }                                                                                    \
        ALL4(Y_ST##NV)                                                                       \
    }

Y_KERNEL(1, __m256 b0 = _mm256_maskload_ps(b, lm);)
Y_KERNEL(2, __m256 b0 = _mm256_loadu_ps(b); __m256 b1 = _mm256_maskload_ps(b + 8, lm);)
Y_KERNEL(3, __m256 b0 = _mm256_loadu_ps(b); __m256 b1 = _mm256_loadu_ps(b + 8);
         __m256 b2 = _mm256_maskload_ps(b + 16, lm);)

/* An 8 × n tile (n <= 48) stored through its segments. Only the first n
 * positions of each row of B are read. bias may be NULL (zero). */
static T512 void tile512(int K, int rows, const float *A, size_t lda, const float *bias,
                         const float *B, const int *boff, int n, const seg *sg, const int *vs,
                         float *out, const float *add, size_t ldc)
{
    int nv = (n + 15) / 16, r = n - 16 * (nv - 1);
    __mmask16 lm = bfn_lanes16(r);
    if (nv == 3)
        kern512_3(K, rows, A, lda, bias, B, boff, lm, sg, vs, out, add, ldc);
    else if (nv == 2)
        kern512_2(K, rows, A, lda, bias, B, boff, lm, sg, vs, out, add, ldc);
    else
        kern512_1(K, rows, A, lda, bias, B, boff, lm, sg, vs, out, add, ldc);
}

/* A 4 × n tile (n <= 24) into tile[m][j] (row stride NR_MAX). */
static T256 void tile256(int K, int rows, const float *A, size_t lda, const float *bias,
                         const float *B, const int *boff, int n, float *tile)
{
    int nv = (n + 7) / 8, r = n - 8 * (nv - 1);
    __m256i lm = _mm256_cmpgt_epi32(_mm256_set1_epi32(r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    if (nv == 3)
        kern256_3(K, rows, A, lda, bias, B, boff, lm, tile);
    else if (nv == 2)
        kern256_2(K, rows, A, lda, bias, B, boff, lm, tile);
    else
        kern256_1(K, rows, A, lda, bias, B, boff, lm, tile);
}
#endif

/* One MR-row block of a tile of n positions, written through its segments. */
static void run_tile(int isa, int K, int rows, const float *A, size_t lda, const float *bias,
                     const float *B, const int *boff, int n, const seg *sg, const int *vs,
                     float *out, const float *add, size_t ldc)
{
#if CONVK_X86
    if (isa == ISA_AVX512) {
        tile512(K, rows, A, lda, bias, B, boff, n, sg, vs, out, add, ldc);
        return;
    }
    float tile[MR_MAX * NR_MAX] __attribute__((aligned(64)));
    tile256(K, rows, A, lda, bias, B, boff, n, tile);
    for (int m = 0; m < rows; m++)
        for (int i = 0; i < vs[(n + 15) / 16]; i++) {
            float *o = out + m * ldc + sg[i].dst;
            const float *t = tile + m * NR_MAX + sg[i].j0;
            const float *a = add ? add + m * ldc + sg[i].dst : NULL;
            for (int j = 0; j < sg[i].cnt; j++)
                o[j] = a ? a[j] + t[j] : t[j];
        }
#else
    (void)isa, (void)K, (void)rows, (void)A, (void)lda, (void)bias, (void)B, (void)boff, (void)n;
    (void)sg, (void)vs, (void)out, (void)add, (void)ldc;
#endif
}

/* Appends the segment of tile positions [j0, j0 + cnt) → outputs from dst,
 * cut at 16-lane boundaries. */
static int add_seg(seg *sg, int ns, int j0, int dst, int cnt)
{
    while (cnt > 0) {
        int c = 16 - (j0 & 15) < cnt ? 16 - (j0 & 15) : cnt;
        sg[ns++] = (seg){j0, dst, c};
        j0 += c;
        dst += c;
        cnt -= c;
    }
    return ns;
}

/* vs[v] = first segment of vector v (segments are in position order). */
static void vector_starts(int *vs, const seg *sg, int ns, int n)
{
    int nv = (n + 15) / 16, i = 0;
    for (int v = 0; v <= nv; v++) {
        while (i < ns && sg[i].j0 < 16 * v)
            i++;
        vs[v] = i;
    }
}

void bfn_convk_forward(float *out, const float *in, const float *w, const float *bias,
                       const float *add, float *ws, const bfn_conv2d_shape *s, int p0, int p1)
{
    bfn_convk_forward_isa(convk_isa(), out, in, w, bias, add, ws, s, p0, p1);
}

void bfn_convk_forward_isa(int isa, float *out, const float *in, const float *w,
                           const float *bias, const float *add, float *ws,
                           const bfn_conv2d_shape *s, int p0, int p1)
{
    int mr = tile_mr(isa), nr = tile_nr(isa);
    int ho = bfn_conv2d_out_h(s), wo = bfn_conv2d_out_w(s), n1 = ho * wo;
    int K = s->cin * s->k * s->k;
    seg sg[NR_MAX];
    int vs[NR_MAX / 16 + 1], ns;
    int *boff = (int *)ws;
    float *data = align64(ws + K); /* past the table */
    if (p1 <= p0 || isa == ISA_NONE)
        return;

    if (is_pointwise(s)) {
        for (int k = 0; k < K; k++)
            boff[k] = k * n1;
        for (int q0 = p0; q0 < p1; q0 += nr) {
            int n = q0 + nr < p1 ? nr : p1 - q0;
            ns = add_seg(sg, 0, 0, q0, n);
            vector_starts(vs, sg, ns, n);
            for (int m = 0; m < s->cout; m += mr)
                run_tile(isa, K, rows_at(s, m, mr), w + (size_t)m * K, (size_t)K,
                         bias ? bias + m : NULL, in + q0, boff, n, sg, vs, out + (size_t)m * n1,
                         add ? add + (size_t)m * n1 : NULL, (size_t)n1);
        }
        return;
    }

    if (!is_same(s)) {
        for (int k = 0; k < K; k++)
            boff[k] = k * nr;
        for (int q0 = p0; q0 < p1; q0 += nr) {
            int q1 = q0 + nr < p1 ? q0 + nr : p1;
            pack_panel(data, nr, in, s, q0, q1);
            ns = add_seg(sg, 0, 0, q0, q1 - q0);
            vector_starts(vs, sg, ns, q1 - q0);
            for (int m = 0; m < s->cout; m += mr)
                run_tile(isa, K, rows_at(s, m, mr), w + (size_t)m * K, (size_t)K,
                         bias ? bias + m : NULL, data, boff, q1 - q0, sg, vs,
                         out + (size_t)m * n1, add ? add + (size_t)m * n1 : NULL, (size_t)n1);
        }
        return;
    }

    /* padded grid: output rows r0..r1-1 need input rows r0 − pad .. r1 − 1 + pad */
    int pad = s->pad, wp = wo + pad;
    int r0 = p0 / wo, r1 = (p1 + wo - 1) / wo, rows = r1 - r0 + 2 * pad;
    tap_offsets(boff, s, pad_rows(isa, data, in, s, r0 - pad, rows), wp);
    /* grid position g = (y − r0)·wp + x; the last row's border columns are
     * not computed */
    int g_end = (r1 - r0 - 1) * wp + wo;
    for (int g0 = 0; g0 < g_end; g0 += nr) {
        int n = g0 + nr < g_end ? nr : g_end - g0;
        /* each grid row's run of real columns that lies in [p0, p1) */
        ns = 0;
        for (int g = g0; g < g0 + n;) {
            int y = r0 + g / wp, x = g % wp;
            int run = wp - x < g0 + n - g ? wp - x : g0 + n - g;
            int b = x + run < wo ? x + run : wo; /* real columns [x, b) */
            int lo = y * wo + x, hi = y * wo + b;
            if (lo < p0)
                lo = p0;
            if (hi > p1)
                hi = p1;
            if (hi > lo)
                ns = add_seg(sg, ns, g - g0 + (lo - y * wo - x), lo, hi - lo);
            g += run;
        }
        vector_starts(vs, sg, ns, n);
        for (int m = 0; m < s->cout; m += mr)
            run_tile(isa, K, rows_at(s, m, mr), w + (size_t)m * K, (size_t)K,
                     bias ? bias + m : NULL, data + g0, boff, n, sg, vs, out + (size_t)m * n1,
                     add ? add + (size_t)m * n1 : NULL, (size_t)n1);
    }
}

/* ---- channel-vector kernel for small images ----
 *
 * At 14×14 and below the padded grid wastes vector lanes (a 7-wide row sits
 * in an 8-wide grid row; 55 grid positions fill 4 vectors for 49 outputs).
 * Here the vectors hold 16 output channels instead: a tile of 6 positions
 * × 64 channels (24 zmm accumulators) broadcasts the input value of each
 * position and loads 64 weights of tap k from wᵀ (K, cout); channels past
 * the last multiple of 64 go through a narrower tile. Each output is still
 * bias + Σ_k in order k = 0..K−1 (one fused multiply-add chain, then the
 * addend), so it has the same bits as the position-vector kernel. */

/* The shapes the channel-vector tiles take (AVX-512's, and AVX2's for the
 * phase convs). */
static int cv_shape(const bfn_conv2d_shape *s)
{
    return is_same(s) && s->cout % 16 == 0 && s->h * s->w <= CV_MAX_POSITIONS;
}

int bfn_convk_cv_supported(const bfn_conv2d_shape *s)
{
    return convk_isa() == ISA_AVX512 && cv_shape(s);
}

void bfn_convk_cv_transpose(float *wt, const float *w, const bfn_conv2d_shape *s)
{
    size_t K = (size_t)s->cin * s->k * s->k, C = (size_t)s->cout;
    /* 16 × 16 blocks, which stay in the first-level cache */
    for (size_t c0 = 0; c0 < C; c0 += 16)
        for (size_t k0 = 0; k0 < K; k0 += 16) {
            size_t c1 = c0 + 16 < C ? c0 + 16 : C, k1 = k0 + 16 < K ? k0 + 16 : K;
            for (size_t k = k0; k < k1; k++)
                for (size_t c = c0; c < c1; c++)
                    wt[k * C + c] = w[c * K + k];
        }
}

#if CONVK_X86
/* One tile: np <= NP outputs of 16·NV channels, NP·NV = 24 zmm
 * accumulators. pos[i] is the grid position of the output at column opos[i],
 * wt the channels' column of wᵀ (row stride ldw), out and add their rows
 * (stride ldc). cv_tile_4 (6 positions × 64 channels) does the bulk; the
 * last 16, 32 or 48 channels of a conv whose channel count is not a multiple
 * of 64 (a base-48 network's 48- and 96-channel layers) go through
 * cv_tile_1..3. Each output is the same chain (bias, then one fused
 * multiply-add per tap in order, then the addend) whatever the tile. */
#define CV_TILE(NP, NV)                                                                      \
    static T512 void cv_tile_##NV(int K, const float *const *pos, int np, const int *boff,     \
                                  const float *wt, size_t ldw, const float *bias, float *out,  \
                                  const float *add, size_t ldc, const int *opos)                \
    {                                                                                           \
        __m512 c[NP][NV];                                                                       \
        const float *q[NP];                                                                     \
        _Pragma("GCC unroll 24") for (int i = 0; i < NP; i++)                                   \
        {                                                                                       \
            q[i] = pos[i < np ? i : 0];                                                         \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) c[i][v] =                     \
                _mm512_loadu_ps(bias + 16 * v);                                                 \
        }                                                                                       \
        for (int k = 0; k < K; k++) {                                                           \
            const float *w = wt + (size_t)k * ldw;                                              \
            int o = boff[k];                                                                    \
            __m512 wv[NV];                                                                      \
            _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) wv[v] =                       \
                _mm512_loadu_ps(w + 16 * v);                                                    \
            _Pragma("GCC unroll 24") for (int i = 0; i < NP; i++)                               \
            {                                                                                   \
                __m512 x = _mm512_set1_ps(q[i][o]);                                             \
                _Pragma("GCC unroll 4") for (int v = 0; v < NV; v++) c[i][v] =                 \
                    _mm512_fmadd_ps(x, wv[v], c[i][v]);                                         \
            }                                                                                   \
        }                                                                                       \
        __m512i idx = _mm512_mullo_epi32(                                                       \
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),            \
            _mm512_set1_epi32((int)ldc));                                                       \
        for (int i = 0; i < np; i++)                                                            \
            for (int v = 0; v < NV; v++) {                                                      \
                float *o = out + (size_t)16 * v * ldc + opos[i];                                \
                __m512 r = c[i][v];                                                             \
                if (add)                                                                        \
                    r = _mm512_add_ps(_mm512_i32gather_ps(idx, add + (o - out), 4), r);         \
                _mm512_i32scatter_ps(o, idx, r, 4);                                             \
            }                                                                                   \
    }
CV_TILE(24, 1)
CV_TILE(12, 2)
CV_TILE(8, 3)
CV_TILE(6, 4)
#define CV_MAX_NP 24

/* Where small-grid position (y, x) writes: column (step·y + dy)·width +
 * step·x + dx of the output rows (step 1: the position itself; step 2:
 * one phase of an image twice the size). */
typedef struct {
    int step, dy, dx, width;
} out_map;

/* The grid positions pos and output columns opos of positions q .. q+np−1. */
static void cv_positions(const float **pos, int *opos, int q, int np, out_map m,
                         const float *data, int r0, int wo, int wp)
{
    for (int i = 0; i < np; i++) {
        int y = (q + i) / wo, x = (q + i) % wo;
        pos[i] = data + (size_t)(y - r0) * wp + x;
        opos[i] = (m.step * y + m.dy) * m.width + m.step * x + m.dx;
    }
}

/* Positions [p0, p1) of an image wo wide, each read on the padded grid
 * `data` (rows wp floats, the first holding image row r0 − pad) through
 * the K taps boff, written through m into out (cout rows of n1; cout a
 * multiple of 16): 64 channels at a time, six positions a tile, then the
 * remaining 16, 32 or 48 channels, 24, 12 or 8 positions a tile. */
static void cv_range(float *out, size_t n1, out_map m, const float *data, int r0, int wo, int wp,
                     int K, const int *boff, const float *wt, int cout, const float *bias,
                     const float *add, int p0, int p1)
{
    float zero[64] = {0};
    const float *pos[CV_MAX_NP];
    int opos[CV_MAX_NP];
    for (int c0 = 0; c0 < cout; c0 += 64) {
        int nv = cout - c0 < 64 ? (cout - c0) / 16 : 4, step = 24 / nv;
        const float *b = bias ? bias + c0 : zero, *a = add ? add + (size_t)c0 * n1 : NULL;
        float *o = out + (size_t)c0 * n1;
        for (int q = p0; q < p1; q += step) {
            int np = p1 - q < step ? p1 - q : step;
            cv_positions(pos, opos, q, np, m, data, r0, wo, wp);
            if (nv == 4)
                cv_tile_4(K, pos, np, boff, wt + c0, (size_t)cout, b, o, a, n1, opos);
            else if (nv == 3)
                cv_tile_3(K, pos, np, boff, wt + c0, (size_t)cout, b, o, a, n1, opos);
            else if (nv == 2)
                cv_tile_2(K, pos, np, boff, wt + c0, (size_t)cout, b, o, a, n1, opos);
            else
                cv_tile_1(K, pos, np, boff, wt + c0, (size_t)cout, b, o, a, n1, opos);
        }
    }
}

void bfn_convk_forward_cv(float *out, const float *in, const float *wt, const float *bias,
                          const float *add, float *ws, const bfn_conv2d_shape *s, int p0, int p1)
{
    int wo = bfn_conv2d_out_w(s), n1 = bfn_conv2d_out_h(s) * wo;
    int K = s->cin * s->k * s->k, pad = s->pad, wp = wo + pad;
    int *boff = (int *)ws;
    float *data = align64(ws + K);
    if (p1 <= p0)
        return;
    int r0 = p0 / wo, r1 = (p1 + wo - 1) / wo;
    tap_offsets(boff, s, pad_rows(ISA_AVX512, data, in, s, r0 - pad, r1 - r0 + 2 * pad), wp);
    out_map same = {1, 0, 0, wo};
    cv_range(out, (size_t)n1, same, data, r0, wo, wp, K, boff, wt, s->cout, bias, add, p0, p1);
}
#else
void bfn_convk_forward_cv(float *out, const float *in, const float *wt, const float *bias,
                          const float *add, float *ws, const bfn_conv2d_shape *s, int p0, int p1)
{
    (void)out, (void)in, (void)wt, (void)bias, (void)add, (void)ws, (void)s, (void)p0, (void)p1;
}
#endif

/* ---- nearest-neighbour 2× upsampling, then a 3×3 "same" conv, in four phases ----
 *
 * Output (2y + py, 2x + px) of conv3x3(up2(in)) reads, along each axis, the
 * low-resolution rows y − 1, y, y (py = 0) or y, y, y + 1 (py = 1): the
 * taps that land on one input row are summed into one weight, so each of
 * the four phases (py, px) is a 2×2 conv on the low-resolution grid, 4
 * multiply-adds per input channel and output instead of 9, and the
 * upsampled image is never built. The phases run on the channel-vector
 * tile (AVX-512's, or AVX2's with the same chains), on the low-resolution
 * padded grid. The summed weights round
 * differently from the 9-tap sums, so results agree with upsample + conv
 * to rounding, not to the bit. */

static bfn_conv2d_shape up_low(const bfn_conv2d_shape *s)
{
    bfn_conv2d_shape l = *s;
    l.h = s->h / 2;
    l.w = s->w / 2;
    return l;
}

/* On AVX-512 and AVX2 alike (the AVX2 tile computes the same chains), so
 * both kinds of CPU give the same bits. */
int bfn_convk_up_supported(const bfn_conv2d_shape *s)
{
    if (s->k != 3 || s->stride != 1 || s->pad != 1 || s->h % 2 || s->w % 2)
        return 0;
    bfn_conv2d_shape l = up_low(s);
    return convk_isa() >= ISA_AVX2 && cv_shape(&l);
}

size_t bfn_convk_up_weights_size(const bfn_conv2d_shape *s)
{
    return (size_t)16 * s->cin * s->cout;
}

size_t bfn_convk_up_workspace(const bfn_conv2d_shape *s)
{
    bfn_conv2d_shape l = up_low(s);
    return bfn_convk_workspace(&l);
}

#if CONVK_X86
/* The kernel rows (or columns) that phase p (0 or 1) sums into its tap a:
 * p = 0 reads rows y − 1 | y, y; p = 1 rows y, y | y + 1. */
static const int up_first[2][2] = {{0, 1}, {0, 2}}, up_count[2][2] = {{1, 2}, {2, 1}};

/* 16 output channels at a time: tap k of the 16 is one gather (rows
 * cin·9 floats apart), each phase tap a sum of 1, 2 or 4 of those vectors
 * in a fixed order. */
static T512 void up_weights512(float *wu, const float *w, const bfn_conv2d_shape *s)
{
    size_t C = (size_t)s->cout, K4 = (size_t)s->cin * 4;
    __m512i rows = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(s->cin * 9));
    for (size_t c0 = 0; c0 < C; c0 += 16) {
        __mmask16 m = bfn_lanes16((int)(C - c0));
        for (int ci = 0; ci < s->cin; ci++) {
            const float *src = w + (c0 * s->cin + ci) * 9;
            __m512 t[9];
            for (int k = 0; k < 9; k++)
                t[k] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, rows, src + k, 4);
            for (int ph = 0; ph < 4; ph++)
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++) {
                        int y0 = up_first[ph >> 1][a], ny = up_count[ph >> 1][a];
                        int x0 = up_first[ph & 1][b], nx = up_count[ph & 1][b];
                        __m512 sum = _mm512_setzero_ps();
                        for (int ky = y0; ky < y0 + ny; ky++)
                            for (int kx = x0; kx < x0 + nx; kx++)
                                sum = _mm512_add_ps(sum, t[ky * 3 + kx]);
                        _mm512_mask_storeu_ps(
                            wu + ((size_t)ph * K4 + (size_t)ci * 4 + a * 2 + b) * C + c0, m, sum);
                    }
        }
    }
}

/* The same sums one channel at a time (0 + the taps in the same order:
 * the same bits as the vector version). */
static void up_weights_c(float *wu, const float *w, const bfn_conv2d_shape *s)
{
    size_t C = (size_t)s->cout, K4 = (size_t)s->cin * 4;
    for (size_t co = 0; co < C; co++)
        for (int ci = 0; ci < s->cin; ci++) {
            const float *t = w + (co * s->cin + ci) * 9;
            for (int ph = 0; ph < 4; ph++)
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++) {
                        int y0 = up_first[ph >> 1][a], ny = up_count[ph >> 1][a];
                        int x0 = up_first[ph & 1][b], nx = up_count[ph & 1][b];
                        float sum = 0.0f;
                        for (int ky = y0; ky < y0 + ny; ky++)
                            for (int kx = x0; kx < x0 + nx; kx++)
                                sum += t[ky * 3 + kx];
                        wu[((size_t)ph * K4 + (size_t)ci * 4 + a * 2 + b) * C + co] = sum;
                    }
        }
}

void bfn_convk_up_weights(float *wu, const float *w, const bfn_conv2d_shape *s)
{
    if (convk_isa() == ISA_AVX512)
        up_weights512(wu, w, s);
    else
        up_weights_c(wu, w, s);
}

/* AVX2's channel-vector tile: 6 positions × 16 channels (12 ymm
 * accumulators), each output the chain of cv_tile_* (bias, one fused
 * multiply-add per tap in order, then the addend). */
static T256 void cv_tile256(int K, const float *const *pos, int np, const int *boff,
                            const float *wt, size_t ldw, const float *bias, float *out,
                            const float *add, size_t ldc, const int *opos)
{
    __m256 c[6][2];
    const float *q[6];
    for (int i = 0; i < 6; i++) {
        q[i] = pos[i < np ? i : 0];
        c[i][0] = _mm256_loadu_ps(bias);
        c[i][1] = _mm256_loadu_ps(bias + 8);
    }
    for (int k = 0; k < K; k++) {
        const float *w = wt + (size_t)k * ldw;
        int o = boff[k];
        __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
        for (int i = 0; i < 6; i++) {
            __m256 x = _mm256_set1_ps(q[i][o]);
            c[i][0] = _mm256_fmadd_ps(x, w0, c[i][0]);
            c[i][1] = _mm256_fmadd_ps(x, w1, c[i][1]);
        }
    }
    for (int i = 0; i < np; i++) {
        float r[16];
        _mm256_storeu_ps(r, c[i][0]);
        _mm256_storeu_ps(r + 8, c[i][1]);
        float *o = out + opos[i];
        const float *a = add ? add + opos[i] : NULL;
        for (int ch = 0; ch < 16; ch++)
            o[(size_t)ch * ldc] = a ? a[(size_t)ch * ldc] + r[ch] : r[ch];
    }
}

typedef void cv_range_fn(float *out, size_t n1, out_map m, const float *data, int r0, int wo,
                         int wp, int K, const int *boff, const float *wt, int cout,
                         const float *bias, const float *add, int p0, int p1);

/* cv_range on AVX2: 16 channels at a time, six positions a tile. */
static void cv_range256(float *out, size_t n1, out_map m, const float *data, int r0, int wo,
                        int wp, int K, const int *boff, const float *wt, int cout,
                        const float *bias, const float *add, int p0, int p1)
{
    float zero[16] = {0};
    const float *pos[6];
    int opos[6];
    for (int c0 = 0; c0 < cout; c0 += 16) {
        const float *b = bias ? bias + c0 : zero, *a = add ? add + (size_t)c0 * n1 : NULL;
        for (int q = p0; q < p1; q += 6) {
            int np = p1 - q < 6 ? p1 - q : 6;
            cv_positions(pos, opos, q, np, m, data, r0, wo, wp);
            cv_tile256(K, pos, np, boff, wt + c0, (size_t)cout, b, out + (size_t)c0 * n1, a, n1,
                       opos);
        }
    }
}

void bfn_convk_forward_up(float *out, const float *in, const float *wu, const float *bias,
                          const float *add, float *ws, const bfn_conv2d_shape *s, int p0, int p1)
{
    int isa = convk_isa();
    cv_range_fn *range = isa == ISA_AVX512 ? cv_range : cv_range256; /* the same bits */
    bfn_conv2d_shape l = up_low(s);
    int wo = l.w, wp = wo + 1, K4 = l.cin * 4;
    int *boff = (int *)ws;
    float *data = align64(ws + (size_t)l.cin * 9);
    if (p1 <= p0)
        return;
    int r0 = p0 / wo, r1 = (p1 + wo - 1) / wo;
    size_t plane = pad_rows(isa, data, in, &l, r0 - 1, r1 - r0 + 2);
    for (int ph = 0; ph < 4; ph++) {
        int py = ph >> 1, px = ph & 1;
        /* phase tap a along y sits at grid row offset py + a (row y − 1 + py + a) */
        for (int ci = 0; ci < l.cin; ci++)
            for (int a = 0; a < 2; a++)
                for (int b = 0; b < 2; b++)
                    boff[ci * 4 + a * 2 + b] = (int)(ci * plane + (size_t)(py + a) * wp + px + b);
        out_map phase = {2, py, px, s->w};
        range(out, (size_t)s->h * s->w, phase, data, r0, wo, wp, K4, boff,
              wu + (size_t)ph * K4 * l.cout, l.cout, bias, add, p0, p1);
    }
}
#else
void bfn_convk_up_weights(float *wu, const float *w, const bfn_conv2d_shape *s)
{
    (void)wu, (void)w, (void)s; /* never supported without AVX2 */
}

void bfn_convk_forward_up(float *out, const float *in, const float *wu, const float *bias,
                          const float *add, float *ws, const bfn_conv2d_shape *s, int p0, int p1)
{
    (void)out, (void)in, (void)wu, (void)bias, (void)add, (void)ws, (void)s, (void)p0, (void)p1;
}
#endif

/* ---- weight gradient: dw (cout, K) += dout (cout, P) · colᵀ ----
 *
 * The reduction runs over positions, so the vectors hold output channels:
 * dout is first transposed to doutT (positions, cout) on the same padded
 * grid as the forward (zero rows at the border columns), and a tile of MJ
 * taps × NV·16 channels accumulates Σ_g in(tap, g) · doutT[g] with the
 * input value broadcast. The tile is added to dw at the end, or with
 * vector adds to dwᵀ (K, cout) for callers that keep it that way. */

int bfn_convk_dw_supported(const bfn_conv2d_shape *s)
{
    return convk_isa() == ISA_AVX512 && s->cout % 16 == 0 && (is_pointwise(s) || is_same(s));
}

size_t bfn_convk_dw_workspace(const bfn_conv2d_shape *s)
{
    size_t K = (size_t)s->cin * s->k * s->k;
    size_t wp = (size_t)s->w + s->pad, hp = (size_t)s->h + s->k - 1;
    return K + (size_t)s->cin * (hp * wp + s->pad) + (size_t)s->h * wp * s->cout + 32;
}

#if CONVK_X86
/* acc_t_v += in[t][g] · doutT[g][16 v ..] for MJ taps t, NV vectors v */
#define W_DECL4(t) const float *p##t = X + boff[t]; __m512 c##t##0 = _mm512_setzero_ps(), \
    c##t##1 = _mm512_setzero_ps(), c##t##2 = _mm512_setzero_ps(), c##t##3 = _mm512_setzero_ps();
#define W_DECL2(t) const float *p##t = X + boff[t]; __m512 c##t##0 = _mm512_setzero_ps(), \
    c##t##1 = _mm512_setzero_ps();
#define W_DECL1(t) const float *p##t = X + boff[t]; __m512 c##t##0 = _mm512_setzero_ps();
#define W_FMA4(t) { __m512 x = _mm512_set1_ps(p##t[g]); c##t##0 = _mm512_fmadd_ps(x, d0, c##t##0); \
    c##t##1 = _mm512_fmadd_ps(x, d1, c##t##1); c##t##2 = _mm512_fmadd_ps(x, d2, c##t##2); \
    c##t##3 = _mm512_fmadd_ps(x, d3, c##t##3); }
#define W_FMA2(t) { __m512 x = _mm512_set1_ps(p##t[g]); c##t##0 = _mm512_fmadd_ps(x, d0, c##t##0); \
    c##t##1 = _mm512_fmadd_ps(x, d1, c##t##1); }
#define W_FMA1(t) { __m512 x = _mm512_set1_ps(p##t[g]); c##t##0 = _mm512_fmadd_ps(x, d0, c##t##0); }
#define W_ST4(t) _mm512_store_ps(tile + t * 64, c##t##0); _mm512_store_ps(tile + t * 64 + 16, c##t##1); \
    _mm512_store_ps(tile + t * 64 + 32, c##t##2); _mm512_store_ps(tile + t * 64 + 48, c##t##3);
#define W_ST2(t) _mm512_store_ps(tile + t * 64, c##t##0); _mm512_store_ps(tile + t * 64 + 16, c##t##1);
#define W_ST1(t) _mm512_store_ps(tile + t * 64, c##t##0);
#define TAPS6(F) F(0) F(1) F(2) F(3) F(4) F(5)
#define TAPS12(F) TAPS6(F) F(6) F(7) F(8) F(9) F(10) F(11)
#define TAPS16(F) TAPS12(F) F(12) F(13) F(14) F(15)

#define W_KERNEL(NAME, TAPS, NV, LOADS)                                                      \
    static T512 void NAME(int G, const float *X, const int *boff, const float *D, size_t ldd, \
                          float *tile)                                                       \
    {                                                                                        \
        TAPS(W_DECL##NV)                                                                     \
        for (int g = 0; g < G; g++) {                                                        \
            const float *d = D + (size_t)g * ldd;                                            \
            LOADS                                                                            \
            TAPS(W_FMA##NV)                                                                  \
        }                                                                                    \
        TAPS(W_ST##NV)                                                                       \
    }

W_KERNEL(dw_6x4, TAPS6, 4, __m512 d0 = _mm512_loadu_ps(d); __m512 d1 = _mm512_loadu_ps(d + 16);
         __m512 d2 = _mm512_loadu_ps(d + 32); __m512 d3 = _mm512_loadu_ps(d + 48);)
W_KERNEL(dw_12x2, TAPS12, 2, __m512 d0 = _mm512_loadu_ps(d); __m512 d1 = _mm512_loadu_ps(d + 16);)
W_KERNEL(dw_16x1, TAPS16, 1, __m512 d0 = _mm512_loadu_ps(d);)

/* y[0..n) += x[0..n), n a multiple of 16 */
static T512 void add_row512(float *y, const float *x, int n)
{
    for (int i = 0; i < n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_add_ps(_mm512_loadu_ps(y + i), _mm512_loadu_ps(x + i)));
}

/* doutT[g][c] = dout[c][y·w + x] for g = y·wp + x (0 where x >= w) */
static T512 void transpose_dout(float *dt, const float *dout, int cout, int h, int w, int wp)
{
    int gn = (h - 1) * wp + w;
    for (int c0 = 0; c0 < cout; c0 += 16) {
        __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                                            12, 13, 14, 15),
                                         _mm512_set1_epi32(h * w));
        const float *src = dout + (size_t)c0 * h * w;
        for (int g = 0; g < gn; g++) {
            int y = g / wp, x = g % wp;
            __m512 v = x < w ? _mm512_i32gather_ps(idx, src + y * w + x, 4) : _mm512_setzero_ps();
            _mm512_storeu_ps(dt + (size_t)g * cout + c0, v);
        }
    }
}

void bfn_convk_weight_grad(float *dw, int transposed, const float *dout, const float *in,
                           float *ws, const bfn_conv2d_shape *s)
{
    int ks = s->k, pad = s->pad, h = s->h, w = s->w, wp = w + pad, cout = s->cout;
    int K = s->cin * ks * ks;
    size_t plane;
    int *boff = (int *)ws;
    float *X = ws + K, *D;
    float tile[16 * 64] __attribute__((aligned(64)));
    if (pad == 0 && ks == 1) {
        X = (float *)in; /* pointwise: the image itself, positions compact */
        plane = (size_t)h * w;
    } else {
        plane = pad_rows(ISA_AVX512, X, in, s, -pad, h + 2 * pad);
    }
    D = align64(ws + K + (size_t)s->cin * plane);
    transpose_dout(D, dout, cout, h, w, wp);
    tap_offsets(boff, s, plane, wp);
    int G = (h - 1) * wp + w;
    for (int c0 = 0; c0 < cout;) {
        int nc = cout - c0 >= 64 ? 64 : cout - c0 >= 32 ? 32 : 16;
        int mj = nc == 64 ? 6 : nc == 32 ? 12 : 16;
        for (int j0 = 0; j0 < K; j0 += mj) {
            int nj = K - j0 < mj ? K - j0 : mj;
            int tb[16];
            for (int t = 0; t < mj; t++) /* a short last tile repeats its last tap */
                tb[t] = boff[j0 + (t < nj ? t : nj - 1)];
            if (nc == 64)
                dw_6x4(G, X, tb, D + c0, (size_t)cout, tile);
            else if (nc == 32)
                dw_12x2(G, X, tb, D + c0, (size_t)cout, tile);
            else
                dw_16x1(G, X, tb, D + c0, (size_t)cout, tile);
            if (transposed)
                for (int t = 0; t < nj; t++)
                    add_row512(dw + (size_t)(j0 + t) * cout + c0, tile + t * 64, nc);
            else
                for (int c = 0; c < nc; c++) {
                    float *d = dw + (size_t)(c0 + c) * K + j0;
                    for (int t = 0; t < nj; t++)
                        d[t] += tile[t * 64 + c];
                }
        }
        c0 += nc;
    }
}
#else
void bfn_convk_weight_grad(float *dw, int transposed, const float *dout, const float *in,
                           float *ws, const bfn_conv2d_shape *s)
{
    (void)dw, (void)transposed, (void)dout, (void)in, (void)ws, (void)s;
}
#endif
