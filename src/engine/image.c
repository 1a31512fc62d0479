/* PNG output through libpng, image grids, and the viridis colormap. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "bfn/image.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PATH_CAP 4096

/* ----------------------------------------------------------------- PNG ---- */

/* libpng reports errors through a callback that must not return: keep the
 * message, then jump back to the setjmp in png_encode. Its warnings often
 * carry the detail of a following error, so the last one is kept too. */
typedef struct {
    char msg[256];
    char warning[256];
} png_ctx;

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->msg, sizeof ctx->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    png_ctx *ctx = png_get_error_ptr(png);
    snprintf(ctx->warning, sizeof ctx->warning, "%s", msg);
}

static void png_rows(png_structp png, const uint8_t *pix, int h, size_t stride)
{
    for (int y = 0; y < h; y++)
        png_write_row(png, pix + (size_t)y * stride);
}

/* Kept free of locals modified after setjmp, so a longjmp clobbers nothing. */
static int png_encode(png_structp png, png_infop info, FILE *f, const uint8_t *pix, int h, int w,
                      int color_type, int channels)
{
    if (setjmp(png_jmpbuf(png)))
        return 1;
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_rows(png, pix, h, (size_t)w * (size_t)channels);
    png_write_end(png, NULL);
    return 0;
}

static bfn_status png_write(const char *path, const uint8_t *pix, int h, int w, int color_type,
                            int channels, bfn_err *err)
{
    if (!path || !*path)
        return bfn_err_set(err, BFN_ERR_ARG, "png: empty path");
    if (!pix || h <= 0 || w <= 0)
        return bfn_err_set(err, BFN_ERR_ARG, "%s: bad image (%d×%d, pixels %s)", path, h, w,
                           pix ? "given" : "NULL");
    char tmp[PATH_CAP];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    if (n < 0 || n >= (int)sizeof tmp)
        return bfn_err_set(err, BFN_ERR_ARG, "%s: path too long", path);

    FILE *f = fopen(tmp, "wb");
    if (!f)
        return bfn_err_set(err, BFN_ERR_IO, "%s: cannot create %s: %s", path, tmp,
                           strerror(errno));
    png_ctx ctx = {{0}, {0}};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, on_png_error,
                                              on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    bfn_status s = BFN_OK;
    if (!png || !info)
        s = bfn_err_set(err, BFN_ERR_NOMEM, "%s: cannot set up the PNG encoder", path);
    else if (png_encode(png, info, f, pix, h, w, color_type, channels))
        s = bfn_err_set(err, BFN_ERR_IO, "%s: PNG encoder: %s%s%s%s", path, ctx.msg,
                        ctx.warning[0] ? " (" : "", ctx.warning, ctx.warning[0] ? ")" : "");
    if (png)
        png_destroy_write_struct(&png, info ? &info : NULL);
    /* a full disk often shows up only when buffers are flushed */
    if (fflush(f) != 0 && !s)
        s = bfn_err_set(err, BFN_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (fclose(f) != 0 && !s)
        s = bfn_err_set(err, BFN_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (!s && rename(tmp, path) != 0)
        s = bfn_err_set(err, BFN_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp,
                        strerror(errno));
    if (s)
        remove(tmp);
    return s;
}

bfn_status bfn_png_write_gray(const char *path, const uint8_t *pix, int h, int w, bfn_err *err)
{
    return png_write(path, pix, h, w, PNG_COLOR_TYPE_GRAY, 1, err);
}

bfn_status bfn_png_write_rgb(const char *path, const uint8_t *rgb, int h, int w, bfn_err *err)
{
    return png_write(path, rgb, h, w, PNG_COLOR_TYPE_RGB, 3, err);
}

/* ---------------------------------------------------------------- grids ---- */

bfn_status bfn_grid_size(const bfn_grid *g, int *out_h, int *out_w, size_t *bytes, bfn_err *err)
{
    if (!g)
        return bfn_err_set(err, BFN_ERR_ARG, "grid: NULL geometry");
    if (g->h <= 0 || g->w <= 0 || g->rows <= 0 || g->cols <= 0 || g->pad < 0 || g->scale < 1 ||
        (g->channels != 1 && g->channels != 3) || g->n < 0 ||
        (int64_t)g->n > (int64_t)g->rows * g->cols)
        return bfn_err_set(err, BFN_ERR_ARG,
                           "grid: bad geometry (n %d, %d×%d×%d images, %d×%d cells, pad %d, "
                           "scale %d)",
                           g->n, g->h, g->w, g->channels, g->rows, g->cols, g->pad, g->scale);
    /* every factor is below 2^31, so these products fit in 64 bits */
    int64_t H = (int64_t)g->rows * g->h * g->scale + ((int64_t)g->rows + 1) * g->pad;
    int64_t W = (int64_t)g->cols * g->w * g->scale + ((int64_t)g->cols + 1) * g->pad;
    const int64_t limit = (int64_t)1 << 31;
    if (H >= limit || W >= limit || H * W > limit / g->channels)
        return bfn_err_set(err, BFN_ERR_ARG, "grid: canvas %lld×%lld is too large", (long long)H,
                           (long long)W);
    if (out_h)
        *out_h = (int)H;
    if (out_w)
        *out_w = (int)W;
    if (bytes)
        *bytes = (size_t)(H * W * g->channels);
    return BFN_OK;
}

/* Shared tiling: to_u8(imgs, j) converts element j of the image array. */
typedef uint8_t (*grid_pixel_fn)(const void *imgs, size_t j, int vmax);

static uint8_t pixel_f32(const void *imgs, size_t j, int vmax)
{
    (void)vmax;
    float v = ((const float *)imgs)[j];
    if (!(v > 0.0f))
        return 0; /* also NaN */
    if (v >= 1.0f)
        return 255;
    return (uint8_t)lrintf(v * 255.0f);
}

static uint8_t pixel_u8(const void *imgs, size_t j, int vmax)
{
    int v = ((const uint8_t *)imgs)[j];
    if (v >= vmax)
        return 255;
    return (uint8_t)((v * 255 + vmax / 2) / vmax);
}

static bfn_status grid_tile(const bfn_grid *g, const void *imgs, grid_pixel_fn px, int vmax,
                            uint8_t *canvas, size_t cap, bfn_err *err)
{
    int H, W;
    size_t bytes;
    bfn_status s = bfn_grid_size(g, &H, &W, &bytes, err);
    if (s)
        return s;
    if (!canvas || (!imgs && g->n > 0))
        return bfn_err_set(err, BFN_ERR_ARG, "grid: NULL buffer");
    if (cap < bytes)
        return bfn_err_set(err, BFN_ERR_ARG, "grid: canvas has %zu bytes, needs %zu", cap, bytes);
    memset(canvas, g->pad_value, bytes);
    const int C = g->channels, S = g->scale;
    const size_t img_elems = (size_t)g->h * g->w * C;
    for (int k = 0; k < g->n; k++) {
        int oy = g->pad + (k / g->cols) * (g->h * S + g->pad);
        int ox = g->pad + (k % g->cols) * (g->w * S + g->pad);
        for (int y = 0; y < g->h * S; y++) {
            uint8_t *row = canvas + ((size_t)(oy + y) * W + ox) * C;
            size_t src_row = (size_t)k * img_elems + (size_t)(y / S) * g->w * C;
            for (int x = 0; x < g->w * S; x++)
                for (int c = 0; c < C; c++)
                    row[(size_t)x * C + c] = px(imgs, src_row + (size_t)(x / S) * C + c, vmax);
        }
    }
    return BFN_OK;
}

bfn_status bfn_grid_tile_f32(const bfn_grid *g, const float *imgs, uint8_t *canvas, size_t cap,
                             bfn_err *err)
{
    return grid_tile(g, imgs, pixel_f32, 1, canvas, cap, err);
}

bfn_status bfn_grid_tile_u8(const bfn_grid *g, const uint8_t *imgs, int vmax, uint8_t *canvas,
                            size_t cap, bfn_err *err)
{
    if (vmax < 1 || vmax > 255)
        return bfn_err_set(err, BFN_ERR_ARG, "grid: vmax %d outside 1..255", vmax);
    return grid_tile(g, imgs, pixel_u8, vmax, canvas, cap, err);
}

/* ------------------------------------------------------------- colormap ---- */

/* Viridis sampled at k/32, k = 0..32, from matplotlib's 256-entry table. */
static const float viridis[33][3] = {
    {0.267004f, 0.004874f, 0.329415f},
    {0.276987f, 0.050151f, 0.375542f},
    {0.282302f, 0.094624f, 0.417024f},
    {0.282902f, 0.135449f, 0.453035f},
    {0.278919f, 0.174879f, 0.482972f},
    {0.270788f, 0.213324f, 0.506643f},
    {0.259266f, 0.250672f, 0.524378f},
    {0.245374f, 0.286704f, 0.536971f},
    {0.230223f, 0.321297f, 0.545488f},
    {0.214836f, 0.354470f, 0.551027f},
    {0.199995f, 0.386377f, 0.554533f},
    {0.186132f, 0.417256f, 0.556682f},
    {0.173302f, 0.447386f, 0.557850f},
    {0.161265f, 0.477036f, 0.558125f},
    {0.149668f, 0.506440f, 0.557329f},
    {0.138415f, 0.535767f, 0.555090f},
    {0.128148f, 0.565107f, 0.550893f},
    {0.120875f, 0.594465f, 0.544158f},
    {0.120325f, 0.623765f, 0.534308f},
    {0.130961f, 0.652859f, 0.520817f},
    {0.155378f, 0.681539f, 0.503240f},
    {0.192974f, 0.709556f, 0.481231f},
    {0.241467f, 0.736626f, 0.454543f},
    {0.298636f, 0.762445f, 0.423019f},
    {0.362859f, 0.786695f, 0.386589f},
    {0.432985f, 0.809056f, 0.345271f},
    {0.508094f, 0.829231f, 0.299221f},
    {0.587266f, 0.846982f, 0.248871f},
    {0.669358f, 0.862217f, 0.195444f},
    {0.752867f, 0.875089f, 0.142650f},
    {0.835913f, 0.886110f, 0.102462f},
    {0.916550f, 0.896130f, 0.100822f},
    {0.993248f, 0.906157f, 0.143936f},
};

void bfn_colormap(float v, uint8_t rgb[3])
{
    if (!(v > 0.0f))
        v = 0.0f; /* also NaN */
    if (v > 1.0f)
        v = 1.0f;
    float t = v * 32.0f;
    int k = (int)t;
    if (k > 31)
        k = 31;
    float f = t - (float)k;
    for (int c = 0; c < 3; c++) {
        float x = viridis[k][c] + f * (viridis[k + 1][c] - viridis[k][c]);
        rgb[c] = (uint8_t)lrintf(x * 255.0f);
    }
}

void bfn_colormap_apply(uint8_t *rgb, const float *v, size_t n, float lo, float hi)
{
    float span = hi > lo ? hi - lo : 1.0f;
    for (size_t j = 0; j < n; j++)
        bfn_colormap((v[j] - lo) / span, rgb + 3 * j);
}
