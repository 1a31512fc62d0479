/* The bfn command line: one function per subcommand. */
#ifndef BFN_CLI_H
#define BFN_CLI_H

#include "args.h"
#include "bfn/common.h"

#define BFN_DEFAULT_MODEL "models/mnist.bfn"

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
/* Uses n BLAS threads (n <= 0: leave the default). */
void cli_set_threads(int n);

#endif
