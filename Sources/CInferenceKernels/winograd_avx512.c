#include "inference_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))

/* The operations and their order are those of WinogradConvolution's SIMD4 loops in Swift (additions and
   subtractions only, the maximum before the bias), 16 channels at a time, a masked group for a tail. */

TARGET void fashion_winograd_input_avx512(const float *input, float *v, const float *zeros, long images, long in_h,
                                          long in_w, long channels, long tiles_y, long tiles_x, long pad_top,
                                          long pad_left) {
    const long tiles = images * tiles_y * tiles_x;
    const long stride = tiles * channels;
    const long image_size = in_h * in_w * channels;
    long tile = 0;
    for (long image = 0; image < images; image++) {
        const float *source = input + image * image_size;
        for (long ty = 0; ty < tiles_y; ty++) {
            for (long tx = 0; tx < tiles_x; tx++) {
                const float *d[16];
                for (int i = 0; i < 4; i++) {
                    const long y = 2 * ty - pad_top + i;
                    for (int j = 0; j < 4; j++) {
                        const long x = 2 * tx - pad_left + j;
                        d[i * 4 + j] = (y >= 0 && y < in_h && x >= 0 && x < in_w) ? source + (y * in_w + x) * channels
                                                                                 : zeros;
                    }
                }
                float *target = v + tile * channels;
                for (long c = 0; c < channels; c += 16) {
                    const __mmask16 k = channels - c >= 16 ? 0xFFFF : (__mmask16)((1u << (channels - c)) - 1);
#define L(n) _mm512_maskz_loadu_ps(k, d[n] + c)
#define S(n, value) _mm512_mask_storeu_ps(target + (n) * stride + c, k, value)
                    const __m512 t00 = _mm512_sub_ps(L(0), L(8)), t01 = _mm512_sub_ps(L(1), L(9));
                    const __m512 t02 = _mm512_sub_ps(L(2), L(10)), t03 = _mm512_sub_ps(L(3), L(11));
                    const __m512 t10 = _mm512_add_ps(L(4), L(8)), t11 = _mm512_add_ps(L(5), L(9));
                    const __m512 t12 = _mm512_add_ps(L(6), L(10)), t13 = _mm512_add_ps(L(7), L(11));
                    const __m512 t20 = _mm512_sub_ps(L(8), L(4)), t21 = _mm512_sub_ps(L(9), L(5));
                    const __m512 t22 = _mm512_sub_ps(L(10), L(6)), t23 = _mm512_sub_ps(L(11), L(7));
                    const __m512 t30 = _mm512_sub_ps(L(4), L(12)), t31 = _mm512_sub_ps(L(5), L(13));
                    const __m512 t32 = _mm512_sub_ps(L(6), L(14)), t33 = _mm512_sub_ps(L(7), L(15));
                    S(0, _mm512_sub_ps(t00, t02));
                    S(1, _mm512_add_ps(t01, t02));
                    S(2, _mm512_sub_ps(t02, t01));
                    S(3, _mm512_sub_ps(t01, t03));
                    S(4, _mm512_sub_ps(t10, t12));
                    S(5, _mm512_add_ps(t11, t12));
                    S(6, _mm512_sub_ps(t12, t11));
                    S(7, _mm512_sub_ps(t11, t13));
                    S(8, _mm512_sub_ps(t20, t22));
                    S(9, _mm512_add_ps(t21, t22));
                    S(10, _mm512_sub_ps(t22, t21));
                    S(11, _mm512_sub_ps(t21, t23));
                    S(12, _mm512_sub_ps(t30, t32));
                    S(13, _mm512_add_ps(t31, t32));
                    S(14, _mm512_sub_ps(t32, t31));
                    S(15, _mm512_sub_ps(t31, t33));
#undef L
#undef S
                }
                tile++;
            }
        }
    }
}

TARGET void fashion_winograd_output_max_pool_avx512(const float *products, const float *bias, float *output,
                                                    long tiles, long channels, int relu) {
    const long stride = tiles * channels;
    for (long tile = 0; tile < tiles; tile++) {
        const float *m = products + tile * channels;
        float *target = output + tile * channels;
        for (long c = 0; c < channels; c += 16) {
            const __mmask16 k = channels - c >= 16 ? 0xFFFF : (__mmask16)((1u << (channels - c)) - 1);
#define L(n) _mm512_maskz_loadu_ps(k, m + (n) * stride + c)
            const __m512 s00 = _mm512_add_ps(_mm512_add_ps(L(0), L(4)), L(8));
            const __m512 s01 = _mm512_add_ps(_mm512_add_ps(L(1), L(5)), L(9));
            const __m512 s02 = _mm512_add_ps(_mm512_add_ps(L(2), L(6)), L(10));
            const __m512 s03 = _mm512_add_ps(_mm512_add_ps(L(3), L(7)), L(11));
            const __m512 s10 = _mm512_sub_ps(_mm512_sub_ps(L(4), L(8)), L(12));
            const __m512 s11 = _mm512_sub_ps(_mm512_sub_ps(L(5), L(9)), L(13));
            const __m512 s12 = _mm512_sub_ps(_mm512_sub_ps(L(6), L(10)), L(14));
            const __m512 s13 = _mm512_sub_ps(_mm512_sub_ps(L(7), L(11)), L(15));
#undef L
            const __m512 y00 = _mm512_add_ps(_mm512_add_ps(s00, s01), s02);
            const __m512 y01 = _mm512_sub_ps(_mm512_sub_ps(s01, s02), s03);
            const __m512 y10 = _mm512_add_ps(_mm512_add_ps(s10, s11), s12);
            const __m512 y11 = _mm512_sub_ps(_mm512_sub_ps(s11, s12), s13);
            /* Swift's maximum4(a, b) is (a < b ? b : a), which is _mm512_max_ps(b, a) (NaN included). */
            __m512 maximum = _mm512_max_ps(_mm512_max_ps(y11, y10), _mm512_max_ps(y01, y00));
            if (bias) maximum = _mm512_add_ps(maximum, _mm512_maskz_loadu_ps(k, bias + c));
            if (relu) maximum = _mm512_max_ps(_mm512_setzero_ps(), maximum);
            _mm512_mask_storeu_ps(target + c, k, maximum);
        }
    }
}

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
