/* bfn train with its real option table, for the argument fuzzer: the command's
 * source compiled with args_parse renamed, so the fuzzer's args_parse runs the
 * real parser and then returns control to the fuzzer before the command does
 * anything (see fuzz_args.c). */
#define args_parse fuzz_args_parse
#include "../../../src/cli/cmd_train.c"

/* The --mult list syntax, which cmd_train checks after parsing. */
int fuzz_train_mult(const char *s);
int fuzz_train_mult(const char *s)
{
    bfn_net_config c = bfn_net_config_default(2, 28, 28);
    return parse_mult(s, &c);
}
