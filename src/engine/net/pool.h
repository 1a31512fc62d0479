/* A tiny fork/join thread pool and a team barrier (internal to the engine).
 *
 * bfn_pool_run(p, n, fn, arg) runs fn(arg, i, n) for i = 0..n-1 at the same
 * time, i = 0 on the calling thread, and returns when all have returned.
 * Workers are created on first need and kept; between runs they spin
 * briefly, then sleep, so back-to-back runs (one per network call) start
 * in microseconds while an idle pool costs no CPU. Every pool thread runs
 * with denormals flushed to zero (FTZ/DAZ), as does the caller inside
 * bfn_pool_run, so results never depend on which thread did the work.
 *
 * A run is a fork and a join in the memory model too: what the caller
 * wrote before bfn_pool_run is visible to fn on every thread (the run's
 * generation is published after it), and what fn wrote on any thread is
 * visible to the caller when bfn_pool_run returns, hence to the next run
 * (each worker acknowledges after its part). Two passes that write the same
 * memory in different splits therefore need two runs, never one.
 *
 * The pool decides nothing about how work is split: callers split by fixed
 * chunks so that results do not depend on the number of threads. */
#ifndef BFN_NET_POOL_H
#define BFN_NET_POOL_H

#include <stdatomic.h>

typedef struct bfn_pool bfn_pool;
typedef void (*bfn_pool_fn)(void *arg, int tid, int nthreads);

/* NULL when out of memory. No thread is started yet. */
bfn_pool *bfn_pool_create(void);
/* Joins the workers. p may be NULL. */
void bfn_pool_destroy(bfn_pool *p);
/* Starts workers so that n threads can run; returns how many can (fewer
 * when a thread could not be started; always >= 1). */
int bfn_pool_reserve(bfn_pool *p, int n);
/* Runs fn on min(n, bfn_pool_reserve(p, n)) threads; returns that number. */
int bfn_pool_run(bfn_pool *p, int n, bfn_pool_fn fn, void *arg);

/* Sense-reversing barrier for n threads, spinning then yielding. */
typedef struct {
    atomic_int count;
    atomic_int sense;
    int n;
} bfn_barrier;

void bfn_barrier_init(bfn_barrier *b, int n);
void bfn_barrier_wait(bfn_barrier *b);

/* Waits (spinning, then yielding) until *v >= target. */
void bfn_wait_at_least(atomic_int *v, int target);

/* Sets FTZ and DAZ on the calling thread; returns the previous control
 * state for bfn_fp_restore (0 where unsupported). */
unsigned bfn_fp_flush_denormals(void);
void bfn_fp_restore(unsigned state);

#endif
