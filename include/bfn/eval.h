/* Test NLL bound of a BFN (BFN.md "Losses"): for each image and repeat, one
 * draw of the step index (or time), of θ and of the messages gives an
 * unbiased estimate of L^n (or L∞); a second network call at t = 1 gives L^r.
 * Step indices are stratified across an image's repeats (still unbiased per
 * repeat on average) and the standard error is taken across images, whose
 * per-image means are independent. Results in nats/image. */
#ifndef BFN_EVAL_H
#define BFN_EVAL_H

#include <stdint.h>

#include "bfn/common.h"
#include "bfn/net.h"

typedef struct {
    int n_steps;       /* n >= 1 for L^n; 0 for continuous time (L∞) */
    double beta1;      /* β(1) of the model */
    int repeats;       /* draws per image (each re-binarizes the image) */
    int64_t count;     /* images to evaluate (from index 0) */
    int n_mc;          /* Monte Carlo draws of y per pixel for each KL (L^n only) */
    uint64_t seed;
} bfn_eval_config;

typedef struct {
    double ln, ln_se;       /* L^n or L∞ */
    double lr, lr_se;       /* L^r */
    double total, total_se; /* the bound: L^n + L^r */
    int64_t images;
    int repeats;
} bfn_eval_result;

/* Fills x (D) with image `index`, binarized afresh for `repeat`. */
typedef bfn_status (*bfn_eval_image_fn)(void *user, int64_t index, int repeat, uint8_t *x,
                                        bfn_err *err);
/* Called after each network batch; return non-zero to cancel. */
typedef int (*bfn_eval_progress_fn)(void *user, int64_t done, int64_t total);

/* per_image (optional, count doubles) receives each image's mean L^n (or L∞). */
bfn_status bfn_eval_run(bfn_net *net, const bfn_eval_config *cfg, bfn_eval_image_fn get_image,
                        void *image_user, bfn_eval_progress_fn progress, void *progress_user,
                        bfn_eval_result *res, double *per_image, bfn_err *err);

/* The bound for several step counts at once (steps[k] >= 0, 0 for L∞;
 * cfg->n_steps unused): res[k] and per_image[k · count + i] (optional)
 * for row k. Each image's L^r is computed once and shared by the rows, and
 * every row gives exactly what bfn_eval_run with that n gives. */
#define BFN_EVAL_MAX_ROWS 16
bfn_status bfn_eval_run_rows(bfn_net *net, const bfn_eval_config *cfg, const int *steps, int rows,
                             bfn_eval_image_fn get_image, void *image_user,
                             bfn_eval_progress_fn progress, void *progress_user,
                             bfn_eval_result *res, double *per_image, bfn_err *err);

#endif
