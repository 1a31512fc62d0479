/* The shared helpers of the bfn command line (cli.h), without its main. */
#define main bfn_cli_main
#include "../../../src/cli/bfn.c"
