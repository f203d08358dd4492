/* Winograd F(2x2, 3x3) transforms written once for any vector width: included by winograd_avx2.c and
   winograd_avx512.c, each of which first defines

     TARGET, VEC, LANES, MASK          the function attribute, vector type, floats per vector, a lane mask type
     V_ADD, V_SUB, V_MAX, V_ZERO()     the arithmetic
     V_LOAD(p), V_STORE(p, v)          whole vectors
     MASK_FOR(n)                       the first n (< LANES) lanes
     V_LOAD_MASKED(k, p), V_STORE_MASKED(p, k, v)   the lanes of k only (others read as 0, not written)
     WINOGRAD_INPUT, WINOGRAD_OUTPUT_MAX_POOL       the public names

   The operations and their order are those of WinogradConvolution's SIMD4 loops in Swift (additions and
   subtractions only, the maximum before the bias), LANES channels at a time, a masked group for a tail. */

#define INLINE __attribute__((always_inline)) static inline

/* One group of LANES channels (a tail when `masked`) of one tile: V = B^T d B into the 16 matrices. */
TARGET INLINE void input_group(const float *const *d, float *target, long stride, long c, const int masked, MASK k) {
#define L(n) (masked ? V_LOAD_MASKED(k, d[n] + c) : V_LOAD(d[n] + c))
#define S(n, value)                                                                                                \
    do {                                                                                                           \
        if (masked) V_STORE_MASKED(target + (n) * stride + c, k, value);                                           \
        else V_STORE(target + (n) * stride + c, value);                                                            \
    } while (0)
    const VEC t00 = V_SUB(L(0), L(8)), t01 = V_SUB(L(1), L(9));
    const VEC t02 = V_SUB(L(2), L(10)), t03 = V_SUB(L(3), L(11));
    const VEC t10 = V_ADD(L(4), L(8)), t11 = V_ADD(L(5), L(9));
    const VEC t12 = V_ADD(L(6), L(10)), t13 = V_ADD(L(7), L(11));
    const VEC t20 = V_SUB(L(8), L(4)), t21 = V_SUB(L(9), L(5));
    const VEC t22 = V_SUB(L(10), L(6)), t23 = V_SUB(L(11), L(7));
    const VEC t30 = V_SUB(L(4), L(12)), t31 = V_SUB(L(5), L(13));
    const VEC t32 = V_SUB(L(6), L(14)), t33 = V_SUB(L(7), L(15));
    S(0, V_SUB(t00, t02));
    S(1, V_ADD(t01, t02));
    S(2, V_SUB(t02, t01));
    S(3, V_SUB(t01, t03));
    S(4, V_SUB(t10, t12));
    S(5, V_ADD(t11, t12));
    S(6, V_SUB(t12, t11));
    S(7, V_SUB(t11, t13));
    S(8, V_SUB(t20, t22));
    S(9, V_ADD(t21, t22));
    S(10, V_SUB(t22, t21));
    S(11, V_SUB(t21, t23));
    S(12, V_SUB(t30, t32));
    S(13, V_ADD(t31, t32));
    S(14, V_SUB(t32, t31));
    S(15, V_SUB(t31, t33));
#undef L
#undef S
}

TARGET void WINOGRAD_INPUT(const float *input, float *v, const float *zeros, long images, long in_h, long in_w,
                           long channels, long tiles_y, long tiles_x, long pad_top, long pad_left) {
    const long tiles = images * tiles_y * tiles_x;
    const long stride = tiles * channels;
    const long image_size = in_h * in_w * channels;
    const long whole = channels - channels % LANES;
    const MASK tail = MASK_FOR(channels % LANES);
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
                for (long c = 0; c < whole; c += LANES) input_group(d, target, stride, c, 0, tail);
                if (whole < channels) input_group(d, target, stride, whole, 1, tail);
                tile++;
            }
        }
    }
}

/* One group of LANES channels (a tail when `masked`) of one tile: the max of Y = A^T m A, + bias, ReLU. */
TARGET INLINE void output_group(const float *m, const float *bias, float *target, long stride, long c, int relu,
                                const int masked, MASK k) {
#define L(n) (masked ? V_LOAD_MASKED(k, m + (n) * stride + c) : V_LOAD(m + (n) * stride + c))
    const VEC s00 = V_ADD(V_ADD(L(0), L(4)), L(8));
    const VEC s01 = V_ADD(V_ADD(L(1), L(5)), L(9));
    const VEC s02 = V_ADD(V_ADD(L(2), L(6)), L(10));
    const VEC s03 = V_ADD(V_ADD(L(3), L(7)), L(11));
    const VEC s10 = V_SUB(V_SUB(L(4), L(8)), L(12));
    const VEC s11 = V_SUB(V_SUB(L(5), L(9)), L(13));
    const VEC s12 = V_SUB(V_SUB(L(6), L(10)), L(14));
    const VEC s13 = V_SUB(V_SUB(L(7), L(11)), L(15));
#undef L
    const VEC y00 = V_ADD(V_ADD(s00, s01), s02);
    const VEC y01 = V_SUB(V_SUB(s01, s02), s03);
    const VEC y10 = V_ADD(V_ADD(s10, s11), s12);
    const VEC y11 = V_SUB(V_SUB(s11, s12), s13);
    /* Swift's maximum4(a, b) is (a < b ? b : a), which is V_MAX(b, a) (NaN included: both return the second
       operand when either is NaN). */
    VEC maximum = V_MAX(V_MAX(y11, y10), V_MAX(y01, y00));
    if (bias) maximum = V_ADD(maximum, masked ? V_LOAD_MASKED(k, bias + c) : V_LOAD(bias + c));
    if (relu) maximum = V_MAX(V_ZERO(), maximum);
    if (masked) V_STORE_MASKED(target + c, k, maximum);
    else V_STORE(target + c, maximum);
}

TARGET void WINOGRAD_OUTPUT_MAX_POOL(const float *products, const float *bias, float *output, long tiles,
                                     long channels, int relu) {
    const long stride = tiles * channels;
    const long whole = channels - channels % LANES;
    const MASK tail = MASK_FOR(channels % LANES);
    for (long tile = 0; tile < tiles; tile++) {
        const float *m = products + tile * channels;
        float *target = output + tile * channels;
        for (long c = 0; c < whole; c += LANES) output_group(m, bias, target, stride, c, relu, 0, tail);
        if (whole < channels) output_group(m, bias, target, stride, whole, relu, 1, tail);
    }
}
