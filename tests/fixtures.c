#include "fixtures.h"

#include <stdio.h>
#include <stdlib.h>

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

char *fixture_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf && size)
        *size = (size_t)n;
    return buf;
}
