/* A frozen copy of a network's weights (the training thread's EMA weights at
 * one moment), shared by reference count between the training thread that
 * makes it, the UI that holds it and the sampling worker that loads it. */
#ifndef VIZ_WEIGHTS_H
#define VIZ_WEIGHTS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "bfn/net.h"

typedef struct {
    atomic_int refs;
    uint64_t id;             /* unique per snapshot of one training thread */
    bfn_net_config cfg;
    double beta1;            /* β(1) the weights are trained for */
    int64_t step;            /* training step they come from */
    char dataset[32];
    size_t count;
    float *params;           /* (count) */
} viz_weights;

/* Copies count floats from params. NULL if out of memory. */
viz_weights *viz_weights_create(uint64_t id, const bfn_net_config *cfg, double beta1,
                                int64_t step, const char *dataset, const float *params,
                                size_t count);
viz_weights *viz_weights_ref(viz_weights *w);
void viz_weights_unref(viz_weights *w);

#endif
