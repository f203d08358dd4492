#include "inference_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
#define VEC __m512
#define LANES 16
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps(p, v)
#define V_SET1(x) _mm512_set1_ps(x)
#define V_ZERO() _mm512_setzero_ps()
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_MAX(a, b) _mm512_max_ps(a, b)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_ACTIVATE(x, activation, alpha) activate(x, activation, alpha)
/* Widest row segment computed at once: 14 pixels x 2 vectors of 16 output channels = 28 accumulators, plus
   two weight vectors and one broadcast input value, in the 32 ZMM registers. */
#define MAX_PIXELS 14

TARGET __attribute__((always_inline)) static inline __m512 activate(__m512 x, int activation, __m512 alpha) {
    if (activation == FASHION_ACTIVATION_RELU) return _mm512_max_ps(x, _mm512_setzero_ps());
    if (activation == FASHION_ACTIVATION_LEAKY_RELU) {
        const __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
        return _mm512_mask_mul_ps(x, negative, x, alpha);
    }
    return x;
}

#include "conv_direct_template.h"

PIXELS_1_TO_14(BLOCK, 1, 1)
PIXELS_1_TO_14(BLOCK, 1, 2)
/* Two rows for a 2x2 pool: 2 x P x V <= 28 accumulators. */
EVEN_2_TO_14(POOLED_BLOCK, 2, 1)
EVEN_2_TO_6(POOLED_BLOCK, 2, 2)

static const block_fn one_vector[] = {0, PIXELS_1_TO_14(ENTRY, 1, 1)};
static const block_fn two_vectors[] = {0, PIXELS_1_TO_14(ENTRY, 1, 2)};
static const block_fn pooled_one_vector[] = {0, EVEN_2_TO_14(POOLED_ENTRY, 2, 1)};
static const block_fn pooled_two_vectors[] = {0, EVEN_2_TO_6(POOLED_ENTRY, 2, 2)};
static const struct block_tables tables = {
    .row = {one_vector, two_vectors, 14, 14},
    .pooled = {pooled_one_vector, pooled_two_vectors, 7, 3},
};

TARGET void fashion_conv_direct_avx512(const struct fashion_conv_shape *s, const float *input, const float *weights,
                                       const float *bias, float *output, float *scratch, long images) {
    conv_direct_run(&tables, s, input, weights, bias, output, scratch, images);
}

#else

void fashion_conv_direct_avx512(const struct fashion_conv_shape *shape, const float *input, const float *weights,
                                const float *bias, float *output, float *scratch, long images) {
    /* Never called: KernelSet selects AVX-512 only on x86-64 CPUs that have it. */
    __builtin_trap();
}

#endif
