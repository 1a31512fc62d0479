/* Shared setup for the headless app tests: a scratch directory, tiny models
 * made through the engine (so no test needs models/ or data/), a small
 * synthetic MNIST in IDX format for training, the app opened headless, and
 * reference runs of the engine's own sampler. */
#ifndef BFN_TEST_APP_FIXTURE_H
#define BFN_TEST_APP_FIXTURE_H

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "bfn/model_io.h"
#include "bfn/net.h"
#include "bfn/rng.h"
#include "bfn/sample.h"
#include "check.h"
#include "run.h"
#include "ui.h"

/* Test length: BFN_TEST_SCALE=small (the sanitizer build) shortens loops. */
static inline int fx_small(void)
{
    const char *s = getenv("BFN_TEST_SCALE");
    return s && !strcmp(s, "small");
}

static inline void fx_die(const char *what)
{
    fprintf(stderr, "fixture: %s\n", what);
    exit(1);
}

/* A fresh directory under /tmp; path receives it. */
static inline void fx_tmpdir(char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/bfnviz-test-XXXXXX");
    if (!mkdtemp(path))
        fx_die("mkdtemp failed");
}

static inline void fx_rmtree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[4096];
            snprintf(sub, sizeof sub, "%.2000s/%.1000s", path, e->d_name);
            struct stat sb;
            if (lstat(sub, &sb) == 0 && S_ISDIR(sb.st_mode))
                fx_rmtree(sub);
            else
                unlink(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

/* A tiny K = 2 U-Net for side × side images whose weights are perturbed away
 * from the zero-initialised output layer, so p_O depends on θ and t. */
static inline void fx_make_model(const char *path, int side, uint64_t seed)
{
    bfn_net_config c = bfn_net_config_default(2, side, side);
    c.base_ch = 8;
    c.n_levels = 2;
    c.ch_mult[0] = 1;
    c.ch_mult[1] = 2;
    c.n_res = 1;
    c.n_heads = 2;
    c.temb_dim = 16;
    c.groups = 4;
    c.dropout = 0;
    bfn_net *net = NULL;
    bfn_err err = {0};
    if (bfn_net_create(&net, &c, 1, &err) != BFN_OK)
        fx_die(err.msg);
    bfn_net_init_params(net, seed);
    float *p = bfn_net_params(net);
    bfn_rng r;
    bfn_rng_init(&r, seed, 99);
    for (size_t i = 0; i < bfn_net_param_count(net); i++)
        p[i] += 0.05f * (float)bfn_rng_normal(&r);
    bfn_model_meta meta;
    bfn_model_meta_init(&meta, &c);
    meta.beta1 = 3.0;
    snprintf(meta.dataset, sizeof meta.dataset, "test");
    if (bfn_model_save_net(path, &meta, net, NULL, 0, &err) != BFN_OK)
        fx_die(err.msg);
    bfn_net_destroy(net);
}

static inline void fx_write_be32(FILE *f, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    fwrite(b, 1, 4, f);
}

/* MNIST-style IDX files in dir: n_train / n_test 28×28 "digits" (soft discs
 * whose size and place follow the label), labels 0..9 in turn. */
static inline void fx_make_mnist(const char *dir, int n_train, int n_test)
{
    const char *names[2][2] = {{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
                               {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}};
    for (int part = 0; part < 2; part++) {
        int n = part ? n_test : n_train;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", dir, names[part][0]);
        FILE *fi = fopen(p, "wb");
        snprintf(p, sizeof p, "%s/%s", dir, names[part][1]);
        FILE *fl = fopen(p, "wb");
        if (!fi || !fl)
            fx_die("cannot write IDX files");
        fx_write_be32(fi, 0x803);
        fx_write_be32(fi, (uint32_t)n);
        fx_write_be32(fi, 28);
        fx_write_be32(fi, 28);
        fx_write_be32(fl, 0x801);
        fx_write_be32(fl, (uint32_t)n);
        for (int i = 0; i < n; i++) {
            int label = i % 10;
            double cx = 10 + (i * 7 % 9), cy = 10 + (i * 5 % 9), rad = 4 + label * 0.6;
            unsigned char img[28 * 28];
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++) {
                    double d = sqrt((x - cx) * (x - cx) + (y - cy) * (y - cy));
                    double v = d < rad ? 1 : d < rad + 2 ? (rad + 2 - d) / 2 : 0;
                    img[y * 28 + x] = (unsigned char)(v * 255);
                }
            fwrite(img, 1, sizeof img, fi);
            unsigned char l = (unsigned char)label;
            fwrite(&l, 1, 1, fl);
        }
        fclose(fi);
        fclose(fl);
    }
}

/* Options for the app, headless, on a model, with its directories inside
 * dir (the strings live in buf, which must outlive the call to fx_create). */
typedef struct {
    char models[1024], runs[1024], out[1024];
} fx_dirs;

static inline void fx_options(viz_options *o, fx_dirs *d, const char *dir, const char *model,
                              int n, int grid, uint64_t seed)
{
    snprintf(d->models, sizeof d->models, "%s/models", dir);
    snprintf(d->runs, sizeof d->runs, "%s/runs", dir);
    snprintf(d->out, sizeof d->out, "%s/out", dir);
    mkdir(d->models, 0755);
    viz_options_default(o);
    o->headless = 1;
    o->width = 1280;
    o->height = 800;
    o->model_path = model;
    o->models_dir = d->models;
    o->runs_dir = d->runs;
    o->out_dir = d->out;
    o->n_steps = n;
    o->grid = grid;
    o->seed = seed;
}

static inline viz_app *fx_create(const viz_options *o)
{
    char err[600];
    viz_app *a = viz_app_create(o, err, sizeof err);
    if (!a)
        fx_die(err);
    viz_app_run_frames(a, 1); /* lays out the widgets that tests aim at */
    return a;
}

static inline viz_app *fx_open(const char *dir, const char *model, int n, int grid, uint64_t seed)
{
    viz_options o;
    fx_dirs d;
    fx_options(&o, &d, dir, model, n, grid, seed);
    return fx_create(&o);
}

/* What the engine's own sampler gives: the final classes (count, D) and, for
 * one (cell, pixel), θ_on after each step, p_O(on), y and k per step
 * (index step − 1; the final call at index n). */
typedef struct {
    int cell, px;
    float theta[1100], p[1100], y[1100];
    uint8_t k[1100];
    int calls;
} fx_trace;

static inline int fx_trace_observer(const bfn_sample_frame *f, void *user)
{
    fx_trace *t = user;
    int i = f->step - 1;
    size_t o = (size_t)t->cell * f->D + t->px;
    double z = f->z[o];
    t->theta[i] = (float)(1.0 / (1.0 + exp(-z)));
    t->p[i] = f->p[o];
    t->y[i] = f->y ? f->y[o] : 0.0f;
    t->k[i] = f->k[o];
    t->calls++;
    return 0;
}

static inline uint8_t *fx_engine_sample(const char *model, int n, double beta1, uint64_t seed,
                                        int count, int argmax, fx_trace *trace)
{
    bfn_net *net = NULL;
    bfn_model_meta meta;
    bfn_err err = {0};
    if (bfn_model_load_net(model, &net, &meta, 4, &err) != BFN_OK)
        fx_die(err.msg);
    bfn_sample_config sc = {.n_steps = n, .beta1 = beta1 > 0 ? beta1 : meta.beta1,
                            .count = count, .seed = seed,
                            .final = argmax ? BFN_FINAL_ARGMAX : BFN_FINAL_SAMPLE};
    bfn_sampler *s = NULL;
    if (bfn_sampler_create(&s, net, &sc, &err) != BFN_OK)
        fx_die(err.msg);
    if (trace)
        bfn_sampler_set_observer(s, fx_trace_observer, trace);
    if (bfn_sampler_run(s, NULL, &err) != BFN_OK)
        fx_die(err.msg);
    size_t bytes = (size_t)count * meta.config.H * meta.config.W;
    uint8_t *out = malloc(bytes);
    memcpy(out, bfn_sampler_result(s), bytes);
    bfn_sampler_destroy(s);
    bfn_net_destroy(net);
    return out;
}

/* Bytes of the final slot of the run on screen (cells, D), or NULL. */
static inline uint8_t *fx_app_final(viz_app *a, int *cells, int *D)
{
    viz_run *r = viz_app_run_ref(a);
    if (!r || viz_run_ready(r) != r->n_slots) {
        viz_run_unref(r);
        return NULL;
    }
    size_t bytes = (size_t)r->cells * r->D;
    uint8_t *out = malloc(bytes);
    memcpy(out, r->k + (size_t)(r->n_slots - 1) * bytes, bytes);
    *cells = r->cells;
    *D = r->D;
    viz_run_unref(r);
    return out;
}

/* Press and release the left button at the centre of widget id. */
static inline int fx_click(viz_app *a, const char *id)
{
    SDL_Rect r;
    if (!viz_app_widget_rect(a, id, &r))
        return 0;
    int x = r.x + r.w / 2, y = r.y + r.h / 2;
    viz_app_mouse_move(a, x, y);
    viz_app_mouse_button(a, x, y, 1);
    viz_app_mouse_button(a, x, y, 0);
    viz_app_run_frames(a, 1);
    return 1;
}

/* Types path into the model field (15 characters per text event) and
 * presses Enter, as a user opening another model does. */
static inline void fx_open_model_field(viz_app *a, const char *path)
{
    CHECK(fx_click(a, "model"), "model field on screen");
    for (int i = 0; i < 200; i++)
        viz_app_key(a, SDLK_BACKSPACE, 0);
    viz_app_run_frames(a, 1);
    char chunk[16];
    for (size_t i = 0; i < strlen(path); i += 15) {
        snprintf(chunk, sizeof chunk, "%.15s", path + i);
        viz_app_type(a, chunk);
    }
    viz_app_key(a, SDLK_RETURN, 0);
    viz_app_run_frames(a, 1);
}

static inline void fx_key(viz_app *a, SDL_Keycode k, Uint16 mod)
{
    viz_app_key(a, k, mod);
    viz_app_run_frames(a, 1);
}

static inline viz_app_state fx_state(viz_app *a)
{
    viz_app_state s;
    viz_app_get_state(a, &s);
    return s;
}

/* Window sizes for the text checks: the default, smaller ones, a large
 * screen and a projector's zoom. */
typedef struct {
    int w, h;
    double scale;
} fx_size;
#define FX_N_SIZES 5
static const fx_size FX_SIZES[FX_N_SIZES] = {
    {1280, 800, 1}, {1024, 700, 1}, {800, 600, 1}, {1920, 1080, 1}, {1920, 1080, 1.5}};

static inline viz_app *fx_open_sized(const char *dir, const char *model, int n, int grid, fx_size z)
{
    viz_options o;
    fx_dirs d;
    fx_options(&o, &d, dir, model, n, grid, 1);
    o.width = z.w;
    o.height = z.h;
    o.scale = z.scale;
    return fx_create(&o);
}

/* The last frame's text stayed inside its panels; from 1280x800 up nothing
 * needed shortening with "…" either. */
static inline void fx_check_text(viz_app *a, fx_size z, const char *what)
{
    viz_app_state st = fx_state(a);
    CHECK(st.text_cut == 0, "%dx%d at zoom %.1f, %s: %d texts past their panel, first %s", z.w,
          z.h, z.scale, what, st.text_cut, st.text_cut_what);
    if (z.w >= 1280 && z.h >= 800)
        CHECK(st.text_shortened == 0, "%dx%d at zoom %.1f, %s: %d texts shortened, first %s", z.w,
              z.h, z.scale, what, st.text_shortened, st.text_shortened_what);
}

#endif
