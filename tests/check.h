/* Minimal test harness: every failed check prints what was expected, what was
 * got and the tolerance, with file and line; a program exits non-zero if any
 * check failed. Tests are plain functions run by check_run(). */
#ifndef BFN_TEST_CHECK_H
#define BFN_TEST_CHECK_H

#include <stdio.h>

extern int check_failures; /* failed checks so far */
extern int check_count;    /* checks evaluated so far */

int check_near_impl(double expected, double got, double tol, const char *file, int line,
                    const char *what);
int check_true_impl(int cond, const char *file, int line, const char *what);

/* |expected - got| <= tol (NaN never passes). Returns 1 when it passed. The values
 * are evaluated before the message, so the message may show their side effects. */
#define CHECK_NEAR(expected, got, tol, ...)                                        \
    ({ double check_e_ = (double)(expected), check_g_ = (double)(got);              \
       double check_t_ = (double)(tol);                                             \
       char check_what_[1024]; snprintf(check_what_, sizeof check_what_, __VA_ARGS__); \
       check_near_impl(check_e_, check_g_, check_t_, __FILE__, __LINE__, check_what_); })
/* Relative: |expected - got| <= rtol * max(|expected|, atol_floor). */
#define CHECK_REL(expected, got, rtol, floor, ...)                                 \
    CHECK_NEAR(expected, got, (rtol) * (fabs((double)(expected)) > (floor) ?        \
                                        fabs((double)(expected)) : (floor)), __VA_ARGS__)
#define CHECK(cond, ...)                                                           \
    ({ int check_c_ = !!(cond);                                                     \
       char check_what_[1024]; snprintf(check_what_, sizeof check_what_, __VA_ARGS__); \
       check_true_impl(check_c_, __FILE__, __LINE__, check_what_); })

typedef void (*check_fn)(void);
/* Runs one named test, printing its name and how many of its checks failed. */
void check_run(const char *name, check_fn fn);
/* Prints the summary line "N passed, N failed" (checks) and returns the exit code. */
int check_finish(void);

#define RUN(fn) check_run(#fn, fn)

#endif
