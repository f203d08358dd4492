#include "inference_kernels.h"

#include <string.h>

/* [k][n] -> [n / 16][k][16], then [k][8] for the last 8 columns when n % 16 == 8: each panel of columns is one
   contiguous stream, read in order once per block of rows. Plain C on every architecture: it runs once, when the
   plan is built. */
void fashion_gemm_pack_weights(const float *weights, long k, long n, float *packed) {
    long column = 0;
    for (; column + 16 <= n; column += 16) {
        for (long row = 0; row < k; row++, packed += 16) memcpy(packed, weights + row * n + column, 16 * sizeof(float));
    }
    for (; column + 8 <= n; column += 8) {
        for (long row = 0; row < k; row++, packed += 8) memcpy(packed, weights + row * n + column, 8 * sizeof(float));
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#include "activate_avx2.h"

#define TARGET __attribute__((target("avx2,fma")))

/* R rows (1-6) x V vectors of 8 columns (1 or 2): 12 accumulators at most, plus the two weight vectors and one
   broadcast, in the 16 YMM registers. Each output is the sum over k in order, one fused multiply-add per term,
   then the bias and the activation. */
TARGET __attribute__((always_inline)) static inline void gemm_block(const int R, const int V, const int ACT,
                                                                    const float *a, long k, const float *panel,
                                                                    const float *bias, __m256 alpha, float *c,
                                                                    long n) {
    __m256 acc[6][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) acc[r][v] = _mm256_setzero_ps();
    for (long i = 0; i < k; i++) {
        const __m256 w0 = _mm256_loadu_ps(panel + i * 8 * V);
        const __m256 w1 = V == 2 ? _mm256_loadu_ps(panel + i * 16 + 8) : w0;
        for (int r = 0; r < R; r++) {
            const __m256 x = _mm256_broadcast_ss(a + r * k + i);
            acc[r][0] = _mm256_fmadd_ps(x, w0, acc[r][0]);
            if (V == 2) acc[r][1] = _mm256_fmadd_ps(x, w1, acc[r][1]);
        }
    }
    for (int v = 0; v < V; v++) {
        const __m256 b = bias ? _mm256_loadu_ps(bias + 8 * v) : _mm256_setzero_ps();
        for (int r = 0; r < R; r++) {
            _mm256_storeu_ps(c + r * n + 8 * v, activate(_mm256_add_ps(acc[r][v], b), ACT, alpha));
        }
    }
}

/* One panel of V vectors of columns for every row: blocks of 6 rows, then one block of the 1-5 left, except that
   6 + 1 and 6 + 2 last rows run as 4 + 3 and 4 + 4: a block of one or two rows reads the whole panel for little
   work (fc1 at 32 rows: 4.3 -> 4.1 us per row stand-alone). */
TARGET __attribute__((always_inline)) static inline void gemm_panel(const int V, const int ACT, const float *a,
                                                                    const float *panel, const float *bias,
                                                                    __m256 alpha, float *c, long m, long k, long n) {
    long sixes = m / 6;
    if (sixes > 0 && (m % 6 == 1 || m % 6 == 2)) sixes--;
    long row = 0;
    for (; row < 6 * sixes; row += 6) gemm_block(6, V, ACT, a + row * k, k, panel, bias, alpha, c + row * n, n);
    if (m - row >= 7) {
        gemm_block(4, V, ACT, a + row * k, k, panel, bias, alpha, c + row * n, n);
        row += 4;
    }
    a += row * k;
    c += row * n;
    switch (m - row) {
    case 5: gemm_block(5, V, ACT, a, k, panel, bias, alpha, c, n); break;
    case 4: gemm_block(4, V, ACT, a, k, panel, bias, alpha, c, n); break;
    case 3: gemm_block(3, V, ACT, a, k, panel, bias, alpha, c, n); break;
    case 2: gemm_block(2, V, ACT, a, k, panel, bias, alpha, c, n); break;
    case 1: gemm_block(1, V, ACT, a, k, panel, bias, alpha, c, n); break;
    default: break;
    }
}

TARGET __attribute__((always_inline)) static inline void gemm_run(const int ACT, const float *a, const float *packed,
                                                                  const float *bias, float *c, long m, long k, long n,
                                                                  float alpha_value) {
    const __m256 alpha = _mm256_set1_ps(alpha_value);
    long column = 0;
    for (; column + 16 <= n; column += 16, packed += 16 * k) {
        gemm_panel(2, ACT, a, packed, bias ? bias + column : 0, alpha, c + column, m, k, n);
    }
    if (column < n) gemm_panel(1, ACT, a, packed, bias ? bias + column : 0, alpha, c + column, m, k, n);
}

TARGET void fashion_gemm_packed_avx2(const float *a, const float *packed, const float *bias, float *c, long m, long k,
                                     long n, int activation, float alpha) {
    /* One copy of the loops per activation, so that it is not tested per block. */
    switch (activation) {
    case FASHION_ACTIVATION_RELU: gemm_run(FASHION_ACTIVATION_RELU, a, packed, bias, c, m, k, n, alpha); break;
    case FASHION_ACTIVATION_LEAKY_RELU:
        gemm_run(FASHION_ACTIVATION_LEAKY_RELU, a, packed, bias, c, m, k, n, alpha);
        break;
    default: gemm_run(FASHION_ACTIVATION_NONE, a, packed, bias, c, m, k, n, alpha); break;
    }
}

#else

void fashion_gemm_packed_avx2(const float *a, const float *packed, const float *bias, float *c, long m, long k,
                              long n, int activation, float alpha) {
    /* Never called: KernelSet selects AVX2 only on x86-64 CPUs that have it. */
    __builtin_trap();
}

#endif
