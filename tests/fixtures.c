#include "fixtures.h"

bfn_net_config fixture_tiny_config(int K, float dropout)
{
    bfn_net_config c = bfn_net_config_default(K, 8, 8);
    c.base_ch = 8;
    c.n_levels = 2;
    c.ch_mult[0] = 1;
    c.ch_mult[1] = 2;
    c.n_res = 1;
    c.n_heads = 2;
    c.temb_dim = 16;
    c.groups = 4;
    c.dropout = dropout;
    return c;
}
