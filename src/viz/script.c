#include "script.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "viz.h"

void viz_script_frames(viz_app *a, int n)
{
    for (int i = 0; i < n && !viz_app_quit_requested(a); i++) {
        viz_app_run_frames(a, 1);
        SDL_Delay(16);
    }
}

/* Centre of widget id, or (fx across, middle) of it. */
static int widget_point(viz_app *a, const char *id, double fx, int *x, int *y)
{
    SDL_Rect r;
    if (!viz_app_widget_rect(a, id, &r))
        return 0;
    *x = r.x + (int)(fx * (r.w - 1) + 0.5);
    *y = r.y + r.h / 2;
    return 1;
}

static int run_line(viz_app *a, char *line, char *err, size_t cap)
{
    char cmd[32] = "", s1[VIZ_PATH_MAX] = "", s2[64] = "", s3[64] = "", s4[64] = "";
    int n = sscanf(line, "%31s %1023s %63s %63s %63s", cmd, s1, s2, s3, s4);
    if (n <= 0 || cmd[0] == '#')
        return 0;
    if (!strcmp(cmd, "frames") && n >= 2) {
        viz_script_frames(a, atoi(s1));
    } else if (!strcmp(cmd, "sleep") && n >= 2) {
        double end = viz_now() + atof(s1);
        while (viz_now() < end && !viz_app_quit_requested(a))
            viz_script_frames(a, 1);
    } else if (!strcmp(cmd, "wait-run")) {
        if (!viz_app_wait_run(a, n >= 2 ? atof(s1) : 120) && !viz_app_quit_requested(a)) {
            viz_fmt(err, cap, "the run did not finish in time");
            return -1;
        }
    } else if (!strcmp(cmd, "wait-step") && n >= 2) {
        double end = viz_now() + (n >= 3 ? atof(s2) : 600);
        viz_app_state st;
        while (!viz_app_quit_requested(a)) {
            viz_script_frames(a, 1);
            viz_app_get_state(a, &st);
            if (st.run_ready >= atoi(s1) && st.position >= atoi(s1))
                break;
            if (viz_now() > end) {
                viz_fmt(err, cap, "the run did not reach step %s in time", s1);
                return -1;
            }
        }
    } else if (!strcmp(cmd, "wait-train") && n >= 2) {
        double end = viz_now() + (n >= 3 ? atof(s2) : 600);
        viz_app_state st;
        while (!viz_app_quit_requested(a)) {
            viz_script_frames(a, 1);
            viz_app_get_state(a, &st);
            if (st.train_step >= atoll(s1))
                break;
            if (viz_now() > end || st.train_state == VIZ_TRAIN_ERROR) {
                viz_fmt(err, cap, "training did not reach step %s (state %s)", s1,
                        viz_train_state_name(st.train_state));
                return -1;
            }
        }
    } else if (!strcmp(cmd, "key") && n >= 2) {
        SDL_Keycode k = SDL_GetKeyFromName(s1);
        if (k == SDLK_UNKNOWN) {
            viz_fmt(err, cap, "unknown key name '%s'", s1);
            return -1;
        }
        Uint16 mod = !strcmp(s2, "shift") ? KMOD_LSHIFT : !strcmp(s2, "ctrl") ? KMOD_LCTRL : 0;
        int times = s2[0] == '*' ? atoi(s2 + 1) : s3[0] == '*' ? atoi(s3 + 1) : 1;
        for (int i = 0; i < times; i++) {
            viz_app_key(a, k, mod);
            viz_app_run_frames(a, 1);
        }
    } else if (!strcmp(cmd, "type") && n >= 2) {
        const char *t = line + strspn(line, " \t") + 4;
        t += strspn(t, " \t");
        char text[32];
        viz_strcpy(text, sizeof text, t);
        text[strcspn(text, "\r\n")] = '\0';
        viz_app_type(a, text);
        viz_app_run_frames(a, 1);
    } else if (!strcmp(cmd, "move") || !strcmp(cmd, "click") || !strcmp(cmd, "drag") ||
               !strcmp(cmd, "pixel")) {
        int x, y, x1 = 0, y1 = 0, path = 0;
        if (!strcmp(cmd, "drag") && n >= 5 && isdigit((unsigned char)s1[0])) {
            /* a stroke from point to point, through 16 moves (drawing) */
            x = atoi(s1);
            y = atoi(s2);
            x1 = atoi(s3);
            y1 = atoi(s4);
            path = 1;
        } else if (!strcmp(cmd, "pixel")) {
            if (n < 4 || !viz_app_pixel_pos(a, atoi(s1), atoi(s2), atoi(s3), &x, &y)) {
                viz_fmt(err, cap, "no such pixel");
                return -1;
            }
        } else if (n >= 3 && isdigit((unsigned char)s1[0])) { /* widget ids start with letters */
            x = atoi(s1);
            y = atoi(s2);
        } else {
            double fx = n >= 3 ? atof(s2) : 0.5;
            if (!widget_point(a, s1, fx, &x, &y)) {
                viz_fmt(err, cap, "no widget '%s' on screen", s1);
                return -1;
            }
            if (!strcmp(cmd, "drag")) {
                widget_point(a, s1, n >= 4 ? atof(s3) : 1.0, &x1, &y1);
            }
        }
        viz_app_mouse_move(a, x, y);
        viz_app_run_frames(a, 1);
        if (strcmp(cmd, "move") && strcmp(cmd, "pixel")) {
            viz_app_mouse_button(a, x, y, 1);
            viz_app_run_frames(a, 1);
            if (path) {
                for (int k = 1; k <= 16; k++) {
                    viz_app_mouse_move(a, x + (x1 - x) * k / 16, y + (y1 - y) * k / 16);
                    viz_app_run_frames(a, 1);
                }
                x = x1;
                y = y1;
            } else if (!strcmp(cmd, "drag")) {
                viz_app_mouse_move(a, x1, y);
                viz_app_run_frames(a, 1);
                x = x1;
            }
            viz_app_mouse_button(a, x, y, 0);
            viz_app_run_frames(a, 1);
        }
    } else if (!strcmp(cmd, "guidance") && n >= 2) {
        char *end;
        double w = strtod(s1, &end);
        if (*end || !(w >= 1 && w <= VIZ_GUIDANCE_MAX)) {
            viz_fmt(err, cap, "guidance '%s': want a weight from 1 (off) to %g", s1,
                    VIZ_GUIDANCE_MAX);
            return -1;
        }
        viz_app_set_guidance(a, w);
        viz_app_run_frames(a, 1);
    } else if (!strcmp(cmd, "quit")) {
        SDL_Event e;
        memset(&e, 0, sizeof e);
        e.type = SDL_QUIT;
        viz_app_push_event(a, &e);
        viz_app_run_frames(a, 1);
        return 1;
    } else if (!strcmp(cmd, "screenshot") && n >= 2) {
        viz_app_run_frames(a, 1);
        if (viz_app_screenshot(a, s1, err, cap) != 0)
            return -1;
    } else {
        viz_fmt(err, cap, "unknown command '%s'", cmd);
        return -1;
    }
    return 0;
}

int viz_script_run(viz_app *a, const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        viz_fmt(err, cap, "cannot open script %s", path);
        return -1;
    }
    char line[2048], msg[600];
    int no = 0, rc = 0, r;
    while (fgets(line, sizeof line, f)) {
        no++;
        if ((r = run_line(a, line, msg, sizeof msg)) < 0) {
            viz_fmt(err, cap, "%s:%d: %s", path, no, msg);
            rc = -1;
            break;
        }
        if (r > 0) /* the script's own quit */
            break;
        if (viz_app_quit_requested(a)) {
            /* the window closed or a signal came: stop here, and say so */
            viz_fmt(err, cap, "%s:%d: interrupted (quit requested)", path, no);
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}
