#include "inference_kernels.h"

/* U = G g Gᵀ per output channel (G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]), stored as
   [out_c / 8][16][8] so that one block of 8 channels reads its 16 vectors from one pointer. Plain C on every
   architecture: it runs once, when the plan is built. */
void fashion_winograd_unit_weights(const float *w, long out_c, float *u) {
    for (long m = 0; m < out_c; m++) {
        float g[3][3], t[4][3];
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++) g[y][x] = w[(y * 3 + x) * out_c + m];
        for (int x = 0; x < 3; x++) {
            t[0][x] = g[0][x];
            t[1][x] = 0.5f * (g[0][x] + g[1][x] + g[2][x]);
            t[2][x] = 0.5f * (g[0][x] - g[1][x] + g[2][x]);
            t[3][x] = g[2][x];
        }
        float *target = u + (m / 8) * 128 + m % 8;
        for (int r = 0; r < 4; r++) {
            target[(4 * r + 0) * 8] = t[r][0];
            target[(4 * r + 1) * 8] = 0.5f * (t[r][0] + t[r][1] + t[r][2]);
            target[(4 * r + 2) * 8] = 0.5f * (t[r][0] - t[r][1] + t[r][2]);
            target[(4 * r + 3) * 8] = t[r][2];
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "activate_avx2.h"

#define TARGET __attribute__((target("avx2,fma")))

/* The scratch's parts, in floats: the zero-padded input rows the tiles read (when the convolution pads or the
   tiles reach past the input), Bᵀ applied down one row of tiles (4 rows), one row of tiles' V = Bᵀ d B (16
   values a tile). */
struct unit_layout {
    long width, height; /* the padded region the tiles cover */
    long padded;
    long pad_floats, columns_floats, tiles_floats;
};

static struct unit_layout unit_layout_of(const struct fashion_conv_shape *s) {
    struct unit_layout l;
    l.width = 2 * s->pool_out_w + 2;
    l.height = 2 * s->pool_out_h + 2;
    l.padded = s->pad_top > 0 || s->pad_left > 0 || l.height > s->in_h || l.width > s->in_w;
    l.pad_floats = l.padded ? l.height * l.width : 0;
    l.columns_floats = 4 * l.width;
    l.tiles_floats = 16 * s->pool_out_w;
    return l;
}

long fashion_winograd_unit_scratch(const struct fashion_conv_shape *shape) {
    const struct unit_layout l = unit_layout_of(shape);
    return l.pad_floats + l.columns_floats + l.tiles_floats;
}

/* Bias, activation and the 2x2 pool for one tile's four outputs; stored at `out`. */
TARGET __attribute__((always_inline)) static inline void finish(const int ACT, const int POOL, __m256 y00, __m256 y01,
                                                                __m256 y10, __m256 y11, __m256 bias, __m256 alpha,
                                                                float *out) {
    y00 = activate(_mm256_add_ps(y00, bias), ACT, alpha);
    y01 = activate(_mm256_add_ps(y01, bias), ACT, alpha);
    y10 = activate(_mm256_add_ps(y10, bias), ACT, alpha);
    y11 = activate(_mm256_add_ps(y11, bias), ACT, alpha);
    const __m256 pooled =
        POOL == FASHION_POOL_MAX
            ? _mm256_max_ps(_mm256_max_ps(y00, y01), _mm256_max_ps(y10, y11))
            : _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(_mm256_add_ps(y00, y01), y10), y11), _mm256_set1_ps(0.25f));
    _mm256_storeu_ps(out, pooled);
}

/* Column j of the tile's products m = U ⊙ V for the blocks of 8 channels at `u` (and `u + 128` when `BLOCKS` is
   2, sharing V's broadcasts): s0 = m0j + m1j + m2j and s1 = m1j - m2j - m3j (the rows of Aᵀ m), sharing m1j and
   m2j. V's broadcasts are loaded as late as they are needed: with two blocks, the accumulators and products
   fill the 16 registers. */
#define U_AT(block, p) _mm256_loadu_ps(u + (block) * 128 + (p) * 8)
#define UNIT_COLUMN(j)                                                                                             \
    const __m256 v1 = _mm256_broadcast_ss(v + 4 + (j)), v2 = _mm256_broadcast_ss(v + 8 + (j));                   \
    const __m256 am1 = _mm256_mul_ps(U_AT(0, 4 + (j)), v1), am2 = _mm256_mul_ps(U_AT(0, 8 + (j)), v2);            \
    const __m256 bm1 = BLOCKS == 2 ? _mm256_mul_ps(U_AT(1, 4 + (j)), v1) : am1;                                   \
    const __m256 bm2 = BLOCKS == 2 ? _mm256_mul_ps(U_AT(1, 8 + (j)), v2) : am2;                                   \
    const __m256 v0 = _mm256_broadcast_ss(v + (j)), v3 = _mm256_broadcast_ss(v + 12 + (j));                       \
    const __m256 as0 = _mm256_fmadd_ps(U_AT(0, j), v0, _mm256_add_ps(am1, am2));                                  \
    const __m256 as1 = _mm256_fnmadd_ps(U_AT(0, 12 + (j)), v3, _mm256_sub_ps(am1, am2));                          \
    const __m256 bs0 = BLOCKS == 2 ? _mm256_fmadd_ps(U_AT(1, j), v0, _mm256_add_ps(bm1, bm2)) : as0;              \
    const __m256 bs1 = BLOCKS == 2 ? _mm256_fnmadd_ps(U_AT(1, 12 + (j)), v3, _mm256_sub_ps(bm1, bm2)) : as1;

/* Y = (Aᵀ m) A for `BLOCKS` blocks of 8 channels (1 or 2), column by column: y00 = s00 + s01 + s02,
   y01 = s01 - s02 - s03, and the same for the second row; then bias, activation and pool. */
TARGET __attribute__((always_inline)) static inline void unit_tile(const int ACT, const int POOL, const int BLOCKS,
                                                                   const float *u, const float *v, const float *bias,
                                                                   __m256 alpha, float *out) {
    __m256 a00, a01, a10, a11, b00, b01, b10, b11;
    {
        UNIT_COLUMN(0)
        a00 = as0, a10 = as1, b00 = bs0, b10 = bs1;
    }
    {
        UNIT_COLUMN(1)
        a00 = _mm256_add_ps(a00, as0), a01 = as0, a10 = _mm256_add_ps(a10, as1), a11 = as1;
        b00 = _mm256_add_ps(b00, bs0), b01 = bs0, b10 = _mm256_add_ps(b10, bs1), b11 = bs1;
    }
    {
        UNIT_COLUMN(2)
        a00 = _mm256_add_ps(a00, as0), a01 = _mm256_sub_ps(a01, as0);
        a10 = _mm256_add_ps(a10, as1), a11 = _mm256_sub_ps(a11, as1);
        b00 = _mm256_add_ps(b00, bs0), b01 = _mm256_sub_ps(b01, bs0);
        b10 = _mm256_add_ps(b10, bs1), b11 = _mm256_sub_ps(b11, bs1);
    }
    {
        UNIT_COLUMN(3)
        a01 = _mm256_sub_ps(a01, as0), a11 = _mm256_sub_ps(a11, as1);
        b01 = _mm256_sub_ps(b01, bs0), b11 = _mm256_sub_ps(b11, bs1);
    }
    const __m256 zero = _mm256_setzero_ps();
    finish(ACT, POOL, a00, a01, a10, a11, bias ? _mm256_loadu_ps(bias) : zero, alpha, out);
    if (BLOCKS == 2) finish(ACT, POOL, b00, b01, b10, b11, bias ? _mm256_loadu_ps(bias + 8) : zero, alpha, out + 8);
}

TARGET __attribute__((always_inline)) static inline void unit_run(const int ACT, const int POOL,
                                                                  const struct fashion_conv_shape *s,
                                                                  const float *input, const float *u,
                                                                  const float *bias, float *output, float *scratch,
                                                                  long images) {
    const struct unit_layout l = unit_layout_of(s);
    const long out_c = s->out_c, pool_h = s->pool_out_h, pool_w = s->pool_out_w;
    const long in_h = s->in_h, in_w = s->in_w, top = s->pad_top, left = s->pad_left;
    float *pad = scratch;
    float *columns = pad + l.pad_floats;
    float *tiles = columns + l.columns_floats;
    const __m256 alpha = _mm256_set1_ps(s->alpha);
    if (l.padded) memset(pad, 0, sizeof(float) * (size_t)l.pad_floats);
    for (long image = 0; image < images; image++) {
        const float *rows = input + image * in_h * in_w;
        long row_floats = in_w;
        if (l.padded) {
            /* The borders stay zero from the memset; only the image's own pixels change. Columns and rows past
               the region the tiles read are not copied (a pool smaller than the convolution's output leaves
               some; with a wide left pad, every column). */
            const long copied = in_w < l.width - left ? in_w : l.width - left;
            for (long y = 0; copied > 0 && y < in_h && y + top < l.height; y++) {
                memcpy(pad + (y + top) * l.width + left, rows + y * in_w, sizeof(float) * (size_t)copied);
            }
            rows = pad;
            row_floats = l.width;
        }
        float *out = output + image * pool_h * pool_w * out_c;
        for (long ty = 0; ty < pool_h; ty++) {
            /* Bᵀ d for every tile of the row at once (Bᵀ = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]), then
               (Bᵀ d) B per tile. */
            const float *r0 = rows + 2 * ty * row_floats, *r1 = r0 + row_floats, *r2 = r1 + row_floats,
                        *r3 = r2 + row_floats;
            float *c0 = columns, *c1 = c0 + l.width, *c2 = c1 + l.width, *c3 = c2 + l.width;
            long x = 0;
            /* By hand: clang leaves this loop scalar (its overlap checks between the rows and the scratch). */
            for (; x + 8 <= l.width; x += 8) {
                const __m256 d0 = _mm256_loadu_ps(r0 + x), d1 = _mm256_loadu_ps(r1 + x);
                const __m256 d2 = _mm256_loadu_ps(r2 + x), d3 = _mm256_loadu_ps(r3 + x);
                _mm256_storeu_ps(c0 + x, _mm256_sub_ps(d0, d2));
                _mm256_storeu_ps(c1 + x, _mm256_add_ps(d1, d2));
                _mm256_storeu_ps(c2 + x, _mm256_sub_ps(d2, d1));
                _mm256_storeu_ps(c3 + x, _mm256_sub_ps(d1, d3));
            }
            for (; x < l.width; x++) {
                c0[x] = r0[x] - r2[x];
                c1[x] = r1[x] + r2[x];
                c2[x] = r2[x] - r1[x];
                c3[x] = r1[x] - r3[x];
            }
            float *v = tiles;
            for (long tx = 0; tx < pool_w; tx++, v += 16) {
                const long x = 2 * tx;
                v[0] = c0[x] - c0[x + 2], v[1] = c0[x + 1] + c0[x + 2], v[2] = c0[x + 2] - c0[x + 1];
                v[3] = c0[x + 1] - c0[x + 3];
                v[4] = c1[x] - c1[x + 2], v[5] = c1[x + 1] + c1[x + 2], v[6] = c1[x + 2] - c1[x + 1];
                v[7] = c1[x + 1] - c1[x + 3];
                v[8] = c2[x] - c2[x + 2], v[9] = c2[x + 1] + c2[x + 2], v[10] = c2[x + 2] - c2[x + 1];
                v[11] = c2[x + 1] - c2[x + 3];
                v[12] = c3[x] - c3[x + 2], v[13] = c3[x + 1] + c3[x + 2], v[14] = c3[x + 2] - c3[x + 1];
                v[15] = c3[x + 1] - c3[x + 3];
            }
            float *target = out + ty * pool_w * out_c;
            for (long tx = 0; tx < pool_w; tx++, target += out_c) {
                const float *v = tiles + 16 * tx;
                long m = 0;
                for (; m + 16 <= out_c; m += 16) {
                    unit_tile(ACT, POOL, 2, u + m * 16, v, bias ? bias + m : 0, alpha, target + m);
                }
                for (; m < out_c; m += 8) {
                    unit_tile(ACT, POOL, 1, u + m * 16, v, bias ? bias + m : 0, alpha, target + m);
                }
            }
        }
    }
}

TARGET void fashion_winograd_unit_pooled_avx2(const struct fashion_conv_shape *s, const float *input,
                                              const float *u, const float *bias, float *output, float *scratch,
                                              long images) {
    /* One copy of the loops per activation and pool, so that neither is tested per tile. */
#define UNIT_RUN(ACT, POOL) unit_run(ACT, POOL, s, input, u, bias, output, scratch, images)
    const int max = s->pool == FASHION_POOL_MAX;
    switch (s->activation) {
    case FASHION_ACTIVATION_RELU:
        if (max) UNIT_RUN(FASHION_ACTIVATION_RELU, FASHION_POOL_MAX);
        else UNIT_RUN(FASHION_ACTIVATION_RELU, FASHION_POOL_AVERAGE);
        break;
    case FASHION_ACTIVATION_LEAKY_RELU:
        if (max) UNIT_RUN(FASHION_ACTIVATION_LEAKY_RELU, FASHION_POOL_MAX);
        else UNIT_RUN(FASHION_ACTIVATION_LEAKY_RELU, FASHION_POOL_AVERAGE);
        break;
    default:
        if (max) UNIT_RUN(FASHION_ACTIVATION_NONE, FASHION_POOL_MAX);
        else UNIT_RUN(FASHION_ACTIVATION_NONE, FASHION_POOL_AVERAGE);
        break;
    }
    /* The activation after the pool, if any, in a pass of its own: rare, and outside the loops above it would
       be tested per tile. */
    if (s->pool_activation != FASHION_ACTIVATION_NONE) {
        const __m256 pool_alpha = _mm256_set1_ps(s->pool_alpha);
        const long count = images * s->pool_out_h * s->pool_out_w * s->out_c; /* a multiple of 8 */
        for (long i = 0; i < count; i += 8) {
            _mm256_storeu_ps(output + i, activate(_mm256_loadu_ps(output + i), s->pool_activation, pool_alpha));
        }
    }
}

#else

long fashion_winograd_unit_scratch(const struct fashion_conv_shape *shape) { return 0; }

void fashion_winograd_unit_pooled_avx2(const struct fashion_conv_shape *s, const float *input, const float *u,
                                       const float *bias, float *output, float *scratch, long images) {
    __builtin_trap();
}

#endif
