/* Counter-based random numbers: output i of a stream is a pure function of
 * (key, i), so any piece of work can get its own stream from (seed, ids) and
 * results do not depend on how work is split across threads.
 * The mixer is SplitMix64 (Steele, Lea, Flood 2014) applied to key + i*gamma. */
#ifndef BFN_RNG_H
#define BFN_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t key; /* stream identity */
    uint64_t ctr; /* next counter value */
} bfn_rng;

/* Stream from a seed and a stream id (e.g. a purpose tag). */
void bfn_rng_init(bfn_rng *r, uint64_t seed, uint64_t stream);
/* An independent child stream of r identified by id (r is not advanced). */
bfn_rng bfn_rng_fork(const bfn_rng *r, uint64_t id);

uint64_t bfn_rng_u64(bfn_rng *r);
/* Uniform in [0, 1), 53-bit resolution. */
double bfn_rng_uniform(bfn_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t bfn_rng_below(bfn_rng *r, uint64_t n);
/* Standard normal (Box-Muller on two fresh uniforms; one value per call). */
double bfn_rng_normal(bfn_rng *r);
/* n standard normals, float. Uses both Box-Muller outputs. */
void bfn_rng_normal_fill(bfn_rng *r, float *out, size_t n);

#endif
