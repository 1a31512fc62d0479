/* The U-Net assembled from the layers in layers.h (architecture: see net.h).
 *
 * bfn_net_create walks the architecture once and records a flat list of ops
 * (conv, residual block, attention, upsample, concat) between "streams": the
 * tensors that flow between ops, each with an activation and a gradient
 * buffer for max_batch images. Forward runs the list in order, backward in
 * reverse, accumulating into stream gradients, so a skip tensor read by its
 * next op and by a concat on the way up receives both gradients. Inside
 * residual blocks and the output head only what cannot be cheaply recomputed
 * is kept (conv1 output, GroupNorm statistics, dropout masks); the SiLU
 * outputs fed to the convs are recomputed in backward into shared scratch.
 *
 * Parameter tensors, in this order in the flat array (l = level, r = block):
 *   temb.lin1.{weight,bias} (D, D), (D); temb.lin2.{weight,bias}
 *   conv_in.{weight,bias} (C0, in_ch + 1, 3, 3)
 *   for l = 0 .. L-1:
 *     for r < n_res: down.l.res.r.*, then down.l.attn.r.* at the lowest level
 *     down.l.downsample.{weight,bias} (C, C, 3, 3), stride 2, except at l = L-1
 *   mid.res.0.*, mid.attn.*, mid.res.1.*
 *   for l = L-1 .. 0:
 *     for r < n_res + 1: up.l.res.r.*, then up.l.attn.r.* at the lowest level
 *     up.l.upsample.{weight,bias} (C, C, 3, 3) after nearest 2x, except at l = 0
 *   out.norm.{weight,bias}, out.conv.{weight,bias} (out_ch, C0, 3, 3)
 * with res.* = norm1.{weight,bias} (cin), conv1.{weight,bias} (cout, cin, 3, 3),
 *   temb.{weight,bias} (cout, D), norm2.{weight,bias} (cout),
 *   conv2.{weight,bias} (cout, cout, 3, 3), and skip.{weight,bias}
 *   (cout, cin, 1, 1) only when cin != cout;
 * attn.* = norm.{weight,bias} (C), qkv.{weight,bias} (3C, C, 1, 1),
 *   proj.{weight,bias} (C, C, 1, 1).
 * Up-path blocks read concat(previous output, skip) in that channel order;
 * skips are popped last-in first-out. Without attn_lowest there is no
 * attention anywhere (the middle is two residual blocks).
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

#include "bfn/net.h"
#include "net/layers.h"

typedef struct {
    int c, h, w;
    size_t act, grad; /* offsets into net->act and net->dact, (max_batch, c, h, w) */
} stream;

typedef struct {
    bfn_conv2d_shape s;
    size_t w, b; /* parameter offsets */
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

    /* scratch shared by all ops: s1..s3 (B, max width, hw) each, sp (B, max
     * width), ws the largest conv/attention/temb workspace */
    size_t n_s, n_sp, n_ws;
    float *scratch, *s1, *s2, *s3, *sp, *ws;

    double flops; /* multiply-adds per image */
    int last_B, last_training;
    bfn_err err;
};

static inline float *PAR(bfn_net *n, size_t off) { return n->params + off; }
static inline float *GRD(bfn_net *n, size_t off) { return n->grads + off; }
static inline float *ACT(bfn_net *n, size_t off) { return n->act + off; }
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
    grow_max(&n->n_ws, bfn_conv2d_workspace(&c.s, n->max_batch));
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
    grow_max(&n->n_s, B * (cin > cout ? cin : cout) * hw);
    grow_max(&n->n_sp, B * cout);
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
    grow_max(&n->n_ws, bfn_attention_workspace(n->max_batch, &t.s));
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

static int add_concat(bfn_net *n, int a, int b)
{
    if (n->build_failed)
        return 0;
    stream x = n->streams[a];
    int out = add_stream(n, x.c + n->streams[b].c, x.h, x.w);
    add_op(n, OP_CONCAT, a, b, out);
    return out;
}

static void build(bfn_net *n)
{
    const bfn_net_config *c = &n->cfg;
    int L = c->n_levels, D = c->temb_dim, G = c->groups, attn = c->attn_lowest;
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
    grow_max(&n->n_ws, bfn_temb_workspace(n->max_batch, D));
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
            if (attn && l == L - 1) {
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
    if (attn)
        cur = add_attn(n, cur, "mid.attn");
    cur = add_res(n, cur, low, "mid.res.1");
    for (int l = L - 1; l >= 0; l--) {
        int ch = c->base_ch * c->ch_mult[l];
        for (int r = 0; r < c->n_res + 1; r++) {
            cur = add_concat(n, cur, skips[--n_skips]);
            snprintf(pre, sizeof pre, "up.%d.res.%d", l, r);
            cur = add_res(n, cur, ch, pre);
            if (attn && l == L - 1) {
                snprintf(pre, sizeof pre, "up.%d.attn.%d", l, r);
                cur = add_attn(n, cur, pre);
            }
        }
        if (l != 0) {
            snprintf(pre, sizeof pre, "up.%d.upsample", l);
            cur = add_upsample(n, cur);
            cur = add_conv(n, cur, ch, 3, 1, pre);
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
    grow_max(&n->n_s, B * x.c * x.h * x.w);
}

/* ---- lifetime and accessors ---- */

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
    if (!n->build_failed) {
        n->params = calloc(n->n_params, sizeof(float));
        n->grads = calloc(n->n_params, sizeof(float));
        n->act = calloc(n->n_act, sizeof(float));
        n->dact = calloc(n->n_dact, sizeof(float));
        n->masks = calloc(n->n_mask ? n->n_mask : 1, 1);
        n->scratch = calloc(3 * n->n_s + n->n_sp + n->n_ws, sizeof(float));
    }
    if (n->build_failed || !n->params || !n->grads || !n->act || !n->dact || !n->masks ||
        !n->scratch) {
        double mb = (2.0 * n->n_params + n->n_act + n->n_dact + 3.0 * n->n_s + n->n_ws) * 4 / 1e6;
        bfn_net_destroy(n);
        return bfn_err_set(err, BFN_ERR_NOMEM,
                           "bfn_net_create: cannot allocate %.0f MB for max_batch %d", mb,
                           max_batch);
    }
    n->s1 = n->scratch;
    n->s2 = n->s1 + n->n_s;
    n->s3 = n->s2 + n->n_s;
    n->sp = n->s3 + n->n_s;
    n->ws = n->sp + n->n_sp;
    for (int i = 0; i < n->n_tensors; i++)
        n->tensors[i].info.name = n->tensors[i].name;
    bfn_net_init_params(n, 0);
    bfn_err_clear(&n->err);
    *out = n;
    return BFN_OK;
}

void bfn_net_destroy(bfn_net *n)
{
    if (!n)
        return;
    free(n->tensors);
    free(n->params);
    free(n->grads);
    free(n->ops);
    free(n->streams);
    free(n->act);
    free(n->dact);
    free(n->masks);
    free(n->scratch);
    free(n);
}

const bfn_net_config *bfn_net_get_config(const bfn_net *n) { return &n->cfg; }
int bfn_net_max_batch(const bfn_net *n) { return n->max_batch; }
size_t bfn_net_param_count(const bfn_net *n) { return n->n_params; }
float *bfn_net_params(bfn_net *n) { return n->params; }
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

void bfn_net_init_params(bfn_net *n, uint64_t seed)
{
    bfn_rng root;
    bfn_rng_init(&root, seed, 0x6E6574696E6974ULL /* "netinit" */);
    for (int i = 0; i < n->n_tensors; i++) {
        const tensor_rec *t = &n->tensors[i];
        size_t size = 1;
        for (int d = 0; d < t->info.ndim; d++)
            size *= (size_t)t->info.shape[d];
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

/* ---- forward ---- */

static void res_forward(bfn_net *n, const op *o, int B, int training, bfn_rng *rng)
{
    const res_rec *r = &o->u.res;
    int G = n->cfg.groups, D = n->cfg.temb_dim;
    float p = n->cfg.dropout;
    const float *x = ACT(n, n->streams[o->in].act);
    float *out = ACT(n, n->streams[o->out].act), *h1 = ACT(n, r->h1);
    size_t nout = (size_t)B * r->cout * r->hw;

    bfn_groupnorm_silu_forward(n->s1, ACT(n, r->mean1), ACT(n, r->rstd1), x, PAR(n, r->norm1_w),
                               PAR(n, r->norm1_b), B, r->cin, r->hw, G);
    bfn_conv2d_forward(h1, n->s1, PAR(n, r->conv1.w), PAR(n, r->conv1.b), n->ws, B, &r->conv1.s, 0);
    bfn_linear_forward(n->sp, ACT(n, n->t_e), PAR(n, r->temb_w), PAR(n, r->temb_b), B, D, r->cout);
    bfn_add_channel_forward(h1, n->sp, B, r->cout, r->hw);
    bfn_groupnorm_silu_forward(n->s1, ACT(n, r->mean2), ACT(n, r->rstd2), h1, PAR(n, r->norm2_w),
                               PAR(n, r->norm2_b), B, r->cout, r->hw, G);
    if (training && p > 0.0f) {
        uint8_t *mask = n->masks + r->mask;
        bfn_dropout_mask(mask, nout, p, rng);
        bfn_dropout_forward(n->s1, n->s1, mask, nout, p);
    }
    if (r->skip.s.cout)
        bfn_conv2d_forward(out, x, PAR(n, r->skip.w), PAR(n, r->skip.b), n->ws, B, &r->skip.s, 0);
    else
        memcpy(out, x, sizeof(float) * nout);
    bfn_conv2d_forward(out, n->s1, PAR(n, r->conv2.w), PAR(n, r->conv2.b), n->ws, B, &r->conv2.s, 1);
}

static bfn_attn_params attn_params(bfn_net *n, const attn_rec *t)
{
    bfn_attn_params p = {PAR(n, t->norm_w), PAR(n, t->norm_b), PAR(n, t->qkv_w),
                         PAR(n, t->qkv_b), PAR(n, t->proj_w), PAR(n, t->proj_b)};
    return p;
}

static bfn_attn_saved attn_saved(bfn_net *n, const attn_rec *t)
{
    bfn_attn_saved s = {ACT(n, t->mean), ACT(n, t->rstd), ACT(n, t->qkv), ACT(n, t->att),
                        ACT(n, t->o)};
    return s;
}

static bfn_temb_params temb_params(bfn_net *n)
{
    bfn_temb_params p = {PAR(n, n->temb_w1), PAR(n, n->temb_b1), PAR(n, n->temb_w2),
                         PAR(n, n->temb_b2)};
    return p;
}

static bfn_temb_saved temb_saved(bfn_net *n)
{
    bfn_temb_saved s = {ACT(n, n->t_sin), ACT(n, n->t_m1), ACT(n, n->t_a1), ACT(n, n->t_m2)};
    return s;
}

static void op_forward(bfn_net *n, const op *o, int B, int training, bfn_rng *rng)
{
    const stream *si = &n->streams[o->in], *so = &n->streams[o->out];
    switch (o->kind) {
    case OP_CONV:
        bfn_conv2d_forward(ACT(n, so->act), ACT(n, si->act), PAR(n, o->u.conv.w),
                           PAR(n, o->u.conv.b), n->ws, B, &o->u.conv.s, 0);
        break;
    case OP_RES:
        res_forward(n, o, B, training, rng);
        break;
    case OP_ATTN: {
        bfn_attn_params p = attn_params(n, &o->u.attn);
        bfn_attn_saved s = attn_saved(n, &o->u.attn);
        bfn_attention_forward(ACT(n, so->act), &s, ACT(n, si->act), &p, n->ws, B, &o->u.attn.s);
        break;
    }
    case OP_UPSAMPLE:
        bfn_upsample2x_forward(ACT(n, so->act), ACT(n, si->act), B, si->c, si->h, si->w);
        break;
    case OP_CONCAT: {
        const stream *s2 = &n->streams[o->in2];
        bfn_concat_forward(ACT(n, so->act), ACT(n, si->act), ACT(n, s2->act), B, si->c, s2->c,
                           si->h * si->w);
        break;
    }
    }
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
    const bfn_net_config *c = &n->cfg;
    int hw = c->H * c->W;

    /* network input: x and a constant plane holding t, (B, in_ch + 1, H, W) */
    float *xin = ACT(n, n->streams[0].act);
    for (int b = 0; b < B; b++) {
        float *dst = xin + (size_t)b * (n->in_ch + 1) * hw;
        memcpy(dst, x + (size_t)b * n->in_ch * hw, sizeof(float) * n->in_ch * hw);
        for (int i = 0; i < hw; i++)
            dst[(size_t)n->in_ch * hw + i] = t[b];
    }
    bfn_temb_params tp = temb_params(n);
    bfn_temb_saved ts = temb_saved(n);
    bfn_temb_forward(ACT(n, n->t_e), &ts, t, &tp, B, c->temb_dim);

    for (int i = 0; i < n->n_ops; i++)
        op_forward(n, &n->ops[i], B, training, rng);

    const stream *h = &n->streams[n->head_in];
    bfn_groupnorm_silu_forward(n->s1, ACT(n, n->out_mean), ACT(n, n->out_rstd), ACT(n, h->act),
                               PAR(n, n->out_norm_w), PAR(n, n->out_norm_b), B, h->c, hw,
                               c->groups);
    bfn_conv2d_forward(logits, n->s1, PAR(n, n->out_conv.w), PAR(n, n->out_conv.b), n->ws, B,
                       &n->out_conv.s, 0);
    n->last_B = B;
    n->last_training = training;
    return BFN_OK;
}

/* ---- backward ---- */

static void res_backward(bfn_net *n, const op *o, int B)
{
    const res_rec *r = &o->u.res;
    int G = n->cfg.groups, D = n->cfg.temb_dim;
    float p = n->cfg.dropout;
    const float *x = ACT(n, n->streams[o->in].act), *h1 = ACT(n, r->h1);
    float *dx = DACT(n, n->streams[o->in].grad);
    const float *dout = DACT(n, n->streams[o->out].grad);
    size_t nout = (size_t)B * r->cout * r->hw, nin = (size_t)B * r->cin * r->hw;
    const uint8_t *mask = n->masks + r->mask;

    if (r->skip.s.cout)
        bfn_conv2d_backward(dx, GRD(n, r->skip.w), GRD(n, r->skip.b), dout, x, PAR(n, r->skip.w),
                            n->ws, B, &r->skip.s);
    else
        for (size_t i = 0; i < nout; i++)
            dx[i] += dout[i];

    /* conv2: its input dropout(SiLU(GN2(h1))) is recomputed into s1 */
    bfn_groupnorm_silu_apply(n->s1, h1, ACT(n, r->mean2), ACT(n, r->rstd2), PAR(n, r->norm2_w),
                             PAR(n, r->norm2_b), B, r->cout, r->hw, G);
    if (p > 0.0f)
        bfn_dropout_forward(n->s1, n->s1, mask, nout, p);
    memset(n->s2, 0, sizeof(float) * nout);
    bfn_conv2d_backward(n->s2, GRD(n, r->conv2.w), GRD(n, r->conv2.b), dout, n->s1,
                        PAR(n, r->conv2.w), n->ws, B, &r->conv2.s);
    /* dropout is a diagonal linear map, so its backward is the same map
     * applied to the gradient, here in place */
    if (p > 0.0f)
        bfn_dropout_forward(n->s2, n->s2, mask, nout, p);
    float *dh1 = n->s1;
    memset(dh1, 0, sizeof(float) * nout);
    bfn_groupnorm_silu_backward(dh1, GRD(n, r->norm2_w), GRD(n, r->norm2_b), n->s2, h1,
                                ACT(n, r->mean2), ACT(n, r->rstd2), PAR(n, r->norm2_w),
                                PAR(n, r->norm2_b), B, r->cout, r->hw, G);

    /* time projection added per channel */
    memset(n->sp, 0, sizeof(float) * B * r->cout);
    bfn_add_channel_backward(n->sp, dh1, B, r->cout, r->hw);
    bfn_linear_backward(DACT(n, n->t_de), GRD(n, r->temb_w), GRD(n, r->temb_b), n->sp,
                        ACT(n, n->t_e), PAR(n, r->temb_w), B, D, r->cout);

    /* conv1: its input SiLU(GN1(x)) is recomputed into s2 */
    bfn_groupnorm_silu_apply(n->s2, x, ACT(n, r->mean1), ACT(n, r->rstd1), PAR(n, r->norm1_w),
                             PAR(n, r->norm1_b), B, r->cin, r->hw, G);
    memset(n->s3, 0, sizeof(float) * nin);
    bfn_conv2d_backward(n->s3, GRD(n, r->conv1.w), GRD(n, r->conv1.b), dh1, n->s2,
                        PAR(n, r->conv1.w), n->ws, B, &r->conv1.s);
    bfn_groupnorm_silu_backward(dx, GRD(n, r->norm1_w), GRD(n, r->norm1_b), n->s3, x,
                                ACT(n, r->mean1), ACT(n, r->rstd1), PAR(n, r->norm1_w),
                                PAR(n, r->norm1_b), B, r->cin, r->hw, G);
}

static void op_backward(bfn_net *n, const op *o, int B, int need_dx)
{
    const stream *si = &n->streams[o->in], *so = &n->streams[o->out];
    switch (o->kind) {
    case OP_CONV: {
        /* stream 0 is the network input: its gradient only when asked for */
        float *din = o->in == 0 && !need_dx ? NULL : DACT(n, si->grad);
        bfn_conv2d_backward(din, GRD(n, o->u.conv.w), GRD(n, o->u.conv.b), DACT(n, so->grad),
                            ACT(n, si->act), PAR(n, o->u.conv.w), n->ws, B, &o->u.conv.s);
        break;
    }
    case OP_RES:
        res_backward(n, o, B);
        break;
    case OP_ATTN: {
        const attn_rec *t = &o->u.attn;
        bfn_attn_params p = attn_params(n, t);
        bfn_attn_saved s = attn_saved(n, t);
        bfn_attn_grads g = {GRD(n, t->norm_w), GRD(n, t->norm_b), GRD(n, t->qkv_w),
                            GRD(n, t->qkv_b), GRD(n, t->proj_w), GRD(n, t->proj_b)};
        bfn_attention_backward(DACT(n, si->grad), &g, DACT(n, so->grad), ACT(n, si->act), &s, &p,
                               n->ws, B, &t->s);
        break;
    }
    case OP_UPSAMPLE:
        bfn_upsample2x_backward(DACT(n, si->grad), DACT(n, so->grad), B, si->c, si->h, si->w);
        break;
    case OP_CONCAT: {
        const stream *s2 = &n->streams[o->in2];
        bfn_concat_backward(DACT(n, si->grad), DACT(n, s2->grad), DACT(n, so->grad), B, si->c,
                            s2->c, si->h * si->w);
        break;
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
    for (int i = 0; i < n->n_streams; i++) {
        const stream *s = &n->streams[i];
        memset(DACT(n, s->grad), 0, sizeof(float) * B * s->c * s->h * s->w);
    }
    memset(DACT(n, n->t_de), 0, sizeof(float) * B * c->temb_dim);

    const stream *h = &n->streams[n->head_in];
    bfn_groupnorm_silu_apply(n->s1, ACT(n, h->act), ACT(n, n->out_mean), ACT(n, n->out_rstd),
                             PAR(n, n->out_norm_w), PAR(n, n->out_norm_b), B, h->c, hw, c->groups);
    memset(n->s2, 0, sizeof(float) * B * h->c * hw);
    bfn_conv2d_backward(n->s2, GRD(n, n->out_conv.w), GRD(n, n->out_conv.b), dlogits, n->s1,
                        PAR(n, n->out_conv.w), n->ws, B, &n->out_conv.s);
    bfn_groupnorm_silu_backward(DACT(n, h->grad), GRD(n, n->out_norm_w), GRD(n, n->out_norm_b),
                                n->s2, ACT(n, h->act), ACT(n, n->out_mean), ACT(n, n->out_rstd),
                                PAR(n, n->out_norm_w), PAR(n, n->out_norm_b), B, h->c, hw,
                                c->groups);

    for (int i = n->n_ops - 1; i >= 0; i--)
        op_backward(n, &n->ops[i], B, dx != NULL);

    bfn_temb_params tp = temb_params(n);
    bfn_temb_saved ts = temb_saved(n);
    bfn_temb_grads tg = {GRD(n, n->temb_w1), GRD(n, n->temb_b1), GRD(n, n->temb_w2),
                         GRD(n, n->temb_b2)};
    bfn_temb_backward(&tg, DACT(n, n->t_de), &ts, &tp, n->ws, B, c->temb_dim);

    if (dx) {
        const float *d0 = DACT(n, n->streams[0].grad);
        for (int b = 0; b < B; b++)
            memcpy(dx + (size_t)b * n->in_ch * hw, d0 + (size_t)b * (n->in_ch + 1) * hw,
                   sizeof(float) * n->in_ch * hw);
    }
    return BFN_OK;
}
