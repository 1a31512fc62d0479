/* Headless tests of bfnviz driven like a person: synthetic mouse and key
 * events at widget positions taken from the app's own layout, results
 * compared with the engine's sampler run directly on the same model. */
#include "app_fixture.h"
#include "bfn/gemm.h"
#include "script.h"
#include "viz.h"

static char dir[256], model[512];

static int count_diff(const uint8_t *x, const uint8_t *y, size_t n)
{
    int d = 0;
    for (size_t i = 0; i < n; i++)
        d += x[i] != y[i];
    return d;
}

static void test_app_run_completes_and_final_frame_equals_engine_sampler(void)
{
    viz_app *a = fx_open(dir, model, 12, 4, 7);
    CHECK(viz_app_wait_run(a, 60), "the run finished within 60 s");
    viz_run *r = viz_app_run_ref(a);
    CHECK(r && viz_run_get_state(r) == VIZ_RUN_DONE, "run state is DONE");
    if (r) {
        CHECK_NEAR(1, r->stride, 0, "every step kept");
        CHECK_NEAR(13, viz_run_ready(r), 0, "slots published: 12 steps + the final output");
        CHECK_NEAR(13, atomic_load(&r->frames_seen), 0, "observer calls");
        int bad = 0;
        for (int s = 0; s < r->n_slots; s++)
            bad += r->slot_step[s] != s + 1;
        CHECK_NEAR(0, bad, 0, "slots hold steps 1..13 in order");
        CHECK_NEAR(3.0, r->sp.beta1, 0, "sampled at the model's own beta(1)");
    }
    viz_run_unref(r);
    int cells = 0, D = 0;
    uint8_t *got = fx_app_final(a, &cells, &D);
    uint8_t *want = fx_engine_sample(model, 12, 0, 7, 16, 0, NULL);
    CHECK(got != NULL, "final slot available");
    if (got) {
        CHECK_NEAR(16 * 256, cells * D, 0, "cells x pixels");
        CHECK_NEAR(0, count_diff(want, got, 16 * 256), 0, "pixels differing from bfn_sampler");
    }
    /* what the screen shows: the final view at the end, one grey level per class */
    fx_key(a, SDLK_END, 0);
    fx_key(a, SDLK_5, 0);
    int w, h, wrong = 0;
    uint8_t *pix = viz_app_read_pixels(a, &w, &h);
    CHECK(pix != NULL, "pixels read back");
    for (int c = 0; pix && got && c < 16; c++)
        for (int j = 0; j < 256; j += 17) {
            int sx, sy;
            if (!viz_app_pixel_pos(a, c, j % 16, j / 16, &sx, &sy)) {
                wrong++;
                continue;
            }
            int v = pix[((size_t)sy * w + sx) * 3];
            wrong += v != (got[c * 256 + j] ? 243 : 12);
        }
    CHECK_NEAR(0, wrong, 0, "screen pixels not matching the final classes (16 x 16 probes)");
    free(pix);
    free(got);
    free(want);
    viz_app_destroy(a);
}

static void test_app_right_arrow_advances_the_shown_step_by_one(void)
{
    viz_app *a = fx_open(dir, model, 12, 2, 5);
    CHECK(viz_app_wait_run(a, 60), "the run finished");
    fx_key(a, SDLK_HOME, 0);
    viz_app_state s = fx_state(a);
    CHECK_NEAR(0, s.position, 0, "Home: position");
    CHECK_NEAR(0, s.playing, 0, "Home pauses playback");
    fx_key(a, SDLK_RIGHT, 0);
    s = fx_state(a);
    CHECK_NEAR(1, s.position, 0, "Right: position");
    CHECK_NEAR(1, s.shown_step, 0, "Right: step shown");
    fx_key(a, SDLK_RIGHT, 0);
    CHECK_NEAR(2, fx_state(a).shown_step, 0, "Right again: step shown");
    fx_key(a, SDLK_LEFT, 0);
    CHECK_NEAR(1, fx_state(a).shown_step, 0, "Left: step shown");
    fx_key(a, SDLK_END, 0);
    CHECK_NEAR(13, fx_state(a).shown_step, 0, "End: the final output (n + 1)");
    fx_key(a, SDLK_RIGHT, 0);
    CHECK_NEAR(13, fx_state(a).shown_step, 0, "Right at the end stays at the end");
    /* the same through the timeline's button */
    fx_key(a, SDLK_HOME, 0);
    CHECK(fx_click(a, "fwd"), "forward button on screen");
    CHECK_NEAR(1, fx_state(a).shown_step, 0, "forward button: step shown");
    viz_app_destroy(a);
}

static void test_app_dragging_beta1_slider_changes_setting_and_samples(void)
{
    viz_app *a = fx_open(dir, model, 10, 2, 3);
    CHECK(viz_app_wait_run(a, 60), "first run finished");
    int cells, D;
    uint8_t *before = fx_app_final(a, &cells, &D);
    SDL_Rect r;
    CHECK(viz_app_widget_rect(a, "beta1", &r), "beta1 slider on screen");
    int y = r.y + r.h / 2, x0 = r.x + r.w / 4, x1 = r.x + r.w * 3 / 4;
    double want = viz_ui_slider_value_at(r, x1, 0.1, 30, 1);
    viz_app_mouse_move(a, x0, y);
    viz_app_mouse_button(a, x0, y, 1);
    viz_app_run_frames(a, 1);
    viz_app_mouse_move(a, (x0 + x1) / 2, y);
    viz_app_run_frames(a, 1);
    viz_app_mouse_move(a, x1, y);
    viz_app_run_frames(a, 1);
    viz_app_mouse_button(a, x1, y, 0);
    viz_app_run_frames(a, 1);
    viz_app_state s = fx_state(a);
    CHECK_NEAR(want, s.settings.beta1, 1e-12, "beta(1) setting after the drag");
    CHECK(want > 3.5, "the drag moved beta(1) well above the model's 3 (got %g)", want);
    CHECK(viz_app_wait_run(a, 60), "run at the new beta(1) finished");
    viz_run *run = viz_app_run_ref(a);
    CHECK_NEAR(want, run ? run->sp.beta1 : 0, 1e-12, "the shown run's beta(1)");
    viz_run_unref(run);
    uint8_t *after = fx_app_final(a, &cells, &D);
    uint8_t *ref = fx_engine_sample(model, 10, want, 3, 4, 0, NULL);
    CHECK(before && after, "both finals available");
    if (before && after) {
        CHECK(count_diff(before, after, 4 * 256) > 0, "samples changed with beta(1)");
        CHECK_NEAR(0, count_diff(ref, after, 4 * 256), 0,
                   "pixels differing from bfn_sampler at the new beta(1)");
    }
    free(before);
    free(after);
    free(ref);
    viz_app_destroy(a);
}

/* Moves the mouse over pixel (px, py) of cell; (*sx, *sy) is where. */
static void point_at(viz_app *a, int cell, int px, int py, int *sx, int *sy)
{
    CHECK(viz_app_pixel_pos(a, cell, px, py, sx, sy), "pixel on screen");
    viz_app_mouse_move(a, *sx, *sy);
}

/* A click at (sx, sy) (pins the pixel under it). */
static void click_at(viz_app *a, int sx, int sy)
{
    viz_app_mouse_button(a, sx, sy, 1);
    viz_app_mouse_button(a, sx, sy, 0);
}

static void test_app_hovering_a_pixel_fills_inspector_with_engine_values(void)
{
    const int n = 20, cell = 3, px = 5, py = 9;
    viz_app *a = fx_open(dir, model, n, 2, 11);
    CHECK(viz_app_wait_run(a, 60), "the run finished");
    int sx, sy;
    point_at(a, cell, px, py, &sx, &sy);
    viz_app_run_frames(a, 1);
    viz_app_state s = fx_state(a);
    CHECK(s.insp_cell == cell && s.insp_x == px && s.insp_y == py,
          "inspected pixel: cell %d (%d, %d), want cell %d (%d, %d)", s.insp_cell, s.insp_x,
          s.insp_y, cell, px, py);
    static fx_trace tr;
    memset(&tr, 0, sizeof tr);
    tr.cell = cell;
    tr.px = py * 16 + px;
    free(fx_engine_sample(model, n, 0, 11, 4, 0, &tr));
    float th[64], p[64], y[64];
    uint8_t k[64];
    int m = viz_app_inspector(a, th, p, y, k, 64);
    CHECK_NEAR(n + 1, m, 0, "inspector series length (steps + final)");
    CHECK_NEAR(n + 1, tr.calls, 0, "engine observer calls");
    double dth = 0, dp = 0, dy = 0;
    int dk = 0;
    for (int i = 0; i < m && i < n + 1; i++) {
        dth = fmax(dth, fabs(th[i] - tr.theta[i]));
        dp = fmax(dp, fabs(p[i] - tr.p[i]));
        dy = fmax(dy, fabs(y[i] - tr.y[i]));
        dk += k[i] != tr.k[i];
    }
    CHECK_NEAR(0, dth, 1e-5, "max |theta_on - engine| over the run (16-bit store)");
    CHECK_NEAR(0, dp, 1e-5, "max |p_O(on) - engine| over the run (16-bit store)");
    CHECK_NEAR(0, dy, 0, "max |y - engine| over the run (exact floats)");
    CHECK_NEAR(0, dk, 0, "steps whose class k differs from the engine's");
    /* a click pins it: moving away no longer changes the inspected pixel */
    click_at(a, sx, sy);
    viz_app_run_frames(a, 1);
    int ox, oy;
    viz_app_pixel_pos(a, 0, 1, 1, &ox, &oy);
    viz_app_mouse_move(a, ox, oy);
    viz_app_run_frames(a, 1);
    s = fx_state(a);
    CHECK(s.insp_cell == cell && s.insp_x == px, "pinned pixel stays (cell %d x %d)", s.insp_cell,
          s.insp_x);
    fx_key(a, SDLK_ESCAPE, 0);
    viz_app_mouse_move(a, ox + 1, oy);
    viz_app_run_frames(a, 1);
    CHECK_NEAR(0, fx_state(a).insp_cell, 0, "Esc unpins: the inspector follows the mouse again");
    viz_app_destroy(a);
}

/* Runs frames until a run newer than generation `after` shows an error. */
static void wait_error(viz_app *a, uint64_t after)
{
    for (int i = 0; i < 2000; i++) {
        viz_app_state s = fx_state(a);
        if (s.run_gen > after && s.run_state == VIZ_RUN_ERROR)
            break;
        viz_app_run_frames(a, 1);
        SDL_Delay(5);
    }
}

static void test_app_corrupt_model_shows_error_and_keeps_running(void)
{
    char bad[600], flipped[600];
    snprintf(bad, sizeof bad, "%s/bad.bfn", dir);
    snprintf(flipped, sizeof flipped, "%s/flipped.bfn", dir);
    FILE *f = fopen(bad, "wb");
    for (int i = 0; i < 1000; i++)
        fputc((i * 131) & 255, f);
    fclose(f);
    /* a real model with one byte changed in the middle: fails its checksum */
    FILE *in = fopen(model, "rb"), *out = fopen(flipped, "wb");
    int c, i = 0;
    while ((c = fgetc(in)) != EOF)
        fputc(i++ == 5000 ? c ^ 0x40 : c, out);
    fclose(in);
    fclose(out);

    viz_app *a = fx_open(dir, bad, 10, 2, 1);
    wait_error(a, 0);
    viz_app_state s = fx_state(a);
    CHECK_NEAR(VIZ_RUN_ERROR, s.run_state, 0, "run state is ERROR");
    CHECK(strstr(s.error, "bad.bfn") != NULL, "error names the file: '%s'", s.error);
    long f0 = s.frames_drawn;
    viz_app_run_frames(a, 5);
    CHECK_NEAR(f0 + 5, fx_state(a).frames_drawn, 0, "frames still drawn");
    int w, h, red = 0;
    uint8_t *pix = viz_app_read_pixels(a, &w, &h);
    for (int j = 0; pix && j < w * h; j++)
        red += pix[3 * j] == 240 && pix[3 * j + 1] == 98 && pix[3 * j + 2] == 86;
    free(pix);
    CHECK(red > 100, "the error box is on screen (%d pixels of its colour)", red);
    fx_key(a, SDLK_2, 0);
    CHECK_NEAR(VIZ_VIEW_P, fx_state(a).view, 0, "keys still work");

    uint64_t gen = fx_state(a).run_gen;
    fx_open_model_field(a, flipped);
    wait_error(a, gen);
    s = fx_state(a);
    CHECK(strstr(s.model_path, "flipped.bfn") != NULL, "model field applied: '%.200s'",
          s.model_path);
    CHECK(strstr(s.error, "flipped.bfn") && strstr(s.error, "checksum"),
          "checksum error named: '%s'", s.error);

    fx_open_model_field(a, model);
    CHECK(viz_app_wait_run(a, 60), "the good model samples after the errors");
    s = fx_state(a);
    CHECK_NEAR(VIZ_RUN_DONE, s.run_state, 0, "run state");
    CHECK(!strcmp(s.model_path, model), "model path '%.200s'", s.model_path);
    viz_app_destroy(a);
}

static void test_app_memory_cap_keeps_every_mth_step_and_sums_messages(void)
{
    const int n = 200;
    viz_options o;
    fx_dirs d;
    fx_options(&o, &d, dir, model, n, 4, 9);
    o.mem_cap_mb = 1;
    viz_app *a = fx_create(&o);
    CHECK(viz_app_wait_run(a, 120), "the run finished");
    viz_run *r = viz_app_run_ref(a);
    CHECK(r != NULL, "a run on screen");
    if (!r) {
        viz_app_destroy(a);
        return;
    }
    int want_stride = viz_run_plan_stride(n, 16, 256, (size_t)1 << 20);
    CHECK_NEAR(9, want_stride, 0, "planned stride for 16 cells x 256 pixels in 1 MB");
    CHECK_NEAR(want_stride, r->stride, 0, "run stride");
    CHECK((size_t)r->n_slots * 16 * 256 * VIZ_RUN_BYTES_PER_VALUE <= ((size_t)1 << 20),
          "kept slots fit the cap (%d slots)", r->n_slots);
    CHECK(r->slot_step[r->n_slots - 2] == n && r->slot_step[r->n_slots - 1] == n + 1,
          "step n and the final output are always kept");
    static fx_trace tr;
    memset(&tr, 0, sizeof tr);
    tr.cell = 5;
    tr.px = 100;
    free(fx_engine_sample(model, n, 0, 9, 16, 0, &tr));
    double dy = 0, dth = 0;
    int prev = 0;
    for (int s = 0; s < r->n_slots - 1; s++) {
        int step = r->slot_step[s];
        double sum = 0;
        for (int i = prev; i < step; i++)
            sum += tr.y[i];
        prev = step;
        size_t o2 = viz_run_at(r, s, 5, 100);
        dy = fmax(dy, fabs(r->y[o2] - sum));
        dth = fmax(dth, fabs(viz_run_theta(r, s, 5, 100) - tr.theta[step - 1]));
    }
    CHECK_NEAR(0, dy, 1e-4, "kept y = sum of the messages since the previous kept step");
    CHECK_NEAR(0, dth, 1e-5, "kept theta = engine theta at that step");
    viz_run_unref(r);
    viz_app_destroy(a);
}

static void test_app_keys_change_view_seed_grid_n_and_help(void)
{
    viz_app *a = fx_open(dir, model, 10, 3, 4);
    CHECK(viz_app_wait_run(a, 60), "the run finished");
    fx_key(a, SDLK_3, 0);
    CHECK_NEAR(VIZ_VIEW_K, fx_state(a).view, 0, "3: class view");
    fx_key(a, SDLK_s, 0);
    CHECK_NEAR(5, (double)fx_state(a).settings.seed, 0, "S: next seed");
    fx_key(a, SDLK_s, KMOD_LSHIFT);
    fx_key(a, SDLK_s, KMOD_LSHIFT);
    CHECK_NEAR(3, (double)fx_state(a).settings.seed, 0, "Shift+S twice: previous seeds");
    fx_key(a, SDLK_g, KMOD_LSHIFT);
    CHECK_NEAR(2, fx_state(a).settings.grid, 0, "Shift+G: smaller grid");
    fx_key(a, SDLK_UP, 0);
    CHECK_NEAR(15, fx_state(a).settings.n, 0, "Up: next n");
    fx_key(a, SDLK_a, 0);
    CHECK_NEAR(1, fx_state(a).settings.argmax, 0, "A: argmax final");
    CHECK(viz_app_wait_run(a, 60), "the restarted run finished");
    viz_run *r = viz_app_run_ref(a);
    CHECK(r && r->sp.seed == 3 && r->sp.grid == 2 && r->sp.n == 15 && r->sp.argmax == 1,
          "the run uses the new settings (seed %llu grid %d n %d argmax %d)",
          r ? (unsigned long long)r->sp.seed : 0ULL, r ? r->sp.grid : 0, r ? r->sp.n : 0,
          r ? r->sp.argmax : 0);
    viz_run_unref(r);
    int cells, D;
    uint8_t *got = fx_app_final(a, &cells, &D);
    uint8_t *want = fx_engine_sample(model, 15, 0, 3, 4, 1, NULL);
    CHECK(got != NULL, "final slot available");
    if (got)
        CHECK_NEAR(0, count_diff(got, want, 4 * 256), 0, "argmax final vs bfn_sampler");
    free(got);
    free(want);
    fx_key(a, SDLK_F1, 0);
    CHECK_NEAR(1, fx_state(a).help_open, 0, "F1 opens the cheat sheet");
    fx_key(a, SDLK_ESCAPE, 0);
    CHECK_NEAR(0, fx_state(a).help_open, 0, "Esc closes it");
    SDL_Rect r0, r1;
    viz_app_widget_rect(a, "timeline", &r0);
    fx_key(a, SDLK_EQUALS, KMOD_LCTRL);
    viz_app_widget_rect(a, "timeline", &r1);
    CHECK_NEAR(r0.h * 1.25, r1.h, 1.5, "Ctrl+= zooms the interface (timeline height)");
    fx_key(a, SDLK_0, KMOD_LCTRL);
    viz_app_widget_rect(a, "timeline", &r1);
    CHECK_NEAR(r0.h, r1.h, 0, "Ctrl+0 resets the zoom");
    viz_app_destroy(a);
}

static int is_png(const char *path)
{
    unsigned char b[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(b, 1, 8, f);
    fclose(f);
    return n == 8 && b[0] == 0x89 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G';
}

static void test_app_exports_view_strip_and_frames_as_png(void)
{
    viz_app *a = fx_open(dir, model, 6, 2, 2);
    CHECK(viz_app_wait_run(a, 60), "the run finished");
    fx_key(a, SDLK_p, 0);
    fx_key(a, SDLK_e, 0);
    fx_key(a, SDLK_f, 0);
    for (int i = 0; i < 200; i++)
        viz_app_run_frames(a, 1);
    char p[700];
    snprintf(p, sizeof p, "%s/out/view-0001.png", dir);
    CHECK(is_png(p), "%s is a PNG", p);
    snprintf(p, sizeof p, "%s/out/strip-0001.png", dir);
    CHECK(is_png(p), "%s is a PNG", p);
    int frames = 0;
    for (int i = 0; i < 10; i++) {
        snprintf(p, sizeof p, "%s/out/frames-0001/frame-%04d.png", dir, i);
        frames += is_png(p);
    }
    CHECK_NEAR(8, frames, 0, "frame PNGs: the prior, 6 steps and the final output");
    viz_app_destroy(a);
}

static void test_app_layout_adapts_to_a_narrow_window(void)
{
    viz_options o;
    fx_dirs d;
    fx_options(&o, &d, dir, model, 5, 2, 1);
    o.width = 800;
    o.height = 600;
    viz_app *a = fx_create(&o);
    viz_app_wait_run(a, 60);
    SDL_Rect r;
    CHECK(viz_app_widget_rect(a, "tab.controls", &r), "narrow: a Controls tab exists");
    CHECK(viz_app_widget_rect(a, "beta1", &r), "narrow: controls shown first");
    CHECK(!viz_app_widget_rect(a, "inspector", &r), "narrow: the inspector is behind its tab");
    CHECK(fx_click(a, "tab.inspect"), "click the Inspect tab");
    CHECK(viz_app_widget_rect(a, "inspector", &r), "the inspector is shown");
    CHECK(viz_app_widget_rect(a, "cell.3", &r) && r.x + r.w <= 800, "cells fit the window");
    viz_app_destroy(a);
}

static void test_app_tooltip_appears_after_hovering_a_control(void)
{
    viz_app *a = fx_open(dir, model, 5, 2, 1);
    SDL_Rect r;
    CHECK(viz_app_widget_rect(a, "seed+", &r), "seed+ button on screen");
    viz_app_mouse_move(a, r.x + r.w / 2, r.y + r.h / 2);
    viz_app_run_frames(a, 1);
    int w, h, before = 0, after = 0;
    uint8_t *pix = viz_app_read_pixels(a, &w, &h);
    for (int j = 0; pix && j < w * h; j++)
        before += pix[3 * j] == 250 && pix[3 * j + 1] == 246 && pix[3 * j + 2] == 214;
    free(pix);
    SDL_Delay(600);
    viz_app_run_frames(a, 1);
    pix = viz_app_read_pixels(a, &w, &h);
    for (int j = 0; pix && j < w * h; j++)
        after += pix[3 * j] == 250 && pix[3 * j + 1] == 246 && pix[3 * j + 2] == 214;
    free(pix);
    CHECK_NEAR(0, before, 0, "tooltip pixels right after the mouse arrived");
    CHECK(after > 500, "tooltip pixels after 0.6 s of hovering: %d", after);
    viz_app_destroy(a);
}

static void test_app_training_without_data_reports_the_error_in_the_panel(void)
{
    viz_options o;
    fx_dirs d;
    fx_options(&o, &d, dir, model, 5, 2, 1);
    o.data_dir = "/nonexistent-bfnviz-data";
    viz_app *a = fx_create(&o);
    CHECK(fx_click(a, "tab.train"), "Train tab");
    CHECK(fx_click(a, "train.start"), "Start button");
    for (int i = 0; i < 1000 && fx_state(a).train_state != VIZ_TRAIN_ERROR; i++) {
        viz_app_run_frames(a, 1);
        SDL_Delay(5);
    }
    viz_app_state s = fx_state(a);
    CHECK_NEAR(VIZ_TRAIN_ERROR, s.train_state, 0, "training state");
    CHECK(strstr(s.train_message, "/nonexistent-bfnviz-data") != NULL,
          "the message names the data directory: '%s'", s.train_message);
    long f0 = s.frames_drawn;
    viz_app_run_frames(a, 3);
    CHECK_NEAR(f0 + 3, fx_state(a).frames_drawn, 0, "the app keeps drawing");
    /* with no run, Save model and Preview say so instead of doing nothing */
    const char *buttons[2] = {"train.save", "train.preview"};
    for (int i = 0; i < 2; i++) {
        CHECK(fx_click(a, buttons[i]), "%s button", buttons[i]);
        s = fx_state(a);
        CHECK(s.notice_err && strstr(s.notice, "Start first") != NULL,
              "%s without a run: notice '%s'", buttons[i], s.notice);
    }
    viz_app_destroy(a);
}

/* A quit request (closed window, SIGINT/SIGTERM) while a script waits
 * ends the wait at once: the script stops with "interrupted" instead of
 * spinning until the wait's time limit. */
static void test_app_quit_request_stops_a_waiting_script(void)
{
    viz_app *a = fx_open(dir, model, 12, 4, 7);
    char path[600], err[700] = "";
    snprintf(path, sizeof path, "%s/wait.txt", dir);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "script file written");
    if (!f) {
        viz_app_destroy(a);
        return;
    }
    fputs("wait-step 1000 600\nsleep 600\nscreenshot never.png\n", f);
    fclose(f);
    SDL_TimerID t = SDL_AddTimer(300, viz_push_quit, NULL);
    double t0 = viz_now();
    int rc = viz_script_run(a, path, err, sizeof err);
    double took = viz_now() - t0;
    SDL_RemoveTimer(t);
    CHECK(rc != 0, "the interrupted script reports failure (rc %d)", rc);
    CHECK(strstr(err, "interrupted") != NULL, "message says interrupted: '%s'", err);
    CHECK(strstr(err, ":1:") != NULL, "at the waiting line: '%s'", err);
    CHECK(took < 60, "stopped long before the 600 s limit (%.1f s)", took);
    viz_app_destroy(a);
}

/* A pixel pinned in a 16x16 run stays pinned when a model of 8x8 images
 * loads: the inspector must not read it from the smaller run (it shows its
 * hint) and shows it again once a 16x16 run is back. */
static void test_app_pinned_pixel_outside_a_smaller_model_is_not_read(void)
{
    char small[600];
    snprintf(small, sizeof small, "%s/m8.bfn", dir);
    fx_make_model(small, 8, 22);
    const int n = 10, cell = 1, px = 14, py = 15;
    viz_app *a = fx_open(dir, model, n, 2, 5);
    CHECK(viz_app_wait_run(a, 60), "the 16x16 run finished");
    int sx, sy;
    point_at(a, cell, px, py, &sx, &sy);
    click_at(a, sx, sy);
    viz_app_run_frames(a, 1);
    float th[64];
    CHECK_NEAR(n + 1, viz_app_inspector(a, th, NULL, NULL, NULL, 64), 0,
               "pinned pixel (%d, %d) inspected in the 16x16 run", px, py);
    fx_open_model_field(a, small);
    CHECK(viz_app_wait_run(a, 60), "the 8x8 run finished");
    viz_app_run_frames(a, 3); /* draws the inspector panel with the pin in place */
    viz_app_state s = fx_state(a);
    CHECK(s.insp_cell == cell && s.insp_x == px && s.insp_y == py,
          "the pin is kept: cell %d (%d, %d)", s.insp_cell, s.insp_x, s.insp_y);
    CHECK_NEAR(0, viz_app_inspector(a, th, NULL, NULL, NULL, 64), 0,
               "values of pixel (%d, %d) read from an 8x8 run", px, py);
    fx_open_model_field(a, model);
    CHECK(viz_app_wait_run(a, 60), "the 16x16 run finished again");
    viz_app_run_frames(a, 1);
    CHECK_NEAR(n + 1, viz_app_inspector(a, th, NULL, NULL, NULL, 64), 0,
               "the pinned pixel is inspected again in a 16x16 run");
    viz_app_destroy(a);
}

/* The app finds its fonts, digits and shipped models when started outside
 * the repository: under the directory above its executable's (this test's is
 * a build directory inside the repository) or the source tree; a path under
 * the working directory comes first. */
static void test_locate_finds_repository_paths_from_any_directory(void)
{
    char orig[VIZ_PATH_MAX], out[VIZ_PATH_MAX], here[700];
    CHECK(getcwd(orig, sizeof orig) != NULL, "getcwd");
    snprintf(here, sizeof here, "%s/elsewhere", dir);
    CHECK(mkdir(here, 0755) == 0 && chdir(here) == 0, "chdir to %.300s", here);
    const char *font = "assets/fonts/DejaVuSans.ttf";
    CHECK(bfn_locate(font, out, sizeof out) == 1, "the font is found from %.300s: '%.300s'", here, out);
    size_t n = strlen(out), r = strlen(font);
    struct stat sb;
    CHECK(n > r && !strcmp(out + n - r, font) && out[n - r - 1] == '/' && stat(out, &sb) == 0,
          "'%.300s' is an existing path ending in /%.100s", out, font);
    CHECK(mkdir("models", 0755) == 0, "mkdir models");
    CHECK(bfn_locate("models", out, sizeof out) == 1 && !strcmp(out, "models"),
          "models/ under the working directory comes first: '%.300s'", out);
    CHECK(bfn_locate("no/such/path", out, sizeof out) == 0 && !strcmp(out, "no/such/path"),
          "a path found nowhere is returned as given: '%.300s'", out);
    CHECK(chdir(orig) == 0, "chdir back to %.300s", orig);
}

static void test_app_threads_default_to_the_cores_up_to_four(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int want = cores < 1 ? 1 : cores > VIZ_AUTO_THREADS_MAX ? VIZ_AUTO_THREADS_MAX : (int)cores;
    CHECK_NEAR(want, viz_threads_for(0), 0, "threads when not asked (%ld cores online)", cores);
    CHECK_NEAR(3, viz_threads_for(3), 0, "threads when 3 are asked");
    int prev = bfn_gemm_set_threads(1);
    viz_app *a = fx_open(dir, model, 4, 2, 1);
    CHECK_NEAR(want, bfn_gemm_threads(), 0, "network threads of an app opened with the defaults");
    CHECK(viz_app_wait_run(a, 60), "its first run finished");
    viz_app_destroy(a);
    viz_options o;
    fx_dirs d;
    fx_options(&o, &d, dir, model, 4, 2, 1);
    o.blas_threads = 1;
    bfn_gemm_set_threads(2);
    a = fx_create(&o);
    CHECK_NEAR(1, bfn_gemm_threads(), 0, "network threads of an app opened with --threads 1");
    viz_app_destroy(a);
    bfn_gemm_set_threads(prev);
}

/* Rightmost column of r holding text: a pixel brighter than the darkest in r by 60. */
static int ink_right_edge(const uint8_t *pix, int w, SDL_Rect r)
{
    int dark = 255, right = -1;
    for (int y = r.y; y < r.y + r.h; y++)
        for (int x = r.x; x < r.x + r.w; x++)
            if (pix[((size_t)y * w + x) * 3] < dark)
                dark = pix[((size_t)y * w + x) * 3];
    for (int y = r.y; y < r.y + r.h; y++)
        for (int x = r.x; x < r.x + r.w; x++)
            if (pix[((size_t)y * w + x) * 3] > dark + 60 && x > right)
                right = x;
    return right;
}

static void test_app_pixel_readout_fits_beside_the_colour_bar(void)
{
    const int widths[3] = {1280, 1000, 800}, heights[3] = {800, 700, 600};
    for (int i = 0; i < 3; i++)
        for (int pinned = 0; pinned < 2; pinned++) {
            viz_options o;
            fx_dirs d;
            fx_options(&o, &d, dir, model, 5, 2, 1);
            o.width = widths[i];
            o.height = heights[i];
            viz_app *a = fx_create(&o);
            viz_app_wait_run(a, 60);
            int sx, sy;
            point_at(a, 1, 7, 8, &sx, &sy);
            if (pinned)
                click_at(a, sx, sy);
            viz_app_run_frames(a, 2);
            SDL_Rect r;
            int w, h;
            uint8_t *pix = viz_app_read_pixels(a, &w, &h);
            CHECK(viz_app_widget_rect(a, "legend.value", &r) && pix && r.w > 20 &&
                      r.x + r.w + 1 < w,
                  "%dx%d: the pixel readout's area", widths[i], heights[i]);
            if (pix && r.w > 20 && r.x + r.w + 1 < w) {
                SDL_Rect wide = {r.x, r.y, r.w + 1, r.h}; /* and the gutter's first column */
                int right = ink_right_edge(pix, w, wide);
                CHECK(right > r.x + r.w / 4,
                      "%dx%d%s: the readout is drawn (rightmost ink at x %d, area %d..%d)",
                      widths[i], heights[i], pinned ? ", pinned" : "", right, r.x, r.x + r.w);
                CHECK(right < r.x + r.w - 2,
                      "%dx%d%s: the readout ends inside its area (rightmost ink at x %d, area "
                      "%d..%d)",
                      widths[i], heights[i], pinned ? ", pinned" : "", right, r.x, r.x + r.w);
            }
            free(pix);
            viz_app_destroy(a);
        }
}

/* No text runs past the side of its panel (cut off, or under the next
 * panel) in any view, at window sizes from 800x600 to 1920x1080 and at a
 * projector's zoom. */
static void test_app_text_stays_inside_its_panels(void)
{
    const char *tabs[] = {"tab.inspect", "tab.train", "tab.controls", NULL};
    for (int i = 0; i < FX_N_SIZES; i++) {
        viz_app *a = fx_open_sized(dir, model, 5, 4, FX_SIZES[i]);
        viz_app_wait_run(a, 60);
        int sx, sy;
        point_at(a, 5, 9, 7, &sx, &sy);
        click_at(a, sx, sy);
        viz_app_run_frames(a, 2);
        for (int t = 0; t < 4; t++) {
            SDL_Rect r;
            if (tabs[t] && !viz_app_widget_rect(a, tabs[t], &r))
                continue; /* the wide layout has no Controls tab */
            if (tabs[t])
                fx_click(a, tabs[t]);
            else
                fx_key(a, SDLK_F1, 0);
            viz_app_run_frames(a, 2);
            fx_check_text(a, FX_SIZES[i], tabs[t] ? tabs[t] : "help (F1)");
        }
        viz_app_destroy(a);
    }
}

int main(void)
{
    fx_tmpdir(dir, sizeof dir);
    snprintf(model, sizeof model, "%s/m16.bfn", dir);
    fx_make_model(model, 16, 21);
    RUN(test_app_run_completes_and_final_frame_equals_engine_sampler);
    RUN(test_app_right_arrow_advances_the_shown_step_by_one);
    RUN(test_app_dragging_beta1_slider_changes_setting_and_samples);
    RUN(test_app_hovering_a_pixel_fills_inspector_with_engine_values);
    RUN(test_app_corrupt_model_shows_error_and_keeps_running);
    RUN(test_app_pinned_pixel_outside_a_smaller_model_is_not_read);
    RUN(test_app_memory_cap_keeps_every_mth_step_and_sums_messages);
    RUN(test_app_keys_change_view_seed_grid_n_and_help);
    RUN(test_app_exports_view_strip_and_frames_as_png);
    RUN(test_app_layout_adapts_to_a_narrow_window);
    RUN(test_app_tooltip_appears_after_hovering_a_control);
    RUN(test_app_pixel_readout_fits_beside_the_colour_bar);
    RUN(test_app_text_stays_inside_its_panels);
    RUN(test_app_training_without_data_reports_the_error_in_the_panel);
    RUN(test_app_quit_request_stops_a_waiting_script);
    RUN(test_locate_finds_repository_paths_from_any_directory);
    RUN(test_app_threads_default_to_the_cores_up_to_four);
    fx_rmtree(dir);
    return check_finish();
}
