/* The bfn command line: one function per subcommand. */
#ifndef BFN_CLI_H
#define BFN_CLI_H

#include <stdint.h>

#include "args.h"
#include "bfn/common.h"

#define BFN_DEFAULT_MODEL "models/mnist.bfn"
#define BFN_PATH_MAX 4096 /* paths the tool builds (bfn_locate) */

int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_data(int argc, char **argv);

/* Prints "bfn <cmd>: <message>" to stderr and returns the exit code for st. */
int cli_fail(const char *cmd, bfn_status st, const bfn_err *err);
/* Seconds since an arbitrary start (monotonic). */
double cli_now(void);
/* Formats seconds as "1h02m", "3m05s" or "12s". */
void cli_duration(char *buf, size_t cap, double seconds);
/* Installs SIGINT/SIGTERM handlers that set the returned flag. */
volatile int *cli_interrupt_flag(void);
/* Writes n gray images (h, w) as a PNG grid with cols columns (0: about
 * square), each pixel scaled by scale. Give u8 images (vmax maps to white) or
 * f32 images in [0, 1] (u8 NULL). */
bfn_status cli_write_grid(const char *path, const uint8_t *u8, int vmax, const float *f32, int n,
                          int h, int w, int cols, int scale, bfn_err *err);
/* Whether that grid's image can be made (its size in bounds), before the work. */
bfn_status cli_grid_check(int n, int h, int w, int cols, int scale, bfn_err *err);
/* Before a long computation: whether path can be written (its directory
 * exists and is writable, and path is not a directory), so that a typo in an
 * output path fails at once instead of after the work. Returns 0, or prints
 * "bfn <cmd>: cannot write <path>: <why>" and returns EXIT_FAIL. NULL: 0. */
int cli_check_writable(const char *cmd, const char *path);
/* Uses n BLAS threads (n <= 0: leave the default). */
void cli_set_threads(int n);

#endif
