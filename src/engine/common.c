#include "bfn/common.h"

#include <stdarg.h>
#include <stdio.h>

const char *bfn_status_str(bfn_status s)
{
    switch (s) {
    case BFN_OK: return "ok";
    case BFN_ERR_ARG: return "invalid argument";
    case BFN_ERR_NOMEM: return "out of memory";
    case BFN_ERR_IO: return "input/output error";
    case BFN_ERR_FORMAT: return "malformed file";
    case BFN_ERR_CHECKSUM: return "checksum mismatch";
    case BFN_ERR_MISMATCH: return "incompatible data";
    case BFN_ERR_NUMERIC: return "non-finite number";
    case BFN_ERR_CANCELLED: return "cancelled";
    case BFN_ERR_UNSUPPORTED: return "unsupported";
    }
    return "unknown status";
}

bfn_status bfn_err_set(bfn_err *err, bfn_status s, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->status = s;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return s;
}

void bfn_err_clear(bfn_err *err)
{
    if (err) {
        err->status = BFN_OK;
        err->msg[0] = '\0';
    }
}
