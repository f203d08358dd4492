#include "inference_kernels.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))
#define INLINE __attribute__((always_inline)) static inline
/* Release builds compile C at -O2, which does not fully unroll the pixel loops by itself; unrolled, the
   accumulator array becomes registers. */
#define UNROLL _Pragma("clang loop unroll(full)")

/* Widest row segment computed at once: 14 pixels x 2 vectors of 16 output channels = 28 accumulators, plus
   two weight vectors and one broadcast input value, in the 32 ZMM registers. */
#define MAX_PIXELS 14

/* Where a convolution reads its input: the image itself, or a zero-padded copy of it in scratch so that every
   tap of every output pixel is inside the buffer and the inner loops test nothing. */
struct source {
    long height, width; /* of the buffer */
    long top, left;     /* where the image's (0, 0) is in it */
    int padded;
};

static struct source source_of(const struct fashion_conv_shape *s) {
    struct source src;
    const long need_h = (s->out_h - 1) * s->stride_y + (s->kernel_h - 1) * s->dilation_y + 1;
    const long need_w = (s->out_w - 1) * s->stride_x + (s->kernel_w - 1) * s->dilation_x + 1;
    src.top = s->pad_top;
    src.left = s->pad_left;
    src.height = need_h > s->in_h + s->pad_top ? need_h : s->in_h + s->pad_top;
    src.width = need_w > s->in_w + s->pad_left ? need_w : s->in_w + s->pad_left;
    src.padded = s->pad_top != 0 || s->pad_left != 0 || need_h > s->in_h || need_w > s->in_w;
    return src;
}

long fashion_conv_direct_avx512_scratch(const struct fashion_conv_shape *shape) {
    const struct source src = source_of(shape);
    return src.padded ? src.height * src.width * shape->in_c : 0;
}

TARGET INLINE __m512 activate(__m512 x, int activation, __m512 alpha) {
    if (activation == FASHION_ACTIVATION_RELU) return _mm512_max_ps(x, _mm512_setzero_ps());
    if (activation == FASHION_ACTIVATION_LEAKY_RELU) {
        const __mmask16 negative = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
        return _mm512_mask_mul_ps(x, negative, x, alpha);
    }
    return x;
}

/* The geometry every block of one convolution shares, in floats. */
struct plan {
    long in_c, out_c;
    long kernel_h, kernel_w;
    long pixel_step; /* input floats between horizontally adjacent output pixels: stride_x * in_c */
    long row_step;   /* input floats between vertically adjacent output pixels: stride_y * row floats */
    long tap_y_step; /* input floats between vertically adjacent taps: dilation_y * row floats */
    long tap_x_step; /* dilation_x * in_c */
    int activation;
    float alpha;
    int pool; /* FASHION_POOL_* */
    int pool_activation;
    float pool_alpha;
};

/* `R` rows (1, or 2 when a 2x2 pool follows) x `P` output pixels x `V` vectors of 16 output channels. `x`
   points at the first pixel's first tap, `w` at the block's first output channel of tap (0, 0), channel 0;
   weights are [kh][kw][in_c][out_c]. With R = 2 the block writes P / 2 pooled pixels instead. With constant
   R, P and V (the callers below), the accumulators live in registers. */
TARGET INLINE void conv_block(const int R, const int P, const int V, const struct plan *plan, const float *x,
                              const float *w, const float *bias, float *out) {
    __m512 acc[2][MAX_PIXELS][2];
    const __m512 b0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
    const __m512 b1 = bias && V > 1 ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
    UNROLL for (int r = 0; r < R; r++) {
        UNROLL for (int p = 0; p < P; p++) {
            acc[r][p][0] = b0;
            acc[r][p][1] = b1;
        }
    }
    const long in_c = plan->in_c, out_c = plan->out_c, step = plan->pixel_step, row_step = plan->row_step;
    for (long ky = 0; ky < plan->kernel_h; ky++) {
        for (long kx = 0; kx < plan->kernel_w; kx++) {
            const float *tap = x + ky * plan->tap_y_step + kx * plan->tap_x_step;
            const float *wt = w + (ky * plan->kernel_w + kx) * in_c * out_c;
            for (long c = 0; c < in_c; c++) {
                const __m512 w0 = _mm512_loadu_ps(wt + c * out_c);
                if (V > 1) {
                    const __m512 w1 = _mm512_loadu_ps(wt + c * out_c + 16);
                    UNROLL for (int r = 0; r < R; r++) {
                        UNROLL for (int p = 0; p < P; p++) {
                            const __m512 value = _mm512_set1_ps(tap[r * row_step + p * step + c]);
                            acc[r][p][0] = _mm512_fmadd_ps(value, w0, acc[r][p][0]);
                            acc[r][p][1] = _mm512_fmadd_ps(value, w1, acc[r][p][1]);
                        }
                    }
                } else {
                    UNROLL for (int r = 0; r < R; r++) {
                        UNROLL for (int p = 0; p < P; p++) {
                            acc[r][p][0] =
                                _mm512_fmadd_ps(_mm512_set1_ps(tap[r * row_step + p * step + c]), w0, acc[r][p][0]);
                        }
                    }
                }
            }
        }
    }
    const __m512 alpha = _mm512_set1_ps(plan->alpha);
    if (R == 1) {
        UNROLL for (int p = 0; p < P; p++) {
            _mm512_storeu_ps(out + p * out_c, activate(acc[0][p][0], plan->activation, alpha));
            if (V > 1) _mm512_storeu_ps(out + p * out_c + 16, activate(acc[0][p][1], plan->activation, alpha));
        }
        return;
    }
    const __m512 pool_alpha = _mm512_set1_ps(plan->pool_alpha);
    const __m512 quarter = _mm512_set1_ps(0.25f);
    UNROLL for (int q = 0; q < P / 2; q++) {
        UNROLL for (int v = 0; v < V; v++) {
            const __m512 a = activate(acc[0][2 * q][v], plan->activation, alpha);
            const __m512 b = activate(acc[0][2 * q + 1][v], plan->activation, alpha);
            const __m512 c = activate(acc[1][2 * q][v], plan->activation, alpha);
            const __m512 d = activate(acc[1][2 * q + 1][v], plan->activation, alpha);
            __m512 pooled;
            if (plan->pool == FASHION_POOL_MAX) {
                pooled = _mm512_max_ps(_mm512_max_ps(a, b), _mm512_max_ps(c, d));
            } else {
                /* The order of Kernels.averagePool2x2: ((a + b) + c) + d, then x 0.25. */
                pooled = _mm512_mul_ps(_mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a, b), c), d), quarter);
            }
            _mm512_storeu_ps(out + q * out_c + v * 16, activate(pooled, plan->pool_activation, pool_alpha));
        }
    }
}

typedef void (*block_fn)(const struct plan *, const float *, const float *, const float *, float *);

#define BLOCK(R, P, V)                                                                                             \
    TARGET static void block_##R##x##P##x##V(const struct plan *plan, const float *x, const float *w,            \
                                               const float *bias, float *out) {                                  \
        conv_block(R, P, V, plan, x, w, bias, out);                                                              \
    }
#define BLOCKS(P) BLOCK(1, P, 1) BLOCK(1, P, 2)

BLOCKS(1)
BLOCKS(2)
BLOCKS(3)
BLOCKS(4)
BLOCKS(5)
BLOCKS(6)
BLOCKS(7)
BLOCKS(8)
BLOCKS(9)
BLOCKS(10)
BLOCKS(11)
BLOCKS(12)
BLOCKS(13)
BLOCKS(14)
/* Two rows for a 2x2 pool: 2 x P x V <= 28 accumulators. */
BLOCK(2, 2, 1)
BLOCK(2, 4, 1)
BLOCK(2, 6, 1)
BLOCK(2, 8, 1)
BLOCK(2, 10, 1)
BLOCK(2, 12, 1)
BLOCK(2, 14, 1)
BLOCK(2, 2, 2)
BLOCK(2, 4, 2)
BLOCK(2, 6, 2)

static const block_fn one_vector[MAX_PIXELS + 1] = {
    0,          block_1x1x1,  block_1x2x1,  block_1x3x1,  block_1x4x1,  block_1x5x1,  block_1x6x1, block_1x7x1,
    block_1x8x1, block_1x9x1, block_1x10x1, block_1x11x1, block_1x12x1, block_1x13x1, block_1x14x1,
};
static const block_fn two_vectors[MAX_PIXELS + 1] = {
    0,          block_1x1x2,  block_1x2x2,  block_1x3x2,  block_1x4x2,  block_1x5x2,  block_1x6x2, block_1x7x2,
    block_1x8x2, block_1x9x2, block_1x10x2, block_1x11x2, block_1x12x2, block_1x13x2, block_1x14x2,
};
/* Indexed by pooled pixels (P / 2). */
#define MAX_POOLED_ONE 7
#define MAX_POOLED_TWO 3
static const block_fn pooled_one_vector[MAX_POOLED_ONE + 1] = {
    0, block_2x2x1, block_2x4x1, block_2x6x1, block_2x8x1, block_2x10x1, block_2x12x1, block_2x14x1,
};
static const block_fn pooled_two_vectors[MAX_POOLED_TWO + 1] = {0, block_2x2x2, block_2x4x2, block_2x6x2};

TARGET void fashion_conv_direct_avx512(const struct fashion_conv_shape *s, const float *input, const float *weights,
                                       const float *bias, float *output, float *scratch, long images) {
    const struct source src = source_of(s);
    const long in_c = s->in_c, out_c = s->out_c;
    const long row_floats = src.width * in_c;
    const struct plan plan = {
        .in_c = in_c,
        .out_c = out_c,
        .kernel_h = s->kernel_h,
        .kernel_w = s->kernel_w,
        .pixel_step = s->stride_x * in_c,
        .row_step = s->stride_y * row_floats,
        .tap_y_step = s->dilation_y * row_floats,
        .tap_x_step = s->dilation_x * in_c,
        .activation = s->activation,
        .alpha = s->alpha,
        .pool = s->pool,
        .pool_activation = s->pool_activation,
        .pool_alpha = s->pool_alpha,
    };
    const int pooled = s->pool != FASHION_POOL_NONE;
    /* Output rows and pixels per row: the pool's when one is fused (each from two convolution rows and two
       convolution pixels), else the convolution's. */
    const long rows = pooled ? s->pool_out_h : s->out_h;
    const long columns = pooled ? s->pool_out_w : s->out_w;
    /* Each row in as few segments as possible of nearly equal width, at most what the registers hold. */
    const long widest = !pooled ? MAX_PIXELS : out_c >= 32 ? MAX_POOLED_TWO : MAX_POOLED_ONE;
    const long segments = (columns + widest - 1) / widest;
    const long in_image = s->in_h * s->in_w * in_c;
    const long out_image = rows * columns * out_c;
    if (src.padded) memset(scratch, 0, (size_t)(src.height * row_floats) * sizeof(float));
    for (long image = 0; image < images; image++) {
        const float *base = input + image * in_image;
        if (src.padded) {
            /* The borders stay zero from the memset; only the image's own pixels change. */
            for (long y = 0; y < s->in_h; y++) {
                memcpy(scratch + (y + src.top) * row_floats + src.left * in_c, base + y * s->in_w * in_c,
                       (size_t)(s->in_w * in_c) * sizeof(float));
            }
            base = scratch;
        }
        float *target = output + image * out_image;
        for (long oy = 0; oy < rows; oy++) {
            const float *row = base + (pooled ? 2 * oy : oy) * plan.row_step;
            long ox = 0;
            for (long segment = 0; segment < segments; segment++) {
                const long width = (columns - ox) / (segments - segment);
                const float *x = row + (pooled ? 2 * ox : ox) * plan.pixel_step;
                float *out = target + (oy * columns + ox) * out_c;
                long m = 0;
                for (; m + 32 <= out_c; m += 32) {
                    (pooled ? pooled_two_vectors : two_vectors)[width](&plan, x, weights + m, bias ? bias + m : 0,
                                                                       out + m);
                }
                if (m < out_c) {
                    (pooled ? pooled_one_vector : one_vector)[width](&plan, x, weights + m, bias ? bias + m : 0,
                                                                     out + m);
                }
                ox += width;
            }
        }
    }
}

#else

long fashion_conv_direct_avx512_scratch(const struct fashion_conv_shape *shape) { return 0; }

void fashion_conv_direct_avx512(const struct fashion_conv_shape *shape, const float *input, const float *weights,
                                const float *bias, float *output, float *scratch, long images) {
    /* Never called: KernelSet selects AVX-512 only on x86-64 CPUs that have it. */
    __builtin_trap();
}

#endif
