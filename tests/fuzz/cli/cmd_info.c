/* bfn info with its real option table, for the argument fuzzer: the command's
 * source compiled with args_parse renamed, so the fuzzer's args_parse runs the
 * real parser and then returns control to the fuzzer before the command does
 * anything (see fuzz_args.c). */
#define args_parse fuzz_args_parse
#include "../../../src/cli/cmd_info.c"
