/* Model and checkpoint files with a valid structure and checksum but absurd
 * values (β(1) 0, 1e30 or NaN, NaN/Inf weights, K or image size that
 * disagree, impossible training state, negative Adam moments) are refused
 * with the expected status and a message that names the file and the
 * problem.
 *   fuzz_absurd_models <tests/fuzz directory>
 * reads absurd_models.txt there ("file loader status message-part" per
 * line, written by fuzz_make_seeds) and the files in regress/model/, which
 * the model fuzzer's replay also runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bfn/model_io.h"
#include "bfn/train.h"
#include "check.h"

static const char *g_root;
static char g_tmp[512];
static int g_cases;

/* Copies the fuzz input (mode byte + file) to g_tmp without the mode byte. */
static int stage(const char *file)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/regress/model/%s", g_root, file);
    FILE *in = fopen(p, "rb"), *out = fopen(g_tmp, "wb");
    int ok = in && out && fgetc(in) != EOF;
    char buf[65536];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    return ok;
}

static void one_case(const char *file, const char *loader, int want, const char *part)
{
    g_cases++;
    if (!CHECK(stage(file), "%s: readable", file))
        return;
    bfn_err err = {0};
    bfn_err_clear(&err);
    bfn_status st;
    if (!strcmp(loader, "trainer")) {
        bfn_net *net = NULL;
        bfn_trainer *tr = NULL;
        st = bfn_trainer_load(g_tmp, &net, &tr, NULL, 1, &err);
        CHECK(net == NULL && tr == NULL, "%s: nothing returned on refusal", file);
        bfn_trainer_destroy(tr);
        bfn_net_destroy(net);
    } else {
        bfn_net *net = NULL;
        st = bfn_model_load_net(g_tmp, &net, NULL, 1, &err);
        CHECK(net == NULL, "%s: no net returned on refusal", file);
        bfn_net_destroy(net);
    }
    CHECK_NEAR(want, st, 0, "%s: status (%s; message: %s)", file, bfn_status_str(st), err.msg);
    CHECK(strstr(err.msg, part) != NULL, "%s: message mentions \"%s\": %s", file, part, err.msg);
    CHECK(strstr(err.msg, g_tmp) != NULL, "%s: message names the file: %s", file, err.msg);
    CHECK(strchr(err.msg, '\n') == NULL, "%s: message is one line: %s", file, err.msg);
}

static void test_absurd_models_are_refused_with_clear_messages(void)
{
    char mp[1024], line[512];
    snprintf(mp, sizeof mp, "%s/absurd_models.txt", g_root);
    FILE *f = fopen(mp, "r");
    if (!CHECK(f != NULL, "manifest readable: %.900s", mp))
        return;
    while (fgets(line, sizeof line, f)) {
        char file[256], loader[16], part[200];
        int want;
        if (line[0] == '#')
            continue;
        if (!CHECK(sscanf(line, "%255s %15s %d %199[^\n]", file, loader, &want, part) == 4,
                   "manifest line parses: %s", line))
            continue;
        one_case(file, loader, want, part);
    }
    fclose(f);
    CHECK(g_cases >= 20, "manifest lists the absurd cases (%d found)", g_cases);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <tests/fuzz directory>\n", argv[0]);
        return 2;
    }
    g_root = argv[1];
    const char *tmp = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/bfn-absurd-%ld.bfn", tmp && *tmp ? tmp : "/tmp",
             (long)getpid());
    RUN(test_absurd_models_are_refused_with_clear_messages);
    unlink(g_tmp);
    return check_finish();
}
