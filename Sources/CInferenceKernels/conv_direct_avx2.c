#include "inference_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

static const float zero_row[FASHION_DIRECT_MAX_IN_CHANNELS];

#define TARGET __attribute__((target("avx2,fma")))

/* Output pixels computed together: 6 pixels x 16 channels = 12 accumulators, plus two weight
   vectors and one broadcast input, fill the 16 YMM registers. */
#define PIXELS 6

TARGET static inline __m256 activate(__m256 x, int activation, __m256 alpha) {
    if (activation == FASHION_ACTIVATION_RELU) return _mm256_max_ps(x, _mm256_setzero_ps());
    if (activation == FASHION_ACTIVATION_LEAKY_RELU) {
        __m256 negative = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
        return _mm256_blendv_ps(x, _mm256_mul_ps(x, alpha), negative);
    }
    return x;
}

TARGET void fashion_conv_direct_avx2(const float *input, const float *weights, const float *bias, float *output,
                                     long images, long in_h, long in_w, long in_c, long out_h, long out_w,
                                     long out_c, long kernel_h, long kernel_w, long stride_y, long stride_x,
                                     long dilation_y, long dilation_x, long pad_top, long pad_left, int activation,
                                     float alpha) {
    const __m256 leak = _mm256_set1_ps(alpha);
    const long in_image = in_h * in_w * in_c;
    const long out_image = out_h * out_w * out_c;
    const int unit_interior = in_c == 1 && stride_x == 1;
    for (long image = 0; image < images; image++) {
        const float *source = input + image * in_image;
        float *target_image = output + image * out_image;
        for (long oy = 0; oy < out_h; oy++) {
            const long y0 = oy * stride_y - pad_top;
            for (long ox0 = 0; ox0 < out_w; ox0 += PIXELS) {
                const long count = out_w - ox0 < PIXELS ? out_w - ox0 : PIXELS;
                float *target = target_image + (oy * out_w + ox0) * out_c;
                for (long m = 0; m < out_c; m += 16) {
                    const int pair = m + 16 <= out_c;
                    __m256 acc[PIXELS][2];
                    const __m256 b0 = bias ? _mm256_loadu_ps(bias + m) : _mm256_setzero_ps();
                    const __m256 b1 = bias && pair ? _mm256_loadu_ps(bias + m + 8) : _mm256_setzero_ps();
                    for (int p = 0; p < PIXELS; p++) {
                        acc[p][0] = b0;
                        acc[p][1] = b1;
                    }
                    for (long ky = 0; ky < kernel_h; ky++) {
                        const long y = y0 + ky * dilation_y;
                        if (y < 0 || y >= in_h) continue;
                        const float *row = source + y * in_w * in_c;
                        if (unit_interior && count == PIXELS && ox0 - pad_left >= 0 &&
                            ox0 + PIXELS - 1 - pad_left + (kernel_w - 1) * dilation_x < in_w) {
                            /* One channel, stride 1, every tap inside the row: the six pixels of a tap are
                               consecutive input values, read without per-pixel address work. */
                            for (long kx = 0; kx < kernel_w; kx++) {
                                const float *base = row + ox0 - pad_left + kx * dilation_x;
                                const float *w = weights + (ky * kernel_w + kx) * out_c + m;
                                const __m256 w0 = _mm256_loadu_ps(w);
                                const __m256 w1 = pair ? _mm256_loadu_ps(w + 8) : _mm256_setzero_ps();
                                for (int p = 0; p < PIXELS; p++) {
                                    const __m256 value = _mm256_broadcast_ss(base + p);
                                    acc[p][0] = _mm256_fmadd_ps(value, w0, acc[p][0]);
                                    acc[p][1] = _mm256_fmadd_ps(value, w1, acc[p][1]);
                                }
                            }
                            continue;
                        }
                        for (long kx = 0; kx < kernel_w; kx++) {
                            const float *pixel[PIXELS];
                            for (int p = 0; p < PIXELS; p++) {
                                /* Pixels past the row's end repeat the last one; they are not stored. */
                                const long ox = ox0 + (p < count ? p : count - 1);
                                const long x = ox * stride_x - pad_left + kx * dilation_x;
                                pixel[p] = (x >= 0 && x < in_w) ? row + x * in_c : zero_row;
                            }
                            const float *w = weights + (ky * kernel_w + kx) * in_c * out_c + m;
                            if (pair) {
                                for (long c = 0; c < in_c; c++) {
                                    const __m256 w0 = _mm256_loadu_ps(w + c * out_c);
                                    const __m256 w1 = _mm256_loadu_ps(w + c * out_c + 8);
                                    for (int p = 0; p < PIXELS; p++) {
                                        const __m256 value = _mm256_broadcast_ss(pixel[p] + c);
                                        acc[p][0] = _mm256_fmadd_ps(value, w0, acc[p][0]);
                                        acc[p][1] = _mm256_fmadd_ps(value, w1, acc[p][1]);
                                    }
                                }
                            } else {
                                for (long c = 0; c < in_c; c++) {
                                    const __m256 w0 = _mm256_loadu_ps(w + c * out_c);
                                    for (int p = 0; p < PIXELS; p++) {
                                        const __m256 value = _mm256_broadcast_ss(pixel[p] + c);
                                        acc[p][0] = _mm256_fmadd_ps(value, w0, acc[p][0]);
                                    }
                                }
                            }
                        }
                    }
                    for (long p = 0; p < count; p++) {
                        _mm256_storeu_ps(target + p * out_c + m, activate(acc[p][0], activation, leak));
                        if (pair) _mm256_storeu_ps(target + p * out_c + m + 8, activate(acc[p][1], activation, leak));
                    }
                }
            }
        }
    }
}

#else

void fashion_conv_direct_avx2(const float *input, const float *weights, const float *bias, float *output, long images,
                              long in_h, long in_w, long in_c, long out_h, long out_w, long out_c, long kernel_h,
                              long kernel_w, long stride_y, long stride_x, long dilation_y, long dilation_x,
                              long pad_top, long pad_left, int activation, float alpha) {
    /* Never called: KernelSet selects AVX2 only on x86-64 CPUs that have it. */
    __builtin_trap();
}

#endif
