#include "inference_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define VEC __m256
#define LANES 8
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps(p, v)
#define V_SET1(x) _mm256_set1_ps(x)
#define V_ZERO() _mm256_setzero_ps()
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_MAX(a, b) _mm256_max_ps(a, b)
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#define V_ACTIVATE(x, activation, alpha) activate(x, activation, alpha)
/* 16 YMM registers: 12 accumulators (6 pixels x 2 vectors of 8 channels, 12 x 1, or two rows of half that), the
   weight vectors and one broadcast input value. */
#define MAX_PIXELS 12

#include "activate_avx2.h"

#include "conv_direct_template.h"

PIXELS_1_TO_6(BLOCK, 1, 1)
PIXELS_7_TO_12(BLOCK, 1, 1)
PIXELS_1_TO_6(BLOCK, 1, 2)
/* Two rows: 2 x P x V <= 12 accumulators, unpooled, and for a 2x2 pool (one vector: with two, a block holds one
   pooled pixel and ran no faster). */
PIXELS_1_TO_6(BLOCK, 2, 1)
PIXELS_1_TO_3(BLOCK, 2, 2)
EVEN_2_TO_6(POOLED_BLOCK, 2, 1)
/* One input channel, stride 1 (first layers). */
PIXELS_1_TO_6(UNIT_BLOCK, 1, 1)
PIXELS_7_TO_12(UNIT_BLOCK, 1, 1)
PIXELS_1_TO_6(UNIT_BLOCK, 1, 2)
EVEN_2_TO_6(UNIT_POOLED_BLOCK, 2, 1)

static const block_fn one_vector[] = {0, PIXELS_1_TO_6(ENTRY, 1, 1) PIXELS_7_TO_12(ENTRY, 1, 1)};
static const block_fn two_vectors[] = {0, PIXELS_1_TO_6(ENTRY, 1, 2)};
static const block_fn pair_one_vector[] = {0, PIXELS_1_TO_6(ENTRY, 2, 1)};
static const block_fn pair_two_vectors[] = {0, PIXELS_1_TO_3(ENTRY, 2, 2)};
static const block_fn pooled_one_vector[] = {0, EVEN_2_TO_6(POOLED_ENTRY, 2, 1)};
static const block_fn unit_one_vector[] = {0, PIXELS_1_TO_6(UNIT_ENTRY, 1, 1) PIXELS_7_TO_12(UNIT_ENTRY, 1, 1)};
static const block_fn unit_two_vectors[] = {0, PIXELS_1_TO_6(UNIT_ENTRY, 1, 2)};
static const block_fn unit_pooled_one_vector[] = {0, EVEN_2_TO_6(UNIT_POOLED_ENTRY, 2, 1)};

static const struct block_tables tables = {
    .row = {one_vector, two_vectors, 12, 6},
    .row_pair = {pair_one_vector, pair_two_vectors, 6, 3},
    .pooled = {pooled_one_vector, 0, 3, 0},
    .unit_row = {unit_one_vector, unit_two_vectors, 12, 6},
    .unit_pooled = {unit_pooled_one_vector, 0, 3, 0},
};

long fashion_conv_direct_scratch(const struct fashion_conv_shape *shape) { return conv_direct_scratch(shape); }

TARGET void fashion_conv_direct_avx2(const struct fashion_conv_shape *s, const float *input, const float *weights,
                                     const float *bias, float *output, float *scratch, long images) {
    conv_direct_run(&tables, s, input, weights, bias, output, scratch, images);
}

#else

long fashion_conv_direct_scratch(const struct fashion_conv_shape *shape) { return 0; }

void fashion_conv_direct_avx2(const struct fashion_conv_shape *shape, const float *input, const float *weights,
                              const float *bias, float *output, float *scratch, long images) {
    /* Never called: KernelSet selects AVX2 only on x86-64 CPUs that have it. */
    __builtin_trap();
}

#endif
