#include "viz.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef VIZ_SOURCE_DIR
#define VIZ_SOURCE_DIR "."
#endif

double viz_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void viz_strcpy(char *dst, size_t cap, const char *src)
{
    if (!cap)
        return;
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

void viz_fmt(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

const char *viz_basename(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int viz_mkdir(const char *dir)
{
    if (mkdir(dir, 0755) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

static int exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

int viz_locate(const char *rel, char *out, size_t cap)
{
    char cand[VIZ_PATH_MAX], exe[VIZ_PATH_MAX];
    if (rel[0] == '/' || exists(rel)) {
        viz_strcpy(out, cap, rel);
        return exists(rel);
    }
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    /* the directory above the executable's: /src/build/bfn -> /src */
    char *slash = len > 0 ? (exe[len] = '\0', strrchr(exe, '/')) : NULL;
    if (slash) {
        *slash = '\0';
        slash = strrchr(exe, '/');
    }
    if (slash && slash > exe) {
        *slash = '\0';
        int n = snprintf(cand, sizeof cand, "%s/%s", exe, rel);
        if (n > 0 && (size_t)n < sizeof cand && exists(cand)) {
            viz_strcpy(out, cap, cand);
            return 1;
        }
    }
    int n = snprintf(cand, sizeof cand, "%s/%s", VIZ_SOURCE_DIR, rel);
    if (n > 0 && (size_t)n < sizeof cand && exists(cand)) {
        viz_strcpy(out, cap, cand);
        return 1;
    }
    viz_strcpy(out, cap, rel);
    return 0;
}
