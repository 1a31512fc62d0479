/* The app's threads: settings hammered from the UI while the sampling worker
 * and the training thread both run; a training snapshot sampled in the
 * viewer; quitting during training. Also meant for the sanitizer build. */
#include "app_fixture.h"

#include "bfn/train.h"

static char dir[256], data[512], model_a[600], model_b[600], model_bad[600];

static void make_fixture(void)
{
    fx_tmpdir(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/mnist", dir);
    mkdir(data, 0755);
    fx_make_mnist(data, 200, 20);
    char models[400];
    snprintf(models, sizeof models, "%s/models", dir);
    mkdir(models, 0755);
    snprintf(model_a, sizeof model_a, "%s/a.bfn", models);
    snprintf(model_b, sizeof model_b, "%s/b.bfn", models);
    snprintf(model_bad, sizeof model_bad, "%s/c-broken.bfn", models);
    fx_make_model(model_a, 16, 1);
    fx_make_model(model_b, 16, 2);
    FILE *f = fopen(model_bad, "wb");
    fputs("not a model", f);
    fclose(f);
}

static viz_app *open_app(void)
{
    viz_options o;
    fx_dirs d;
    fx_options(&o, &d, dir, model_a, 30, 4, 1);
    o.data_dir = data;
    o.preview_every_s = 1;
    return fx_create(&o);
}

/* Runs frames until training reached step (or timeout_s); returns the step. */
static int64_t wait_train(viz_app *a, int64_t step, double timeout_s)
{
    double end = viz_now() + timeout_s;
    viz_app_state s = fx_state(a);
    while (s.train_step < step && viz_now() < end && s.train_state != VIZ_TRAIN_ERROR) {
        viz_app_run_frames(a, 1);
        SDL_Delay(10);
        s = fx_state(a);
    }
    return s.train_step;
}

/* Clicks a widget of the training panel, switching to its tab first. */
static int click_train(viz_app *a, const char *id)
{
    SDL_Rect r;
    if (!viz_app_widget_rect(a, id, &r)) {
        fx_click(a, "tab.train");
        viz_app_run_frames(a, 1);
    }
    return fx_click(a, id);
}

/* Runs frames for about `seconds`. */
static void settle(viz_app *a, double seconds)
{
    double end = viz_now() + seconds;
    while (viz_now() < end) {
        viz_app_run_frames(a, 1);
        SDL_Delay(10);
    }
}

static void drag_to(viz_app *a, const char *id, double frac)
{
    SDL_Rect r;
    if (!viz_app_widget_rect(a, id, &r))
        return;
    int y = r.y + r.h / 2, x = r.x + (int)(frac * (r.w - 1));
    viz_app_mouse_move(a, r.x + r.w / 2, y);
    viz_app_mouse_button(a, r.x + r.w / 2, y, 1);
    viz_app_run_frames(a, 1);
    viz_app_mouse_move(a, x, y);
    viz_app_run_frames(a, 1);
    viz_app_mouse_button(a, x, y, 0);
}

static void test_app_survives_settings_hammering_while_sampling_and_training(void)
{
    viz_app *a = open_app();
    CHECK(click_train(a, "train.start"), "Start button on screen");
    int64_t s0 = wait_train(a, 3, 60);
    CHECK(s0 >= 3, "training started (step %lld)", (long long)s0);
    CHECK(fx_state(a).run_gen > 0, "sampling started");

    bfn_rng rng;
    bfn_rng_init(&rng, 2024, 0);
    const double seconds = fx_small() ? 4 : 10;
    double end = viz_now() + seconds;
    int actions = 0, restarts0 = (int)fx_state(a).run_gen;
    static const SDL_Keycode keys[] = {SDLK_1, SDLK_2, SDLK_3, SDLK_4, SDLK_5, SDLK_RIGHT,
                                       SDLK_LEFT, SDLK_HOME, SDLK_END, SDLK_SPACE, SDLK_a,
                                       SDLK_UP, SDLK_DOWN, SDLK_PAGEUP, SDLK_PAGEDOWN, SDLK_b,
                                       SDLK_RIGHTBRACKET, SDLK_LEFTBRACKET};
    while (viz_now() < end) {
        int what = (int)bfn_rng_below(&rng, 14);
        switch (what) {
        case 0:
            drag_to(a, "n", bfn_rng_uniform(&rng) * 0.6);
            break;
        case 1:
            drag_to(a, "beta1", bfn_rng_uniform(&rng));
            break;
        case 2:
            fx_key(a, SDLK_s, bfn_rng_below(&rng, 2) ? KMOD_LSHIFT : 0);
            break;
        case 3:
            fx_key(a, SDLK_g, bfn_rng_below(&rng, 2) ? KMOD_LSHIFT : 0);
            break;
        case 4:
        case 5:
            fx_key(a, keys[bfn_rng_below(&rng, sizeof keys / sizeof keys[0])], 0);
            break;
        case 6:
            fx_key(a, SDLK_m, bfn_rng_below(&rng, 2) ? KMOD_LSHIFT : 0);
            break;
        case 7:
            click_train(a, "train.use");
            break;
        case 8:
            click_train(a, "train.pause");
            break;
        case 9:
            click_train(a, "train.preview");
            break;
        case 10:
            click_train(a, "train.save");
            break;
        case 11: {
            int sx, sy;
            if (viz_app_pixel_pos(a, 0, (int)bfn_rng_below(&rng, 16), (int)bfn_rng_below(&rng, 16),
                                  &sx, &sy))
                viz_app_mouse_move(a, sx, sy);
            break;
        }
        case 12:
            fx_click(a, bfn_rng_below(&rng, 2) ? "tab.inspect" : "tab.train");
            break;
        default:
            fx_click(a, bfn_rng_below(&rng, 2) ? "seed+" : "grid-");
            break;
        }
        viz_app_run_frames(a, 1);
        if (bfn_rng_below(&rng, 4) == 0)
            SDL_Delay((Uint32)bfn_rng_below(&rng, 20));
        actions++;
    }
    viz_app_state s = fx_state(a);
    printf("hammer: %d actions in %.0f s, %d sampling restarts, training at step %lld\n",
           actions, seconds, (int)s.run_gen - restarts0, (long long)s.train_step);
    CHECK(actions > 50, "actions performed: %d", actions);
    CHECK((int)s.run_gen - restarts0 > 10, "sampling restarts: %d", (int)s.run_gen - restarts0);
    /* let the shown training state catch up (it is copied at most 10 times a
     * second), then make sure training runs */
    for (int k = 0; k < 5; k++) {
        settle(a, 0.3);
        s = fx_state(a);
        if (s.train_state != VIZ_TRAIN_PAUSED)
            break;
        click_train(a, "train.pause");
    }
    CHECK(s.train_state == VIZ_TRAIN_RUNNING || s.train_state == VIZ_TRAIN_DONE,
          "training still running (state %s)", viz_train_state_name(s.train_state));
    int64_t s1 = wait_train(a, s.train_step + 3, 60);
    CHECK(s1 >= s.train_step + 3, "training keeps stepping (%lld -> %lld, state %s: %.200s)",
          (long long)s.train_step, (long long)s1, viz_train_state_name(fx_state(a).train_state),
          fx_state(a).train_message);
    CHECK(isfinite(fx_state(a).train_loss) && fx_state(a).train_loss > 0, "training loss %g",
          fx_state(a).train_loss);

    /* settle on known settings through the UI and check the sample is exact */
    fx_click(a, "tab.inspect");
    fx_click(a, "model");
    for (int i = 0; i < 200; i++)
        viz_app_key(a, SDLK_BACKSPACE, 0);
    for (size_t i = 0; i < strlen(model_a); i += 15) {
        char chunk[16];
        snprintf(chunk, sizeof chunk, "%.15s", model_a + i);
        viz_app_type(a, chunk);
    }
    fx_key(a, SDLK_RETURN, 0);
    SDL_Rect nr;
    viz_app_widget_rect(a, "n", &nr);
    int nx = viz_ui_slider_x_of(nr, 8, 1, 1000, 1);
    viz_app_mouse_move(a, nx, nr.y + nr.h / 2);
    viz_app_mouse_button(a, nx, nr.y + nr.h / 2, 1);
    viz_app_mouse_button(a, nx, nr.y + nr.h / 2, 0);
    viz_app_run_frames(a, 1);
    for (int i = 0; i < 8 && fx_state(a).settings.grid != 2; i++)
        fx_key(a, SDLK_g, fx_state(a).settings.grid > 2 ? KMOD_LSHIFT : 0);
    CHECK(viz_app_wait_run(a, 60), "the last run finished");
    s = fx_state(a);
    CHECK(s.settings.n == 8 && s.settings.grid == 2, "settled on n %d grid %d", s.settings.n,
          s.settings.grid);
    int cells = 0, D = 0;
    uint8_t *got = fx_app_final(a, &cells, &D);
    uint8_t *want = fx_engine_sample(model_a, s.settings.n, s.settings.beta1, s.settings.seed, 4,
                                     s.settings.argmax, NULL);
    int diff = 0;
    for (int i = 0; got && i < 4 * 256; i++)
        diff += got[i] != want[i];
    CHECK(got && cells * D == 4 * 256, "final slot of the settled run");
    CHECK_NEAR(0, diff, 0, "pixels differing from bfn_sampler after the hammering "
                           "(beta1 %g seed %llu argmax %d)",
               s.settings.beta1, (unsigned long long)s.settings.seed, s.settings.argmax);
    free(got);
    free(want);

    /* quit while training runs: what is on disk must still load */
    char saved_path[700];
    snprintf(saved_path, sizeof saved_path, "%s/runs/viz-mnist.bfn", dir);
    unlink(saved_path);
    click_train(a, "train.save");
    struct stat sb0;
    for (double end = viz_now() + 120; stat(saved_path, &sb0) != 0 && viz_now() < end;) {
        viz_app_run_frames(a, 1);
        SDL_Delay(5);
    }
    CHECK(fx_state(a).train_state == VIZ_TRAIN_RUNNING, "training running at quit");
    viz_app_destroy(a);
    char ckpt[700], saved[700];
    snprintf(ckpt, sizeof ckpt, "%s/runs/viz-mnist.ckpt", dir);
    snprintf(saved, sizeof saved, "%s/runs/viz-mnist.bfn", dir);
    bfn_net *net = NULL;
    bfn_trainer *tr = NULL;
    bfn_err err = {0};
    struct stat sb;
    if (stat(ckpt, &sb) == 0) {
        CHECK(bfn_trainer_load(ckpt, &net, &tr, NULL, 0, &err) == BFN_OK, "checkpoint loads: %s",
              err.msg);
        bfn_trainer_destroy(tr);
        bfn_net_destroy(net);
        net = NULL;
    }
    CHECK(stat(saved, &sb) == 0, "the saved model exists");
    CHECK(bfn_model_load_net(saved, &net, NULL, 1, &err) == BFN_OK, "saved model loads: %s",
          err.msg);
    bfn_net_destroy(net);
}

static void test_app_training_snapshot_samples_in_viewer_like_the_saved_model(void)
{
    viz_app *a = open_app();
    CHECK(click_train(a, "train.start"), "Start");
    int64_t st = wait_train(a, 10, 300);
    CHECK(st >= 10, "trained 10 steps (%lld)", (long long)st);
    click_train(a, "train.pause");
    for (double end = viz_now() + 60; fx_state(a).train_state != VIZ_TRAIN_PAUSED && viz_now() < end;)
        viz_app_run_frames(a, 1);
    CHECK_NEAR(VIZ_TRAIN_PAUSED, fx_state(a).train_state, 0, "paused");
    char saved[700];
    snprintf(saved, sizeof saved, "%s/runs/viz-mnist.bfn", dir);
    unlink(saved);
    click_train(a, "train.save");
    click_train(a, "train.use");
    click_train(a, "train.preview");
    struct stat sb;
    /* a time limit, not a frame count: sanitizer builds on a busy machine
     * draw frames slowly while the save waits for the training thread */
    for (double end = viz_now() + 120; stat(saved, &sb) != 0 && viz_now() < end;) {
        viz_app_run_frames(a, 1);
        SDL_Delay(5);
    }
    CHECK(stat(saved, &sb) == 0, "Save model wrote %s", saved);
    for (double end = viz_now() + 120; !strstr(fx_state(a).model_label, "snapshot") &&
                                       viz_now() < end;) {
        viz_app_run_frames(a, 1);
        SDL_Delay(5);
    }
    CHECK(viz_app_wait_run(a, 60), "the snapshot's run finished");
    viz_app_state s = fx_state(a);
    CHECK(strstr(s.model_label, "training snapshot") != NULL, "viewer label '%s'", s.model_label);
    int cells = 0, D = 0;
    uint8_t *got = fx_app_final(a, &cells, &D);
    CHECK(got && D == 28 * 28, "a 28x28 run (D = %d)", D);
    if (got && stat(saved, &sb) == 0) {
        uint8_t *want = fx_engine_sample(saved, s.settings.n, s.settings.beta1, s.settings.seed,
                                         cells, s.settings.argmax, NULL);
        int diff = 0;
        for (int i = 0; i < cells * D; i++)
            diff += got[i] != want[i];
        CHECK_NEAR(0, diff, 0, "pixels differing between the snapshot run and the saved model");
        free(want);
    }
    free(got);
    for (double end = viz_now() + 120; fx_state(a).train_previews == 0 && viz_now() < end;) {
        viz_app_run_frames(a, 1);
        SDL_Delay(5);
    }
    CHECK(fx_state(a).train_previews > 0, "a preview grid was sampled");
    viz_app_destroy(a);
}

int main(void)
{
    make_fixture();
    RUN(test_app_training_snapshot_samples_in_viewer_like_the_saved_model);
    RUN(test_app_survives_settings_hammering_while_sampling_and_training);
    fx_rmtree(dir);
    return check_finish();
}
