/* Small helpers shared by every file of the bfnviz app. */
#ifndef VIZ_H
#define VIZ_H

#include <stddef.h>
#include <stdint.h>

#define VIZ_PATH_MAX 1024

/* Seconds on a monotonic clock (arbitrary origin). */
double viz_now(void);

static inline int viz_clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline double viz_clampd(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Copies src into dst (cap bytes), cutting it if needed; always terminated. */
void viz_strcpy(char *dst, size_t cap, const char *src);
/* snprintf for messages that may be cut to fit (paths inside messages). */
void viz_fmt(char *dst, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Last path component of p ("models/mnist.bfn" → "mnist.bfn"). */
const char *viz_basename(const char *p);

/* Creates directory dir if it is missing (one level). 0 on success. */
int viz_mkdir(const char *dir);

#endif
