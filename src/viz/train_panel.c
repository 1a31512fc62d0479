/* The training panel: choices for a new run, start / pause / stop, save and
 * "use in viewer", the live loss curves and a preview grid sampled from the
 * current EMA weights. Everything shown comes from the copy of the training
 * thread's state taken in update (a->tv). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app_internal.h"

static const SDL_Color C_TRAIN = {94, 156, 236, 255};
static const SDL_Color C_VAL = {255, 150, 50, 255};

static void fmt_duration(char *buf, size_t cap, double s)
{
    if (!(s >= 0) || s > 1e8)
        viz_fmt(buf, cap, "?");
    else if (s >= 3600)
        viz_fmt(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else if (s >= 60)
        viz_fmt(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        viz_fmt(buf, cap, "%ds", (int)s);
}

/* Choice row: caption then n toggle buttons; returns the clicked index or -1. */
static int choices(viz_app *a, int x, int y, int w, int h, const char *caption, int n,
                   const char *const *ids, const char *const *names, const char *const *tips,
                   int selected)
{
    viz_ui *ui = &a->ui;
    int cap_w = viz_ui_px(ui, 84), gap = viz_ui_px(ui, 4), r = -1;
    viz_ui_text(ui, VIZ_FONT_NORMAL, x, y + (h - viz_ui_line_height(ui, VIZ_FONT_NORMAL)) / 2,
                ui->th.dim, caption);
    int bw = (w - cap_w - (n - 1) * gap) / n;
    for (int i = 0; i < n; i++)
        if (viz_ui_button(ui, ids[i], (SDL_Rect){x + cap_w + i * (bw + gap), y, bw, h}, names[i],
                          tips[i], i == selected))
            r = i;
    return r;
}

static void loss_plot(viz_app *a, SDL_Rect p)
{
    viz_ui *ui = &a->ui;
    const viz_train_view *v = a->tv;
    viz_ui_fill(ui, p, (SDL_Color){22, 23, 28, 255});
    viz_ui_frame(ui, p, ui->th.border);
    viz_ui_region(ui, "train.loss", p,
                  "Continuous-time loss L∞ in nats/image (log scale): blue training (smoothed "
                  "over buckets), orange validation with the EMA weights");
    int lh = viz_ui_line_height(ui, VIZ_FONT_SMALL);
    if (v->n_loss < 2) {
        viz_ui_text_center(ui, VIZ_FONT_SMALL, p, ui->th.dim, "the loss curve appears here");
        return;
    }
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < v->n_loss; i++) {
        lo = fmin(lo, v->loss_val[i]);
        hi = fmax(hi, v->loss_val[i]);
    }
    for (int i = 0; i < v->n_val; i++) {
        lo = fmin(lo, v->val_val[i]);
        hi = fmax(hi, v->val_val[i]);
    }
    lo = log10(fmax(lo, 1e-3)) - 0.02;
    hi = log10(fmax(hi, 1e-3)) + 0.02;
    float ly[VIZ_TRAIN_CURVE_MAX];
    for (int i = 0; i < v->n_loss; i++)
        ly[i] = (float)log10(fmax(v->loss_val[i], 1e-3));
    double x1 = (double)(v->total > 0 ? v->total : v->step);
    SDL_Rect in = {p.x + 2, p.y + 2, p.w - 4, p.h - 4};
    viz_draw_polyline(a, in, v->loss_step, ly, v->n_loss, 0, x1, lo, hi, C_TRAIN);
    if (ui->drawing)
        for (int i = 0; i < v->n_val; i++) {
            double u = v->val_step[i] / x1, t = (log10(fmax(v->val_val[i], 1e-3)) - lo) / (hi - lo);
            int x = in.x + (int)(u * (in.w - 1)), y = in.y + (int)((1 - t) * (in.h - 1));
            int s = viz_ui_px(ui, 3);
            viz_ui_fill(ui, (SDL_Rect){x - s, y - s, 2 * s + 1, 2 * s + 1}, C_VAL);
        }
    viz_ui_textf(ui, VIZ_FONT_SMALL, p.x + 4, p.y + 2, ui->th.dim, "%.0f", pow(10, hi));
    viz_ui_textf(ui, VIZ_FONT_SMALL, p.x + 4, p.y + p.h - lh - 2, ui->th.dim, "%.0f", pow(10, lo));
    viz_ui_text_right(ui, VIZ_FONT_SMALL, p.x + p.w - 4, p.y + p.h - lh - 2, ui->th.dim,
                      "step →");
}

static void preview(viz_app *a, SDL_Rect r)
{
    viz_ui *ui = &a->ui;
    const viz_train_view *v = a->tv;
    viz_ui_region(ui, "train.preview", r,
                  "Samples from the current EMA weights (n = 25 steps, fixed seed), refreshed "
                  "every half minute of training or with Preview");
    if (!v->preview_n) {
        viz_ui_text_center(ui, VIZ_FONT_SMALL, r, ui->th.dim,
                           "a preview from the EMA weights appears here");
        return;
    }
    const int cols = 4, rows = (v->preview_n + cols - 1) / cols, H = v->preview_h, W = v->preview_w;
    if (ui->drawing && (a->preview_shown != v->preview_serial || !a->preview_tex)) {
        if (a->preview_tex)
            SDL_DestroyTexture(a->preview_tex);
        a->preview_tex = SDL_CreateTexture(a->ren, SDL_PIXELFORMAT_RGBA32,
                                           SDL_TEXTUREACCESS_STATIC, cols * W, rows * H);
        size_t bytes = (size_t)rows * cols * H * W * 4;
        uint8_t *rgba = a->preview_tex ? malloc(bytes) : NULL;
        if (rgba) {
            SDL_SetTextureScaleMode(a->preview_tex, SDL_ScaleModeNearest);
            memset(rgba, 40, bytes);
            for (int i = 0; i < v->preview_n; i++)
                for (int y = 0; y < H; y++)
                    for (int x = 0; x < W; x++) {
                        uint8_t c = v->preview[((size_t)i * H + y) * W + x] ? 240 : 12;
                        uint8_t *o = rgba + (((size_t)(i / cols) * H + y) * cols * W +
                                             (size_t)(i % cols) * W + x) * 4;
                        o[0] = o[1] = o[2] = c;
                        o[3] = 255;
                    }
            SDL_UpdateTexture(a->preview_tex, NULL, rgba, cols * W * 4);
            free(rgba);
        }
        a->preview_shown = v->preview_serial;
    }
    int lh = viz_ui_line_height(ui, VIZ_FONT_SMALL);
    viz_ui_textf(ui, VIZ_FONT_SMALL, r.x, r.y, ui->th.dim,
                 "samples from the EMA weights at step %lld", (long long)v->preview_step);
    int gap = viz_ui_px(ui, 4), avail_h = r.h - lh - 4;
    double f = fmin((double)(r.w - (cols - 1) * gap) / (cols * W),
                    (double)(avail_h - (rows - 1) * gap) / (rows * H));
    if (f >= 1)
        f = floor(f);
    int cw = (int)(f * W), ch = (int)(f * H);
    for (int i = 0; ui->drawing && a->preview_tex && i < v->preview_n; i++) {
        SDL_Rect src = {(i % cols) * W, (i / cols) * H, W, H};
        SDL_Rect dst = {r.x + (i % cols) * (cw + gap), r.y + lh + 4 + (i / cols) * (ch + gap), cw,
                        ch};
        SDL_RenderCopy(a->ren, a->preview_tex, &src, &dst);
    }
}

void viz_train_panel(viz_app *a, SDL_Rect r)
{
    viz_ui *ui = &a->ui;
    const viz_train_view *v = a->tv;
    viz_train_req *q = &a->treq;
    int pad = viz_ui_px(ui, 10), row = viz_ui_px(ui, 28), gap = viz_ui_px(ui, 6);
    int lh = viz_ui_line_height(ui, VIZ_FONT_SMALL);
    int x = r.x + pad, w = r.w - 2 * pad, y = r.y + pad / 2;
    viz_draw_panel(a, (SDL_Rect){r.x, y - pad / 2, r.w, r.h}, "Training (continuous-time loss)");
    y += viz_ui_line_height(ui, VIZ_FONT_NORMAL) + gap;

    static const char *const data_ids[] = {"train.mnist", "train.twodigit"};
    static const char *const data_names[] = {"MNIST", "two-digit"};
    static const char *const data_tips[] = {"Binarized MNIST 28×28 from data/mnist",
                                            "Two MNIST digits on a 64×64 canvas"};
    int c = choices(a, x, y, w, row, "data", 2, data_ids, data_names, data_tips,
                    q->data == BFN_DATA_TWODIGIT);
    if (c >= 0)
        q->data = c ? BFN_DATA_TWODIGIT : BFN_DATA_MNIST;
    y += row + gap;
    static const char *const from_ids[] = {"train.scratch", "train.frommodel"};
    static const char *const from_names[] = {"scratch", "this model"};
    static const char *const from_tips[] = {"A freshly initialised network of the size below",
                                            "Continue from the weights of the model in the viewer"};
    c = choices(a, x, y, w, row, "start from", 2, from_ids, from_names, from_tips, q->from_model);
    if (c >= 0)
        q->from_model = c;
    y += row + gap;
    static const char *const size_ids[] = {"train.size.tiny", "train.size.small",
                                           "train.size.default"};
    static const char *const size_names[] = {"tiny", "small", "default"};
    static const char *const size_tips[] = {
        "Base width 8, one block per level, batch 16: strokes appear within minutes",
        "Base width 16, one block per level, batch 32",
        "The engine's default U-Net, batch 64: slow on a laptop CPU",
    };
    c = choices(a, x, y, w, row, "size", 3, size_ids, size_names, size_tips, (int)q->size);
    if (c >= 0)
        q->size = (viz_train_size)c;
    y += row + gap;
    char s[200];
    viz_fmt(s, sizeof s, "steps %lld", (long long)q->steps);
    viz_ui_text(ui, VIZ_FONT_NORMAL, x, y + (row - viz_ui_line_height(ui, VIZ_FONT_NORMAL)) / 2,
                ui->th.dim, s);
    double steps = (double)q->steps;
    int cap_w = viz_ui_px(ui, 110);
    if (viz_ui_slider(ui, "train.steps", (SDL_Rect){x + cap_w, y, w - cap_w, row}, &steps, 100,
                      200000, 1, NAN, "Length of the run (the learning rate decays over it)"))
        q->steps = (int64_t)(exp(round(log(steps) * 20) / 20) + 0.5);
    y += row + gap;

    int bw = (w - 2 * gap) / 3;
    int running = v->state == VIZ_TRAIN_RUNNING, paused = v->state == VIZ_TRAIN_PAUSED;
    if (viz_ui_button(ui, "train.start", (SDL_Rect){x, y, bw, row}, "Start",
                      "Start a new training run with these choices (Shift+T)", running || paused))
        viz_act_train_start(a);
    if (viz_ui_button(ui, "train.pause", (SDL_Rect){x + bw + gap, y, bw, row},
                      paused ? "Resume" : "Pause", "Pause or resume training (Shift+T)", paused))
        if (running || paused)
            viz_train_pause(a->train, running);
    if (viz_ui_button(ui, "train.stop", (SDL_Rect){x + 2 * (bw + gap), y, bw, row}, "Stop",
                      "Save a checkpoint and end the run", 0))
        viz_train_stop(a->train);
    y += row + gap;
    /* stopped, failed or never started: nothing to save or preview */
    int no_run = v->state == VIZ_TRAIN_IDLE || v->state == VIZ_TRAIN_ERROR;
    if (viz_ui_button(ui, "train.save", (SDL_Rect){x, y, bw, row}, "Save model",
                      "Write the EMA weights to runs/viz-<data>.bfn (and a checkpoint)", 0)) {
        if (no_run)
            viz_act_notice(a, 1, "no training run to save: press Start first");
        else
            viz_train_request_save(a->train);
    }
    if (viz_ui_button(ui, "train.use", (SDL_Rect){x + bw + gap, y, bw, row}, "Use in viewer",
                      "Sample the main grid from a snapshot of the current EMA weights",
                      a->snap != NULL))
        viz_act_use_snapshot(a);
    if (viz_ui_button(ui, "train.preview", (SDL_Rect){x + 2 * (bw + gap), y, bw, row}, "Preview",
                      "Sample the preview grid from the EMA weights now", 0)) {
        if (no_run)
            viz_act_notice(a, 1, "no training run to preview: press Start first");
        else
            viz_train_request_preview(a->train);
    }
    y += row + gap;

    if (v->state != VIZ_TRAIN_IDLE || v->message[0]) {
        char eta[32];
        fmt_duration(eta, sizeof eta, v->eta_s);
        viz_ui_textf(ui, VIZ_FONT_SMALL, x, y, ui->th.text,
                     "%s %s · step %lld of %lld · %.1fk parameters",
                     viz_train_state_name(v->state), v->data_name, (long long)v->step,
                     (long long)v->total, v->params / 1e3);
        y += lh;
        char val[48] = "";
        if (v->val >= 0)
            viz_fmt(val, sizeof val, " · validation %.1f", v->val);
        viz_ui_textf(ui, VIZ_FONT_SMALL, x, y, ui->th.text, "loss %.1f%s nats/image", v->loss,
                     val);
        y += lh;
        viz_ui_textf(ui, VIZ_FONT_SMALL, x, y, ui->th.text,
                     "β(1) %g · batch %d · lr %.2g · %.0f images/s · ETA %s", v->beta1, v->batch,
                     v->lr, v->images_per_s, eta);
        y += lh;
        SDL_Rect mr = {x, y, w, 3 * lh};
        y += viz_draw_wrapped(a, VIZ_FONT_SMALL, mr,
                              v->state == VIZ_TRAIN_ERROR ? ui->th.error : ui->th.dim, v->message);
    } else {
        y += viz_draw_wrapped(a, VIZ_FONT_SMALL, (SDL_Rect){x, y, w, 4 * lh}, ui->th.dim,
                              "Training runs on its own thread with its own network; sampling "
                              "keeps working. Checkpoints go to runs/viz-<data>.ckpt.");
    }
    y += gap;
    int rest = r.y + r.h - pad - y;
    int plot_h = rest * 45 / 100;
    loss_plot(a, (SDL_Rect){x, y, w, plot_h});
    y += plot_h + gap;
    preview(a, (SDL_Rect){x, y, w, r.y + r.h - pad - y});
}
