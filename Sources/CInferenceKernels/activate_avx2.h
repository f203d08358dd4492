/* The activations the AVX2 kernels apply themselves, eight floats at a time (included after <immintrin.h>,
   by the files compiled for AVX2 + FMA). LeakyReLU multiplies where x < 0, as Kernels.apply does. */
#ifndef FASHION_ACTIVATE_AVX2_H
#define FASHION_ACTIVATE_AVX2_H

__attribute__((target("avx2,fma"), always_inline)) static inline __m256 activate(__m256 x, int activation,
                                                                                 __m256 alpha) {
    if (activation == FASHION_ACTIVATION_RELU) return _mm256_max_ps(x, _mm256_setzero_ps());
    if (activation == FASHION_ACTIVATION_LEAKY_RELU) {
        const __m256 negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
        return _mm256_blendv_ps(x, _mm256_mul_ps(x, alpha), negative);
    }
    return x;
}

#endif
