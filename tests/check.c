#include "check.h"

#include <math.h>

int check_failures = 0;
int check_count = 0;
static int tests_failed = 0, tests_passed = 0;

int check_near_impl(double expected, double got, double tol, const char *file, int line,
                    const char *what)
{
    check_count++;
    double diff = fabs(expected - got);
    if (!(diff <= tol)) {
        check_failures++;
        fprintf(stderr, "%s:%d: FAIL %s: expected %.9g, got %.9g, |diff| %.3g > tol %.3g\n",
                file, line, what, expected, got, diff, tol);
        return 0;
    }
    return 1;
}

int check_true_impl(int cond, const char *file, int line, const char *what)
{
    check_count++;
    if (!cond) {
        check_failures++;
        fprintf(stderr, "%s:%d: FAIL %s\n", file, line, what);
        return 0;
    }
    return 1;
}

void check_run(const char *name, check_fn fn)
{
    int before = check_failures, n_before = check_count;
    fn();
    int failed = check_failures - before;
    printf("%-52s %s (%d checks", name, failed ? "FAIL" : "ok", check_count - n_before);
    if (failed)
        printf(", %d failed", failed);
    printf(")\n");
    fflush(stdout);
    if (failed)
        tests_failed++;
    else
        tests_passed++;
}

int check_finish(void)
{
    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed ? 1 : 0;
}
