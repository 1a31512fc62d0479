#include "bfn/rng.h"

#include <math.h>

#define GOLDEN 0x9E3779B97F4A7C15ULL

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void bfn_rng_init(bfn_rng *r, uint64_t seed, uint64_t stream)
{
    r->key = mix64(mix64(seed + GOLDEN) ^ (stream * 0xD1B54A32D192ED03ULL + 0x8CB92BA72F3D8DD7ULL));
    r->ctr = 0;
}

bfn_rng bfn_rng_fork(const bfn_rng *r, uint64_t id)
{
    bfn_rng c;
    c.key = mix64(r->key ^ mix64(id + 0x632BE59BD9B4E019ULL));
    c.ctr = 0;
    return c;
}

uint64_t bfn_rng_u64(bfn_rng *r)
{
    return mix64(r->key + (r->ctr++) * GOLDEN);
}

double bfn_rng_uniform(bfn_rng *r)
{
    return (double)(bfn_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t bfn_rng_below(bfn_rng *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do v = bfn_rng_u64(r); while (v >= limit);
    return v % n;
}

static void box_muller(bfn_rng *r, double *a, double *b)
{
    /* u1 in (0, 1] so log is finite */
    double u1 = 1.0 - bfn_rng_uniform(r);
    double u2 = bfn_rng_uniform(r);
    double rad = sqrt(-2.0 * log(u1));
    double ang = 6.283185307179586476925 * u2;
    *a = rad * cos(ang);
    *b = rad * sin(ang);
}

double bfn_rng_normal(bfn_rng *r)
{
    double a, b;
    box_muller(r, &a, &b);
    return a;
}

void bfn_rng_normal_fill(bfn_rng *r, float *out, size_t n)
{
    size_t i = 0;
    for (; i + 1 < n; i += 2) {
        double a, b;
        box_muller(r, &a, &b);
        out[i] = (float)a;
        out[i + 1] = (float)b;
    }
    if (i < n)
        out[i] = (float)bfn_rng_normal(r);
}
