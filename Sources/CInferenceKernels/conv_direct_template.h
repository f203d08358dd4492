/* The direct convolution kernel, written once for any vector width: included by conv_direct_avx2.c and
   conv_direct_avx512.c, each of which first defines its vector type and operations:

     TARGET               the function attribute that enables the instruction set
     VEC, LANES           the vector type and its floats
     V_LOAD(p), V_STORE(p, v), V_SET1(x), V_ZERO(), V_FMA(a, b, c) (a * b + c), V_MAX, V_ADD, V_MUL
     V_ACTIVATE(x, activation, alpha)   FASHION_ACTIVATION_* applied to one vector
     MAX_PIXELS           most output pixels per row in any block it instantiates (its accumulator array's size)

   and after including it lists the block shapes it instantiates (BLOCK(R, P, V)) and their tables, then
   calls conv_direct_run. Every output is bias + the sum over taps in (ky, kx, c) order, one fused
   multiply-add per term, whatever the width: the kernels agree with each other and with the reference. */

#include <string.h>

#define INLINE __attribute__((always_inline)) static inline
/* Release builds compile C at -O2, which does not fully unroll the pixel loops by itself; unrolled, the
   accumulator array becomes registers. */
#define UNROLL _Pragma("clang loop unroll(full)")

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

__attribute__((unused)) static long conv_direct_scratch(const struct fashion_conv_shape *shape) {
    const struct source src = source_of(shape);
    return src.padded ? src.height * src.width * shape->in_c : 0;
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
    long out_row_step; /* output floats between vertically adjacent output pixels (two-row blocks) */
    int pool;          /* FASHION_POOL_* */
    int pool_activation;
    float pool_alpha;
};

/* The taps of a two-row `UNIT` block whose vertical stride equals its vertical dilation. Input row i (in taps)
   is tap row i of output row 0 and tap row i - 1 of output row 1, so each input value is broadcast once for
   both rows: (kernel_h + 1) x kernel_w x P broadcasts instead of 2 x kernel_h x kernel_w x P. With one vector
   of channels a broadcast feeds one FMA per row, and broadcasts, not FMAs, bounded these blocks on AVX2 (a
   3x3 pooled block of 2 x 6 pixels alone: 91 -> 77 cycles on a Zen 3). The first and last input rows serve one
   output row each. Every accumulator still takes its taps in (ky, kx) order. */
TARGET INLINE void unit_row_pair_taps(const int P, const int V, const struct plan *plan, const float *x,
                                      const float *w, VEC acc[2][MAX_PIXELS][2]) {
    const long kernel_h = plan->kernel_h, kernel_w = plan->kernel_w, out_c = plan->out_c;
    for (long i = 0; i <= kernel_h; i++) {
        /* Peeled rather than tested per tap: a test inside the unrolled loop made clang spill accumulators. */
        const float *row = x + i * plan->tap_y_step;
        if (i == 0) {
            for (long kx = 0; kx < kernel_w; kx++) {
                const float *tap = row + kx * plan->tap_x_step;
                UNROLL for (int v = 0; v < V; v++) {
                    const VEC w_upper = V_LOAD(w + kx * out_c + v * LANES);
                    UNROLL for (int p = 0; p < P; p++) acc[0][p][v] = V_FMA(V_SET1(tap[p]), w_upper, acc[0][p][v]);
                }
            }
        } else if (i == kernel_h) {
            const float *lower = w + (i - 1) * kernel_w * out_c; /* tap row i - 1 */
            for (long kx = 0; kx < kernel_w; kx++) {
                const float *tap = row + kx * plan->tap_x_step;
                UNROLL for (int v = 0; v < V; v++) {
                    const VEC w_lower = V_LOAD(lower + kx * out_c + v * LANES);
                    UNROLL for (int p = 0; p < P; p++) acc[1][p][v] = V_FMA(V_SET1(tap[p]), w_lower, acc[1][p][v]);
                }
            }
        } else {
            const float *upper = w + i * kernel_w * out_c, *lower = upper - kernel_w * out_c; /* tap rows i, i - 1 */
            for (long kx = 0; kx < kernel_w; kx++) {
                const float *tap = row + kx * plan->tap_x_step;
                UNROLL for (int v = 0; v < V; v++) {
                    const VEC w_upper = V_LOAD(upper + kx * out_c + v * LANES);
                    const VEC w_lower = V_LOAD(lower + kx * out_c + v * LANES);
                    UNROLL for (int p = 0; p < P; p++) {
                        const VEC value = V_SET1(tap[p]);
                        acc[0][p][v] = V_FMA(value, w_upper, acc[0][p][v]);
                        acc[1][p][v] = V_FMA(value, w_lower, acc[1][p][v]);
                    }
                }
            }
        }
    }
}

/* `R` rows (1 or 2) x `P` output pixels x `V` vectors of LANES output channels. `x` points at the first pixel's
   first tap, `w` at the block's first output channel of tap (0, 0), channel 0; weights are [kh][kw][in_c][out_c].
   With `POOL` (R = 2, even P) the block applies the plan's 2x2 pool and writes P / 2 pooled pixels; without it,
   every row. With constant R, P, V and flags (the instantiations), the accumulators live in registers. `UNIT`
   (one input channel, stride 1) makes the pixels' inputs adjacent floats at constant offsets: with a step known
   only at run time the compiler computes each pixel's address from the previous one, a chain of additions per
   tap that held one-channel first layers to about half the FMA rate on AVX2. Two-row `UNIT` blocks also
   require the vertical stride to equal the vertical dilation (conv_direct_run checks): see unit_row_pair_taps. */
TARGET INLINE void conv_block(const int R, const int P, const int V, const int UNIT, const int POOL,
                              const struct plan *plan, const float *x, const float *w, const float *bias, float *out) {
    VEC acc[2][MAX_PIXELS][2];
    const VEC b0 = bias ? V_LOAD(bias) : V_ZERO();
    const VEC b1 = bias && V > 1 ? V_LOAD(bias + LANES) : V_ZERO();
    UNROLL for (int r = 0; r < R; r++) {
        UNROLL for (int p = 0; p < P; p++) {
            acc[r][p][0] = b0;
            acc[r][p][1] = b1;
        }
    }
    const long in_c = UNIT ? 1 : plan->in_c, out_c = plan->out_c, step = UNIT ? 1 : plan->pixel_step;
    const long row_step = plan->row_step;
    if (UNIT && R == 2) {
        unit_row_pair_taps(P, V, plan, x, w, acc);
    } else {
        for (long ky = 0; ky < plan->kernel_h; ky++) {
            for (long kx = 0; kx < plan->kernel_w; kx++) {
                const float *tap = x + ky * plan->tap_y_step + kx * plan->tap_x_step;
                const float *wt = w + (ky * plan->kernel_w + kx) * in_c * out_c;
                for (long c = 0; c < in_c; c++) {
                    const VEC w0 = V_LOAD(wt + c * out_c);
                    if (V > 1) {
                        const VEC w1 = V_LOAD(wt + c * out_c + LANES);
                        UNROLL for (int r = 0; r < R; r++) {
                            UNROLL for (int p = 0; p < P; p++) {
                                const VEC value = V_SET1(tap[r * row_step + p * step + c]);
                                acc[r][p][0] = V_FMA(value, w0, acc[r][p][0]);
                                acc[r][p][1] = V_FMA(value, w1, acc[r][p][1]);
                            }
                        }
                    } else {
                        UNROLL for (int r = 0; r < R; r++) {
                            UNROLL for (int p = 0; p < P; p++) {
                                acc[r][p][0] = V_FMA(V_SET1(tap[r * row_step + p * step + c]), w0, acc[r][p][0]);
                            }
                        }
                    }
                }
            }
        }
    }
    const VEC alpha = V_SET1(plan->alpha);
    if (!POOL) {
        UNROLL for (int r = 0; r < R; r++) {
            float *row = out + r * plan->out_row_step;
            UNROLL for (int p = 0; p < P; p++) {
                V_STORE(row + p * out_c, V_ACTIVATE(acc[r][p][0], plan->activation, alpha));
                if (V > 1) V_STORE(row + p * out_c + LANES, V_ACTIVATE(acc[r][p][1], plan->activation, alpha));
            }
        }
        return;
    }
    const VEC pool_alpha = V_SET1(plan->pool_alpha);
    const VEC quarter = V_SET1(0.25f);
    UNROLL for (int q = 0; q < P / 2; q++) {
        UNROLL for (int v = 0; v < V; v++) {
            const VEC a = V_ACTIVATE(acc[0][2 * q][v], plan->activation, alpha);
            const VEC b = V_ACTIVATE(acc[0][2 * q + 1][v], plan->activation, alpha);
            const VEC c = V_ACTIVATE(acc[1][2 * q][v], plan->activation, alpha);
            const VEC d = V_ACTIVATE(acc[1][2 * q + 1][v], plan->activation, alpha);
            VEC pooled;
            if (plan->pool == FASHION_POOL_MAX) {
                pooled = V_MAX(V_MAX(a, b), V_MAX(c, d));
            } else {
                /* The order of Kernels.averagePool2x2: ((a + b) + c) + d, then x 0.25. */
                pooled = V_MUL(V_ADD(V_ADD(V_ADD(a, b), c), d), quarter);
            }
            V_STORE(out + q * out_c + v * LANES, V_ACTIVATE(pooled, plan->pool_activation, pool_alpha));
        }
    }
}

typedef void (*block_fn)(const struct plan *, const float *, const float *, const float *, float *);

#define DEFINE_BLOCK(NAME, R, P, V, UNIT, POOL)                                                                    \
    TARGET static void NAME##_##R##x##P##x##V(const struct plan *plan, const float *x, const float *w,           \
                                              const float *bias, float *out) {                                   \
        _Static_assert((R) >= 1 && (R) <= 2 && (V) >= 1 && (V) <= 2 && (P) >= 1 && (P) <= MAX_PIXELS &&          \
                           (!(POOL) || ((R) == 2 && (P) % 2 == 0)),                                              \
                       "a block the accumulator array cannot hold");                                             \
        conv_block(R, P, V, UNIT, POOL, plan, x, w, bias, out);                                                  \
    }
#define BLOCK(R, P, V) DEFINE_BLOCK(block, R, P, V, 0, 0)
#define UNIT_BLOCK(R, P, V) DEFINE_BLOCK(unit_block, R, P, V, 1, 0)
#define POOLED_BLOCK(R, P, V) DEFINE_BLOCK(pooled_block, R, P, V, 0, 1)
#define UNIT_POOLED_BLOCK(R, P, V) DEFINE_BLOCK(unit_pooled_block, R, P, V, 1, 1)

/* Lists of block shapes, for instantiating blocks (X = BLOCK, UNIT_BLOCK, POOLED_BLOCK, UNIT_POOLED_BLOCK) and
   filling tables (X = the matching ENTRY) with the same list. */
#define ENTRY(R, P, V) block_##R##x##P##x##V,
#define UNIT_ENTRY(R, P, V) unit_block_##R##x##P##x##V,
#define POOLED_ENTRY(R, P, V) pooled_block_##R##x##P##x##V,
#define UNIT_POOLED_ENTRY(R, P, V) unit_pooled_block_##R##x##P##x##V,
#define PIXELS_1_TO_3(X, R, V) X(R, 1, V) X(R, 2, V) X(R, 3, V)
#define PIXELS_1_TO_6(X, R, V) PIXELS_1_TO_3(X, R, V) X(R, 4, V) X(R, 5, V) X(R, 6, V)
#define PIXELS_7_TO_12(X, R, V) X(R, 7, V) X(R, 8, V) X(R, 9, V) X(R, 10, V) X(R, 11, V) X(R, 12, V)
#define PIXELS_1_TO_14(X, R, V) PIXELS_1_TO_6(X, R, V) PIXELS_7_TO_12(X, R, V) X(R, 13, V) X(R, 14, V)
#define EVEN_2_TO_6(X, R, V) X(R, 2, V) X(R, 4, V) X(R, 6, V)
#define EVEN_2_TO_14(X, R, V) EVEN_2_TO_6(X, R, V) X(R, 8, V) X(R, 10, V) X(R, 12, V) X(R, 14, V)

/* One kind of block an instruction set instantiates: by output pixels per block (pooled pixels for pooled
   blocks; entry 0 unused), for one and for two vectors of channels, and the widest of each. */
struct block_table {
    const block_fn *one_vector, *two_vectors;
    long max_one, max_two;
};

/* An instruction set's blocks: one row; two rows unpooled; two rows with a 2x2 pool; and the `UNIT` blocks
   (one input channel, stride 1) for one row and for a pool. Tables other than `row` and `pooled` are optional
   (`max_one` 0: none). */
struct block_tables {
    struct block_table row, row_pair, pooled, unit_row, unit_pooled;
};

/* One output row (or row pair) of `columns` pixels in as few segments as possible of nearly equal width, at most
   what the registers hold for the widest block the channels use. */
TARGET INLINE void conv_row(const struct block_table *t, const struct plan *plan, const float *row, float *out,
                            long columns, long input_pixel_step, const float *weights, const float *bias) {
    const long out_c = plan->out_c;
    /* Two vectors at a time where the table has such blocks and there are channels for them. */
    const int two = out_c >= 2 * LANES && t->max_two > 0;
    const long widest = two ? t->max_two : t->max_one;
    const long segments = (columns + widest - 1) / widest;
    long ox = 0;
    for (long segment = 0; segment < segments; segment++) {
        const long width = (columns - ox) / (segments - segment);
        const float *x = row + ox * input_pixel_step;
        float *target = out + ox * out_c;
        long m = 0;
        for (; two && m + 2 * LANES <= out_c; m += 2 * LANES) {
            t->two_vectors[width](plan, x, weights + m, bias ? bias + m : 0, target + m);
        }
        for (; m < out_c; m += LANES) t->one_vector[width](plan, x, weights + m, bias ? bias + m : 0, target + m);
        ox += width;
    }
}

TARGET INLINE void conv_direct_run(const struct block_tables *t, const struct fashion_conv_shape *s,
                                   const float *input, const float *weights, const float *bias, float *output,
                                   float *scratch, long images) {
    const struct source src = source_of(s);
    const long in_c = s->in_c, out_c = s->out_c;
    const long row_floats = src.width * in_c;
    struct plan plan = {
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
    plan.out_row_step = columns * out_c;
    /* A pooled output pixel starts two convolution pixels after the previous one. */
    const long pixel_step = pooled ? 2 * plan.pixel_step : plan.pixel_step;
    const int unit = in_c == 1 && s->stride_x == 1;
    const struct block_table *row_blocks = unit && t->unit_row.max_one > 0 ? &t->unit_row : &t->row;
    /* Pooled UNIT blocks are two-row blocks (see unit_row_pair_taps). Other one-channel pooled layers take the
       general blocks: a run-time choice between the two inside each block made clang spill its accumulators
       (77 -> 228 cycles). */
    const int unit_pairs = unit && s->stride_y == s->dilation_y;
    const struct block_table *pooled_blocks =
        unit_pairs && t->unit_pooled.max_one > 0 ? &t->unit_pooled : &t->pooled;
    const int row_pairs = !pooled && !unit && t->row_pair.max_one > 0;
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
        long oy = 0;
        if (pooled) {
            for (; oy < rows; oy++) {
                conv_row(pooled_blocks, &plan, base + 2 * oy * plan.row_step, target + oy * plan.out_row_step, columns,
                         pixel_step, weights, bias);
            }
        }
        /* Two rows at a time where the set has such blocks (twice the pixels per block, which narrow rows need to
           fill the registers). */
        for (; row_pairs && oy + 1 < rows; oy += 2) {
            conv_row(&t->row_pair, &plan, base + oy * plan.row_step, target + oy * plan.out_row_step, columns,
                     pixel_step, weights, bias);
        }
        for (; oy < rows; oy++) {
            conv_row(row_blocks, &plan, base + oy * plan.row_step, target + oy * plan.out_row_step, columns, pixel_step,
                     weights, bias);
        }
    }
}
