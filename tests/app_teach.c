/* Headless tests of the teaching mode, driven like a person (synthetic keys
 * and mouse events at the positions the app laid out) and checked against
 * the engine: drawing, Alice's bill against the evaluator's L^n for the same
 * image, the side-by-side rows, inpainting, the tour. */
#include "app_fixture.h"
#include "bfn/teach.h"
#include "teach.h"

#define D28 (28 * 28)

static char dir[256], model[512];

static viz_teach_state tstate(viz_app *a)
{
    viz_teach_state s;
    viz_teach_get_state(a, &s);
    return s;
}

/* Opens the app on the 28×28 test model and enters the teaching mode. */
static viz_app *open_teach(int n, uint64_t seed)
{
    viz_app *a = fx_open(dir, model, n, 1, seed);
    CHECK(viz_app_wait_run(a, 60), "the sampling run finished");
    fx_key(a, SDLK_l, 0);
    CHECK(tstate(a).on, "L opens the teaching mode");
    CHECK(viz_app_wait_run(a, 120), "the first lesson finished");
    return a;
}

/* Runs a whole session through the engine with the same settings. */
static uint8_t *engine_lesson(const uint8_t *x, const uint8_t *known, bfn_teach_mode mode, int n,
                              double beta1, int argmax, uint64_t seed, double *total)
{
    bfn_net *net = NULL;
    bfn_model_meta meta;
    bfn_err err = {0};
    if (bfn_model_load_net(model, &net, &meta, 4, &err) != BFN_OK)
        fx_die(err.msg);
    bfn_teach_config tc = {.n_steps = n, .beta1 = beta1 > 0 ? beta1 : meta.beta1, .seed = seed,
                           .final = argmax ? BFN_FINAL_ARGMAX : BFN_FINAL_SAMPLE, .mode = mode,
                           .x = x, .known = known};
    bfn_teach *t = NULL;
    if (bfn_teach_create(&t, net, &tc, &err) != BFN_OK)
        fx_die(err.msg);
    bfn_teach_frame f;
    while (!bfn_teach_finished(t))
        bfn_teach_step(t, &f, &err);
    if (total)
        *total = f.total;
    uint8_t *out = malloc(D28);
    memcpy(out, bfn_teach_result(t), D28);
    bfn_teach_destroy(t);
    bfn_net_destroy(net);
    return out;
}

static int count_diff(const uint8_t *x, const uint8_t *y, int n)
{
    int d = 0;
    for (int i = 0; i < n; i++)
        d += x[i] != y[i];
    return d;
}

/* A stroke with the left button through canvas pixels (x, y) pairs. */
static void stroke(viz_app *a, const int *pts, int n)
{
    int sx, sy;
    viz_teach_canvas_pos(a, pts[0], pts[1], &sx, &sy);
    viz_app_mouse_move(a, sx, sy);
    viz_app_mouse_button(a, sx, sy, 1);
    viz_app_run_frames(a, 1);
    for (int i = 1; i < n; i++) {
        viz_teach_canvas_pos(a, pts[2 * i], pts[2 * i + 1], &sx, &sy);
        viz_app_mouse_move(a, sx, sy);
        viz_app_run_frames(a, 1);
    }
    viz_app_mouse_button(a, sx, sy, 0);
    viz_app_run_frames(a, 1);
}

static void test_teach_drawing_with_the_mouse_gives_the_expected_image(void)
{
    viz_app *a = open_teach(5, 1);
    CHECK(fx_click(a, "teach.src.draw"), "the draw button is on screen");
    CHECK_NEAR(VIZ_SRC_DRAW, tstate(a).source, 0, "source after the click");
    CHECK(fx_click(a, "teach.clear"), "the clear button is on screen");
    /* a horizontal stroke on row 10 from x = 5 to 20, then a vertical one on
     * column 14 from y = 3 to 8 drawn through an intermediate point */
    const int h[4] = {5, 10, 20, 10}, v[6] = {14, 3, 14, 5, 14, 8};
    stroke(a, h, 2);
    stroke(a, v, 3);
    uint8_t x[D28], want[D28] = {0};
    /* the brush: every pixel within 1 of the segment */
    for (int i = 5; i <= 20; i++)
        want[9 * 28 + i] = want[10 * 28 + i] = want[11 * 28 + i] = 1;
    want[10 * 28 + 4] = want[10 * 28 + 21] = 1;
    for (int j = 3; j <= 8; j++)
        want[j * 28 + 13] = want[j * 28 + 14] = want[j * 28 + 15] = 1;
    want[2 * 28 + 14] = want[9 * 28 + 14] = 1;
    CHECK_NEAR(D28, viz_teach_image(a, x, NULL, D28), 0, "Alice's image is 28 x 28");
    int on = 0;
    for (int i = 0; i < D28; i++)
        on += want[i];
    CHECK_NEAR(50 + 18 + 1, on, 0, "pixels the two strokes should ink (hand count)");
    CHECK_NEAR(0, count_diff(x, want, D28), 0, "pixels differing from the expected drawing");
    /* the eraser takes the horizontal stroke's middle away */
    CHECK(fx_click(a, "teach.eraser"), "eraser button");
    const int e[2] = {12, 10};
    stroke(a, e, 1);
    viz_teach_image(a, x, NULL, D28);
    for (int j = 9; j <= 11; j++)
        want[j * 28 + 12] = 0;
    want[10 * 28 + 11] = want[10 * 28 + 13] = 0;
    CHECK_NEAR(0, count_diff(x, want, D28), 0, "pixels differing after one eraser click");
    /* the lesson that follows uses the drawing as x */
    CHECK(viz_app_wait_run(a, 120), "the lesson of the drawing finished");
    viz_lesson *l = viz_teach_lesson_ref(a, 0);
    CHECK(l && count_diff(l->x, want, D28) == 0, "the lesson's x is the drawing");
    viz_lesson_unref(l);
    /* and the screen shows it: grey 243 for ink, 12 for paper (no tooltip over it) */
    viz_app_mouse_move(a, 2, 2);
    viz_app_run_frames(a, 1);
    int w, hh, wrong = 0;
    uint8_t *pix = viz_app_read_pixels(a, &w, &hh);
    for (int i = 0; pix && i < D28; i += 7) {
        int sx, sy;
        viz_teach_canvas_pos(a, i % 28, i / 28, &sx, &sy);
        wrong += pix[((size_t)sy * w + sx) * 3] != (want[i] ? 243 : 12);
    }
    free(pix);
    CHECK_NEAR(0, wrong, 0, "screen pixels of Alice's image not matching the drawing (112 probes)");
    viz_app_destroy(a);
}

static void test_teach_alice_bits_are_positive_sum_to_the_total_and_match_eval(void)
{
    const int n = 10;
    viz_app *a = open_teach(n, 1);
    viz_teach_state s = tstate(a);
    CHECK(s.source == VIZ_SRC_DIGIT && s.mode == BFN_TEACH_ALICE, "starts with Alice sending a "
          "test digit (source %d, mode %d)", s.source, s.mode);
    CHECK(s.n_digits == 30 && s.digit_label == 0, "30 shipped digits, the first a 0 (%d, %d)",
          s.n_digits, s.digit_label);
    uint8_t x[D28];
    viz_teach_image(a, x, NULL, D28);
    double sum_tot = 0, sum_tot2 = 0;
    const int R = fx_small() ? 6 : 24;
    int nonpos = 0, xdiff = 0;
    double worst_sum = 0, ln = 0, ln_se = 0, eng_diff = 0;
    for (int r = 0; r < R; r++) {
        if (r)
            fx_key(a, SDLK_s, 0); /* next seed: a new lesson of the same image */
        CHECK(viz_app_wait_run(a, 120), "lesson %d finished", r);
        viz_lesson *l = viz_teach_lesson_ref(a, 0);
        if (!CHECK(l != NULL, "a lesson on screen"))
            break;
        double sum = 0;
        for (int i = 0; i < n; i++) {
            nonpos += !(l->step_cost[i] > 0);
            sum += l->step_cost[i];
        }
        worst_sum = fmax(worst_sum, fabs(sum - l->total[n - 1]));
        xdiff += count_diff(l->x, x, D28);
        sum_tot += l->total[n - 1];
        sum_tot2 += l->total[n - 1] * l->total[n - 1];
        ln = l->ln;
        ln_se = l->ln_se;
        if (r == 0) {
            double eng;
            free(engine_lesson(x, NULL, BFN_TEACH_ALICE, n, 0, 0, l->seed, &eng));
            eng_diff = fabs(eng - l->total[n - 1]);
            CHECK_NEAR(VIZ_EVAL_DONE, atomic_load(&l->eval_state), 0, "L^n evaluated");
        }
        viz_lesson_unref(l);
    }
    CHECK_NEAR(0, nonpos, 0, "messages whose bits are not positive (%d lessons)", R);
    CHECK_NEAR(0, worst_sum, 1e-9, "max |sum of the message costs - reported total|, nats");
    CHECK_NEAR(0, xdiff, 0, "the lessons' x differ from Alice's image");
    CHECK_NEAR(0, eng_diff, 1e-9, "the app's total = the engine session's total, nats");
    double mean = sum_tot / R, se = sqrt(fmax(0, sum_tot2 - sum_tot * sum_tot / R) / (R - 1) / R);
    /* against the app's own evaluation and a long one of the engine */
    CHECK_NEAR(ln, mean, 4 * sqrt(se * se + ln_se * ln_se),
               "mean total of %d lessons vs the app's L^n (SE %.2f, %.2f), nats", R, se, ln_se);
    bfn_net *net = NULL;
    bfn_model_meta meta;
    bfn_err err = {0};
    bfn_model_load_net(model, &net, &meta, 16, &err);
    bfn_eval_result res;
    CHECK(bfn_teach_image_loss(net, x, n, meta.beta1, fx_small() ? 200 : 1500, 8, 7, &res,
                               &err) == BFN_OK, "eval: %s", err.msg);
    CHECK_NEAR(res.ln, mean, 4 * sqrt(se * se + res.ln_se * res.ln_se),
               "mean total vs bfn eval's L^n for the image (SE %.2f, %.2f), nats", se,
               res.ln_se);
    bfn_net_destroy(net);
    viz_app_destroy(a);
}

static void test_teach_side_by_side_runs_two_settings_with_one_seed(void)
{
    viz_app *a = open_teach(12, 5);
    CHECK(fx_click(a, "teach.sbs"), "side-by-side button");
    CHECK(fx_click(a, "teach.b.final"), "row B's final-mode button");
    viz_teach_set_b(a, 4, 0, 1);
    CHECK(viz_app_wait_run(a, 120), "the two-row lesson finished");
    viz_teach_state s = tstate(a);
    CHECK_NEAR(2, s.sides, 0, "rows");
    CHECK_NEAR(12 + 2, s.positions, 0, "timeline positions: prior, 12 steps, final");
    viz_lesson *A = viz_teach_lesson_ref(a, 0), *B = viz_teach_lesson_ref(a, 1);
    CHECK(A && B, "both rows have lessons");
    if (A && B) {
        CHECK(A->seed == 5 && B->seed == 5, "one seed (%llu, %llu)",
              (unsigned long long)A->seed, (unsigned long long)B->seed);
        CHECK(A->lp.n == 12 && B->lp.n == 4 && B->lp.argmax == 1 && A->lp.argmax == 0,
              "settings A n=%d argmax %d, B n=%d argmax %d", A->lp.n, A->lp.argmax, B->lp.n,
              B->lp.argmax);
        CHECK_NEAR(0, count_diff(A->x, B->x, D28), 0, "both rows send the same x");
        double ta, tb;
        uint8_t *ea = engine_lesson(A->x, NULL, BFN_TEACH_ALICE, 12, 0, 0, 5, &ta);
        uint8_t *eb = engine_lesson(A->x, NULL, BFN_TEACH_ALICE, 4, 0, 1, 5, &tb);
        CHECK_NEAR(0, count_diff(ea, A->k + (size_t)12 * D28, D28), 0, "row A's final vs engine");
        CHECK_NEAR(0, count_diff(eb, B->k + (size_t)4 * D28, D28), 0, "row B's final vs engine");
        CHECK_NEAR(ta, A->total[11], 1e-9, "row A's total vs engine");
        CHECK_NEAR(tb, B->total[3], 1e-9, "row B's total vs engine");
        free(ea);
        free(eb);
        /* the shared timeline: at t = 6/12 row A shows step 6 and row B step 2 */
        fx_key(a, SDLK_HOME, 0);
        for (int i = 0; i < 6; i++)
            fx_key(a, SDLK_RIGHT, 0);
        int M = 12, pos = tstate(a).position;
        CHECK_NEAR(6, pos, 0, "position after 6 x Right");
        CHECK_NEAR(6, viz_teach_step_at(A, M, pos), 0, "row A's step at t = 0.5");
        CHECK_NEAR(2, viz_teach_step_at(B, M, pos), 0, "row B's step at t = 0.5");
        fx_key(a, SDLK_END, 0);
        CHECK_NEAR(5, viz_teach_step_at(B, M, tstate(a).position), 0, "End: B's final (n+1)");
    }
    viz_lesson_unref(A);
    viz_lesson_unref(B);
    viz_app_destroy(a);
}

static void test_teach_bob_alone_is_the_sampler_and_inpainting_keeps_known_pixels(void)
{
    viz_app *a = open_teach(8, 3);
    CHECK(fx_click(a, "teach.bob"), "Bob alone button");
    CHECK(viz_app_wait_run(a, 120), "Bob's lesson finished");
    viz_lesson *l = viz_teach_lesson_ref(a, 0);
    uint8_t *ref = fx_engine_sample(model, 8, 0, 3, 1, 0, NULL);
    CHECK(l && l->mode == BFN_TEACH_BOB, "a Bob-alone lesson");
    if (l)
        CHECK_NEAR(0, count_diff(ref, l->k + (size_t)8 * D28, D28), 0,
                   "Bob alone's final vs bfn_sampler image 0 with the same seed");
    viz_lesson_unref(l);
    free(ref);
    for (int m = 0; m < VIZ_MASK_COUNT; m++) {
        char id[40];
        static const char *names[4] = {"top", "bottom", "left", "right"};
        snprintf(id, sizeof id, "teach.mask.%s", names[m]);
        CHECK(fx_click(a, id), "%s button", id);
        CHECK(viz_app_wait_run(a, 120), "inpainting lesson finished (%s)", names[m]);
        uint8_t x[D28], known[D28];
        viz_teach_image(a, x, known, D28);
        l = viz_teach_lesson_ref(a, 0);
        int kept = 0, n_known = 0;
        for (int d = 0; l && d < D28; d++) {
            n_known += known[d];
            kept += known[d] && l->k[(size_t)8 * D28 + d] == x[d];
        }
        CHECK(l && l->has_mask, "the lesson has the mask");
        CHECK_NEAR(D28 / 2, n_known, 0, "known pixels (%s half)", names[m]);
        CHECK_NEAR(n_known, kept, 0, "known pixels kept in the final image (%s)", names[m]);
        viz_lesson_unref(l);
    }
    /* the other method, and the engine agrees pixel for pixel */
    CHECK(fx_click(a, "teach.method.send"), "method button");
    CHECK(viz_app_wait_run(a, 120), "lesson with sent known pixels finished");
    uint8_t x[D28], known[D28];
    viz_teach_image(a, x, known, D28);
    l = viz_teach_lesson_ref(a, 0);
    int lost = 0;
    for (int d = 0; l && d < D28; d++)
        lost += known[d] && l->k[(size_t)8 * D28 + d] != x[d];
    CHECK_NEAR(0, lost, 0, "known pixels changed (method: sent)");
    viz_lesson_unref(l);
    viz_app_destroy(a);
}

static void test_teach_button_key_captions_and_tour(void)
{
    viz_app *a = fx_open(dir, model, 5, 2, 1);
    CHECK(viz_app_wait_run(a, 60), "sampling run finished");
    CHECK(fx_click(a, "teach.open"), "the Teach button in the tab row");
    CHECK(tstate(a).on, "the button opens the teaching mode");
    CHECK_NEAR(1, tstate(a).captions, 0, "captions start on");
    fx_key(a, SDLK_c, 0);
    CHECK_NEAR(0, tstate(a).captions, 0, "C hides the captions");
    fx_key(a, SDLK_o, 0);
    CHECK_NEAR(0, tstate(a).tour_stop, 0, "O opens the tour at stop 1");
    CHECK(viz_app_wait_run(a, 60), "the lesson under the tour finished");
    fx_key(a, SDLK_PAGEDOWN, 0);
    CHECK(fx_click(a, "tour.next"), "the tour's next button");
    CHECK_NEAR(2, tstate(a).tour_stop, 0, "PgDn and next: stop 3");
    for (int i = 0; i < 10; i++)
        fx_key(a, SDLK_PAGEDOWN, 0);
    CHECK_NEAR(VIZ_TOUR_STOPS - 1, tstate(a).tour_stop, 0, "the last stop stays the last");
    CHECK(tstate(a).side_by_side, "the last stop shows two rows");
    fx_key(a, SDLK_ESCAPE, 0);
    CHECK_NEAR(-1, tstate(a).tour_stop, 0, "Esc closes the tour");
    fx_key(a, SDLK_x, 0);
    CHECK_NEAR(BFN_TEACH_BOB, tstate(a).mode, 0, "X: Bob alone");
    fx_key(a, SDLK_n, 0);
    CHECK_NEAR(1, tstate(a).digit, 0, "N: next digit");
    fx_key(a, SDLK_l, 0);
    CHECK(!tstate(a).on, "L leaves the teaching mode");
    SDL_Rect r;
    CHECK(viz_app_widget_rect(a, "cell.0", &r), "the sampling grid is back");
    viz_app_destroy(a);
}

/* No text of the teaching mode runs past its panel (the controls, the
 * lesson, the status line) with captions, side by side, at every stop of
 * the tour and in the help, at window sizes from 800x600 to 1920x1080 and
 * at a projector's zoom. */
static void test_teach_text_stays_inside_its_panels(void)
{
    for (int i = 0; i < FX_N_SIZES; i++) {
        viz_app *a = fx_open_sized(dir, model, 5, 2, FX_SIZES[i]);
        viz_app_wait_run(a, 60);
        fx_key(a, SDLK_l, 0);
        for (int step = 0; step <= 3 + VIZ_TOUR_STOPS; step++) {
            const char *what = "captions";
            if (step == 1)
                fx_key(a, SDLK_v, 0), what = "side by side";
            else if (step == 2)
                fx_key(a, SDLK_o, 0), what = "tour stop 1";
            else if (step > 2 && step < 2 + VIZ_TOUR_STOPS)
                fx_key(a, SDLK_PAGEDOWN, 0), what = "a later tour stop";
            else if (step == 2 + VIZ_TOUR_STOPS)
                fx_key(a, SDLK_ESCAPE, 0), what = "the tour closed";
            else if (step == 3 + VIZ_TOUR_STOPS)
                fx_key(a, SDLK_F1, 0), what = "help (F1)";
            viz_app_wait_run(a, 120);
            viz_app_run_frames(a, 2);
            fx_check_text(a, FX_SIZES[i], what);
        }
        viz_app_destroy(a);
    }
}


/* A stroke cut off by a key, a failed lesson and an image the model cannot
 * take: the mode says why, keeps answering, and does not spin while it waits. */
static void test_teach_recovers_from_interruptions_and_errors(void)
{
    viz_app *a = open_teach(5, 1);
    CHECK(fx_click(a, "teach.src.draw"), "the draw button is on screen");
    CHECK(viz_app_wait_run(a, 120), "the lesson of the empty drawing finished");
    int sx, sy;
    viz_teach_canvas_pos(a, 10, 10, &sx, &sy);
    viz_app_mouse_move(a, sx, sy);
    viz_app_mouse_button(a, sx, sy, 1);
    viz_app_run_frames(a, 1);
    fx_key(a, SDLK_x, 0); /* Bob alone while the button is still down */
    viz_app_mouse_button(a, sx, sy, 0);
    viz_app_run_frames(a, 2);
    CHECK(viz_app_wait_run(a, 60), "a lesson follows a mode switched in the middle of a stroke");
    viz_lesson *l = viz_teach_lesson_ref(a, 0);
    CHECK(l && l->mode == BFN_TEACH_BOB, "that lesson is Bob's (%s)", l ? "other mode" : "none");
    viz_lesson_unref(l);
    viz_teach_set_inpaint(a, 1, VIZ_MASK_TOP);
    viz_teach_set_mode(a, BFN_TEACH_ALICE);
    CHECK_NEAR(0, tstate(a).inpaint, 0, "Alice's mode leaves inpainting off");
    viz_app_destroy(a);

    /* the model file spoilt after the app opened it: the lesson fails and says so */
    char spoilt[600];
    snprintf(spoilt, sizeof spoilt, "%s/spoilt.bfn", dir);
    fx_make_model(spoilt, 28, 31);
    a = fx_open(dir, spoilt, 5, 1, 1);
    CHECK(viz_app_wait_run(a, 60), "the sampling run finished");
    FILE *f = fopen(spoilt, "wb");
    CHECK(f && fputs("not a model", f) >= 0 && fclose(f) == 0, "model file overwritten");
    fx_key(a, SDLK_l, 0);
    CHECK(viz_app_wait_run(a, 60), "the failed lesson settles");
    viz_teach_state ts = tstate(a);
    CHECK(ts.error[0] != '\0', "the teaching mode shows why the lesson failed (error: '%s')",
          ts.error);
    viz_app_destroy(a);

    /* a 32×32 model cannot take the 28×28 test digits: an error that waits for the
     * user, not a retry 20 times a second */
    char m32[600];
    snprintf(m32, sizeof m32, "%s/m32.bfn", dir);
    fx_make_model(m32, 32, 5);
    a = fx_open(dir, m32, 5, 1, 1);
    CHECK(viz_app_wait_run(a, 60), "the 32×32 sampling run finished");
    fx_key(a, SDLK_l, 0);
    viz_app_run_frames(a, 3);
    ts = tstate(a);
    CHECK(strstr(ts.error, "28×28") != NULL, "the error names the digits' size (error: '%s')",
          ts.error);
    double wake = viz_teach_next_wake(a);
    CHECK(wake < 0, "no wake-up while the error waits for the user (next wake in %g s)", wake);
    fx_key(a, SDLK_d, 0); /* draw instead: a 32×32 canvas */
    CHECK(viz_app_wait_run(a, 60), "a lesson of the 32×32 drawing follows");
    CHECK_NEAR(32, tstate(a).W, 0, "the lesson's width");
    viz_app_destroy(a);
}

int main(void)
{
    fx_tmpdir(dir, sizeof dir);
    snprintf(model, sizeof model, "%s/m28.bfn", dir);
    fx_make_model(model, 28, 31);
    RUN(test_teach_drawing_with_the_mouse_gives_the_expected_image);
    RUN(test_teach_alice_bits_are_positive_sum_to_the_total_and_match_eval);
    RUN(test_teach_side_by_side_runs_two_settings_with_one_seed);
    RUN(test_teach_bob_alone_is_the_sampler_and_inpainting_keeps_known_pixels);
    RUN(test_teach_button_key_captions_and_tour);
    RUN(test_teach_text_stays_inside_its_panels);
    RUN(test_teach_recovers_from_interruptions_and_errors);
    fx_rmtree(dir);
    return check_finish();
}
