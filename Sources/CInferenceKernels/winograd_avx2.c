#include "inference_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define VEC __m256
#define LANES 8
#define MASK __m256i
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_SUB(a, b) _mm256_sub_ps(a, b)
#define V_MAX(a, b) _mm256_max_ps(a, b)
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
#define MASK_FOR(n) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define V_LOAD_MASKED(k, p) _mm256_maskload_ps(p, k)
#define V_STORE_MASKED(p, k, v) _mm256_maskstore_ps(p, k, v)
#define WINOGRAD_INPUT fashion_winograd_input_avx2
#define WINOGRAD_OUTPUT_MAX_POOL fashion_winograd_output_max_pool_avx2

#include "winograd_template.h"

#else

void fashion_winograd_input_avx2(const float *input, float *v, const float *zeros, long images, long in_h,
                                   long in_w, long channels, long tiles_y, long tiles_x, long pad_top, long pad_left) {
    __builtin_trap();
}

void fashion_winograd_output_max_pool_avx2(const float *products, const float *bias, float *output, long tiles,
                                             long channels, int relu) {
    __builtin_trap();
}

#endif
