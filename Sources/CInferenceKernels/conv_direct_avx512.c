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
    long tap_y_step; /* input floats between vertically adjacent taps: dilation_y * row floats */
    long tap_x_step; /* dilation_x * in_c */
    int activation;
    float alpha;
};

/* `P` output pixels of one row x `V` vectors of 16 output channels. `x` points at the first pixel's first tap,
   `w` at the block's first output channel of tap (0, 0), channel 0; weights are [kh][kw][in_c][out_c].
   With constant P and V (the callers below), the accumulators live in registers. */
TARGET INLINE void conv_block(const int P, const int V, const struct plan *plan, const float *x, const float *w,
                              const float *bias, float *out) {
    __m512 acc[MAX_PIXELS][2];
    const __m512 b0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
    const __m512 b1 = bias && V > 1 ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
    UNROLL for (int p = 0; p < P; p++) {
        acc[p][0] = b0;
        acc[p][1] = b1;
    }
    const long in_c = plan->in_c, out_c = plan->out_c, step = plan->pixel_step;
    for (long ky = 0; ky < plan->kernel_h; ky++) {
        for (long kx = 0; kx < plan->kernel_w; kx++) {
            const float *tap = x + ky * plan->tap_y_step + kx * plan->tap_x_step;
            const float *wt = w + (ky * plan->kernel_w + kx) * in_c * out_c;
            for (long c = 0; c < in_c; c++) {
                const __m512 w0 = _mm512_loadu_ps(wt + c * out_c);
                if (V > 1) {
                    const __m512 w1 = _mm512_loadu_ps(wt + c * out_c + 16);
                    UNROLL for (int p = 0; p < P; p++) {
                        const __m512 value = _mm512_set1_ps(tap[p * step + c]);
                        acc[p][0] = _mm512_fmadd_ps(value, w0, acc[p][0]);
                        acc[p][1] = _mm512_fmadd_ps(value, w1, acc[p][1]);
                    }
                } else {
                    UNROLL for (int p = 0; p < P; p++) {
                        acc[p][0] = _mm512_fmadd_ps(_mm512_set1_ps(tap[p * step + c]), w0, acc[p][0]);
                    }
                }
            }
        }
    }
    const __m512 alpha = _mm512_set1_ps(plan->alpha);
    UNROLL for (int p = 0; p < P; p++) {
        _mm512_storeu_ps(out + p * out_c, activate(acc[p][0], plan->activation, alpha));
        if (V > 1) _mm512_storeu_ps(out + p * out_c + 16, activate(acc[p][1], plan->activation, alpha));
    }
}

typedef void (*block_fn)(const struct plan *, const float *, const float *, const float *, float *);

#define BLOCKS(P)                                                                                                  \
    TARGET static void block_1x##P(const struct plan *plan, const float *x, const float *w, const float *bias,     \
                                   float *out) {                                                                   \
        conv_block(P, 1, plan, x, w, bias, out);                                                                   \
    }                                                                                                              \
    TARGET static void block_2x##P(const struct plan *plan, const float *x, const float *w, const float *bias,     \
                                   float *out) {                                                                   \
        conv_block(P, 2, plan, x, w, bias, out);                                                                   \
    }

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

static const block_fn one_vector[MAX_PIXELS + 1] = {
    0, block_1x1, block_1x2, block_1x3, block_1x4, block_1x5, block_1x6, block_1x7,
    block_1x8, block_1x9, block_1x10, block_1x11, block_1x12, block_1x13, block_1x14,
};
static const block_fn two_vectors[MAX_PIXELS + 1] = {
    0, block_2x1, block_2x2, block_2x3, block_2x4, block_2x5, block_2x6, block_2x7,
    block_2x8, block_2x9, block_2x10, block_2x11, block_2x12, block_2x13, block_2x14,
};

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
        .tap_y_step = s->dilation_y * row_floats,
        .tap_x_step = s->dilation_x * in_c,
        .activation = s->activation,
        .alpha = s->alpha,
    };
    /* Each row in as few segments of at most MAX_PIXELS as possible, of nearly equal width. */
    const long segments = (s->out_w + MAX_PIXELS - 1) / MAX_PIXELS;
    const long in_image = s->in_h * s->in_w * in_c;
    const long out_image = s->out_h * s->out_w * out_c;
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
        for (long oy = 0; oy < s->out_h; oy++) {
            const float *row = base + oy * s->stride_y * row_floats;
            long ox = 0;
            for (long segment = 0; segment < segments; segment++) {
                const long width = (s->out_w - ox) / (segments - segment);
                const float *x = row + ox * plan.pixel_step;
                float *out = target + (oy * s->out_w + ox) * out_c;
                long m = 0;
                for (; m + 32 <= out_c; m += 32) {
                    two_vectors[width](&plan, x, weights + m, bias ? bias + m : 0, out + m);
                }
                if (m < out_c) one_vector[width](&plan, x, weights + m, bias ? bias + m : 0, out + m);
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
