#include "bfn/gemm.h"

#include <cblas.h>
#include <stdio.h>

#include "net/layers.h"

void bfn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        /* BLAS treats K = 0 as C = beta*C; keep that contract. */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(long)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(long)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb,
                beta, C, ldc);
}

void bfn_gemm_naive(int trans_a, int trans_b, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                float a = trans_a ? A[(long)k * lda + i] : A[(long)i * lda + k];
                float b = trans_b ? B[(long)j * ldb + k] : B[(long)k * ldb + j];
                acc += (double)a * b;
            }
            float *c = &C[(long)i * ldc + j];
            *c = (float)(alpha * acc) + (beta == 0.0f ? 0.0f : beta * *c);
        }
    }
}

int bfn_gemm_set_threads(int n)
{
    int prev = openblas_get_num_threads();
    if (n > 0)
        openblas_set_num_threads(n);
    return prev;
}

void bfn_gemm_describe(char *buf, size_t size)
{
    static const char *const names[] = {"none (BLAS only)", "AVX2+FMA", "AVX-512"};
    int isa = bfn_convk_isa();
    if (buf && size > 0)
        snprintf(buf, size, "%s, core %s; convolution kernels: %s", openblas_get_config(),
                 openblas_get_corename(), names[isa >= 0 && isa <= 2 ? isa : 0]);
}
