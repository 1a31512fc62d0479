/* Writes the fuzzers' seed corpora and the set of absurd model files, all
 * made with the engine itself so they follow the current formats:
 *   fuzz_make_seeds <tests/fuzz directory>
 * creates corpus/idx, corpus/model, corpus/args, regress/model/absurd-*.bfn
 * and absurd_models.txt (what each absurd file must be refused with; checked
 * by the fuzz_absurd_models test). Each input starts with the target's mode
 * byte (see fuzz_idx.c, fuzz_model.c, fuzz_args.c). Rerun it after a format
 * change and commit the result. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "bfn/model_io.h"
#include "bfn/net.h"
#include "bfn/train.h"

static const char *g_root;
static FILE *g_manifest;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_make_seeds: %s\n", what);
    exit(1);
}

static void make_dir(const char *rel)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", g_root, rel);
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        die(p);
}

/* <root>/<rel> = mode byte + data */
static void put(const char *rel, int mode, const void *data, size_t n)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", g_root, rel);
    FILE *f = fopen(p, "wb");
    uint8_t m = (uint8_t)mode;
    if (!f || fwrite(&m, 1, 1, f) != 1 || fwrite(data, 1, n, f) != n || fclose(f) != 0)
        die(p);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)len + 1);
    if (!p || fread(p, 1, (size_t)len, f) != (size_t)len)
        die(path);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* ---- IDX ---- */

static size_t idx_bytes(uint8_t *out, int ndim, const uint32_t *dims, const uint8_t *data)
{
    size_t n = 1, at = 4;
    out[0] = 0;
    out[1] = 0;
    out[2] = 0x08;
    out[3] = (uint8_t)ndim;
    for (int d = 0; d < ndim; d++, at += 4) {
        out[at] = (uint8_t)(dims[d] >> 24);
        out[at + 1] = (uint8_t)(dims[d] >> 16);
        out[at + 2] = (uint8_t)(dims[d] >> 8);
        out[at + 3] = (uint8_t)dims[d];
        n *= dims[d];
    }
    memcpy(out + at, data, n);
    return at + n;
}

static size_t gzip_bytes(uint8_t *out, size_t cap, const uint8_t *in, size_t n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2");
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        die("deflate");
    size_t got = cap - z.avail_out;
    deflateEnd(&z);
    return got;
}

/* mode byte + u16 length of the image file + image file + label file */
static void put_pair(const char *rel, int mode, const uint8_t *img, size_t ni, const uint8_t *lab,
                     size_t nl)
{
    uint8_t *b = malloc(2 + ni + nl);
    if (!b)
        die("out of memory");
    b[0] = (uint8_t)ni;
    b[1] = (uint8_t)(ni >> 8);
    memcpy(b + 2, img, ni);
    memcpy(b + 2 + ni, lab, nl);
    put(rel, mode, b, 2 + ni + nl);
    free(b);
}

static void idx_seeds(void)
{
    uint8_t pix[20 * 4 * 4], labels[20], img[4096], lab[64], gz[4096], gzl[256];
    for (size_t i = 0; i < sizeof pix; i++)
        pix[i] = (uint8_t)(i * 37 % 256);
    for (int i = 0; i < 20; i++)
        labels[i] = (uint8_t)(i % 10);
    uint32_t d3[3] = {20, 4, 4}, d1[1] = {20};
    size_t ni = idx_bytes(img, 3, d3, pix), nl = idx_bytes(lab, 1, d1, labels);
    size_t ngz = gzip_bytes(gz, sizeof gz, img, ni), ngzl = gzip_bytes(gzl, sizeof gzl, lab, nl);
    put("corpus/idx/images-20x4x4", 0, img, ni);
    put("corpus/idx/labels-20", 0, lab, nl);
    put("corpus/idx/images-20x4x4.gz", 0, gz, ngz);
    put("corpus/idx/labels-20.gz", 0, gzl, ngzl);
    /* data sets: MNIST train split, two-digit train / val / test */
    put_pair("corpus/idx/set-mnist-train", 1, img, ni, lab, nl);
    put_pair("corpus/idx/set-mnist-test-gz", 1 + 4 * 2, gz, ngz, gzl, ngzl);
    put_pair("corpus/idx/set-twodigit-train", 2, img, ni, lab, nl);
    put_pair("corpus/idx/set-twodigit-val", 2 + 4 * 1, img, ni, lab, nl);
}

/* ---- model files ---- */

static bfn_net_config tiny_config(int K)
{
    bfn_net_config c;
    memset(&c, 0, sizeof c);
    c.K = K;
    c.H = c.W = 4;
    c.base_ch = 2;
    c.n_levels = 1;
    c.ch_mult[0] = 1;
    c.n_res = 0;
    c.attn_levels = 0;
    c.n_heads = 1;
    c.temb_dim = 4;
    c.groups = 1;
    return c;
}

/* 8x8, two levels, attention: still well inside fuzz_model's size limit */
static bfn_net_config attn_config(void)
{
    bfn_net_config c = tiny_config(2);
    c.H = c.W = 8;
    c.n_levels = 2;
    c.ch_mult[1] = 2;
    c.attn_levels = 1;
    c.n_heads = 2;
    c.dropout = 0.1f;
    return c;
}

static bfn_net *make_net(const bfn_net_config *c, int batch)
{
    bfn_net *net = NULL;
    bfn_err err = {0};
    if (bfn_net_create(&net, c, batch, &err) != BFN_OK)
        die(err.msg);
    bfn_net_init_params(net, 5);
    /* the output conv starts at zero; make every weight non-trivial */
    float *p = bfn_net_params(net);
    for (size_t i = 0; i < bfn_net_param_count(net); i++)
        p[i] += 0.001f * (float)(i % 7);
    return net;
}

static bfn_model_meta meta_for(const bfn_net_config *c, double beta1)
{
    bfn_model_meta m;
    bfn_model_meta_init(&m, c);
    m.beta1 = beta1;
    snprintf(m.dataset, sizeof m.dataset, "mnist");
    m.step = 12;
    m.images_seen = 96;
    bfn_model_meta_set_note(&m, "lr", "0.001", NULL);
    return m;
}

static char g_tmp[1024];

/* Saves a net as a model file and returns its bytes. */
static uint8_t *net_file(bfn_net *net, const bfn_model_meta *m, size_t *n)
{
    bfn_err err = {0};
    if (bfn_model_save_net(g_tmp, m, net, NULL, 0, &err) != BFN_OK)
        die(err.msg);
    return slurp(g_tmp, n);
}

static uint8_t *sections_file(const bfn_model_meta *m, const bfn_model_section *s, int n_sec,
                              size_t *n)
{
    bfn_err err = {0};
    if (bfn_model_save(g_tmp, m, s, n_sec, &err) != BFN_OK)
        die(err.msg);
    return slurp(g_tmp, n);
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

static void reseal(uint8_t *b, size_t n)
{
    le64(b + n - 8, bfn_model_checksum(BFN_MODEL_CHECKSUM_INIT, b, n - 8));
}

/* regress/model/absurd-<name>.bfn (flag 0: the checksum is already right),
 * and its manifest line: loader (net or trainer), status, message part. */
static void absurd(const char *name, const uint8_t *b, size_t n, const char *loader,
                   bfn_status want, const char *msg_part)
{
    char rel[256];
    snprintf(rel, sizeof rel, "regress/model/absurd-%s.bfn", name);
    put(rel, 0, b, n);
    fprintf(g_manifest, "absurd-%s.bfn %s %d %s\n", name, loader, (int)want, msg_part);
}

/* A copy of b with bytes at off replaced and the checksum redone. */
static void absurd_patch(const char *name, const uint8_t *b, size_t n, size_t off, const void *v,
                         size_t vn, bfn_status want, const char *msg_part)
{
    uint8_t *c = malloc(n);
    if (!c)
        die("out of memory");
    memcpy(c, b, n);
    memcpy(c + off, v, vn);
    reseal(c, n);
    absurd(name, c, n, "net", want, msg_part);
    free(c);
}

static bfn_status batch_fn(void *user, int B, uint8_t *x, bfn_rng *rng, bfn_err *err)
{
    (void)user;
    (void)err;
    for (int i = 0; i < B * 16; i++)
        x[i] = (uint8_t)(bfn_rng_u64(rng) & 1);
    return BFN_OK;
}

/* A checkpoint of the tiny net after two steps, as a list of sections that
 * the absurd cases then edit. */
static uint8_t *checkpoint_file(size_t *n, bfn_model_meta *meta, bfn_model_sections *secs)
{
    bfn_net_config c = tiny_config(2);
    bfn_net *net = make_net(&c, 2);
    bfn_train_config tc = bfn_train_config_default();
    tc.batch = 2;
    tc.total_steps = 10;
    tc.warmup = 1;
    bfn_trainer *tr = NULL;
    bfn_err err = {0};
    if (bfn_trainer_create(&tr, net, &tc, &err) != BFN_OK)
        die(err.msg);
    for (int i = 0; i < 2; i++)
        if (bfn_trainer_step(tr, batch_fn, NULL, NULL, &err) != BFN_OK)
            die(err.msg);
    if (bfn_trainer_save(tr, g_tmp, "mnist", 4, "seed checkpoint", &err) != BFN_OK)
        die(err.msg);
    bfn_trainer_destroy(tr);
    bfn_net_destroy(net);
    if (bfn_model_load(g_tmp, meta, secs, &err) != BFN_OK)
        die(err.msg);
    return slurp(g_tmp, n);
}

/* The checkpoint with word w of section sec_name (u64 or f32 element w)
 * replaced. */
static void absurd_ckpt(const char *name, const bfn_model_meta *m, const bfn_model_sections *s,
                        const char *sec_name, uint64_t w, const void *value,
                        bfn_status want, const char *msg_part)
{
    bfn_model_section *copy = malloc((size_t)s->n * sizeof *copy);
    void *data = NULL;
    if (!copy)
        die("out of memory");
    memcpy(copy, s->sec, (size_t)s->n * sizeof *copy);
    for (int i = 0; i < s->n; i++) {
        if (strcmp(copy[i].name, sec_name) != 0)
            continue;
        size_t es = bfn_model_type_size(copy[i].type), bytes = (size_t)copy[i].count * es;
        data = malloc(bytes);
        if (!data)
            die("out of memory");
        memcpy(data, copy[i].data, bytes);
        memcpy((uint8_t *)data + w * es, value, es);
        copy[i].data = data;
    }
    size_t n;
    uint8_t *b = sections_file(m, copy, s->n, &n);
    absurd(name, b, n, "trainer", want, msg_part);
    free(b);
    free(data);
    free(copy);
}

static void model_seeds(void)
{
    bfn_net_config c2 = tiny_config(2), c3 = tiny_config(3), ca = attn_config();
    bfn_net *n2 = make_net(&c2, 1), *n3 = make_net(&c3, 1), *na = make_net(&ca, 1);
    bfn_model_meta m2 = meta_for(&c2, 3.0), m3 = meta_for(&c3, 3.0), ma = meta_for(&ca, 0.5);
    bfn_model_meta_set_note(&m3, "ema", "0.999", NULL);
    bfn_model_meta_set_note(&m3, "notes", "three classes", NULL);
    size_t n;
    uint8_t *b2 = net_file(n2, &m2, &n);
    size_t n2b = n;
    put("corpus/model/tiny-k2-resealed.bfn", 1, b2, n);
    put("corpus/model/tiny-k2.bfn", 0, b2, n);
    uint8_t *b = net_file(n3, &m3, &n);
    put("corpus/model/tiny-k3-notes.bfn", 1, b, n);
    free(b);
    b = net_file(na, &ma, &n);
    put("corpus/model/attn-8x8.bfn", 1, b, n);
    free(b);

    /* a container with every section type, an empty section, and no params */
    const uint8_t u8s[5] = {1, 2, 3, 4, 5};
    const uint64_t u64s[2] = {7, UINT64_MAX};
    const float f32s[3] = {0.5f, -1.0f, 2.0f};
    bfn_model_section mixed[4] = {
        {"bytes", BFN_MODEL_U8, 5, u8s},
        {"words", BFN_MODEL_U64, 2, u64s},
        {"floats", BFN_MODEL_F32, 3, f32s},
        {"empty", BFN_MODEL_F32, 0, NULL},
    };
    b = sections_file(&m2, mixed, 4, &n);
    put("corpus/model/mixed-sections.bfn", 1, b, n);
    free(b);

    bfn_model_meta mc;
    bfn_model_sections sc;
    b = checkpoint_file(&n, &mc, &sc);
    put("corpus/model/tiny-checkpoint.bfn", 1, b, n);
    free(b);

    /* ---- absurd values behind a valid structure and checksum ---- */
    uint8_t v8[8];
    double d;
    float f;
    d = 0.0;
    memcpy(v8, &d, 8);
    absurd_patch("beta1-zero", b2, n2b, 96, v8, 8, BFN_ERR_FORMAT, "beta(1)");
    d = 1e30;
    memcpy(v8, &d, 8);
    absurd_patch("beta1-1e30", b2, n2b, 96, v8, 8, BFN_ERR_FORMAT, "beta(1)");
    d = NAN;
    memcpy(v8, &d, 8);
    absurd_patch("beta1-nan", b2, n2b, 96, v8, 8, BFN_ERR_FORMAT, "beta(1)");
    d = -INFINITY;
    memcpy(v8, &d, 8);
    absurd_patch("beta1-minus-inf", b2, n2b, 96, v8, 8, BFN_ERR_FORMAT, "beta(1)");
    uint8_t v4[4];
    le32(v4, 3);
    absurd_patch("k-header-3-config-2", b2, n2b, 80, v4, 4, BFN_ERR_FORMAT, "K = 3");
    le32(v4, 8);
    absurd_patch("size-header-8-config-4", b2, n2b, 84, v4, 4, BFN_ERR_FORMAT, "images are 8 x 4");
    le32(v4, 0);
    absurd_patch("k-zero", b2, n2b, 16, v4, 4, BFN_ERR_FORMAT, "K = 0");
    le32(v4, 1u << 31);
    absurd_patch("width-negative", b2, n2b, 24, v4, 4, BFN_ERR_FORMAT, "4 x -2147483648");
    f = NAN;
    memcpy(v4, &f, 4);
    absurd_patch("dropout-nan", b2, n2b, 76, v4, 4, BFN_ERR_FORMAT, "dropout");
    le32(v4, 9);
    absurd_patch("groups-9", b2, n2b, 72, v4, 4, BFN_ERR_FORMAT, "groups");

    /* weights of a K = 2 net under a K = 3 header (both K fields agree) */
    uint8_t *k3 = malloc(n2b);
    memcpy(k3, b2, n2b);
    le32(k3 + 16, 3);
    le32(k3 + 80, 3);
    reseal(k3, n2b);
    absurd("k3-header-k2-weights", k3, n2b, "net", BFN_ERR_MISMATCH, "params");
    free(k3);

    const float bad[3] = {NAN, INFINITY, -INFINITY};
    const char *bad_names[3] = {"weight-nan", "weight-inf", "weight-minus-inf"};
    for (int i = 0; i < 3; i++) {
        float keep = bfn_net_params(n2)[3];
        bfn_net_params(n2)[3] = bad[i];
        b = net_file(n2, &m2, &n);
        absurd(bad_names[i], b, n, "net", BFN_ERR_NUMERIC, "params");
        free(b);
        bfn_net_params(n2)[3] = keep;
    }
    bfn_model_section other = {"params", BFN_MODEL_U8, 5, u8s};
    b = sections_file(&m2, &other, 1, &n);
    absurd("params-as-bytes", b, n, "net", BFN_ERR_FORMAT, "params");
    free(b);
    b = sections_file(&m2, mixed, 4, &n);
    absurd("params-missing", b, n, "net", BFN_ERR_FORMAT, "params");
    free(b);

    /* checkpoints: training state and optimizer moments */
    uint64_t w;
    d = NAN;
    memcpy(&w, &d, 8);
    absurd_ckpt("ckpt-lr-nan", &mc, &sc, "train", 9, &w, BFN_ERR_FORMAT, "lr");
    w = 0;
    absurd_ckpt("ckpt-batch-0", &mc, &sc, "train", 4, &w, BFN_ERR_FORMAT, "batch");
    w = UINT64_C(1) << 63;
    absurd_ckpt("ckpt-step-negative", &mc, &sc, "train", 1, &w, BFN_ERR_FORMAT, "step");
    w = 99;
    absurd_ckpt("ckpt-state-version-99", &mc, &sc, "train", 0, &w, BFN_ERR_FORMAT, "version");
    f = INFINITY;
    absurd_ckpt("ckpt-adam-v-inf", &mc, &sc, "adam_v", 0, &f, BFN_ERR_NUMERIC, "adam_v");
    f = -1.0f;
    absurd_ckpt("ckpt-adam-v-negative", &mc, &sc, "adam_v", 0, &f, BFN_ERR_FORMAT, "adam_v");
    f = NAN;
    absurd_ckpt("ckpt-ema-nan", &mc, &sc, "params", 1, &f, BFN_ERR_NUMERIC, "params");

    bfn_model_sections_free(&sc);
    free(b2);
    bfn_net_destroy(n2);
    bfn_net_destroy(n3);
    bfn_net_destroy(na);
}

/* ---- command lines ---- */

static void put_args(const char *rel, int cmd, const char *const *args, int n)
{
    char buf[1024];
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(args[i]);
        if (at + l + 1 > sizeof buf)
            die("seed command line too long");
        memcpy(buf + at, args[i], l);
        at += l;
        if (i + 1 < n)
            buf[at++] = '\0';
    }
    put(rel, cmd, buf, at);
}

#define ARGS(rel, cmd, ...)                                                     \
    do {                                                                        \
        const char *const a_[] = {__VA_ARGS__};                                 \
        put_args(rel, cmd, a_, (int)(sizeof a_ / sizeof a_[0]));                \
    } while (0)

static void args_seeds(void)
{
    /* command byte: 0 train, 1 sample, 2 eval, 3 info, 4 data */
    ARGS("corpus/args/train-tiny", 0, "--data-dir", "d", "--ckpt", "r.ckpt", "--out=r.bfn",
         "--steps", "6", "--ckpt-every", "3", "--val-every", "3", "--val-batches", "1", "--quiet",
         "--base-ch", "8", "--mult", "1,2", "--n-res", "1", "--heads", "2", "--temb", "16",
         "--groups", "4", "--batch", "8");
    ARGS("corpus/args/train-schedule", 0, "--resume", "--lr", "2e-4", "--lr-min=0", "--warmup",
         "100", "--beta1", "3", "--weight-decay", "0.01", "--clip", "5", "--ema", "0.999",
         "--seed", "18446744073709551615", "--dropout", "0.1", "--attn", "0", "--ckpt-minutes",
         "0.5", "--threads", "1", "--notes", "x y", "--data", "twodigit", "--log", "l.csv");
    ARGS("corpus/args/train-bad", 0, "--force", "--resume", "--steps", "-1", "--mult", "1,,2");
    ARGS("corpus/args/sample", 1, "--model", "m.bfn", "--steps", "10", "--count", "4", "--seed",
         "3", "--out", "s.png", "--strip", "t.png", "--strip-rows", "2", "--strip-cols", "5",
         "--beta1=0.5", "--cols", "2", "--scale", "1", "--argmax", "--threads", "2");
    ARGS("corpus/args/sample-help", 1, "--steps", "1e3", "--help");
    ARGS("corpus/args/eval", 2, "--model", "m.bfn", "--data-dir", "d", "--steps", "10", "--limit",
         "20", "--repeats", "2", "--continuous", "--mc", "3", "--split", "val", "--data",
         "fashion", "--batch", "16", "--seed", "0");
    ARGS("corpus/args/info", 3, "--model", "m.bfn");
    ARGS("corpus/args/data-preview", 4, "preview", "--data-dir", "d", "--count", "9", "--out",
         "p.png", "--binarize");
    ARGS("corpus/args/data-fetch", 4, "fetch", "--help");
}

int main(int argc, char **argv)
{
    if (argc != 2)
        die("usage: fuzz_make_seeds <tests/fuzz directory>");
    g_root = argv[1];
    const char *dirs[] = {"corpus", "corpus/idx", "corpus/model", "corpus/args", "regress",
                          "regress/model"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        make_dir(dirs[i]);
    snprintf(g_tmp, sizeof g_tmp, "%s/make_seeds.tmp.%ld", g_root, (long)getpid());
    char mp[1024];
    snprintf(mp, sizeof mp, "%s/absurd_models.txt", g_root);
    g_manifest = fopen(mp, "w");
    if (!g_manifest)
        die(mp);
    fprintf(g_manifest, "# file loader status message-part (written by fuzz_make_seeds)\n");
    idx_seeds();
    model_seeds();
    args_seeds();
    if (fclose(g_manifest) != 0)
        die(mp);
    unlink(g_tmp);
    printf("seeds written under %s\n", g_root);
    return 0;
}
