/* The one matrix-product entry point of the engine (the only caller of BLAS).
 * Row-major: C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C,
 * op(X) = X or X^T as trans_x says; lda/ldb/ldc are row strides as stored. */
#ifndef BFN_GEMM_H
#define BFN_GEMM_H

void bfn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);

/* Same contract, plain loops with double accumulation: the reference for tests. */
void bfn_gemm_naive(int trans_a, int trans_b, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc);

/* Threads BLAS may use (<= 0: leave as configured). Returns the previous value. */
int bfn_gemm_set_threads(int n);

#endif
