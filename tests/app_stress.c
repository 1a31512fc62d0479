/* The app under abuse: a long random session of user actions (every
 * shortcut, clicks, drags and wheel turns on every widget the app lays out,
 * window resizes, UI zoom, model switches to good, corrupt and missing
 * files, training started, paused, resumed and stopped, timeline scrubbing,
 * exports) while the sampling worker and the training thread run. After
 * every action the app must draw a frame within a bounded time and keep its
 * invariants; at the end its state must be consistent: the controls show
 * the stored settings, a last sampling run completes and equals the
 * engine's sampler, training stops and its files load.
 *
 * The window is a real SDL window on the dummy video driver (software
 * renderer), so resizes go through SDL_WINDOWEVENT_SIZE_CHANGED as on a
 * desktop. Some actions are handled by the interactive loop (viz_app_run)
 * instead of viz_app_run_frames, which checks that the loop itself redraws.
 *
 *   app_stress [--actions N] [--seed S]     (env: BFN_STRESS_ACTIONS, BFN_STRESS_SEED)
 *
 * Without a seed one is taken from the clock; it is printed, and the same
 * seed replays the same sequence of actions (thread timing can still change
 * what is on screen, and with it later choices). BFN_STRESS_TRACE=1 prints
 * one line per action. */
#include <signal.h>
#include <time.h>

#include "app_fixture.h"
#include "app_internal.h"
#include "bfn/train.h"

/* an action's frame must be drawn within this (sanitized builds: 3 times) */
#define FRAME_BOUND_S (fx_small() ? 6.0 : 2.0)
#define WATCHDOG_S 120     /* no answer for this long: the app hangs */

static char dir[256], data[512], out_dir[600], runs_dir[600];
static char font[600], font_gone[600];
static char model_a[600], model_b[600], model_m[600], model_bad[600], model_cut[600],
    model_missing[600];

/* ---- fixture ---- */

static void copy_prefix(const char *from, const char *to, double frac)
{
    FILE *f = fopen(from, "rb");
    if (!f)
        fx_die("cannot read a model to cut");
    static unsigned char buf[1 << 22];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    FILE *g = fopen(to, "wb");
    if (!g)
        fx_die("cannot write the cut model");
    fwrite(buf, 1, (size_t)(n * frac), g);
    fclose(g);
}

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
    snprintf(model_m, sizeof model_m, "%s/m28.bfn", models);
    snprintf(model_bad, sizeof model_bad, "%s/c-broken.bfn", models);
    snprintf(model_cut, sizeof model_cut, "%s/d-cut.bfn", models);
    snprintf(model_missing, sizeof model_missing, "%s/gone.bfn", models);
    snprintf(out_dir, sizeof out_dir, "%s/out", dir);
    snprintf(runs_dir, sizeof runs_dir, "%s/runs", dir);
    fx_make_model(model_a, 16, 1);
    fx_make_model(model_b, 16, 2);
    fx_make_model(model_m, 28, 3); /* the size of the training images: "start from this model" */
    FILE *f = fopen(model_bad, "wb");
    fputs("not a model", f);
    fclose(f);
    copy_prefix(model_b, model_cut, 0.6);
    /* guides: a's serves it; b's is of another size, so guidance there is refused */
    char guides[500], guide[600];
    snprintf(guides, sizeof guides, "%s/" VIZ_GUIDE_DIR, models);
    mkdir(guides, 0755);
    snprintf(guide, sizeof guide, "%s/a.bfn", guides);
    fx_make_model(guide, 16, 4);
    snprintf(guide, sizeof guide, "%s/b.bfn", guides);
    fx_make_model(guide, 8, 5);
    /* a font of its own, which an action takes away for a moment */
    snprintf(font, sizeof font, "%s/font.ttf", dir);
    snprintf(font_gone, sizeof font_gone, "%s/font.ttf.gone", dir);
    copy_prefix("assets/fonts/DejaVuSans.ttf", font, 1.0);
}

/* ---- the session ---- */

typedef enum {
    A_KEY, A_CLICK, A_DRAG, A_WHEEL, A_RESIZE, A_MODEL, A_TRAIN, A_SCRUB, A_EXPORT, A_ZOOM,
    A_HOVER, A_TEXT, A_WAIT, A_HELP, A_WINDOW, A_COUNT
} action_kind;

static const char *KIND_NAMES[A_COUNT] = {"key", "click", "drag", "wheel", "resize", "model",
                                          "train", "scrub", "export", "zoom", "hover", "text",
                                          "wait", "help", "window"};
/* weights of the kinds in a random session */
static const int KIND_WEIGHT[A_COUNT] = {16, 16, 8, 5, 4, 4, 6, 6, 2, 3, 6, 3, 3, 2, 2};

typedef struct {
    viz_app *a;
    bfn_rng rng;
    long frames;              /* frames run by the session */
    double worst_s, sum_s;    /* wall time of one frame (events, update, draw) */
    double worst_kind_s[A_COUNT];
    int kind;
    char worst_what[96];
    long slow;                /* frames over FRAME_BOUND_S */
    long loop_calls, loop_silent; /* actions given to viz_app_run; those that drew nothing */
    long invariant_bad;
    char first_bad[600];
    int counts[A_COUNT];
    int quits;                /* Ctrl+Q pressed */
    int sent_quit;            /* this action pressed Ctrl+Q */
    char first_silent[200];
    const char *doing;
} session;

static int g_trace; /* BFN_STRESS_TRACE set: one line per action */
static volatile sig_atomic_t g_action = -1;
static volatile sig_atomic_t g_kind = 0;
static const char *volatile g_phase = "the session";

static void on_alarm(int sig)
{
    (void)sig;
    char msg[160];
    int k = g_kind >= 0 && g_kind < A_COUNT ? (int)g_kind : 0;
    int n = snprintf(msg, sizeof msg,
                     "app_stress: the watchdog fired in %s, action %d (%s): the app hangs\n",
                     g_phase, (int)g_action, KIND_NAMES[k]);
    if (n > 0 && write(2, msg, (size_t)n) < 0)
        _exit(3);
    _exit(2);
}

static uint64_t below(session *s, uint64_t n) { return n ? bfn_rng_below(&s->rng, n) : 0; }
static double unif(session *s) { return bfn_rng_uniform(&s->rng); }

/* One frame, timed. */
static void frame(session *s)
{
    long before = s->a->frames_drawn;
    if (g_trace) {
        SDL_Event q[64];
        int n = SDL_PeepEvents(q, 64, SDL_PEEKEVENT, SDL_FIRSTEVENT, SDL_LASTEVENT);
        printf("    frame: %d events queued:", n);
        for (int i = 0; i < n; i++)
            printf(" %x", q[i].type);
        printf("\n");
    }
    double t0 = viz_now();
    viz_app_run_frames(s->a, 1);
    double dt = viz_now() - t0;
    s->frames++;
    s->sum_s += dt;
    if (dt > s->worst_s) {
        s->worst_s = dt;
        viz_fmt(s->worst_what, sizeof s->worst_what, "%s at %dx%d, zoom %.2f", s->doing,
                s->a->w, s->a->h, s->a->zoom);
    }
    if (dt > s->worst_kind_s[s->kind])
        s->worst_kind_s[s->kind] = dt;
    if (dt > FRAME_BOUND_S)
        s->slow++;
    if (s->a->frames_drawn != before + 1 && !s->invariant_bad++)
        viz_fmt(s->first_bad, sizeof s->first_bad, "a frame was not drawn during %s", s->doing);
}

static void frames(session *s, int n)
{
    for (int i = 0; i < n; i++)
        frame(s);
}

/* Shortcuts of keys.c, with the modifiers they need. */
static const struct {
    SDL_Keycode key;
    Uint16 mod;
} SHORTCUTS[] = {
    {SDLK_SPACE, 0}, {SDLK_RIGHT, 0}, {SDLK_LEFT, 0}, {SDLK_HOME, 0}, {SDLK_END, 0},
    {SDLK_RIGHTBRACKET, 0}, {SDLK_LEFTBRACKET, 0}, {SDLK_1, 0}, {SDLK_2, 0}, {SDLK_3, 0},
    {SDLK_4, 0}, {SDLK_5, 0}, {SDLK_UP, 0}, {SDLK_DOWN, 0}, {SDLK_PAGEUP, 0},
    {SDLK_PAGEDOWN, 0}, {SDLK_b, 0}, {SDLK_s, KMOD_LSHIFT}, {SDLK_s, 0}, {SDLK_r, 0},
    {SDLK_g, KMOD_LSHIFT}, {SDLK_g, 0}, {SDLK_a, 0}, {SDLK_m, KMOD_LSHIFT}, {SDLK_m, 0},
    {SDLK_t, KMOD_LSHIFT}, {SDLK_t, 0}, {SDLK_p, 0}, {SDLK_e, 0}, {SDLK_f, 0},
    {SDLK_EQUALS, KMOD_LCTRL}, {SDLK_PLUS, KMOD_LCTRL}, {SDLK_KP_PLUS, KMOD_LCTRL},
    {SDLK_MINUS, KMOD_LCTRL}, {SDLK_KP_MINUS, KMOD_LCTRL}, {SDLK_0, KMOD_LCTRL},
    {SDLK_F1, 0}, {SDLK_SLASH, KMOD_LSHIFT}, {SDLK_QUESTION, 0}, {SDLK_ESCAPE, 0},
    {SDLK_q, KMOD_LCTRL}, {SDLK_l, 0}, {SDLK_w, KMOD_LSHIFT}, {SDLK_w, 0},
};
#define N_SHORTCUTS ((int)(sizeof SHORTCUTS / sizeof SHORTCUTS[0]))

/* A random point of a random widget of the last frame (0 if none). */
static int random_widget(session *s, const char *prefix, int *x, int *y, SDL_Rect *out)
{
    const viz_ui *ui = &s->a->ui;
    int idx[VIZ_UI_MAX_WIDGETS], n = 0;
    for (int i = 0; i < ui->n_reg; i++)
        if (!prefix || !strncmp(ui->reg[i].id, prefix, strlen(prefix)))
            idx[n++] = i;
    if (!n)
        return 0;
    SDL_Rect r = ui->reg[idx[below(s, (uint64_t)n)]].r;
    *x = r.x + (r.w > 0 ? (int)below(s, (uint64_t)r.w) : 0);
    *y = r.y + (r.h > 0 ? (int)below(s, (uint64_t)r.h) : 0);
    if (out)
        *out = r;
    return 1;
}

static void click_at(session *s, int x, int y, int frame_between)
{
    viz_app_mouse_move(s->a, x, y);
    viz_app_mouse_button(s->a, x, y, 1);
    if (frame_between)
        frame(s);
    viz_app_mouse_button(s->a, x, y, 0);
}

/* Clicks widget id at its centre, first opening the tab that shows it. */
static int click_id(session *s, const char *id, const char *tab)
{
    SDL_Rect r;
    if (!viz_app_widget_rect(s->a, id, &r) && tab) {
        if (s->a->help)
            viz_app_key(s->a, SDLK_ESCAPE, 0);
        if (viz_app_widget_rect(s->a, tab, &r)) {
            click_at(s, r.x + r.w / 2, r.y + r.h / 2, 0);
            frame(s);
        }
        if (!viz_app_widget_rect(s->a, id, &r))
            return 0;
    } else if (!viz_app_widget_rect(s->a, id, &r)) {
        return 0;
    }
    click_at(s, r.x + r.w / 2, r.y + r.h / 2, 0);
    return 1;
}

/* Replaces the model field's text with path and presses Enter. */
static void type_model(session *s, const char *path)
{
    if (!click_id(s, "model", "tab.controls"))
        return;
    frame(s);
    if (!viz_ui_editing(&s->a->ui))
        return; /* the click landed elsewhere (an overlay): nothing to type into */
    size_t n = strlen(s->a->model_edit);
    for (size_t i = 0; i < n + 2; i++)
        viz_app_key(s->a, SDLK_BACKSPACE, 0);
    for (size_t i = 0; i < strlen(path); i += 20) {
        char chunk[21];
        snprintf(chunk, sizeof chunk, "%.20s", path + i);
        viz_app_type(s->a, chunk);
    }
    viz_app_key(s->a, below(s, 8) ? SDLK_RETURN : SDLK_KP_ENTER, 0);
}

static void resize(session *s, int w, int h)
{
    SDL_SetWindowSize(s->a->win, w, h);
}

static void act_key(session *s)
{
    if (below(s, 6) == 0) {
        /* a key that is no shortcut, any modifiers */
        static const SDL_Keycode other[] = {SDLK_x, SDLK_F5, SDLK_TAB, SDLK_BACKSPACE,
                                            SDLK_RETURN, SDLK_DELETE, SDLK_9, SDLK_LSHIFT};
        static const Uint16 mods[] = {0, KMOD_LSHIFT, KMOD_LCTRL, KMOD_LALT, KMOD_LGUI,
                                      KMOD_LCTRL | KMOD_LSHIFT};
        viz_app_key(s->a, other[below(s, sizeof other / sizeof other[0])],
                    mods[below(s, sizeof mods / sizeof mods[0])]);
        return;
    }
    int i = (int)below(s, N_SHORTCUTS);
    viz_app_key(s->a, SHORTCUTS[i].key, SHORTCUTS[i].mod);
    s->sent_quit |= SHORTCUTS[i].key == SDLK_q && !viz_ui_editing(&s->a->ui);
}

static void act_click(session *s)
{
    int x, y;
    if (random_widget(s, NULL, &x, &y, NULL))
        click_at(s, x, y, (int)below(s, 2));
    else
        click_at(s, (int)below(s, (uint64_t)s->a->w), (int)below(s, (uint64_t)s->a->h), 0);
}

static void act_drag(session *s, const char *prefix)
{
    int x, y;
    SDL_Rect r;
    if (!random_widget(s, prefix, &x, &y, &r))
        return;
    viz_app_mouse_move(s->a, x, y);
    viz_app_mouse_button(s->a, x, y, 1);
    frame(s);
    int moves = 1 + (int)below(s, 4);
    for (int i = 0; i < moves; i++) {
        /* mostly along the widget, sometimes far outside the window */
        if (below(s, 6) == 0) {
            x = (int)(unif(s) * 1.4 * s->a->w) - s->a->w / 5;
            y = (int)(unif(s) * 1.4 * s->a->h) - s->a->h / 5;
        } else {
            x = r.x - r.w / 4 + (int)(unif(s) * 1.5 * r.w);
            y = r.y + (int)(unif(s) * r.h);
        }
        viz_app_mouse_move(s->a, x, y);
        frame(s);
    }
    viz_app_mouse_button(s->a, x, y, 0);
}

static void act_wheel(session *s)
{
    int x, y;
    if (!random_widget(s, NULL, &x, &y, NULL))
        return;
    viz_app_mouse_move(s->a, x, y);
    SDL_Event e;
    memset(&e, 0, sizeof e);
    e.type = SDL_MOUSEWHEEL;
    e.wheel.y = (int)below(s, 7) - 3;
    e.wheel.x = (int)below(s, 3) - 1;
    viz_app_push_event(s->a, &e);
}

static void act_resize(session *s)
{
    static const int sizes[][2] = {{640, 480}, {700, 900}, {800, 600}, {1024, 700},
                                   {1280, 800}, {1366, 768}, {1600, 1000}, {1920, 1080},
                                   {2560, 1440}, {300, 200}};
    int k = (int)below(s, 12);
    if (k < 10)
        resize(s, sizes[k][0], sizes[k][1]);
    else
        resize(s, 640 + (int)below(s, 1400), 480 + (int)below(s, 900));
}

static void act_model(session *s)
{
    const char *paths[] = {model_a, model_b, model_m, model_bad, model_cut, model_missing,
                           "", "/", "models/../../../nonexistent/x.bfn"};
    int k = (int)below(s, 12);
    if (k < 9)
        type_model(s, paths[k]);
    else
        viz_app_key(s->a, SDLK_m, k == 9 ? KMOD_LSHIFT : 0);
}

static void act_train(session *s)
{
    /* the panel's buttons, weighted towards what keeps training going */
    static const char *ids[] = {"train.start", "train.start", "train.pause", "train.pause",
                                "train.stop", "train.save", "train.use", "train.preview",
                                "train.mnist", "train.twodigit", "train.scratch",
                                "train.frommodel", "train.size.tiny", "train.size.small",
                                "train.size.default", "train.steps"};
    int k = (int)below(s, sizeof ids / sizeof ids[0]);
    if (k == 15) {
        SDL_Rect r;
        if (!viz_app_widget_rect(s->a, "train.steps", &r)) {
            if (!click_id(s, "tab.train", NULL))
                return;
            frame(s);
        }
        act_drag(s, "train.steps");
        return;
    }
    /* the big network trains slowly on two cores: choose it, but rarely start with it */
    if (k == 14 && below(s, 4))
        k = 12;
    click_id(s, ids[k], "tab.train");
    if (fx_small() && (k == 13 || k == 14)) {
        /* sanitized, even the small network steps too slowly: back to tiny */
        frame(s);
        click_id(s, "train.size.tiny", "tab.train");
    }
    if (below(s, 3) == 0)
        viz_app_key(s->a, SDLK_t, KMOD_LSHIFT); /* start or pause by key */
}

static void act_scrub(session *s)
{
    int k = (int)below(s, 4);
    if (k < 2) {
        act_drag(s, "timeline");
    } else if (k == 2) {
        static const char *ids[] = {"first", "back", "play", "fwd", "last", "speed-", "speed+"};
        click_id(s, ids[below(s, 7)], NULL);
    } else {
        static const SDL_Keycode keys[] = {SDLK_LEFT, SDLK_RIGHT, SDLK_HOME, SDLK_END,
                                           SDLK_SPACE};
        int n = 1 + (int)below(s, 5);
        for (int i = 0; i < n; i++)
            viz_app_key(s->a, keys[below(s, 5)], 0);
    }
}

static void act_export(session *s)
{
    static const char *ids[] = {"export.view", "export.strip", "export.frames"};
    static const SDL_Keycode keys[] = {SDLK_p, SDLK_e, SDLK_f};
    int k = (int)below(s, 3);
    if (below(s, 2))
        click_id(s, ids[k], "tab.controls");
    else
        viz_app_key(s->a, keys[k], 0);
}

static void act_zoom(session *s)
{
    if (below(s, 6) == 0) {
        /* the font file disappears (an unmounted share, a package update)
         * while the zoom changes: the app must keep drawing */
        if (rename(font, font_gone) != 0)
            fx_die("cannot move the font away");
        viz_app_key(s->a, below(s, 2) ? SDLK_EQUALS : SDLK_MINUS, KMOD_LCTRL);
        frame(s);
        if (rename(font_gone, font) != 0)
            fx_die("cannot put the font back");
        return;
    }
    static const SDL_Keycode keys[] = {SDLK_EQUALS, SDLK_MINUS, SDLK_0, SDLK_KP_PLUS,
                                       SDLK_KP_MINUS};
    viz_app_key(s->a, keys[below(s, 5)], below(s, 5) ? KMOD_LCTRL : KMOD_LGUI);
}

static void act_hover(session *s)
{
    viz_run *r = viz_app_run_ref(s->a);
    int cells = r ? r->cells : 0, W = r ? r->model.W : 1, H = r ? r->model.H : 1;
    viz_run_unref(r);
    int sx, sy;
    if (cells && viz_app_pixel_pos(s->a, (int)below(s, (uint64_t)cells), (int)below(s, W),
                                   (int)below(s, H), &sx, &sy)) {
        viz_app_mouse_move(s->a, sx, sy);
        int k = (int)below(s, 4);
        if (k == 0) {
            click_at(s, sx, sy, 0); /* pins the inspector */
        } else if (k == 1) {
            SDL_Event e;
            memset(&e, 0, sizeof e);
            e.type = SDL_MOUSEBUTTONDOWN;
            e.button.button = SDL_BUTTON_RIGHT;
            e.button.x = sx;
            e.button.y = sy;
            viz_app_push_event(s->a, &e);
            e.type = SDL_MOUSEBUTTONUP;
            viz_app_push_event(s->a, &e);
        }
    } else {
        viz_app_mouse_move(s->a, (int)below(s, (uint64_t)s->a->w + 40) - 20,
                           (int)below(s, (uint64_t)s->a->h + 40) - 20);
    }
}

static void act_text(session *s)
{
    static const char *texts[] = {"x", "models/", "ü", "€uro", "../", "  ", "9",
                                  "\xce\xb2(1)", "a very long piece of typed text!"};
    int n = 1 + (int)below(s, 4);
    for (int i = 0; i < n; i++) {
        if (below(s, 3))
            viz_app_type(s->a, texts[below(s, sizeof texts / sizeof texts[0])]);
        else
            viz_app_key(s->a, SDLK_BACKSPACE, 0);
    }
    if (below(s, 4) == 0)
        viz_app_key(s->a, below(s, 2) ? SDLK_ESCAPE : SDLK_RETURN, 0);
}

static void act_wait(session *s)
{
    int n = 1 + (int)below(s, 5);
    for (int i = 0; i < n; i++) {
        SDL_Delay((Uint32)below(s, 30));
        if (i + 1 < n)
            frame(s);
    }
}

static void act_help(session *s)
{
    int k = (int)below(s, 4);
    if (k == 0)
        viz_app_key(s->a, SDLK_F1, 0);
    else if (k == 1)
        viz_app_key(s->a, SDLK_QUESTION, 0);
    else if (k == 2)
        viz_app_key(s->a, SDLK_ESCAPE, 0);
    else
        click_at(s, (int)below(s, (uint64_t)s->a->w), (int)below(s, (uint64_t)s->a->h), 0);
}

static void act_window(session *s)
{
    static const Uint8 evs[] = {SDL_WINDOWEVENT_LEAVE, SDL_WINDOWEVENT_ENTER,
                                SDL_WINDOWEVENT_EXPOSED, SDL_WINDOWEVENT_FOCUS_LOST,
                                SDL_WINDOWEVENT_FOCUS_GAINED, SDL_WINDOWEVENT_MINIMIZED,
                                SDL_WINDOWEVENT_RESTORED};
    SDL_Event e;
    memset(&e, 0, sizeof e);
    e.type = SDL_WINDOWEVENT;
    e.window.windowID = SDL_GetWindowID(s->a->win);
    e.window.event = evs[below(s, sizeof evs / sizeof evs[0])];
    viz_app_push_event(s->a, &e);
}

static void act(session *s, action_kind k)
{
    switch (k) {
    case A_KEY: act_key(s); break;
    case A_CLICK: act_click(s); break;
    case A_DRAG: act_drag(s, NULL); break;
    case A_WHEEL: act_wheel(s); break;
    case A_RESIZE: act_resize(s); break;
    case A_MODEL: act_model(s); break;
    case A_TRAIN: act_train(s); break;
    case A_SCRUB: act_scrub(s); break;
    case A_EXPORT: act_export(s); break;
    case A_ZOOM: act_zoom(s); break;
    case A_HOVER: act_hover(s); break;
    case A_TEXT: act_text(s); break;
    case A_WAIT: act_wait(s); break;
    case A_HELP: act_help(s); break;
    default: act_window(s); break;
    }
}

/* The action's events handled by the interactive loop, which must draw:
 * the loop ends when a timer posts a quit event 80 ms later. */
static void through_loop(session *s)
{
    SDL_Delay(20); /* the frame pacing allows a draw at once */
    SDL_Event q[256];
    int n = SDL_PeepEvents(q, 256, SDL_PEEKEVENT, SDL_WINDOWEVENT, SDL_MOUSEWHEEL), input = 0;
    for (int i = 0; i < n; i++) /* typed text changes nothing without a text field */
        input += q[i].type != SDL_TEXTINPUT || viz_ui_editing(&s->a->ui);
    long before = s->a->frames_drawn;
    double t0 = viz_now();
    SDL_TimerID t = SDL_AddTimer(80, viz_push_quit, NULL);
    viz_app_run(s->a);
    double dt = viz_now() - t0;
    SDL_RemoveTimer(t);
    s->loop_calls++;
    /* input must be answered with a frame (an action without events, such as
     * waiting, may leave nothing to redraw) */
    if (input > 0 && s->a->frames_drawn == before && !s->sent_quit && !s->loop_silent++)
        viz_fmt(s->first_silent, sizeof s->first_silent, "%s, loop ran %.0f ms", s->doing,
                dt * 1000);
    if (dt > FRAME_BOUND_S + 0.08)
        s->slow++;
    /* The loop stops at the quit and leaves the rest of its poll cycle queued,
     * which the next viz_app_run_frames would end its polling at: one frame
     * takes it out (and a timer quit that came late). */
    frame(s);
    s->a->quit = 0;
}

/* What must hold after every action. */
static void invariants(session *s, int i)
{
    viz_app *a = s->a;
    viz_app_state st;
    viz_app_get_state(a, &st);
    char why[300] = "";
    const viz_sample_params *p = &st.settings;
    if (p->n < 1 || p->n > 1000 || p->grid < 1 || p->grid > VIZ_GRID_MAX)
        viz_fmt(why, sizeof why, "settings out of range: n %d grid %d", p->n, p->grid);
    else if (!(p->beta1 == 0 || (p->beta1 >= 0.1 - 1e-9 && p->beta1 <= 30 + 1e-9)))
        viz_fmt(why, sizeof why, "beta(1) setting %g", p->beta1);
    else if (!(p->guidance >= 1 && p->guidance <= VIZ_GUIDANCE_MAX) ||
             fmod(p->guidance - 1, VIZ_GUIDANCE_STEP) != 0 ||
             (!st.guide_available && p->guidance != 1))
        viz_fmt(why, sizeof why, "guidance w = %g (the model has %s guide)", p->guidance,
                st.guide_available ? "a" : "no");
    else if (!(st.speed >= 0.25 && st.speed <= 8))
        viz_fmt(why, sizeof why, "speed %g", st.speed);
    else if (!(a->zoom >= 0.5f && a->zoom <= 4.0f))
        viz_fmt(why, sizeof why, "zoom %g", a->zoom);
    else if (st.position < 0 || st.position > viz_positions_ready(a) - 1 ||
             st.position > st.positions - 1)
        viz_fmt(why, sizeof why, "position %d of %d (%d ready)", st.position, st.positions,
                viz_positions_ready(a));
    else if (viz_ui_editing(&a->ui) && !viz_app_widget_rect(a, "model", &(SDL_Rect){0}))
        viz_fmt(why, sizeof why,
                "the keyboard goes to the model field, which is not on screen "
                "(%dx%d, narrow %d, tab %d)", a->w, a->h, a->narrow, (int)a->narrow_tab);
    else if (st.run_gen && st.run_state != VIZ_RUN_ERROR && st.run_ready > st.run_slots)
        viz_fmt(why, sizeof why, "run has %d of %d slots ready", st.run_ready, st.run_slots);
    int w = 0, h = 0;
    if (!why[0] && a->win) {
        SDL_GetWindowSize(a->win, &w, &h);
        if (w != a->w || h != a->h)
            viz_fmt(why, sizeof why, "window %dx%d but the app lays out %dx%d", w, h, a->w,
                    a->h);
    }
    if (why[0] && !s->invariant_bad++)
        viz_fmt(s->first_bad, sizeof s->first_bad, "after action %d (%s): %s", i, s->doing, why);
}

static int trace_watch(void *user, SDL_Event *e)
{
    (void)user;
    if (e->type == SDL_WINDOWEVENT)
        printf("    window event %d (%d, %d)\n", e->window.event, e->window.data1,
               e->window.data2);
    return 1;
}

static viz_app *open_app(uint64_t seed)
{
    viz_options o;
    fx_dirs d;
    fx_options(&o, &d, dir, model_a, 30, 4, seed % 1000 + 1);
    o.headless = 0; /* a window on the dummy video driver: resizes as on a desktop */
    o.data_dir = data;
    o.preview_every_s = fx_small() ? 30 : 2; /* previews run between training steps */
    o.mem_cap_mb = 24; /* long runs keep every few steps only */
    o.font_path = font;
    return fx_create(&o);
}

static void run_session(session *s, int n_actions)
{
    int total = 0;
    for (int k = 0; k < A_COUNT; k++)
        total += KIND_WEIGHT[k];
    for (int i = 0; i < n_actions; i++) {
        int r = (int)below(s, (uint64_t)total), k = 0;
        while (r >= KIND_WEIGHT[k])
            r -= KIND_WEIGHT[k++];
        s->counts[k]++;
        s->doing = KIND_NAMES[k];
        s->kind = k;
        g_action = i;
        g_kind = k;
        alarm(WATCHDOG_S);
        int loop = below(s, 10) == 0;
        int quit_before = s->a->quit;
        s->sent_quit = 0;
        act(s, (action_kind)k);
        if (loop) {
            through_loop(s);
        } else {
            frame(s);
            if (s->a->quit && !quit_before) {
                s->quits++;
                s->a->quit = 0; /* Ctrl+Q: noted, the session goes on */
            }
        }
        invariants(s, i);
        if (g_trace)
            printf("  #%d %s%s -> %dx%d zoom %.2f help %d editing %d\n", i, KIND_NAMES[k],
                   loop ? " (loop)" : "", s->a->w, s->a->h, s->a->zoom, s->a->help,
                   viz_ui_editing(&s->a->ui));
        if (i % 100 == 99) {
            viz_app_state st;
            viz_app_get_state(s->a, &st);
            printf("  %d actions · worst frame %.0f ms · %dx%d zoom %.2f · n %d grid %d · "
                   "training %s step %lld (%.80s)\n",
                   i + 1, s->worst_s * 1000, s->a->w, s->a->h, s->a->zoom, st.settings.n,
                   st.settings.grid, viz_train_state_name(st.train_state),
                   (long long)st.train_step, st.train_message);
            fflush(stdout);
        }
    }
    alarm(0);
}

/* ---- the end state ---- */

static void settle(session *s, double seconds)
{
    double end = viz_now() + seconds;
    while (viz_now() < end) {
        frame(s);
        SDL_Delay(10);
    }
}

/* Runs frames until cond holds or timeout_s passed; returns cond. */
#define WAIT_FOR(s, cond, timeout_s)                                                   \
    ({ double wend_ = viz_now() + (timeout_s);                                          \
       while (!(cond) && viz_now() < wend_) { frame(s); SDL_Delay(5); }                  \
       (cond); })

static viz_train_state train_state_now(viz_app *a)
{
    viz_train_view *v = malloc(sizeof *v);
    viz_train_get(a->train, v);
    viz_train_state st = v->state;
    free(v);
    return st;
}

/* Back to a plain window: no overlay, no text field with the keyboard,
 * default size and zoom, controls visible. */
static void calm_down(session *s)
{
    viz_app *a = s->a;
    s->doing = "calming down";
    if (viz_ui_editing(&a->ui))
        viz_app_key(a, SDLK_ESCAPE, 0);
    frame(s);
    if (a->help)
        viz_app_key(a, SDLK_ESCAPE, 0);
    resize(s, 1280, 800);
    frame(s);
    viz_app_key(a, SDLK_0, KMOD_LCTRL);
    frame(s);
    SDL_Rect r;
    if (!viz_app_widget_rect(a, "model", &r) && viz_app_widget_rect(a, "teach.leave", &r)) {
        click_at(s, r.x + r.w / 2, r.y + r.h / 2, 0); /* out of the teaching mode */
        frame(s);
    }
    CHECK(viz_app_widget_rect(a, "model", &r), "the sampling view with its controls is back");
    CHECK(!a->help && !viz_ui_editing(&a->ui), "no overlay, keyboard free (help %d)", a->help);
    CHECK_NEAR(1.0, a->zoom, 0, "zoom back to 1");
    CHECK(a->w == 1280 && a->h == 800, "window back to 1280x800 (%dx%d)", a->w, a->h);
}

static int file_loads_as_model(const char *path, char *msg, size_t cap)
{
    bfn_net *net = NULL;
    bfn_err err = {0};
    bfn_status st = bfn_model_load_net(path, &net, NULL, 1, &err);
    viz_strcpy(msg, cap, err.msg);
    bfn_net_destroy(net);
    return st == BFN_OK;
}

static void end_training(session *s)
{
    viz_app *a = s->a;
    s->doing = "ending training";
    /* shown state and the training thread's agree once the throttle passed */
    settle(s, 0.4);
    viz_app_state st = fx_state(a);
    CHECK_NEAR(train_state_now(a), st.train_state, 0,
               "training state shown (%s) equals the thread's",
               viz_train_state_name(st.train_state));
    /* whatever the session left going stops... */
    if (st.train_state != VIZ_TRAIN_IDLE) {
        click_id(s, "train.stop", "tab.train");
        CHECK(WAIT_FOR(s, fx_state(a).train_state == VIZ_TRAIN_IDLE, 600),
              "Stop ends the session's run (state %s)",
              viz_train_state_name(fx_state(a).train_state));
    }
    /* ...then a tiny MNIST run starts, steps, saves, stops, and its files load */
    static const char *choose[] = {"train.mnist", "train.scratch", "train.size.tiny",
                                   "train.start"};
    for (int i = 0; i < 4; i++) {
        CHECK(click_id(s, choose[i], "tab.train"), "%s on screen", choose[i]);
        frame(s);
    }
    CHECK(WAIT_FOR(s, fx_state(a).train_state == VIZ_TRAIN_RUNNING, 300),
          "training runs (state %s: %.200s)", viz_train_state_name(fx_state(a).train_state),
          fx_state(a).train_message);
    int64_t s0 = fx_state(a).train_step;
    CHECK(WAIT_FOR(s, fx_state(a).train_step >= s0 + 2, 300), "training steps on (%lld -> %lld)",
          (long long)s0, (long long)fx_state(a).train_step);
    viz_train_view *v = calloc(1, sizeof *v);
    viz_train_get(a->train, v);
    char model_path[VIZ_PATH_MAX], ckpt_path[VIZ_PATH_MAX];
    viz_strcpy(model_path, sizeof model_path, v->model_path);
    viz_strcpy(ckpt_path, sizeof ckpt_path, v->ckpt_path);
    unlink(model_path);
    click_id(s, "train.save", "tab.train");
    struct stat sb;
    CHECK(WAIT_FOR(s, stat(model_path, &sb) == 0, 300), "Save model wrote %.300s", model_path);
    click_id(s, "train.stop", "tab.train");
    CHECK(WAIT_FOR(s, fx_state(a).train_state == VIZ_TRAIN_IDLE, 300),
          "Stop ends the run (state %s)", viz_train_state_name(fx_state(a).train_state));
    settle(s, 0.2);
    viz_train_get(a->train, v);
    st = fx_state(a);
    CHECK_NEAR(v->step, st.train_step, 0, "step shown equals the thread's");
    CHECK(strstr(st.train_message, "stopped") != NULL, "stop message: %.200s", st.train_message);
    bfn_net *net = NULL;
    bfn_trainer *tr = NULL;
    bfn_err err = {0};
    CHECK(bfn_trainer_load(ckpt_path, &net, &tr, NULL, 0, &err) == BFN_OK,
          "the checkpoint written at Stop loads: %s", err.msg);
    if (tr)
        CHECK_NEAR(v->step, bfn_trainer_steps(tr), 0, "checkpoint step equals the step shown");
    bfn_trainer_destroy(tr);
    bfn_net_destroy(net);
    char msg[BFN_ERR_MSG_MAX];
    CHECK(file_loads_as_model(model_path, msg, sizeof msg), "the saved model loads: %s", msg);
    free(v);
}

static int pixel_is(const uint8_t *pix, int w, int x, int y, SDL_Color c)
{
    const uint8_t *p = pix + ((size_t)y * w + x) * 3;
    return p[0] == c.r && p[1] == c.g && p[2] == c.b;
}

static void end_sampling(session *s)
{
    viz_app *a = s->a;
    s->doing = "ending sampling";
    type_model(s, model_a);
    frame(s);
    CHECK(!strcmp(fx_state(a).model_path, model_a), "model set back to %.300s (is %.300s)", model_a,
          fx_state(a).model_path);
    /* n = 8 through the slider, 2x2 cells through the keys */
    SDL_Rect nr;
    if (CHECK(viz_app_widget_rect(a, "n", &nr), "n slider on screen")) {
        int nx = viz_ui_slider_x_of(nr, 8, 1, 1000, 1);
        click_at(s, nx, nr.y + nr.h / 2, 0);
        frame(s);
    }
    for (int i = 0; i < 8 && fx_state(a).settings.grid != 2; i++) {
        viz_app_key(a, SDLK_g, fx_state(a).settings.grid > 2 ? KMOD_LSHIFT : 0);
        frame(s);
    }
    /* guidance off through its key: the reference below is the unguided sampler */
    for (int i = 0; i < 16 && fx_state(a).settings.guidance != 1; i++) {
        viz_app_key(a, SDLK_w, KMOD_LSHIFT);
        frame(s);
    }
    CHECK(viz_app_wait_run(a, 120), "the last sampling run completes");
    viz_app_state st = fx_state(a);
    CHECK(st.settings.n == 8 && st.settings.grid == 2, "settled on n %d grid %d", st.settings.n,
          st.settings.grid);
    viz_run *r = viz_app_run_ref(a);
    CHECK(r && viz_run_get_state(r) == VIZ_RUN_DONE, "the shown run is done");
    if (r) {
        double want_beta = st.settings.beta1 > 0 ? st.settings.beta1 : 3.0;
        CHECK(r->sp.n == st.settings.n && r->sp.grid == st.settings.grid &&
                  r->sp.seed == st.settings.seed && r->sp.argmax == st.settings.argmax &&
                  r->sp.guidance == 1 && st.settings.guidance == 1,
              "the shown run used the stored settings (n %d/%d grid %d/%d seed %llu/%llu "
              "argmax %d/%d guidance %g/%g)",
              r->sp.n, st.settings.n, r->sp.grid, st.settings.grid,
              (unsigned long long)r->sp.seed, (unsigned long long)st.settings.seed,
              r->sp.argmax, st.settings.argmax, r->sp.guidance, st.settings.guidance);
        CHECK_NEAR(want_beta, r->sp.beta1, 1e-12, "the shown run's beta(1)");
        CHECK(!strcmp(r->model.label, "a.bfn"), "the shown run's model: %s", r->model.label);
    }
    viz_run_unref(r);
    CHECK(!strcmp(st.status, "worker: idle"), "the worker is idle as the UI says: %s",
          st.status);
    int cells = 0, D = 0;
    uint8_t *got = fx_app_final(a, &cells, &D);
    uint8_t *want = fx_engine_sample(model_a, st.settings.n, st.settings.beta1, st.settings.seed,
                                     4, st.settings.argmax, NULL);
    int diff = 0;
    for (int i = 0; got && i < 4 * 256; i++)
        diff += got[i] != want[i];
    CHECK(got && cells * D == 4 * 256, "final slot of the last run");
    CHECK_NEAR(0, diff, 0, "pixels differing from bfn_sampler after the session");
    free(got);
    free(want);

    /* the controls show the stored settings: knobs where the values put them,
     * the selected buttons highlighted (mouse parked on the status line) */
    viz_app_key(a, SDLK_END, 0);
    viz_app_mouse_move(a, 2, a->h - 2);
    frames(s, 2);
    st = fx_state(a);
    int w, h;
    uint8_t *pix = viz_app_read_pixels(a, &w, &h);
    CHECK(pix != NULL, "pixels read back");
    if (!pix)
        return;
    const SDL_Color accent = a->ui.th.accent, active = a->ui.th.active, plain = a->ui.th.widget;
    SDL_Rect br, tr;
    if (viz_app_widget_rect(a, "n", &nr)) {
        int x = viz_ui_slider_x_of(nr, st.settings.n, 1, 1000, 1);
        CHECK(pixel_is(pix, w, x, nr.y + nr.h / 2, accent), "n knob at n = %d", st.settings.n);
    }
    if (viz_app_widget_rect(a, "beta1", &br)) {
        double b = st.settings.beta1 > 0 ? st.settings.beta1 : 3.0;
        int x = viz_ui_slider_x_of(br, b, 0.1, 30, 1);
        CHECK(pixel_is(pix, w, x, br.y + br.h / 2, accent), "beta(1) knob at %g", b);
    }
    if (viz_app_widget_rect(a, "timeline", &tr)) {
        int x = viz_ui_slider_x_of(tr, st.position, 0, st.positions - 1, 0);
        CHECK(pixel_is(pix, w, x, tr.y + tr.h / 2, accent), "timeline knob at position %d of %d",
              st.position, st.positions);
        CHECK_NEAR(st.positions - 1, st.position, 0, "End shows the last position");
    }
    static const char *views[VIZ_VIEW_COUNT] = {"view.theta", "view.p", "view.k",
                                                "view.entropy", "view.final"};
    int wrong = 0;
    for (int v = 0; v < VIZ_VIEW_COUNT; v++) {
        SDL_Rect vr;
        if (!viz_app_widget_rect(a, views[v], &vr)) {
            wrong++;
            continue;
        }
        wrong += !pixel_is(pix, w, vr.x + 3, vr.y + 3, (int)st.view == v ? active : plain);
    }
    CHECK_NEAR(0, wrong, 0, "view buttons whose highlight disagrees with the view (%s)",
               viz_view_name(st.view));
    SDL_Rect fs, fa;
    if (viz_app_widget_rect(a, "final.sample", &fs) &&
        viz_app_widget_rect(a, "final.argmax", &fa))
        CHECK(pixel_is(pix, w, fs.x + 3, fs.y + 3, st.settings.argmax ? plain : active) &&
                  pixel_is(pix, w, fa.x + 3, fa.y + 3, st.settings.argmax ? active : plain),
              "final output buttons show argmax = %d", st.settings.argmax);
    free(pix);
}

/* Every exported file is a whole PNG; frame sequences are complete. */
static void check_exports(session *s)
{
    s->doing = "finishing exports";
    CHECK(WAIT_FOR(s, s->a->frames_run == NULL, 120), "frame export finished");
    int files = 0, bad = 0, seqs = 0;
    DIR *d = opendir(out_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", out_dir, e->d_name);
        if (!strncmp(e->d_name, "frames-", 7)) {
            seqs++;
            continue;
        }
        files++;
        FILE *f = fopen(p, "rb");
        unsigned char sig[8] = {0};
        long size = 0;
        if (f) {
            if (fread(sig, 1, 8, f) != 8)
                sig[0] = 0;
            fseek(f, 0, SEEK_END);
            size = ftell(f);
            fclose(f);
        }
        if (memcmp(sig, "\x89PNG\r\n\x1a\n", 8) || size < 60) {
            if (!bad++)
                printf("  not a whole PNG: %s (%ld bytes)\n", p, size);
        }
    }
    if (d)
        closedir(d);
    printf("exports: %d PNG files, %d frame sequences\n", files, seqs);
    CHECK_NEAR(0, bad, 0, "exported files that are not whole PNGs (of %d)", files);
}

static uint64_t arg_u64(int argc, char **argv, const char *opt, const char *env, uint64_t dflt,
                        int *given)
{
    const char *v = getenv(env);
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], opt))
            v = argv[i + 1];
    if (given)
        *given = v != NULL;
    return v ? strtoull(v, NULL, 10) : dflt;
}

static int g_actions;
static uint64_t g_seed;

static void test_app_answers_every_action_of_a_random_session_and_ends_consistent(void)
{
    session *s = calloc(1, sizeof *s);
    bfn_rng_init(&s->rng, g_seed, 7);
    s->a = open_app(g_seed);
    s->doing = "start";
    if (g_trace)
        SDL_AddEventWatch(trace_watch, NULL);
    CHECK(s->a->win != NULL, "a window on the dummy video driver");
    /* sampling and training both busy from the start */
    click_id(s, "train.start", "tab.train");
    frame(s);
    double t0 = viz_now();
    run_session(s, g_actions);
    double el = viz_now() - t0;
    viz_app_state st = fx_state(s->a);
    printf("session: %d actions (seed %llu) in %.1f s, %ld frames · frame (events + update + "
           "draw): mean %.1f ms, worst %.0f ms (%s) · app's own draw work max %.0f ms · "
           "%ld actions through the interactive loop · %d Ctrl+Q · sampling runs %llu · "
           "training %s at step %lld\n",
           g_actions, (unsigned long long)g_seed, el, s->frames,
           s->frames ? 1000 * s->sum_s / s->frames : 0, 1000 * s->worst_s, s->worst_what,
           st.frame_ms_max, s->loop_calls, s->quits, (unsigned long long)st.run_gen,
           viz_train_state_name(st.train_state), (long long)st.train_step);
    printf("actions by kind (worst frame):");
    for (int k = 0; k < A_COUNT; k++)
        printf(" %s %d (%.0f ms)", KIND_NAMES[k], s->counts[k], 1000 * s->worst_kind_s[k]);
    printf("\n");
    CHECK_NEAR(0, s->invariant_bad, 0, "broken invariants (first: %s)", s->first_bad);
    CHECK_NEAR(0, s->slow, 0, "frames that took over %.0f s (worst %.0f ms)", FRAME_BOUND_S,
               1000 * s->worst_s);
    CHECK_NEAR(0, s->loop_silent, 0, "actions after which the interactive loop drew nothing "
                                     "(of %ld; first: %s)", s->loop_calls, s->first_silent);
    g_phase = "the end checks";
    alarm(WATCHDOG_S * 15);
    calm_down(s);
    end_training(s);
    end_sampling(s);
    check_exports(s);
    alarm(0);
    viz_app_destroy(s->a);
    /* nothing half-written is left under the runs directory */
    int tmp = 0;
    DIR *d = opendir(runs_dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        tmp += strstr(e->d_name, ".tmp") != NULL;
    if (d)
        closedir(d);
    CHECK_NEAR(0, tmp, 0, "temporary files left in %s", runs_dir);
    free(s);
}

int main(int argc, char **argv)
{
    int given = 0;
    uint64_t dflt_seed = ((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16)) % 1000000 + 1;
    g_seed = arg_u64(argc, argv, "--seed", "BFN_STRESS_SEED", dflt_seed, &given);
    g_actions = (int)arg_u64(argc, argv, "--actions", "BFN_STRESS_ACTIONS", 1000, NULL);
    printf("app_stress: %d actions, seed %llu%s (replay: BFN_STRESS_SEED=%llu or --seed %llu)\n",
           g_actions, (unsigned long long)g_seed, given ? "" : " from the clock",
           (unsigned long long)g_seed, (unsigned long long)g_seed);
    fflush(stdout);
    g_trace = getenv("BFN_STRESS_TRACE") != NULL;
    setenv("SDL_VIDEODRIVER", "dummy", 1);
    setenv("SDL_AUDIODRIVER", "dummy", 1);
    signal(SIGALRM, on_alarm);
    make_fixture();
    RUN(test_app_answers_every_action_of_a_random_session_and_ends_consistent);
    if (check_failures)
        printf("app_stress: failed with seed %llu; replay with BFN_STRESS_SEED=%llu\n",
               (unsigned long long)g_seed, (unsigned long long)g_seed);
    else
        fx_rmtree(dir);
    return check_finish();
}
