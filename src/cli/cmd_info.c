/* bfn info: a model or checkpoint file's header and sections. */
#include <stdio.h>
#include <stdlib.h>

#include "bfn/data.h"
#include "bfn/model_io.h"
#include "cli.h"

int cmd_info(int argc, char **argv)
{
    const char *model = NULL;
    arg_spec specs[] = {
        {"model", ARG_STR, &model, "PATH", "model or checkpoint file (default " BFN_DEFAULT_MODEL ")", 1, 0, 0},
    };
    int first = 2;
    if (argc > 2 && argv[2][0] != '-') { /* bfn info FILE */
        model = argv[2];
        first = 3;
    }
    int r = args_parse("bfn info",
                       "Shows the header and sections of a model or checkpoint file\n"
                       "(bfn info FILE, or bfn info --model FILE).",
                       argc, argv, first, specs, 1);
    if (r)
        return r > 0 ? EXIT_OK : EXIT_USAGE;
    char model_buf[BFN_PATH_MAX];
    if (!model) {
        bfn_locate(BFN_DEFAULT_MODEL, model_buf, sizeof model_buf);
        model = model_buf;
    }
    bfn_err err = {0};
    bfn_model_meta meta;
    bfn_model_sections secs;
    bfn_status st = bfn_model_load(model, &meta, &secs, &err);
    if (st != BFN_OK)
        return cli_fail("info", st, &err);
    size_t need = bfn_model_format_info(NULL, 0, &meta, &secs) + 1;
    char *buf = malloc(need);
    if (!buf) {
        bfn_model_sections_free(&secs);
        return cli_fail("info", BFN_ERR_NOMEM, NULL);
    }
    bfn_model_format_info(buf, need, &meta, &secs);
    printf("file: %s\n%s", model, buf);
    free(buf);
    bfn_model_sections_free(&secs);
    return EXIT_OK;
}
