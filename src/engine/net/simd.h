/* x86 vector helpers shared by the layer kernels (internal to the engine).
 * BFN_X86 is 1 where GCC-style target attributes and <immintrin.h> are
 * available; the AVX-512 code is compiled with BFN_T512 and chosen at run
 * time (bfn_convk_isa), so the build itself targets a baseline CPU. */
#ifndef BFN_NET_SIMD_H
#define BFN_NET_SIMD_H

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define BFN_X86 1
#include <immintrin.h>
#define BFN_T512 __attribute__((target("avx512f")))

/* The first n of 16 lanes: none for n <= 0, all for n >= 16. */
static inline __mmask16 bfn_lanes16(int n)
{
    return (__mmask16)(n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1);
}
#else
#define BFN_X86 0
#endif

#endif
