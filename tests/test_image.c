/* Tests for image.h: PNGs read back with libpng match what was written;
 * failed writes leave no temporary file and an existing file untouched; grid
 * geometry and contents; the colormap's anchors and monotone lightness. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bfn/image.h"
#include "check.h"

static char tmpdir[256];

/* Reads path into a malloc'd buffer of the given format; NULL on failure. */
static uint8_t *read_png(const char *path, png_uint_32 format, int *h, int *w)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path))
        return NULL;
    img.format = format;
    uint8_t *buf = malloc(PNG_IMAGE_SIZE(img));
    if (!buf || !png_image_finish_read(&img, NULL, buf, 0, NULL)) {
        png_image_free(&img);
        free(buf);
        return NULL;
    }
    *h = (int)img.height;
    *w = (int)img.width;
    return buf;
}

/* Files in tmpdir whose name contains part. */
static int count_files(const char *part)
{
    DIR *d = opendir(tmpdir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, part) != NULL;
    if (d)
        closedir(d);
    return n;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void test_png_gray_and_rgb_read_back_identical(void)
{
    enum { H = 37, W = 53 };
    static uint8_t g[H * W], rgb[H * W * 3];
    for (int j = 0; j < H * W; j++) {
        g[j] = (uint8_t)(j * 7 + j / W);
        rgb[3 * j] = (uint8_t)j;
        rgb[3 * j + 1] = (uint8_t)(255 - j);
        rgb[3 * j + 2] = (uint8_t)(j * 13);
    }
    char path[512];
    bfn_err err = {0};
    snprintf(path, sizeof path, "%s/gray.png", tmpdir);
    CHECK(bfn_png_write_gray(path, g, H, W, &err) == BFN_OK, "write gray: %.200s", err.msg);
    int h = 0, w = 0;
    uint8_t *back = read_png(path, PNG_FORMAT_GRAY, &h, &w);
    CHECK(back != NULL, "read gray back");
    CHECK(h == H && w == W, "gray size %d×%d, wrote %d×%d", h, w, H, W);
    if (back && h == H && w == W)
        CHECK(memcmp(back, g, sizeof g) == 0, "gray pixels read back identical");
    free(back);

    snprintf(path, sizeof path, "%s/rgb.png", tmpdir);
    CHECK(bfn_png_write_rgb(path, rgb, H, W, &err) == BFN_OK, "write rgb: %.200s", err.msg);
    back = read_png(path, PNG_FORMAT_RGB, &h, &w);
    CHECK(back != NULL, "read rgb back");
    CHECK(h == H && w == W, "rgb size %d×%d, wrote %d×%d", h, w, H, W);
    if (back && h == H && w == W)
        CHECK(memcmp(back, rgb, sizeof rgb) == 0, "rgb pixels read back identical");
    free(back);

    /* overwriting an existing file works (rename over it) */
    g[0] ^= 0xFF;
    CHECK(bfn_png_write_gray(path, g, H, W, &err) == BFN_OK, "overwrite: %.200s", err.msg);
    back = read_png(path, PNG_FORMAT_GRAY, &h, &w);
    CHECK(back && h == H && w == W && back[0] == g[0], "overwritten file has the new pixels");
    free(back);
    CHECK_NEAR(0, count_files(".tmp-"), 0, "temporary files left after successful writes");
}

static void test_png_write_into_missing_directory_fails_cleanly(void)
{
    uint8_t px[4] = {0, 1, 2, 3};
    char path[512];
    bfn_err err = {0};
    bfn_err_clear(&err);
    snprintf(path, sizeof path, "%s/no/such/dir/x.png", tmpdir);
    bfn_status s = bfn_png_write_gray(path, px, 2, 2, &err);
    CHECK_NEAR(BFN_ERR_IO, s, 0, "status for a missing directory");
    CHECK(strstr(err.msg, path) != NULL, "message names the path: '%.200s'", err.msg);
    CHECK_NEAR(0, count_files(".tmp-"), 0, "temporary files left");
    CHECK(access(path, F_OK) != 0, "no file created");
}

static void test_png_failed_write_leaves_existing_file_untouched(void)
{
    char path[512], tmp[600];
    bfn_err err = {0};
    snprintf(path, sizeof path, "%s/keep.png", tmpdir);
    uint8_t px[6] = {10, 20, 30, 40, 50, 60};
    CHECK(bfn_png_write_gray(path, px, 2, 3, &err) == BFN_OK, "first write: %.200s", err.msg);
    long size0 = file_size(path);

    /* 1) the encoder fails midway: libpng refuses widths above 1,000,000 by
     *    default, after the temporary file was created */
    static uint8_t wide[1000001];
    bfn_status s = bfn_png_write_gray(path, wide, 1, 1000001, &err);
    CHECK(s != BFN_OK, "too wide a PNG fails (%.200s)", err.msg);
    CHECK(strstr(err.msg, path) != NULL, "message names the path: '%.200s'", err.msg);
    CHECK_NEAR(0, count_files(".tmp-"), 0, "temporary files left after an encoder error");

    /* 2) the temporary file cannot be created (a directory is in the way) */
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    mkdir(tmp, 0700);
    s = bfn_png_write_gray(path, px, 3, 2, &err);
    CHECK_NEAR(BFN_ERR_IO, s, 0, "status when the temporary file cannot be created");
    rmdir(tmp);

    /* 3) bad arguments */
    CHECK_NEAR(BFN_ERR_ARG, bfn_png_write_gray(path, NULL, 2, 3, &err), 0, "NULL pixels");
    CHECK_NEAR(BFN_ERR_ARG, bfn_png_write_rgb(path, px, 0, 3, &err), 0, "height 0");

    CHECK_NEAR(size0, file_size(path), 0, "existing file size unchanged");
    int h = 0, w = 0;
    uint8_t *back = read_png(path, PNG_FORMAT_GRAY, &h, &w);
    CHECK(back && h == 2 && w == 3 && memcmp(back, px, 6) == 0,
          "existing file still holds the first image");
    free(back);
}

static void test_grid_geometry_and_cell_contents(void)
{
    /* 5 images of 3×2 in a 2×3 grid, pad 1, scale 2 */
    bfn_grid g = {.n = 5, .h = 3, .w = 2, .channels = 1, .rows = 2, .cols = 3, .pad = 1,
                  .scale = 2, .pad_value = 200};
    int H = 0, W = 0;
    size_t bytes = 0;
    bfn_err err = {0};
    CHECK(bfn_grid_size(&g, &H, &W, &bytes, &err) == BFN_OK, "size: %.200s", err.msg);
    CHECK_NEAR(2 * 3 * 2 + 3 * 1, H, 0, "canvas height");
    CHECK_NEAR(3 * 2 * 2 + 4 * 1, W, 0, "canvas width");
    CHECK_NEAR((double)H * W, (double)bytes, 0, "canvas bytes");

    float imgs[5 * 6];
    for (int k = 0; k < 5; k++)
        for (int p = 0; p < 6; p++)
            imgs[k * 6 + p] = (float)(k * 6 + p) / 29.0f;
    uint8_t canvas[15 * 16];
    CHECK(bfn_grid_tile_f32(&g, imgs, canvas, sizeof canvas, &err) == BFN_OK, "tile: %.200s",
          err.msg);
    int wrong = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int want = 200;
            int cy = (y - 1) / 7, ry = (y - 1) % 7, cx = (x - 1) / 5, rx = (x - 1) % 5;
            if (y >= 1 && x >= 1 && ry < 6 && rx < 4 && cy < 2 && cx < 3) {
                int k = cy * 3 + cx;
                if (k < 5)
                    want = (int)lrintf(imgs[k * 6 + (ry / 2) * 2 + rx / 2] * 255.0f);
            }
            wrong += canvas[y * W + x] != want;
        }
    CHECK_NEAR(0, wrong, 0, "canvas pixels differing from the expected tiling");

    /* uint8 with vmax = 1 (binarized images), RGB */
    bfn_grid g3 = {.n = 2, .h = 1, .w = 2, .channels = 3, .rows = 1, .cols = 2, .pad = 0,
                   .scale = 1, .pad_value = 0};
    uint8_t bin[2 * 2 * 3] = {1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 0, 0};
    uint8_t c3[12];
    CHECK(bfn_grid_tile_u8(&g3, bin, 1, c3, sizeof c3, &err) == BFN_OK, "tile u8: %.200s",
          err.msg);
    const uint8_t want3[12] = {255, 0, 255, 0, 255, 0, 255, 255, 255, 0, 0, 0};
    CHECK(memcmp(c3, want3, 12) == 0, "u8 RGB tiling with vmax 1 maps 1 to 255");

    CHECK_NEAR(BFN_ERR_ARG, bfn_grid_tile_f32(&g, imgs, canvas, bytes - 1, &err), 0,
               "canvas one byte too small");
    bfn_grid bad = g;
    bad.n = 7;
    CHECK_NEAR(BFN_ERR_ARG, bfn_grid_size(&bad, NULL, NULL, NULL, &err), 0, "more images than cells");
    bad = g;
    bad.rows = 100000;
    bad.cols = 100000;
    bad.scale = 100;
    CHECK_NEAR(BFN_ERR_ARG, bfn_grid_size(&bad, NULL, NULL, NULL, &err), 0, "huge canvas");

    /* clamping and NaN */
    bfn_grid g1 = {.n = 1, .h = 1, .w = 4, .channels = 1, .rows = 1, .cols = 1, .pad = 0,
                   .scale = 1, .pad_value = 0};
    float odd[4] = {-1.0f, 2.0f, NAN, 0.5f};
    uint8_t c1[4];
    bfn_grid_tile_f32(&g1, odd, c1, 4, &err);
    CHECK(c1[0] == 0 && c1[1] == 255 && c1[2] == 0 && c1[3] == 128,
          "clamped values %d %d %d %d, want 0 255 0 128", c1[0], c1[1], c1[2], c1[3]);
}

static void test_colormap_matches_viridis_ends_and_brightens_monotonically(void)
{
    uint8_t c[3];
    bfn_colormap(0.0f, c);
    CHECK(c[0] == 68 && c[1] == 1 && c[2] == 84, "viridis(0) = %d %d %d, want 68 1 84", c[0],
          c[1], c[2]);
    bfn_colormap(1.0f, c);
    CHECK(c[0] == 253 && c[1] == 231 && c[2] == 37, "viridis(1) = %d %d %d, want 253 231 37",
          c[0], c[1], c[2]);
    bfn_colormap(0.5f, c); /* matplotlib: (0.127568, 0.566949, 0.550556) at 128/255 */
    CHECK_NEAR(33, c[0], 2, "viridis(0.5) red");
    CHECK_NEAR(145, c[1], 2, "viridis(0.5) green");
    CHECK_NEAR(140, c[2], 2, "viridis(0.5) blue");
    /* perceptual uniformity shows as steadily rising luminance */
    double prev = -1;
    int drops = 0;
    for (int i = 0; i <= 1000; i++) {
        bfn_colormap((float)i / 1000.0f, c);
        double lum = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
        drops += lum < prev - 0.5;
        prev = lum;
    }
    CHECK_NEAR(0, drops, 0, "luminance decreases along the map");
    bfn_colormap(NAN, c);
    uint8_t lo[3];
    bfn_colormap(-5.0f, lo);
    CHECK(memcmp(c, lo, 3) == 0, "NaN and below-range map to the lowest color");
    float v[2] = {10.0f, 20.0f};
    uint8_t rgb[6];
    bfn_colormap_apply(rgb, v, 2, 10.0f, 20.0f);
    CHECK(rgb[0] == 68 && rgb[3] == 253, "apply maps lo and hi to the ends");
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bfn_test_image.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_png_gray_and_rgb_read_back_identical);
    RUN(test_png_write_into_missing_directory_fails_cleanly);
    RUN(test_png_failed_write_leaves_existing_file_untouched);
    RUN(test_grid_geometry_and_cell_contents);
    RUN(test_colormap_matches_viridis_ends_and_brightens_monotonically);

    char p[600];
    const char *names[] = {"gray.png", "rgb.png", "keep.png"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    return check_finish();
}
