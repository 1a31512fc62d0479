/* Headless tests of autoguidance in bfnviz: the guidance control driven by
 * its keys, its buttons and the script command, on tiny models whose guides
 * sit in guides/ beside them as the shipped ones do. Results are compared
 * with the engine's sampler run directly (guided or not) on the same files. */
#include "app_fixture.h"
#include "app_internal.h"
#include "script.h"
#include "viz.h"
#include "worker.h"

#define N_STEPS 12
#define GRID 2
#define CELLS (GRID * GRID)
#define SIDE 16
#define D_PIX (SIDE * SIDE)
#define SEED 7

static char dir[256];

static int count_diff(const uint8_t *x, const uint8_t *y, size_t n)
{
    int d = 0;
    for (size_t i = 0; i < n; i++)
        d += x[i] != y[i];
    return d;
}

/* A fresh models directory for one test: root/models (fx_options' choice),
 * with its guides/ folder made. */
static void make_models_dir(const char *name, char *root, size_t cap, char *models, size_t mcap)
{
    snprintf(root, cap, "%s/%s", dir, name);
    snprintf(models, mcap, "%s/models", root);
    char guides[1024];
    snprintf(guides, sizeof guides, "%s/" VIZ_GUIDE_DIR, models);
    if (mkdir(root, 0755) || mkdir(models, 0755) || mkdir(guides, 0755))
        fx_die("cannot make the models directory");
}

/* The path of the guide of models/<name> in guides/. */
static void guide_of(const char *models, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/" VIZ_GUIDE_DIR "/%s", models, name);
}

/* The final classes (CELLS, D_PIX) of the engine's own sampler, guided by
 * guide at w (guide NULL: bfn_sampler_create), at the model's β(1). */
static uint8_t *engine_sample(const char *model, const char *guide, double w)
{
    bfn_net *net = NULL, *g = NULL;
    bfn_model_meta meta, gmeta;
    bfn_err err = {0};
    if (bfn_model_load_net(model, &net, &meta, 4, &err) != BFN_OK ||
        (guide && bfn_model_load_net(guide, &g, &gmeta, 4, &err) != BFN_OK))
        fx_die(err.msg);
    bfn_sample_config sc = {.n_steps = N_STEPS, .beta1 = meta.beta1, .count = CELLS,
                            .seed = SEED, .final = BFN_FINAL_SAMPLE};
    bfn_sampler *s = NULL;
    bfn_status st = guide ? bfn_sampler_create_guided(&s, net, g, w, &sc, &err)
                          : bfn_sampler_create(&s, net, &sc, &err);
    if (st != BFN_OK || bfn_sampler_run(s, NULL, &err) != BFN_OK)
        fx_die(err.msg);
    uint8_t *out = malloc(CELLS * D_PIX);
    memcpy(out, bfn_sampler_result(s), CELLS * D_PIX);
    bfn_sampler_destroy(s);
    bfn_net_destroy(g);
    bfn_net_destroy(net);
    return out;
}

/* The app's final classes of the shown run, once it has finished. */
static uint8_t *app_final(viz_app *a, const char *what)
{
    CHECK(viz_app_wait_run(a, 60), "%s: the run finished within 60 s", what);
    int cells = 0, D = 0;
    uint8_t *got = fx_app_final(a, &cells, &D);
    CHECK(got && cells * D == CELLS * D_PIX, "%s: final slot of %d values (got %d)", what,
          CELLS * D_PIX, cells * D);
    return got;
}

/* Pixels of two finals that differ (-1 when one is missing). */
static int diff_finals(const uint8_t *x, const uint8_t *y)
{
    return x && y ? count_diff(x, y, CELLS * D_PIX) : -1;
}

/* The shown run's guidance and guide, with the settings' w. */
static void check_shown(viz_app *a, double w, const char *guide, const char *what)
{
    viz_app_state st = fx_state(a);
    CHECK_NEAR(w, st.settings.guidance, 0, "%s: the setting w", what);
    viz_run *r = viz_app_run_ref(a);
    CHECK_NEAR(w, r ? r->sp.guidance : -1, 0, "%s: w of the shown run", what);
    CHECK(!strcmp(st.guide, guide), "%s: guide of the shown run '%s', want '%s'", what, st.guide,
          guide);
    viz_run_unref(r);
}

/* Runs a script of the given lines; its return code, the message in err. */
static int run_script(viz_app *a, const char *text, char *err, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/test.script", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        fx_die("cannot write the script");
    fputs(text, f);
    fclose(f);
    err[0] = '\0';
    return viz_script_run(a, path, err, cap);
}

/* Frames until the notice line says something containing want (10 s at
 * most); the notice shown then. */
static viz_app_state wait_notice(viz_app *a, const char *want)
{
    viz_app_state st = fx_state(a);
    for (double end = viz_now() + 10; !strstr(st.notice, want) && viz_now() < end;) {
        viz_app_run_frames(a, 1);
        SDL_Delay(5);
        st = fx_state(a);
    }
    return st;
}

/* Screen pixels (16 probes per cell) of the final view that do not show
 * the classes in final. */
static int screen_mismatch(viz_app *a, const uint8_t *final)
{
    fx_key(a, SDLK_END, 0);
    fx_key(a, SDLK_5, 0);
    int w, h, wrong = 0;
    uint8_t *pix = viz_app_read_pixels(a, &w, &h);
    if (!pix || !final) {
        free(pix);
        return -1;
    }
    for (int c = 0; c < CELLS; c++)
        for (int j = 0; j < D_PIX; j += 17) {
            int sx, sy;
            if (!viz_app_pixel_pos(a, c, j % SIDE, j / SIDE, &sx, &sy)) {
                wrong++;
                continue;
            }
            wrong += pix[((size_t)sy * w + sx) * 3] != (final[c * D_PIX + j] ? 243 : 12);
        }
    free(pix);
    return wrong;
}

static void test_guidance_w2_changes_the_samples_and_w1_gives_them_back(void)
{
    char root[512], models[600], model[700], guide[800];
    make_models_dir("guided", root, sizeof root, models, sizeof models);
    snprintf(model, sizeof model, "%s/m.bfn", models);
    guide_of(models, "m.bfn", guide, sizeof guide);
    fx_make_model(model, SIDE, 21);
    fx_make_model(guide, SIDE, 22); /* the same network with other weights */
    viz_app *a = fx_open(root, model, N_STEPS, GRID, SEED);
    CHECK_NEAR(1, fx_state(a).guide_available, 0, "the model's guide is found");
    uint8_t *off = app_final(a, "w = 1");
    check_shown(a, 1, "", "w = 1 at start");
    uint8_t *ref_off = engine_sample(model, NULL, 1);
    CHECK_NEAR(0, diff_finals(off, ref_off), 0, "w = 1: pixels differing from bfn_sampler");

    for (int i = 0; i < 4; i++) /* four steps of 0.25 */
        fx_key(a, SDLK_w, 0);
    CHECK_NEAR(2, fx_state(a).settings.guidance, 0, "W four times: w");
    uint8_t *on = app_final(a, "w = 2");
    check_shown(a, 2, VIZ_GUIDE_DIR "/m.bfn", "w = 2 by keys");
    uint8_t *ref_on = engine_sample(model, guide, 2);
    CHECK_NEAR(0, diff_finals(on, ref_on), 0,
               "w = 2: pixels differing from bfn_sampler_create_guided");
    int changed = diff_finals(on, off);
    CHECK(changed > 0, "w = 2 changed %d of %d pixels of the w = 1 grid", changed, CELLS * D_PIX);
    CHECK_NEAR(0, screen_mismatch(a, on), 0, "screen pixels not showing the guided final");
    viz_app_run_frames(a, 1);
    SDL_Rect gr;
    CHECK(viz_app_widget_rect(a, "guidance", &gr), "the guidance control is on screen");

    char err[700];
    CHECK_NEAR(0, run_script(a, "guidance 1\nwait-run 60\n", err, sizeof err), 0,
               "script 'guidance 1' ran (%s)", err);
    uint8_t *back = fx_app_final(a, &(int){0}, &(int){0});
    check_shown(a, 1, "", "w = 1 again by script");
    CHECK_NEAR(0, diff_finals(back, off), 0, "back at w = 1: pixels differing from the first grid");

    /* Shift+W steps down; the buttons step too */
    run_script(a, "guidance 1.5\n", err, sizeof err);
    fx_key(a, SDLK_w, KMOD_LSHIFT);
    CHECK_NEAR(1.25, fx_state(a).settings.guidance, 0, "1.5, then Shift+W: w");
    CHECK(fx_click(a, "guidance+"), "the + button is on screen");
    CHECK_NEAR(1.5, fx_state(a).settings.guidance, 0, "then the + button: w");
    for (int i = 0; i < 20; i++)
        fx_key(a, SDLK_w, 0);
    CHECK_NEAR(VIZ_GUIDANCE_MAX, fx_state(a).settings.guidance, 0, "W many times stops at the top");
    CHECK_NEAR(-1, run_script(a, "guidance 5\n", err, sizeof err), 0,
               "script 'guidance 5' is an error");
    CHECK(strstr(err, "guidance") != NULL, "its message names the command: %s", err);
    CHECK_NEAR(VIZ_GUIDANCE_MAX, fx_state(a).settings.guidance, 0, "and leaves w as it was");
    uint8_t *top = app_final(a, "w = 4");
    check_shown(a, VIZ_GUIDANCE_MAX, VIZ_GUIDE_DIR "/m.bfn", "w = 4");
    uint8_t *ref_top = engine_sample(model, guide, VIZ_GUIDANCE_MAX);
    CHECK_NEAR(0, diff_finals(top, ref_top), 0, "w = 4: pixels differing from the engine");
    free(off), free(ref_off), free(on), free(ref_on), free(back), free(top), free(ref_top);
    viz_app_destroy(a);
}

static void test_guidance_without_a_guide_stays_off_with_a_notice(void)
{
    char root[512], models[600], model[700];
    make_models_dir("unguided", root, sizeof root, models, sizeof models);
    snprintf(model, sizeof model, "%s/m.bfn", models);
    fx_make_model(model, SIDE, 21);
    viz_app *a = fx_open(root, model, N_STEPS, GRID, SEED);
    CHECK_NEAR(0, fx_state(a).guide_available, 0, "no guide is found");
    uint8_t *before = app_final(a, "first run");
    uint64_t gen = fx_state(a).run_gen;
    const char *ways[] = {"key W", "button +", "script 'guidance 2'"};
    for (int i = 0; i < 3; i++) {
        char err[700] = "";
        a->notice[0] = '\0'; /* each way must raise its own */
        if (i == 0)
            fx_key(a, SDLK_w, 0);
        else if (i == 1)
            CHECK(fx_click(a, "guidance+"), "the + button is on screen");
        else
            CHECK_NEAR(0, run_script(a, "guidance 2\n", err, sizeof err), 0,
                       "the script goes on after the refusal (%s)", err);
        viz_app_state st = fx_state(a);
        CHECK_NEAR(1, st.settings.guidance, 0, "%s: w stays", ways[i]);
        CHECK(strstr(st.notice, "no guide") && st.notice_err, "%s: notice '%s' (error %d)",
              ways[i], st.notice, st.notice_err);
        viz_app_run_frames(a, 2);
        CHECK(viz_app_wait_run(a, 60), "%s: nothing left to sample", ways[i]);
        CHECK_NEAR((double)gen, (double)fx_state(a).run_gen, 0, "%s: no new run", ways[i]);
    }
    uint8_t *after = fx_app_final(a, &(int){0}, &(int){0});
    CHECK_NEAR(0, diff_finals(before, after), 0, "pixels that changed");
    check_shown(a, 1, "", "after the refusals");
    free(before);
    free(after);
    viz_app_destroy(a);
}

/* Writes a guide for model (16x16, β(1) 3) that cannot serve it. */
typedef enum { BAD_SHAPE, BAD_BETA, BAD_FILE } bad_guide;

static void write_bad_guide(const char *path, bad_guide kind)
{
    if (kind == BAD_SHAPE) {
        fx_make_model(path, SIDE / 2, 22);
    } else if (kind == BAD_BETA) {
        fx_make_model(path, SIDE, 22);
        bfn_net *net = NULL;
        bfn_model_meta meta;
        bfn_err err = {0};
        if (bfn_model_load_net(path, &net, &meta, 1, &err) != BFN_OK)
            fx_die(err.msg);
        meta.beta1 = 5.0;
        if (bfn_model_save_net(path, &meta, net, NULL, 0, &err) != BFN_OK)
            fx_die(err.msg);
        bfn_net_destroy(net);
    } else {
        FILE *f = fopen(path, "wb");
        if (!f)
            fx_die("cannot write the guide");
        fputs("not a model at all", f);
        fclose(f);
    }
}

static void test_guide_that_does_not_match_is_refused_and_sampling_goes_on_unguided(void)
{
    static const struct {
        bad_guide kind;
        const char *name, *says;
    } cases[] = {{BAD_SHAPE, "another shape", "8×8"},
                 {BAD_BETA, "another beta(1)", "β(1) = 5"},
                 {BAD_FILE, "not a model file", VIZ_GUIDE_DIR "/m.bfn"}};
    for (int i = 0; i < 3; i++) {
        char root[512], models[600], model[700], guide[800], sub[32];
        snprintf(sub, sizeof sub, "refused%d", i);
        make_models_dir(sub, root, sizeof root, models, sizeof models);
        snprintf(model, sizeof model, "%s/m.bfn", models);
        guide_of(models, "m.bfn", guide, sizeof guide);
        fx_make_model(model, SIDE, 21);
        write_bad_guide(guide, cases[i].kind);
        viz_app *a = fx_open(root, model, N_STEPS, GRID, SEED);
        uint8_t *before = app_final(a, cases[i].name);
        for (int k = 0; k < 4; k++)
            fx_key(a, SDLK_w, 0);
        CHECK_NEAR(2, fx_state(a).settings.guidance, 0, "%s: asked for w = 2", cases[i].name);
        viz_app_state st = wait_notice(a, "without guidance");
        CHECK(strstr(st.notice, "without guidance") && strstr(st.notice, cases[i].says) &&
                  st.notice_err,
              "%s: notice '%s' should say '%s'", cases[i].name, st.notice, cases[i].says);
        uint8_t *after = app_final(a, cases[i].name);
        viz_run *r = viz_app_run_ref(a);
        CHECK(r && viz_run_get_state(r) == VIZ_RUN_DONE, "%s: the run is done (state %d)",
              cases[i].name, r ? (int)viz_run_get_state(r) : -1);
        viz_run_unref(r);
        check_shown(a, 1, "", cases[i].name);
        CHECK_NEAR(0, diff_finals(before, after), 0, "%s: pixels differing from unguided",
                   cases[i].name);
        /* still responsive: the next step is refused the same way */
        uint64_t gen = fx_state(a).run_gen;
        a->notice[0] = '\0';
        fx_key(a, SDLK_w, 0);
        st = wait_notice(a, "without guidance");
        CHECK(strstr(st.notice, cases[i].says) != NULL, "%s: refused again: '%s'", cases[i].name,
              st.notice);
        CHECK(viz_app_wait_run(a, 60), "%s: the second run finished", cases[i].name);
        st = fx_state(a);
        CHECK(st.run_gen > gen, "%s: a new run (generation %llu after %llu)", cases[i].name,
              (unsigned long long)st.run_gen, (unsigned long long)gen);
        CHECK_NEAR(1, st.settings.guidance, 0, "%s: w after the second refusal", cases[i].name);
        free(before);
        free(after);
        viz_app_destroy(a);
    }
}

static void test_the_guide_follows_the_model(void)
{
    char root[512], models[600], ma[700], mb[700], mc[700], ga[800], gb[800];
    make_models_dir("follow", root, sizeof root, models, sizeof models);
    snprintf(ma, sizeof ma, "%s/a.bfn", models);
    snprintf(mb, sizeof mb, "%s/b.bfn", models);
    snprintf(mc, sizeof mc, "%s/c.bfn", models);
    guide_of(models, "a.bfn", ga, sizeof ga);
    guide_of(models, "b.bfn", gb, sizeof gb);
    fx_make_model(ma, SIDE, 21);
    fx_make_model(ga, SIDE, 22);
    fx_make_model(mb, SIDE, 31);
    fx_make_model(gb, SIDE, 32);
    fx_make_model(mc, SIDE, 41); /* no guide */
    viz_app *a = fx_open(root, ma, N_STEPS, GRID, SEED);
    char err[700];
    run_script(a, "guidance 2\n", err, sizeof err);
    uint8_t *got = app_final(a, "a at w = 2");
    uint8_t *want = engine_sample(ma, ga, 2);
    CHECK_NEAR(0, diff_finals(got, want), 0, "a at w = 2: pixels differing from the engine");
    free(got), free(want);

    /* another model with a guide: w stays, its own guide is loaded */
    fx_open_model_field(a, mb);
    CHECK_NEAR(2, fx_state(a).settings.guidance, 0, "b has a guide: w kept");
    got = app_final(a, "b at w = 2");
    check_shown(a, 2, VIZ_GUIDE_DIR "/b.bfn", "b");
    want = engine_sample(mb, gb, 2);
    CHECK_NEAR(0, diff_finals(got, want), 0, "b at w = 2: pixels differing from the engine");
    free(got), free(want);

    /* one without: guidance goes off, and the control says so */
    fx_open_model_field(a, mc);
    viz_app_state st = fx_state(a);
    CHECK_NEAR(1, st.settings.guidance, 0, "c has no guide: w");
    CHECK_NEAR(0, st.guide_available, 0, "c has no guide: the control knows");
    got = app_final(a, "c");
    check_shown(a, 1, "", "c");
    want = engine_sample(mc, NULL, 1);
    CHECK_NEAR(0, diff_finals(got, want), 0, "c: pixels differing from the engine");
    free(got), free(want);

    /* back to a: its guide is loaded again (the worker dropped it) */
    fx_open_model_field(a, ma);
    CHECK_NEAR(1, fx_state(a).guide_available, 0, "a: the guide is found again");
    run_script(a, "guidance 2\n", err, sizeof err);
    got = app_final(a, "a again");
    check_shown(a, 2, VIZ_GUIDE_DIR "/a.bfn", "a again");
    want = engine_sample(ma, ga, 2);
    CHECK_NEAR(0, diff_finals(got, want), 0, "a again: pixels differing from the engine");
    free(got), free(want);
    viz_app_destroy(a);
}

int main(void)
{
    fx_tmpdir(dir, sizeof dir);
    RUN(test_guidance_w2_changes_the_samples_and_w1_gives_them_back);
    RUN(test_guidance_without_a_guide_stays_off_with_a_notice);
    RUN(test_guide_that_does_not_match_is_refused_and_sampling_goes_on_unguided);
    RUN(test_the_guide_follows_the_model);
    fx_rmtree(dir);
    return check_finish();
}
