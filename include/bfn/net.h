/* The output network of a BFN: a U-Net mapping the input distribution θ and
 * the time t to per-pixel output logits.
 *
 * Layout: NCHW float32. Input x: (B, in_ch, H, W) where in_ch = 1 for K = 2
 * (the channel holds 2θ_on − 1) and in_ch = K otherwise (2θ_k − 1 per class);
 * the network appends a constant channel holding t itself. Output logits:
 * (B, out_ch, H, W) with out_ch = 1 for K = 2 (p_on = σ(logit)) and K
 * otherwise (p = softmax over the K planes).
 *
 * Architecture (DDPM-style, sized by the config): conv3x3 in → for each level:
 * n_res residual blocks [GroupNorm, SiLU, conv3x3, + time embedding (MLP of a
 * sinusoidal embedding of t), GroupNorm, SiLU, dropout, conv3x3 (zero-init),
 * 1x1 skip conv when widths differ], then a stride-2 conv3x3 down (except the
 * last level) → middle: res block, self-attention, res block at the lowest
 * resolution → up path mirroring it with skip concatenation, nearest ×2
 * upsampling + conv3x3 → GroupNorm, SiLU, conv3x3 out (zero-init).
 * Self-attention runs after each residual block of the lowest attn_levels
 * levels (1: the lowest only, as in DDPM at 7×7 or 8×8; 2: also the level
 * above it, e.g. 14×14 or 16×16) and in the middle when attn_levels >= 1.
 *
 * All memory (parameters, gradients, activations saved for backward,
 * workspaces) is allocated once by bfn_net_create for up to max_batch images;
 * forward and backward allocate nothing. */
#ifndef BFN_NET_H
#define BFN_NET_H

#include "bfn/common.h"
#include "bfn/rng.h"

#define BFN_NET_MAX_LEVELS 5
#define BFN_NET_MAX_RES 8 /* most residual blocks per level (n_res) */

typedef struct {
    int K;          /* classes per pixel, >= 2 */
    int H, W;       /* image size; each must be divisible by 2^(n_levels-1) */
    int base_ch;    /* channels at the first level, e.g. 32 */
    int n_levels;   /* resolutions, e.g. 3 for 28→14→7 */
    int ch_mult[BFN_NET_MAX_LEVELS]; /* width of level l = base_ch * ch_mult[l] */
    int n_res;      /* residual blocks per level on the way down (up: n_res + 1) */
    int attn_levels;/* self-attention after each block of the lowest this many
                       levels and in the middle; 0: none, 1: lowest level only */
    int n_heads;    /* attention heads (divides the width of every level with
                       attention) */
    int temb_dim;   /* time-embedding width (sinusoidal part and MLP output) */
    int groups;     /* GroupNorm groups (every width divisible by it) */
    float dropout;  /* dropout probability in residual blocks, training only */
} bfn_net_config;

typedef struct bfn_net bfn_net;

/* A sensible small default for 28×28 MNIST (K = 2). */
bfn_net_config bfn_net_config_default(int K, int H, int W);
/* Checks a config; on error names the offending field. */
bfn_status bfn_net_config_check(const bfn_net_config *cfg, bfn_err *err);

/* Number of parameters a net with this config has (bfn_net_param_count
 * after bfn_net_create), without allocating the net: for checking a file
 * against its header before trusting the header with memory. */
bfn_status bfn_net_config_param_count(const bfn_net_config *cfg, size_t *count, bfn_err *err);

static inline int bfn_net_in_channels(int K) { return K == 2 ? 1 : K; }
static inline int bfn_net_out_channels(int K) { return K == 2 ? 1 : K; }

bfn_status bfn_net_create(bfn_net **out, const bfn_net_config *cfg, int max_batch, bfn_err *err);
void bfn_net_destroy(bfn_net *net);

const bfn_net_config *bfn_net_get_config(const bfn_net *net);
int bfn_net_max_batch(const bfn_net *net);

/* Parameters live in one flat array; gradients in another of the same size.
 * The net keeps weights derived from the parameters between forwards;
 * bfn_net_params marks them stale, so write the parameters only through a
 * pointer taken after the last bfn_net_forward (in debug builds a forward
 * that finds them written behind its back fails with BFN_ERR_ARG). */
size_t bfn_net_param_count(const bfn_net *net);
float *bfn_net_params(bfn_net *net);
float *bfn_net_grads(bfn_net *net);
void bfn_net_zero_grads(bfn_net *net);

/* Named tensors inside the flat parameter array, in a fixed order:
 * name like "down.0.res.1.conv1.weight", offset into params, shape (ndim <= 4). */
typedef struct {
    const char *name;
    size_t offset;
    int ndim;
    int shape[4];
    int decay; /* 1 if weight decay applies (weights), 0 for biases and norms */
} bfn_tensor_info;
int bfn_net_tensor_count(const bfn_net *net);
const bfn_tensor_info *bfn_net_tensor(const bfn_net *net, int i);

/* Fresh initialisation, deterministic in seed. */
void bfn_net_init_params(bfn_net *net, uint64_t seed);

/* Copies every parameter tensor of src into the tensor of dst with the same
 * name (a network grown from src: e.g. with attention at more levels). The
 * tensors src lacks keep dst's values; *kept (may be NULL) receives their
 * number. With fresh initialisation those are attention blocks whose output
 * projection is zero, so dst computes what src did. BFN_ERR_MISMATCH, and
 * dst unchanged, when K or the image size differ or a tensor of src is
 * missing from dst or has another shape there. */
bfn_status bfn_net_copy_params(bfn_net *dst, const bfn_net *src, int *kept, bfn_err *err);

/* Forward pass for B <= max_batch images. x: (B, in_ch, H, W), t: (B),
 * logits: (B, out_ch, H, W). training = 1 applies dropout (drawn from rng,
 * which must then be non-NULL) and keeps what backward needs; training = 0 is
 * inference (no dropout, rng may be NULL). */
bfn_status bfn_net_forward(bfn_net *net, const float *x, const float *t, int B, int training,
                           bfn_rng *rng, float *logits);

/* Backward pass for the last training forward: dlogits (B, out_ch, H, W) is
 * d(loss)/d(logits). Accumulates (+=) into the gradient array. If dx is not
 * NULL it receives d(loss)/d(x) (B, in_ch, H, W) (overwritten), for tests. */
bfn_status bfn_net_backward(bfn_net *net, const float *dlogits, float *dx);

/* Threads this net's forward and backward use: threads >= 1 fixes the
 * number for this net; 0 (the default) follows bfn_gemm_set_threads at
 * each call. Results are the same bits for any number. Returns the previous
 * setting. A net is used by one thread at a time; different nets may run in
 * different threads at once (BLAS stays single-threaded while any runs). */
int bfn_net_set_threads(bfn_net *net, int threads);

/* Multiply-adds of one forward pass for one image (for GFLOP/s figures). */
double bfn_net_flops_per_image(const bfn_net *net);

/* Message of the last failed bfn_net_forward/backward ("" if none yet). */
const char *bfn_net_last_error(const bfn_net *net);

#endif
