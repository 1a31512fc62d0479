/* bfnviz: watch, step through and steer Bayesian Flow Network sampling and
 * training. Without arguments it opens models/mnist.bfn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "app.h"
#include "bfn/gemm.h"
#include "script.h"

static const char *USAGE =
    "usage: bfnviz [options]\n"
    "\n"
    "Watch Algorithm 9 of Bayesian Flow Networks generate binarized MNIST digits, step\n"
    "through the run, inspect any pixel, and train a model in the background.\n"
    "\n"
    "options:\n"
    "  --model PATH        model file (default models/mnist.bfn)\n"
    "  --models-dir DIR    models offered by M / the arrows (default models; runs/ too)\n"
    "  --runs-dir DIR      training checkpoints and models (default runs)\n"
    "  --data-dir DIR      MNIST IDX files for training (default data/mnist)\n"
    "  --out-dir DIR       exported PNGs (default out)\n"
    "  --font PATH         TTF font (default assets/fonts/DejaVuSans.ttf)\n"
    "  --scale X           UI zoom 0.5..4 for projectors (default 1; Ctrl +/- at run time)\n"
    "  --size WxH          window size (default 1280x800)\n"
    "  --steps N           sampling steps n, 1..1000 (default 100)\n"
    "  --grid N            N x N samples, 1..8 (default 4)\n"
    "  --beta1 X           accuracy beta(1) (default: the model's own)\n"
    "  --seed N            random seed (default 1)\n"
    "  --argmax            final output = most probable class\n"
    "  --threads N         threads per network call (default: one per core, at most 4)\n"
    "  --mem-mb N          memory one run may keep (default 256)\n"
    "  --preview-every S   seconds of training between preview grids (default 30)\n"
    "  --headless          no window: software rendering off screen (for scripts)\n"
    "  --frames N          headless: draw N frames (about 60 per second), then exit\n"
    "  --script FILE       run a script of synthetic input (see src/viz/script.h)\n"
    "  --screenshot PNG    write the last frame to PNG before exiting\n"
    "  --stats             print frame times, restart latency and memory at exit\n"
    "  --quit-after S      close the window after S seconds (demos, measurements)\n"
    "  --help              this text\n"
    "\n"
    "Press F1 or ? in the window for the keyboard shortcuts.\n";

static int need(int i, int argc, const char *opt)
{
    if (i + 1 >= argc) {
        fprintf(stderr, "bfnviz: %s needs a value\n", opt);
        return 0;
    }
    return 1;
}

static int parse_num(const char *s, double lo, double hi, const char *opt, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "bfnviz: %s expects a number in [%g, %g], got '%s'\n", opt, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}

int main(int argc, char **argv)
{
    viz_options o;
    viz_options_default(&o);
    const char *script = NULL, *shot = NULL;
    double scale = o.scale, steps = o.n_steps, grid = o.grid, beta1 = 0, seed = 1, threads = 0,
           mem = (double)o.mem_cap_mb, preview = o.preview_every_s, frames = 0, quit_after = 0;
    int stats = 0;
    const struct {
        const char *name;
        double lo, hi;
        double *dst;
    } nums[] = {
        {"--scale", 0.5, 4, &scale},     {"--steps", 1, 1000, &steps},
        {"--grid", 1, 8, &grid},         {"--beta1", 0.1, 30, &beta1},
        {"--seed", 1, 1e15, &seed},      {"--threads", 1, 64, &threads},
        {"--mem-mb", 16, 65536, &mem},   {"--preview-every", 1, 1e6, &preview},
        {"--frames", 1, 1e7, &frames},   {"--quit-after", 0.1, 1e7, &quit_after},
    };
    const struct {
        const char *name;
        const char **dst;
    } strs[] = {
        {"--model", &o.model_path},   {"--models-dir", &o.models_dir}, {"--runs-dir", &o.runs_dir},
        {"--data-dir", &o.data_dir},  {"--out-dir", &o.out_dir},       {"--font", &o.font_path},
        {"--script", &script},        {"--screenshot", &shot},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int known = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (!strcmp(a, "--headless"))
            known = o.headless = 1;
        else if (!strcmp(a, "--argmax"))
            known = o.argmax = 1;
        else if (!strcmp(a, "--stats"))
            known = stats = 1;
        for (size_t k = 0; !known && k < sizeof strs / sizeof strs[0]; k++)
            if (!strcmp(a, strs[k].name)) {
                if (!need(i, argc, a))
                    return 2;
                *strs[k].dst = argv[++i];
                known = 1;
            }
        for (size_t k = 0; !known && k < sizeof nums / sizeof nums[0]; k++)
            if (!strcmp(a, nums[k].name)) {
                if (!need(i, argc, a) ||
                    !parse_num(argv[++i], nums[k].lo, nums[k].hi, a, nums[k].dst))
                    return 2;
                known = 1;
            }
        if (!known && !strcmp(a, "--size")) {
            int w, h;
            char c;
            if (!need(i, argc, a))
                return 2;
            if (sscanf(argv[++i], "%dx%d%c", &w, &h, &c) != 2 || w < 320 || h < 240 ||
                w > 8192 || h > 8192) {
                fprintf(stderr, "bfnviz: --size expects WxH such as 1600x1000, got '%s'\n",
                        argv[i]);
                return 2;
            }
            o.width = w;
            o.height = h;
            known = 1;
        }
        if (!known) {
            fprintf(stderr, "bfnviz: unknown option '%s' (try --help)\n", a);
            return 2;
        }
    }
    o.scale = scale;
    o.n_steps = (int)steps;
    o.grid = (int)grid;
    o.beta1 = beta1;
    o.seed = (uint64_t)seed;
    o.blas_threads = (int)threads;
    char envmsg[160];
    if (bfn_gemm_check_env(envmsg, sizeof envmsg) != 0) {
        fprintf(stderr, "bfnviz: %s\n", envmsg);
        return 2;
    }
    o.mem_cap_mb = (size_t)mem;
    o.preview_every_s = preview;

    char err[600];
    viz_app *app = viz_app_create(&o, err, sizeof err);
    if (!app) {
        fprintf(stderr, "bfnviz: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (script && viz_script_run(app, script, err, sizeof err) != 0) {
        fprintf(stderr, "bfnviz: %s\n", err);
        rc = 1;
    }
    if (frames > 0)
        viz_script_frames(app, (int)frames);
    SDL_TimerID timer = 0;
    if (quit_after > 0 && !o.headless)
        timer = SDL_AddTimer((Uint32)(quit_after * 1000), viz_push_quit, NULL);
    if (!o.headless && rc == 0 && !viz_app_quit_requested(app)) {
        viz_app_reset_stats(app);
        viz_app_run(app);
    }
    if (timer)
        SDL_RemoveTimer(timer);
    if (shot && rc == 0 && viz_app_screenshot(app, shot, err, sizeof err) != 0) {
        fprintf(stderr, "bfnviz: %s\n", err);
        rc = 1;
    }
    if (stats) {
        viz_app_state s;
        viz_app_get_state(app, &s);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        printf("renderer %s · frames drawn %ld · work per frame avg %.2f ms, max %.2f ms, "
               "%ld over 1/60 s · %.1f fps while animating · restart to first frame %.0f ms · "
               "peak memory %.1f MB · CPU %.2f s\n",
               s.renderer, s.frames_drawn, s.frame_ms_avg, s.frame_ms_max, s.frames_slow,
               s.anim_fps, s.restart_ms, ru.ru_maxrss / 1024.0,
               ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
                   (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6);
    }
    viz_app_destroy(app);
    return rc;
}
