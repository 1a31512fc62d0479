/* Test-set NLL bound (L^n + L^r, or L∞ + L^r) with standard errors. */
#include "bfn/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/flow.h"
#include "bfn/rng.h"

enum { STREAM_EVAL = 0x4556414CU, TAG_STRAT = 1, TAG_FLOW = 2, TAG_KL = 3, TAG_RFLOW = 4 };

typedef struct {
    int64_t index;
    int repeat;
    double t;
    int step; /* i for L^n; 0 for L∞; -1 for the L^r call */
    int row;  /* which n of the list */
} job;

bfn_status bfn_eval_run(bfn_net *net, const bfn_eval_config *cfg, bfn_eval_image_fn get_image,
                        void *image_user, bfn_eval_progress_fn progress, void *progress_user,
                        bfn_eval_result *res, double *per_image, bfn_err *err)
{
    return bfn_eval_run_rows(net, cfg, &cfg->n_steps, 1, get_image, image_user, progress,
                             progress_user, res, per_image, err);
}

bfn_status bfn_eval_run_rows(bfn_net *net, const bfn_eval_config *cfg, const int *steps, int rows,
                             bfn_eval_image_fn get_image, void *image_user,
                             bfn_eval_progress_fn progress, void *progress_user,
                             bfn_eval_result *res, double *per_image, bfn_err *err)
{
    if (!steps || rows < 1 || rows > BFN_EVAL_MAX_ROWS)
        return bfn_err_set(err, BFN_ERR_ARG, "eval: %d step counts, need 1 to %d", rows,
                           BFN_EVAL_MAX_ROWS);
    for (int k = 0; k < rows; k++)
        if (steps[k] < 0)
            return bfn_err_set(err, BFN_ERR_ARG, "eval: steps = %d, need >= 0", steps[k]);
    if (cfg->repeats < 1 || cfg->count < 1 || cfg->n_mc < 1)
        return bfn_err_set(err, BFN_ERR_ARG, "eval: need repeats >= 1, count >= 1, n_mc >= 1");
    if (!(cfg->beta1 > 0 && cfg->beta1 <= 1e4))
        return bfn_err_set(err, BFN_ERR_ARG, "eval: beta1 = %g not in (0, 1e4]", cfg->beta1);
    const bfn_net_config *nc = bfn_net_get_config(net);
    const int D = nc->H * nc->W, K = nc->K, zp = bfn_flow_planes(K);
    const int ic = bfn_net_in_channels(K), oc = bfn_net_out_channels(K);
    const int MB = bfn_net_max_batch(net);
    const int R = cfg->repeats, J = rows + 1; /* jobs per (image, repeat): each row, then L^r */

    uint8_t *x = malloc((size_t)MB * D);
    uint8_t *img = malloc((size_t)D); /* the (image, repeat) of the last job, for its other jobs */
    float *z = malloc((size_t)zp * D * sizeof(float));
    float *in = malloc((size_t)MB * ic * D * sizeof(float));
    float *t = malloc((size_t)MB * sizeof(float));
    float *logits = malloc((size_t)MB * oc * D * sizeof(float));
    float *p = malloc((size_t)oc * D * sizeof(float));
    job *jobs = malloc((size_t)MB * sizeof(job));
    bfn_status st = BFN_OK;
    if (!x || !img || !z || !in || !t || !logits || !p || !jobs) {
        st = bfn_err_set(err, BFN_ERR_NOMEM, "eval: out of memory");
        goto done;
    }
    bfn_rng base;
    bfn_rng_init(&base, cfg->seed, STREAM_EVAL);
    /* Every (image, repeat) contributes one L^n job per row and one L^r job;
     * they are batched in any order, each with its own rng stream. A row's
     * streams do not depend on the other rows: each row gives the numbers a
     * run of that n alone gives. */
    const int64_t total_jobs = cfg->count * R * J;
    double s_ln[BFN_EVAL_MAX_ROWS] = {0}, s_ln2[BFN_EVAL_MAX_ROWS] = {0};
    double s_tot[BFN_EVAL_MAX_ROWS] = {0}, s_tot2[BFN_EVAL_MAX_ROWS] = {0};
    double s_lr = 0, s_lr2 = 0;
    double cur_ln[BFN_EVAL_MAX_ROWS] = {0}, cur_lr = 0; /* sums for the image being accumulated */
    int64_t cur_img = 0, img_index = -1;
    int cur_done = 0, img_repeat = -1;
    int64_t j = 0;
    while (j < total_jobs) {
        int nb = 0;
        for (; nb < MB && j < total_jobs; nb++, j++) {
            job *jb = &jobs[nb];
            jb->index = j / (J * R);
            jb->repeat = (int)((j / J) % R);
            jb->row = (int)(j % J);
            int is_rec = jb->row == rows, n = is_rec ? 0 : steps[jb->row];
            bfn_rng ri = bfn_rng_fork(&base, (uint64_t)jb->index);
            bfn_rng rr = bfn_rng_fork(&ri, (uint64_t)jb->repeat + 1);
            if (jb->index != img_index || jb->repeat != img_repeat) {
                st = get_image(image_user, jb->index, jb->repeat, img, err);
                if (st != BFN_OK)
                    goto done;
                img_index = jb->index;
                img_repeat = jb->repeat;
            }
            memcpy(x + (size_t)nb * D, img, (size_t)D);
            double beta;
            if (is_rec) {
                jb->step = -1;
                jb->t = 1.0;
                beta = cfg->beta1;
            } else {
                /* stratified over repeats: u = (repeat + v)/R with v shared by the image */
                bfn_rng rs = bfn_rng_fork(&ri, TAG_STRAT);
                double v = bfn_rng_uniform(&rs);
                double u = (jb->repeat + v) / R;
                if (n > 0) {
                    int i = 1 + (int)floor(u * n);
                    if (i > n)
                        i = n;
                    jb->step = i;
                    jb->t = (double)(i - 1) / n;
                } else {
                    jb->step = 0;
                    jb->t = u;
                }
                beta = bfn_beta_t(cfg->beta1, jb->t);
            }
            bfn_rng rf = bfn_rng_fork(&rr, is_rec ? TAG_RFLOW : TAG_FLOW);
            bfn_flow_sample(z, x + (size_t)nb * D, D, K, beta, &rf);
            bfn_net_input(in + (size_t)nb * ic * D, z, D, K);
            t[nb] = (float)jb->t;
        }
        st = bfn_net_forward(net, in, t, nb, 0, NULL, logits);
        if (st != BFN_OK) {
            bfn_err_set(err, st, "eval: network forward failed (%s)", bfn_status_str(st));
            goto done;
        }
        for (int b = 0; b < nb; b++) {
            const job *jb = &jobs[b];
            const uint8_t *xb = x + (size_t)b * D;
            const float *lb = logits + (size_t)b * oc * D;
            double v;
            if (jb->step < 0) {
                v = bfn_loss_recon(lb, xb, D, K);
                cur_lr += v;
            } else if (jb->step == 0) {
                v = bfn_loss_cts(lb, xb, D, K, cfg->beta1, jb->t, NULL, 0.0f);
                cur_ln[jb->row] += v;
            } else {
                int n = steps[jb->row];
                bfn_rng ri = bfn_rng_fork(&base, (uint64_t)jb->index);
                bfn_rng rr = bfn_rng_fork(&ri, (uint64_t)jb->repeat + 1);
                bfn_rng rk = bfn_rng_fork(&rr, TAG_KL);
                bfn_output_probs(p, lb, D, K);
                double a = bfn_alpha_step(cfg->beta1, jb->step, n);
                v = n * bfn_kl_step(xb, p, D, K, a, cfg->n_mc, &rk);
                cur_ln[jb->row] += v;
            }
            if (!isfinite(v)) {
                st = bfn_err_set(err, BFN_ERR_NUMERIC, "eval: non-finite loss on image %lld",
                                 (long long)jb->index);
                goto done;
            }
            if (++cur_done == J * R) {
                double lr = cur_lr / R;
                s_lr += lr;
                s_lr2 += lr * lr;
                for (int k = 0; k < rows; k++) {
                    double ln = cur_ln[k] / R;
                    if (per_image)
                        per_image[(size_t)k * cfg->count + cur_img] = ln;
                    s_ln[k] += ln;
                    s_ln2[k] += ln * ln;
                    s_tot[k] += ln + lr;
                    s_tot2[k] += (ln + lr) * (ln + lr);
                    cur_ln[k] = 0;
                }
                cur_img++;
                cur_done = 0;
                cur_lr = 0;
            }
        }
        if (progress && progress(progress_user, j / (J * R), cfg->count)) {
            st = bfn_err_set(err, BFN_ERR_CANCELLED, "eval: cancelled");
            goto done;
        }
    }
    {
        double N = (double)cfg->count;
#define SE(s, s2) (N > 1 ? sqrt(fmax(0.0, ((s2) - (s) * (s) / N) / (N - 1)) / N) : 0.0)
        for (int k = 0; k < rows; k++) {
            bfn_eval_result *rk = &res[k];
            memset(rk, 0, sizeof *rk);
            rk->images = cfg->count;
            rk->repeats = R;
            rk->ln = s_ln[k] / N;
            rk->lr = s_lr / N;
            rk->total = s_tot[k] / N;
            rk->ln_se = SE(s_ln[k], s_ln2[k]);
            rk->lr_se = SE(s_lr, s_lr2);
            rk->total_se = SE(s_tot[k], s_tot2[k]);
        }
#undef SE
    }
done:
    free(x);
    free(img);
    free(z);
    free(in);
    free(t);
    free(logits);
    free(p);
    free(jobs);
    return st;
}
