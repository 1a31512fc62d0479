/* Model and checkpoint files: a versioned container with a checksum, and the
 * net-level save/load on top of it.
 *
 * File layout, format version 1. All integers and floats little-endian;
 * "i32" two's complement, "f32"/"f64" IEEE 754.
 *
 *   offset size  field
 *   0      8     magic "BFNMODEL"
 *   8      4     u32 format version (1)
 *   12     4     u32 flags, 0 (a reader must refuse flags it does not know)
 *   16     64    architecture config, field by field: i32 K, H, W, base_ch,
 *                n_levels, ch_mult[0..4], n_res, attn_levels, n_heads,
 *                temb_dim, groups; f32 dropout
 *   80     12    i32 K, H, W of the data (must equal the config's)
 *   92     4     u32 reserved, 0
 *   96     8     f64 β(1)
 *   104    32    data set name, NUL-terminated, zero-filled after the NUL
 *   136    8     u64 training step
 *   144    8     u64 images seen
 *   152    4     u32 number of notes (<= 16)
 *   156    4     u32 number of sections (<= 1024)
 *   160    ...   notes, each: u32 key length (<= 31), u32 value length
 *                (<= 191), key bytes, value bytes (no NUL)
 *          ...   section table, 48 bytes per section: name[32] (NUL-terminated,
 *                zero-filled), u32 type (1 f32, 2 u8, 3 u64), u32 reserved 0,
 *                u64 element count
 *          ...   zero bytes up to a multiple of 8
 *          ...   section data in table order, each followed by zero bytes up
 *                to a multiple of 8 (so every array is 8-byte aligned in the
 *                file and in a buffer holding the whole file)
 *   end-8  8     u64 checksum: 64-bit FNV-1a over every byte before it
 *
 * The file size must equal exactly what the header and table imply. A reader
 * walks the structure first (every length checked against the bytes left,
 * without overflow), then verifies the checksum, then checks the values. */
#define _POSIX_C_SOURCE 200809L

#include "bfn/model_io.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char model_magic[8] = {'B', 'F', 'N', 'M', 'O', 'D', 'E', 'L'};

/* Fixed part of the header, and one section table entry (see the layout). */
enum {
    OFF_VERSION = 8,
    OFF_FLAGS = 12,
    OFF_CONFIG = 16,
    OFF_DATA_KHW = 80,
    OFF_RESERVED = 92,
    OFF_BETA1 = 96,
    OFF_DATASET = 104,
    OFF_STEP = 136,
    OFF_IMAGES = 144,
    OFF_N_NOTES = 152,
    OFF_N_SECTIONS = 156,
    FIXED_HEADER_BYTES = 160,
    NOTE_HEADER_BYTES = 8,
    TABLE_ENTRY_BYTES = 48,
    CHECKSUM_BYTES = 8,
    CONFIG_LEVELS = 5
};

_Static_assert(BFN_NET_MAX_LEVELS == CONFIG_LEVELS,
               "format version 1 stores exactly 5 channel multipliers");

/* ---- little-endian encoding -------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_i32(uint8_t *p, int v) { put_u32(p, (uint32_t)v); }

static int get_i32(const uint8_t *p)
{
    uint32_t u = get_u32(p);
    int32_t v;
    memcpy(&v, &u, sizeof v); /* two's complement reinterpretation, no UB */
    return v;
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    put_u32(p, u);
}

static float get_f32(const uint8_t *p)
{
    uint32_t u = get_u32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void put_f64(uint8_t *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    put_u64(p, u);
}

static double get_f64(const uint8_t *p)
{
    uint64_t u = get_u64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static int host_is_little_endian(void)
{
    const uint32_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* Reverses each esize-byte element of n in place (big-endian hosts only). */
static void swap_elements(uint8_t *p, size_t n, size_t esize)
{
    if (esize < 2)
        return;
    for (size_t i = 0; i < n; i++, p += esize)
        for (size_t a = 0, b = esize - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

static size_t pad8(uint64_t n) { return (size_t)((8 - n % 8) % 8); }

uint64_t bfn_model_checksum(uint64_t h, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3); /* FNV 64-bit prime */
    }
    return h;
}

/* ---- types, names, text ------------------------------------------------ */

const char *bfn_model_type_str(bfn_model_type t)
{
    switch (t) {
    case BFN_MODEL_F32: return "f32";
    case BFN_MODEL_U8: return "u8";
    case BFN_MODEL_U64: return "u64";
    }
    return "?";
}

size_t bfn_model_type_size(bfn_model_type t)
{
    switch (t) {
    case BFN_MODEL_F32: return 4;
    case BFN_MODEL_U8: return 1;
    case BFN_MODEL_U64: return 8;
    }
    return 0;
}

static int is_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

/* Text may be UTF-8; only control characters (which would break `bfn info`
 * lines and messages) are refused. */
static int is_text_char(unsigned char c) { return c >= 0x20 && c != 0x7f; }

/* NULL if s (at most cap bytes read) is a valid name / text shorter than cap,
 * else what is wrong with it. */
static const char *string_problem(const char *s, size_t cap, int name_rules)
{
    size_t len = strnlen(s, cap);
    if (len == cap)
        return "is too long or not terminated";
    if (name_rules && len == 0)
        return "is empty";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (name_rules ? !is_name_char(c) : !is_text_char(c))
            return name_rules ? "has a character outside [A-Za-z0-9_.-]"
                              : "has a control character";
    }
    return NULL;
}

/* As string_problem for a fixed-size field read from a file, which must also
 * be zero after its terminating NUL (so equal contents mean equal bytes). */
static const char *field_problem(const uint8_t *f, size_t cap, int name_rules)
{
    const char *why = string_problem((const char *)f, cap, name_rules);
    if (why)
        return why;
    for (size_t i = strnlen((const char *)f, cap); i < cap; i++)
        if (f[i] != 0)
            return "has non-zero bytes after its terminating NUL";
    return NULL;
}

/* A printable copy of a possibly invalid name field, for messages. */
static void printable_name(char out[BFN_MODEL_SECTION_NAME_MAX], const uint8_t *f)
{
    size_t i = 0;
    for (; i < BFN_MODEL_SECTION_NAME_MAX - 1 && f[i]; i++)
        out[i] = (f[i] >= 0x20 && f[i] < 0x7f) ? (char)f[i] : '?';
    out[i] = '\0';
}

static const char *errno_str(int e, char *buf, size_t n)
{
    if (strerror_r(e, buf, n) != 0)
        snprintf(buf, n, "error %d", e);
    return buf;
}

/* ---- meta ---------------------------------------------------------------- */

void bfn_model_meta_init(bfn_model_meta *meta, const bfn_net_config *cfg)
{
    memset(meta, 0, sizeof *meta);
    if (cfg)
        meta->config = *cfg;
}

static int find_note(const bfn_model_meta *meta, const char *key)
{
    int n = meta->n_notes < 0 ? 0 : meta->n_notes > BFN_MODEL_NOTES_MAX ? BFN_MODEL_NOTES_MAX
                                                                         : meta->n_notes;
    for (int i = 0; i < n; i++)
        if (strncmp(meta->notes[i].key, key, BFN_MODEL_NOTE_KEY_MAX) == 0)
            return i;
    return -1;
}

bfn_status bfn_model_meta_set_note(bfn_model_meta *meta, const char *key, const char *value,
                                   bfn_err *err)
{
    if (!meta || !key || !value)
        return bfn_err_set(err, BFN_ERR_ARG, "model note: NULL argument");
    const char *why = string_problem(key, BFN_MODEL_NOTE_KEY_MAX, 1);
    if (why)
        return bfn_err_set(err, BFN_ERR_ARG, "model note key \"%.40s\" %s (at most %d chars)",
                           key, why, BFN_MODEL_NOTE_KEY_MAX - 1);
    why = string_problem(value, BFN_MODEL_NOTE_VALUE_MAX, 0);
    if (why)
        return bfn_err_set(err, BFN_ERR_ARG, "model note \"%s\": value %s (at most %d chars)",
                           key, why, BFN_MODEL_NOTE_VALUE_MAX - 1);
    int i = find_note(meta, key);
    if (i < 0) {
        if (meta->n_notes < 0 || meta->n_notes >= BFN_MODEL_NOTES_MAX)
            return bfn_err_set(err, BFN_ERR_ARG, "model note \"%s\": all %d notes are used",
                               key, BFN_MODEL_NOTES_MAX);
        i = meta->n_notes++;
        snprintf(meta->notes[i].key, sizeof meta->notes[i].key, "%s", key);
    }
    snprintf(meta->notes[i].value, sizeof meta->notes[i].value, "%s", value);
    return BFN_OK;
}

const char *bfn_model_meta_note(const bfn_model_meta *meta, const char *key)
{
    int i = (meta && key) ? find_note(meta, key) : -1;
    return i < 0 ? NULL : meta->notes[i].value;
}

/* Writes what is wrong with meta into why and returns 1, or returns 0. */
static int meta_problem(const bfn_model_meta *m, char *why, size_t cap)
{
    const bfn_net_config *c = &m->config;
    const char *p;
    if (c->K < BFN_MODEL_K_MIN || c->K > BFN_MODEL_K_MAX) {
        snprintf(why, cap, "K = %d is not in [%d, %d]", c->K, BFN_MODEL_K_MIN, BFN_MODEL_K_MAX);
        return 1;
    }
    if (c->H < BFN_MODEL_SIDE_MIN || c->H > BFN_MODEL_SIDE_MAX || c->W < BFN_MODEL_SIDE_MIN ||
        c->W > BFN_MODEL_SIDE_MAX) {
        snprintf(why, cap, "image size %d x %d is outside [%d, %d]", c->H, c->W,
                 BFN_MODEL_SIDE_MIN, BFN_MODEL_SIDE_MAX);
        return 1;
    }
    if (c->n_levels < 1 || c->n_levels > BFN_NET_MAX_LEVELS) {
        snprintf(why, cap, "n_levels = %d is not in [1, %d]", c->n_levels, BFN_NET_MAX_LEVELS);
        return 1;
    }
    /* !(x > 0) also catches NaN. */
    if (!(m->beta1 > 0.0) || !(m->beta1 <= BFN_MODEL_BETA1_MAX)) {
        snprintf(why, cap, "beta(1) = %g is not in (0, %g]", m->beta1, BFN_MODEL_BETA1_MAX);
        return 1;
    }
    if ((p = string_problem(m->dataset, BFN_MODEL_DATASET_MAX, 0))) {
        snprintf(why, cap, "data set name %s (at most %d chars)", p, BFN_MODEL_DATASET_MAX - 1);
        return 1;
    }
    if (m->n_notes < 0 || m->n_notes > BFN_MODEL_NOTES_MAX) {
        snprintf(why, cap, "%d notes, at most %d allowed", m->n_notes, BFN_MODEL_NOTES_MAX);
        return 1;
    }
    for (int i = 0; i < m->n_notes; i++) {
        const bfn_model_note *nt = &m->notes[i];
        if ((p = string_problem(nt->key, BFN_MODEL_NOTE_KEY_MAX, 1))) {
            snprintf(why, cap, "note %d key %s", i, p);
            return 1;
        }
        if ((p = string_problem(nt->value, BFN_MODEL_NOTE_VALUE_MAX, 0))) {
            snprintf(why, cap, "note \"%s\" value %s", nt->key, p);
            return 1;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(m->notes[j].key, nt->key) == 0) {
                snprintf(why, cap, "note key \"%s\" appears twice", nt->key);
                return 1;
            }
    }
    return 0;
}

bfn_status bfn_model_meta_check(const bfn_model_meta *meta, bfn_err *err)
{
    char why[256];
    if (!meta)
        return bfn_err_set(err, BFN_ERR_ARG, "model header: NULL");
    if (meta_problem(meta, why, sizeof why))
        return bfn_err_set(err, BFN_ERR_ARG, "model header: %s", why);
    return BFN_OK;
}

/* ---- save ---------------------------------------------------------------- */

static bfn_status check_sections_for_save(const char *path, const bfn_model_section *sec, int n,
                                          uint64_t *data_bytes, bfn_err *err)
{
    /* Keeps the total file size far from overflowing a uint64 or an off_t. */
    const uint64_t limit = UINT64_C(1) << 60;
    uint64_t total = 0;
    if (n < 0 || n > BFN_MODEL_SECTIONS_MAX)
        return bfn_err_set(err, BFN_ERR_ARG, "%s: %d sections, at most %d allowed", path, n,
                           BFN_MODEL_SECTIONS_MAX);
    if (n > 0 && !sec)
        return bfn_err_set(err, BFN_ERR_ARG, "%s: section list is NULL", path);
    for (int i = 0; i < n; i++) {
        const bfn_model_section *s = &sec[i];
        const char *why = string_problem(s->name, BFN_MODEL_SECTION_NAME_MAX, 1);
        if (why)
            return bfn_err_set(err, BFN_ERR_ARG,
                               "%s: section %d name \"%.*s\" %s (at most %d chars)", path, i,
                               BFN_MODEL_SECTION_NAME_MAX, s->name, why,
                               BFN_MODEL_SECTION_NAME_MAX - 1);
        size_t esize = bfn_model_type_size(s->type);
        if (esize == 0)
            return bfn_err_set(err, BFN_ERR_ARG, "%s: section \"%s\" has unknown type %d", path,
                               s->name, (int)s->type);
        if (s->count > 0 && !s->data)
            return bfn_err_set(err, BFN_ERR_ARG, "%s: section \"%s\" has %llu values but no data",
                               path, s->name, (unsigned long long)s->count);
        if (s->count > (limit - total) / esize)
            return bfn_err_set(err, BFN_ERR_ARG, "%s: section \"%s\" is too large (%llu values)",
                               path, s->name, (unsigned long long)s->count);
        total += s->count * esize + pad8(s->count * esize);
        for (int j = 0; j < i; j++)
            if (strcmp(sec[j].name, s->name) == 0)
                return bfn_err_set(err, BFN_ERR_ARG, "%s: section name \"%s\" appears twice",
                                   path, s->name);
    }
    *data_bytes = total;
    return BFN_OK;
}

/* Header, notes and section table, padded to a multiple of 8. */
static uint8_t *encode_header(const bfn_model_meta *m, const bfn_model_section *sec, int n,
                              size_t *size_out)
{
    size_t size = FIXED_HEADER_BYTES;
    for (int i = 0; i < m->n_notes; i++)
        size += NOTE_HEADER_BYTES + strlen(m->notes[i].key) + strlen(m->notes[i].value);
    size += (size_t)n * TABLE_ENTRY_BYTES;
    size += pad8(size);
    uint8_t *h = calloc(1, size);
    if (!h)
        return NULL;

    const bfn_net_config *c = &m->config;
    memcpy(h, model_magic, sizeof model_magic);
    put_u32(h + OFF_VERSION, BFN_MODEL_FORMAT_VERSION);
    put_u32(h + OFF_FLAGS, 0);
    uint8_t *q = h + OFF_CONFIG;
    put_i32(q, c->K), q += 4;
    put_i32(q, c->H), q += 4;
    put_i32(q, c->W), q += 4;
    put_i32(q, c->base_ch), q += 4;
    put_i32(q, c->n_levels), q += 4;
    for (int l = 0; l < CONFIG_LEVELS; l++)
        put_i32(q, c->ch_mult[l]), q += 4;
    put_i32(q, c->n_res), q += 4;
    put_i32(q, c->attn_levels), q += 4;
    put_i32(q, c->n_heads), q += 4;
    put_i32(q, c->temb_dim), q += 4;
    put_i32(q, c->groups), q += 4;
    put_f32(q, c->dropout);
    put_i32(h + OFF_DATA_KHW, c->K);
    put_i32(h + OFF_DATA_KHW + 4, c->H);
    put_i32(h + OFF_DATA_KHW + 8, c->W);
    put_u32(h + OFF_RESERVED, 0);
    put_f64(h + OFF_BETA1, m->beta1);
    memcpy(h + OFF_DATASET, m->dataset, strlen(m->dataset)); /* rest stays zero */
    put_u64(h + OFF_STEP, m->step);
    put_u64(h + OFF_IMAGES, m->images_seen);
    put_u32(h + OFF_N_NOTES, (uint32_t)m->n_notes);
    put_u32(h + OFF_N_SECTIONS, (uint32_t)n);

    q = h + FIXED_HEADER_BYTES;
    for (int i = 0; i < m->n_notes; i++) {
        size_t kl = strlen(m->notes[i].key), vl = strlen(m->notes[i].value);
        put_u32(q, (uint32_t)kl);
        put_u32(q + 4, (uint32_t)vl);
        memcpy(q + NOTE_HEADER_BYTES, m->notes[i].key, kl);
        memcpy(q + NOTE_HEADER_BYTES + kl, m->notes[i].value, vl);
        q += NOTE_HEADER_BYTES + kl + vl;
    }
    for (int i = 0; i < n; i++, q += TABLE_ENTRY_BYTES) {
        memcpy(q, sec[i].name, strlen(sec[i].name));
        put_u32(q + 32, (uint32_t)sec[i].type);
        put_u32(q + 36, 0);
        put_u64(q + 40, sec[i].count);
    }
    *size_out = size;
    return h;
}

typedef struct {
    FILE *f;
    uint64_t hash; /* FNV-1a of everything written so far */
} model_writer;

static int write_bytes(model_writer *w, const void *p, size_t n)
{
    w->hash = bfn_model_checksum(w->hash, p, n);
    return fwrite(p, 1, n, w->f) == n;
}

/* Section data in little-endian order, then its zero padding. */
static int write_section_data(model_writer *w, const bfn_model_section *s)
{
    static const uint8_t zeros[8] = {0};
    size_t esize = bfn_model_type_size(s->type);
    uint64_t bytes = s->count * esize;
    const uint8_t *src = s->data;
    if (host_is_little_endian() || esize == 1) {
        /* Chunks keep each fwrite size within size_t on 32-bit hosts. */
        for (uint64_t off = 0; off < bytes;) {
            size_t chunk = bytes - off > (UINT64_C(1) << 24) ? (size_t)1 << 24
                                                              : (size_t)(bytes - off);
            if (!write_bytes(w, src + off, chunk))
                return 0;
            off += chunk;
        }
    } else {
        uint8_t tmp[8192];
        for (uint64_t off = 0; off < bytes;) {
            size_t chunk = bytes - off > sizeof tmp ? sizeof tmp : (size_t)(bytes - off);
            memcpy(tmp, src + off, chunk);
            swap_elements(tmp, chunk / esize, esize);
            if (!write_bytes(w, tmp, chunk))
                return 0;
            off += chunk;
        }
    }
    return write_bytes(w, zeros, pad8(bytes));
}

/* Makes the rename itself durable; best effort, since some file systems
 * refuse fsync on directories and the data is already safe in the file. */
static void sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

/* A save killed between creating "<path>.tmp-<pid>" and renaming it leaves
 * that file behind. After each good save, remove such leftovers whose
 * process no longer exists; a live process's temporary is left alone. */
void bfn_file_remove_dead_temps(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    char *dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    size_t blen = strlen(base);
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d) {
        free(dir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strncmp(name, base, blen) != 0 || strncmp(name + blen, ".tmp-", 5) != 0)
            continue;
        const char *digits = name + blen + 5;
        char *end;
        errno = 0;
        long pid = strtol(digits, &end, 10);
        if (end == digits || *end || errno || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        size_t cap = strlen(dir) + strlen(name) + 2;
        char *full = malloc(cap);
        if (full) {
            snprintf(full, cap, "%s/%s", dir, name);
            (void)unlink(full);
            free(full);
        }
    }
    closedir(d);
    free(dir);
}

/* The one way files are replaced: fill(f, ctx) writes the contents to
 * "<path>.tmp-<pid>" (returns 0 on a write error), which is flushed, fsynced
 * and renamed over path, so a reader or a crash sees the old file or the new
 * one, never a part; then dead temporaries go. On failure the temporary is
 * removed and path is untouched. */
static bfn_status replace_file(const char *path, int (*fill)(FILE *f, void *ctx), void *ctx,
                               bfn_err *err)
{
    char ebuf[128];
    size_t tmp_cap = strlen(path) + 32;
    char *tmp = malloc(tmp_cap);
    if (!tmp)
        return bfn_err_set(err, BFN_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, tmp_cap, "%s.tmp-%ld", path, (long)getpid());
    bfn_status st;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!f) {
        st = bfn_err_set(err, BFN_ERR_IO, "%s: cannot create temporary file %s: %s", path, tmp,
                         errno_str(errno, ebuf, sizeof ebuf));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        return st;
    }
    /* a full disk often shows up only when buffers are flushed */
    int ok = fill(f, ctx) && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok)
        st = bfn_err_set(err, BFN_ERR_IO, "%s: writing %s failed: %s", path, tmp,
                         errno_str(e, ebuf, sizeof ebuf));
    else if (rename(tmp, path) != 0)
        st = bfn_err_set(err, BFN_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp,
                         errno_str(errno, ebuf, sizeof ebuf));
    else
        st = BFN_OK;
    if (st != BFN_OK) {
        unlink(tmp);
    } else {
        sync_parent_dir(path);
        bfn_file_remove_dead_temps(path);
    }
    free(tmp);
    return st;
}

typedef struct {
    const void *data;
    size_t n;
} bytes_ctx;

static int fill_bytes(FILE *f, void *ctx)
{
    const bytes_ctx *b = ctx;
    return fwrite(b->data, 1, b->n, f) == b->n;
}

bfn_status bfn_file_replace(const char *path, const void *data, size_t n, bfn_err *err)
{
    bytes_ctx b = {data, n};
    return replace_file(path, fill_bytes, &b, err);
}

typedef struct {
    const uint8_t *header;
    size_t hsize;
    const bfn_model_section *sec;
    int n;
} model_ctx;

/* Header, section data, then the checksum of both. */
static int fill_model(FILE *f, void *ctx)
{
    const model_ctx *m = ctx;
    model_writer w = {f, BFN_MODEL_CHECKSUM_INIT};
    int ok = write_bytes(&w, m->header, m->hsize);
    for (int i = 0; ok && i < m->n; i++)
        ok = write_section_data(&w, &m->sec[i]);
    if (!ok)
        return 0;
    uint8_t sum[CHECKSUM_BYTES];
    put_u64(sum, w.hash);
    return fwrite(sum, 1, sizeof sum, f) == sizeof sum;
}

bfn_status bfn_model_save(const char *path, const bfn_model_meta *meta,
                          const bfn_model_section *sec, int n, bfn_err *err)
{
    char why[256];
    uint64_t data_bytes;
    if (!path || !*path || !meta)
        return bfn_err_set(err, BFN_ERR_ARG, "model save: NULL or empty path or header");
    if (meta_problem(meta, why, sizeof why))
        return bfn_err_set(err, BFN_ERR_ARG, "%s: refusing to save: %s", path, why);
    bfn_status st = check_sections_for_save(path, sec, n, &data_bytes, err);
    if (st != BFN_OK)
        return st;
    model_ctx m = {NULL, 0, sec, n};
    uint8_t *header = encode_header(meta, sec, n, &m.hsize);
    if (!header)
        return bfn_err_set(err, BFN_ERR_NOMEM, "%s: out of memory preparing the header", path);
    m.header = header;
    st = replace_file(path, fill_model, &m, err);
    free(header);
    return st;
}

/* ---- load ---------------------------------------------------------------- */

bfn_status bfn_file_read(const char *path, uint8_t **buf_out, size_t *size_out, bfn_err *err)
{
    char ebuf[128];
    struct stat stt;
    FILE *f = fopen(path, "rb");
    if (!f)
        return bfn_err_set(err, BFN_ERR_IO, "%s: cannot open: %s", path,
                           errno_str(errno, ebuf, sizeof ebuf));
    if (fstat(fileno(f), &stt) != 0) {
        int e = errno;
        fclose(f);
        return bfn_err_set(err, BFN_ERR_IO, "%s: cannot stat: %s", path,
                           errno_str(e, ebuf, sizeof ebuf));
    }
    if (!S_ISREG(stt.st_mode)) {
        fclose(f);
        return bfn_err_set(err, BFN_ERR_IO, "%s: not a regular file", path);
    }
    if (stt.st_size < 0 || (uintmax_t)stt.st_size > (uintmax_t)(SIZE_MAX / 2)) {
        fclose(f);
        return bfn_err_set(err, BFN_ERR_FORMAT, "%s: file size %lld is too large", path,
                           (long long)stt.st_size);
    }
    size_t size = (size_t)stt.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        fclose(f);
        return bfn_err_set(err, BFN_ERR_NOMEM, "%s: cannot allocate %zu bytes to read it", path,
                           size);
    }
    errno = 0;
    size_t got = fread(buf, 1, size, f);
    int e = ferror(f) ? errno : 0;
    int short_read = got != size || e != 0;
    fclose(f);
    if (short_read) {
        free(buf);
        return bfn_err_set(err, BFN_ERR_IO, "%s: read %zu of %zu bytes: %s", path, got, size,
                           e ? errno_str(e, ebuf, sizeof ebuf) : "file shrank while reading");
    }
    *buf_out = buf;
    *size_out = size;
    return BFN_OK;
}

/* Where the variable-length parts of a file lie, from the structural walk. */
typedef struct {
    uint32_t n_notes, n_sections;
    size_t note_off[BFN_MODEL_NOTES_MAX]; /* offset of each note's length pair */
    size_t table_off;                     /* first section table entry */
    size_t *data_off;                     /* (n_sections) offset of each array */
    size_t end;                           /* offset of the checksum */
} model_layout;

/* Walks header, notes, table and data checking every length against the
 * bytes that remain (written as "need <= size - pos" so nothing overflows). */
static bfn_status walk_layout(const char *path, const uint8_t *p, size_t size, model_layout *L,
                              bfn_err *err)
{
    char name[BFN_MODEL_SECTION_NAME_MAX];
    if (size < FIXED_HEADER_BYTES)
        return bfn_err_set(err, BFN_ERR_FORMAT,
                           "%s: truncated: %zu bytes, the fixed header alone needs %d", path,
                           size, FIXED_HEADER_BYTES);
    L->n_notes = get_u32(p + OFF_N_NOTES);
    L->n_sections = get_u32(p + OFF_N_SECTIONS);
    if (L->n_notes > BFN_MODEL_NOTES_MAX)
        return bfn_err_set(err, BFN_ERR_FORMAT, "%s: header claims %u notes, at most %d allowed",
                           path, L->n_notes, BFN_MODEL_NOTES_MAX);
    if (L->n_sections > BFN_MODEL_SECTIONS_MAX)
        return bfn_err_set(err, BFN_ERR_FORMAT,
                           "%s: header claims %u sections, at most %d allowed", path,
                           L->n_sections, BFN_MODEL_SECTIONS_MAX);

    size_t pos = FIXED_HEADER_BYTES;
    for (uint32_t i = 0; i < L->n_notes; i++) {
        if (size - pos < NOTE_HEADER_BYTES)
            return bfn_err_set(err, BFN_ERR_FORMAT, "%s: truncated inside note %u at byte %zu",
                               path, i, size);
        uint32_t kl = get_u32(p + pos), vl = get_u32(p + pos + 4);
        if (kl >= BFN_MODEL_NOTE_KEY_MAX || vl >= BFN_MODEL_NOTE_VALUE_MAX)
            return bfn_err_set(err, BFN_ERR_FORMAT,
                               "%s: note %u claims key length %u and value length %u "
                               "(limits %d and %d)",
                               path, i, kl, vl, BFN_MODEL_NOTE_KEY_MAX - 1,
                               BFN_MODEL_NOTE_VALUE_MAX - 1);
        L->note_off[i] = pos;
        pos += NOTE_HEADER_BYTES;
        if (size - pos < (size_t)kl + vl)
            return bfn_err_set(err, BFN_ERR_FORMAT, "%s: truncated inside note %u at byte %zu",
                               path, i, size);
        pos += (size_t)kl + vl;
    }

    if ((size - pos) / TABLE_ENTRY_BYTES < L->n_sections)
        return bfn_err_set(err, BFN_ERR_FORMAT,
                           "%s: section table of %u entries runs past the end of the file at "
                           "byte %zu (truncated or corrupt)",
                           path, L->n_sections, size);
    L->table_off = pos;
    pos += (size_t)L->n_sections * TABLE_ENTRY_BYTES;
    if (size - pos < pad8(pos))
        return bfn_err_set(err, BFN_ERR_FORMAT, "%s: truncated after the section table", path);
    pos += pad8(pos);

    for (uint32_t i = 0; i < L->n_sections; i++) {
        const uint8_t *e = p + L->table_off + (size_t)i * TABLE_ENTRY_BYTES;
        uint32_t type = get_u32(e + 32);
        uint64_t count = get_u64(e + 40);
        size_t esize = bfn_model_type_size((bfn_model_type)type);
        printable_name(name, e);
        if (esize == 0)
            return bfn_err_set(err, BFN_ERR_FORMAT, "%s: section %u \"%s\" has unknown type %u",
                               path, i, name, type);
        if (count > (uint64_t)((size - pos) / esize))
            return bfn_err_set(err, BFN_ERR_FORMAT,
                               "%s: section %u \"%s\" claims %llu %s values but only %zu bytes "
                               "remain (truncated or corrupt)",
                               path, i, name, (unsigned long long)count,
                               bfn_model_type_str((bfn_model_type)type), size - pos);
        size_t bytes = (size_t)count * esize;
        L->data_off[i] = pos;
        pos += bytes;
        if (size - pos < pad8(bytes))
            return bfn_err_set(err, BFN_ERR_FORMAT, "%s: truncated after section %u \"%s\"",
                               path, i, name);
        pos += pad8(bytes);
    }

    if (size - pos < CHECKSUM_BYTES)
        return bfn_err_set(err, BFN_ERR_FORMAT,
                           "%s: truncated: %zu bytes, the sections and checksum need %zu", path,
                           size, pos + CHECKSUM_BYTES);
    if (size - pos > CHECKSUM_BYTES)
        return bfn_err_set(err, BFN_ERR_FORMAT,
                           "%s: %zu unexpected bytes after the checksum (file should be %zu "
                           "bytes)",
                           path, size - pos - CHECKSUM_BYTES, pos + CHECKSUM_BYTES);
    L->end = pos;
    return BFN_OK;
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* Decodes and checks the header values (after the checksum passed). */
static bfn_status decode_meta(const char *path, const uint8_t *p, const model_layout *L,
                              bfn_model_meta *m, bfn_err *err)
{
    char why[256];
    const char *prob;
    if (get_u32(p + OFF_FLAGS) != 0)
        return bfn_err_set(err, BFN_ERR_FORMAT, "%s: unknown header flags 0x%x", path,
                           get_u32(p + OFF_FLAGS));
    if (get_u32(p + OFF_RESERVED) != 0)
        return bfn_err_set(err, BFN_ERR_FORMAT, "%s: reserved header field is not zero", path);

    memset(m, 0, sizeof *m);
    bfn_net_config *c = &m->config;
    const uint8_t *q = p + OFF_CONFIG;
    c->K = get_i32(q), q += 4;
    c->H = get_i32(q), q += 4;
    c->W = get_i32(q), q += 4;
    c->base_ch = get_i32(q), q += 4;
    c->n_levels = get_i32(q), q += 4;
    for (int l = 0; l < CONFIG_LEVELS; l++)
        c->ch_mult[l] = get_i32(q), q += 4;
    c->n_res = get_i32(q), q += 4;
    c->attn_levels = get_i32(q), q += 4;
    c->n_heads = get_i32(q), q += 4;
    c->temb_dim = get_i32(q), q += 4;
    c->groups = get_i32(q), q += 4;
    c->dropout = get_f32(q);

    int K = get_i32(p + OFF_DATA_KHW), H = get_i32(p + OFF_DATA_KHW + 4),
        W = get_i32(p + OFF_DATA_KHW + 8);
    if (K != c->K)
        return bfn_err_set(err, BFN_ERR_FORMAT,
                           "%s: header says K = %d but the architecture config says K = %d",
                           path, K, c->K);
    if (H != c->H || W != c->W)
        return bfn_err_set(err, BFN_ERR_FORMAT,
                           "%s: header says images are %d x %d but the architecture config "
                           "says %d x %d",
                           path, H, W, c->H, c->W);

    m->beta1 = get_f64(p + OFF_BETA1);
    if ((prob = field_problem(p + OFF_DATASET, BFN_MODEL_DATASET_MAX, 0)))
        return bfn_err_set(err, BFN_ERR_FORMAT, "%s: data set name %s", path, prob);
    memcpy(m->dataset, p + OFF_DATASET, BFN_MODEL_DATASET_MAX);
    m->step = get_u64(p + OFF_STEP);
    m->images_seen = get_u64(p + OFF_IMAGES);

    m->n_notes = (int)L->n_notes;
    for (uint32_t i = 0; i < L->n_notes; i++) {
        const uint8_t *nq = p + L->note_off[i];
        uint32_t kl = get_u32(nq), vl = get_u32(nq + 4);
        /* Lengths were bounded by walk_layout; embedded NULs are caught below. */
        memcpy(m->notes[i].key, nq + NOTE_HEADER_BYTES, kl);
        m->notes[i].key[kl] = '\0';
        memcpy(m->notes[i].value, nq + NOTE_HEADER_BYTES + kl, vl);
        m->notes[i].value[vl] = '\0';
        if (strlen(m->notes[i].key) != kl || strlen(m->notes[i].value) != vl)
            return bfn_err_set(err, BFN_ERR_FORMAT, "%s: note %u contains a NUL byte", path, i);
    }
    if (meta_problem(m, why, sizeof why))
        return bfn_err_set(err, BFN_ERR_FORMAT, "%s: %s", path, why);
    return BFN_OK;
}

/* Checks names, reserved fields and padding of the sections and fills sec. */
static bfn_status decode_sections(const char *path, uint8_t *p, const model_layout *L,
                                  bfn_model_section *sec, bfn_err *err)
{
    char name[BFN_MODEL_SECTION_NAME_MAX];
    const char *prob;
    int swap = !host_is_little_endian();
    for (uint32_t i = 0; i < L->n_sections; i++) {
        const uint8_t *e = p + L->table_off + (size_t)i * TABLE_ENTRY_BYTES;
        printable_name(name, e);
        if ((prob = field_problem(e, BFN_MODEL_SECTION_NAME_MAX, 1)))
            return bfn_err_set(err, BFN_ERR_FORMAT, "%s: section %u name \"%s\" %s", path, i,
                               name, prob);
        if (get_u32(e + 36) != 0)
            return bfn_err_set(err, BFN_ERR_FORMAT,
                               "%s: section \"%s\" reserved field is not zero", path, name);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(sec[j].name, name) == 0)
                return bfn_err_set(err, BFN_ERR_FORMAT, "%s: duplicate section name \"%s\"",
                                   path, name);
        bfn_model_section *s = &sec[i];
        memcpy(s->name, name, sizeof s->name);
        s->type = (bfn_model_type)get_u32(e + 32);
        s->count = get_u64(e + 40);
        size_t esize = bfn_model_type_size(s->type);
        size_t bytes = (size_t)s->count * esize; /* bounded by the file size in walk_layout */
        uint8_t *d = p + L->data_off[i];
        if (!all_zero(d + bytes, pad8(bytes)))
            return bfn_err_set(err, BFN_ERR_FORMAT, "%s: section \"%s\" padding is not zero",
                               path, name);
        if (swap)
            swap_elements(d, (size_t)s->count, esize);
        s->data = d;
    }
    size_t head_end = L->table_off + (size_t)L->n_sections * TABLE_ENTRY_BYTES;
    if (!all_zero(p + head_end, pad8(head_end)))
        return bfn_err_set(err, BFN_ERR_FORMAT, "%s: padding after the section table is not zero",
                           path);
    return BFN_OK;
}

void bfn_model_sections_free(bfn_model_sections *s)
{
    if (!s)
        return;
    free(s->sec);
    free(s->path);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

bfn_status bfn_model_load(const char *path, bfn_model_meta *meta, bfn_model_sections *out,
                          bfn_err *err)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!path || !meta || !out)
        return bfn_err_set(err, BFN_ERR_ARG, "model load: NULL argument");

    uint8_t *p = NULL;
    size_t size = 0;
    bfn_status st = bfn_file_read(path, &p, &size, err);
    if (st != BFN_OK)
        return st;

    model_layout L;
    memset(&L, 0, sizeof L);
    bfn_model_meta m;
    bfn_model_section *sec = NULL;
    char *path_copy = NULL;

    if (size < sizeof model_magic || memcmp(p, model_magic, sizeof model_magic) != 0) {
        st = bfn_err_set(err, BFN_ERR_FORMAT, "%s: not a model file (bad magic; %zu bytes)",
                         path, size);
        goto fail;
    }
    if (size < OFF_VERSION + 4) {
        st = bfn_err_set(err, BFN_ERR_FORMAT, "%s: truncated: %zu bytes", path, size);
        goto fail;
    }
    uint32_t version = get_u32(p + OFF_VERSION);
    if (version == 0 || version > BFN_MODEL_FORMAT_VERSION) {
        st = bfn_err_set(err, BFN_ERR_FORMAT,
                         version == 0 ? "%s: invalid format version %u"
                                      : "%s: format version %u is newer than this build reads "
                                        "(%d); update bfnviz",
                         path, version, BFN_MODEL_FORMAT_VERSION);
        goto fail;
    }

    /* Sized by the header's count before the walk checks it against the
     * file; the count itself is capped first, so this stays small. */
    uint32_t n_claimed = size >= FIXED_HEADER_BYTES ? get_u32(p + OFF_N_SECTIONS) : 0;
    if (n_claimed > BFN_MODEL_SECTIONS_MAX)
        n_claimed = 0;
    L.data_off = calloc(n_claimed ? n_claimed : 1, sizeof *L.data_off);
    sec = calloc(n_claimed ? n_claimed : 1, sizeof *sec);
    path_copy = strdup(path);
    if (!L.data_off || !sec || !path_copy) {
        st = bfn_err_set(err, BFN_ERR_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    if ((st = walk_layout(path, p, size, &L, err)) != BFN_OK)
        goto fail;

    uint64_t stored = get_u64(p + L.end);
    uint64_t actual = bfn_model_checksum(BFN_MODEL_CHECKSUM_INIT, p, L.end);
    if (stored != actual) {
        st = bfn_err_set(err, BFN_ERR_CHECKSUM,
                         "%s: checksum mismatch (stored %016llx, computed %016llx): the file is "
                         "corrupt",
                         path, (unsigned long long)stored, (unsigned long long)actual);
        goto fail;
    }
    if ((st = decode_meta(path, p, &L, &m, err)) != BFN_OK)
        goto fail;
    if ((st = decode_sections(path, p, &L, sec, err)) != BFN_OK)
        goto fail;

    free(L.data_off);
    *meta = m;
    out->n = (int)L.n_sections;
    out->sec = sec;
    out->path = path_copy;
    out->buf = p;
    return BFN_OK;

fail:
    free(L.data_off);
    free(sec);
    free(path_copy);
    free(p);
    return st;
}

const bfn_model_section *bfn_model_find(const bfn_model_sections *s, const char *name)
{
    if (!s || !name)
        return NULL;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->sec[i].name, name) == 0)
            return &s->sec[i];
    return NULL;
}

bfn_status bfn_model_get(const bfn_model_sections *s, const char *name, bfn_model_type type,
                         uint64_t count, const void **data, bfn_err *err)
{
    const char *path = s && s->path ? s->path : "(model)";
    if (data)
        *data = NULL;
    if (!s || !name || !data)
        return bfn_err_set(err, BFN_ERR_ARG, "model section get: NULL argument");
    const bfn_model_section *sec = bfn_model_find(s, name);
    if (!sec)
        return bfn_err_set(err, BFN_ERR_FORMAT, "%s: has no section \"%s\"", path, name);
    if (sec->type != type)
        return bfn_err_set(err, BFN_ERR_FORMAT, "%s: section \"%s\" holds %s values, expected %s",
                           path, name, bfn_model_type_str(sec->type), bfn_model_type_str(type));
    if (sec->count != count)
        return bfn_err_set(err, BFN_ERR_MISMATCH,
                           "%s: section \"%s\" has %llu values, expected %llu", path, name,
                           (unsigned long long)sec->count, (unsigned long long)count);
    if (type == BFN_MODEL_F32) {
        const float *f = sec->data;
        for (uint64_t i = 0; i < count; i++)
            if (!isfinite(f[i]))
                return bfn_err_set(err, BFN_ERR_NUMERIC,
                                   "%s: section \"%s\" value %llu is %g (weights must be finite)",
                                   path, name, (unsigned long long)i, (double)f[i]);
    }
    *data = sec->data;
    return BFN_OK;
}

/* ---- net level ----------------------------------------------------------- */

bfn_status bfn_model_save_net(const char *path, const bfn_model_meta *meta, bfn_net *net,
                              const bfn_model_section *extra, int n_extra, bfn_err *err)
{
    if (!path || !meta || !net)
        return bfn_err_set(err, BFN_ERR_ARG, "model save: NULL path, header or net");
    if (n_extra < 0 || n_extra >= BFN_MODEL_SECTIONS_MAX || (n_extra > 0 && !extra))
        return bfn_err_set(err, BFN_ERR_ARG, "%s: bad extra section list (%d)", path, n_extra);
    bfn_model_meta m = *meta;
    m.config = *bfn_net_get_config(net);
    bfn_model_section *sec = calloc((size_t)n_extra + 1, sizeof *sec);
    if (!sec)
        return bfn_err_set(err, BFN_ERR_NOMEM, "%s: out of memory", path);
    snprintf(sec[0].name, sizeof sec[0].name, "params");
    sec[0].type = BFN_MODEL_F32;
    sec[0].count = bfn_net_param_count(net);
    sec[0].data = bfn_net_params(net);
    if (n_extra > 0)
        memcpy(sec + 1, extra, (size_t)n_extra * sizeof *sec);
    bfn_status st = bfn_model_save(path, &m, sec, n_extra + 1, err);
    free(sec);
    return st;
}

bfn_status bfn_model_load_net(const char *path, bfn_net **net, bfn_model_meta *meta,
                              int max_batch, bfn_err *err)
{
    if (net)
        *net = NULL;
    if (!path || !net)
        return bfn_err_set(err, BFN_ERR_ARG, "model load: NULL path or net");
    bfn_model_meta m;
    bfn_model_sections s;
    bfn_status st = bfn_model_load(path, &m, &s, err);
    if (st != BFN_OK)
        return st;

    bfn_err e2;
    bfn_err_clear(&e2);
    bfn_net *n = NULL;
    if (bfn_net_config_check(&m.config, &e2) != BFN_OK) {
        st = bfn_err_set(err, BFN_ERR_FORMAT, "%s: invalid architecture config: %s", path,
                         e2.msg);
        goto done;
    }
    /* The weight count the header's architecture implies, checked against
     * the file before the net is built: the header alone must not decide
     * how much memory a load takes (the file's size bounds the section). */
    size_t count;
    if ((st = bfn_net_config_param_count(&m.config, &count, &e2)) != BFN_OK) {
        bfn_err_set(err, st, "%s: %s", path, e2.msg);
        goto done;
    }
    const bfn_model_section *ps = bfn_model_find(&s, "params");
    if (ps && ps->type == BFN_MODEL_F32 && ps->count != count) {
        st = bfn_err_set(err, BFN_ERR_MISMATCH,
                         "%s: section \"params\" has %llu weights but the architecture in its "
                         "header (K = %d, %d x %d, base_ch %d) needs %zu",
                         path, (unsigned long long)ps->count, m.config.K, m.config.H,
                         m.config.W, m.config.base_ch, count);
        goto done;
    }
    const void *params;
    if ((st = bfn_model_get(&s, "params", BFN_MODEL_F32, count, &params, err)) != BFN_OK)
        goto done;
    if ((st = bfn_net_create(&n, &m.config, max_batch, &e2)) != BFN_OK) {
        bfn_err_set(err, st, "%s: %s", path, e2.msg);
        goto done;
    }
    memcpy(bfn_net_params(n), params, count * sizeof(float));
    if (meta)
        *meta = m;
    *net = n;
    n = NULL;

done:
    if (n)
        bfn_net_destroy(n);
    bfn_model_sections_free(&s);
    return st;
}

/* ---- text summary -------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t cap, len;
} text_out;

static void out_printf(text_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out_printf(text_out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *dst = o->len < o->cap ? o->buf + o->len : NULL;
    int n = vsnprintf(dst, dst ? o->cap - o->len : 0, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

size_t bfn_model_format_info(char *buf, size_t cap, const bfn_model_meta *meta,
                             const bfn_model_sections *secs)
{
    text_out o = {buf, buf ? cap : 0, 0};
    if (o.cap > 0)
        buf[0] = '\0';
    if (!meta)
        return 0;
    const bfn_net_config *c = &meta->config;
    int levels = c->n_levels < 1 ? 0 : c->n_levels > BFN_NET_MAX_LEVELS ? BFN_NET_MAX_LEVELS
                                                                        : c->n_levels;
    out_printf(&o, "data set:     %.*s\n", BFN_MODEL_DATASET_MAX, meta->dataset);
    out_printf(&o, "classes K:    %d\n", c->K);
    out_printf(&o, "image:        %d x %d\n", c->H, c->W);
    out_printf(&o, "beta(1):      %g (sqrt %g)\n", meta->beta1,
               meta->beta1 >= 0 ? sqrt(meta->beta1) : NAN);
    out_printf(&o, "step:         %llu\n", (unsigned long long)meta->step);
    out_printf(&o, "images seen:  %llu\n", (unsigned long long)meta->images_seen);
    out_printf(&o, "network:      U-Net, base %d channels, multipliers", c->base_ch);
    for (int l = 0; l < levels; l++)
        out_printf(&o, "%s%d", l ? "," : " ", c->ch_mult[l]);
    out_printf(&o, " (%d levels)\n", c->n_levels);
    out_printf(&o, "res blocks:   %d per level\n", c->n_res);
    if (c->attn_levels <= 0)
        out_printf(&o, "attention:    none\n");
    else if (c->attn_levels == 1)
        out_printf(&o, "attention:    middle and lowest level, heads %d\n", c->n_heads);
    else
        out_printf(&o, "attention:    middle and lowest %d levels, heads %d\n", c->attn_levels,
                   c->n_heads);
    out_printf(&o, "time embed:   %d\n", c->temb_dim);
    out_printf(&o, "groupnorm:    %d groups\n", c->groups);
    out_printf(&o, "dropout:      %g\n", c->dropout);
    int n_notes = meta->n_notes < 0 ? 0 : meta->n_notes > BFN_MODEL_NOTES_MAX
                                              ? BFN_MODEL_NOTES_MAX : meta->n_notes;
    for (int i = 0; i < n_notes; i++)
        out_printf(&o, "note:         %.*s=%.*s\n", BFN_MODEL_NOTE_KEY_MAX, meta->notes[i].key,
                   BFN_MODEL_NOTE_VALUE_MAX, meta->notes[i].value);
    if (secs) {
        for (int i = 0; i < secs->n; i++) {
            const bfn_model_section *s = &secs->sec[i];
            double mib = (double)s->count * (double)bfn_model_type_size(s->type) / 1048576.0;
            out_printf(&o, "section:      %.*s %s x %llu (%.2f MiB)\n",
                       BFN_MODEL_SECTION_NAME_MAX, s->name, bfn_model_type_str(s->type),
                       (unsigned long long)s->count, mib);
        }
    }
    return o.len;
}
