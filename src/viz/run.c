#include "run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/flow.h"
#include "viz.h"

int viz_run_slot_count(int n, int stride)
{
    return n / stride + (n % stride != 0) + 1;
}

int viz_run_plan_stride(int n, int cells, int D, size_t cap)
{
    size_t per_slot = (size_t)cells * D * VIZ_RUN_BYTES_PER_VALUE;
    for (int s = 1; s < n; s++)
        if ((size_t)viz_run_slot_count(n, s) * per_slot <= cap)
            return s;
    return n > 0 ? n : 1;
}

static viz_run *run_alloc(uint64_t gen, const viz_sample_params *sp)
{
    viz_run *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    atomic_init(&r->refs, 1);
    atomic_init(&r->ready, 0);
    atomic_init(&r->state, VIZ_RUN_SAMPLING);
    atomic_init(&r->frames_seen, 0);
    r->gen = gen;
    r->sp = *sp;
    r->cells = sp->grid * sp->grid;
    return r;
}

static void run_free(viz_run *r)
{
    free(r->slot_step);
    free(r->theta);
    free(r->p);
    free(r->y);
    free(r->k);
    free(r->ent);
    free(r->mean_ent);
    free(r->y_acc);
    free(r->scratch);
    free(r);
}

viz_run *viz_run_create(uint64_t gen, const viz_sample_params *sp, const viz_model_info *model,
                        size_t cap, char *msg, size_t msg_cap)
{
    viz_run *r = run_alloc(gen, sp);
    if (!r) {
        viz_fmt(msg, msg_cap, "out of memory");
        return NULL;
    }
    r->model = *model;
    r->D = model->H * model->W;
    r->stride = viz_run_plan_stride(sp->n, r->cells, r->D, cap);
    r->n_slots = viz_run_slot_count(sp->n, r->stride);
    size_t vals = (size_t)r->n_slots * r->cells * r->D;
    r->bytes = vals * VIZ_RUN_BYTES_PER_VALUE;
    /* calloc: pages are only committed as the slots fill */
    r->slot_step = calloc((size_t)r->n_slots, sizeof(int));
    r->theta = calloc(vals, sizeof(uint16_t));
    r->p = calloc(vals, sizeof(uint16_t));
    r->y = calloc(vals, sizeof(float));
    r->k = calloc(vals, 1);
    r->ent = calloc(vals, 1);
    r->mean_ent = calloc((size_t)r->n_slots, sizeof(float));
    r->y_acc = calloc((size_t)r->cells * r->D, sizeof(float));
    r->scratch = calloc((size_t)2 * model->K * r->D, sizeof(float));
    if (!r->slot_step || !r->theta || !r->p || !r->y || !r->k || !r->ent || !r->mean_ent ||
        !r->y_acc || !r->scratch) {
        viz_fmt(msg, msg_cap, "out of memory for %d steps of %d cells (%.0f MB)", sp->n, r->cells,
                r->bytes / 1e6);
        run_free(r);
        return NULL;
    }
    int s = 0;
    for (int i = r->stride; i <= sp->n; i += r->stride)
        r->slot_step[s++] = i;
    if (sp->n % r->stride)
        r->slot_step[s++] = sp->n;
    r->slot_step[s] = sp->n + 1;
    return r;
}

viz_run *viz_run_create_error(uint64_t gen, const viz_sample_params *sp, const char *msg)
{
    viz_run *r = run_alloc(gen, sp);
    if (!r)
        return NULL;
    viz_strcpy(r->error, sizeof r->error, msg);
    atomic_store_explicit(&r->state, VIZ_RUN_ERROR, memory_order_release);
    return r;
}

viz_run *viz_run_ref(viz_run *r)
{
    if (r)
        atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void viz_run_unref(viz_run *r)
{
    if (r && atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        run_free(r);
}

static uint16_t q16(float v)
{
    if (!(v > 0.0f))
        return 0;
    if (v >= 1.0f)
        return 65535;
    return (uint16_t)(v * 65535.0f + 0.5f);
}

int viz_run_record(viz_run *r, const bfn_sample_frame *f)
{
    atomic_fetch_add_explicit(&r->frames_seen, 1, memory_order_relaxed);
    const int D = r->D, K = f->K, zp = f->z_planes, pp = f->p_planes;
    const size_t CD = (size_t)r->cells * D;
    if (f->y)
        for (int c = 0; c < r->cells; c++) {
            const float *yc = f->y + ((size_t)c * zp + (zp - 1)) * D;
            float *acc = r->y_acc + (size_t)c * D;
            for (int j = 0; j < D; j++)
                acc[j] += yc[j];
        }
    int slot = atomic_load_explicit(&r->ready, memory_order_relaxed);
    if (slot >= r->n_slots || r->slot_step[slot] != f->step)
        return 0;
    float *th = r->scratch, *h = r->scratch + (size_t)K * D;
    const double inv_lnk = 1.0 / log((double)K);
    double ent_sum = 0;
    for (int c = 0; c < r->cells; c++) {
        const float *zc = f->z + (size_t)c * zp * D;
        bfn_theta(th, zc, D, K);
        bfn_entropy(h, zc, D, K);
        const float *thc = th + (size_t)(zp - 1) * D;
        const float *pc = f->p + ((size_t)c * pp + (pp - 1)) * D;
        const uint8_t *kc = f->k + (size_t)c * D;
        size_t o = (size_t)slot * CD + (size_t)c * D;
        for (int j = 0; j < D; j++) {
            r->theta[o + j] = q16(thc[j]);
            r->p[o + j] = q16(pc[j]);
            r->k[o + j] = kc[j];
            double e = h[j] * inv_lnk * 255.0 + 0.5;
            r->ent[o + j] = (uint8_t)(e < 0 ? 0 : e > 255 ? 255 : e);
            ent_sum += h[j];
        }
    }
    memcpy(r->y + (size_t)slot * CD, r->y_acc, CD * sizeof(float));
    memset(r->y_acc, 0, CD * sizeof(float));
    r->mean_ent[slot] = (float)(ent_sum / (double)CD);
    if (slot == 0)
        r->t_first = viz_now();
    atomic_store_explicit(&r->ready, slot + 1, memory_order_release);
    return 1;
}

void viz_run_finish(viz_run *r, viz_run_state st, const char *msg, double now)
{
    if (msg)
        viz_strcpy(r->error, sizeof r->error, msg);
    r->t_done = now;
    atomic_store_explicit(&r->state, st, memory_order_release);
}

float viz_run_entropy(const viz_run *r, int slot, int cell, int px)
{
    return r->ent[viz_run_at(r, slot, cell, px)] * (float)(log((double)r->model.K) / 255.0);
}

int viz_run_slot_at_step(const viz_run *r, int step)
{
    int lo = -1;
    for (int s = 0; s < r->n_slots && r->slot_step[s] <= step; s++)
        lo = s;
    return lo;
}
