/* Fuzz target: model and checkpoint files.
 *
 * Input: one flags byte, then the file. Flag bit 0 rewrites the file's last
 * 8 bytes with the FNV-1a checksum of the bytes before them, so mutations
 * reach the checks behind the checksum instead of stopping at it; without
 * the flag the checksum path itself is fuzzed.
 *
 * The file is read with bfn_model_load. When that succeeds:
 *   - the header text, section lookups and typed gets must work on it;
 *   - saving what was loaded must give back the same bytes (the format has
 *     one encoding per content, so a reader that accepts more is a bug);
 *   - bfn_model_load_net, and bfn_trainer_load for a checkpoint, run on it,
 *     for architectures small enough to build in a few milliseconds (a valid
 *     header may describe a network of many gigabytes; building those says
 *     nothing about the parser and would only trip the fuzzer's memory limit).
 * Every failure must come with a message. */
#include "fuzz_file.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/model_io.h"
#include "bfn/net.h"
#include "bfn/train.h"

static fuzz_file g_file;
static char g_dir[256], g_copy[320];

static void remove_dir(void)
{
    unlink(g_copy);
    rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_file_open(&g_file, "fuzz-model");
    /* round-trip copies are saved with fsync */
    snprintf(g_dir, sizeof g_dir, "%s/bfn-fuzz-model.XXXXXX", fuzz_scratch_base());
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(g_copy, sizeof g_copy, "%s/copy.bfn", g_dir);
    atexit(remove_dir);
    return 0;
}

static void require(int cond, const char *what, const bfn_err *err)
{
    if (!cond) {
        fprintf(stderr, "fuzz_model: %s (last message: %s)\n", what, err ? err->msg : "");
        abort();
    }
}

static int known_status(bfn_status st)
{
    return st <= BFN_OK && st >= BFN_ERR_UNSUPPORTED;
}

/* Architectures that build in milliseconds; anything else is left to
 * bfn_net_config_check, which runs on every accepted header. */
static int small_enough(const bfn_net_config *c)
{
    if (c->n_levels < 1 || c->n_levels > BFN_NET_MAX_LEVELS)
        return 1; /* refused by the config check before any allocation */
    if ((long long)c->H * c->W > 256 || c->temb_dim > 64 || c->n_res > 2)
        return 0;
    for (int l = 0; l < c->n_levels; l++)
        if ((long long)c->base_ch * c->ch_mult[l] > 16)
            return 0;
    return 1;
}

static void check_loaded(const uint8_t *file, size_t n, const bfn_model_meta *meta,
                         const bfn_model_sections *secs)
{
    bfn_err err = {0};
    bfn_err_clear(&err);
    require(bfn_model_meta_check(meta, &err) == BFN_OK, "loaded header fails meta_check", &err);

    size_t need = bfn_model_format_info(NULL, 0, meta, secs);
    char *text = malloc(need + 1);
    require(text != NULL, "out of memory", NULL);
    require(bfn_model_format_info(text, need + 1, meta, secs) == need && strlen(text) == need,
            "format_info length differs between sizing and writing", NULL);
    free(text);

    for (int i = 0; i < secs->n; i++) {
        const bfn_model_section *s = &secs->sec[i];
        require(bfn_model_find(secs, s->name) == s, "find does not return the section", NULL);
        const void *d = NULL;
        bfn_status st = bfn_model_get(secs, s->name, s->type, s->count, &d, &err);
        require(st == BFN_OK || (st == BFN_ERR_NUMERIC && s->type == BFN_MODEL_F32),
                "get refuses a section as loaded", &err);
        require((st == BFN_OK) == (d != NULL), "get data pointer and status disagree", &err);
    }

    /* save(load(file)) == file */
    bfn_err_clear(&err);
    bfn_status st = bfn_model_save(g_copy, meta, secs->sec, secs->n, &err);
    require(st == BFN_OK, "a loaded file cannot be saved again", &err);
    FILE *f = fopen(g_copy, "rb");
    require(f != NULL, "saved copy missing", NULL);
    uint8_t *back = malloc(n + 1);
    size_t got = back ? fread(back, 1, n + 1, f) : 0;
    fclose(f);
    require(back && got == n && memcmp(back, file, n) == 0,
            "saving a loaded file does not reproduce its bytes", NULL);
    free(back);
}

static void check_net(const char *path, const bfn_model_meta *meta,
                      const bfn_model_sections *secs)
{
    bfn_err err = {0};
    bfn_err_clear(&err);
    bfn_status cst = bfn_net_config_check(&meta->config, &err);
    require(cst == BFN_OK || err.msg[0], "config refused without a message", &err);
    if (!small_enough(&meta->config))
        return;

    bfn_net *net = (bfn_net *)&err; /* must come back NULL on failure */
    bfn_model_meta m2;
    bfn_err_clear(&err);
    bfn_status st = bfn_model_load_net(path, &net, &m2, 1, &err);
    require(known_status(st), "load_net returned an unknown status", &err);
    if (st == BFN_OK) {
        require(cst == BFN_OK, "load_net accepted a config the check refuses", &err);
        require(net != NULL && m2.step == meta->step, "load_net result incomplete", &err);
        const float *p = bfn_net_params(net);
        for (size_t i = 0; i < bfn_net_param_count(net); i++)
            require(isfinite(p[i]), "load_net accepted a non-finite weight", NULL);
        bfn_net_destroy(net);
    } else {
        require(net == NULL && err.msg[0], "load_net failed without a message or left a net",
                &err);
    }

    /* Checkpoints: the trainer sizes the net for the batch stored in the file. */
    const bfn_model_section *ts = bfn_model_find(secs, "train");
    if (!ts || ts->type != BFN_MODEL_U64 || ts->count < 5 || ((const uint64_t *)ts->data)[4] > 4)
        return;
    bfn_trainer *tr = NULL;
    net = NULL;
    bfn_err_clear(&err);
    st = bfn_trainer_load(path, &net, &tr, NULL, 1, &err);
    require(known_status(st), "trainer_load returned an unknown status", &err);
    if (st == BFN_OK) {
        require(net && tr, "trainer_load result incomplete", &err);
        require(bfn_trainer_steps(tr) >= 0, "trainer_load accepted a negative step", &err);
    } else {
        require(!net && !tr && err.msg[0], "trainer_load failed without a message", &err);
    }
    bfn_trainer_destroy(tr);
    bfn_net_destroy(net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int reseal = data[0] & 1;
    size_t n = size - 1;
    uint8_t *file = malloc(n ? n : 1);
    if (!file)
        return 0;
    memcpy(file, data + 1, n);
    if (reseal && n >= 8) {
        uint64_t h = bfn_model_checksum(BFN_MODEL_CHECKSUM_INIT, file, n - 8);
        for (int i = 0; i < 8; i++)
            file[n - 8 + i] = (uint8_t)(h >> (8 * i));
    }
    fuzz_file_set(&g_file, file, n);

    bfn_model_meta meta;
    bfn_model_sections secs;
    bfn_err err = {0};
    bfn_err_clear(&err);
    bfn_status st = bfn_model_load(g_file.path, &meta, &secs, &err);
    require(known_status(st), "load returned an unknown status", &err);
    if (st != BFN_OK) {
        require(err.msg[0] && secs.n == 0 && secs.sec == NULL && secs.buf == NULL,
                "load failed without a message or left sections", &err);
    } else {
        check_loaded(file, n, &meta, &secs);
        check_net(g_file.path, &meta, &secs);
        bfn_model_sections_free(&secs);
    }
    free(file);
    return 0;
}
