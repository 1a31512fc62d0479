/* U-Net configuration: the default and its validation. */
#include "bfn/net.h"

/* Limits that only keep sizes (and their products) sane. */
#define MAX_SIDE 1024
#define MAX_WIDTH 4096
#define MAX_K 256
#define MAX_ATTN_TOKENS 4096 /* attention matrices are (tokens, tokens) per head */

bfn_net_config bfn_net_config_default(int K, int H, int W)
{
    /* Halve down to a lowest resolution of about 7-8 pixels (28→14→7,
     * 64→32→16→8), at most 4 levels. */
    int levels = 1;
    while (levels < 4 && H % (2 << (levels - 1)) == 0 && W % (2 << (levels - 1)) == 0 &&
           (H >> levels) >= 7 && (W >> levels) >= 7)
        levels++;
    bfn_net_config c = {
        .K = K,
        .H = H,
        .W = W,
        .base_ch = 32,
        .n_levels = levels,
        .ch_mult = {1, 2, 2, 2, 2},
        .n_res = 2,
        .attn_levels = 1,
        .n_heads = 4,
        .temb_dim = 128,
        .groups = 8,
        .dropout = 0.1f,
    };
    return c;
}

bfn_status bfn_net_config_check(const bfn_net_config *c, bfn_err *err)
{
    if (!c)
        return bfn_err_set(err, BFN_ERR_ARG, "net config: NULL");
    if (c->K < 2 || c->K > MAX_K)
        return bfn_err_set(err, BFN_ERR_ARG, "net config: K = %d, must be in [2, %d]", c->K,
                           MAX_K);
    if (c->n_levels < 1 || c->n_levels > BFN_NET_MAX_LEVELS)
        return bfn_err_set(err, BFN_ERR_ARG, "net config: n_levels = %d, must be in [1, %d]",
                           c->n_levels, BFN_NET_MAX_LEVELS);
    if (c->H < 1 || c->H > MAX_SIDE || c->W < 1 || c->W > MAX_SIDE)
        return bfn_err_set(err, BFN_ERR_ARG, "net config: H x W = %d x %d, each must be in [1, %d]",
                           c->H, c->W, MAX_SIDE);
    int f = 1 << (c->n_levels - 1);
    if (c->H % f || c->W % f)
        return bfn_err_set(err, BFN_ERR_ARG,
                           "net config: H x W = %d x %d not divisible by 2^(n_levels-1) = %d",
                           c->H, c->W, f);
    if (c->groups < 1)
        return bfn_err_set(err, BFN_ERR_ARG, "net config: groups = %d, must be >= 1", c->groups);
    if (c->base_ch < 1 || c->base_ch > MAX_WIDTH)
        return bfn_err_set(err, BFN_ERR_ARG, "net config: base_ch = %d, must be in [1, %d]",
                           c->base_ch, MAX_WIDTH);
    if (c->base_ch % c->groups)
        return bfn_err_set(err, BFN_ERR_ARG,
                           "net config: base_ch = %d not divisible by groups = %d", c->base_ch,
                           c->groups);
    for (int l = 0; l < c->n_levels; l++) {
        if (c->ch_mult[l] < 1 || c->ch_mult[l] > MAX_WIDTH / c->base_ch)
            return bfn_err_set(err, BFN_ERR_ARG,
                               "net config: ch_mult[%d] = %d, must be in [1, %d] for base_ch %d",
                               l, c->ch_mult[l], MAX_WIDTH / c->base_ch, c->base_ch);
        if ((c->base_ch * c->ch_mult[l]) % c->groups)
            return bfn_err_set(err, BFN_ERR_ARG,
                               "net config: width base_ch*ch_mult[%d] = %d not divisible by "
                               "groups = %d", l, c->base_ch * c->ch_mult[l], c->groups);
    }
    if (c->n_res < 0 || c->n_res > BFN_NET_MAX_RES)
        return bfn_err_set(err, BFN_ERR_ARG, "net config: n_res = %d, must be in [0, %d]",
                           c->n_res, BFN_NET_MAX_RES);
    if (c->attn_levels < 0 || c->attn_levels > c->n_levels)
        return bfn_err_set(err, BFN_ERR_ARG,
                           "net config: attn_levels = %d, must be in [0, n_levels = %d]",
                           c->attn_levels, c->n_levels);
    for (int l = c->n_levels - c->attn_levels; l < c->n_levels; l++) {
        int width = c->base_ch * c->ch_mult[l], g = 1 << l;
        if (c->n_heads < 1 || width % c->n_heads)
            return bfn_err_set(err, BFN_ERR_ARG,
                               "net config: n_heads = %d must be >= 1 and divide the width %d "
                               "of level %d, which has attention", c->n_heads, width, l);
        int tokens = (c->H / g) * (c->W / g);
        if (tokens > MAX_ATTN_TOKENS)
            return bfn_err_set(err, BFN_ERR_ARG,
                               "net config: attention over %d positions (H, W at level %d); at "
                               "most %d, use fewer attn_levels or more n_levels", tokens, l,
                               MAX_ATTN_TOKENS);
    }
    if (c->temb_dim < 4 || c->temb_dim > MAX_WIDTH || c->temb_dim % 2)
        return bfn_err_set(err, BFN_ERR_ARG,
                           "net config: temb_dim = %d, must be even and in [4, %d]", c->temb_dim,
                           MAX_WIDTH);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return bfn_err_set(err, BFN_ERR_ARG, "net config: dropout = %g, must be in [0, 1)",
                           (double)c->dropout);
    return BFN_OK;
}
