/* Tests of the counter-based generator (rng.c): moments of the uniform and
 * normal draws within 5 standard errors, stream identity (same seed, same
 * stream; forks and stream ids differ), random access by counter, and
 * bfn_rng_below's range and uniformity. Seeds are fixed. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "bfn/rng.h"
#include "check.h"

#define N_DRAWS 1000000

static void test_uniform_mean_variance_match_u01(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 123, 0);
    double s = 0.0, s2 = 0.0, lo = 1.0, hi = 0.0;
    for (int i = 0; i < N_DRAWS; i++) {
        double u = bfn_rng_uniform(&r);
        s += u;
        s2 += u * u;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    double m = s / N_DRAWS, v = s2 / N_DRAWS - m * m;
    /* U(0,1): mean 1/2, variance 1/12, fourth central moment 1/80. */
    CHECK_NEAR(0.5, m, 5.0 * sqrt(1.0 / 12.0 / N_DRAWS), "uniform mean");
    CHECK_NEAR(1.0 / 12.0, v, 5.0 * sqrt((1.0 / 80.0 - 1.0 / 144.0) / N_DRAWS),
               "uniform variance");
    CHECK(lo >= 0.0 && hi < 1.0, "uniform range [0,1): min %.3g max %.17g", lo, hi);
    CHECK(lo < 1e-4 && hi > 1.0 - 1e-4, "uniform covers the interval: min %.3g max %.6f", lo,
          hi);
}

/* Standard normal moments: E z = 0, E z² = 1, E z³ = 0, E z⁴ = 3, with
 * standard errors √(1/N), √(2/N), √(15/N), √(96/N). */
static void check_normal_moments(const double *z, int n, const char *what)
{
    double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
    for (int i = 0; i < n; i++) {
        double v = z[i], v2 = v * v;
        m1 += v;
        m2 += v2;
        m3 += v2 * v;
        m4 += v2 * v2;
    }
    m1 /= n;
    m2 /= n;
    m3 /= n;
    m4 /= n;
    CHECK_NEAR(0.0, m1, 5.0 * sqrt(1.0 / n), "%s mean", what);
    CHECK_NEAR(1.0, m2, 5.0 * sqrt(2.0 / n), "%s second moment", what);
    CHECK_NEAR(0.0, m3, 5.0 * sqrt(15.0 / n), "%s third moment (skew)", what);
    CHECK_NEAR(3.0, m4, 5.0 * sqrt(96.0 / n), "%s fourth moment (kurtosis)", what);
}

static void test_normal_moments_match_standard_normal(void)
{
    double *z = malloc(sizeof(double) * N_DRAWS);
    float *f = malloc(sizeof(float) * N_DRAWS);
    bfn_rng r;
    bfn_rng_init(&r, 7, 1);
    for (int i = 0; i < N_DRAWS; i++)
        z[i] = bfn_rng_normal(&r);
    check_normal_moments(z, N_DRAWS, "bfn_rng_normal");

    /* normal_fill uses both Box-Muller outputs: check moments and that the
     * two members of a pair are uncorrelated. An odd count fills the tail. */
    bfn_rng_normal_fill(&r, f, N_DRAWS - 1);
    double c = 0.0;
    int bad = 0;
    for (int i = 0; i < N_DRAWS - 1; i++) {
        z[i] = f[i];
        bad += !isfinite(f[i]);
    }
    for (int i = 0; i + 1 < N_DRAWS - 1; i += 2)
        c += z[i] * z[i + 1];
    check_normal_moments(z, N_DRAWS - 1, "bfn_rng_normal_fill");
    CHECK(bad == 0, "normal_fill: %d non-finite values", bad);
    CHECK_NEAR(0.0, c / (N_DRAWS / 2), 5.0 * sqrt(2.0 / N_DRAWS), "pair correlation");
    free(z);
    free(f);
}

static void test_same_seed_gives_same_stream(void)
{
    bfn_rng a, b;
    bfn_rng_init(&a, 99, 3);
    bfn_rng_init(&b, 99, 3);
    int diff = 0;
    for (int i = 0; i < 1000; i++)
        diff += bfn_rng_u64(&a) != bfn_rng_u64(&b);
    CHECK(diff == 0, "same (seed, stream): %d of 1000 outputs differ", diff);
    float fa[33], fb[33];
    bfn_rng_normal_fill(&a, fa, 33);
    bfn_rng_normal_fill(&b, fb, 33);
    for (int i = 0; i < 33; i++)
        diff += fa[i] != fb[i];
    CHECK(diff == 0, "same stream normal_fill: %d of 33 differ", diff);
}

static int count_equal(bfn_rng a, bfn_rng b, int n)
{
    int same = 0;
    for (int i = 0; i < n; i++)
        same += bfn_rng_u64(&a) == bfn_rng_u64(&b);
    return same;
}

static void test_seeds_streams_and_forks_differ(void)
{
    bfn_rng a, b, c;
    bfn_rng_init(&a, 1, 0);
    bfn_rng_init(&b, 2, 0);
    bfn_rng_init(&c, 1, 1);
    CHECK(count_equal(a, b, 1000) == 0, "seeds 1 and 2 share outputs");
    CHECK(count_equal(a, c, 1000) == 0, "streams 0 and 1 share outputs");
    bfn_rng f1 = bfn_rng_fork(&a, 1), f2 = bfn_rng_fork(&a, 2), f1b = bfn_rng_fork(&a, 1);
    CHECK(count_equal(f1, f2, 1000) == 0, "forks 1 and 2 share outputs");
    CHECK(count_equal(f1, a, 1000) == 0, "fork 1 shares outputs with its parent");
    CHECK(count_equal(f1, f1b, 1000) == 1000, "the same fork id gives the same stream");
    /* Forking does not advance the parent. */
    bfn_rng ref;
    bfn_rng_init(&ref, 1, 0);
    CHECK(bfn_rng_u64(&a) == bfn_rng_u64(&ref), "fork leaves the parent unchanged");
    /* Forks of forks differ from the first level. */
    bfn_rng g = bfn_rng_fork(&f1, 1);
    CHECK(count_equal(g, f1, 1000) == 0, "fork(fork(r,1),1) shares outputs with fork(r,1)");
    /* Uniforms of two forks are uncorrelated. */
    double s = 0.0;
    const int n = 200000;
    for (int i = 0; i < n; i++)
        s += (bfn_rng_uniform(&f1) - 0.5) * (bfn_rng_uniform(&f2) - 0.5);
    CHECK_NEAR(0.0, s / n * 12.0, 5.0 / sqrt(n), "correlation of two forks");
}

static void test_output_is_pure_function_of_counter(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 5, 5);
    uint64_t seq[64];
    for (int i = 0; i < 64; i++)
        seq[i] = bfn_rng_u64(&r);
    int bad = 0;
    for (int i = 63; i >= 0; i -= 7) {
        bfn_rng j;
        bfn_rng_init(&j, 5, 5);
        j.ctr = (uint64_t)i;
        bad += bfn_rng_u64(&j) != seq[i];
    }
    CHECK(bad == 0, "random access by counter: %d mismatches", bad);
}

static void test_below_stays_in_range_and_is_uniform(void)
{
    bfn_rng r;
    bfn_rng_init(&r, 11, 0);
    int bad = 0;
    for (int i = 0; i < 1000; i++)
        bad += bfn_rng_below(&r, 1) != 0;
    CHECK(bad == 0, "below(1) returned nonzero %d times", bad);

    const uint64_t ns[4] = {3, 10, (1ULL << 63) + 12345, UINT64_MAX};
    for (int j = 0; j < 4; j++) {
        bad = 0;
        for (int i = 0; i < 10000; i++)
            bad += bfn_rng_below(&r, ns[j]) >= ns[j];
        CHECK(bad == 0, "below(%llu) out of range %d times", (unsigned long long)ns[j], bad);
    }
    /* Large n near 2^63: rejection keeps the top half as likely as the bottom. */
    const uint64_t big = (1ULL << 63) + (1ULL << 62);
    double top = 0;
    const int nb = 200000;
    for (int i = 0; i < nb; i++)
        top += bfn_rng_below(&r, big) >= big / 2;
    CHECK_NEAR(0.5 * nb, top, 5.0 * sqrt(0.25 * nb), "below(1.5*2^63): upper half count");

    /* Chi-square over 10 cells: df 9, mean 9, sd √18. */
    enum { CELLS = 10, NU = 200000 };
    double cnt[CELLS] = {0};
    for (int i = 0; i < NU; i++)
        cnt[bfn_rng_below(&r, CELLS)] += 1.0;
    double chi = 0.0, e = (double)NU / CELLS;
    for (int c = 0; c < CELLS; c++) {
        chi += (cnt[c] - e) * (cnt[c] - e) / e;
        CHECK_NEAR(e, cnt[c], 5.0 * sqrt(e * (1.0 - 1.0 / CELLS)), "below(10): count of %d", c);
    }
    CHECK(chi < 9.0 + 6.0 * sqrt(18.0), "below(10): chi-square %.2f with 9 df", chi);
}

int main(void)
{
    RUN(test_uniform_mean_variance_match_u01);
    RUN(test_normal_moments_match_standard_normal);
    RUN(test_same_seed_gives_same_stream);
    RUN(test_seeds_streams_and_forks_differ);
    RUN(test_output_is_pure_function_of_counter);
    RUN(test_below_stays_in_range_and_is_uniform);
    return check_finish();
}
