/* Shared test fixtures. */
#ifndef BFN_TEST_FIXTURES_H
#define BFN_TEST_FIXTURES_H

#include "bfn/net.h"

/* A tiny 8×8 U-Net (2 levels, 8/16 channels, attention, 2 heads) that runs
 * in milliseconds: for tests of everything around the network. */
bfn_net_config fixture_tiny_config(int K, float dropout);

/* The whole file at path (malloc'd, *size its length), or NULL. */
char *fixture_read_file(const char *path, size_t *size);

#endif
