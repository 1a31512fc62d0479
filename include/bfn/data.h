/* Data sets: IDX files (the MNIST file format), MNIST and Fashion-MNIST, the
 * fixed train/validation split, dynamic binarization, two-digit MNIST 64×64,
 * and the batch source that training and evaluation draw from.
 *
 * Images are uint8 intensities 0..255, row-major (H, W). Binarized images are
 * uint8 classes 0/1 (K = 2), one byte per pixel. */
#ifndef BFN_DATA_H
#define BFN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "bfn/common.h"
#include "bfn/rng.h"

/* ---- IDX files ----
 * Layout (big-endian): bytes 0,1 = 0; byte 2 = element type (only 0x08,
 * unsigned byte, is supported); byte 3 = number of dimensions (1 or 3 here);
 * then one u32 per dimension; then the elements, row-major. The file must be
 * exactly that long. Gzip-compressed files (recognized by content, whatever
 * their name) are decompressed on the fly and the same checks apply to the
 * decompressed data. */
#define BFN_IDX_MAX_DIM (1u << 24)            /* largest accepted dimension */
#define BFN_IDX_MAX_BYTES ((uint64_t)1 << 31) /* largest accepted payload */

typedef struct {
    uint8_t *data;     /* (dims[0], ..., dims[ndim-1]) elements, owned */
    int ndim;          /* 1 or 3 */
    uint32_t dims[3];  /* unused entries are 0 */
    size_t size;       /* elements = bytes in data = product of dims */
} bfn_idx;

/* Reads and checks an IDX file. Errors name the file: BFN_ERR_IO when it cannot
 * be opened or read, BFN_ERR_FORMAT when its content is malformed (magic, type,
 * dimension count, a dimension 0 or above the limits, length not exactly
 * header + payload, corrupt gzip data). On error idx is left empty. */
bfn_status bfn_idx_load(bfn_idx *idx, const char *path, bfn_err *err);
/* Same checks on an in-memory file image (buf, len); name is used in messages. */
bfn_status bfn_idx_parse(bfn_idx *idx, const char *name, const uint8_t *buf, size_t len,
                         bfn_err *err);
void bfn_idx_free(bfn_idx *idx);

/* ---- labelled image sets (MNIST, Fashion-MNIST) ---- */
#define BFN_NUM_CLASSES 10

typedef struct {
    int n;            /* images */
    int h, w;         /* image size (28 × 28 for MNIST) */
    uint8_t *pixels;  /* (n, h, w) intensities 0..255, owned */
    uint8_t *labels;  /* (n) classes 0..BFN_NUM_CLASSES-1, owned */
} bfn_dataset;

/* The two file pairs of an MNIST-style directory. */
typedef enum {
    BFN_PART_TRAIN, /* train-images-idx3-ubyte + train-labels-idx1-ubyte */
    BFN_PART_TEST   /* t10k-images-idx3-ubyte + t10k-labels-idx1-ubyte */
} bfn_part;

/* Loads one part from dir. Each file is looked up as <name>, then <name>.gz
 * (Fashion-MNIST as Debian installs it is gzipped). Checks that the image file
 * is 3-D, the label file 1-D, the counts agree and every label is < 10. */
bfn_status bfn_dataset_load(bfn_dataset *ds, const char *dir, bfn_part part, bfn_err *err);
void bfn_dataset_free(bfn_dataset *ds);

/* ---- the fixed train/validation split ----
 * perm = Fisher–Yates shuffle of 0..n-1 drawn from bfn_rng_init(BFN_SPLIT_SEED, 0);
 * the images perm[0 .. n_val) are the validation set, the rest training; both
 * lists are returned in ascending order. n_val = max(1, n / 100): for the
 * 60,000 MNIST or Fashion-MNIST training images that is 59,400 / 600. The split
 * never depends on any user seed, so every run validates on the same images. */
#define BFN_SPLIT_SEED 20230814u /* the day BFN appeared on arXiv (2308.07037) */

/* Validation images held out of n (0 when n < 2). */
int bfn_split_val_count(int n);
/* train: (n - n_val) indices, val: (n_val) indices. */
bfn_status bfn_split_make(int n, int *train, int *val, bfn_err *err);

/* ---- dynamic binarization (BFN.md) ----
 * x[j] = 1 iff u < v[j] / 255 with u ~ U[0, 1) drawn fresh per pixel from rng,
 * so 0 is never on, 255 always on, and each pixel is Bernoulli(v/255).
 * Uses n draws of rng, in order. */
void bfn_binarize(uint8_t *x, const uint8_t *v, size_t n, bfn_rng *rng);

/* ---- two-digit MNIST 64×64 (BFN.md) ----
 * Virtual image i: a label 00..99 uniformly; the left (tens) and right (ones)
 * digits are images of those classes drawn with replacement from the source
 * pool, pasted unscaled at x = 32·half + U{0..31-w}, y = U{0..63-h} (for 28×28
 * digits: U{0..3} and U{0..35}), the rest black. Image i is a pure function of
 * (seed, stream, i, pool): rng = bfn_rng_fork(bfn_rng_init(seed, stream), i). */
#define BFN_TWODIGIT_SIZE 64

typedef struct {
    const bfn_dataset *src;  /* borrowed; must outlive this */
    int *pool;               /* source image indices grouped by class, owned */
    int start[BFN_NUM_CLASSES + 1]; /* class c: pool[start[c] .. start[c+1]) */
    bfn_rng base;            /* stream that image numbers fork from */
} bfn_twodigit;

/* Where image i's digits came from (for tests and the app's inspector). */
typedef struct {
    int label;       /* 0..99; tens digit on the left */
    int src[2];      /* source image index of the left / right digit */
    int x[2], y[2];  /* top-left corner of each digit on the canvas */
} bfn_twodigit_info;

/* Pool = the source images idx[0..n_idx) (all of src when idx is NULL). Every
 * class needs at least one image there; src digits must be at most 31 wide and
 * 63 high. */
bfn_status bfn_twodigit_init(bfn_twodigit *td, const bfn_dataset *src, const int *idx, int n_idx,
                             uint64_t seed, uint64_t stream, bfn_err *err);
void bfn_twodigit_free(bfn_twodigit *td);
/* canvas: (64, 64) intensities; info may be NULL. Thread-safe (reads td only). */
void bfn_twodigit_render(const bfn_twodigit *td, uint64_t i, uint8_t *canvas,
                         bfn_twodigit_info *info);

/* ---- batch source ---- */
typedef enum { BFN_DATA_MNIST, BFN_DATA_FASHION, BFN_DATA_TWODIGIT } bfn_data_kind;
typedef enum { BFN_SPLIT_TRAIN, BFN_SPLIT_VAL, BFN_SPLIT_TEST } bfn_split;

/* "mnist", "fashion", "twodigit"; "train", "val", "test". */
const char *bfn_data_kind_name(bfn_data_kind kind);
bfn_status bfn_data_kind_parse(const char *name, bfn_data_kind *kind, bfn_err *err);
const char *bfn_split_name(bfn_split split);
bfn_status bfn_split_parse(const char *name, bfn_split *split, bfn_err *err);
/* Where the files usually are: "data/mnist" (scripts/fetch_mnist.sh puts them
 * there) for mnist and twodigit, "/usr/share/datasets/fashion-mnist" (Debian
 * package dataset-fashion-mnist) for fashion. */
const char *bfn_data_default_dir(bfn_data_kind kind);
/* Where a path of the repository (models/mnist.bfn, data/mnist, assets/...)
 * is, so that the tools work from any working directory: rel itself when it
 * exists there (or is absolute), else the first that exists of rel under the
 * directory above the executable's (the repository, for a build directory
 * inside it) and under the source tree the library was built from. Writes
 * it to out (rel when none exists, so that an error names the usual path);
 * 1 if it exists, else 0. */
int bfn_locate(const char *rel, char *out, size_t cap);

typedef struct bfn_source bfn_source;

/* Items of each split:
 *   mnist, fashion: train = the 59,400 training images of the split above,
 *     val = its 600, test = the 10,000 t10k images; item order ascending.
 *   twodigit: 60,000 / 600 / 10,000 virtual 64×64 images built from the MNIST
 *     train / val / test images of the same split, with stream = split, so
 *     the three never share a digit image.
 * seed only matters for twodigit (it picks the virtual images); keep it fixed
 * for val and test so results are comparable. dir holds the MNIST-style files
 * (NULL or "": bfn_data_default_dir(kind)). */
bfn_status bfn_source_create(bfn_source **out, bfn_data_kind kind, const char *dir,
                             bfn_split split, uint64_t seed, bfn_err *err);
void bfn_source_destroy(bfn_source *src);

int64_t bfn_source_count(const bfn_source *src);
int bfn_source_height(const bfn_source *src);
int bfn_source_width(const bfn_source *src);
bfn_data_kind bfn_source_kind(const bfn_source *src);

/* Intensities of item i, (H, W); label (may be NULL): class 0..9, or 0..99 for
 * twodigit. Deterministic. BFN_ERR_ARG when i is out of range. */
bfn_status bfn_source_item(const bfn_source *src, int64_t i, uint8_t *v, int *label,
                           bfn_err *err);
/* x: (B, H·W) binarized items idx[0..B). Row b is binarized with
 * bfn_rng_fork(r, b), r = bfn_rng_fork(rng, bfn_rng_u64(rng)): rng advances by
 * one draw per call, and rows could be filled in any order or in parallel. */
bfn_status bfn_source_batch(const bfn_source *src, const int64_t *idx, int B, uint8_t *x,
                            bfn_rng *rng, bfn_err *err);
/* idx: B item numbers, uniform with replacement. */
void bfn_source_draw(const bfn_source *src, int64_t *idx, int B, bfn_rng *rng);
/* A training batch in one call: B items drawn as bfn_source_draw would, then
 * binarized as bfn_source_batch does. user is the bfn_source; the signature
 * matches bfn_batch_fn (train.h). Allocates nothing. */
bfn_status bfn_source_train_batch(void *user, int B, uint8_t *x, bfn_rng *rng, bfn_err *err);

/* Item reads and batches only read the source: several threads may share one. */

#endif
