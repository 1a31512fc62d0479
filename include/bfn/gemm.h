/* The one matrix-product entry point of the engine (the only caller of BLAS).
 * Row-major: C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C,
 * op(X) = X or X^T as trans_x says; lda/ldb/ldc are row strides as stored. */
#ifndef BFN_GEMM_H
#define BFN_GEMM_H

#include <stddef.h>

void bfn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);

/* Same contract, plain loops with double accumulation: the reference for tests. */
void bfn_gemm_naive(int trans_a, int trans_b, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc);

/* Threads the engine may use for matrix work (<= 0: leave as configured):
 * BLAS's own threads, and inside the network the engine's threads, which
 * then run BLAS single-threaded. Returns the previous value. */
int bfn_gemm_set_threads(int n);

/* Writes one line (at most size bytes with the terminating 0) naming the
 * BLAS library, its kernel (core) type and the engine's own convolution
 * kernels, e.g. for benchmark reports. */
void bfn_gemm_describe(char *buf, size_t size);

#endif
