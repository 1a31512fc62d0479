/* Background training: a thread with its own network, trainer and data
 * source (bfn_trainer_*, continuous-time loss), controlled from the UI with
 * start / pause / resume / stop and requests (save the model, make a
 * snapshot of the EMA weights for the viewer, sample a preview grid). The UI
 * reads a copy of the published state (viz_train_view) under a short lock;
 * the lock is never held across a training step, a save or a preview.
 *
 * Files: checkpoints <runs>/viz-<data>.ckpt (bfn_trainer_save, every 500
 * steps, every 5 minutes, on stop and at the end) and the model
 * <runs>/viz-<data>.bfn (bfn_trainer_save_model, on request and at the end);
 * both are written atomically by the engine, so quitting never leaves a
 * broken file. */
#ifndef VIZ_TRAIN_JOB_H
#define VIZ_TRAIN_JOB_H

#include <stdint.h>

#include "bfn/data.h"
#include "viz.h"
#include "weights.h"

typedef enum {
    VIZ_TRAIN_IDLE = 0, /* nothing started (or stopped) */
    VIZ_TRAIN_STARTING, /* loading data, building the network */
    VIZ_TRAIN_RUNNING,
    VIZ_TRAIN_PAUSED,
    VIZ_TRAIN_DONE,     /* reached its step count; can still save */
    VIZ_TRAIN_ERROR
} viz_train_state;

typedef enum { VIZ_SIZE_TINY = 0, VIZ_SIZE_SMALL, VIZ_SIZE_DEFAULT, VIZ_SIZE_COUNT } viz_train_size;

typedef struct {
    bfn_data_kind data;              /* BFN_DATA_MNIST or BFN_DATA_TWODIGIT */
    char data_dir[VIZ_PATH_MAX];     /* "" : bfn_data_default_dir */
    int from_model;                  /* 1: start from model_path's weights */
    char model_path[VIZ_PATH_MAX];
    viz_train_size size;             /* network size when from scratch */
    int64_t steps;                   /* schedule length */
    double beta1;                    /* β(1) when from scratch */
    uint64_t seed;
} viz_train_req;

#define VIZ_TRAIN_CURVE_MAX 1024
#define VIZ_TRAIN_PREVIEW_MAX 8

typedef struct {
    viz_train_state state;
    char message[512];                 /* last error, or what was last saved */
    char data_name[32];
    int64_t step, total;
    int batch;
    size_t params;
    double beta1;
    double loss;                       /* smoothed training loss, nats/image */
    double val;                        /* last validation loss (EMA weights); < 0: none yet */
    double lr;
    double images_per_s, eta_s;        /* eta < 0: unknown */
    int n_loss;                        /* training-loss curve, averaged over buckets */
    float loss_step[VIZ_TRAIN_CURVE_MAX], loss_val[VIZ_TRAIN_CURVE_MAX];
    int n_val;
    float val_step[VIZ_TRAIN_CURVE_MAX], val_val[VIZ_TRAIN_CURVE_MAX];
    uint64_t preview_serial;           /* bumps with every new preview */
    int preview_n, preview_h, preview_w;
    int64_t preview_step;
    uint8_t preview[VIZ_TRAIN_PREVIEW_MAX * 64 * 64]; /* (n, h, w) classes 0/1 (K−1 max) */
    uint64_t snapshot_serial;          /* bumps with every new EMA snapshot */
    char ckpt_path[VIZ_PATH_MAX], model_path[VIZ_PATH_MAX];
} viz_train_view;

typedef struct viz_train viz_train;

/* wake_type: SDL user event type pushed (code 2) when the view changed.
 * runs_dir: where checkpoints and models go. NULL if the thread cannot start. */
viz_train *viz_train_create(uint32_t wake_type, const char *runs_dir);
/* Stops training at its next step boundary and joins the thread. Saves
 * nothing: the last checkpoint on disk stays valid. */
void viz_train_destroy(viz_train *t);

/* Starts a new run (ignored while one is starting, running or paused). */
void viz_train_start(viz_train *t, const viz_train_req *req);
void viz_train_pause(viz_train *t, int pause);
/* Saves a checkpoint and ends the run. */
void viz_train_stop(viz_train *t);
void viz_train_request_save(viz_train *t);
void viz_train_request_snapshot(viz_train *t);
void viz_train_request_preview(viz_train *t);
/* Seconds of training between automatic previews (default 30). */
void viz_train_set_preview_interval(viz_train *t, double seconds);

/* Copies the published state. */
void viz_train_get(viz_train *t, viz_train_view *out);
/* Cheap check: state and the serial of the last published change. */
uint64_t viz_train_serial(viz_train *t);
/* A new reference to the latest EMA snapshot (NULL if none). */
viz_weights *viz_train_snapshot(viz_train *t);
void viz_train_ack(viz_train *t);

const char *viz_train_state_name(viz_train_state s);
const char *viz_train_size_name(viz_train_size s);

#endif
