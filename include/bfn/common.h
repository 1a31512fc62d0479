/* Status codes and error messages shared by every engine module.
 * Functions that can fail return bfn_status (0 ok, negative error) and, when
 * given a bfn_err, leave a one-line human message in it. The engine never
 * prints, exits or aborts. */
#ifndef BFN_COMMON_H
#define BFN_COMMON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    BFN_OK = 0,
    BFN_ERR_ARG = -1,         /* invalid argument or configuration */
    BFN_ERR_NOMEM = -2,       /* allocation failed */
    BFN_ERR_IO = -3,          /* open/read/write/rename failed */
    BFN_ERR_FORMAT = -4,      /* malformed file: bad magic, size, bounds */
    BFN_ERR_CHECKSUM = -5,    /* file checksum does not match */
    BFN_ERR_MISMATCH = -6,    /* well-formed but incompatible (K, size, config) */
    BFN_ERR_NUMERIC = -7,     /* NaN/Inf where a finite value was required */
    BFN_ERR_CANCELLED = -8,   /* stopped on request */
    BFN_ERR_UNSUPPORTED = -9  /* valid request this build cannot do */
} bfn_status;

#define BFN_ERR_MSG_MAX 512

typedef struct {
    bfn_status status;
    char msg[BFN_ERR_MSG_MAX];
} bfn_err;

/* Short fixed name of a status code ("ok", "invalid argument", ...). */
const char *bfn_status_str(bfn_status s);

/* Records status and a printf-style message in err (err may be NULL); returns s. */
bfn_status bfn_err_set(bfn_err *err, bfn_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err to BFN_OK and an empty message (err may be NULL). */
void bfn_err_clear(bfn_err *err);

#endif
