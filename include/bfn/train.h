/* Training with the continuous-time loss L∞ (BFN.md): batch → t ~ U(0,1)
 * (stratified over the batch) → θ ~ flow(x, t) → network → L∞ and its
 * gradient → backward → gradient-norm clipping → AdamW → EMA.
 * The trainer owns optimizer state and the EMA copy of the weights; the
 * caller supplies batches through a callback, so it knows nothing of files. */
#ifndef BFN_TRAIN_H
#define BFN_TRAIN_H

#include <stdint.h>

#include "bfn/common.h"
#include "bfn/model_io.h"
#include "bfn/net.h"
#include "bfn/rng.h"

typedef struct {
    double beta1;        /* BFN accuracy β(1) the model is trained for */
    int batch;           /* images per step */
    double lr;           /* peak learning rate */
    double lr_min;       /* floor of the cosine decay (0: decay to zero) */
    int64_t warmup;      /* linear warmup steps */
    int64_t total_steps; /* length of the schedule (cosine over warmup..total); 0: constant lr */
    double adam_b1, adam_b2, adam_eps;
    double weight_decay; /* decoupled (AdamW), applied to tensors flagged decay */
    double clip;         /* max global gradient L2 norm; <= 0 disables */
    double ema_decay;    /* e.g. 0.999; warmed up as min(decay, (1+s)/(10+s)) */
    uint64_t seed;
} bfn_train_config;

bfn_train_config bfn_train_config_default(void);
bfn_status bfn_train_config_check(const bfn_train_config *c, bfn_err *err);

/* Fills x (B, D) with B binarized images (classes 0..K-1) drawn with rng. */
typedef bfn_status (*bfn_batch_fn)(void *user, int B, uint8_t *x, bfn_rng *rng, bfn_err *err);

typedef struct bfn_trainer bfn_trainer;

typedef struct {
    int64_t step;        /* steps done after this one */
    double loss;         /* mean L∞ over the batch, nats/image */
    double grad_norm;    /* global gradient norm before clipping */
    double lr;           /* learning rate used */
} bfn_train_stats;

/* The trainer uses net (which must have max_batch >= cfg->batch) and keeps a
 * pointer to it. The EMA starts as a copy of the net's current weights. */
bfn_status bfn_trainer_create(bfn_trainer **out, bfn_net *net, const bfn_train_config *cfg,
                              bfn_err *err);
void bfn_trainer_destroy(bfn_trainer *tr);

/* One optimization step on a batch from get_batch. A non-finite loss or
 * gradient leaves the weights, moments and EMA untouched and returns
 * BFN_ERR_NUMERIC. */
bfn_status bfn_trainer_step(bfn_trainer *tr, bfn_batch_fn get_batch, void *user,
                            bfn_train_stats *stats, bfn_err *err);

/* Mean L∞ (nats/image) of the EMA weights (ema = 1) or the raw weights over
 * n_batches batches from get_batch, with a fixed rng stream (seed) so that
 * successive validations are comparable. Restores the raw weights after. */
bfn_status bfn_trainer_validate(bfn_trainer *tr, bfn_batch_fn get_batch, void *user,
                                int n_batches, uint64_t seed, int ema, double *loss,
                                bfn_err *err);

/* Learning rate at a step under the schedule. */
double bfn_train_lr_at(const bfn_train_config *c, int64_t step);

const bfn_train_config *bfn_trainer_config(const bfn_trainer *tr);
int64_t bfn_trainer_steps(const bfn_trainer *tr);
/* EMA weights (param_count floats). */
float *bfn_trainer_ema(bfn_trainer *tr);
/* Optimizer state for checkpoints: Adam moments (param_count each), rng. */
float *bfn_trainer_adam_m(bfn_trainer *tr);
float *bfn_trainer_adam_v(bfn_trainer *tr);
bfn_rng *bfn_trainer_rng(bfn_trainer *tr);
void bfn_trainer_set_steps(bfn_trainer *tr, int64_t step);

/* Checkpoints (model_io container): weights, EMA, Adam moments, step, rng,
 * config; written to a temporary file then renamed. Loading restores the
 * trainer exactly so that resumed training continues bit for bit. A state
 * holding NaN or Inf (or a negative Adam second moment) is not written:
 * BFN_ERR_NUMERIC, and the file on disk is left as it was (the same for
 * bfn_trainer_save_model and the EMA weights). */
bfn_status bfn_trainer_save(bfn_trainer *tr, const char *path, const char *dataset,
                            int64_t images_seen, const char *notes, bfn_err *err);
/* Restores a checkpoint: creates the net (for the checkpoint's batch size, or
 * max_batch if larger) and a trainer in the exact saved state. meta (may be
 * NULL) receives the header (data set, images seen, notes). */
bfn_status bfn_trainer_load(const char *path, bfn_net **net, bfn_trainer **tr,
                            bfn_model_meta *meta, int max_batch, bfn_err *err);
/* Replaces the schedule length (to extend a run); other settings stay. */
void bfn_trainer_set_total_steps(bfn_trainer *tr, int64_t total_steps);
/* Saves only the EMA weights as a model file (for sampling). */
bfn_status bfn_trainer_save_model(bfn_trainer *tr, const char *path, const char *dataset,
                                  int64_t images_seen, const char *notes, bfn_err *err);

#endif
