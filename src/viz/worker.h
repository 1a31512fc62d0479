/* The sampling worker: a thread that owns the sampling network and runs one
 * Algorithm 9 job at a time, recording every step into a viz_run.
 *
 * Contract with the UI thread: viz_worker_submit replaces the pending request
 * and bumps the generation number; the running job notices at its next step
 * boundary (its observer returns non-zero) and is abandoned, so the UI never
 * waits. Each new run is published as "latest" (viz_worker_take hands out a
 * reference), and progress wakes the UI with one SDL user event at a time
 * (a flag stops the queue from flooding). No lock is held across a network
 * call or a model load.
 *
 * Autoguidance: a model file DIR/NAME.bfn may have a guide, a weaker network
 * of the same data shape saved as DIR/guides/NAME.bfn. The thread loads it the
 * first time a request asks for w != 1, keeps it while the model stays, and
 * drops it with the model. A guide that is missing, unreadable or does not
 * match the model is refused: the run samples unguided (sp.guidance 1) and
 * says why in guide_refused, for the UI to show. */
#ifndef VIZ_WORKER_H
#define VIZ_WORKER_H

#include <stdint.h>

#include "run.h"
#include "viz.h"
#include "weights.h"

#define VIZ_GUIDE_DIR "guides" /* beside the model files */

/* The guide of model file model_path ("DIR/NAME.bfn" → "DIR/guides/NAME.bfn")
 * into out; 1 if that file exists. */
int viz_guide_path(const char *model_path, char *out, size_t cap);

typedef struct {
    viz_sample_params sp;           /* beta1 <= 0: the model's own; guidance w (1: off) */
    char model_path[VIZ_PATH_MAX];  /* used when weights is NULL */
    viz_weights *weights;           /* borrowed by submit, which takes its own reference */
} viz_sample_req;

typedef struct viz_worker viz_worker;

/* wake_type: SDL user event type pushed (code 1) when something changed.
 * mem_cap: bytes a run may keep. NULL if the thread cannot start. */
viz_worker *viz_worker_create(uint32_t wake_type, size_t mem_cap);
/* Abandons the current job and joins the thread. */
void viz_worker_destroy(viz_worker *w);

/* Queues req (replacing any queued one); returns its generation. */
uint64_t viz_worker_submit(viz_worker *w, const viz_sample_req *req);
/* Generation of the newest request. */
uint64_t viz_worker_generation(viz_worker *w);
/* A new reference to the latest run if its generation differs from have,
 * else NULL. */
viz_run *viz_worker_take(viz_worker *w, uint64_t have);
/* Acknowledges a wake event so the next change sends another. */
void viz_worker_ack(viz_worker *w);
/* What the thread is doing, one line ("loading models/mnist.bfn", "idle"). */
void viz_worker_status(viz_worker *w, char *buf, size_t cap);

#endif
