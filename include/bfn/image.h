/* Image output: PNG files (through libpng), image grids and a perceptually
 * uniform colormap for heatmaps. Pixels are row-major; gray images are
 * (H, W) bytes, RGB images (H, W, 3) bytes. */
#ifndef BFN_IMAGE_H
#define BFN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "bfn/common.h"

/* ---- PNG ----
 * 8-bit PNGs written atomically: the data goes to "<path>.tmp-<pid>", which is
 * renamed over path only once complete. On any error the temporary file is
 * removed and a file already at path is left untouched. */
bfn_status bfn_png_write_gray(const char *path, const uint8_t *pix, int h, int w, bfn_err *err);
bfn_status bfn_png_write_rgb(const char *path, const uint8_t *rgb, int h, int w, bfn_err *err);

/* ---- grids ----
 * n images of (h, w, channels) tiled row by row into a rows × cols grid. Each
 * image is scaled up by the integer factor scale (nearest neighbour); pad
 * pixels of pad_value (in every channel) separate the cells and frame the
 * grid, so the canvas is (rows·h·scale + (rows+1)·pad, cols·w·scale +
 * (cols+1)·pad, channels). Cells past n are filled with pad_value. */
typedef struct {
    int n;             /* images, 0..rows·cols */
    int h, w;          /* size of one image */
    int channels;      /* 1 (gray) or 3 (RGB) */
    int rows, cols;
    int pad;           /* pixels, >= 0, not scaled */
    int scale;         /* >= 1 */
    uint8_t pad_value;
} bfn_grid;

/* Canvas height, width and bytes for g (any output pointer may be NULL).
 * BFN_ERR_ARG for a bad geometry or a canvas beyond 2^31 bytes. */
bfn_status bfn_grid_size(const bfn_grid *g, int *out_h, int *out_w, size_t *bytes, bfn_err *err);
/* imgs: (n, h, w, channels) floats, 0 → 0 and 1 → 255, clamped, NaN → 0. */
bfn_status bfn_grid_tile_f32(const bfn_grid *g, const float *imgs, uint8_t *canvas, size_t cap,
                             bfn_err *err);
/* imgs: (n, h, w, channels) bytes where vmax maps to 255 (255 for intensities,
 * 1 for binarized images); values above vmax are clamped. cap: canvas bytes. */
bfn_status bfn_grid_tile_u8(const bfn_grid *g, const uint8_t *imgs, int vmax, uint8_t *canvas,
                            size_t cap, bfn_err *err);

/* ---- colormap ----
 * Viridis (van der Walt and Smith, 2015; public domain), 33 anchors linearly
 * interpolated, within 2/255 of the 256-entry original: dark blue-violet at 0,
 * green at 0.5, yellow at 1, lightness increasing throughout. v is clamped to
 * [0, 1]; NaN maps to 0. */
void bfn_colormap(float v, uint8_t rgb[3]);
/* rgb: (n, 3) from v: (n) mapped linearly so lo → 0 and hi → 1 (hi > lo). */
void bfn_colormap_apply(uint8_t *rgb, const float *v, size_t n, float lo, float hi);

#endif
