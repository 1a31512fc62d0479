/* The timeline under the grid: transport buttons, the draggable step track
 * (with the part already sampled shown brighter) and the playback speed. */
#include <math.h>
#include <stdio.h>

#include "app_internal.h"
#include "bfn/flow.h"

void viz_timeline_view(viz_app *a, SDL_Rect r)
{
    viz_ui *ui = &a->ui;
    int gap = viz_ui_px(ui, 6), bh = viz_ui_px(ui, 30), bw = viz_ui_px(ui, 36);
    int y = r.y + viz_ui_px(ui, 4), x = r.x;
    viz_ui_fill(ui, (SDL_Rect){r.x, r.y, r.w, 1}, ui->th.border);

    if (viz_icon_button(a, "first", (SDL_Rect){x, y, bw, bh}, VIZ_ICON_FIRST,
                        "Jump to step 0, the uniform prior (Home)")) {
        a->playing = 0;
        viz_act_seek(a, 0);
    }
    x += bw + gap;
    if (viz_icon_button(a, "back", (SDL_Rect){x, y, bw, bh}, VIZ_ICON_BACK,
                        "One step back (Left arrow)"))
        viz_act_step(a, -1);
    x += bw + gap;
    if (viz_icon_button(a, "play", (SDL_Rect){x, y, bw, bh},
                        a->playing ? VIZ_ICON_PAUSE : VIZ_ICON_PLAY, "Play / pause (Space)"))
        viz_act_play(a, -1);
    x += bw + gap;
    if (viz_icon_button(a, "fwd", (SDL_Rect){x, y, bw, bh}, VIZ_ICON_FWD,
                        "One step forward (Right arrow)"))
        viz_act_step(a, 1);
    x += bw + gap;
    if (viz_icon_button(a, "last", (SDL_Rect){x, y, bw, bh}, VIZ_ICON_LAST,
                        "Jump to the newest step, the final output once done (End)")) {
        a->playing = 0;
        viz_act_seek(a, viz_positions(a) - 1);
    }
    x += bw + gap * 2;

    /* speed control at the right end */
    int sw = viz_ui_px(ui, 28), lw = viz_ui_px(ui, 52);
    int sx = r.x + r.w - (2 * sw + lw);
    if (viz_ui_button(ui, "speed-", (SDL_Rect){sx, y, sw, bh}, "−",
                      "Slower playback ([); 1× plays a whole run in 5 s", 0))
        viz_act_speed(a, -1);
    char sp[16];
    if (a->speed < 1)
        viz_fmt(sp, sizeof sp, "%g×", a->speed);
    else
        viz_fmt(sp, sizeof sp, "%d×", (int)a->speed);
    viz_ui_region(ui, "speed", (SDL_Rect){sx + sw, y, lw, bh}, "Playback speed, 0.25× to 8×");
    viz_ui_text_center(ui, VIZ_FONT_NORMAL, (SDL_Rect){sx + sw, y, lw, bh}, ui->th.text, sp);
    if (viz_ui_button(ui, "speed+", (SDL_Rect){sx + sw + lw, y, sw, bh}, "+",
                      "Faster playback (])", 0))
        viz_act_speed(a, 1);

    /* the track */
    int positions = viz_positions(a), ready = viz_positions_ready(a);
    double hi = positions > 1 ? positions - 1 : 1;
    SDL_Rect track = {x, y, sx - gap * 2 - x, bh};
    if (ui->drawing && positions > 1) {
        int rx = viz_ui_slider_x_of(track, ready - 1, 0, hi, 0);
        int x0 = viz_ui_slider_x_of(track, 0, 0, hi, 0);
        viz_ui_fill(ui, (SDL_Rect){x0, y + bh / 2 + viz_ui_px(ui, 5), rx - x0, viz_ui_px(ui, 3)},
                    (SDL_Color){110, 190, 120, 255});
    }
    double v = viz_pos(a);
    if (viz_ui_slider(ui, "timeline", track, &v, 0, hi, 0, NAN,
                      "Drag to any step of the run; the green line: steps sampled so far")) {
        a->playing = 0;
        viz_act_seek(a, (int)lround(v));
    }

    /* what the shown step is */
    int ty = y + bh + viz_ui_px(ui, 6), pos = viz_pos(a);
    const viz_run *run = a->run;
    char line[256] = "no samples yet";
    if (run && viz_run_get_state(run) == VIZ_RUN_ERROR)
        viz_fmt(line, sizeof line, "no samples: the model did not load");
    if (run && viz_run_get_state(run) != VIZ_RUN_ERROR) {
        int n = run->sp.n, step = viz_pos_step(a, pos);
        double b1 = run->sp.beta1;
        if (pos == 0)
            viz_fmt(line, sizeof line, "step 0 of %d · the prior: θ = 1/K everywhere", n);
        else if (step > n)
            viz_fmt(line, sizeof line, "final output at t = 1 (%s) · after %d steps",
                    run->sp.argmax ? "argmax" : "sampled", n);
        else
            viz_fmt(line, sizeof line,
                    "step %d of %d · network at t = %.3f · α_%d = %.4g · β(t) after = %.4g", step,
                    n, (step - 1) / (double)n, step, bfn_alpha_step(b1, step, n),
                    bfn_beta_t(b1, step / (double)n));
    }
    viz_ui_text(ui, VIZ_FONT_SMALL, r.x, ty, ui->th.text, line);
    if (run && run->stride > 1)
        viz_ui_textf(ui, VIZ_FONT_SMALL, sx - viz_ui_px(ui, 260), ty, ui->th.dim,
                     "every %d-th step kept (memory cap)", run->stride);
}
