/* The one caller of BLAS, and the keeper of its thread count.
 *
 * OpenBLAS (pthreads build) has one thread count for the whole process and
 * no per-call or per-thread setting, and changing it while another thread
 * is inside a multi-threaded BLAS call frees buffers that call is using.
 * The networks run their own threads and need BLAS single-threaded
 * meanwhile, and several networks may run at once in different threads
 * (the app samples and trains together). So the count is set here only,
 * under one process-wide lock, as a reference count of "serial sections":
 * while any section is open BLAS runs on one thread; the last one to close
 * restores the configured count; a configured count set meanwhile is kept
 * and applied then. A multi-threaded bfn_gemm outside every section is
 * counted as busy, and the count is not changed until it returns. This
 * lock and its counters are the engine's only process-wide state, because
 * the thing they guard is process-wide. */
#include "bfn/gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "net/layers.h"

static struct {
    pthread_mutex_t lock;
    pthread_cond_t idle; /* signalled when busy drops to 0 */
    int configured;      /* threads asked for (0: BLAS's own default, not read yet) */
    int sections;        /* open serial sections; BLAS is at 1 thread while > 0 */
    int busy;            /* multi-threaded bfn_gemm calls in flight */
} blas = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

/* Under blas.lock. */
static int configured_locked(void)
{
    if (blas.configured < 1)
        blas.configured = openblas_get_num_threads();
    if (blas.configured < 1)
        blas.configured = 1;
    return blas.configured;
}

/* Under blas.lock: waits until no multi-threaded call uses BLAS's threads. */
static void wait_idle_locked(void)
{
    while (blas.busy > 0)
        pthread_cond_wait(&blas.idle, &blas.lock);
}

static void sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                  int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C,
                ldc);
}

/* BLAS treats K = 0 as C = beta*C; keep that contract. */
static void beta_only(int M, int N, float beta, float *C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++)
            C[(long)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(long)i * ldc + j];
}

void bfn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0 || K <= 0) { /* no BLAS call */
        bfn_gemm_serial(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    pthread_mutex_lock(&blas.lock);
    int threaded = blas.sections == 0 && configured_locked() > 1;
    blas.busy += threaded;
    pthread_mutex_unlock(&blas.lock);
    bfn_gemm_serial(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    if (threaded) {
        pthread_mutex_lock(&blas.lock);
        if (--blas.busy == 0)
            pthread_cond_broadcast(&blas.idle);
        pthread_mutex_unlock(&blas.lock);
    }
}

void bfn_gemm_serial(int trans_a, int trans_b, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C,
                     int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        beta_only(M, N, beta, C, ldc);
        return;
    }
    if (M == 1) {
        /* one row (a time projection, a one-channel conv): a matrix-vector
         * product, which reads op(B) once instead of packing it first */
        cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, trans_b ? N : K,
                    trans_b ? K : N, alpha, B, ldb, A, trans_a ? lda : 1, beta, C, 1);
        return;
    }
    sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
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
    pthread_mutex_lock(&blas.lock);
    int prev = configured_locked();
    if (n > 0 && n != prev) {
        blas.configured = n;
        if (blas.sections == 0) {
            wait_idle_locked();
            /* a section opened meanwhile applies it when the last one closes */
            if (blas.sections == 0)
                openblas_set_num_threads(blas.configured);
        }
    }
    pthread_mutex_unlock(&blas.lock);
    return prev;
}

int bfn_gemm_threads(void)
{
    pthread_mutex_lock(&blas.lock);
    int n = configured_locked();
    pthread_mutex_unlock(&blas.lock);
    return n;
}

int bfn_gemm_serial_begin(void)
{
    pthread_mutex_lock(&blas.lock);
    if (blas.sections == 0) {
        wait_idle_locked();
        /* if another section opened while this one waited, BLAS is at 1
         * already, and with nothing busy setting it again is harmless */
        if (configured_locked() > 1)
            openblas_set_num_threads(1);
    }
    blas.sections++;
    int n = configured_locked();
    pthread_mutex_unlock(&blas.lock);
    return n;
}

void bfn_gemm_serial_end(void)
{
    pthread_mutex_lock(&blas.lock);
    if (blas.sections > 0 && --blas.sections == 0 && blas.configured > 1)
        openblas_set_num_threads(blas.configured);
    pthread_mutex_unlock(&blas.lock);
}

void bfn_gemm_describe(char *buf, size_t size)
{
    static const char *const names[] = {"none (BLAS only)", "AVX2+FMA", "AVX-512"};
    int isa = bfn_convk_isa();
    if (buf && size > 0)
        snprintf(buf, size, "%s, core %s; convolution kernels: %s", openblas_get_config(),
                 openblas_get_corename(), names[isa >= 0 && isa <= 2 ? isa : 0]);
}

int bfn_gemm_check_env(char *msg, size_t size)
{
    const char *v = getenv("BFN_ISA");
    if (!v || bfn_convk_isa_named(v) >= 0)
        return 0;
    if (msg && size > 0)
        snprintf(msg, size, "BFN_ISA='%.40s' is not a kernel set: use avx512, avx2 or none (or unset it)",
                 v);
    return -1;
}
