/* Model and checkpoint files.
 *
 * One versioned little-endian container (layout documented at the top of
 * src/engine/model_io.c): a header describing the model (architecture config,
 * K, image size, β(1), data set, training progress, key=value notes), then
 * named typed sections, then a checksum. A model file carries the section
 * "params" (the weights used for sampling: the EMA weights); a training
 * checkpoint is the same format with whatever extra sections the trainer
 * passes ("params_raw", "adam_m", "adam_v", "rng", "train", ...).
 *
 * Saving writes "<path>.tmp-<pid>", fsyncs it and renames it over path, so a
 * crash or a failed save never leaves a half-written file and never touches an
 * existing one. (Two threads of one process must not save to the same path at
 * the same time: they would share the temporary name.)
 *
 * Loading reads the whole file and checks every size against the file length
 * before using it, then the checksum, then that every value is sane; any
 * problem gives BFN_ERR_IO, BFN_ERR_FORMAT or BFN_ERR_CHECKSUM (and, for the
 * net-level loader, BFN_ERR_MISMATCH / BFN_ERR_NUMERIC) with a message that
 * names the file and the problem. */
#ifndef BFN_MODEL_IO_H
#define BFN_MODEL_IO_H

#include "bfn/common.h"
#include "bfn/net.h"

#define BFN_MODEL_FORMAT_VERSION 1

#define BFN_MODEL_DATASET_MAX 32     /* bytes of the data set name, NUL included */
#define BFN_MODEL_NOTES_MAX 16       /* key=value notes per file */
#define BFN_MODEL_NOTE_KEY_MAX 32    /* bytes of a note key, NUL included */
#define BFN_MODEL_NOTE_VALUE_MAX 192 /* bytes of a note value, NUL included */
#define BFN_MODEL_SECTION_NAME_MAX 32 /* bytes of a section name, NUL included */
#define BFN_MODEL_SECTIONS_MAX 1024  /* sections per file */

/* Sane ranges enforced on save and load. */
#define BFN_MODEL_K_MIN 2
#define BFN_MODEL_K_MAX 256
#define BFN_MODEL_SIDE_MIN 4         /* H and W */
#define BFN_MODEL_SIDE_MAX 1024
#define BFN_MODEL_BETA1_MAX 1e4      /* β(1) must lie in (0, BFN_MODEL_BETA1_MAX] */

typedef struct {
    char key[BFN_MODEL_NOTE_KEY_MAX];     /* [A-Za-z0-9_.-]+ */
    char value[BFN_MODEL_NOTE_VALUE_MAX]; /* any text without control characters */
} bfn_model_note;

/* Everything in the header. K and the image size are config.K, config.H,
 * config.W (the file stores them a second time and checks they agree). */
typedef struct {
    bfn_net_config config;
    double beta1;                          /* β(1) of the accuracy schedule β(t) = β(1)t² */
    char dataset[BFN_MODEL_DATASET_MAX];   /* e.g. "mnist"; no control characters */
    uint64_t step;                         /* optimizer steps taken */
    uint64_t images_seen;                  /* training images consumed */
    int n_notes;
    bfn_model_note notes[BFN_MODEL_NOTES_MAX]; /* e.g. "lr"="2e-4", "ema"="0.999" */
} bfn_model_meta;

typedef enum {
    BFN_MODEL_F32 = 1,
    BFN_MODEL_U8 = 2,
    BFN_MODEL_U64 = 3
} bfn_model_type;

/* One named array. For saving, data points at caller memory; after loading,
 * it points into memory owned by the bfn_model_sections it came from, aligned
 * for its type and already in host byte order. */
typedef struct {
    char name[BFN_MODEL_SECTION_NAME_MAX]; /* [A-Za-z0-9_.-]+, at most 31 chars */
    bfn_model_type type;
    uint64_t count;                        /* elements, not bytes */
    const void *data;
} bfn_model_section;

/* The sections of a loaded file, in file order. */
typedef struct {
    int n;
    bfn_model_section *sec;
    char *path;  /* the file they came from, for messages */
    void *buf;   /* the whole file; section data points into it */
} bfn_model_sections;

/* "f32", "u8", "u64" (or "?"), and bytes per element (0 if unknown). */
const char *bfn_model_type_str(bfn_model_type t);
size_t bfn_model_type_size(bfn_model_type t);

/* Zeroes meta and sets its config (the other fields are then filled in by the caller). */
void bfn_model_meta_init(bfn_model_meta *meta, const bfn_net_config *cfg);
/* Adds a note, or replaces the value of an existing key. BFN_ERR_ARG if the
 * key or value is invalid or too long, or all BFN_MODEL_NOTES_MAX are used. */
bfn_status bfn_model_meta_set_note(bfn_model_meta *meta, const char *key, const char *value,
                                   bfn_err *err);
/* Value of a note, or NULL. */
const char *bfn_model_meta_note(const bfn_model_meta *meta, const char *key);
/* Header sanity (ranges above, strings, notes); BFN_ERR_ARG naming the field.
 * The architecture itself is checked by bfn_net_config_check. */
bfn_status bfn_model_meta_check(const bfn_model_meta *meta, bfn_err *err);

/* Writes meta and n sections (names unique) to path atomically, through
 * "<path>.tmp-<pid>" renamed over path. */
bfn_status bfn_model_save(const char *path, const bfn_model_meta *meta,
                          const bfn_model_section *sec, int n, bfn_err *err);
/* Reads and fully checks path. On success fills meta and *out (free with
 * bfn_model_sections_free); on failure *out is empty and needs no free. */
bfn_status bfn_model_load(const char *path, bfn_model_meta *meta, bfn_model_sections *out,
                          bfn_err *err);
void bfn_model_sections_free(bfn_model_sections *s);

/* The section called name, or NULL. */
const bfn_model_section *bfn_model_find(const bfn_model_sections *s, const char *name);
/* The data of section name, which must exist with this type and count
 * (BFN_ERR_FORMAT if missing or of another type, BFN_ERR_MISMATCH if the count
 * differs); f32 data must also be all finite (BFN_ERR_NUMERIC). */
bfn_status bfn_model_get(const bfn_model_sections *s, const char *name, bfn_model_type type,
                         uint64_t count, const void **data, bfn_err *err);

/* Saves net's current parameters as section "params", plus n_extra further
 * sections (none may be called "params"); meta->config is replaced by the
 * net's own config. */
bfn_status bfn_model_save_net(const char *path, const bfn_model_meta *meta, bfn_net *net,
                              const bfn_model_section *extra, int n_extra, bfn_err *err);
/* Loads a model (or checkpoint) file: checks the config with
 * bfn_net_config_check, creates the net for up to max_batch images, and copies
 * in section "params" after checking its size and that every weight is finite.
 * meta may be NULL. On failure *net is NULL. */
bfn_status bfn_model_load_net(const char *path, bfn_net **net, bfn_model_meta *meta,
                              int max_batch, bfn_err *err);

/* Removes the "<path>.tmp-<pid>" files of processes that no longer exist
 * (left by a write killed before its rename); a live process's are kept.
 * bfn_model_save calls it after each good save. */
void bfn_file_remove_dead_temps(const char *path);
/* Replaces path with the n bytes at data the way bfn_model_save writes: through
 * "<path>.tmp-<pid>", fsynced and renamed over it (a reader or a crash sees
 * the old file or the new one, never a part), then removes dead temporaries. */
bfn_status bfn_file_replace(const char *path, const void *data, size_t n, bfn_err *err);
/* Reads the whole regular file path into *buf (malloc'd; free it) of *size bytes. */
bfn_status bfn_file_read(const char *path, uint8_t **buf, size_t *size, bfn_err *err);

/* The header (and, if secs is not NULL, the section list) as text lines
 * "name: value\n" for `bfn info`. Writes at most cap bytes, always
 * NUL-terminated when cap > 0; returns the length the full text needs
 * (like snprintf), so a return >= cap means it was cut. */
size_t bfn_model_format_info(char *buf, size_t cap, const bfn_model_meta *meta,
                             const bfn_model_sections *secs);

/* 64-bit FNV-1a of n bytes continuing from state h (start with
 * BFN_MODEL_CHECKSUM_INIT); the file checksum is this over every byte before it. */
#define BFN_MODEL_CHECKSUM_INIT UINT64_C(0xcbf29ce484222325)
uint64_t bfn_model_checksum(uint64_t h, const void *data, size_t n);

#endif
