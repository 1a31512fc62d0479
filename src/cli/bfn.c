/* bfn: train, sample and evaluate Bayesian Flow Networks on binarized MNIST. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <math.h>
#include <stdlib.h>

#include "bfn/gemm.h"
#include "bfn/image.h"
#include "cli.h"

static const char *USAGE =
    "usage: bfn <command> [options]\n"
    "\n"
    "Bayesian Flow Networks on binarized MNIST.\n"
    "\n"
    "commands:\n"
    "  train    train a model (continuous-time loss), resumable from checkpoints\n"
    "  sample   generate images with Algorithm 9 into a PNG grid (and an evolution strip)\n"
    "  eval     test NLL bound (L^n + L^r, or L_inf + L^r) in nats/image with standard error\n"
    "  info     show a model file's header\n"
    "  data     fetch MNIST (data fetch) or write a PNG grid of a data set (data preview)\n"
    "\n"
    "'bfn <command> --help' describes each command's options.\n"
    "\n"
    "exit codes: 0 success, 1 runtime error (file missing or malformed, I/O), 2 bad command\n"
    "line, 3 training diverged (NaN/Inf; the last good checkpoint is kept), 130 interrupted\n"
    "(after saving).\n";

int cli_fail(const char *cmd, bfn_status st, const bfn_err *err)
{
    fprintf(stderr, "bfn %s: %s\n", cmd, err && err->msg[0] ? err->msg : bfn_status_str(st));
    if (st == BFN_ERR_NUMERIC)
        return EXIT_NUMERIC;
    if (st == BFN_ERR_CANCELLED)
        return EXIT_INTERRUPTED;
    if (st == BFN_ERR_ARG)
        return EXIT_USAGE;
    return EXIT_FAIL;
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_duration(char *buf, size_t cap, double s)
{
    if (!(s >= 0) || s > 1e8)
        snprintf(buf, cap, "?");
    else if (s >= 3600)
        snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
    else if (s >= 60)
        snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, cap, "%ds", (int)s);
}

static volatile sig_atomic_t interrupted;
static volatile int interrupt_flag;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
    interrupt_flag = 1;
}

volatile int *cli_interrupt_flag(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return &interrupt_flag;
}

int cli_check_writable(const char *cmd, const char *path)
{
    if (!path)
        return 0;
    struct stat sb;
    const char *why = NULL;
    char dir[BFN_PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (!*path)
        why = "empty path";
    else if (strlen(path) >= sizeof dir)
        why = "path too long";
    else if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        why = "it is a directory";
    if (!why) {
        if (!slash)
            snprintf(dir, sizeof dir, ".");
        else
            snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) + (slash == path), path);
        if (stat(dir, &sb) != 0)
            why = strerror(errno);
        else if (!S_ISDIR(sb.st_mode))
            why = "its directory is not a directory";
        else if (access(dir, W_OK | X_OK) != 0)
            why = strerror(errno);
    }
    if (!why)
        return 0;
    fprintf(stderr, "bfn %s: cannot write %s: %s\n", cmd, path, why);
    return EXIT_FAIL;
}

void cli_set_threads(int n)
{
    if (n > 0)
        bfn_gemm_set_threads(n);
}

/* The layout of n tiles in cols columns (cols <= 0: about square; never more
 * columns than tiles), its size checked. */
static bfn_status grid_of(bfn_grid *g, int n, int h, int w, int cols, int scale, int *gh, int *gw,
                          size_t *bytes, bfn_err *err)
{
    if (cols <= 0)
        cols = (int)ceil(sqrt((double)n));
    if (cols > n)
        cols = n;
    *g = (bfn_grid){.n = n, .h = h, .w = w, .channels = 1, .rows = (n + cols - 1) / cols,
                    .cols = cols, .pad = 2, .scale = scale, .pad_value = 96};
    return bfn_grid_size(g, gh, gw, bytes, err);
}

bfn_status cli_grid_check(int n, int h, int w, int cols, int scale, bfn_err *err)
{
    bfn_grid g;
    int gh, gw;
    size_t bytes;
    return grid_of(&g, n, h, w, cols, scale, &gh, &gw, &bytes, err);
}

bfn_status cli_write_grid(const char *path, const uint8_t *u8, int vmax, const float *f32, int n,
                          int h, int w, int cols, int scale, bfn_err *err)
{
    bfn_grid g;
    int gh, gw;
    size_t bytes;
    bfn_status st = grid_of(&g, n, h, w, cols, scale, &gh, &gw, &bytes, err);
    if (st != BFN_OK)
        return st;
    uint8_t *canvas = malloc(bytes);
    if (!canvas)
        return bfn_err_set(err, BFN_ERR_NOMEM, "out of memory for a %dx%d image", gw, gh);
    st = u8 ? bfn_grid_tile_u8(&g, u8, vmax, canvas, bytes, err)
            : bfn_grid_tile_f32(&g, f32, canvas, bytes, err);
    if (st == BFN_OK)
        st = bfn_png_write_gray(path, canvas, gh, gw, err);
    free(canvas);
    return st;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(USAGE, stderr);
        return EXIT_USAGE;
    }
    /* A full disk or a file-size limit must give a clear write error, not kill us. */
    signal(SIGXFSZ, SIG_IGN);
    const char *c = argv[1];
    char envmsg[160];
    if (bfn_gemm_check_env(envmsg, sizeof envmsg) != 0) {
        fprintf(stderr, "bfn: %s\n", envmsg);
        return EXIT_USAGE;
    }
    if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
        fputs(USAGE, stdout);
        return EXIT_OK;
    }
    if (!strcmp(c, "train"))
        return cmd_train(argc, argv);
    if (!strcmp(c, "sample"))
        return cmd_sample(argc, argv);
    if (!strcmp(c, "eval"))
        return cmd_eval(argc, argv);
    if (!strcmp(c, "info"))
        return cmd_info(argc, argv);
    if (!strcmp(c, "data"))
        return cmd_data(argc, argv);
    fprintf(stderr, "bfn: unknown command '%s' (try 'bfn --help')\n", c);
    return EXIT_USAGE;
}
