/* Tests of the model / checkpoint container and the net-level save and load:
 * exact round trips, the documented byte layout, and that damaged or absurd
 * files (truncated at every length, every single-byte corruption, lying
 * counts, bad names, absurd header values, non-finite weights, a header
 * whose net would not fit in memory) are refused with an error and never
 * crash; failed saves leave no temporary file and keep the previous file. */
#define _POSIX_C_SOURCE 200809L

#include "bfn/model_io.h"
#include "bfn/net.h"
#include "bfn/rng.h"
#include "check.h"
#include "fixtures.h"

#include <dirent.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256]; /* scratch directory of this run */

/* An error message as a plain pointer, so format checks do not assume the
 * whole message buffer lands in a check's 256-byte description. */
__attribute__((noinline)) static const char *msg_of(const bfn_err *e) { return e->msg; }

/* Runs call first, then checks its status, reporting the message it left in
 * *e (check.h formats the description before evaluating the condition, so
 * the call must not sit inside CHECK). Evaluates to 1 when it passed. */
#define CHECK_STATUS(want, call, e, ...)                                                 \
    ({ bfn_err_clear(e); bfn_status st_ = (call); char what_[160];                       \
       snprintf(what_, sizeof what_, __VA_ARGS__);                                      \
       CHECK_NEAR((want), st_, 0, "%s: status (message: %s)", what_, msg_of(e)); })

static void scratch_path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", g_dir, name);
}

static int write_bytes_to(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static uint8_t *read_bytes_from(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(len > 0 ? (size_t)len : 1);
    *n = p ? fread(p, 1, (size_t)len, f) : 0;
    fclose(f);
    return p;
}

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static void le_f64(uint8_t *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    le64(p, u);
}

/* Rewrites the trailing checksum so a deliberate edit reaches the checks
 * behind it. */
static void reseal(uint8_t *buf, size_t n)
{
    le64(buf + n - 8, bfn_model_checksum(BFN_MODEL_CHECKSUM_INIT, buf, n - 8));
}

/* Offset of the section table: after the fixed header and the notes. */
static size_t table_offset(const uint8_t *buf)
{
    size_t pos = 160;
    for (uint32_t i = 0; i < rd32(buf + 152); i++)
        pos += 8 + rd32(buf + pos) + rd32(buf + pos + 4);
    return pos;
}

static int count_temp_files(void)
{
    int n = 0;
    DIR *d = opendir(g_dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp-"))
            n++;
    if (d)
        closedir(d);
    return n;
}

/* A config the net accepts and that builds fast: 8x8 images, two levels. */
static bfn_model_meta sample_meta(void)
{
    bfn_net_config c = fixture_tiny_config(2, 0.1f);
    bfn_model_meta m;
    bfn_model_meta_init(&m, &c);
    m.beta1 = 3.0;
    snprintf(m.dataset, sizeof m.dataset, "mnist");
    m.step = 12345;
    m.images_seen = UINT64_C(12345) * 64 + (UINT64_C(1) << 40);
    bfn_model_meta_set_note(&m, "lr", "2e-4", NULL);
    bfn_model_meta_set_note(&m, "batch", "64", NULL);
    bfn_model_meta_set_note(&m, "ema", "0.999", NULL);
    return m;
}

/* Four sections covering every type, an odd-length u8 array (padding) and an
 * empty one; values include -0, a denormal, a huge float and u64 extremes. */
enum { N_F32 = 37, N_U64 = 3, N_U8 = 7, N_SAMPLE_SECTIONS = 4 };
static float g_f32[N_F32];
static const uint64_t g_u64[N_U64] = {0, UINT64_MAX, UINT64_C(0x0123456789abcdef)};
static const uint8_t g_u8[N_U8] = {0, 1, 2, 127, 128, 254, 255};

static void sample_sections(bfn_model_section sec[N_SAMPLE_SECTIONS])
{
    for (int i = 0; i < N_F32; i++)
        g_f32[i] = 0.25f * (float)i - 3.0f;
    g_f32[0] = -0.0f;
    g_f32[1] = FLT_MIN / 4;
    g_f32[2] = 1e38f;
    memset(sec, 0, N_SAMPLE_SECTIONS * sizeof *sec);
    snprintf(sec[0].name, sizeof sec[0].name, "params");
    sec[0].type = BFN_MODEL_F32, sec[0].count = N_F32, sec[0].data = g_f32;
    snprintf(sec[1].name, sizeof sec[1].name, "rng");
    sec[1].type = BFN_MODEL_U64, sec[1].count = N_U64, sec[1].data = g_u64;
    snprintf(sec[2].name, sizeof sec[2].name, "mask.bits-1");
    sec[2].type = BFN_MODEL_U8, sec[2].count = N_U8, sec[2].data = g_u8;
    snprintf(sec[3].name, sizeof sec[3].name, "empty");
    sec[3].type = BFN_MODEL_F32, sec[3].count = 0, sec[3].data = NULL;
}

/* Saves the sample container to name; returns its bytes (caller frees). */
static uint8_t *save_sample(const char *name, char *path, size_t path_cap, size_t *size)
{
    bfn_model_meta m = sample_meta();
    bfn_model_section sec[N_SAMPLE_SECTIONS];
    sample_sections(sec);
    bfn_err err = {0};
    bfn_err_clear(&err);
    scratch_path(path, path_cap, name);
    CHECK_STATUS(BFN_OK, bfn_model_save(path, &m, sec, N_SAMPLE_SECTIONS, &err), &err,
                 "sample save");
    return read_bytes_from(path, size);
}

/* Writes buf to a scratch file and loads it; fills err. */
static bfn_status load_bytes(const uint8_t *buf, size_t n, char *path, size_t cap,
                             bfn_err *err)
{
    bfn_model_meta m;
    bfn_model_sections s;
    scratch_path(path, cap, "edited.bfn");
    if (!write_bytes_to(path, buf, n))
        return bfn_err_set(err, BFN_ERR_IO, "test could not write %s", path);
    bfn_status st = bfn_model_load(path, &m, &s, err);
    bfn_model_sections_free(&s);
    return st;
}

/* Loads buf after edit (resealed) and checks it is refused with want and a
 * message naming the file and containing needle. */
static void expect_refused(const uint8_t *orig, size_t n, size_t off, const void *patch,
                           size_t plen, bfn_status want, const char *needle, const char *what)
{
    char path[512];
    bfn_err err = {0};
    bfn_err_clear(&err);
    uint8_t *buf = malloc(n);
    memcpy(buf, orig, n);
    memcpy(buf + off, patch, plen);
    reseal(buf, n);
    bfn_err_clear(&err);
    bfn_status st = load_bytes(buf, n, path, sizeof path, &err);
    CHECK_NEAR(want, st, 0, "%s: status (message: %s)", what, msg_of(&err));
    CHECK(strstr(err.msg, path) != NULL, "%s: message names the file: %s", what, msg_of(&err));
    CHECK(strstr(err.msg, needle) != NULL, "%s: message mentions \"%s\": %s", what, needle,
          msg_of(&err));
    free(buf);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_checksum_matches_fnv1a_reference_vectors(void)
{
    const uint64_t h0 = bfn_model_checksum(BFN_MODEL_CHECKSUM_INIT, "", 0);
    const uint64_t ha = bfn_model_checksum(BFN_MODEL_CHECKSUM_INIT, "a", 1);
    const uint64_t hf = bfn_model_checksum(BFN_MODEL_CHECKSUM_INIT, "foobar", 6);
    CHECK(h0 == UINT64_C(0xcbf29ce484222325), "FNV-1a(\"\") = %016llx", (unsigned long long)h0);
    CHECK(ha == UINT64_C(0xaf63dc4c8601ec8c), "FNV-1a(\"a\") = %016llx", (unsigned long long)ha);
    CHECK(hf == UINT64_C(0x85944171f73967e8), "FNV-1a(\"foobar\") = %016llx",
          (unsigned long long)hf);
    uint64_t split = bfn_model_checksum(bfn_model_checksum(BFN_MODEL_CHECKSUM_INIT, "foo", 3),
                                        "bar", 3);
    CHECK(split == hf, "checksum continued across two calls equals one call");
}

static void test_container_round_trip_preserves_meta_and_all_section_types(void)
{
    char path[512];
    size_t size = 0;
    free(save_sample("roundtrip.bfn", path, sizeof path, &size));
    bfn_model_meta want = sample_meta(), got;
    bfn_model_sections s;
    bfn_err err = {0};
    bfn_err_clear(&err);
    if (!CHECK_STATUS(BFN_OK, bfn_model_load(path, &got, &s, &err), &err, "load"))
        return;

    CHECK(memcmp(&want.config, &got.config, sizeof want.config) == 0,
          "architecture config identical field by field");
    CHECK_NEAR(want.beta1, got.beta1, 0, "beta(1)");
    CHECK(strcmp(got.dataset, "mnist") == 0, "data set name: got \"%s\"", got.dataset);
    CHECK_NEAR(want.step, got.step, 0, "step");
    CHECK(want.images_seen == got.images_seen, "images seen: expected %llu, got %llu",
          (unsigned long long)want.images_seen, (unsigned long long)got.images_seen);
    CHECK_NEAR(3, got.n_notes, 0, "number of notes");
    for (int i = 0; i < want.n_notes && i < got.n_notes; i++) {
        CHECK(strcmp(want.notes[i].key, got.notes[i].key) == 0, "note %d key: %s", i,
              got.notes[i].key);
        CHECK(strcmp(want.notes[i].value, got.notes[i].value) == 0, "note %d value: %s", i,
              got.notes[i].value);
    }
    const char *lr = bfn_model_meta_note(&got, "lr");
    CHECK(lr && strcmp(lr, "2e-4") == 0, "note lookup by key");

    bfn_model_section ref[N_SAMPLE_SECTIONS];
    sample_sections(ref);
    CHECK_NEAR(N_SAMPLE_SECTIONS, s.n, 0, "number of sections");
    for (int i = 0; i < N_SAMPLE_SECTIONS && i < s.n; i++) {
        const bfn_model_section *a = &ref[i], *b = &s.sec[i];
        size_t bytes = (size_t)a->count * bfn_model_type_size(a->type);
        CHECK(strcmp(a->name, b->name) == 0, "section %d name in file order: %s", i, b->name);
        CHECK_NEAR(a->type, b->type, 0, "section %s type", a->name);
        CHECK_NEAR(a->count, b->count, 0, "section %s count", a->name);
        CHECK(bytes == 0 || memcmp(a->data, b->data, bytes) == 0, "section %s bit-exact",
              a->name);
        CHECK(((uintptr_t)b->data % 8) == 0, "section %s data 8-byte aligned", a->name);
        CHECK(bfn_model_find(&s, a->name) == b, "find(\"%s\")", a->name);
    }
    CHECK(bfn_model_find(&s, "nope") == NULL, "find of an absent name is NULL");
    bfn_model_sections_free(&s);
    CHECK(s.sec == NULL && s.buf == NULL && s.n == 0, "free empties the struct");
    bfn_model_sections_free(&s); /* freeing twice is harmless */
}

static void test_file_layout_matches_documented_offsets(void)
{
    char path[512];
    size_t size = 0;
    uint8_t *b = save_sample("layout.bfn", path, sizeof path, &size);
    if (!CHECK(b != NULL, "read back %.200s", path))
        return;
    /* 160 fixed + notes (8+2+4, 8+5+2, 8+3+5) + 4 x 48 table = 397 -> 400;
     * data 148(+4) at 400, 24 at 552, 7(+1) at 576, 0 at 584; checksum 8. */
    CHECK_NEAR(400 + 152 + 24 + 8 + 0 + 8, size, 0, "file size");
    CHECK(memcmp(b, "BFNMODEL", 8) == 0, "magic at 0");
    CHECK_NEAR(1, rd32(b + 8), 0, "version at 8");
    CHECK_NEAR(2, rd32(b + 16), 0, "config K at 16");
    CHECK_NEAR(8, rd32(b + 20), 0, "config H at 20");
    CHECK_NEAR(16, rd32(b + 16 + 4 * 13), 0, "config temb_dim at 68");
    CHECK_NEAR(2, rd32(b + 80), 0, "data K at 80");
    uint64_t bits = rd64(b + 96);
    double beta1;
    memcpy(&beta1, &bits, sizeof beta1);
    CHECK_NEAR(3.0, beta1, 0, "beta(1) f64 at 96");
    CHECK(strcmp((const char *)b + 104, "mnist") == 0, "data set at 104");
    CHECK_NEAR(12345, rd64(b + 136), 0, "step at 136");
    CHECK_NEAR(3, rd32(b + 152), 0, "note count at 152");
    CHECK_NEAR(4, rd32(b + 156), 0, "section count at 156");
    CHECK(rd32(b + 160) == 2 && memcmp(b + 168, "lr2e-4", 6) == 0, "first note at 160");
    CHECK_NEAR(205, table_offset(b), 0, "table offset");
    CHECK(strcmp((const char *)b + 205, "params") == 0, "first table entry name");
    CHECK_NEAR(N_F32, rd64(b + 205 + 40), 0, "first table entry count");
    float f3;
    uint32_t u3 = rd32(b + 400 + 12);
    memcpy(&f3, &u3, sizeof f3);
    CHECK_NEAR(g_f32[3], f3, 0, "params[3] little-endian at 412");
    CHECK(rd32(b + 548) == 0, "f32 data then four zero pad bytes");
    CHECK(rd64(b + 552 + 8) == UINT64_MAX, "rng[1] at 560");
    CHECK(b[576 + 6] == 255 && b[576 + 7] == 0, "u8 data then one zero pad byte");
    CHECK(rd64(b + size - 8) == bfn_model_checksum(BFN_MODEL_CHECKSUM_INIT, b, size - 8),
          "trailing checksum covers every byte before it");
    free(b);
}

static void test_meta_notes_add_replace_and_reject_bad_input(void)
{
    bfn_model_meta m;
    bfn_err err = {0};
    bfn_err_clear(&err);
    bfn_model_meta_init(&m, NULL);
    CHECK_STATUS(BFN_OK, bfn_model_meta_set_note(&m, "opt", "adamw", &err), &err, "add");
    CHECK_STATUS(BFN_OK, bfn_model_meta_set_note(&m, "opt", "sgd", &err), &err, "replace");
    CHECK_NEAR(1, m.n_notes, 0, "replacing keeps one note");
    CHECK(strcmp(bfn_model_meta_note(&m, "opt"), "sgd") == 0, "replaced value");
    CHECK(bfn_model_meta_note(&m, "none") == NULL, "absent key gives NULL");
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_meta_set_note(&m, "a=b", "x", &err), &err,
                 "key with '='");
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_meta_set_note(&m, "", "x", &err), &err, "empty key");
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_meta_set_note(&m, "k", "two\nlines", &err), &err,
                 "value with newline");
    char long_key[40], long_val[300];
    memset(long_key, 'k', 32), long_key[32] = '\0';
    memset(long_val, 'v', 192), long_val[192] = '\0';
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_meta_set_note(&m, long_key, "x", &err), &err,
                 "32-char key");
    long_key[31] = '\0';
    CHECK_STATUS(BFN_OK, bfn_model_meta_set_note(&m, long_key, "x", &err), &err, "31-char key");
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_meta_set_note(&m, "k", long_val, &err), &err,
                 "192-char value");
    long_val[191] = '\0';
    CHECK_STATUS(BFN_OK, bfn_model_meta_set_note(&m, "k", long_val, &err), &err,
                 "191-char value");
    for (int i = m.n_notes; i < BFN_MODEL_NOTES_MAX; i++) {
        char key[16];
        snprintf(key, sizeof key, "n%d", i);
        bfn_model_meta_set_note(&m, key, "1", NULL);
    }
    CHECK_NEAR(BFN_MODEL_NOTES_MAX, m.n_notes, 0, "filled all notes");
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_meta_set_note(&m, "extra", "1", &err), &err,
                 "one note too many");
}

static void test_save_rejects_invalid_input_and_creates_nothing(void)
{
    char path[512];
    bfn_err err = {0};
    bfn_err_clear(&err);
    bfn_model_meta m = sample_meta();
    bfn_model_section sec[N_SAMPLE_SECTIONS];
    scratch_path(path, sizeof path, "invalid.bfn");

    sample_sections(sec);
    snprintf(sec[1].name, sizeof sec[1].name, "params");
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_save(path, &m, sec, N_SAMPLE_SECTIONS, &err), &err,
                 "duplicate section names");
    CHECK(strstr(err.msg, "twice") != NULL, "message says the name appears twice: %s",
          msg_of(&err));
    sample_sections(sec);
    sec[1].name[0] = '\0';
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_save(path, &m, sec, 2, &err), &err, "empty name");
    memset(sec[1].name, 'x', sizeof sec[1].name); /* 32 chars, no NUL */
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_save(path, &m, sec, 2, &err), &err,
                 "unterminated section name");
    snprintf(sec[1].name, sizeof sec[1].name, "has space");
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_save(path, &m, sec, 2, &err), &err,
                 "section name with a space");
    sample_sections(sec);
    sec[1].type = (bfn_model_type)7;
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_save(path, &m, sec, 2, &err), &err, "unknown type");
    sample_sections(sec);
    sec[1].data = NULL;
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_save(path, &m, sec, 2, &err), &err,
                 "NULL data with count 3");
    sample_sections(sec);
    sec[0].count = UINT64_MAX / 2;
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_save(path, &m, sec, 1, &err), &err,
                 "size overflowing 64 bits");
    sample_sections(sec);
    const double bad_beta[] = {0.0, -1.0, 1e30, NAN, INFINITY};
    for (int i = 0; i < 5; i++) {
        m = sample_meta();
        m.beta1 = bad_beta[i];
        CHECK_STATUS(BFN_ERR_ARG, bfn_model_save(path, &m, sec, 1, &err), &err,
                     "beta(1) = %g", bad_beta[i]);
        CHECK(strstr(err.msg, "beta(1)") != NULL, "message names beta(1): %s", msg_of(&err));
    }
    m = sample_meta();
    m.config.K = 1;
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_save(path, &m, sec, 1, &err), &err, "K = 1");
    m = sample_meta();
    m.config.W = 2000;
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_save(path, &m, sec, 1, &err), &err, "W = 2000");
    m = sample_meta();
    m.dataset[3] = '\t';
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_save(path, &m, sec, 1, &err), &err,
                 "tab in the data set name");
    m = sample_meta();
    CHECK_STATUS(BFN_ERR_ARG, bfn_model_save(path, &m, sec, -1, &err), &err,
                 "negative section count");

    struct stat st;
    CHECK(stat(path, &st) != 0, "no file created by refused saves");
    CHECK_NEAR(0, count_temp_files(), 0, "no temporary files left");
}

static void test_truncation_at_every_length_is_a_format_error(void)
{
    char path[512], tpath[512];
    size_t size = 0;
    uint8_t *b = save_sample("trunc_src.bfn", path, sizeof path, &size);
    if (!b)
        return;
    int bad = 0;
    for (size_t len = 0; len < size; len++) {
        bfn_err err = {0};
        bfn_err_clear(&err);
        bfn_status st = load_bytes(b, len, tpath, sizeof tpath, &err);
        int ok = st == BFN_ERR_FORMAT && strstr(err.msg, tpath) != NULL;
        if (!ok && bad++ < 5)
            CHECK(0, "truncated to %zu of %zu bytes: status %d, message \"%s\"", len, size,
                  (int)st, msg_of(&err));
    }
    CHECK_NEAR(0, bad, 0, "truncated lengths (of %zu) not refused as format errors", size);

    uint8_t *longer = malloc(size + 1);
    memcpy(longer, b, size);
    longer[size] = 0;
    bfn_err err = {0};
    bfn_err_clear(&err);
    CHECK_STATUS(BFN_ERR_FORMAT, load_bytes(longer, size + 1, tpath, sizeof tpath, &err), &err,
                 "one trailing byte refused");
    free(longer);
    free(b);
}

static void test_every_single_byte_corruption_is_detected(void)
{
    char path[512], tpath[512];
    size_t size = 0;
    uint8_t *b = save_sample("corrupt_src.bfn", path, sizeof path, &size);
    if (!b)
        return;
    const uint8_t flips[] = {0x01, 0x80, 0xff};
    int by_checksum = 0, by_format = 0, missed = 0;
    for (size_t off = 0; off < size; off++)
        for (size_t k = 0; k < sizeof flips; k++) {
            bfn_err err = {0};
            bfn_err_clear(&err);
            b[off] ^= flips[k];
            bfn_status st = load_bytes(b, size, tpath, sizeof tpath, &err);
            b[off] ^= flips[k];
            if (st == BFN_ERR_CHECKSUM)
                by_checksum++;
            else if (st == BFN_ERR_FORMAT)
                by_format++;
            else if (missed++ < 5)
                CHECK(0, "byte %zu ^ 0x%02x: status %d (%s)", off, flips[k], (int)st,
                      st ? msg_of(&err) : "accepted");
        }
    CHECK_NEAR(0, missed, 0, "corruptions not caught, of %zu", size * sizeof flips);
    CHECK_NEAR((double)size * sizeof flips, by_checksum + by_format, 0, "caught in total");
    printf("  %zu corruptions: %d caught by the checksum, %d by format checks\n",
           size * sizeof flips, by_checksum, by_format);
    free(b);
}

static void test_wrong_magic_and_other_files_are_refused(void)
{
    char path[512];
    size_t size = 0;
    uint8_t *b = save_sample("magic_src.bfn", path, sizeof path, &size);
    if (!b)
        return;
    expect_refused(b, size, 7, "X", 1, BFN_ERR_FORMAT, "magic", "magic BFNMODEX");
    const char *text = "K=2\nbeta1=3\nthis is a text file, not a model\n";
    bfn_err err = {0};
    bfn_err_clear(&err);
    char tpath[512];
    CHECK_STATUS(BFN_ERR_FORMAT, load_bytes((const uint8_t *)text, strlen(text), tpath,
                                          sizeof tpath, &err), &err, "text file refused");

    bfn_model_meta m;
    bfn_model_sections s;
    scratch_path(tpath, sizeof tpath, "does_not_exist.bfn");
    CHECK_STATUS(BFN_ERR_IO, bfn_model_load(tpath, &m, &s, &err), &err, "missing file");
    CHECK(strstr(err.msg, tpath) != NULL, "message names the missing file: %s", msg_of(&err));
    CHECK_STATUS(BFN_ERR_IO, bfn_model_load(g_dir, &m, &s, &err), &err, "directory");
    free(b);
}

static void test_other_format_versions_are_refused(void)
{
    char path[512];
    size_t size = 0;
    uint8_t *b = save_sample("version_src.bfn", path, sizeof path, &size);
    if (!b)
        return;
    uint8_t v[4];
    le32(v, 2);
    expect_refused(b, size, 8, v, 4, BFN_ERR_FORMAT, "version 2", "future version 2");
    le32(v, 0xffffffffu);
    expect_refused(b, size, 8, v, 4, BFN_ERR_FORMAT, "newer", "future version 2^32-1");
    le32(v, 0);
    expect_refused(b, size, 8, v, 4, BFN_ERR_FORMAT, "version 0", "version 0");
    le32(v, 1);
    expect_refused(b, size, 12, v, 4, BFN_ERR_FORMAT, "flags", "unknown flag");
    free(b);
}

static void test_counts_claiming_more_than_the_file_are_refused(void)
{
    char path[512];
    size_t size = 0;
    uint8_t *b = save_sample("counts_src.bfn", path, sizeof path, &size);
    if (!b)
        return;
    size_t tab = table_offset(b);
    uint8_t v4[4], v8[8];
    le32(v4, 0xffffffffu);
    expect_refused(b, size, 156, v4, 4, BFN_ERR_FORMAT, "sections", "2^32-1 sections");
    le32(v4, 1000);
    expect_refused(b, size, 156, v4, 4, BFN_ERR_FORMAT, "past the end", "1000 sections");
    le32(v4, 5);
    expect_refused(b, size, 156, v4, 4, BFN_ERR_FORMAT, "", "one section more than written");
    le32(v4, 3);
    expect_refused(b, size, 156, v4, 4, BFN_ERR_FORMAT, "", "one section fewer than written");
    le32(v4, 17);
    expect_refused(b, size, 152, v4, 4, BFN_ERR_FORMAT, "notes", "17 notes");
    le32(v4, 4);
    expect_refused(b, size, 152, v4, 4, BFN_ERR_FORMAT, "", "one note more than written");
    le32(v4, 0xffffffffu);
    expect_refused(b, size, 160, v4, 4, BFN_ERR_FORMAT, "note 0", "note key length 2^32-1");
    le32(v4, 191);
    expect_refused(b, size, 164, v4, 4, BFN_ERR_FORMAT, "", "note value length 191");
    le64(v8, UINT64_C(1) << 62);
    expect_refused(b, size, tab + 40, v8, 8, BFN_ERR_FORMAT, "claims", "count 2^62");
    le64(v8, UINT64_MAX);
    expect_refused(b, size, tab + 40, v8, 8, BFN_ERR_FORMAT, "claims", "count 2^64-1");
    le64(v8, (UINT64_C(1) << 62) + 1); /* count * 4 wraps to 4 in 64 bits */
    expect_refused(b, size, tab + 40, v8, 8, BFN_ERR_FORMAT, "claims", "count wrapping x4");
    /* (+1 would be a valid file: the extra float is the zero padding.) */
    le64(v8, N_F32 + 2);
    expect_refused(b, size, tab + 40, v8, 8, BFN_ERR_FORMAT, "", "count two more");
    le64(v8, N_U64 + 100);
    expect_refused(b, size, tab + 48 + 40, v8, 8, BFN_ERR_FORMAT, "", "u64 count +100");
    le32(v4, 9);
    expect_refused(b, size, tab + 32, v4, 4, BFN_ERR_FORMAT, "type 9", "unknown type 9");
    le32(v4, BFN_MODEL_U8); /* same table, 37 bytes instead of 148: sizes no longer add up */
    expect_refused(b, size, tab + 32, v4, 4, BFN_ERR_FORMAT, "", "type changed f32 -> u8");
    free(b);
}

static void test_bad_section_names_are_refused(void)
{
    char path[512];
    size_t size = 0;
    uint8_t *b = save_sample("names_src.bfn", path, sizeof path, &size);
    if (!b)
        return;
    size_t tab = table_offset(b);
    uint8_t name[32];
    memset(name, 0, sizeof name);
    memcpy(name, "params", 6);
    expect_refused(b, size, tab + 48, name, 32, BFN_ERR_FORMAT, "duplicate",
                   "second section renamed to params");
    memset(name, 'a', sizeof name);
    expect_refused(b, size, tab, name, 32, BFN_ERR_FORMAT, "not terminated",
                   "32-char unterminated name");
    memset(name, 0, sizeof name);
    expect_refused(b, size, tab, name, 32, BFN_ERR_FORMAT, "empty", "empty name");
    memcpy(name, "pa\nams", 6);
    expect_refused(b, size, tab, name, 32, BFN_ERR_FORMAT, "character", "newline in name");
    memcpy(name, "params\0x", 8);
    expect_refused(b, size, tab, name, 32, BFN_ERR_FORMAT, "after its terminating NUL",
                   "garbage after the name's NUL");
    free(b);
}

static void test_absurd_header_values_are_refused_with_messages(void)
{
    char path[512];
    size_t size = 0;
    uint8_t *b = save_sample("absurd_src.bfn", path, sizeof path, &size);
    if (!b)
        return;
    const double bad_beta[] = {0.0, -3.0, 1e30, 1e4 * (1 + 1e-12), NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 7; i++) {
        uint8_t v[8];
        char what[64];
        le_f64(v, bad_beta[i]);
        snprintf(what, sizeof what, "beta(1) = %g", bad_beta[i]);
        expect_refused(b, size, 96, v, 8, BFN_ERR_FORMAT, "beta(1)", what);
    }
    uint8_t ok_beta[8];
    le_f64(ok_beta, 1e4);
    uint8_t *edited = malloc(size);
    memcpy(edited, b, size);
    memcpy(edited + 96, ok_beta, 8);
    reseal(edited, size);
    char tpath[512];
    bfn_err err = {0};
    bfn_err_clear(&err);
    CHECK_STATUS(BFN_OK, load_bytes(edited, size, tpath, sizeof tpath, &err), &err,
                 "beta(1) = 1e4 (the limit) accepted");

    /* K, H, W set in both the config and the data fields, so they agree. */
    const int bad_k[] = {1, 0, -2, 257, 1 << 30};
    for (int i = 0; i < 5; i++) {
        memcpy(edited, b, size);
        le32(edited + 16, (uint32_t)bad_k[i]);
        le32(edited + 80, (uint32_t)bad_k[i]);
        char what[64];
        snprintf(what, sizeof what, "K = %d", bad_k[i]);
        expect_refused(edited, size, 0, "B", 1, BFN_ERR_FORMAT, what, what);
    }
    const int bad_side[] = {3, 0, -8, 1025, 1 << 20};
    for (int i = 0; i < 5; i++) {
        memcpy(edited, b, size);
        le32(edited + 24, (uint32_t)bad_side[i]); /* config W */
        le32(edited + 88, (uint32_t)bad_side[i]); /* data W */
        char what[64];
        snprintf(what, sizeof what, "W = %d", bad_side[i]);
        expect_refused(edited, size, 0, "B", 1, BFN_ERR_FORMAT, "image size", what);
    }
    uint8_t v4[4];
    le32(v4, 3);
    expect_refused(b, size, 80, v4, 4, BFN_ERR_FORMAT, "K = 3",
                   "header K 3 disagrees with config K 2");
    le32(v4, 16);
    expect_refused(b, size, 88, v4, 4, BFN_ERR_FORMAT, "8 x 16",
                   "header W 16 disagrees with config W 8");
    le32(v4, 9);
    expect_refused(b, size, 16 + 16, v4, 4, BFN_ERR_FORMAT, "n_levels", "n_levels = 9");
    uint8_t ds[32];
    memset(ds, 'm', sizeof ds);
    expect_refused(b, size, 104, ds, 32, BFN_ERR_FORMAT, "data set", "unterminated data set");
    expect_refused(b, size, 104 + 2, "\x1b", 1, BFN_ERR_FORMAT, "data set",
                   "escape in data set");
    expect_refused(b, size, 168, "l\n", 2, BFN_ERR_FORMAT, "note", "newline in note key");
    expect_refused(b, size, 170 + 1, "\0", 1, BFN_ERR_FORMAT, "NUL", "NUL in note value");
    expect_refused(b, size, 92, "\1", 1, BFN_ERR_FORMAT, "reserved", "reserved field");
    expect_refused(b, size, 583, "\1", 1, BFN_ERR_FORMAT, "padding", "non-zero u8 padding");
    expect_refused(b, size, 550, "\1", 1, BFN_ERR_FORMAT, "padding", "non-zero f32 padding");
    expect_refused(b, size, 400 - 1, "\1", 1, BFN_ERR_FORMAT, "padding",
                   "non-zero padding after the table");
    free(edited);
    free(b);

    /* Notes "k1", "k2": note 1's key lies at 160 + 8 + 3 + 8 = 179. */
    bfn_model_meta m = sample_meta();
    m.n_notes = 0;
    bfn_model_meta_set_note(&m, "k1", "a", NULL);
    bfn_model_meta_set_note(&m, "k2", "b", NULL);
    bfn_model_section sec[N_SAMPLE_SECTIONS];
    sample_sections(sec);
    scratch_path(path, sizeof path, "notes_src.bfn");
    CHECK_STATUS(BFN_OK, bfn_model_save(path, &m, sec, 1, &err), &err, "save");
    b = read_bytes_from(path, &size);
    if (!CHECK(b && b[179] == 'k' && b[180] == '2', "note layout as expected"))
        return;
    expect_refused(b, size, 180, "1", 1, BFN_ERR_FORMAT, "twice", "duplicate note key k1");
    free(b);
}

static void test_get_checks_presence_type_count_and_finiteness(void)
{
    char path[512];
    bfn_err err = {0};
    bfn_err_clear(&err);
    bfn_model_meta m = sample_meta(), got;
    float w[4] = {1, 2, NAN, 4};
    bfn_model_section sec[2];
    memset(sec, 0, sizeof sec);
    snprintf(sec[0].name, sizeof sec[0].name, "adam_v");
    sec[0].type = BFN_MODEL_F32, sec[0].count = 2, sec[0].data = w;
    snprintf(sec[1].name, sizeof sec[1].name, "bad");
    sec[1].type = BFN_MODEL_F32, sec[1].count = 4, sec[1].data = w;
    scratch_path(path, sizeof path, "get.bfn");
    CHECK_STATUS(BFN_OK, bfn_model_save(path, &m, sec, 2, &err), &err, "save");
    bfn_model_sections s;
    if (!CHECK_STATUS(BFN_OK, bfn_model_load(path, &got, &s, &err), &err, "load"))
        return;
    const void *d = NULL;
    CHECK_STATUS(BFN_OK, bfn_model_get(&s, "adam_v", BFN_MODEL_F32, 2, &d, &err), &err, "get");
    CHECK(d != NULL && ((const float *)d)[1] == 2.0f, "get returns the data");
    CHECK_STATUS(BFN_ERR_MISMATCH, bfn_model_get(&s, "adam_v", BFN_MODEL_F32, 3, &d, &err), &err,
                 "wrong count");
    CHECK(d == NULL, "data NULL on failure");
    CHECK_STATUS(BFN_ERR_FORMAT, bfn_model_get(&s, "adam_v", BFN_MODEL_U8, 8, &d, &err), &err,
                 "wrong type");
    CHECK_STATUS(BFN_ERR_FORMAT, bfn_model_get(&s, "adam_m", BFN_MODEL_F32, 2, &d, &err), &err,
                 "missing section");
    CHECK_STATUS(BFN_ERR_NUMERIC, bfn_model_get(&s, "bad", BFN_MODEL_F32, 4, &d, &err), &err,
                 "NaN value");
    CHECK(strstr(err.msg, path) && strstr(err.msg, "value 2"),
          "NaN message names file and index: %s", msg_of(&err));
    bfn_model_sections_free(&s);
}

static void test_format_info_lists_header_notes_and_sections(void)
{
    char path[512];
    size_t size = 0;
    free(save_sample("info.bfn", path, sizeof path, &size));
    bfn_model_meta m;
    bfn_model_sections s;
    bfn_err err = {0};
    bfn_err_clear(&err);
    if (!CHECK_STATUS(BFN_OK, bfn_model_load(path, &m, &s, &err), &err, "load"))
        return;
    char buf[4096];
    size_t n = bfn_model_format_info(buf, sizeof buf, &m, &s);
    CHECK_NEAR(strlen(buf), n, 0, "returned length equals the text written");
    const char *want[] = {"data set:     mnist\n", "classes K:    2\n", "image:        8 x 8\n",
                          "beta(1):      3 (sqrt 1.73205)\n", "step:         12345\n",
                          "multipliers 1,2 (2 levels)", "note:         lr=2e-4\n",
                          "note:         ema=0.999\n", "section:      params f32 x 37",
                          "section:      mask.bits-1 u8 x 7", "section:      empty f32 x 0"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        CHECK(strstr(buf, want[i]) != NULL, "info contains \"%s\"", want[i]);
    char small[10];
    size_t n2 = bfn_model_format_info(small, sizeof small, &m, &s);
    CHECK_NEAR(n, n2, 0, "length reported even when the buffer is short");
    CHECK_NEAR(9, strlen(small), 0, "short buffer filled and terminated");
    CHECK_NEAR(n, bfn_model_format_info(NULL, 0, &m, &s), 0, "length query with NULL buffer");
    size_t n3 = bfn_model_format_info(buf, sizeof buf, &m, NULL);
    CHECK(n3 < n && strstr(buf, "section:") == NULL, "no section lines without sections");
    /* the attention line for each number of levels with attention */
    const char *attn_want[] = {"attention:    none\n", "attention:    middle and lowest level, heads",
                               "attention:    middle and lowest 2 levels, heads"};
    for (int a = 0; a < 3; a++) {
        m.config.attn_levels = a;
        bfn_model_format_info(buf, sizeof buf, &m, NULL);
        CHECK(strstr(buf, attn_want[a]) != NULL, "attn_levels %d: info contains \"%s\"", a,
              attn_want[a]);
    }
    bfn_model_sections_free(&s);
}

static void test_save_into_missing_directory_fails_without_temp_file(void)
{
    char dir[512], path[600];
    scratch_path(dir, sizeof dir, "no_such_dir");
    snprintf(path, sizeof path, "%s/model.bfn", dir);
    bfn_model_meta m = sample_meta();
    bfn_model_section sec[N_SAMPLE_SECTIONS];
    sample_sections(sec);
    bfn_err err = {0};
    bfn_err_clear(&err);
    bfn_status st = bfn_model_save(path, &m, sec, N_SAMPLE_SECTIONS, &err);
    CHECK_NEAR(BFN_ERR_IO, st, 0, "status (%s)", msg_of(&err));
    CHECK(strstr(err.msg, path) != NULL, "message names the file: %s", msg_of(&err));
    struct stat sb;
    CHECK(stat(dir, &sb) != 0, "directory not created");
    CHECK_NEAR(0, count_temp_files(), 0, "temporary files in the scratch directory");
}

static void test_failed_save_keeps_previous_file_intact(void)
{
    char path[512], tmp[600];
    size_t size0 = 0, size1 = 0;
    uint8_t *before = save_sample("keep.bfn", path, sizeof path, &size0);
    if (!before)
        return;
    bfn_model_meta m = sample_meta();
    m.step = 99;
    bfn_model_section sec[N_SAMPLE_SECTIONS];
    sample_sections(sec);
    bfn_err err = {0};
    bfn_err_clear(&err);

    /* 1. The temporary name is taken by a directory: creating it fails. */
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    CHECK(mkdir(tmp, 0700) == 0, "test setup: mkdir %.200s", tmp);
    CHECK_STATUS(BFN_ERR_IO, bfn_model_save(path, &m, sec, N_SAMPLE_SECTIONS, &err), &err,
                 "save with blocked temp path");
    uint8_t *after = read_bytes_from(path, &size1);
    CHECK(after && size1 == size0 && memcmp(before, after, size0) == 0,
          "previous file unchanged after failed save (%zu -> %zu bytes)", size0, size1);
    free(after);
    struct stat sb;
    CHECK(stat(tmp, &sb) == 0 && S_ISDIR(sb.st_mode), "the blocking directory was not removed");
    rmdir(tmp);

    /* 2. Writing fails half way (file size limit): the temp file is removed. */
    static float big[100000];
    bfn_model_section bigsec = {"params", BFN_MODEL_F32, 100000, big};
    struct rlimit old;
    int have_limit = getrlimit(RLIMIT_FSIZE, &old) == 0;
    struct rlimit lim = old;
    lim.rlim_cur = 65536;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    if (have_limit && setrlimit(RLIMIT_FSIZE, &lim) == 0) {
        bfn_status st = bfn_model_save(path, &m, &bigsec, 1, &err);
        setrlimit(RLIMIT_FSIZE, &old);
        CHECK_NEAR(BFN_ERR_IO, st, 0, "save past the file size limit (%s)", msg_of(&err));
        CHECK(stat(tmp, &sb) != 0, "temporary file removed after a failed write");
        after = read_bytes_from(path, &size1);
        CHECK(after && size1 == size0 && memcmp(before, after, size0) == 0,
              "previous file unchanged after failed write");
        free(after);
    } else {
        CHECK(0, "test setup: could not lower RLIMIT_FSIZE");
    }
    signal(SIGXFSZ, old_handler);

    /* 3. A save that works replaces the file. */
    CHECK_STATUS(BFN_OK, bfn_model_save(path, &m, sec, N_SAMPLE_SECTIONS, &err), &err,
                 "save after the failures");
    bfn_model_meta got;
    bfn_model_sections s;
    bfn_status st = bfn_model_load(path, &got, &s, &err);
    CHECK(st == BFN_OK && got.step == 99,
          "the new file replaced the old one");
    bfn_model_sections_free(&s);
    CHECK_NEAR(0, count_temp_files(), 0, "temporary files in the scratch directory");
    free(before);
}

/* ---- net level --------------------------------------------------------------- */

static bfn_net *make_net(int K, uint64_t seed)
{
    bfn_net_config c = fixture_tiny_config(K, 0.1f);
    bfn_net *net = NULL;
    bfn_err err = {0};
    bfn_err_clear(&err);
    if (!CHECK_STATUS(BFN_OK, bfn_net_create(&net, &c, 2, &err), &err, "net create"))
        return NULL;
    bfn_net_init_params(net, seed);
    /* Zero-initialised output layers would make every logit equal; random
     * weights everywhere make the forward comparison meaningful. */
    bfn_rng r;
    bfn_rng_init(&r, seed, 99);
    float *p = bfn_net_params(net);
    for (size_t i = 0; i < bfn_net_param_count(net); i++)
        p[i] += 0.05f * (float)bfn_rng_normal(&r);
    return net;
}

static void test_net_round_trip_is_bit_exact_with_equal_logits(void)
{
    char path[512];
    bfn_err err = {0};
    bfn_err_clear(&err);
    bfn_net *a = make_net(2, 7);
    if (!a)
        return;
    bfn_model_meta m = sample_meta();
    m.config.K = 99; /* replaced by the net's own config on save */
    size_t n = bfn_net_param_count(a);
    float *adam = calloc(n, sizeof *adam);
    bfn_model_section extra = {"adam_m", BFN_MODEL_F32, n, adam};
    scratch_path(path, sizeof path, "net.bfn");
    CHECK_STATUS(BFN_OK, bfn_model_save_net(path, &m, a, &extra, 1, &err), &err, "save");

    bfn_net *b = NULL;
    bfn_model_meta got;
    bfn_status st = bfn_model_load_net(path, &b, &got, 2, &err);
    if (!CHECK(st == BFN_OK && b, "load: %s", msg_of(&err))) {
        bfn_net_destroy(a);
        free(adam);
        return;
    }
    CHECK_NEAR(n, bfn_net_param_count(b), 0, "parameter count");
    CHECK(memcmp(bfn_net_params(a), bfn_net_params(b), n * sizeof(float)) == 0,
          "parameters bit-for-bit equal");
    CHECK(memcmp(bfn_net_get_config(a), &got.config, sizeof got.config) == 0,
          "meta config is the net's config");
    CHECK_NEAR(3.0, got.beta1, 0, "beta(1) carried through");

    int D = 8 * 8, B = 2;
    float x[2 * 64], t[2] = {0.3f, 0.9f}, la[2 * 64], lb[2 * 64];
    bfn_rng r;
    bfn_rng_init(&r, 5, 0);
    for (int i = 0; i < B * D; i++)
        x[i] = (float)(2 * bfn_rng_uniform(&r) - 1);
    CHECK(bfn_net_forward(a, x, t, B, 0, NULL, la) == BFN_OK, "forward a");
    CHECK(bfn_net_forward(b, x, t, B, 0, NULL, lb) == BFN_OK, "forward b");
    int differ = 0;
    for (int i = 0; i < B * D; i++)
        differ += memcmp(&la[i], &lb[i], sizeof(float)) != 0;
    CHECK_NEAR(0, differ, 0, "logits differing between saved and loaded net (of %d)", B * D);
    CHECK(la[0] != la[1] || la[1] != la[2], "logits are not all equal (test is meaningful)");
    bfn_net_destroy(a);
    bfn_net_destroy(b);
    free(adam);
}

static void test_truncated_net_file_is_refused_at_sampled_lengths(void)
{
    char path[512], tpath[512];
    bfn_err err = {0};
    bfn_err_clear(&err);
    bfn_net *a = make_net(2, 11);
    if (!a)
        return;
    bfn_model_meta m = sample_meta();
    scratch_path(path, sizeof path, "net_trunc_src.bfn");
    CHECK_STATUS(BFN_OK, bfn_model_save_net(path, &m, a, NULL, 0, &err), &err, "save");
    bfn_net_destroy(a);
    size_t size = 0;
    uint8_t *b = read_bytes_from(path, &size);
    if (!CHECK(b && size > 1000, "net file read back (%zu bytes)", size))
        return;
    scratch_path(tpath, sizeof tpath, "net_trunc.bfn");
    int bad = 0, tried = 0;
    for (size_t len = 0; len < size; len += 1 + size / 97, tried++) {
        bfn_net *n = NULL;
        bfn_status st = BFN_ERR_IO;
        if (write_bytes_to(tpath, b, len))
            st = bfn_model_load_net(tpath, &n, NULL, 1, &err);
        if ((st != BFN_ERR_FORMAT || n != NULL) && bad++ < 5)
            CHECK(0, "net file truncated to %zu of %zu: status %d (%s)", len, size, (int)st,
                  msg_of(&err));
        if (n)
            bfn_net_destroy(n);
    }
    CHECK_NEAR(0, bad, 0, "truncated lengths not refused, of %d tried", tried);
    free(b);
}

static void test_load_net_refuses_non_finite_weights(void)
{
    char path[512];
    bfn_err err = {0};
    bfn_err_clear(&err);
    bfn_net *a = make_net(2, 3);
    if (!a)
        return;
    bfn_model_meta m = sample_meta();
    scratch_path(path, sizeof path, "nan.bfn");
    const float bad[] = {NAN, INFINITY, -INFINITY};
    size_t at = bfn_net_param_count(a) / 2;
    for (int i = 0; i < 3; i++) {
        bfn_net_params(a)[at] = bad[i];
        CHECK_STATUS(BFN_OK, bfn_model_save_net(path, &m, a, NULL, 0, &err), &err, "save");
        bfn_net *b = (bfn_net *)&m; /* must be reset to NULL */
        bfn_status st = bfn_model_load_net(path, &b, NULL, 1, &err);
        CHECK_NEAR(BFN_ERR_NUMERIC, st, 0, "weight %g refused (%s)", bad[i], msg_of(&err));
        CHECK(b == NULL, "net is NULL after a failed load");
        CHECK(strstr(err.msg, path) && strstr(err.msg, "params"),
              "message names file and section: %s", msg_of(&err));
    }
    bfn_net_destroy(a);
}

static void test_load_net_refuses_k_mismatch_and_bad_config(void)
{
    char path[512];
    bfn_err err = {0};
    bfn_err_clear(&err);
    bfn_net *a = make_net(2, 4);
    if (!a)
        return;
    size_t n = bfn_net_param_count(a);
    bfn_model_section sec = {"params", BFN_MODEL_F32, n, bfn_net_params(a)};
    scratch_path(path, sizeof path, "kmismatch.bfn");

    /* Header and config say K = 3 but the weights are those of a K = 2 net. */
    bfn_model_meta m = sample_meta();
    m.config = fixture_tiny_config(3, 0.1f);
    CHECK_STATUS(BFN_OK, bfn_model_save(path, &m, &sec, 1, &err), &err, "save");
    bfn_net *b = NULL;
    CHECK_STATUS(BFN_ERR_MISMATCH, bfn_model_load_net(path, &b, NULL, 1, &err), &err,
                 "K = 3 header with K = 2 weights");
    CHECK(b == NULL && strstr(err.msg, "params"), "message names the section: %s", msg_of(&err));

    m = sample_meta();
    m.config.groups = 3; /* does not divide 8 channels */
    CHECK_STATUS(BFN_OK, bfn_model_save(path, &m, &sec, 1, &err), &err, "save");
    CHECK_STATUS(BFN_ERR_FORMAT, bfn_model_load_net(path, &b, NULL, 1, &err), &err,
                 "invalid config");
    CHECK(b == NULL && strstr(err.msg, "config") && strstr(err.msg, path),
          "message names file and config: %s", msg_of(&err));

    m = sample_meta();
    snprintf(sec.name, sizeof sec.name, "params_raw");
    CHECK_STATUS(BFN_OK, bfn_model_save(path, &m, &sec, 1, &err), &err, "save");
    CHECK_STATUS(BFN_ERR_FORMAT, bfn_model_load_net(path, &b, NULL, 1, &err), &err,
                 "no params section");
    CHECK(b == NULL, "net NULL");
    bfn_net_destroy(a);
}

/* A header whose architecture would need ~3e10 weights (1024 x 1024, five
 * levels of 4096 channels) over a 16-weight "params" section: refused as a
 * count mismatch from the header and the section table alone, before any
 * net is built (building it first would ask for >100 GB, and with the
 * largest batch for more than the address space). */
static void test_load_net_checks_weight_count_before_building_the_net(void)
{
    char path[512];
    bfn_err err = {0};
    bfn_err_clear(&err);
    bfn_model_meta m = sample_meta();
    bfn_net_config *c = &m.config;
    *c = bfn_net_config_default(2, 1024, 1024);
    c->n_levels = 5;
    c->base_ch = 4096;
    for (int l = 0; l < BFN_NET_MAX_LEVELS; l++)
        c->ch_mult[l] = 1;
    c->n_res = BFN_NET_MAX_RES;
    c->temb_dim = 4096;
    size_t need = 0;
    CHECK_STATUS(BFN_OK, bfn_net_config_param_count(c, &need, &err), &err,
                 "count the header's net");
    float w[16] = {0};
    bfn_model_section sec = {"params", BFN_MODEL_F32, 16, w};
    scratch_path(path, sizeof path, "huge_header.bfn");
    CHECK_STATUS(BFN_OK, bfn_model_save(path, &m, &sec, 1, &err), &err, "save");
    char needs[64];
    snprintf(needs, sizeof needs, "needs %zu", need);
    const int batches[2] = {1, 65536};
    for (int i = 0; i < 2; i++) {
        int mb = batches[i];
        bfn_net *net = (bfn_net *)&m; /* must be reset to NULL */
        CHECK_STATUS(BFN_ERR_MISMATCH, bfn_model_load_net(path, &net, NULL, mb, &err), &err,
                     "max_batch %d: 16 weights for a %zu-weight header", mb, need);
        CHECK(net == NULL, "net is NULL after the refusal");
        CHECK(strstr(err.msg, path) && strstr(err.msg, "has 16 weights") &&
                  strstr(err.msg, needs),
              "message names the file and both counts (%s): %s", needs, msg_of(&err));
    }
    CHECK(need > (size_t)1e10, "the header's net has %zu weights (test is meaningful)", need);
}

static void remove_scratch(void)
{
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char p[600];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        if (unlink(p) != 0)
            rmdir(p);
    }
    if (d)
        closedir(d);
    rmdir(g_dir);
}

int main(void)
{
    const char *tmpdir = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/bfn_test_model_io.XXXXXX",
             tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "cannot create a scratch directory from %s\n", g_dir);
        return 1;
    }
    RUN(test_checksum_matches_fnv1a_reference_vectors);
    RUN(test_container_round_trip_preserves_meta_and_all_section_types);
    RUN(test_file_layout_matches_documented_offsets);
    RUN(test_meta_notes_add_replace_and_reject_bad_input);
    RUN(test_save_rejects_invalid_input_and_creates_nothing);
    RUN(test_truncation_at_every_length_is_a_format_error);
    RUN(test_every_single_byte_corruption_is_detected);
    RUN(test_wrong_magic_and_other_files_are_refused);
    RUN(test_other_format_versions_are_refused);
    RUN(test_counts_claiming_more_than_the_file_are_refused);
    RUN(test_bad_section_names_are_refused);
    RUN(test_absurd_header_values_are_refused_with_messages);
    RUN(test_get_checks_presence_type_count_and_finiteness);
    RUN(test_format_info_lists_header_notes_and_sections);
    RUN(test_save_into_missing_directory_fails_without_temp_file);
    RUN(test_failed_save_keeps_previous_file_intact);
    RUN(test_net_round_trip_is_bit_exact_with_equal_logits);
    RUN(test_truncated_net_file_is_refused_at_sampled_lengths);
    RUN(test_load_net_refuses_non_finite_weights);
    RUN(test_load_net_refuses_k_mismatch_and_bad_config);
    RUN(test_load_net_checks_weight_count_before_building_the_net);
    remove_scratch();
    return check_finish();
}
