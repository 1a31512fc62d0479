/* Tests of the matrix-product wrapper (gemm.c): bfn_gemm against the naive
 * reference for all four transpose combinations, odd sizes, padded strides,
 * beta 0 (C never read) and beta 1 (accumulate); the reference itself
 * against a product worked out by hand. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/gemm.h"
#include "bfn/rng.h"
#include "check.h"

static void fill(float *x, int n, uint64_t seed)
{
    bfn_rng r;
    bfn_rng_init(&r, seed, 0);
    for (int i = 0; i < n; i++)
        x[i] = (float)(2.0 * bfn_rng_uniform(&r) - 1.0);
}

static void test_naive_matches_hand_computed_product(void)
{
    /* A (2,3), B (3,2): A·B = [[58, 64], [139, 154]]. */
    const float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {7, 8, 9, 10, 11, 12};
    const float want[4] = {58, 64, 139, 154};
    float C[4] = {1, 1, 1, 1};
    bfn_gemm_naive(0, 0, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, C, 2);
    for (int i = 0; i < 4; i++)
        CHECK_NEAR(want[i], C[i], 0.0, "naive A*B [%d]", i);
    /* Aᵀ stored as (3,2), Bᵀ stored as (2,3); alpha 2, beta 1 on C = A·B. */
    const float At[6] = {1, 4, 2, 5, 3, 6}, Bt[6] = {7, 9, 11, 8, 10, 12};
    bfn_gemm_naive(1, 1, 2, 2, 3, 2.0f, At, 2, Bt, 3, 1.0f, C, 2);
    for (int i = 0; i < 4; i++)
        CHECK_NEAR(3.0 * want[i], C[i], 0.0, "naive 2*At'Bt' + C [%d]", i);
}

/* One case: C (M,N) = alpha op(A) op(B) + beta C with strides padded by pad. */
static void check_case(int ta, int tb, int M, int N, int K, int pad, float alpha, float beta)
{
    int ar = ta ? K : M, ac = ta ? M : K; /* A as stored */
    int br = tb ? N : K, bc = tb ? K : N; /* B as stored */
    int lda = ac + pad, ldb = bc + pad, ldc = N + pad;
    float *A = malloc(sizeof(float) * (size_t)ar * lda);
    float *B = malloc(sizeof(float) * (size_t)br * ldb);
    float *C = malloc(sizeof(float) * (size_t)M * ldc);
    float *R = malloc(sizeof(float) * (size_t)M * ldc);
    fill(A, ar * lda, 1 + (uint64_t)(M * 131 + K));
    fill(B, br * ldb, 2 + (uint64_t)(N * 131 + K));
    fill(C, M * ldc, 3);
    if (beta == 0.0f) /* beta = 0 must not read C: poison it */
        for (int i = 0; i < M * ldc; i++)
            C[i] = NAN;
    memcpy(R, C, sizeof(float) * (size_t)M * ldc);
    bfn_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    bfn_gemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, ldc);
    int bad = 0, pad_bad = 0;
    double worst = 0.0;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            /* Float rounding bound: K ulp-sized errors on Σ|a b|, plus beta C. */
            double mag = 0.0;
            for (int k = 0; k < K; k++) {
                float a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                float b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                mag += fabs((double)a * b);
            }
            double tol = 4e-7 * (K + 2) * (fabs(alpha) * mag + 1.0);
            double d = fabs((double)C[(size_t)i * ldc + j] - R[(size_t)i * ldc + j]);
            if (!(d <= tol))
                bad++;
            worst = d > worst ? d : worst;
        }
        for (int j = N; j < ldc; j++) /* padding is left alone */
            pad_bad += memcmp(&C[(size_t)i * ldc + j], &R[(size_t)i * ldc + j], sizeof(float));
    }
    CHECK(bad == 0, "gemm ta=%d tb=%d M=%d N=%d K=%d pad=%d alpha=%g beta=%g: %d of %d differ "
          "(worst %.3g)", ta, tb, M, N, K, pad, alpha, beta, bad, M * N, worst);
    CHECK(pad_bad == 0, "gemm ta=%d tb=%d M=%d N=%d: padding columns written", ta, tb, M, N);
    free(A);
    free(B);
    free(C);
    free(R);
}

static void test_gemm_matches_naive_all_transposes(void)
{
    /* M = 1 goes to a matrix-vector product: small and kernel-sized */
    static const int sizes[][3] = {{1, 1, 1}, {7, 5, 13}, {33, 17, 65}, {64, 1, 9},
                                   {1, 31, 3}, {70, 45, 129}, {1, 200, 150}};
    const int n_sizes = (int)(sizeof sizes / sizeof sizes[0]);
    for (int ta = 0; ta <= 1; ta++)
        for (int tb = 0; tb <= 1; tb++)
            for (int s = 0; s < n_sizes; s++) {
                check_case(ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 0, 1.0f, 0.0f);
                check_case(ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 3, 1.0f, 1.0f);
                check_case(ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 5, -0.5f, 0.0f);
                check_case(ta, tb, sizes[s][0], sizes[s][1], sizes[s][2], 1, 0.75f, 1.0f);
            }
}

static void test_gemm_k_zero_scales_c_by_beta(void)
{
    float C[6] = {1, 2, 3, 4, 5, 6}, A[1] = {0}, B[1] = {0};
    bfn_gemm(0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 1.0f, C, 3);
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(i + 1.0, C[i], 0.0, "K=0 beta=1 keeps C[%d]", i);
    C[2] = NAN;
    bfn_gemm(0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 0.0f, C, 3);
    for (int i = 0; i < 6; i++)
        CHECK_NEAR(0.0, C[i], 0.0, "K=0 beta=0 zeroes C[%d]", i);
}

static void test_gemm_set_threads_returns_previous(void)
{
    int prev = bfn_gemm_set_threads(1);
    CHECK(prev >= 1, "previous thread count %d", prev);
    CHECK(bfn_gemm_set_threads(0) == 1, "thread count after setting 1");
    bfn_gemm_set_threads(prev);
}

int main(void)
{
    RUN(test_naive_matches_hand_computed_product);
    RUN(test_gemm_matches_naive_all_transposes);
    RUN(test_gemm_k_zero_scales_c_by_beta);
    RUN(test_gemm_set_threads_returns_previous);
    return check_finish();
}
