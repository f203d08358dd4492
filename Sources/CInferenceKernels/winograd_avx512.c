#include "inference_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
#define VEC __m512
#define LANES 16
#define MASK __mmask16
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_SUB(a, b) _mm512_sub_ps(a, b)
#define V_MAX(a, b) _mm512_max_ps(a, b)
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define MASK_FOR(n) ((__mmask16)((1u << (n)) - 1))
#define V_LOAD_MASKED(k, p) _mm512_maskz_loadu_ps(k, p)
#define V_STORE_MASKED(p, k, v) _mm512_mask_storeu_ps(p, k, v)
#define WINOGRAD_INPUT fashion_winograd_input_avx512
#define WINOGRAD_OUTPUT_MAX_POOL fashion_winograd_output_max_pool_avx512

#include "winograd_template.h"

#else

void fashion_winograd_input_avx512(const float *input, float *v, const float *zeros, long images, long in_h,
                                   long in_w, long channels, long tiles_y, long tiles_x, long pad_top, long pad_left) {
    __builtin_trap();
}

void fashion_winograd_output_max_pool_avx512(const float *products, const float *bias, float *output, long tiles,
                                             long channels, int relu) {
    __builtin_trap();
}

#endif
