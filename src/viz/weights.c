#include "weights.h"

#include <stdlib.h>
#include <string.h>

#include "viz.h"

viz_weights *viz_weights_create(uint64_t id, const bfn_net_config *cfg, double beta1,
                                int64_t step, const char *dataset, const float *params,
                                size_t count)
{
    viz_weights *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->params = malloc(count * sizeof(float));
    if (!w->params) {
        free(w);
        return NULL;
    }
    memcpy(w->params, params, count * sizeof(float));
    atomic_init(&w->refs, 1);
    w->id = id;
    w->cfg = *cfg;
    w->beta1 = beta1;
    w->step = step;
    w->count = count;
    viz_strcpy(w->dataset, sizeof w->dataset, dataset);
    return w;
}

viz_weights *viz_weights_ref(viz_weights *w)
{
    if (w)
        atomic_fetch_add_explicit(&w->refs, 1, memory_order_relaxed);
    return w;
}

void viz_weights_unref(viz_weights *w)
{
    if (w && atomic_fetch_sub_explicit(&w->refs, 1, memory_order_acq_rel) == 1) {
        free(w->params);
        free(w);
    }
}
