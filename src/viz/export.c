/* Exports: the window as a PNG (read back from the renderer), an evolution
 * strip (cells × times of the run) and a numbered PNG per position of a
 * run. The heatmaps use the same colours as the screen. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app_internal.h"
#include "bfn/image.h"

#define STRIP_TIMES 11
#define STRIP_ROWS_MAX 8
#define FRAMES_BUDGET_S 0.02 /* time per update spent writing a frame sequence */

int viz_export_path(viz_app *a, const char *stem, const char *ext, char *path, size_t cap)
{
    if (viz_mkdir(a->out_dir) != 0) {
        viz_act_notice(a, 1, "cannot create %s", a->out_dir);
        return -1;
    }
    struct stat sb;
    for (int i = 1; i < 10000; i++) {
        viz_fmt(path, cap, "%s/%s-%04d%s", a->out_dir, stem, i, ext);
        if (stat(path, &sb) != 0)
            return 0;
    }
    viz_act_notice(a, 1, "%s is full of %s files", a->out_dir, stem);
    return -1;
}

static int have_run(viz_app *a)
{
    if (a->run && viz_run_get_state(a->run) != VIZ_RUN_ERROR && viz_run_ready(a->run) > 0)
        return 1;
    viz_act_notice(a, 1, "nothing to export yet");
    return 0;
}

/* One image of a tiled export: a cell of the run at a position (cell < 0:
 * left empty). */
typedef struct {
    int cell, pos;
} tile;

/* Tiles rows × cols images of (H, W), each scaled by s, with pad pixels
 * between and around them, into a new RGB canvas (out_h, out_w, 3). */

static uint8_t *tile_rgb(viz_app *a, const viz_run *r, viz_view v, int rows, int cols,
                         const tile *tiles, int s, int pad, int *out_w, int *out_h)
{
    const int H = r->model.H, W = r->model.W;
    int cw = cols * (W * s + pad) + pad, ch = rows * (H * s + pad) + pad;
    uint8_t *canvas = malloc((size_t)cw * ch * 3), *cell = malloc((size_t)H * W * 3);
    if (!canvas || !cell) {
        free(canvas);
        free(cell);
        return NULL;
    }
    memset(canvas, 40, (size_t)cw * ch * 3);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            const tile *t = &tiles[i * cols + j];
            if (t->cell < 0)
                continue;
            viz_cell_colors(a, r, t->pos, v, t->cell, cell, W * 3, 3);
            int x0 = pad + j * (W * s + pad), y0 = pad + i * (H * s + pad);
            for (int y = 0; y < H * s; y++)
                for (int x = 0; x < W * s; x++)
                    memcpy(canvas + ((size_t)(y0 + y) * cw + x0 + x) * 3,
                           cell + ((size_t)(y / s) * W + x / s) * 3, 3);
        }
    free(cell);
    *out_w = cw;
    *out_h = ch;
    return canvas;
}

void viz_export_view(viz_app *a)
{
    if (viz_export_path(a, "view", ".png", a->view_png_path, sizeof a->view_png_path) != 0)
        return;
    a->want_view_png = 1;
    a->dirty = 1;
}

void viz_export_strip(viz_app *a)
{
    if (!have_run(a))
        return;
    const viz_run *r = a->run;
    int rows = r->cells < STRIP_ROWS_MAX ? r->cells : STRIP_ROWS_MAX;
    int last = viz_positions_ready(a) - 1;
    tile tiles[STRIP_ROWS_MAX * STRIP_TIMES];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < STRIP_TIMES; j++)
            tiles[i * STRIP_TIMES + j] =
                (tile){i, (int)((double)j * last / (STRIP_TIMES - 1) + 0.5)};
    int w, h;
    uint8_t *rgb = tile_rgb(a, r, a->view, rows, STRIP_TIMES, tiles, 3, 4, &w, &h);
    char path[VIZ_PATH_MAX];
    bfn_err err = {0};
    if (!rgb) {
        viz_act_notice(a, 1, "out of memory for the strip");
    } else if (viz_export_path(a, "strip", ".png", path, sizeof path) == 0) {
        if (bfn_png_write_rgb(path, rgb, h, w, &err) == BFN_OK)
            viz_act_notice(a, 0, "wrote %s (%s, %d cells × %d times)", path,
                           viz_view_name(a->view), rows, STRIP_TIMES);
        else
            viz_act_notice(a, 1, "%s", err.msg);
    }
    free(rgb);
}

void viz_export_frames(viz_app *a)
{
    if (a->frames_run || !have_run(a))
        return;
    char dir[VIZ_PATH_MAX];
    if (viz_export_path(a, "frames", "", dir, sizeof dir) != 0)
        return;
    if (viz_mkdir(dir) != 0) {
        viz_act_notice(a, 1, "cannot create %s", dir);
        return;
    }
    viz_strcpy(a->frames_dir, sizeof a->frames_dir, dir);
    a->frames_run = viz_run_ref(a->run);
    a->frames_next = 0;
    a->frames_view = (int)a->view;
    viz_act_notice(a, 0, "writing frames to %s …", dir);
}

void viz_export_step(viz_app *a)
{
    viz_run *r = a->frames_run;
    double end = viz_now() + FRAMES_BUDGET_S;
    const int g = r->sp.grid;
    tile tiles[VIZ_GRID_MAX * VIZ_GRID_MAX];
    while (viz_now() < end) {
        int ready = viz_run_ready(r) + 1, st = viz_run_get_state(r);
        if (a->frames_next >= ready) {
            if (st == VIZ_RUN_SAMPLING)
                return; /* wait for the worker */
            viz_act_notice(a, 0, "wrote %d frames to %s", a->frames_next, a->frames_dir);
            viz_run_unref(r);
            a->frames_run = NULL;
            return;
        }
        for (int c = 0; c < g * g; c++)
            tiles[c] = (tile){c < r->cells ? c : -1, a->frames_next};
        int w, h;
        uint8_t *rgb = tile_rgb(a, r, (viz_view)a->frames_view, g, g, tiles, 2, 2, &w, &h);
        char path[VIZ_PATH_MAX + 32];
        viz_fmt(path, sizeof path, "%s/frame-%04d.png", a->frames_dir, a->frames_next);
        bfn_err err = {0};
        if (!rgb || bfn_png_write_rgb(path, rgb, h, w, &err) != BFN_OK) {
            viz_act_notice(a, 1, "frame export stopped: %s", rgb ? err.msg : "out of memory");
            free(rgb);
            viz_run_unref(r);
            a->frames_run = NULL;
            return;
        }
        free(rgb);
        a->frames_next++;
        viz_act_notice(a, 0, "writing frames: %d of %d", a->frames_next, r->n_slots + 1);
    }
}
