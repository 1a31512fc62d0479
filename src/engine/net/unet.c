/* The U-Net assembled from the layers in layers.h (architecture: see net.h).
 *
 * bfn_net_create walks the architecture once and records a flat list of ops
 * (conv, residual block, attention, upsample, concat) between "streams": the
 * tensors that flow between ops, each with an activation and a gradient
 * buffer for max_batch images. Inside residual blocks and the output head
 * only what cannot be cheaply recomputed is kept (conv1 output, GroupNorm
 * statistics, dropout masks); the SiLU outputs fed to the convs are
 * recomputed in backward into per-thread scratch.
 *
 * Execution is image by image: no op mixes images, so a thread takes one
 * image and runs the whole op list on it (forward), or the list in reverse
 * (backward), with every intermediate of one image small enough to stay in
 * cache. Threads claim images one at a time; when there are fewer images
 * than threads (batch 1 inference), all threads work on each image
 * together (see team below). Each op is cut into the same fixed pieces
 * (conv output row ranges, GroupNorm groups, attention heads, channel
 * blocks) in both cases, so every image's numbers come from the same
 * operations in the same order and logits do not depend on the batch or
 * the thread count. The threads are the net's own (pool.c), as many as
 * bfn_net_set_threads or else bfn_gemm_set_threads allows, with BLAS
 * single-threaded meanwhile (a serial section, gemm.c, so that nets in
 * several threads at once never fight over BLAS's process-wide count).
 *
 * Backward: gradients of a stream are accumulated by its readers in reverse
 * order; the first of them writes instead of adding, so nothing is zeroed
 * up front. Parameter gradients are summed over images in a fixed order:
 * the batch is cut into at most NET_SHARDS contiguous shards (by batch size
 * only), each shard adds its images in order into its own gradient array
 * (shard 0 straight into the net's; conv weights that the direct dW kernel
 * handles go to a transposed array per shard, which that kernel adds to
 * with whole vectors), and the shard arrays are then added in shard order,
 * so training too is independent of the thread count.
 *
 * Parameter tensors, in this order in the flat array (l = level, r = block):
 *   temb.lin1.{weight,bias} (D, D), (D); temb.lin2.{weight,bias}
 *   conv_in.{weight,bias} (C0, in_ch + 1, 3, 3)
 *   for l = 0 .. L-1:
 *     for r < n_res: down.l.res.r.*, then down.l.attn.r.* at the levels with attention
 *     down.l.downsample.{weight,bias} (C, C, 3, 3), stride 2, except at l = L-1
 *   mid.res.0.*, mid.attn.*, mid.res.1.*
 *   for l = L-1 .. 0:
 *     for r < n_res + 1: up.l.res.r.*, then up.l.attn.r.* at the levels with attention
 *     up.l.upsample.{weight,bias} (C, C, 3, 3) after nearest 2x, except at l = 0
 *   out.norm.{weight,bias}, out.conv.{weight,bias} (out_ch, C0, 3, 3)
 * with res.* = norm1.{weight,bias} (cin), conv1.{weight,bias} (cout, cin, 3, 3),
 *   temb.{weight,bias} (cout, D), norm2.{weight,bias} (cout),
 *   conv2.{weight,bias} (cout, cout, 3, 3), and skip.{weight,bias}
 *   (cout, cin, 1, 1) only when cin != cout;
 * attn.* = norm.{weight,bias} (C), qkv.{weight,bias} (3C, C, 1, 1),
 *   proj.{weight,bias} (C, C, 1, 1).
 * Up-path blocks read concat(previous output, skip) in that channel order;
 * skips are popped last-in first-out. The levels with attention are the
 * lowest attn_levels ones (l >= L - attn_levels), and the middle has it when
 * attn_levels >= 1; with attn_levels = 0 there is no attention anywhere (the
 * middle is two residual blocks).
 *
 * Initialisation: conv and linear weights U(−a, a) with a = √(3 / fan_in)
 * (unit-gain Kaiming-uniform: variance 1/fan_in), biases 0, GroupNorm γ = 1,
 * β = 0; zero weights for every residual block's conv2, every attention proj
 * and the output conv, so each block starts as its skip path and the initial
 * logits are exactly 0 (Ho et al. 2020, DDPM). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bfn/gemm.h"
#include "bfn/net.h"
#include "net/layers.h"
#include "net/pool.h"
#include "net/vec.h"

#define NET_SHARDS 8  /* most gradient shards of a batch */

typedef struct {
    int c, h, w;
    size_t act, grad; /* offsets into net->act and net->dact, (max_batch, c, h, w) */
    size_t ld;        /* floats from one image's values to the next's in act: c·h·w, or
                       * the concatenation's when the stream lives inside one (act then
                       * points into it, and the block add_stream took stays unused) */
} stream;

typedef struct {
    bfn_conv2d_shape s;
    size_t w, b; /* parameter offsets */
    size_t wt;   /* offset of the flipped kernel in net->wt (transposable convs) */
    int dwt_on;  /* 1: backward sums dW transposed, at dwt in each shard's dwᵀ array */
    size_t dwt;
    int cv_on;   /* 1: batched forwards use the channel-vector kernel, wᵀ at wcv in net->wcv */
    size_t wcv;
    int cvt_on;  /* 1: the backward's din too (the flipped kernel's transpose at wcvt) */
    size_t wcvt;
    int up_on;   /* 1: conv of a 2x upsampled stream; inference runs both as four 2x2 convs */
    int up_in;   /* on the stream before upsampling, from summed weights at wup in net->wcv */
    size_t wup;
} conv_rec;

typedef struct {
    int cin, cout, hw;
    size_t norm1_w, norm1_b, temb_w, temb_b, norm2_w, norm2_b; /* parameter offsets */
    conv_rec conv1, conv2, skip;   /* skip.s.cout == 0: identity skip */
    size_t mean1, rstd1, mean2, rstd2; /* (B, groups) activation offsets */
    size_t h1;                     /* (B, cout, hw) conv1 output + time projection */
    size_t mask;                   /* (B, cout, hw) offset into net->masks */
} res_rec;

typedef struct {
    bfn_attn_shape s;
    size_t norm_w, norm_b, qkv_w, qkv_b, proj_w, proj_b; /* parameter offsets */
    size_t mean, rstd, qkv, att, o;                      /* activation offsets */
} attn_rec;

typedef enum { OP_CONV, OP_RES, OP_ATTN, OP_UPSAMPLE, OP_CONCAT } op_kind;

typedef struct {
    op_kind kind;
    int in, in2, out; /* stream ids; in2 is the skip input of a concat */
    int first_in, first_in2; /* 1: first (in backward order) to write that stream's gradient */
    int fused;    /* an upsample that inference leaves to the next conv (its up_on) */
    union {
        conv_rec conv;
        res_rec res;
        attn_rec attn;
    } u;
} op;

enum { INIT_ZERO, INIT_ONE, INIT_UNIFORM };

typedef struct {
    bfn_tensor_info info;
    char name[64];
    int init, fan_in;
} tensor_rec;

struct bfn_net {
    bfn_net_config cfg;
    int max_batch, in_ch, out_ch;
    int build_failed; /* an allocation failed while recording the architecture */

    tensor_rec *tensors;
    int n_tensors, cap_tensors;
    size_t n_params;
    float *params, *grads;

    op *ops;
    int n_ops, cap_ops;
    stream *streams;
    int n_streams, cap_streams;
    int head_in; /* stream read by the output head */

    size_t n_act, n_dact, n_mask;
    float *act;     /* saved activations and stream values */
    float *dact;    /* stream gradients */
    uint8_t *masks; /* dropout masks */

    /* time embedding (D = temb_dim) */
    size_t temb_w1, temb_b1, temb_w2, temb_b2; /* parameter offsets */
    size_t t_sin, t_m1, t_a1, t_m2, t_e;       /* (B, D) activation offsets */
    size_t t_de;                               /* (B, D) offset into dact */

    /* output head */
    size_t out_norm_w, out_norm_b, out_mean, out_rstd;
    conv_rec out_conv;

    /* per-thread scratch for one image: s1..s3 (max width, hw) each, col
     * the largest conv column matrix, aws the attention workspace, sp and
     * dsp (max width) */
    size_t n_s, n_col, n_aws, n_sp, n_scratch;
    size_t n_piece_ws; /* col block of one conv piece (the largest) */
    float **scratch; /* n_threads blocks of n_scratch floats */
    int n_threads;
    float *temb_ws;  /* bfn_temb_workspace(max_batch, D) */

    size_t n_wt;
    float *wt;      /* flipped kernels of the transposable convs, for backward */
    size_t n_wcv;
    float *wcv;     /* wᵀ of the channel-vector convs, for batched forwards, and the
                     * summed phase weights of the upsampling convs (up_on) */
    int n_up;       /* convs with up_on */
    int fresh_cv, fresh_up; /* 1: wcv holds the wᵀ / phase weights of the current params
                             * (cleared by bfn_net_params and bfn_net_init_params) */
    float *gpart;   /* gradient arrays of shards 1.. (lazily allocated) */
    int n_gpart;
    size_t n_dwt;
    float *dwt;     /* per shard, the dWᵀ of the convs with dwt_on (lazily allocated) */
    const conv_rec **convs; /* every conv, for the per-backward passes over them */
    int n_convs;
    atomic_int *team_ctr; /* stage counters of shared forwards (lazily allocated) */
    size_t n_team_ctr;
    bfn_pool *pool;
    int threads; /* bfn_net_set_threads; 0: bfn_gemm_threads() at each call */

    double flops; /* multiply-adds per image */
    int last_B, last_training;
    bfn_err err;
};

static inline float *PAR(bfn_net *n, size_t off) { return n->params + off; }
static inline float *GRD(bfn_net *n, size_t off) { return n->grads + off; }
static inline float *DACT(bfn_net *n, size_t off) { return n->dact + off; }

static size_t take(size_t *count, size_t n)
{
    size_t off = *count;
    *count += n;
    return off;
}

static void grow_max(size_t *v, size_t n)
{
    if (n > *v)
        *v = n;
}

/* ---- recording the architecture ---- */

static size_t add_param(bfn_net *n, int init, int fan_in, int decay, int ndim, int s0, int s1,
                        int s2, int s3, const char *fmt, ...) __attribute__((format(printf, 10, 11)));

static size_t add_param(bfn_net *n, int init, int fan_in, int decay, int ndim, int s0, int s1,
                        int s2, int s3, const char *fmt, ...)
{
    int shape[4] = {s0, s1, s2, s3};
    size_t size = 1;
    for (int i = 0; i < ndim; i++)
        size *= (size_t)shape[i];
    size_t off = take(&n->n_params, size);
    if (n->n_tensors == n->cap_tensors) {
        int cap = n->cap_tensors ? 2 * n->cap_tensors : 64;
        tensor_rec *t = realloc(n->tensors, sizeof *t * cap);
        if (!t) {
            n->build_failed = 1;
            return off;
        }
        n->tensors = t;
        n->cap_tensors = cap;
    }
    tensor_rec *t = &n->tensors[n->n_tensors++];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->info.offset = off;
    t->info.ndim = ndim;
    for (int i = 0; i < 4; i++)
        t->info.shape[i] = i < ndim ? shape[i] : 0;
    t->info.decay = decay;
    t->init = init;
    t->fan_in = fan_in;
    return off;
}

static int add_stream(bfn_net *n, int c, int h, int w)
{
    if (n->n_streams == n->cap_streams) {
        int cap = n->cap_streams ? 2 * n->cap_streams : 32;
        stream *s = realloc(n->streams, sizeof *s * cap);
        if (!s) {
            n->build_failed = 1;
            return 0;
        }
        n->streams = s;
        n->cap_streams = cap;
    }
    size_t sz = (size_t)n->max_batch * c * h * w;
    stream *s = &n->streams[n->n_streams];
    s->c = c;
    s->h = h;
    s->w = w;
    s->act = take(&n->n_act, sz);
    s->ld = (size_t)c * h * w;
    s->grad = take(&n->n_dact, sz);
    return n->n_streams++;
}

/* Appends an op reading `in` (and `in2`) and writing `out`; NULL when out of
 * memory (build_failed is then set). */
static op *add_op(bfn_net *n, op_kind kind, int in, int in2, int out)
{
    if (n->n_ops == n->cap_ops) {
        int cap = n->cap_ops ? 2 * n->cap_ops : 32;
        op *o = realloc(n->ops, sizeof *o * cap);
        if (!o) {
            n->build_failed = 1;
            return NULL;
        }
        n->ops = o;
        n->cap_ops = cap;
    }
    op *o = &n->ops[n->n_ops++];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->in = in;
    o->in2 = in2;
    o->out = out;
    return o;
}

static conv_rec make_conv(bfn_net *n, int cin, int h, int w, int cout, int k, int stride,
                          int zero, const char *prefix)
{
    conv_rec c;
    c.s = (bfn_conv2d_shape){.cin = cin, .h = h, .w = w, .cout = cout, .k = k, .stride = stride,
                             .pad = k / 2};
    c.w = add_param(n, zero ? INIT_ZERO : INIT_UNIFORM, cin * k * k, 1, 4, cout, cin, k, k,
                    "%s.weight", prefix);
    c.b = add_param(n, INIT_ZERO, 0, 0, 1, cout, 0, 0, 0, "%s.bias", prefix);
    grow_max(&n->n_col, bfn_conv2d_col_size(&c.s));
    grow_max(&n->n_piece_ws, bfn_conv2d_piece_ws(&c.s));
    c.dwt_on = bfn_convk_dw_supported(&c.s);
    c.dwt = c.dwt_on ? take(&n->n_dwt, (size_t)cout * cin * k * k) : 0;
    c.wt = take(&n->n_wt, bfn_conv2d_flipped_size(&c.s));
    c.cv_on = bfn_convk_cv_supported(&c.s);
    c.wcv = c.cv_on ? take(&n->n_wcv, (size_t)cout * cin * k * k) : 0;
    bfn_conv2d_shape t = bfn_conv2d_transposed(&c.s);
    /* the backward's input gradient through the channel-vector kernel only on
     * whole 64-channel tiles: the narrower tiles measured slower there */
    c.cvt_on = bfn_conv2d_transposable(&c.s) && bfn_convk_cv_supported(&t) && t.cout % 64 == 0;
    c.wcvt = c.cvt_on ? take(&n->n_wcv, (size_t)cout * cin * k * k) : 0;
    c.up_on = 0;
    c.up_in = -1;
    c.wup = 0;
    n->flops += (double)cout * cin * k * k * bfn_conv2d_out_h(&c.s) * bfn_conv2d_out_w(&c.s);
    return c;
}

static int add_conv(bfn_net *n, int in, int cout, int k, int stride, const char *prefix)
{
    if (n->build_failed)
        return 0;
    stream x = n->streams[in];
    conv_rec c = make_conv(n, x.c, x.h, x.w, cout, k, stride, 0, prefix);
    int out = add_stream(n, cout, bfn_conv2d_out_h(&c.s), bfn_conv2d_out_w(&c.s));
    op *o = add_op(n, OP_CONV, in, -1, out);
    if (o)
        o->u.conv = c;
    return out;
}

static int add_res(bfn_net *n, int in, int cout, const char *pre)
{
    if (n->build_failed)
        return 0;
    char name[64];
    stream x = n->streams[in];
    int cin = x.c, hw = x.h * x.w, D = n->cfg.temb_dim, G = n->cfg.groups;
    size_t B = (size_t)n->max_batch;
    res_rec r;
    memset(&r, 0, sizeof r);
    r.cin = cin;
    r.cout = cout;
    r.hw = hw;
    r.norm1_w = add_param(n, INIT_ONE, 0, 0, 1, cin, 0, 0, 0, "%s.norm1.weight", pre);
    r.norm1_b = add_param(n, INIT_ZERO, 0, 0, 1, cin, 0, 0, 0, "%s.norm1.bias", pre);
    snprintf(name, sizeof name, "%s.conv1", pre);
    r.conv1 = make_conv(n, cin, x.h, x.w, cout, 3, 1, 0, name);
    r.temb_w = add_param(n, INIT_UNIFORM, D, 1, 2, cout, D, 0, 0, "%s.temb.weight", pre);
    r.temb_b = add_param(n, INIT_ZERO, 0, 0, 1, cout, 0, 0, 0, "%s.temb.bias", pre);
    r.norm2_w = add_param(n, INIT_ONE, 0, 0, 1, cout, 0, 0, 0, "%s.norm2.weight", pre);
    r.norm2_b = add_param(n, INIT_ZERO, 0, 0, 1, cout, 0, 0, 0, "%s.norm2.bias", pre);
    snprintf(name, sizeof name, "%s.conv2", pre);
    r.conv2 = make_conv(n, cout, x.h, x.w, cout, 3, 1, 1, name);
    if (cin != cout) {
        snprintf(name, sizeof name, "%s.skip", pre);
        r.skip = make_conv(n, cin, x.h, x.w, cout, 1, 1, 0, name);
    }
    n->flops += (double)D * cout;
    r.mean1 = take(&n->n_act, B * G);
    r.rstd1 = take(&n->n_act, B * G);
    r.mean2 = take(&n->n_act, B * G);
    r.rstd2 = take(&n->n_act, B * G);
    r.h1 = take(&n->n_act, B * cout * hw);
    if (n->cfg.dropout > 0.0f)
        r.mask = take(&n->n_mask, B * cout * hw);
    grow_max(&n->n_s, (size_t)(cin > cout ? cin : cout) * hw);
    grow_max(&n->n_sp, (size_t)cout);
    int out = add_stream(n, cout, x.h, x.w);
    op *o = add_op(n, OP_RES, in, -1, out);
    if (o)
        o->u.res = r;
    return out;
}

static int add_attn(bfn_net *n, int in, const char *pre)
{
    if (n->build_failed)
        return 0;
    stream x = n->streams[in];
    int C = x.c, hw = x.h * x.w;
    size_t B = (size_t)n->max_batch;
    attn_rec t;
    t.s = (bfn_attn_shape){.C = C, .HW = hw, .heads = n->cfg.n_heads, .groups = n->cfg.groups};
    t.norm_w = add_param(n, INIT_ONE, 0, 0, 1, C, 0, 0, 0, "%s.norm.weight", pre);
    t.norm_b = add_param(n, INIT_ZERO, 0, 0, 1, C, 0, 0, 0, "%s.norm.bias", pre);
    t.qkv_w = add_param(n, INIT_UNIFORM, C, 1, 4, 3 * C, C, 1, 1, "%s.qkv.weight", pre);
    t.qkv_b = add_param(n, INIT_ZERO, 0, 0, 1, 3 * C, 0, 0, 0, "%s.qkv.bias", pre);
    t.proj_w = add_param(n, INIT_ZERO, C, 1, 4, C, C, 1, 1, "%s.proj.weight", pre);
    t.proj_b = add_param(n, INIT_ZERO, 0, 0, 1, C, 0, 0, 0, "%s.proj.bias", pre);
    t.mean = take(&n->n_act, B * t.s.groups);
    t.rstd = take(&n->n_act, B * t.s.groups);
    t.qkv = take(&n->n_act, B * 3 * C * hw);
    t.att = take(&n->n_act, B * t.s.heads * hw * hw);
    t.o = take(&n->n_act, B * C * hw);
    grow_max(&n->n_aws, bfn_attention_workspace(1, &t.s));
    n->flops += 4.0 * C * C * hw + 2.0 * hw * hw * C; /* qkv + proj convs, QᵀK and PV */
    int out = add_stream(n, C, x.h, x.w);
    op *o = add_op(n, OP_ATTN, in, -1, out);
    if (o)
        o->u.attn = t;
    return out;
}

static int add_upsample(bfn_net *n, int in)
{
    if (n->build_failed)
        return 0;
    stream x = n->streams[in];
    int out = add_stream(n, x.c, 2 * x.h, 2 * x.w);
    add_op(n, OP_UPSAMPLE, in, -1, out);
    return out;
}

/* Upsampling 2x then a 3x3 conv: at inference, where the kernels allow,
 * the conv reads the small stream through four 2x2 phase convs and the
 * upsampled stream is not written. */
static int add_upconv(bfn_net *n, int in, int cout, const char *prefix)
{
    int up = add_upsample(n, in);
    int out = add_conv(n, up, cout, 3, 1, prefix);
    if (n->build_failed)
        return out;
    op *u = &n->ops[n->n_ops - 2];
    conv_rec *c = &n->ops[n->n_ops - 1].u.conv;
    if (bfn_convk_up_supported(&c->s)) {
        c->up_on = 1;
        c->up_in = in;
        c->wup = take(&n->n_wcv, bfn_convk_up_weights_size(&c->s));
        grow_max(&n->n_piece_ws, bfn_convk_up_workspace(&c->s));
        u->fused = 1;
        n->n_up++;
    }
    return out;
}

/* The concatenation's inputs live inside it (its channels [0, a.c) and
 * [a.c, a.c + b.c) of every image), so the ops that write them write the
 * concatenation and its forward copies nothing. Each stream is an input of
 * at most one concatenation (the decoder's own and the encoder's skips,
 * each used once), and never the output of one. Their gradients stay
 * separate arrays. */
static int add_concat(bfn_net *n, int a, int b)
{
    if (n->build_failed)
        return 0;
    stream x = n->streams[a];
    int out = add_stream(n, x.c + n->streams[b].c, x.h, x.w);
    if (n->build_failed)
        return out;
    stream *so = &n->streams[out], *sa = &n->streams[a], *sb = &n->streams[b];
    sa->act = so->act;
    sb->act = so->act + (size_t)sa->c * sa->h * sa->w;
    sa->ld = sb->ld = so->ld;
    add_op(n, OP_CONCAT, a, b, out);
    return out;
}

static void build(bfn_net *n)
{
    const bfn_net_config *c = &n->cfg;
    int L = c->n_levels, D = c->temb_dim, G = c->groups, attn_from = L - c->attn_levels;
    size_t B = (size_t)n->max_batch;

    n->temb_w1 = add_param(n, INIT_UNIFORM, D, 1, 2, D, D, 0, 0, "temb.lin1.weight");
    n->temb_b1 = add_param(n, INIT_ZERO, 0, 0, 1, D, 0, 0, 0, "temb.lin1.bias");
    n->temb_w2 = add_param(n, INIT_UNIFORM, D, 1, 2, D, D, 0, 0, "temb.lin2.weight");
    n->temb_b2 = add_param(n, INIT_ZERO, 0, 0, 1, D, 0, 0, 0, "temb.lin2.bias");
    n->t_sin = take(&n->n_act, B * D);
    n->t_m1 = take(&n->n_act, B * D);
    n->t_a1 = take(&n->n_act, B * D);
    n->t_m2 = take(&n->n_act, B * D);
    n->t_e = take(&n->n_act, B * D);
    n->t_de = take(&n->n_dact, B * D);
    n->flops += 2.0 * D * D;

    int xin = add_stream(n, n->in_ch + 1, c->H, c->W); /* stream 0: x and the t plane */
    int cur = add_conv(n, xin, c->base_ch, 3, 1, "conv_in");
    int skips[1 + BFN_NET_MAX_LEVELS * (BFN_NET_MAX_RES + 1)], n_skips = 0;
    char pre[48];
    skips[n_skips++] = cur;
    for (int l = 0; l < L; l++) {
        int ch = c->base_ch * c->ch_mult[l];
        for (int r = 0; r < c->n_res; r++) {
            snprintf(pre, sizeof pre, "down.%d.res.%d", l, r);
            cur = add_res(n, cur, ch, pre);
            if (l >= attn_from) {
                snprintf(pre, sizeof pre, "down.%d.attn.%d", l, r);
                cur = add_attn(n, cur, pre);
            }
            skips[n_skips++] = cur;
        }
        if (l != L - 1) {
            snprintf(pre, sizeof pre, "down.%d.downsample", l);
            cur = add_conv(n, cur, ch, 3, 2, pre);
            skips[n_skips++] = cur;
        }
    }
    int low = c->base_ch * c->ch_mult[L - 1];
    cur = add_res(n, cur, low, "mid.res.0");
    if (c->attn_levels)
        cur = add_attn(n, cur, "mid.attn");
    cur = add_res(n, cur, low, "mid.res.1");
    for (int l = L - 1; l >= 0; l--) {
        int ch = c->base_ch * c->ch_mult[l];
        for (int r = 0; r < c->n_res + 1; r++) {
            cur = add_concat(n, cur, skips[--n_skips]);
            snprintf(pre, sizeof pre, "up.%d.res.%d", l, r);
            cur = add_res(n, cur, ch, pre);
            if (l >= attn_from) {
                snprintf(pre, sizeof pre, "up.%d.attn.%d", l, r);
                cur = add_attn(n, cur, pre);
            }
        }
        if (l != 0) {
            snprintf(pre, sizeof pre, "up.%d.upsample", l);
            cur = add_upconv(n, cur, ch, pre);
        }
    }

    if (n->build_failed)
        return;
    stream x = n->streams[cur];
    n->head_in = cur;
    n->out_norm_w = add_param(n, INIT_ONE, 0, 0, 1, x.c, 0, 0, 0, "out.norm.weight");
    n->out_norm_b = add_param(n, INIT_ZERO, 0, 0, 1, x.c, 0, 0, 0, "out.norm.bias");
    n->out_conv = make_conv(n, x.c, x.h, x.w, n->out_ch, 3, 1, 1, "out.conv");
    n->out_mean = take(&n->n_act, B * G);
    n->out_rstd = take(&n->n_act, B * G);
    grow_max(&n->n_s, (size_t)x.c * x.h * x.w);

    /* the last reader of a stream in forward order is the first writer of
     * its gradient in backward order */
    for (int i = 0; i < n->n_ops; i++) {
        op *o = &n->ops[i];
        o->first_in = o->first_in2 = 1;
        for (int j = i + 1; j < n->n_ops; j++) {
            const op *q = &n->ops[j];
            if (q->in == o->in || (q->kind == OP_CONCAT && q->in2 == o->in))
                o->first_in = 0;
            if (o->kind == OP_CONCAT && (q->in == o->in2 || (q->kind == OP_CONCAT && q->in2 == o->in2)))
                o->first_in2 = 0;
        }
    }
}

/* ---- lifetime and accessors ---- */

/* n->convs: the output conv, then the ops' convs in order. */
static bfn_status list_convs(bfn_net *n)
{
    n->convs = malloc(sizeof *n->convs * (3 * (size_t)n->n_ops + 1));
    if (!n->convs)
        return BFN_ERR_NOMEM;
    n->convs[n->n_convs++] = &n->out_conv;
    for (int i = 0; i < n->n_ops; i++) {
        const op *o = &n->ops[i];
        if (o->kind == OP_CONV) {
            n->convs[n->n_convs++] = &o->u.conv;
        } else if (o->kind == OP_RES) {
            n->convs[n->n_convs++] = &o->u.res.conv1;
            n->convs[n->n_convs++] = &o->u.res.conv2;
            if (o->u.res.skip.s.cout)
                n->convs[n->n_convs++] = &o->u.res.skip;
        }
    }
    return BFN_OK;
}

/* Scratch for `want` threads (kept once allocated); returns how many
 * threads have scratch, which may be fewer when memory runs out. */
static int ensure_scratch(bfn_net *n, int want)
{
    if (want <= n->n_threads)
        return want;
    float **s = realloc(n->scratch, sizeof *s * want);
    if (!s)
        return n->n_threads;
    n->scratch = s;
    while (n->n_threads < want) {
        float *b = calloc(n->n_scratch ? n->n_scratch : 1, sizeof(float));
        if (!b)
            break;
        s[n->n_threads++] = b;
    }
    return n->n_threads;
}

bfn_status bfn_net_config_param_count(const bfn_net_config *cfg, size_t *count, bfn_err *err)
{
    if (count)
        *count = 0;
    if (!count)
        return bfn_err_set(err, BFN_ERR_ARG, "bfn_net_config_param_count: count is NULL");
    bfn_status st = bfn_net_config_check(cfg, err);
    if (st != BFN_OK)
        return st;
    /* the same walk as bfn_net_create, which only records offsets; the
     * arrays it fills grow with the number of layers, not their sizes */
    bfn_net *n = calloc(1, sizeof *n);
    if (!n)
        return bfn_err_set(err, BFN_ERR_NOMEM, "bfn_net_config_param_count: out of memory");
    n->cfg = *cfg;
    n->max_batch = 1;
    n->in_ch = bfn_net_in_channels(cfg->K);
    n->out_ch = bfn_net_out_channels(cfg->K);
    build(n);
    int failed = n->build_failed;
    *count = n->n_params;
    bfn_net_destroy(n);
    if (failed) {
        *count = 0;
        return bfn_err_set(err, BFN_ERR_NOMEM, "bfn_net_config_param_count: out of memory");
    }
    return BFN_OK;
}

bfn_status bfn_net_create(bfn_net **out, const bfn_net_config *cfg, int max_batch, bfn_err *err)
{
    if (!out)
        return bfn_err_set(err, BFN_ERR_ARG, "bfn_net_create: out is NULL");
    *out = NULL;
    bfn_status st = bfn_net_config_check(cfg, err);
    if (st != BFN_OK)
        return st;
    if (max_batch < 1 || max_batch > 65536)
        return bfn_err_set(err, BFN_ERR_ARG, "bfn_net_create: max_batch = %d, must be in [1, 65536]",
                           max_batch);
    bfn_net *n = calloc(1, sizeof *n);
    if (!n)
        return bfn_err_set(err, BFN_ERR_NOMEM, "bfn_net_create: out of memory");
    n->cfg = *cfg;
    n->max_batch = max_batch;
    n->in_ch = bfn_net_in_channels(cfg->K);
    n->out_ch = bfn_net_out_channels(cfg->K);
    build(n);
    /* s1..s3, col, aws, sp and dsp of one thread; piece q of any conv uses
     * col block q, so the two convs of one stage never share a block */
    grow_max(&n->n_col, 2 * n->n_piece_ws);
    n->n_scratch = 3 * n->n_s + n->n_col + n->n_aws + 2 * n->n_sp;
    if (!n->build_failed) {
        n->params = calloc(n->n_params, sizeof(float));
        n->grads = calloc(n->n_params, sizeof(float));
        n->act = calloc(n->n_act, sizeof(float));
        n->dact = calloc(n->n_dact, sizeof(float));
        n->masks = calloc(n->n_mask ? n->n_mask : 1, 1);
        n->wt = calloc(n->n_wt ? n->n_wt : 1, sizeof(float));
        n->wcv = calloc(n->n_wcv ? n->n_wcv : 1, sizeof(float));
        n->temb_ws = calloc(bfn_temb_workspace(max_batch, cfg->temb_dim), sizeof(float));
        n->pool = bfn_pool_create();
    }
    if (n->build_failed || !n->params || !n->grads || !n->act || !n->dact || !n->masks ||
        !n->wt || !n->wcv || !n->temb_ws || !n->pool || ensure_scratch(n, 1) < 1) {
        double mb =
            (2.0 * n->n_params + n->n_act + n->n_dact + n->n_wt + n->n_wcv + n->n_scratch) * 4 / 1e6;
        bfn_net_destroy(n);
        return bfn_err_set(err, BFN_ERR_NOMEM,
                           "bfn_net_create: cannot allocate %.0f MB for max_batch %d", mb,
                           max_batch);
    }
    for (int i = 0; i < n->n_tensors; i++)
        n->tensors[i].info.name = n->tensors[i].name;
    if (list_convs(n) != BFN_OK) {
        bfn_net_destroy(n);
        return bfn_err_set(err, BFN_ERR_NOMEM, "bfn_net_create: out of memory");
    }
    bfn_net_init_params(n, 0);
    bfn_err_clear(&n->err);
    *out = n;
    return BFN_OK;
}

void bfn_net_destroy(bfn_net *n)
{
    if (!n)
        return;
    bfn_pool_destroy(n->pool);
    for (int i = 0; i < n->n_threads; i++)
        free(n->scratch[i]);
    free(n->scratch);
    free(n->tensors);
    free(n->params);
    free(n->grads);
    free(n->ops);
    free(n->streams);
    free(n->act);
    free(n->dact);
    free(n->masks);
    free(n->wt);
    free(n->wcv);
    free(n->temb_ws);
    free(n->gpart);
    free(n->dwt);
    free(n->convs);
    free(n->team_ctr);
    free(n);
}

const bfn_net_config *bfn_net_get_config(const bfn_net *n) { return &n->cfg; }
int bfn_net_max_batch(const bfn_net *n) { return n->max_batch; }
size_t bfn_net_param_count(const bfn_net *n) { return n->n_params; }
float *bfn_net_params(bfn_net *n)
{
    n->fresh_cv = n->fresh_up = 0; /* the caller may write them */
    return n->params;
}
float *bfn_net_grads(bfn_net *n) { return n->grads; }
int bfn_net_tensor_count(const bfn_net *n) { return n->n_tensors; }
double bfn_net_flops_per_image(const bfn_net *n) { return n->flops; }
const char *bfn_net_last_error(const bfn_net *n) { return n->err.msg; }

void bfn_net_zero_grads(bfn_net *n)
{
    memset(n->grads, 0, sizeof(float) * n->n_params);
}

const bfn_tensor_info *bfn_net_tensor(const bfn_net *n, int i)
{
    if (i < 0 || i >= n->n_tensors)
        return NULL;
    return &n->tensors[i].info;
}

static size_t tensor_elems(const bfn_tensor_info *t)
{
    size_t size = 1;
    for (int d = 0; d < t->ndim; d++)
        size *= (size_t)t->shape[d];
    return size;
}

void bfn_net_init_params(bfn_net *n, uint64_t seed)
{
    bfn_rng root;
    bfn_rng_init(&root, seed, 0x6E6574696E6974ULL /* "netinit" */);
    n->fresh_cv = n->fresh_up = 0;
    for (int i = 0; i < n->n_tensors; i++) {
        const tensor_rec *t = &n->tensors[i];
        size_t size = tensor_elems(&t->info);
        float *p = n->params + t->info.offset;
        /* each tensor its own stream, so adding a tensor never shifts the others */
        bfn_rng r = bfn_rng_fork(&root, (uint64_t)i);
        double a = t->init == INIT_UNIFORM ? sqrt(3.0 / t->fan_in) : 0.0;
        for (size_t j = 0; j < size; j++)
            p[j] = t->init == INIT_ONE ? 1.0f
                 : t->init == INIT_ZERO ? 0.0f
                                        : (float)(a * (2.0 * bfn_rng_uniform(&r) - 1.0));
    }
}

static const bfn_tensor_info *tensor_named(const bfn_net *n, const char *name)
{
    for (int i = 0; i < n->n_tensors; i++)
        if (!strcmp(n->tensors[i].info.name, name))
            return &n->tensors[i].info;
    return NULL;
}

bfn_status bfn_net_copy_params(bfn_net *dst, const bfn_net *src, int *kept, bfn_err *err)
{
    const bfn_net_config *a = &dst->cfg, *b = &src->cfg;
    if (a->K != b->K || a->H != b->H || a->W != b->W)
        return bfn_err_set(err, BFN_ERR_MISMATCH,
                           "cannot copy weights of a K = %d %dx%d network into a K = %d %dx%d one",
                           b->K, b->H, b->W, a->K, a->H, a->W);
    /* every tensor checked before any is written */
    for (int i = 0; i < src->n_tensors; i++) {
        const bfn_tensor_info *s = &src->tensors[i].info, *d = tensor_named(dst, s->name);
        if (!d)
            return bfn_err_set(err, BFN_ERR_MISMATCH,
                               "the new network has no tensor %s to take its weights", s->name);
        int same = d->ndim == s->ndim;
        for (int k = 0; k < s->ndim && same; k++)
            same = d->shape[k] == s->shape[k];
        if (!same)
            return bfn_err_set(err, BFN_ERR_MISMATCH, "tensor %s differs in shape between the networks",
                               s->name);
    }
    if (kept)
        *kept = dst->n_tensors - src->n_tensors; /* names are unique in each */
    if (dst == src)
        return BFN_OK;
    float *to = bfn_net_params(dst);
    for (int i = 0; i < src->n_tensors; i++) {
        const bfn_tensor_info *s = &src->tensors[i].info;
        memcpy(to + tensor_named(dst, s->name)->offset, src->params + s->offset,
               tensor_elems(s) * sizeof(float));
    }
    return BFN_OK;
}

/* ---- per-image execution ---- */

/* Threads sharing one image. Each op is a sequence of stages; a stage is a
 * fixed set of pieces (conv position ranges, GroupNorm groups, channel
 * blocks) that the members claim one at a time, and a member leaves a
 * stage once all its pieces are done. Which member computes a piece varies
 * from run to run, the pieces do not, so neither do the results; and a
 * member that the OS deschedules only delays the pieces it has claimed.
 * ctr holds (claimed, done) per stage for the whole run; stage numbers
 * advance identically in every member. size 1: a thread alone. */
typedef struct {
    int size;
    atomic_int *ctr;
    int stage, local;
} team;

/* Next piece of the current stage for this member, or -1. */
static int team_claim(team *tm, int n)
{
    if (tm->size == 1)
        return tm->local < n ? tm->local++ : -1;
    int q = atomic_fetch_add(&tm->ctr[2 * tm->stage], 1);
    return q < n ? q : -1;
}

static void team_done(team *tm)
{
    if (tm->size > 1)
        atomic_fetch_add(&tm->ctr[2 * tm->stage + 1], 1);
}

/* Waits until the stage's n pieces are done, then moves to the next. */
static void team_end(team *tm, int n)
{
    if (tm->size > 1)
        bfn_wait_at_least(&tm->ctr[2 * tm->stage + 1], n);
    tm->stage++;
    tm->local = 0;
}

/* A conv's pieces for this team: the layer's fixed pieces, or the whole
 * image in one for a thread alone when the direct kernels compute it (their
 * results do not depend on how the positions are split, and one range
 * fills their register tiles better than two). */
static int team_conv_pieces(const team *tm, const bfn_conv2d_shape *s)
{
    return tm->size == 1 && bfn_convk_supported(s) ? 1 : bfn_conv2d_pieces(s);
}

static void team_conv_piece(const team *tm, const bfn_conv2d_shape *s, int q, int *p0, int *p1)
{
    if (team_conv_pieces(tm, s) == 1) {
        *p0 = 0;
        *p1 = bfn_conv2d_out_h(s) * bfn_conv2d_out_w(s);
        return;
    }
    bfn_conv2d_piece(s, q, p0, p1);
}

/* Stages per image: at most 4 per op, 2 for the input, 2 for the head. */
static int stages_per_image(const bfn_net *n)
{
    return 4 * n->n_ops + 4;
}

/* One thread's scratch (see struct bfn_net). */
typedef struct {
    float *s1, *s2, *s3, *col, *aws, *sp, *dsp;
} scratch;

static scratch scratch_of(const bfn_net *n, int tid)
{
    float *b = n->scratch[tid];
    scratch s;
    s.s1 = b;
    s.s2 = s.s1 + n->n_s;
    s.s3 = s.s2 + n->n_s;
    s.col = s.s3 + n->n_s;
    s.aws = s.col + n->n_col;
    s.sp = s.aws + n->n_aws;
    s.dsp = s.sp + n->n_sp;
    return s;
}

/* The block of the shared column workspace for piece q (of any conv). */
static float *col_part(const bfn_net *n, const scratch *sh, int q)
{
    return sh->col + (size_t)q * n->n_piece_ws;
}

static inline float *IMG(bfn_net *n, size_t off, int b, size_t per_image)
{
    return n->act + off + (size_t)b * per_image;
}

static size_t stream_size(const stream *s)
{
    return (size_t)s->c * s->h * s->w;
}

/* Image b's values of stream s. */
static inline float *ACT(bfn_net *n, const stream *s, int b)
{
    return n->act + s->act + (size_t)b * s->ld;
}

static bfn_attn_params attn_params(bfn_net *n, const attn_rec *t)
{
    bfn_attn_params p = {PAR(n, t->norm_w), PAR(n, t->norm_b), PAR(n, t->qkv_w),
                         PAR(n, t->qkv_b), PAR(n, t->proj_w), PAR(n, t->proj_b)};
    return p;
}

/* Saved tensors of image b. */
static bfn_attn_saved attn_saved(bfn_net *n, const attn_rec *t, int b)
{
    size_t chw = (size_t)t->s.C * t->s.HW;
    bfn_attn_saved s = {IMG(n, t->mean, b, t->s.groups), IMG(n, t->rstd, b, t->s.groups),
                        IMG(n, t->qkv, b, 3 * chw),
                        IMG(n, t->att, b, (size_t)t->s.heads * t->s.HW * t->s.HW),
                        IMG(n, t->o, b, chw)};
    return s;
}

static bfn_temb_params temb_params(bfn_net *n)
{
    bfn_temb_params p = {PAR(n, n->temb_w1), PAR(n, n->temb_b1), PAR(n, n->temb_w2),
                         PAR(n, n->temb_b2)};
    return p;
}

/* Rows b.. of the saved time-embedding activations. */
static bfn_temb_saved temb_saved(bfn_net *n, int b)
{
    size_t D = (size_t)n->cfg.temb_dim;
    bfn_temb_saved s = {IMG(n, n->t_sin, b, D), IMG(n, n->t_m1, b, D), IMG(n, n->t_a1, b, D),
                        IMG(n, n->t_m2, b, D)};
    return s;
}

/* ---- forward ---- */

typedef struct {
    bfn_net *n;
    const float *x, *t;
    float *logits;
    int B, training;
    bfn_rng drop; /* dropout streams: fork(fork(drop, op), image) */
    int shared;   /* 1: all threads work on each image together */
    int cv;       /* 1: channel-vector kernels where a conv has them (wcv is fresh) */
    atomic_int next;
} fwd_job;

/* Batches from this size use the channel-vector kernels: their weights are
 * transposed at the start of each call, which a few images repay. */
#define CV_MIN_BATCH 4

/* Columns [p0, p1) of conv c: out (+)= conv(in) + bias (+ add), on the
 * kernel this call uses (either gives the same bits). */
static void conv_fwd(const fwd_job *j, const conv_rec *c, float *out, const float *in,
                     const float *bias, const float *add, float *ws, int p0, int p1)
{
    if (j->cv && c->cv_on)
        bfn_convk_forward_cv(out, in, j->n->wcv + c->wcv, bias, add, ws, &c->s, p0, p1);
    else
        bfn_conv2d_forward_range(out, in, j->n->params + c->w, bias, add, ws, &c->s, p0, p1);
}

#define BLOCKS 8 /* channel blocks of a copy stage */

/* Groups [g, g + 1) of one image: y = GroupNorm(x), then SiLU; statistics saved. */
static void gn_silu_group(float *y, float *mean, float *rstd, const float *x, const float *gamma,
                          const float *beta, int C, int hw, int G, int g)
{
    size_t cg = (size_t)(C / G), off = (size_t)g * cg * hw;
    bfn_groupnorm_silu_forward(y + off, mean + g, rstd + g, x + off, gamma + g * cg,
                               beta + g * cg, 1, (int)cg, hw, 1);
}

static void res_forward_image(fwd_job *j, const op *o, int op_index, team *tm, const scratch *sh,
                              const scratch *own, int b)
{
    bfn_net *n = j->n;
    const res_rec *r = &o->u.res;
    int G = n->cfg.groups, D = n->cfg.temb_dim, hw = r->hw, cin = r->cin, cout = r->cout;
    float p = n->cfg.dropout;
    size_t nout = (size_t)cout * hw;
    const float *x = ACT(n, &n->streams[o->in], b);
    float *out = ACT(n, &n->streams[o->out], b), *h1 = IMG(n, r->h1, b, nout);
    float *mean1 = IMG(n, r->mean1, b, G), *rstd1 = IMG(n, r->rstd1, b, G);
    float *mean2 = IMG(n, r->mean2, b, G), *rstd2 = IMG(n, r->rstd2, b, G);
    int q, p0, p1, npc = team_conv_pieces(tm, &r->conv1.s);

    /* conv1 bias + time projection, the conv's per-channel start value:
     * every member computes it, the same way, into its own buffer */
    bfn_linear_forward(own->sp, IMG(n, n->t_e, b, D), PAR(n, r->temb_w), PAR(n, r->temb_b), 1, D,
                       cout);
    const float *b1 = PAR(n, r->conv1.b);
    for (int c = 0; c < cout; c++)
        own->sp[c] += b1[c];

    while ((q = team_claim(tm, G)) >= 0) {
        gn_silu_group(sh->s1, mean1, rstd1, x, PAR(n, r->norm1_w), PAR(n, r->norm1_b), cin, hw,
                      G, q);
        team_done(tm);
    }
    team_end(tm, G);

    while ((q = team_claim(tm, npc)) >= 0) {
        team_conv_piece(tm, &r->conv1.s, q, &p0, &p1);
        conv_fwd(j, &r->conv1, h1, sh->s1, own->sp, NULL, col_part(n, sh, q), p0, p1);
        team_done(tm);
    }
    team_end(tm, npc);

    while ((q = team_claim(tm, G)) >= 0) {
        gn_silu_group(sh->s1, mean2, rstd2, h1, PAR(n, r->norm2_w), PAR(n, r->norm2_b), cout, hw,
                      G, q);
        if (j->training && p > 0.0f) {
            uint8_t *mask = n->masks + r->mask + (size_t)b * nout;
            bfn_rng ro = bfn_rng_fork(&j->drop, (uint64_t)op_index);
            bfn_rng ri = bfn_rng_fork(&ro, (uint64_t)b);
            size_t e0 = (size_t)q * (cout / G) * hw, e1 = e0 + (size_t)(cout / G) * hw;
            bfn_dropout_mask_range(mask + e0, e0, e1, p, &ri);
            bfn_dropout_forward(sh->s1 + e0, sh->s1 + e0, mask + e0, e1 - e0, p);
        }
        team_done(tm);
    }
    team_end(tm, G);

    /* out = skip(x) + conv2(s1) + conv2 bias, skip(x) = x or a 1x1 conv */
    while ((q = team_claim(tm, npc)) >= 0) {
        team_conv_piece(tm, &r->conv2.s, q, &p0, &p1);
        const float *add = x;
        if (r->skip.s.cout) {
            bfn_conv2d_forward_range(out, x, PAR(n, r->skip.w), PAR(n, r->skip.b), NULL,
                                     col_part(n, sh, q), &r->skip.s, p0, p1);
            add = out;
        }
        conv_fwd(j, &r->conv2, out, sh->s1, PAR(n, r->conv2.b), add, col_part(n, sh, q), p0, p1);
        team_done(tm);
    }
    team_end(tm, npc);
}

/* Channels of block q of BLOCKS over [0, c). */
static void block_range(int c, int q, int *lo, int *hi)
{
    *lo = (int)((long)c * q / BLOCKS);
    *hi = (int)((long)c * (q + 1) / BLOCKS);
}

static void op_forward_image(fwd_job *j, int i, team *tm, const scratch *sh, const scratch *own,
                             int b)
{
    bfn_net *n = j->n;
    const op *o = &n->ops[i];
    const stream *si = &n->streams[o->in], *so = &n->streams[o->out];
    const float *in = ACT(n, si, b);
    float *out = ACT(n, so, b);
    int q, lo, hi, np = 1;
    switch (o->kind) {
    case OP_CONV: {
        const conv_rec *c = &o->u.conv;
        if (c->up_on && !j->training) {
            const stream *su = &n->streams[c->up_in];
            const float *small = ACT(n, su, b);
            bfn_conv2d_shape l = c->s;
            l.h = su->h;
            l.w = su->w;
            np = team_conv_pieces(tm, &l);
            while ((q = team_claim(tm, np)) >= 0) {
                team_conv_piece(tm, &l, q, &lo, &hi);
                bfn_convk_forward_up(out, small, n->wcv + c->wup, PAR(n, c->b), NULL,
                                     col_part(n, sh, q), &c->s, lo, hi);
                team_done(tm);
            }
            break;
        }
        np = team_conv_pieces(tm, &c->s);
        while ((q = team_claim(tm, np)) >= 0) {
            team_conv_piece(tm, &c->s, q, &lo, &hi);
            conv_fwd(j, c, out, in, PAR(n, c->b), NULL, col_part(n, sh, q), lo, hi);
            team_done(tm);
        }
        break;
    }
    case OP_RES:
        res_forward_image(j, o, i, tm, sh, own, b);
        return;
    case OP_ATTN: {
        bfn_attn_params p = attn_params(n, &o->u.attn);
        bfn_attn_saved s = attn_saved(n, &o->u.attn, b);
        for (int stage = 0; stage < 3; stage++) {
            np = bfn_attention_pieces(&o->u.attn.s, stage);
            while ((q = team_claim(tm, np)) >= 0) {
                bfn_attention_forward_piece(out, &s, in, &p, sh->aws, &o->u.attn.s, stage, q);
                team_done(tm);
            }
            team_end(tm, np);
        }
        np = bfn_attention_pieces(&o->u.attn.s, 3);
        while ((q = team_claim(tm, np)) >= 0) {
            bfn_attention_forward_piece(out, &s, in, &p, sh->aws, &o->u.attn.s, 3, q);
            team_done(tm);
        }
        break;
    }
    case OP_UPSAMPLE: {
        size_t hw = (size_t)si->h * si->w;
        if (o->fused && !j->training)
            return; /* the next conv reads the small stream */
        np = BLOCKS;
        while ((q = team_claim(tm, np)) >= 0) {
            block_range(si->c, q, &lo, &hi);
            if (hi > lo)
                bfn_upsample2x_forward(out + lo * 4 * hw, in + lo * hw, 1, hi - lo, si->h, si->w);
            team_done(tm);
        }
        break;
    }
    case OP_CONCAT:
        return; /* its inputs were written in place (add_concat) */
    }
    team_end(tm, np);
}

/* Image b of the call, its activations kept at image index slot: b when
 * training (the backward reads every image's), else the thread's own
 * (inference: each thread reuses one slot, still in cache, for its images). */
static void forward_image(fwd_job *j, team *tm, const scratch *sh, const scratch *own, int b,
                          int slot)
{
    bfn_net *n = j->n;
    const bfn_net_config *c = &n->cfg;
    int hw = c->H * c->W, D = c->temb_dim, G = c->groups, q, lo, hi;

    /* pieces: the time embedding, then each plane of the network input
     * (x and a constant plane holding t) */
    float *xin = ACT(n, &n->streams[0], slot);
    int np = n->in_ch + 2;
    while ((q = team_claim(tm, np)) >= 0) {
        if (q == 0) {
            bfn_temb_params tp = temb_params(n);
            bfn_temb_saved ts = temb_saved(n, slot);
            bfn_temb_forward(IMG(n, n->t_e, slot, D), &ts, j->t + b, &tp, 1, D);
        } else if (q - 1 < n->in_ch) {
            memcpy(xin + (size_t)(q - 1) * hw, j->x + ((size_t)b * n->in_ch + q - 1) * hw,
                   sizeof(float) * hw);
        } else {
            for (int i = 0; i < hw; i++)
                xin[(size_t)n->in_ch * hw + i] = j->t[b];
        }
        team_done(tm);
    }
    team_end(tm, np);

    for (int i = 0; i < n->n_ops; i++)
        op_forward_image(j, i, tm, sh, own, slot);

    const stream *h = &n->streams[n->head_in];
    const conv_rec *oc = &n->out_conv;
    while ((q = team_claim(tm, G)) >= 0) {
        gn_silu_group(sh->s1, IMG(n, n->out_mean, slot, G), IMG(n, n->out_rstd, slot, G),
                      ACT(n, h, slot), PAR(n, n->out_norm_w),
                      PAR(n, n->out_norm_b), h->c, hw, G, q);
        team_done(tm);
    }
    team_end(tm, G);
    np = team_conv_pieces(tm, &oc->s);
    while ((q = team_claim(tm, np)) >= 0) {
        team_conv_piece(tm, &oc->s, q, &lo, &hi);
        bfn_conv2d_forward_range(j->logits + (size_t)b * n->out_ch * hw, sh->s1, PAR(n, oc->w),
                                 PAR(n, oc->b), NULL, col_part(n, sh, q), &oc->s, lo, hi);
        team_done(tm);
    }
    team_end(tm, np); /* the next image reuses the shared scratch */
}

static void forward_worker(void *arg, int tid, int nthreads)
{
    fwd_job *j = arg;
    if (j->shared) {
        team tm = {nthreads, j->n->team_ctr, 0, 0};
        scratch sh = scratch_of(j->n, 0), own = scratch_of(j->n, tid);
        for (int b = 0; b < j->B; b++)
            forward_image(j, &tm, &sh, &own, b, j->training ? b : 0);
        return;
    }
    team tm = {1, NULL, 0, 0};
    scratch own = scratch_of(j->n, tid);
    int b;
    while ((b = atomic_fetch_add(&j->next, 1)) < j->B)
        forward_image(j, &tm, &own, &own, b, j->training ? b : tid);
}

/* The weights the forward's kernels read other than as stored, from the
 * current ones: wᵀ of the channel-vector convs (cv) and the summed phase
 * weights of the upsampling convs (up), convs split between threads. */
typedef struct {
    bfn_net *n;
    int cv, up;
} prep_job;

/* Conv c's derived weights into dst (laid out like n->wcv): wᵀ if cv, the
 * phase weights if up, where the conv has them. */
static void prep_conv(bfn_net *n, const conv_rec *c, int cv, int up, float *dst)
{
    if (cv && c->cv_on)
        bfn_convk_cv_transpose(dst + c->wcv, PAR(n, c->w), &c->s);
    if (up && c->up_on)
        bfn_convk_up_weights(dst + c->wup, PAR(n, c->w), &c->s);
}

static void prep_worker(void *arg, int tid, int nthreads)
{
    const prep_job *p = arg;
    for (int i = tid; i < p->n->n_convs; i += nthreads)
        prep_conv(p->n, p->n->convs[i], p->cv, p->up, p->n->wcv);
}

#ifdef BFN_DEBUG_CHECKS
/* Debug builds (BFN_DEBUG_CHECKS): the kept weights (cv, up: those this
 * call reuses) must equal the ones the current parameters give, else
 * parameters were written through a pointer taken before the last forward
 * (see bfn_net_params): an error naming the conv. */
static bfn_status check_prepared(bfn_net *n, int cv, int up)
{
    if (!cv && !up)
        return BFN_OK;
    float *w = malloc(sizeof(float) * n->n_wcv);
    if (!w)
        return BFN_OK; /* the check only; the forward itself needs nothing more */
    bfn_status st = BFN_OK;
    for (int i = 0; st == BFN_OK && i < n->n_convs; i++) {
        const conv_rec *c = n->convs[i];
        prep_conv(n, c, cv, up, w);
        int stale = 0;
        if (cv && c->cv_on)
            stale |= memcmp(w + c->wcv, n->wcv + c->wcv,
                            sizeof(float) * c->s.cout * c->s.cin * c->s.k * c->s.k) != 0;
        if (up && c->up_on)
            stale |= memcmp(w + c->wup, n->wcv + c->wup,
                            sizeof(float) * bfn_convk_up_weights_size(&c->s)) != 0;
        if (stale)
            st = bfn_err_set(&n->err, BFN_ERR_ARG,
                             "bfn_net_forward: conv %d's kept weights are stale: parameters "
                             "were written without calling bfn_net_params after a forward",
                             i);
    }
    free(w);
    return st;
}
#endif

/* Threads for this call (the net's own setting, else the process-wide
 * one), with BLAS single-threaded until end_parallel: the net splits the
 * work itself. */
static int begin_parallel(bfn_net *n)
{
    int t = bfn_gemm_serial_begin();
    if (n->threads > 0)
        t = n->threads;
    t = bfn_pool_reserve(n->pool, t < 1 ? 1 : t);
    return ensure_scratch(n, t);
}

static void end_parallel(void)
{
    bfn_gemm_serial_end();
}

int bfn_net_set_threads(bfn_net *n, int threads)
{
    if (!n)
        return 0;
    int prev = n->threads;
    n->threads = threads > 0 ? threads : 0;
    return prev;
}

bfn_status bfn_net_forward(bfn_net *n, const float *x, const float *t, int B, int training,
                           bfn_rng *rng, float *logits)
{
    if (!n)
        return BFN_ERR_ARG;
    if (!x || !t || !logits)
        return bfn_err_set(&n->err, BFN_ERR_ARG, "bfn_net_forward: x, t and logits must be set");
    if (B < 1 || B > n->max_batch)
        return bfn_err_set(&n->err, BFN_ERR_ARG, "bfn_net_forward: batch %d outside [1, %d]", B,
                           n->max_batch);
    if (training && n->cfg.dropout > 0.0f && !rng)
        return bfn_err_set(&n->err, BFN_ERR_ARG,
                           "bfn_net_forward: training with dropout needs an rng");
    for (int b = 0; b < B; b++)
        if (!isfinite(t[b]))
            return bfn_err_set(&n->err, BFN_ERR_NUMERIC, "bfn_net_forward: t[%d] is not finite",
                               b);
    n->last_training = 0;
    fwd_job j;
    memset(&j, 0, sizeof j);
    j.n = n;
    j.x = x;
    j.t = t;
    j.logits = logits;
    j.B = B;
    j.training = training;
    if (training && n->cfg.dropout > 0.0f)
        bfn_rng_init(&j.drop, bfn_rng_u64(rng), 0x64726F70ULL /* "drop" */);
    atomic_init(&j.next, 0);

    unsigned fp = bfn_fp_flush_denormals();
    int T = begin_parallel(n);
    j.shared = B < T;
    if (j.shared) {
        size_t need = 2 * (size_t)stages_per_image(n) * B;
        if (need > n->n_team_ctr) {
            /* first shared run with this many images: the stage counters */
            atomic_int *c = realloc(n->team_ctr, sizeof *c * need);
            if (!c) {
                j.shared = 0;
                T = 1;
            } else {
                n->team_ctr = c;
                n->n_team_ctr = need;
            }
        }
        for (size_t i = 0; j.shared && i < need; i++)
            atomic_init(&n->team_ctr[i], 0);
    }
    j.cv = B >= CV_MIN_BATCH && n->n_wcv > 0;
    int up = !training && n->n_up > 0; /* the upsampling convs run as phases */
    prep_job pj = {n, j.cv && !n->fresh_cv, up && !n->fresh_up};
#ifdef BFN_DEBUG_CHECKS
    bfn_status kept = check_prepared(n, j.cv && n->fresh_cv, up && n->fresh_up);
    if (kept != BFN_OK) {
        end_parallel();
        bfn_fp_restore(fp);
        return kept;
    }
#endif
    if (pj.cv || pj.up)
        bfn_pool_run(n->pool, T, prep_worker, &pj);
    n->fresh_cv |= pj.cv;
    n->fresh_up |= pj.up;
    bfn_pool_run(n->pool, j.shared ? T : (B < T ? B : T), forward_worker, &j);
    end_parallel();
    bfn_fp_restore(fp);
    n->last_B = B;
    n->last_training = training;
    return BFN_OK;
}

/* ---- backward ---- */

typedef struct {
    bfn_net *n;
    const float *dlogits;
    int B, need_dx, n_shards;
    atomic_int next;
} bwd_job;

/* A shard's gradient arrays: parameters, and dWᵀ of the dwt_on convs. */
typedef struct {
    float *g, *dwt;
} shard_grads;

/* One image's backward through conv c: dW (into the shard's dWᵀ or dW),
 * dbias (may be NULL), din = or += (may be NULL). */
static void conv_backward(bfn_net *n, const conv_rec *c, const shard_grads *sg, float *din,
                          int din_accumulate, float *dbias, const float *dout, const float *in,
                          float *col)
{
    float *dw = sg->g + c->w;
    if (c->dwt_on) {
        bfn_convk_weight_grad(sg->dwt + c->dwt, 1, dout, in, col, &c->s);
        dw = NULL;
    }
    bfn_conv2d_backward_image(din, din_accumulate, dw, dbias, dout, in, PAR(n, c->w),
                              bfn_conv2d_transposable(&c->s) ? n->wt + c->wt : NULL,
                              c->cvt_on ? n->wcv + c->wcvt : NULL, col, &c->s);
}

static void res_backward_image(bfn_net *n, const op *o, const scratch *sc, const shard_grads *sg,
                               int b)
{
    const res_rec *r = &o->u.res;
    int G = n->cfg.groups, D = n->cfg.temb_dim, hw = r->hw, cin = r->cin, cout = r->cout;
    float p = n->cfg.dropout;
    size_t nin = (size_t)cin * hw, nout = (size_t)cout * hw;
    const float *x = ACT(n, &n->streams[o->in], b), *h1 = IMG(n, r->h1, b, nout);
    float *dx = n->dact + n->streams[o->in].grad + (size_t)b * nin;
    const float *dout = n->dact + n->streams[o->out].grad + (size_t)b * nout;
    const float *mean1 = IMG(n, r->mean1, b, G), *rstd1 = IMG(n, r->rstd1, b, G);
    const float *mean2 = IMG(n, r->mean2, b, G), *rstd2 = IMG(n, r->rstd2, b, G);
    const uint8_t *mask = n->masks + r->mask + (size_t)b * nout;
    float *grads = sg->g;
#define G_(off) (grads + (off))

    if (r->skip.s.cout)
        conv_backward(n, &r->skip, sg, dx, !o->first_in, G_(r->skip.b), dout, x, sc->col);
    else if (o->first_in)
        memcpy(dx, dout, sizeof(float) * nout);
    else
        bfn_vec_add(dx, dout, nout);

    /* conv2: its input dropout(SiLU(GN2(h1))) is recomputed into s1 */
    bfn_groupnorm_silu_apply(sc->s1, h1, mean2, rstd2, PAR(n, r->norm2_w), PAR(n, r->norm2_b), 1,
                             cout, hw, G);
    if (p > 0.0f)
        bfn_dropout_forward(sc->s1, sc->s1, mask, nout, p);
    conv_backward(n, &r->conv2, sg, sc->s2, 0, G_(r->conv2.b), dout, sc->s1, sc->col);
    /* dropout is a diagonal linear map: its backward is the same map */
    if (p > 0.0f)
        bfn_dropout_forward(sc->s2, sc->s2, mask, nout, p);
    float *dh1 = sc->s3;
    bfn_groupnorm_silu_backward(dh1, G_(r->norm2_w), G_(r->norm2_b), sc->s2, h1, mean2, rstd2,
                                PAR(n, r->norm2_w), PAR(n, r->norm2_b), 1, cout, hw, G, 0);

    /* conv1 bias and the time projection are both added per channel */
    float *db1 = G_(r->conv1.b);
    for (int c = 0; c < cout; c++) {
        sc->dsp[c] = (float)bfn_vec_sum(dh1 + (size_t)c * hw, hw);
        db1[c] += sc->dsp[c];
    }
    bfn_linear_backward(n->dact + n->t_de + (size_t)b * D, G_(r->temb_w), G_(r->temb_b), sc->dsp,
                        IMG(n, n->t_e, b, D), PAR(n, r->temb_w), 1, D, cout);

    /* conv1: its input SiLU(GN1(x)) is recomputed into s1 */
    bfn_groupnorm_silu_apply(sc->s1, x, mean1, rstd1, PAR(n, r->norm1_w), PAR(n, r->norm1_b), 1,
                             cin, hw, G);
    conv_backward(n, &r->conv1, sg, sc->s2, 0, NULL, dh1, sc->s1, sc->col);
    bfn_groupnorm_silu_backward(dx, G_(r->norm1_w), G_(r->norm1_b), sc->s2, x, mean1, rstd1,
                                PAR(n, r->norm1_w), PAR(n, r->norm1_b), 1, cin, hw, G, 1);
#undef G_
}

static void op_backward_image(bwd_job *j, const op *o, const scratch *sc, const shard_grads *sg,
                              int b)
{
    bfn_net *n = j->n;
    float *grads = sg->g;
    const stream *si = &n->streams[o->in], *so = &n->streams[o->out];
    size_t nin = stream_size(si), nout = stream_size(so);
    const float *in = ACT(n, si, b);
    float *din = n->dact + si->grad + (size_t)b * nin;
    const float *dout = n->dact + so->grad + (size_t)b * nout;
    switch (o->kind) {
    case OP_CONV: {
        const conv_rec *c = &o->u.conv;
        /* stream 0 is the network input: its gradient only when asked for */
        conv_backward(n, c, sg, o->in == 0 && !j->need_dx ? NULL : din, !o->first_in,
                      grads + c->b, dout, in, sc->col);
        break;
    }
    case OP_RES:
        res_backward_image(n, o, sc, sg, b);
        break;
    case OP_ATTN: {
        const attn_rec *t = &o->u.attn;
        bfn_attn_params p = attn_params(n, t);
        bfn_attn_saved s = attn_saved(n, t, b);
        bfn_attn_grads g = {grads + t->norm_w, grads + t->norm_b, grads + t->qkv_w,
                            grads + t->qkv_b, grads + t->proj_w, grads + t->proj_b};
        bfn_attention_backward(din, &g, dout, in, &s, &p, sc->aws, 1, &t->s, !o->first_in);
        break;
    }
    case OP_UPSAMPLE:
        if (o->first_in)
            memset(din, 0, sizeof(float) * nin);
        bfn_upsample2x_backward(din, dout, 1, si->c, si->h, si->w);
        break;
    case OP_CONCAT: {
        const stream *s2 = &n->streams[o->in2];
        size_t n2 = stream_size(s2);
        float *din2 = n->dact + s2->grad + (size_t)b * n2;
        if (o->first_in)
            memcpy(din, dout, sizeof(float) * nin);
        else
            bfn_vec_add(din, dout, nin);
        if (o->first_in2)
            memcpy(din2, dout + nin, sizeof(float) * n2);
        else
            bfn_vec_add(din2, dout + nin, n2);
        break;
    }
    }
}

static void backward_image(bwd_job *j, const scratch *sc, const shard_grads *sg, int b)
{
    float *grads = sg->g;
    bfn_net *n = j->n;
    const bfn_net_config *c = &n->cfg;
    int hw = c->H * c->W, G = c->groups;
    memset(n->dact + n->t_de + (size_t)b * c->temb_dim, 0, sizeof(float) * c->temb_dim);

    const stream *h = &n->streams[n->head_in];
    size_t nh = stream_size(h);
    const float *hx = ACT(n, h, b);
    const float *mean = IMG(n, n->out_mean, b, G), *rstd = IMG(n, n->out_rstd, b, G);
    const conv_rec *oc = &n->out_conv;
    bfn_groupnorm_silu_apply(sc->s1, hx, mean, rstd, PAR(n, n->out_norm_w), PAR(n, n->out_norm_b),
                             1, h->c, hw, G);
    conv_backward(n, oc, sg, sc->s2, 0, grads + oc->b, j->dlogits + (size_t)b * n->out_ch * hw,
                  sc->s1, sc->col);
    bfn_groupnorm_silu_backward(n->dact + h->grad + (size_t)b * nh, grads + n->out_norm_w,
                                grads + n->out_norm_b, sc->s2, hx, mean, rstd,
                                PAR(n, n->out_norm_w), PAR(n, n->out_norm_b), 1, h->c, hw, G, 0);

    for (int i = n->n_ops - 1; i >= 0; i--)
        op_backward_image(j, &n->ops[i], sc, sg, b);
}

static void backward_worker(void *arg, int tid, int nthreads)
{
    (void)nthreads;
    bwd_job *j = arg;
    bfn_net *n = j->n;
    scratch sc = scratch_of(n, tid);
    int s;
    while ((s = atomic_fetch_add(&j->next, 1)) < j->n_shards) {
        shard_grads sg = {s == 0 ? n->grads : n->gpart + (size_t)(s - 1) * n->n_params,
                          n->dwt + (size_t)s * n->n_dwt};
        int b0 = (int)((long)s * j->B / j->n_shards), b1 = (int)((long)(s + 1) * j->B / j->n_shards);
        for (int b = b0; b < b1; b++)
            backward_image(j, &sc, &sg, b);
    }
}

typedef struct {
    bfn_net *n;
    int n_shards;
} shard_job;

/* Shard sums in a fixed order, each piece by one thread: fixed chunks of
 * the parameter array get grads += shard 1, += shard 2, ... (this pass);
 * then each dwt_on conv gets dWᵀ of shards 1.. added to shard 0's, and
 * grads += its transpose (reduce_dwt_worker). The shard arrays are left
 * zeroed for the next backward. */
static void reduce_worker(void *arg, int tid, int nthreads)
{
    shard_job *j = arg;
    bfn_net *n = j->n;
    size_t np = n->n_params;
    size_t lo = np * tid / nthreads, hi = np * (tid + 1) / nthreads;
    for (int s = 1; s < j->n_shards; s++) {
        float *part = n->gpart + (size_t)(s - 1) * np;
        bfn_vec_add(n->grads + lo, part + lo, hi - lo);
        memset(part + lo, 0, sizeof(float) * (hi - lo));
    }
}

/* A pool run of its own after reduce_worker's, never a second loop inside
 * it: both write grads, and a conv's weight block lies in the chunks of
 * other threads. The boundary between two runs is the join (pool.c: each
 * worker's release of `pending` after its part, acquired by the caller
 * before it announces the next run), so every chunk sum is complete and
 * visible before any transposed add reads and writes it. */
static void reduce_dwt_worker(void *arg, int tid, int nthreads)
{
    shard_job *j = arg;
    bfn_net *n = j->n;
    for (int i = tid; i < n->n_convs; i += nthreads) {
        const conv_rec *c = n->convs[i];
        if (!c->dwt_on)
            continue;
        int cout = c->s.cout, K = c->s.cin * c->s.k * c->s.k;
        size_t sz = (size_t)cout * K;
        float *t0 = n->dwt + c->dwt, *g = n->grads + c->w;
        for (int s = 1; s < j->n_shards; s++) {
            float *ts = n->dwt + (size_t)s * n->n_dwt + c->dwt;
            bfn_vec_add(t0, ts, sz);
            memset(ts, 0, sizeof(float) * sz);
        }
        for (int co = 0; co < cout; co++)
            for (int k = 0; k < K; k++)
                g[(size_t)co * K + k] += t0[(size_t)k * cout + co];
        memset(t0, 0, sizeof(float) * sz);
    }
}

/* Flipped kernels of the transposable convs (the parameters changed since
 * the last backward), convs split between threads. */
static void flip_worker(void *arg, int tid, int nthreads)
{
    bfn_net *n = arg;
    for (int i = tid; i < n->n_convs; i += nthreads) {
        const conv_rec *c = n->convs[i];
        if (bfn_conv2d_transposable(&c->s))
            bfn_conv2d_flip_weights(n->wt + c->wt, PAR(n, c->w), &c->s);
        if (c->cvt_on) { /* the flipped kernel as the din conv's wᵀ */
            bfn_conv2d_shape t = bfn_conv2d_transposed(&c->s);
            bfn_convk_cv_transpose(n->wcv + c->wcvt, n->wt + c->wt, &t);
        }
    }
}

bfn_status bfn_net_backward(bfn_net *n, const float *dlogits, float *dx)
{
    if (!n)
        return BFN_ERR_ARG;
    if (!dlogits)
        return bfn_err_set(&n->err, BFN_ERR_ARG, "bfn_net_backward: dlogits is NULL");
    if (!n->last_training)
        return bfn_err_set(&n->err, BFN_ERR_ARG,
                           "bfn_net_backward: needs a training forward just before");
    const bfn_net_config *c = &n->cfg;
    int B = n->last_B, hw = c->H * c->W;
    int S = B < NET_SHARDS ? B : NET_SHARDS;
    if (S - 1 > n->n_gpart) {
        /* first backward at this batch size: the shards' gradient arrays */
        float *g = calloc((size_t)(S - 1) * n->n_params, sizeof(float));
        float *t = calloc((size_t)S * n->n_dwt + 1, sizeof(float));
        if (!g || !t) {
            free(g);
            free(t);
            return bfn_err_set(&n->err, BFN_ERR_NOMEM,
                               "bfn_net_backward: cannot allocate %.0f MB of shard gradients",
                               ((S - 1) * (double)n->n_params + S * (double)n->n_dwt) * 4 / 1e6);
        }
        free(n->gpart);
        free(n->dwt);
        n->gpart = g;
        n->dwt = t;
        n->n_gpart = S - 1;
    }
    if (!n->dwt) {
        n->dwt = calloc(n->n_dwt + 1, sizeof(float));
        if (!n->dwt)
            return bfn_err_set(&n->err, BFN_ERR_NOMEM,
                               "bfn_net_backward: cannot allocate %.0f MB of shard gradients",
                               n->n_dwt * 4.0 / 1e6);
    }

    unsigned fp = bfn_fp_flush_denormals();
    int T = begin_parallel(n);
    bfn_pool_run(n->pool, T, flip_worker, n);
    bwd_job j;
    j.n = n;
    j.dlogits = dlogits;
    j.B = B;
    j.need_dx = dx != NULL;
    j.n_shards = S;
    atomic_init(&j.next, 0);
    bfn_pool_run(n->pool, T < S ? T : S, backward_worker, &j);
    shard_job sj = {n, S};
    bfn_pool_run(n->pool, T, reduce_worker, &sj);
    bfn_pool_run(n->pool, T, reduce_dwt_worker, &sj);

    bfn_temb_params tp = temb_params(n);
    bfn_temb_saved ts = temb_saved(n, 0);
    bfn_temb_grads tg = {GRD(n, n->temb_w1), GRD(n, n->temb_b1), GRD(n, n->temb_w2),
                         GRD(n, n->temb_b2)};
    bfn_temb_backward(&tg, DACT(n, n->t_de), &ts, &tp, n->temb_ws, B, c->temb_dim);
    end_parallel();
    bfn_fp_restore(fp);

    if (dx) {
        const float *d0 = DACT(n, n->streams[0].grad);
        for (int b = 0; b < B; b++)
            memcpy(dx + (size_t)b * n->in_ch * hw, d0 + (size_t)b * (n->in_ch + 1) * hw,
                   sizeof(float) * n->in_ch * hw);
    }
    return BFN_OK;
}
