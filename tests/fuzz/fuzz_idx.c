/* Fuzz target: IDX files and the data sets built from them.
 *
 * Input: one mode byte, then the payload.
 *   mode % 4 == 0 or 3: the payload is one IDX file, read by bfn_idx_parse
 *     (in memory) and by bfn_idx_load (from a file, which also takes the
 *     gzip path when the payload is gzip data); both must agree.
 *   mode % 4 == 1 (MNIST) or 2 (two-digit MNIST): the payload is an image
 *     file and a label file, "u16 little-endian length of the image file,
 *     image file, label file"; they are written as both parts of an
 *     MNIST-style directory and loaded through bfn_dataset_load and
 *     bfn_source_create (split (mode / 4) % 3), and on success a few items
 *     and a batch are read.
 * Every outcome must be a status: no crash, leak, sanitizer report or
 * disagreement between the two readers. */
#include "fuzz_file.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/data.h"

static fuzz_file g_file;
static char g_dir[256];
static const char *const g_names[4] = {
    "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
};

static void remove_dir(void)
{
    char p[512];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", g_dir, g_names[i]);
        unlink(p);
    }
    rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_file_open(&g_file, "fuzz-idx");
    snprintf(g_dir, sizeof g_dir, "%s/bfn-fuzz-idx.XXXXXX", fuzz_scratch_base());
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    atexit(remove_dir);
    return 0;
}

/* A disagreement between two readers is a bug: stop like a crash would. */
static void require(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_idx: %s\n", what);
        abort();
    }
}

static void one_file(const uint8_t *p, size_t n)
{
    bfn_idx a, b;
    bfn_err ea, eb;
    bfn_err_clear(&ea);
    bfn_err_clear(&eb);
    bfn_status sa = bfn_idx_parse(&a, "input", p, n, &ea);
    fuzz_file_set(&g_file, p, n);
    bfn_status sb = bfn_idx_load(&b, g_file.path, &eb);
    require(sa == BFN_OK || (ea.msg[0] && a.data == NULL && a.size == 0),
            "parse failed without a message or left data");
    require(sb == BFN_OK || (eb.msg[0] && b.data == NULL && b.size == 0),
            "load failed without a message or left data");
    /* A plain (not gzip) file must be judged alike by both readers. */
    int gz = n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
    if (!gz) {
        require((sa == BFN_OK) == (sb == BFN_OK), "parse and load disagree on a plain file");
        if (sa == BFN_OK)
            require(a.ndim == b.ndim && a.size == b.size &&
                        memcmp(a.dims, b.dims, sizeof a.dims) == 0 &&
                        memcmp(a.data, b.data, a.size) == 0,
                    "parse and load return different content");
    }
    if (sa == BFN_OK) {
        uint64_t prod = 1;
        for (int d = 0; d < a.ndim; d++)
            prod *= a.dims[d];
        require(prod == a.size && a.size + 4 + 4 * (size_t)a.ndim == n,
                "parsed sizes disagree with the file length");
    }
    bfn_idx_free(&a);
    bfn_idx_free(&b);
}

static void write_part(int i, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_dir, g_names[i]);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void data_set(int kind, int split, const uint8_t *p, size_t n)
{
    if (n < 2)
        return;
    size_t li = (size_t)p[0] | (size_t)p[1] << 8;
    p += 2;
    n -= 2;
    if (li > n)
        li = n;
    for (int part = 0; part < 2; part++) {
        write_part(2 * part, p, li);
        write_part(2 * part + 1, p + li, n - li);
    }
    bfn_err err = {0};
    bfn_err_clear(&err);
    bfn_dataset ds;
    if (bfn_dataset_load(&ds, g_dir, BFN_PART_TRAIN, &err) == BFN_OK) {
        require(ds.n >= 1 && ds.h >= 1 && ds.w >= 1, "data set with an empty dimension");
        for (int i = 0; i < ds.n; i++)
            require(ds.labels[i] < BFN_NUM_CLASSES, "label out of range accepted");
        bfn_dataset_free(&ds);
    } else {
        require(err.msg[0] != 0, "data set refused without a message");
    }

    bfn_source *src = NULL;
    bfn_err_clear(&err);
    bfn_status st = bfn_source_create(&src, kind == 1 ? BFN_DATA_MNIST : BFN_DATA_TWODIGIT, g_dir,
                                      (bfn_split)split, 7, &err);
    if (st != BFN_OK) {
        require(src == NULL && err.msg[0] != 0, "source refused without a message");
        return;
    }
    int64_t count = bfn_source_count(src);
    size_t d = (size_t)bfn_source_height(src) * (size_t)bfn_source_width(src);
    require(count >= 1 && d >= 1, "source without items");
    uint8_t *v = malloc(d), *x = malloc(2 * d);
    int label = -1;
    if (v && x) {
        require(bfn_source_item(src, 0, v, &label, &err) == BFN_OK, "item 0 unreadable");
        require(bfn_source_item(src, count - 1, v, &label, &err) == BFN_OK, "last item unreadable");
        require(bfn_source_item(src, count, v, &label, &err) != BFN_OK, "item past the end read");
        bfn_rng rng;
        bfn_rng_init(&rng, 1, 2);
        require(bfn_source_train_batch(src, 2, x, &rng, &err) == BFN_OK, "batch failed");
        for (size_t i = 0; i < 2 * d; i++)
            require(x[i] <= 1, "binarized pixel not 0 or 1");
    }
    free(v);
    free(x);
    bfn_source_destroy(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0];
    switch (mode % 4) {
    case 1:
    case 2:
        data_set(mode % 4, (mode / 4) % 3, data + 1, size - 1);
        break;
    default:
        one_file(data + 1, size - 1);
        break;
    }
    return 0;
}
