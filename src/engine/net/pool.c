/* Fork/join pool: a generation counter announces each run, every worker
 * acknowledges every run (so no worker can lag into the next one), and
 * waiting is spin-then-sleep (workers) or spin-then-yield (caller,
 * barriers), which keeps hand-over in the microseconds on an idle machine
 * without starving other processes on a busy one. */
#include "net/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define CPU_RELAX() _mm_pause()
#define HAVE_MXCSR 1
#else
#define CPU_RELAX() ((void)0)
#define HAVE_MXCSR 0
#endif

#define POOL_MAX 64
#define WORKER_SPINS 20000 /* a few hundred microseconds before sleeping */
#define WAIT_SPINS 4000    /* then sched_yield while waiting for others */

typedef struct {
    struct bfn_pool *p;
    int tid;
    int seen; /* generation already handled */
} worker;

struct bfn_pool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_int gen;      /* bumped once per run */
    atomic_int pending;  /* workers yet to acknowledge the current run */
    atomic_int sleepers; /* workers blocked on wake */
    atomic_int quit;
    bfn_pool_fn fn;      /* the current run, written before gen is bumped */
    void *arg;
    int n;
    int n_workers;
    pthread_t threads[POOL_MAX];
    worker w[POOL_MAX];
};

unsigned bfn_fp_flush_denormals(void)
{
#if HAVE_MXCSR
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u); /* FTZ (bit 15) and DAZ (bit 6) */
    return old;
#else
    return 0;
#endif
}

void bfn_fp_restore(unsigned state)
{
#if HAVE_MXCSR
    _mm_setcsr(state);
#else
    (void)state;
#endif
}

static void *worker_main(void *v)
{
    worker *w = v;
    bfn_pool *p = w->p;
    bfn_fp_flush_denormals();
    for (;;) {
        int g, spins = 0;
        while ((g = atomic_load(&p->gen)) == w->seen) {
            if (++spins < WORKER_SPINS) {
                CPU_RELAX();
                continue;
            }
            pthread_mutex_lock(&p->lock);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->gen) == w->seen)
                pthread_cond_wait(&p->wake, &p->lock);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->lock);
        }
        w->seen = g;
        if (atomic_load(&p->quit)) {
            atomic_fetch_sub(&p->pending, 1);
            break;
        }
        if (w->tid < p->n)
            p->fn(p->arg, w->tid, p->n);
        atomic_fetch_sub(&p->pending, 1);
    }
    return NULL;
}

bfn_pool *bfn_pool_create(void)
{
    bfn_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->wake, NULL) != 0) {
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->quit, 0);
    return p;
}

static void wait_pending(bfn_pool *p)
{
    int spins = 0;
    while (atomic_load(&p->pending) > 0) {
        if (++spins < WAIT_SPINS)
            CPU_RELAX();
        else
            sched_yield();
    }
}

/* Announces the run already stored in p and wakes sleeping workers. The
 * sleepers check pairs with the worker's increment-then-recheck under the
 * lock (both sequentially consistent), so no wake-up is lost. */
static void announce(bfn_pool *p)
{
    atomic_store(&p->pending, p->n_workers);
    atomic_fetch_add(&p->gen, 1);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
    }
}

void bfn_pool_destroy(bfn_pool *p)
{
    if (!p)
        return;
    if (p->n_workers > 0) {
        atomic_store(&p->quit, 1);
        p->n = 0;
        announce(p);
        for (int i = 0; i < p->n_workers; i++)
            pthread_join(p->threads[i], NULL);
    }
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

int bfn_pool_reserve(bfn_pool *p, int n)
{
    if (n > POOL_MAX + 1)
        n = POOL_MAX + 1;
    if (!p || n <= 1)
        return 1;
    while (p->n_workers < n - 1) {
        worker *w = &p->w[p->n_workers];
        w->p = p;
        w->tid = p->n_workers + 1;
        w->seen = atomic_load(&p->gen);
        if (pthread_create(&p->threads[p->n_workers], NULL, worker_main, w) != 0)
            break;
        p->n_workers++;
    }
    return p->n_workers + 1 < n ? p->n_workers + 1 : n;
}

int bfn_pool_run(bfn_pool *p, int n, bfn_pool_fn fn, void *arg)
{
    n = bfn_pool_reserve(p, n);
    if (n <= 1) {
        fn(arg, 0, 1);
        return 1;
    }
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    announce(p);
    fn(arg, 0, n);
    wait_pending(p);
    return n;
}

void bfn_barrier_init(bfn_barrier *b, int n)
{
    atomic_init(&b->count, 0);
    atomic_init(&b->sense, 0);
    b->n = n;
}

void bfn_barrier_wait(bfn_barrier *b)
{
    if (b->n <= 1)
        return;
    int s = atomic_load(&b->sense);
    if (atomic_fetch_add(&b->count, 1) == b->n - 1) {
        atomic_store(&b->count, 0);
        atomic_store(&b->sense, !s);
        return;
    }
    int spins = 0;
    while (atomic_load(&b->sense) == s) {
        if (++spins < WAIT_SPINS)
            CPU_RELAX();
        else
            sched_yield();
    }
}

void bfn_wait_at_least(atomic_int *v, int target)
{
    int spins = 0;
    while (atomic_load(v) < target) {
        if (++spins < WAIT_SPINS)
            CPU_RELAX();
        else
            sched_yield();
    }
}
