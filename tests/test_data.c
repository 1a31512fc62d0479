/* Tests for data.h: IDX reader (valid and malformed files written to a temp
 * dir), dynamic binarization, the fixed split, two-digit MNIST on a synthetic
 * in-memory data set, the batch source on synthetic files, and real MNIST /
 * Fashion-MNIST when their files are present. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "bfn/data.h"
#include "check.h"

static char tmpdir[256];

static void tmp_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void write_bytes(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "create %.120s", path);
    if (!f)
        return;
    if (len)
        CHECK(fwrite(buf, 1, len, f) == len, "write %.120s", path);
    fclose(f);
}

static void write_gz(const char *path, const uint8_t *buf, size_t len)
{
    gzFile gz = gzopen(path, "wb");
    CHECK(gz != NULL, "create %.120s", path);
    if (!gz)
        return;
    CHECK(gzwrite(gz, buf, (unsigned)len) == (int)len, "gzwrite %.120s", path);
    gzclose(gz);
}

/* An IDX image in buf (cap bytes): header for type/ndim/dims, then payload
 * elements filled with (j * 7 + 3) & 255. Returns the byte count. */
static size_t make_idx(uint8_t *buf, size_t cap, int type, int ndim, const uint32_t *dims,
                       size_t payload)
{
    size_t n = 4 + 4 * (size_t)ndim + payload;
    if (n > cap)
        return 0;
    buf[0] = 0;
    buf[1] = 0;
    buf[2] = (uint8_t)type;
    buf[3] = (uint8_t)ndim;
    for (int d = 0; d < ndim; d++) {
        buf[4 + 4 * d] = (uint8_t)(dims[d] >> 24);
        buf[5 + 4 * d] = (uint8_t)(dims[d] >> 16);
        buf[6 + 4 * d] = (uint8_t)(dims[d] >> 8);
        buf[7 + 4 * d] = (uint8_t)dims[d];
    }
    for (size_t j = 0; j < payload; j++)
        buf[4 + 4 * (size_t)ndim + j] = (uint8_t)((j * 7 + 3) & 255);
    return n;
}

/* ------------------------------------------------------------------ IDX ---- */

static void check_payload(const bfn_idx *idx, size_t n, const char *what)
{
    int bad = 0;
    for (size_t j = 0; j < n && idx->data; j++)
        bad += idx->data[j] != (uint8_t)((j * 7 + 3) & 255);
    CHECK(idx->data != NULL && bad == 0, "%.120s: payload values (%d wrong)", what, bad);
}

static void test_idx_valid_1d_and_3d_files_load_with_right_values(void)
{
    uint8_t buf[256];
    char path[512];
    bfn_err err = {0};
    bfn_idx idx;

    uint32_t d1[1] = {5};
    size_t n = make_idx(buf, sizeof buf, 0x08, 1, d1, 5);
    tmp_path(path, sizeof path, "ok1");
    write_bytes(path, buf, n);
    bfn_status s = bfn_idx_load(&idx, path, &err);
    CHECK(s == BFN_OK, "1-D load: %.120s", s ? err.msg : "ok");
    CHECK_NEAR(1, idx.ndim, 0, "1-D ndim");
    CHECK_NEAR(5, idx.dims[0], 0, "1-D dims[0]");
    CHECK_NEAR(5, idx.size, 0, "1-D size");
    check_payload(&idx, 5, "1-D");
    bfn_idx_free(&idx);

    uint32_t d3[3] = {2, 3, 4};
    n = make_idx(buf, sizeof buf, 0x08, 3, d3, 24);
    tmp_path(path, sizeof path, "ok3");
    write_bytes(path, buf, n);
    s = bfn_idx_load(&idx, path, &err);
    CHECK(s == BFN_OK, "3-D load: %.120s", s ? err.msg : "ok");
    CHECK_NEAR(3, idx.ndim, 0, "3-D ndim");
    CHECK(idx.dims[0] == 2 && idx.dims[1] == 3 && idx.dims[2] == 4, "3-D dims %u %u %u",
          idx.dims[0], idx.dims[1], idx.dims[2]);
    CHECK_NEAR(24, idx.size, 0, "3-D size");
    check_payload(&idx, 24, "3-D");
    bfn_idx_free(&idx);

    /* same bytes gzipped, and from memory */
    tmp_path(path, sizeof path, "ok3.gz");
    write_gz(path, buf, n);
    s = bfn_idx_load(&idx, path, &err);
    CHECK(s == BFN_OK, "3-D .gz load: %.120s", s ? err.msg : "ok");
    CHECK_NEAR(24, idx.size, 0, "3-D .gz size");
    check_payload(&idx, 24, "3-D .gz");
    bfn_idx_free(&idx);

    s = bfn_idx_parse(&idx, "mem", buf, n, &err);
    CHECK(s == BFN_OK, "3-D parse: %.120s", s ? err.msg : "ok");
    check_payload(&idx, 24, "3-D parse");
    bfn_idx_free(&idx);
}

typedef struct {
    const char *name;
    int type, ndim;
    uint32_t dims[3];
    long payload_delta;   /* bytes added to (or removed from) the exact payload */
    long cut;             /* > 0: keep only this many bytes of the whole file */
    bfn_status want;
    const char *want_text; /* must appear in the message besides the name */
} bad_case;

static void test_idx_malformed_files_fail_with_code_and_file_name(void)
{
    static const bad_case cases[] = {
        {"truncated", 0x08, 3, {2, 3, 4}, -1, 0, BFN_ERR_FORMAT, "file has 39 bytes, header says 16+24"},
        {"extended", 0x08, 3, {2, 3, 4}, +1, 0, BFN_ERR_FORMAT, "file has 41 bytes, header says 16+24"},
        {"extended1d", 0x08, 1, {5}, +100, 0, BFN_ERR_FORMAT, "header says 8+5"},
        {"badmagic", 0x08, 3, {2, 3, 4}, 0, 0, BFN_ERR_FORMAT, "magic"},
        {"badtype", 0x0D, 3, {2, 3, 4}, 0, 0, BFN_ERR_FORMAT, "0x0d"},
        {"twodims", 0x08, 2, {2, 3, 0}, 0, 0, BFN_ERR_FORMAT, "2 dimensions"},
        {"zerodims", 0x08, 0, {0, 0, 0}, 0, 0, BFN_ERR_FORMAT, "0 dimensions"},
        {"zerodim", 0x08, 3, {2, 0, 4}, 0, 0, BFN_ERR_FORMAT, "dimension 1 is 0"},
        {"hugedim", 0x08, 1, {0xFFFFFFFFu, 0, 0}, 0, 0, BFN_ERR_FORMAT, "above the limit"},
        {"overflow", 0x08, 3, {1u << 24, 1u << 24, 1u << 24}, 0, 0, BFN_ERR_FORMAT, "more than"},
        {"cutheader", 0x08, 3, {2, 3, 4}, 0, 10, BFN_ERR_FORMAT, "too short"},
        {"threebytes", 0x08, 3, {2, 3, 4}, 0, 3, BFN_ERR_FORMAT, "too short"},
    };
    static uint8_t buf[4096];
    char path[512];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const bad_case *k = &cases[c];
        uint64_t elems = 1;
        for (int d = 0; d < k->ndim && d < 3; d++)
            elems *= k->dims[d];
        /* cases whose header is bad get a small payload; the reader must stop
         * at the header either way */
        size_t payload = elems <= 1000 ? (size_t)elems : 16;
        if (k->ndim == 0)
            payload = 0;
        payload = (size_t)((long)payload + k->payload_delta);
        size_t n = make_idx(buf, sizeof buf, k->type, k->ndim, k->dims, payload);
        if (strcmp(k->name, "badmagic") == 0)
            buf[0] = 0x01;
        if (k->cut > 0)
            n = (size_t)k->cut;
        tmp_path(path, sizeof path, k->name);
        write_bytes(path, buf, n);

        bfn_err err = {0};
        bfn_err_clear(&err);
        bfn_idx idx;
        bfn_status s = bfn_idx_load(&idx, path, &err);
        CHECK_NEAR(k->want, s, 0, "%.120s: status", k->name);
        CHECK(strstr(err.msg, path) != NULL, "%.16s: message names the file: '%.160s'", k->name,
              err.msg);
        CHECK(strstr(err.msg, k->want_text) != NULL, "%.16s: message '%.160s' says '%.40s'",
              k->name, err.msg, k->want_text);
        CHECK(idx.data == NULL && idx.size == 0, "%.120s: idx left empty", k->name);
        bfn_idx_free(&idx);

        /* the in-memory parser agrees */
        bfn_err_clear(&err);
        s = bfn_idx_parse(&idx, k->name, buf, n, &err);
        CHECK_NEAR(k->want, s, 0, "%.120s: parse status", k->name);
        CHECK(strstr(err.msg, k->want_text) != NULL, "%.16s: parse message '%.160s'", k->name,
              err.msg);
        bfn_idx_free(&idx);

        /* and so does the gzipped file (the decompressed data is checked) */
        char gzpath[600];
        snprintf(gzpath, sizeof gzpath, "%s.gz", path);
        write_gz(gzpath, buf, n);
        bfn_err_clear(&err);
        s = bfn_idx_load(&idx, gzpath, &err);
        CHECK_NEAR(k->want, s, 0, "%.120s.gz: status (%.120s)", k->name, err.msg);
        CHECK(strstr(err.msg, gzpath) != NULL, "%.120s.gz: message names the file", k->name);
        bfn_idx_free(&idx);
    }
}

static void test_idx_empty_missing_and_odd_files_fail_cleanly(void)
{
    char path[512];
    bfn_err err = {0};
    bfn_idx idx;

    tmp_path(path, sizeof path, "empty");
    write_bytes(path, NULL, 0);
    bfn_status s = bfn_idx_load(&idx, path, &err);
    CHECK_NEAR(BFN_ERR_FORMAT, s, 0, "empty file: status");
    CHECK(strstr(err.msg, path) && strstr(err.msg, "empty"), "empty file message '%.120s'", err.msg);

    tmp_path(path, sizeof path, "does-not-exist");
    s = bfn_idx_load(&idx, path, &err);
    CHECK_NEAR(BFN_ERR_IO, s, 0, "missing file: status");
    CHECK(strstr(err.msg, path) != NULL, "missing file message '%.120s'", err.msg);

    tmp_path(path, sizeof path, "adir");
    mkdir(path, 0700);
    s = bfn_idx_load(&idx, path, &err);
    CHECK_NEAR(BFN_ERR_IO, s, 0, "directory: status");
    CHECK(strstr(err.msg, path) != NULL, "directory message '%.120s'", err.msg);
    rmdir(path);

    /* gzip magic followed by garbage */
    uint8_t junk[64] = {0x1f, 0x8b, 0x08, 0x00};
    for (int j = 4; j < 64; j++)
        junk[j] = (uint8_t)(j * 37);
    tmp_path(path, sizeof path, "corrupt.gz");
    write_bytes(path, junk, sizeof junk);
    s = bfn_idx_load(&idx, path, &err);
    CHECK(s == BFN_ERR_FORMAT || s == BFN_ERR_IO, "corrupt gzip: status %d (%.120s)", s, err.msg);
    CHECK(strstr(err.msg, path) != NULL, "corrupt gzip message '%.120s'", err.msg);

    /* a valid gzip stream cut in half */
    uint8_t buf[2048];
    uint32_t d3[3] = {2, 20, 20};
    size_t n = make_idx(buf, sizeof buf, 0x08, 3, d3, 800);
    tmp_path(path, sizeof path, "cut.gz");
    write_gz(path, buf, n);
    FILE *f = fopen(path, "rb");
    uint8_t gzb[4096];
    size_t gzn = f ? fread(gzb, 1, sizeof gzb, f) : 0;
    if (f)
        fclose(f);
    write_bytes(path, gzb, gzn / 2);
    s = bfn_idx_load(&idx, path, &err);
    CHECK(s == BFN_ERR_FORMAT, "gzip cut in half: status %d (%.120s)", s, err.msg);
    CHECK(idx.data == NULL, "gzip cut in half: idx left empty");

    /* a valid file followed by 64 MiB of zeros, gzipped to about 64 KiB: refused
     * after counting only the first MiB of the tail */
    tmp_path(path, sizeof path, "tail.gz");
    gzFile gz = gzopen(path, "wb");
    CHECK(gz != NULL, "create %.120s", path);
    if (gz) {
        static uint8_t zeros[1 << 16];
        int wrote = gzwrite(gz, buf, (unsigned)n) == (int)n;
        for (int j = 0; j < 1024; j++)
            wrote &= gzwrite(gz, zeros, sizeof zeros) == (int)sizeof zeros;
        gzclose(gz);
        CHECK(wrote, "gzwrite %.120s", path);
    }
    s = bfn_idx_load(&idx, path, &err);
    CHECK_NEAR(BFN_ERR_FORMAT, s, 0, "valid file with a 64 MiB tail: status (%.120s)", err.msg);
    CHECK(strstr(err.msg, "has more than ") != NULL && strstr(err.msg, "header says 16+800"),
          "64 MiB tail message '%.160s' says 'has more than' (a lower bound) and the header's size",
          err.msg);

    CHECK_NEAR(BFN_ERR_ARG, bfn_idx_load(&idx, NULL, &err), 0, "NULL path");
    CHECK_NEAR(BFN_ERR_ARG, bfn_idx_load(NULL, path, NULL), 0, "NULL idx, NULL err");
}

/* Random byte changes to a valid file: every outcome is OK or FORMAT, never a
 * crash (the sanitizer build checks memory safety). */
static void test_idx_random_corruptions_never_crash(void)
{
    uint8_t good[512], buf[512];
    uint32_t d3[3] = {3, 7, 9};
    size_t n = make_idx(good, sizeof good, 0x08, 3, d3, 189);
    bfn_rng rng;
    bfn_rng_init(&rng, 42, 1);
    int ok = 0, fmt = 0, other = 0;
    char path[512];
    tmp_path(path, sizeof path, "fuzz");
    for (int t = 0; t < 2000; t++) {
        memcpy(buf, good, n);
        size_t len = n;
        int kind = (int)bfn_rng_below(&rng, 3);
        if (kind == 0)
            len = (size_t)bfn_rng_below(&rng, n + 1);
        int flips = 1 + (int)bfn_rng_below(&rng, 4);
        for (int k = 0; k < flips; k++)
            buf[bfn_rng_below(&rng, 20)] = (uint8_t)bfn_rng_u64(&rng);
        bfn_idx idx;
        bfn_err err = {0};
        bfn_status s = bfn_idx_parse(&idx, "fuzz", buf, len, &err);
        if (s == BFN_OK) {
            ok++;
            if (idx.size + 4 + 4 * (size_t)idx.ndim != len)
                other++;
        } else if (s == BFN_ERR_FORMAT) {
            fmt++;
        } else {
            other++;
        }
        bfn_idx_free(&idx);
        if (t % 50 == 0) { /* a few through the file reader too */
            write_bytes(path, buf, len);
            s = bfn_idx_load(&idx, path, &err);
            if (s != BFN_OK && s != BFN_ERR_FORMAT)
                other++;
            bfn_idx_free(&idx);
        }
    }
    CHECK_NEAR(0, other, 0, "outcomes other than ok/format (ok %d, format %d)", ok, fmt);
    CHECK(fmt > 1000, "most corruptions are rejected (%d of 2000)", fmt);
}

/* --------------------------------------------------------- binarization ---- */

static void test_binarize_zero_never_on_and_255_always_on(void)
{
    enum { N = 100000 };
    static uint8_t v[N], x[N];
    bfn_rng rng;
    bfn_rng_init(&rng, 7, 0);
    memset(v, 0, N);
    bfn_binarize(x, v, N, &rng);
    int on = 0;
    for (int j = 0; j < N; j++)
        on += x[j];
    CHECK_NEAR(0, on, 0, "pixels on for intensity 0");
    memset(v, 255, N);
    bfn_binarize(x, v, N, &rng);
    on = 0;
    for (int j = 0; j < N; j++)
        on += x[j] == 1;
    CHECK_NEAR(N, on, 0, "pixels on for intensity 255");
}

static void test_binarize_frequency_matches_intensity_within_5_se(void)
{
    enum { N = 200000 };
    static uint8_t v[N], x[N];
    const int levels[] = {1, 64, 100, 128, 200, 254};
    bfn_rng rng;
    bfn_rng_init(&rng, 11, 0);
    for (size_t l = 0; l < sizeof levels / sizeof levels[0]; l++) {
        memset(v, levels[l], N);
        bfn_binarize(x, v, N, &rng);
        long on = 0;
        for (int j = 0; j < N; j++)
            on += x[j];
        double p = levels[l] / 255.0, se = sqrt(p * (1 - p) / N);
        CHECK_NEAR(p, (double)on / N, 5 * se, "on-frequency for intensity %d", levels[l]);
    }
}

static void test_binarize_is_deterministic_for_same_rng_and_differs_between_forks(void)
{
    enum { N = 4096 };
    static uint8_t v[N], a[N], b[N], c[N];
    for (int j = 0; j < N; j++)
        v[j] = (uint8_t)(j % 256);
    bfn_rng root;
    bfn_rng_init(&root, 123, 9);
    bfn_rng r1 = bfn_rng_fork(&root, 5), r2 = bfn_rng_fork(&root, 5), r3 = bfn_rng_fork(&root, 6);
    bfn_binarize(a, v, N, &r1);
    bfn_binarize(b, v, N, &r2);
    bfn_binarize(c, v, N, &r3);
    CHECK(memcmp(a, b, N) == 0, "same rng state gives the same binarization");
    int diff = 0;
    for (int j = 0; j < N; j++)
        diff += a[j] != c[j];
    /* pixels with 0 < p < 1 differ with probability 2p(1-p), on average ~1/3 */
    CHECK(diff > N / 5, "different forks give different binarizations (%d of %d pixels differ)",
          diff, N);
    /* fresh each use: the same rng, used again, draws anew */
    bfn_binarize(b, v, N, &r1);
    CHECK(memcmp(a, b, N) != 0, "a second use of the same stream draws fresh pixels");
}

/* ---------------------------------------------------------------- split ---- */

static void test_split_is_59400_600_disjoint_complete_and_fixed(void)
{
    enum { N = 60000 };
    static int train[N], val[N], train2[N], val2[N];
    static uint8_t seen[N];
    CHECK_NEAR(600, bfn_split_val_count(N), 0, "validation count for 60,000");
    bfn_err err = {0};
    CHECK(bfn_split_make(N, train, val, &err) == BFN_OK, "split: %.120s", err.msg);
    CHECK(bfn_split_make(N, train2, val2, &err) == BFN_OK, "split again");
    memset(seen, 0, N);
    int dup = 0, unsorted = 0;
    for (int i = 0; i < N - 600; i++) {
        dup += seen[train[i]]++ != 0;
        unsorted += i > 0 && train[i] <= train[i - 1];
    }
    for (int i = 0; i < 600; i++) {
        dup += seen[val[i]]++ != 0;
        unsorted += i > 0 && val[i] <= val[i - 1];
    }
    int missing = 0;
    for (int i = 0; i < N; i++)
        missing += !seen[i];
    CHECK_NEAR(0, dup, 0, "images in both parts or twice");
    CHECK_NEAR(0, missing, 0, "images in neither part");
    CHECK_NEAR(0, unsorted, 0, "lists not ascending");
    CHECK(memcmp(train, train2, sizeof train) == 0 && memcmp(val, val2, sizeof val) == 0,
          "the split is the same every time");
    /* spread over the whole set, not a block at one end */
    CHECK(val[0] < 1000 && val[599] > 59000, "validation spans the set (%d..%d)", val[0],
          val[599]);
    CHECK_NEAR(BFN_ERR_ARG, bfn_split_make(1, train, val, &err), 0, "n = 1 is rejected");
}

/* ------------------------------------------------------------ two-digit ---- */

/* n images of 28×28, label j % 10, every pixel non-zero and unique per image. */
static void synth_dataset(bfn_dataset *ds, int n)
{
    ds->n = n;
    ds->h = 28;
    ds->w = 28;
    ds->pixels = malloc((size_t)n * 784);
    ds->labels = malloc((size_t)n);
    for (int j = 0; j < n; j++) {
        ds->labels[j] = (uint8_t)(j % 10);
        for (int p = 0; p < 784; p++)
            ds->pixels[(size_t)j * 784 + p] = (uint8_t)(1 + (j * 131 + p * 17) % 255);
    }
}

static void test_twodigit_render_is_pure_function_of_seed_and_index(void)
{
    bfn_dataset ds;
    synth_dataset(&ds, 60);
    bfn_twodigit a, b, c;
    bfn_err err = {0};
    CHECK(bfn_twodigit_init(&a, &ds, NULL, 0, 99, 0, &err) == BFN_OK, "init: %.120s", err.msg);
    CHECK(bfn_twodigit_init(&b, &ds, NULL, 0, 99, 0, &err) == BFN_OK, "init b");
    CHECK(bfn_twodigit_init(&c, &ds, NULL, 0, 100, 0, &err) == BFN_OK, "init c");
    static uint8_t x[64 * 64], y[64 * 64], z[64 * 64];
    int same = 0, differ_seed = 0;
    for (int i = 0; i < 50; i++) {
        bfn_twodigit_render(&a, (uint64_t)i, x, NULL);
        bfn_twodigit_render(&b, (uint64_t)(49 - i), y, NULL); /* other order */
        bfn_twodigit_render(&b, (uint64_t)i, y, NULL);
        bfn_twodigit_render(&c, (uint64_t)i, z, NULL);
        same += memcmp(x, y, sizeof x) == 0;
        differ_seed += memcmp(x, z, sizeof x) != 0;
    }
    CHECK_NEAR(50, same, 0, "same (seed, i) renders the same canvas");
    CHECK(differ_seed >= 48, "another seed renders other canvases (%d of 50)", differ_seed);
    bfn_twodigit_free(&a);
    bfn_twodigit_free(&b);
    bfn_twodigit_free(&c);
    bfn_dataset_free(&ds);
}

static void test_twodigit_digits_stay_in_their_half_and_equal_source_pixels(void)
{
    bfn_dataset ds;
    synth_dataset(&ds, 60);
    bfn_twodigit td;
    bfn_err err = {0};
    CHECK(bfn_twodigit_init(&td, &ds, NULL, 0, 5, 0, &err) == BFN_OK, "init: %.120s", err.msg);
    static uint8_t canvas[64 * 64], expect[64 * 64];
    int out_of_range = 0, wrong_class = 0, wrong_pixels = 0;
    int minx[2] = {99, 99}, maxx[2] = {-1, -1}, miny = 99, maxy = -1;
    for (int i = 0; i < 3000; i++) {
        bfn_twodigit_info info;
        bfn_twodigit_render(&td, (uint64_t)i, canvas, &info);
        memset(expect, 0, sizeof expect);
        for (int half = 0; half < 2; half++) {
            int x0 = info.x[half], y0 = info.y[half];
            out_of_range += x0 < 32 * half || x0 + 28 > 32 * (half + 1) || y0 < 0 || y0 + 28 > 64;
            if (x0 < minx[half]) minx[half] = x0;
            if (x0 > maxx[half]) maxx[half] = x0;
            if (y0 < miny) miny = y0;
            if (y0 > maxy) maxy = y0;
            int want = half ? info.label % 10 : info.label / 10;
            wrong_class += ds.labels[info.src[half]] != want;
            if (x0 < 0 || x0 + 28 > 64 || y0 < 0 || y0 + 28 > 64)
                continue;
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++)
                    expect[(y0 + y) * 64 + x0 + x] =
                        ds.pixels[(size_t)info.src[half] * 784 + y * 28 + x];
        }
        wrong_pixels += memcmp(canvas, expect, sizeof canvas) != 0;
    }
    CHECK_NEAR(0, out_of_range, 0, "digits outside their half or the canvas");
    CHECK_NEAR(0, wrong_class, 0, "digits whose class differs from the label");
    CHECK_NEAR(0, wrong_pixels, 0, "canvases differing from the pasted source digits");
    CHECK(minx[0] == 0 && maxx[0] == 3 && minx[1] == 32 && maxx[1] == 35,
          "x offsets cover U{0..3} in each half: left %d..%d, right %d..%d", minx[0], maxx[0],
          minx[1], maxx[1]);
    CHECK(miny == 0 && maxy == 35, "y offsets cover U{0..35}: %d..%d", miny, maxy);
    bfn_twodigit_free(&td);
    bfn_dataset_free(&ds);
}

static void test_twodigit_labels_are_uniform_over_00_to_99(void)
{
    bfn_dataset ds;
    synth_dataset(&ds, 30);
    bfn_twodigit td;
    bfn_err err = {0};
    CHECK(bfn_twodigit_init(&td, &ds, NULL, 0, 2024, 1, &err) == BFN_OK, "init: %.120s", err.msg);
    enum { N = 20000 };
    static uint8_t canvas[64 * 64];
    int count[100] = {0};
    int src_use[30] = {0};
    for (int i = 0; i < N; i++) {
        bfn_twodigit_info info;
        bfn_twodigit_render(&td, (uint64_t)i, canvas, &info);
        count[info.label]++;
        src_use[info.src[0]]++;
        src_use[info.src[1]]++;
    }
    double chi2 = 0;
    int unseen = 0;
    for (int l = 0; l < 100; l++) {
        chi2 += (count[l] - N / 100.0) * (count[l] - N / 100.0) / (N / 100.0);
        unseen += count[l] == 0;
    }
    /* chi-square with 99 degrees of freedom: mean 99, sd 14 */
    CHECK_NEAR(99, chi2, 5 * 14.07, "chi-square of the 100 label counts");
    CHECK_NEAR(0, unseen, 0, "labels never drawn");
    /* 3 images per class: each is picked ~1/3 of the time its class is used */
    int rare = 0;
    for (int j = 0; j < 30; j++)
        rare += src_use[j] < 1000;
    CHECK_NEAR(0, rare, 0, "source images almost never used (with replacement, uniform)");
    bfn_twodigit_free(&td);
    bfn_dataset_free(&ds);
}

static void test_twodigit_rejects_pool_missing_a_class(void)
{
    bfn_dataset ds;
    synth_dataset(&ds, 30);
    int idx[9];
    for (int j = 0; j < 9; j++)
        idx[j] = j; /* classes 0..8 only */
    bfn_twodigit td;
    bfn_err err = {0};
    bfn_status s = bfn_twodigit_init(&td, &ds, idx, 9, 1, 0, &err);
    CHECK_NEAR(BFN_ERR_ARG, s, 0, "pool without class 9: status");
    CHECK(strstr(err.msg, "class 9") != NULL, "message names the class: '%.120s'", err.msg);
    bfn_twodigit_free(&td);
    bfn_dataset_free(&ds);
}

/* --------------------------------------------------------------- source ---- */

/* Writes an MNIST-style pair for ds into dir (gzipped when gz). */
static void write_pair(const char *dir, const char *prefix, const bfn_dataset *ds, int gz)
{
    size_t n = 16 + (size_t)ds->n * 784;
    uint8_t *buf = malloc(n > 8 + (size_t)ds->n ? n : 8 + (size_t)ds->n);
    uint32_t d3[3] = {(uint32_t)ds->n, 28, 28}, d1[1] = {(uint32_t)ds->n};
    char path[600];
    make_idx(buf, n, 0x08, 3, d3, 0);
    memcpy(buf + 16, ds->pixels, (size_t)ds->n * 784);
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, prefix, gz ? ".gz" : "");
    gz ? write_gz(path, buf, n) : write_bytes(path, buf, n);
    make_idx(buf, n, 0x08, 1, d1, 0);
    memcpy(buf + 8, ds->labels, (size_t)ds->n);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, prefix, gz ? ".gz" : "");
    gz ? write_gz(path, buf, 8 + (size_t)ds->n) : write_bytes(path, buf, 8 + (size_t)ds->n);
    free(buf);
}

static void test_source_on_synthetic_files_counts_items_and_batches(void)
{
    char dir[512];
    tmp_path(dir, sizeof dir, "synth");
    mkdir(dir, 0700);
    bfn_dataset tr, te;
    synth_dataset(&tr, 1000);
    synth_dataset(&te, 50);
    write_pair(dir, "train", &tr, 0);
    write_pair(dir, "t10k", &te, 1); /* gzipped: found as <name>.gz */

    bfn_err err = {0};
    bfn_source *s_tr = NULL, *s_va = NULL, *s_te = NULL;
    CHECK(bfn_source_create(&s_tr, BFN_DATA_MNIST, dir, BFN_SPLIT_TRAIN, 0, &err) == BFN_OK,
          "train source: %.120s", err.msg);
    CHECK(bfn_source_create(&s_va, BFN_DATA_MNIST, dir, BFN_SPLIT_VAL, 0, &err) == BFN_OK,
          "val source: %.120s", err.msg);
    CHECK(bfn_source_create(&s_te, BFN_DATA_MNIST, dir, BFN_SPLIT_TEST, 0, &err) == BFN_OK,
          "test source (.gz files): %.120s", err.msg);
    if (!s_tr || !s_va || !s_te)
        goto out;
    CHECK_NEAR(990, bfn_source_count(s_tr), 0, "train items");
    CHECK_NEAR(10, bfn_source_count(s_va), 0, "val items");
    CHECK_NEAR(50, bfn_source_count(s_te), 0, "test items");
    CHECK(bfn_source_height(s_tr) == 28 && bfn_source_width(s_tr) == 28, "item size 28×28");

    /* items are the split's images, in ascending order */
    static int train[1000], val[10];
    bfn_split_make(1000, train, val, &err);
    uint8_t v[784];
    int label = -1, wrong = 0;
    for (int i = 0; i < 10; i++) {
        bfn_source_item(s_va, i, v, &label, &err);
        wrong += memcmp(v, tr.pixels + (size_t)val[i] * 784, 784) != 0 ||
                 label != tr.labels[val[i]];
    }
    for (int i = 0; i < 990; i += 37) {
        bfn_source_item(s_tr, i, v, &label, &err);
        wrong += memcmp(v, tr.pixels + (size_t)train[i] * 784, 784) != 0;
    }
    bfn_source_item(s_te, 49, v, &label, &err);
    wrong += memcmp(v, te.pixels + 49 * 784, 784) != 0 || label != 9;
    CHECK_NEAR(0, wrong, 0, "items differing from the split's images");
    CHECK_NEAR(BFN_ERR_ARG, bfn_source_item(s_va, 10, v, NULL, &err), 0, "item past the end");

    /* batches: deterministic from the rng state, binarized, rng advances */
    enum { B = 8 };
    static uint8_t x1[B * 784], x2[B * 784], x3[B * 784];
    int64_t idx[B];
    bfn_rng rng, r0;
    bfn_rng_init(&rng, 77, 0);
    bfn_source_draw(s_tr, idx, B, &rng);
    int bad_idx = 0;
    for (int b = 0; b < B; b++)
        bad_idx += idx[b] < 0 || idx[b] >= 990;
    CHECK_NEAR(0, bad_idx, 0, "drawn indices out of range");
    r0 = rng;
    bfn_source_batch(s_tr, idx, B, x1, &rng, &err);
    bfn_source_batch(s_tr, idx, B, x3, &rng, &err);
    bfn_source_batch(s_tr, idx, B, x2, &r0, &err);
    CHECK(memcmp(x1, x2, sizeof x1) == 0, "same rng state gives the same batch");
    CHECK(memcmp(x1, x3, sizeof x1) != 0, "the next batch is binarized afresh");
    int nonbinary = 0, mean_on = 0;
    for (int j = 0; j < B * 784; j++) {
        nonbinary += x1[j] > 1;
        mean_on += x1[j];
    }
    CHECK_NEAR(0, nonbinary, 0, "batch values other than 0/1");
    CHECK(mean_on > B * 784 / 3 && mean_on < B * 784 * 2 / 3,
          "about half the pixels on for intensities spread over 1..255 (%d of %d)", mean_on,
          B * 784);
    int64_t badi[1] = {990};
    CHECK_NEAR(BFN_ERR_ARG, bfn_source_batch(s_tr, badi, 1, x1, &rng, &err), 0,
               "batch with an item past the end");

    /* the one-call training batch equals draw + batch */
    bfn_rng ra, rb;
    bfn_rng_init(&ra, 5, 5);
    rb = ra;
    bfn_source_train_batch(s_tr, B, x1, &ra, &err);
    bfn_source_draw(s_tr, idx, B, &rb);
    bfn_source_batch(s_tr, idx, B, x2, &rb, &err);
    CHECK(memcmp(x1, x2, sizeof x1) == 0, "train_batch equals draw + batch");
    CHECK(ra.ctr == rb.ctr && ra.key == rb.key, "train_batch leaves rng as draw + batch do");

out:
    bfn_source_destroy(s_tr);
    bfn_source_destroy(s_va);
    bfn_source_destroy(s_te);

    /* two-digit on the same files: virtual counts, 64×64 */
    bfn_source *td_tr = NULL, *td_te = NULL;
    CHECK(bfn_source_create(&td_tr, BFN_DATA_TWODIGIT, dir, BFN_SPLIT_TRAIN, 3, &err) == BFN_OK,
          "twodigit train: %.120s", err.msg);
    CHECK(bfn_source_create(&td_te, BFN_DATA_TWODIGIT, dir, BFN_SPLIT_TEST, 3, &err) == BFN_OK,
          "twodigit test: %.120s", err.msg);
    if (td_tr && td_te) {
        CHECK_NEAR(60000, bfn_source_count(td_tr), 0, "twodigit train items");
        CHECK_NEAR(10000, bfn_source_count(td_te), 0, "twodigit test items");
        CHECK(bfn_source_height(td_tr) == 64 && bfn_source_width(td_tr) == 64, "64×64");
        static uint8_t c1[4096], c2[4096];
        int l1, l2;
        bfn_source_item(td_tr, 59999, c1, &l1, &err);
        bfn_source_item(td_tr, 59999, c2, &l2, &err);
        CHECK(memcmp(c1, c2, sizeof c1) == 0 && l1 == l2 && l1 >= 0 && l1 < 100,
              "twodigit item is deterministic with label 0..99 (%d)", l1);
    }
    bfn_source_destroy(td_tr);
    bfn_source_destroy(td_te);

    bfn_dataset_free(&tr);
    bfn_dataset_free(&te);
}

static void test_dataset_rejects_count_mismatch_bad_labels_and_missing_files(void)
{
    char dir[512], path[600];
    tmp_path(dir, sizeof dir, "broken");
    mkdir(dir, 0700);
    bfn_dataset ds, got;
    synth_dataset(&ds, 20);
    write_pair(dir, "train", &ds, 0);
    bfn_err err = {0};
    CHECK(bfn_dataset_load(&got, dir, BFN_PART_TRAIN, &err) == BFN_OK, "intact pair: %.120s",
          err.msg);
    CHECK(got.n == 20 && got.h == 28 && got.w == 28, "intact pair: %d × %d×%d", got.n, got.h,
          got.w);
    bfn_dataset_free(&got);

    uint8_t lab[8 + 19];
    uint32_t d1[1] = {19};
    make_idx(lab, sizeof lab, 0x08, 1, d1, 0);
    memcpy(lab + 8, ds.labels, 19);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    write_bytes(path, lab, sizeof lab);
    CHECK_NEAR(BFN_ERR_MISMATCH, bfn_dataset_load(&got, dir, BFN_PART_TRAIN, &err), 0,
               "19 labels for 20 images");
    CHECK(strstr(err.msg, "20 images") && strstr(err.msg, "19 labels"), "message '%.120s'", err.msg);

    uint8_t lab2[8 + 20];
    uint32_t d20[1] = {20};
    make_idx(lab2, sizeof lab2, 0x08, 1, d20, 0);
    memcpy(lab2 + 8, ds.labels, 20);
    lab2[8 + 13] = 10;
    write_bytes(path, lab2, sizeof lab2);
    CHECK_NEAR(BFN_ERR_FORMAT, bfn_dataset_load(&got, dir, BFN_PART_TRAIN, &err), 0,
               "label 10");
    CHECK(strstr(err.msg, "label 13 is 10") != NULL, "message '%.120s'", err.msg);

    CHECK_NEAR(BFN_ERR_IO, bfn_dataset_load(&got, dir, BFN_PART_TEST, &err), 0,
               "no t10k files");
    CHECK(strstr(err.msg, "t10k-images-idx3-ubyte") != NULL, "message '%.120s'", err.msg);
    CHECK(strstr(err.msg, "bfn data fetch") != NULL &&
              strstr(err.msg, "dataset-fashion-mnist") != NULL,
          "message names how to get the files: '%.200s'", err.msg);
    bfn_dataset_free(&ds);
}

/* ------------------------------------------------------------ real data ---- */

static void test_real_mnist_loads_with_known_counts_and_first_labels(void)
{
    const char *dir = "data/mnist";
    char probe[256];
    snprintf(probe, sizeof probe, "%s/train-images-idx3-ubyte", dir);
    if (access(probe, R_OK) != 0) {
        printf("  note: %s absent, real MNIST checks skipped (scripts/fetch_mnist.sh)\n", dir);
        return;
    }
    bfn_dataset tr, te;
    bfn_err err = {0};
    CHECK(bfn_dataset_load(&tr, dir, BFN_PART_TRAIN, &err) == BFN_OK, "train: %.120s", err.msg);
    CHECK(bfn_dataset_load(&te, dir, BFN_PART_TEST, &err) == BFN_OK, "test: %.120s", err.msg);
    CHECK_NEAR(60000, tr.n, 0, "MNIST train images");
    CHECK_NEAR(10000, te.n, 0, "MNIST test images");
    CHECK(tr.h == 28 && tr.w == 28, "28×28");
    const int want_tr[5] = {5, 0, 4, 1, 9}, want_te[5] = {7, 2, 1, 0, 4};
    for (int j = 0; j < 5 && tr.labels && te.labels; j++) {
        CHECK_NEAR(want_tr[j], tr.labels[j], 0, "train label %d", j);
        CHECK_NEAR(want_te[j], te.labels[j], 0, "test label %d", j);
    }
    bfn_dataset_free(&tr);
    bfn_dataset_free(&te);

    const int64_t want[3] = {59400, 600, 10000};
    for (int sp = 0; sp < 3; sp++) {
        bfn_source *src = NULL;
        CHECK(bfn_source_create(&src, BFN_DATA_MNIST, dir, (bfn_split)sp, 0, &err) == BFN_OK,
              "mnist %.120s: %.120s", bfn_split_name((bfn_split)sp), err.msg);
        CHECK_NEAR(want[sp], bfn_source_count(src), 0, "mnist %.120s items",
                   bfn_split_name((bfn_split)sp));
        bfn_source_destroy(src);
    }
    bfn_source *src = NULL;
    CHECK(bfn_source_create(&src, BFN_DATA_TWODIGIT, dir, BFN_SPLIT_VAL, 0, &err) == BFN_OK,
          "twodigit val on MNIST: %.120s", err.msg);
    CHECK_NEAR(600, bfn_source_count(src), 0, "twodigit val items");
    bfn_source_destroy(src);
}

static void test_real_fashion_mnist_loads_from_gzipped_files(void)
{
    const char *dir = bfn_data_default_dir(BFN_DATA_FASHION);
    char probe[256];
    snprintf(probe, sizeof probe, "%s/t10k-labels-idx1-ubyte.gz", dir);
    if (access(probe, R_OK) != 0) {
        printf("  note: %s absent, Fashion-MNIST checks skipped (apt-get install "
               "dataset-fashion-mnist)\n", dir);
        return;
    }
    bfn_err err = {0};
    bfn_source *tr = NULL, *te = NULL;
    CHECK(bfn_source_create(&tr, BFN_DATA_FASHION, NULL, BFN_SPLIT_TRAIN, 0, &err) == BFN_OK,
          "fashion train: %.120s", err.msg);
    CHECK(bfn_source_create(&te, BFN_DATA_FASHION, NULL, BFN_SPLIT_TEST, 0, &err) == BFN_OK,
          "fashion test: %.120s", err.msg);
    CHECK_NEAR(59400, bfn_source_count(tr), 0, "fashion train items");
    CHECK_NEAR(10000, bfn_source_count(te), 0, "fashion test items");
    CHECK(bfn_source_height(te) == 28 && bfn_source_width(te) == 28, "28×28");
    bfn_source_destroy(tr);
    bfn_source_destroy(te);
}

/* ---------------------------------------------------------------- names ---- */

static void test_kind_and_split_names_round_trip(void)
{
    bfn_err err = {0};
    for (int k = 0; k < 3; k++) {
        bfn_data_kind kind = BFN_DATA_MNIST;
        CHECK(bfn_data_kind_parse(bfn_data_kind_name((bfn_data_kind)k), &kind, &err) == BFN_OK &&
                  (int)kind == k,
              "kind %d round trip", k);
        bfn_split sp = BFN_SPLIT_TRAIN;
        CHECK(bfn_split_parse(bfn_split_name((bfn_split)k), &sp, &err) == BFN_OK && (int)sp == k,
              "split %d round trip", k);
    }
    bfn_data_kind kind;
    CHECK_NEAR(BFN_ERR_ARG, bfn_data_kind_parse("cifar", &kind, &err), 0, "unknown kind");
}

/* ----------------------------------------------------------------- main ---- */

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bfn_test_data.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_idx_valid_1d_and_3d_files_load_with_right_values);
    RUN(test_idx_malformed_files_fail_with_code_and_file_name);
    RUN(test_idx_empty_missing_and_odd_files_fail_cleanly);
    RUN(test_idx_random_corruptions_never_crash);
    RUN(test_binarize_zero_never_on_and_255_always_on);
    RUN(test_binarize_frequency_matches_intensity_within_5_se);
    RUN(test_binarize_is_deterministic_for_same_rng_and_differs_between_forks);
    RUN(test_split_is_59400_600_disjoint_complete_and_fixed);
    RUN(test_twodigit_render_is_pure_function_of_seed_and_index);
    RUN(test_twodigit_digits_stay_in_their_half_and_equal_source_pixels);
    RUN(test_twodigit_labels_are_uniform_over_00_to_99);
    RUN(test_twodigit_rejects_pool_missing_a_class);
    RUN(test_source_on_synthetic_files_counts_items_and_batches);
    RUN(test_dataset_rejects_count_mismatch_bad_labels_and_missing_files);
    RUN(test_real_mnist_loads_with_known_counts_and_first_labels);
    RUN(test_real_fashion_mnist_loads_from_gzipped_files);
    RUN(test_kind_and_split_names_round_trip);
    remove_tree(tmpdir);
    return check_finish();
}
