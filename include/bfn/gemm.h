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
 * BLAS's own threads, and inside a network (unless bfn_net_set_threads
 * says otherwise) the engine's threads, which then run BLAS single-threaded.
 * Process-wide, like BLAS's own setting; safe from any thread at any time
 * (while a network runs, BLAS takes the new count when the last running
 * network returns). Returns the previous value. */
int bfn_gemm_set_threads(int n);
/* The value bfn_gemm_set_threads set (BLAS's own default before that). */
int bfn_gemm_threads(void);

/* Serial sections, for code that runs its own threads (the networks): from
 * begin to end BLAS runs single-threaded, whatever other threads do; the
 * last section to end anywhere in the process restores the configured
 * count. Sections may be open in several threads at once. begin returns
 * bfn_gemm_threads(). */
int bfn_gemm_serial_begin(void);
void bfn_gemm_serial_end(void);
/* bfn_gemm for callers inside a serial section (from any of the section's
 * threads): the same product without bfn_gemm's bookkeeping. */
void bfn_gemm_serial(int trans_a, int trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc);

/* Writes one line (at most size bytes with the terminating 0) naming the
 * BLAS library, its kernel (core) type and the engine's own convolution
 * kernels, e.g. for benchmark reports. */
void bfn_gemm_describe(char *buf, size_t size);

/* The environment variable BFN_ISA, when set, caps the engine's vector
 * kernels: "avx512" (no cap), "avx2" (compute as an AVX2 machine does: the
 * same bits as AVX-512) or "none" (BLAS and plain C, which round
 * differently). Returns 0 when it is unset or one of those, else -1 with a
 * message in msg (for the programs to refuse to start). */
int bfn_gemm_check_env(char *msg, size_t size);

#endif
