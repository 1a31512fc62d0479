/* IDX reading, MNIST-style data sets, the fixed split, dynamic binarization,
 * two-digit MNIST and the batch source (see bfn/data.h). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "bfn/data.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_TYPE_U8 0x08
#define IDX_MAX_HEADER 16 /* 4 magic bytes + 3 dimensions */
#define PATH_CAP 4096

/* ---------------------------------------------------------------- IDX ---- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Checks the header in the first len bytes of buf (len may be short of a full
 * header) and fills ndim, dims and size; *hdr_len gets the header length. */
static bfn_status idx_header(bfn_idx *idx, size_t *hdr_len, const char *name, const uint8_t *buf,
                             size_t len, bfn_err *err)
{
    if (len == 0)
        return bfn_err_set(err, BFN_ERR_FORMAT, "%s: file is empty (not an IDX file)", name);
    if (len < 4)
        return bfn_err_set(err, BFN_ERR_FORMAT,
                           "%s: file has %zu bytes, too short for the 4-byte IDX magic", name, len);
    if (buf[0] != 0 || buf[1] != 0)
        return bfn_err_set(err, BFN_ERR_FORMAT,
                           "%s: bad magic %02x %02x %02x %02x (an IDX file starts with 00 00)",
                           name, buf[0], buf[1], buf[2], buf[3]);
    if (buf[2] != IDX_TYPE_U8)
        return bfn_err_set(err, BFN_ERR_FORMAT,
                           "%s: element type 0x%02x is not supported (only 0x08, unsigned byte)",
                           name, buf[2]);
    int ndim = buf[3];
    if (ndim != 1 && ndim != 3)
        return bfn_err_set(err, BFN_ERR_FORMAT, "%s: %d dimensions, expected 1 or 3", name, ndim);
    size_t need = 4 + 4 * (size_t)ndim;
    if (len < need)
        return bfn_err_set(err, BFN_ERR_FORMAT,
                           "%s: file has %zu bytes, too short for its %zu-byte header", name, len,
                           need);
    uint64_t prod = 1;
    for (int d = 0; d < ndim; d++) {
        uint32_t v = be32(buf + 4 + 4 * d);
        if (v == 0)
            return bfn_err_set(err, BFN_ERR_FORMAT, "%s: dimension %d is 0", name, d);
        if (v > BFN_IDX_MAX_DIM)
            return bfn_err_set(err, BFN_ERR_FORMAT, "%s: dimension %d is %u, above the limit %u",
                               name, d, v, BFN_IDX_MAX_DIM);
        /* prod <= MAX_BYTES and v <= 2^24 keep this product far below 2^64 */
        prod *= v;
        if (prod > BFN_IDX_MAX_BYTES)
            return bfn_err_set(err, BFN_ERR_FORMAT,
                               "%s: dimensions give more than %llu elements (limit)", name,
                               (unsigned long long)BFN_IDX_MAX_BYTES);
        idx->dims[d] = v;
    }
    idx->ndim = ndim;
    idx->size = (size_t)prod;
    *hdr_len = need;
    return BFN_OK;
}

static void idx_clear(bfn_idx *idx)
{
    memset(idx, 0, sizeof *idx);
}

void bfn_idx_free(bfn_idx *idx)
{
    if (!idx)
        return;
    free(idx->data);
    idx_clear(idx);
}

bfn_status bfn_idx_parse(bfn_idx *idx, const char *name, const uint8_t *buf, size_t len,
                         bfn_err *err)
{
    if (!idx)
        return bfn_err_set(err, BFN_ERR_ARG, "bfn_idx_parse: idx is NULL");
    idx_clear(idx);
    if (!name)
        name = "(memory)";
    if (!buf && len)
        return bfn_err_set(err, BFN_ERR_ARG, "%s: buffer is NULL", name);
    size_t hdr = 0;
    bfn_idx h;
    idx_clear(&h);
    bfn_status s = idx_header(&h, &hdr, name, buf, len, err);
    if (s)
        return s;
    if (len - hdr != h.size)
        return bfn_err_set(err, BFN_ERR_FORMAT, "%s: file has %zu bytes, header says %zu+%zu",
                           name, len, hdr, h.size);
    h.data = malloc(h.size);
    if (!h.data)
        return bfn_err_set(err, BFN_ERR_NOMEM, "%s: cannot allocate %zu bytes", name, h.size);
    memcpy(h.data, buf + hdr, h.size);
    *idx = h;
    return BFN_OK;
}

/* Reads up to n bytes; *got receives how many arrived before end of data.
 * Returns non-zero on a read or decompression error. */
static int gz_read_full(gzFile gz, uint8_t *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        size_t want = n - *got;
        if (want > (1u << 30))
            want = 1u << 30;
        int r = gzread(gz, buf + *got, (unsigned)want);
        if (r < 0)
            return 1;
        if (r == 0)
            return 0;
        *got += (size_t)r;
    }
    return 0;
}

static bfn_status gz_fail(gzFile gz, const char *name, bfn_err *err)
{
    int zerr = Z_OK;
    const char *msg = gzerror(gz, &zerr);
    if (zerr == Z_ERRNO)
        return bfn_err_set(err, BFN_ERR_IO, "%s: read failed: %s", name, strerror(errno));
    return bfn_err_set(err, BFN_ERR_FORMAT, "%s: corrupt compressed data (%s)", name,
                       msg ? msg : "unknown zlib error");
}

/* Trailing bytes are counted for the error message only, up to 1 MiB: a small
 * file that inflates to gigabytes after its payload costs a millisecond. */
#define GZ_REST_COUNT_MAX ((uint64_t)1 << 20)

/* Bytes left in gz after the expected end (counted up to GZ_REST_COUNT_MAX);
 * *more is set when the cap was hit. */
static int gz_count_rest(gzFile gz, uint64_t *rest, int *more)
{
    uint8_t chunk[65536];
    *rest = 0;
    *more = 0;
    for (;;) {
        int r = gzread(gz, chunk, sizeof chunk);
        if (r < 0)
            return 1;
        if (r == 0)
            return 0;
        *rest += (uint64_t)r;
        if (*rest > GZ_REST_COUNT_MAX) {
            *more = 1;
            return 0;
        }
    }
}

bfn_status bfn_idx_load(bfn_idx *idx, const char *path, bfn_err *err)
{
    if (!idx)
        return bfn_err_set(err, BFN_ERR_ARG, "bfn_idx_load: idx is NULL");
    idx_clear(idx);
    if (!path || !*path)
        return bfn_err_set(err, BFN_ERR_ARG, "bfn_idx_load: empty path");

    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return bfn_err_set(err, BFN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return bfn_err_set(err, BFN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return bfn_err_set(err, BFN_ERR_IO, "%s: not a regular file", path);
    }
    /* gzdopen reads plain files unchanged, so one path serves .gz and raw files */
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return bfn_err_set(err, BFN_ERR_NOMEM, "%s: cannot set up the reader", path);
    }
    gzbuffer(gz, 1u << 17);

    bfn_status s = BFN_OK;
    bfn_idx h;
    idx_clear(&h);
    uint8_t hb[IDX_MAX_HEADER];
    size_t got = 0, hdr = 0;
    /* magic first: it says how long the rest of the header is */
    if (gz_read_full(gz, hb, 4, &got)) {
        s = gz_fail(gz, path, err);
        goto done;
    }
    if (got == 4 && hb[0] == 0 && hb[1] == 0 && (hb[3] == 1 || hb[3] == 3)) {
        size_t more = 0;
        if (gz_read_full(gz, hb + 4, 4 * (size_t)hb[3], &more)) {
            s = gz_fail(gz, path, err);
            goto done;
        }
        got += more;
    }
    s = idx_header(&h, &hdr, path, hb, got, err);
    if (s)
        goto done;

    int plain = gzdirect(gz);
    const char *what = plain ? "file has" : "decompressed data has";
    if (plain && (uint64_t)st.st_size != (uint64_t)hdr + h.size) {
        /* known before reading anything: no need to allocate */
        s = bfn_err_set(err, BFN_ERR_FORMAT, "%s: file has %llu bytes, header says %zu+%zu", path,
                        (unsigned long long)st.st_size, hdr, h.size);
        goto done;
    }

    /* a compressed file's buffer grows as data arrives, so a small file
     * claiming a huge payload cannot make us allocate it up front */
    size_t cap = plain || h.size < ((size_t)1 << 20) ? h.size : ((size_t)1 << 20);
    h.data = malloc(cap);
    if (!h.data) {
        s = bfn_err_set(err, BFN_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, cap);
        goto done;
    }
    size_t have = 0;
    for (;;) {
        size_t n = 0;
        if (gz_read_full(gz, h.data + have, cap - have, &n)) {
            s = gz_fail(gz, path, err);
            goto done;
        }
        have += n;
        if (have < cap || cap == h.size)
            break;
        size_t ncap = cap * 2 < h.size ? cap * 2 : h.size;
        uint8_t *p = realloc(h.data, ncap);
        if (!p) {
            s = bfn_err_set(err, BFN_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, ncap);
            goto done;
        }
        h.data = p;
        cap = ncap;
    }
    if (have < h.size) {
        s = bfn_err_set(err, BFN_ERR_FORMAT, "%s: %s %zu bytes, header says %zu+%zu", path, what,
                        hdr + have, hdr, h.size);
        goto done;
    }
    uint64_t rest = 0;
    int more = 0;
    if (gz_count_rest(gz, &rest, &more)) {
        s = gz_fail(gz, path, err);
        goto done;
    }
    if (rest) {
        s = bfn_err_set(err, BFN_ERR_FORMAT, "%s: %s %s%llu bytes, header says %zu+%zu", path,
                        what, more ? "more than " : "", (unsigned long long)(hdr + h.size + rest),
                        hdr, h.size);
        goto done;
    }

done:
    gzclose(gz);
    if (s) {
        free(h.data);
        return s;
    }
    *idx = h;
    return BFN_OK;
}

/* ------------------------------------------------------------ data sets ---- */

/* path = dir/name, or dir/name.gz when only that exists. */
static bfn_status find_file(char *path, const char *dir, const char *name, bfn_err *err)
{
    int n = snprintf(path, PATH_CAP, "%s/%s", dir, name);
    if (n < 0 || n + 3 >= PATH_CAP)
        return bfn_err_set(err, BFN_ERR_ARG, "%s: directory path too long", dir);
    if (access(path, F_OK) == 0)
        return BFN_OK;
    strcat(path, ".gz");
    if (access(path, F_OK) == 0)
        return BFN_OK;
    return bfn_err_set(err, BFN_ERR_IO,
                       "%s/%s: not found (nor %s.gz); MNIST: run 'bfn data fetch'; "
                       "Fashion-MNIST: install the Debian package dataset-fashion-mnist",
                       dir, name, name);
}

void bfn_dataset_free(bfn_dataset *ds)
{
    if (!ds)
        return;
    free(ds->pixels);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

bfn_status bfn_dataset_load(bfn_dataset *ds, const char *dir, bfn_part part, bfn_err *err)
{
    if (!ds)
        return bfn_err_set(err, BFN_ERR_ARG, "bfn_dataset_load: ds is NULL");
    memset(ds, 0, sizeof *ds);
    if (!dir || !*dir)
        return bfn_err_set(err, BFN_ERR_ARG, "bfn_dataset_load: empty directory");
    if (part != BFN_PART_TRAIN && part != BFN_PART_TEST)
        return bfn_err_set(err, BFN_ERR_ARG, "bfn_dataset_load: unknown part %d", (int)part);
    const char *prefix = part == BFN_PART_TRAIN ? "train" : "t10k";
    char name[64], ipath[PATH_CAP], lpath[PATH_CAP];
    bfn_idx img, lab;
    idx_clear(&img);
    idx_clear(&lab);

    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    bfn_status s = find_file(ipath, dir, name, err);
    if (!s) {
        snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
        s = find_file(lpath, dir, name, err);
    }
    if (!s)
        s = bfn_idx_load(&img, ipath, err);
    if (!s)
        s = bfn_idx_load(&lab, lpath, err);
    if (s)
        goto fail;
    if (img.ndim != 3) {
        s = bfn_err_set(err, BFN_ERR_FORMAT, "%s: %d dimensions, images need 3 (n, h, w)", ipath,
                        img.ndim);
        goto fail;
    }
    if (lab.ndim != 1) {
        s = bfn_err_set(err, BFN_ERR_FORMAT, "%s: %d dimensions, labels need 1 (n)", lpath,
                        lab.ndim);
        goto fail;
    }
    if (img.dims[0] != lab.dims[0]) {
        s = bfn_err_set(err, BFN_ERR_MISMATCH, "%s has %u images but %s has %u labels", ipath,
                        img.dims[0], lpath, lab.dims[0]);
        goto fail;
    }
    if (img.dims[0] > INT_MAX) {
        s = bfn_err_set(err, BFN_ERR_FORMAT, "%s: %u images is too many", ipath, img.dims[0]);
        goto fail;
    }
    for (size_t j = 0; j < lab.size; j++) {
        if (lab.data[j] >= BFN_NUM_CLASSES) {
            s = bfn_err_set(err, BFN_ERR_FORMAT, "%s: label %zu is %u, expected 0..%d", lpath, j,
                            lab.data[j], BFN_NUM_CLASSES - 1);
            goto fail;
        }
    }
    ds->n = (int)img.dims[0];
    ds->h = (int)img.dims[1];
    ds->w = (int)img.dims[2];
    ds->pixels = img.data;
    ds->labels = lab.data;
    return BFN_OK;

fail:
    bfn_idx_free(&img);
    bfn_idx_free(&lab);
    return s;
}

/* ---------------------------------------------------------------- split ---- */

int bfn_split_val_count(int n)
{
    if (n < 2)
        return 0;
    return n / 100 > 1 ? n / 100 : 1;
}

bfn_status bfn_split_make(int n, int *train, int *val, bfn_err *err)
{
    int n_val = bfn_split_val_count(n);
    if (n_val == 0)
        return bfn_err_set(err, BFN_ERR_ARG, "split: need at least 2 images, got %d", n);
    if (!train || !val)
        return bfn_err_set(err, BFN_ERR_ARG, "split: NULL output");
    int *perm = malloc((size_t)n * sizeof *perm);
    if (!perm)
        return bfn_err_set(err, BFN_ERR_NOMEM, "split: cannot allocate %d indices", n);
    for (int i = 0; i < n; i++)
        perm[i] = i;
    bfn_rng rng;
    bfn_rng_init(&rng, BFN_SPLIT_SEED, 0);
    for (int i = n - 1; i > 0; i--) {
        int j = (int)bfn_rng_below(&rng, (uint64_t)i + 1);
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    uint8_t *is_val = calloc((size_t)n, 1);
    if (!is_val) {
        free(perm);
        return bfn_err_set(err, BFN_ERR_NOMEM, "split: cannot allocate %d flags", n);
    }
    for (int i = 0; i < n_val; i++)
        is_val[perm[i]] = 1;
    int a = 0, b = 0;
    for (int i = 0; i < n; i++) {
        if (is_val[i])
            val[b++] = i;
        else
            train[a++] = i;
    }
    free(is_val);
    free(perm);
    return BFN_OK;
}

/* --------------------------------------------------------- binarization ---- */

void bfn_binarize(uint8_t *x, const uint8_t *v, size_t n, bfn_rng *rng)
{
    for (size_t j = 0; j < n; j++)
        x[j] = bfn_rng_uniform(rng) < (double)v[j] / 255.0;
}

/* ------------------------------------------------------------ two-digit ---- */

bfn_status bfn_twodigit_init(bfn_twodigit *td, const bfn_dataset *src, const int *idx, int n_idx,
                             uint64_t seed, uint64_t stream, bfn_err *err)
{
    if (!td)
        return bfn_err_set(err, BFN_ERR_ARG, "twodigit: td is NULL");
    memset(td, 0, sizeof *td);
    if (!src || !src->pixels || !src->labels || src->n <= 0)
        return bfn_err_set(err, BFN_ERR_ARG, "twodigit: empty source data set");
    if (src->w < 1 || src->w > BFN_TWODIGIT_SIZE / 2 - 1 || src->h < 1 ||
        src->h > BFN_TWODIGIT_SIZE - 1)
        return bfn_err_set(err, BFN_ERR_ARG,
                           "twodigit: source images are %d×%d, need at most %d wide and %d high",
                           src->h, src->w, BFN_TWODIGIT_SIZE / 2 - 1, BFN_TWODIGIT_SIZE - 1);
    int n = idx ? n_idx : src->n;
    if (n <= 0)
        return bfn_err_set(err, BFN_ERR_ARG, "twodigit: empty source pool");
    int count[BFN_NUM_CLASSES] = {0};
    for (int j = 0; j < n; j++) {
        int k = idx ? idx[j] : j;
        if (k < 0 || k >= src->n)
            return bfn_err_set(err, BFN_ERR_ARG, "twodigit: pool index %d outside 0..%d", k,
                               src->n - 1);
        if (src->labels[k] >= BFN_NUM_CLASSES)
            return bfn_err_set(err, BFN_ERR_ARG, "twodigit: image %d has label %u", k,
                               src->labels[k]);
        count[src->labels[k]]++;
    }
    td->start[0] = 0;
    for (int c = 0; c < BFN_NUM_CLASSES; c++) {
        if (!count[c])
            return bfn_err_set(err, BFN_ERR_ARG, "twodigit: no source image of class %d", c);
        td->start[c + 1] = td->start[c] + count[c];
    }
    td->pool = malloc((size_t)n * sizeof *td->pool);
    if (!td->pool)
        return bfn_err_set(err, BFN_ERR_NOMEM, "twodigit: cannot allocate a pool of %d", n);
    int fill[BFN_NUM_CLASSES];
    memcpy(fill, td->start, sizeof fill);
    for (int j = 0; j < n; j++) {
        int k = idx ? idx[j] : j;
        td->pool[fill[src->labels[k]]++] = k;
    }
    td->src = src;
    bfn_rng_init(&td->base, seed, stream);
    return BFN_OK;
}

void bfn_twodigit_free(bfn_twodigit *td)
{
    if (!td)
        return;
    free(td->pool);
    memset(td, 0, sizeof *td);
}

void bfn_twodigit_render(const bfn_twodigit *td, uint64_t i, uint8_t *canvas,
                         bfn_twodigit_info *info)
{
    const int S = BFN_TWODIGIT_SIZE, h = td->src->h, w = td->src->w;
    bfn_rng r = bfn_rng_fork(&td->base, i);
    int label = (int)bfn_rng_below(&r, 100);
    int digit[2] = {label / 10, label % 10};
    memset(canvas, 0, (size_t)S * S);
    if (info)
        info->label = label;
    for (int half = 0; half < 2; half++) {
        int c = digit[half];
        int k = td->pool[td->start[c] +
                         (int)bfn_rng_below(&r, (uint64_t)(td->start[c + 1] - td->start[c]))];
        int x0 = S / 2 * half + (int)bfn_rng_below(&r, (uint64_t)(S / 2 - w));
        int y0 = (int)bfn_rng_below(&r, (uint64_t)(S - h));
        const uint8_t *d = td->src->pixels + (size_t)k * h * w;
        /* the halves never overlap; max keeps it well defined if they ever did */
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint8_t *p = canvas + (size_t)(y0 + y) * S + x0 + x;
                uint8_t v = d[y * w + x];
                if (v > *p)
                    *p = v;
            }
        if (info) {
            info->src[half] = k;
            info->x[half] = x0;
            info->y[half] = y0;
        }
    }
}

/* --------------------------------------------------------------- source ---- */

#define TWODIGIT_TRAIN_COUNT 60000
#define TWODIGIT_VAL_COUNT 600
#define TWODIGIT_TEST_COUNT 10000

struct bfn_source {
    bfn_data_kind kind;
    bfn_split split;
    bfn_dataset ds;   /* the MNIST-style images the split draws on */
    int *map;         /* (count) item → image of ds; NULL when the identity */
    int *pool;        /* twodigit: the ds images it may use, else NULL */
    int n_pool;
    bfn_twodigit td;  /* twodigit only */
    int64_t count;
    int h, w;
};

static const char *const kind_names[] = {"mnist", "fashion", "twodigit"};
static const char *const split_names[] = {"train", "val", "test"};

const char *bfn_data_kind_name(bfn_data_kind kind)
{
    return (unsigned)kind < 3 ? kind_names[kind] : "unknown";
}

const char *bfn_split_name(bfn_split split)
{
    return (unsigned)split < 3 ? split_names[split] : "unknown";
}

bfn_status bfn_data_kind_parse(const char *name, bfn_data_kind *kind, bfn_err *err)
{
    for (int k = 0; k < 3; k++)
        if (name && strcmp(name, kind_names[k]) == 0) {
            *kind = (bfn_data_kind)k;
            return BFN_OK;
        }
    return bfn_err_set(err, BFN_ERR_ARG, "unknown data set '%s' (mnist, fashion, twodigit)",
                       name ? name : "");
}

bfn_status bfn_split_parse(const char *name, bfn_split *split, bfn_err *err)
{
    for (int k = 0; k < 3; k++)
        if (name && strcmp(name, split_names[k]) == 0) {
            *split = (bfn_split)k;
            return BFN_OK;
        }
    return bfn_err_set(err, BFN_ERR_ARG, "unknown split '%s' (train, val, test)",
                       name ? name : "");
}

const char *bfn_data_default_dir(bfn_data_kind kind)
{
    return kind == BFN_DATA_FASHION ? "/usr/share/datasets/fashion-mnist" : "data/mnist";
}

#ifndef BFN_SOURCE_DIR
#define BFN_SOURCE_DIR "."
#endif

static int path_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0;
}

/* prefix/rel into out when it fits and exists */
static int try_under(const char *prefix, const char *rel, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", prefix, rel);
    return n > 0 && (size_t)n < cap && path_exists(out);
}

int bfn_locate(const char *rel, char *out, size_t cap)
{
    if (rel[0] != '/' && !path_exists(rel)) {
        char exe[4096];
        ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
        /* the directory above the executable's: /src/build/bfn -> /src */
        char *slash = len > 0 ? (exe[len] = '\0', strrchr(exe, '/')) : NULL;
        if (slash) {
            *slash = '\0';
            slash = strrchr(exe, '/');
        }
        if (slash && slash > exe && (*slash = '\0', try_under(exe, rel, out, cap)))
            return 1;
        if (try_under(BFN_SOURCE_DIR, rel, out, cap))
            return 1;
    }
    int n = snprintf(out, cap, "%s", rel);
    return n >= 0 && (size_t)n < cap && path_exists(rel);
}

void bfn_source_destroy(bfn_source *src)
{
    if (!src)
        return;
    bfn_twodigit_free(&src->td);
    free(src->pool);
    free(src->map);
    bfn_dataset_free(&src->ds);
    free(src);
}

/* The ds images of a train or val split (n_out of them, ascending, malloc'd). */
static bfn_status split_images(const bfn_dataset *ds, bfn_split split, int **out, int *n_out,
                               bfn_err *err)
{
    int n_val = bfn_split_val_count(ds->n);
    int *train = malloc((size_t)(ds->n > 1 ? ds->n : 1) * sizeof *train);
    int *val = malloc((size_t)(n_val > 0 ? n_val : 1) * sizeof *val);
    bfn_status s = !train || !val ? bfn_err_set(err, BFN_ERR_NOMEM, "split: out of memory")
                                  : bfn_split_make(ds->n, train, val, err);
    if (s) {
        free(train);
        free(val);
        return s;
    }
    if (split == BFN_SPLIT_VAL) {
        free(train);
        *out = val;
        *n_out = n_val;
    } else {
        free(val);
        *out = train;
        *n_out = ds->n - n_val;
    }
    return BFN_OK;
}

bfn_status bfn_source_create(bfn_source **out, bfn_data_kind kind, const char *dir,
                             bfn_split split, uint64_t seed, bfn_err *err)
{
    if (!out)
        return bfn_err_set(err, BFN_ERR_ARG, "source: out is NULL");
    *out = NULL;
    if ((unsigned)kind > BFN_DATA_TWODIGIT)
        return bfn_err_set(err, BFN_ERR_ARG, "source: unknown data kind %d", (int)kind);
    if ((unsigned)split > BFN_SPLIT_TEST)
        return bfn_err_set(err, BFN_ERR_ARG, "source: unknown split %d", (int)split);
    if (!dir || !*dir)
        dir = bfn_data_default_dir(kind);
    bfn_source *src = calloc(1, sizeof *src);
    if (!src)
        return bfn_err_set(err, BFN_ERR_NOMEM, "source: out of memory");
    src->kind = kind;
    src->split = split;
    bfn_part part = split == BFN_SPLIT_TEST ? BFN_PART_TEST : BFN_PART_TRAIN;
    bfn_status s = bfn_dataset_load(&src->ds, dir, part, err);
    if (s)
        goto fail;

    int *images = NULL, n_images = src->ds.n;
    if (split != BFN_SPLIT_TEST) {
        s = split_images(&src->ds, split, &images, &n_images, err);
        if (s)
            goto fail;
    }
    if (kind == BFN_DATA_TWODIGIT) {
        src->pool = images;
        src->n_pool = n_images;
        s = bfn_twodigit_init(&src->td, &src->ds, images, n_images, seed, (uint64_t)split, err);
        if (s)
            goto fail;
        src->count = split == BFN_SPLIT_TRAIN ? TWODIGIT_TRAIN_COUNT
                     : split == BFN_SPLIT_VAL ? TWODIGIT_VAL_COUNT
                                              : TWODIGIT_TEST_COUNT;
        src->h = src->w = BFN_TWODIGIT_SIZE;
    } else {
        src->map = images;
        src->count = n_images;
        src->h = src->ds.h;
        src->w = src->ds.w;
    }
    *out = src;
    return BFN_OK;

fail:
    bfn_source_destroy(src);
    return s;
}

int64_t bfn_source_count(const bfn_source *src)
{
    return src ? src->count : 0;
}

int bfn_source_height(const bfn_source *src)
{
    return src ? src->h : 0;
}

int bfn_source_width(const bfn_source *src)
{
    return src ? src->w : 0;
}

bfn_data_kind bfn_source_kind(const bfn_source *src)
{
    return src ? src->kind : BFN_DATA_MNIST;
}

/* v: (h, w) intensities of item i, which the caller has range-checked. */
static void source_fill(const bfn_source *src, int64_t i, uint8_t *v, int *label)
{
    if (src->kind == BFN_DATA_TWODIGIT) {
        bfn_twodigit_info info;
        bfn_twodigit_render(&src->td, (uint64_t)i, v, &info);
        if (label)
            *label = info.label;
        return;
    }
    int k = src->map ? src->map[i] : (int)i;
    size_t d = (size_t)src->h * src->w;
    memcpy(v, src->ds.pixels + (size_t)k * d, d);
    if (label)
        *label = src->ds.labels[k];
}

bfn_status bfn_source_item(const bfn_source *src, int64_t i, uint8_t *v, int *label,
                           bfn_err *err)
{
    if (!src || !v)
        return bfn_err_set(err, BFN_ERR_ARG, "source: NULL argument");
    if (i < 0 || i >= src->count)
        return bfn_err_set(err, BFN_ERR_ARG, "source: item %lld outside 0..%lld", (long long)i,
                           (long long)src->count - 1);
    source_fill(src, i, v, label);
    return BFN_OK;
}

/* Row b of a batch: item i binarized with its own fork of r. */
static void source_row(const bfn_source *src, int64_t i, const bfn_rng *r, int b, uint8_t *x)
{
    uint8_t v[BFN_TWODIGIT_SIZE * BFN_TWODIGIT_SIZE];
    size_t d = (size_t)src->h * src->w;
    const uint8_t *pix = v;
    if (src->kind == BFN_DATA_TWODIGIT)
        source_fill(src, i, v, NULL);
    else
        pix = src->ds.pixels + (size_t)(src->map ? src->map[i] : (int)i) * d;
    bfn_rng rb = bfn_rng_fork(r, (uint64_t)b);
    bfn_binarize(x, pix, d, &rb);
}

bfn_status bfn_source_batch(const bfn_source *src, const int64_t *idx, int B, uint8_t *x,
                            bfn_rng *rng, bfn_err *err)
{
    if (!src || !idx || !x || !rng || B < 0)
        return bfn_err_set(err, BFN_ERR_ARG, "source batch: bad argument");
    for (int b = 0; b < B; b++)
        if (idx[b] < 0 || idx[b] >= src->count)
            return bfn_err_set(err, BFN_ERR_ARG, "source batch: item %lld outside 0..%lld",
                               (long long)idx[b], (long long)src->count - 1);
    bfn_rng r = bfn_rng_fork(rng, bfn_rng_u64(rng));
    size_t d = (size_t)src->h * src->w;
    for (int b = 0; b < B; b++)
        source_row(src, idx[b], &r, b, x + (size_t)b * d);
    return BFN_OK;
}

void bfn_source_draw(const bfn_source *src, int64_t *idx, int B, bfn_rng *rng)
{
    for (int b = 0; b < B; b++)
        idx[b] = (int64_t)bfn_rng_below(rng, (uint64_t)src->count);
}

bfn_status bfn_source_train_batch(void *user, int B, uint8_t *x, bfn_rng *rng, bfn_err *err)
{
    const bfn_source *src = user;
    if (!src || !x || !rng || B < 0)
        return bfn_err_set(err, BFN_ERR_ARG, "source batch: bad argument");
    /* replay the index draws instead of storing them: no allocation per step */
    bfn_rng draws = *rng;
    for (int b = 0; b < B; b++)
        bfn_rng_below(rng, (uint64_t)src->count);
    bfn_rng r = bfn_rng_fork(rng, bfn_rng_u64(rng));
    size_t d = (size_t)src->h * src->w;
    for (int b = 0; b < B; b++) {
        int64_t i = (int64_t)bfn_rng_below(&draws, (uint64_t)src->count);
        source_row(src, i, &r, b, x + (size_t)b * d);
    }
    return BFN_OK;
}
