/* Trainer: learning on a tiny synthetic data set, exact resume from a
 * checkpoint, rejection of non-finite steps, and the learning-rate schedule. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bfn/net.h"
#include "bfn/train.h"
#include "check.h"
#include "fixtures.h"

/* Four fixed 8×8 binary patterns (bars and a box), chosen at random. */
static bfn_status pattern_batch(void *user, int B, uint8_t *x, bfn_rng *rng, bfn_err *err)
{
    (void)user;
    (void)err;
    for (int b = 0; b < B; b++) {
        int k = (int)bfn_rng_below(rng, 4);
        uint8_t *im = x + b * 64;
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 8; j++) {
                int on = k == 0 ? i < 4 : k == 1 ? j < 4 : k == 2 ? (i == 0 || i == 7 || j == 0 || j == 7)
                                                               : ((i + j) % 2 == 0);
                im[i * 8 + j] = (uint8_t)on;
            }
    }
    return BFN_OK;
}

static bfn_net *make_net(int batch)
{
    bfn_net_config c = fixture_tiny_config(2, 0.0f);
    bfn_net *net;
    bfn_err err = {0};
    if (bfn_net_create(&net, &c, batch, &err) != BFN_OK) {
        fprintf(stderr, "%s\n", err.msg);
        exit(1);
    }
    bfn_net_init_params(net, 3);
    return net;
}

static void test_train_lowers_loss_on_synthetic_patterns(void)
{
    bfn_net *net = make_net(32);
    bfn_train_config tc = bfn_train_config_default();
    tc.batch = 32;
    tc.lr = 3e-3;
    tc.warmup = 20;
    tc.total_steps = 300;
    tc.ema_decay = 0.95;
    bfn_trainer *tr;
    bfn_err err = {0};
    CHECK(bfn_trainer_create(&tr, net, &tc, &err) == BFN_OK, "create: %s", err.msg);
    double before, after, after_ema;
    bfn_trainer_validate(tr, pattern_batch, NULL, 8, 77, 0, &before, &err);
    for (int s = 0; s < 300; s++) {
        bfn_train_stats st;
        if (bfn_trainer_step(tr, pattern_batch, NULL, &st, &err) != BFN_OK) {
            CHECK(0, "step %d: %s", s, err.msg);
            break;
        }
    }
    bfn_trainer_validate(tr, pattern_batch, NULL, 8, 77, 0, &after, &err);
    bfn_trainer_validate(tr, pattern_batch, NULL, 8, 77, 1, &after_ema, &err);
    printf("  L_inf per image: before %.2f, after 300 steps %.2f (EMA %.2f)\n", before, after,
           after_ema);
    /* A uniform output scores 4β(1)·E[t]·(x − ½)² = β(1)/2 per pixel = 96 nats
     * for 64 pixels at β(1) = 3; four memorisable patterns should lose most of it. */
    CHECK_NEAR(96.0, before, 10.0, "initial loss of the zero-output network");
    CHECK(after < 0.5 * before, "after 300 steps the loss %.2f must be below half of %.2f",
          after, before);
    CHECK(after_ema < 0.6 * before, "EMA loss %.2f must be below 0.6 x %.2f", after_ema, before);
    bfn_trainer_destroy(tr);
    bfn_net_destroy(net);
}

static void test_train_resume_from_checkpoint_is_bit_exact(void)
{
    char path[] = "/tmp/bfn_test_ckpt_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    bfn_train_config tc = bfn_train_config_default();
    tc.batch = 8;
    tc.warmup = 3;
    tc.total_steps = 20;
    bfn_err err = {0};
    bfn_net *net = make_net(8);
    bfn_trainer *tr;
    bfn_trainer_create(&tr, net, &tc, &err);
    for (int s = 0; s < 4; s++)
        bfn_trainer_step(tr, pattern_batch, NULL, NULL, &err);
    CHECK(bfn_trainer_save(tr, path, "patterns", 32, "test", &err) == BFN_OK, "save: %s", err.msg);
    for (int s = 0; s < 4; s++)
        bfn_trainer_step(tr, pattern_batch, NULL, NULL, &err);

    bfn_net *net2;
    bfn_trainer *tr2;
    bfn_model_meta meta;
    CHECK(bfn_trainer_load(path, &net2, &tr2, &meta, 0, &err) == BFN_OK, "load: %s", err.msg);
    if (tr2) {
        CHECK_NEAR(4, bfn_trainer_steps(tr2), 0, "step restored");
        CHECK_NEAR(32, (double)meta.images_seen, 0, "images seen restored");
        for (int s = 0; s < 4; s++)
            bfn_trainer_step(tr2, pattern_batch, NULL, NULL, &err);
        size_t np = bfn_net_param_count(net);
        int diff = memcmp(bfn_net_params(net), bfn_net_params(net2), np * sizeof(float)) != 0;
        int ediff = memcmp(bfn_trainer_ema(tr), bfn_trainer_ema(tr2), np * sizeof(float)) != 0;
        int mdiff = memcmp(bfn_trainer_adam_v(tr), bfn_trainer_adam_v(tr2), np * sizeof(float)) != 0;
        CHECK(!diff, "weights after resume + 4 steps differ from an uninterrupted run");
        CHECK(!ediff, "EMA after resume differs");
        CHECK(!mdiff, "Adam second moments after resume differ");
        bfn_trainer_destroy(tr2);
        bfn_net_destroy(net2);
    }
    bfn_trainer_destroy(tr);
    bfn_net_destroy(net);
    unlink(path);
}

/* A trainer (batch 4, default recipe) on a fresh tiny net after one step. */
static bfn_trainer *trainer_after_one_step(bfn_net **net)
{
    bfn_train_config tc = bfn_train_config_default();
    tc.batch = 4;
    bfn_err err = {0};
    bfn_trainer *tr = NULL;
    *net = make_net(4);
    if (bfn_trainer_create(&tr, *net, &tc, &err) != BFN_OK ||
        bfn_trainer_step(tr, pattern_batch, NULL, NULL, &err) != BFN_OK) {
        fprintf(stderr, "trainer: %s\n", err.msg);
        exit(1);
    }
    return tr;
}

static void test_train_non_finite_step_changes_nothing(void)
{
    bfn_err err = {0};
    bfn_net *net;
    bfn_trainer *tr = trainer_after_one_step(&net);
    size_t np = bfn_net_param_count(net);
    float *p = bfn_net_params(net);
    /* poison one weight of the input conv: every logit becomes NaN */
    p[0] = NAN;
    float *copy = malloc(np * sizeof(float)), *ema = malloc(np * sizeof(float));
    memcpy(copy, p, np * sizeof(float));
    memcpy(ema, bfn_trainer_ema(tr), np * sizeof(float));
    bfn_status st = bfn_trainer_step(tr, pattern_batch, NULL, NULL, &err);
    CHECK(st == BFN_ERR_NUMERIC, "NaN loss gives BFN_ERR_NUMERIC (got %d: %s)", st, err.msg);
    CHECK(memcmp(copy + 1, p + 1, (np - 1) * sizeof(float)) == 0, "weights untouched");
    CHECK(memcmp(ema, bfn_trainer_ema(tr), np * sizeof(float)) == 0, "EMA untouched");
    CHECK_NEAR(1, bfn_trainer_steps(tr), 0, "step counter not advanced");
    free(copy);
    free(ema);
    bfn_trainer_destroy(tr);
    bfn_net_destroy(net);
}

/* A state with a NaN, an Inf or a negative second moment anywhere is not
 * written: the checkpoint and the model on disk keep their bytes. */
static void test_train_save_refuses_non_finite_state_and_keeps_the_file(void)
{
    char ckpt[] = "/tmp/bfn_test_ckpt_XXXXXX", model[] = "/tmp/bfn_test_model_XXXXXX";
    close(mkstemp(ckpt));
    close(mkstemp(model));
    bfn_err err = {0};
    bfn_net *net;
    bfn_trainer *tr = trainer_after_one_step(&net);
    CHECK(bfn_trainer_save(tr, ckpt, "patterns", 4, "t", &err) == BFN_OK, "save: %s", err.msg);
    CHECK(bfn_trainer_save_model(tr, model, "patterns", 4, "t", &err) == BFN_OK, "model: %s",
          err.msg);
    size_t nc, nm;
    char *c0 = fixture_read_file(ckpt, &nc), *m0 = fixture_read_file(model, &nm);
    size_t np = bfn_net_param_count(net), k = np / 2;
    struct {
        const char *what;
        float *x, bad;
        int model_too;
    } cases[4] = {{"a NaN weight", bfn_net_params(net), NAN, 0},
                  {"an infinite EMA weight", bfn_trainer_ema(tr), INFINITY, 1},
                  {"a NaN second moment", bfn_trainer_adam_v(tr), NAN, 0},
                  {"a negative second moment", bfn_trainer_adam_v(tr), -1e-3f, 0}};
    for (int i = 0; i < 4; i++) {
        float keep = cases[i].x[k];
        cases[i].x[k] = cases[i].bad;
        bfn_status st = bfn_trainer_save(tr, ckpt, "patterns", 8, "t", &err);
        CHECK(st == BFN_ERR_NUMERIC && strstr(err.msg, "unchanged"),
              "%s: checkpoint refused (got %d: %s)", cases[i].what, st, err.msg);
        if (cases[i].model_too) {
            st = bfn_trainer_save_model(tr, model, "patterns", 8, "t", &err);
            CHECK(st == BFN_ERR_NUMERIC, "%s: model refused (got %d: %s)", cases[i].what, st,
                  err.msg);
        }
        cases[i].x[k] = keep;
        size_t n1, n2;
        char *c1 = fixture_read_file(ckpt, &n1), *m1 = fixture_read_file(model, &n2);
        CHECK(c0 && c1 && n1 == nc && !memcmp(c0, c1, nc), "%s: checkpoint bytes unchanged",
              cases[i].what);
        CHECK(m0 && m1 && n2 == nm && !memcmp(m0, m1, nm), "%s: model bytes unchanged",
              cases[i].what);
        free(c1), free(m1);
    }
    CHECK(bfn_trainer_save(tr, ckpt, "patterns", 8, "t", &err) == BFN_OK,
          "the repaired state saves: %s", err.msg);
    free(c0), free(m0);
    bfn_trainer_destroy(tr);
    bfn_net_destroy(net);
    unlink(ckpt);
    unlink(model);
}

static void test_train_lr_schedule_warmup_then_cosine(void)
{
    bfn_train_config c = bfn_train_config_default();
    c.lr = 1e-3;
    c.lr_min = 1e-5;
    c.warmup = 100;
    c.total_steps = 1100;
    CHECK_REL(1e-5, bfn_train_lr_at(&c, 0), 1e-9, 1e-12, "lr at step 0 = lr/warmup");
    CHECK_REL(5e-4, bfn_train_lr_at(&c, 49), 1e-9, 1e-12, "lr half way through warmup");
    CHECK_REL(1e-3, bfn_train_lr_at(&c, 100), 1e-9, 1e-12, "peak lr after warmup");
    CHECK_REL(0.5 * (1e-3 + 1e-5), bfn_train_lr_at(&c, 600), 1e-9, 1e-12, "cosine midpoint");
    CHECK_REL(1e-5, bfn_train_lr_at(&c, 1100), 1e-9, 1e-12, "floor at the end");
    CHECK_REL(1e-5, bfn_train_lr_at(&c, 5000), 1e-9, 1e-12, "floor after the end");
    bfn_train_config bad = c;
    bad.batch = 0;
    CHECK(bfn_train_config_check(&bad, NULL) == BFN_ERR_ARG, "batch 0 rejected");
    bad = c;
    bad.lr = NAN;
    CHECK(bfn_train_config_check(&bad, NULL) == BFN_ERR_ARG, "lr NaN rejected");
}

int main(void)
{
    RUN(test_train_lr_schedule_warmup_then_cosine);
    RUN(test_train_non_finite_step_changes_nothing);
    RUN(test_train_save_refuses_non_finite_state_and_keeps_the_file);
    RUN(test_train_resume_from_checkpoint_is_bit_exact);
    RUN(test_train_lowers_loss_on_synthetic_patterns);
    return check_finish();
}
