#ifndef FASHION_INFERENCE_KERNELS_H
#define FASHION_INFERENCE_KERNELS_H

/* The engine's hot loops compiled for newer vector units than baseline x86-64 (which Swift targets), one
   function per instruction set, chosen at run time by `KernelSet` in the Inference module. Callers check
   the CPU first (CCPUFeatures); calling an AVX2 function on a CPU without AVX2 and FMA, or an AVX-512 one on
   a CPU without AVX-512 F/CD/BW/DQ/VL, faults. */

/* Activations the kernels apply themselves; anything else is applied by the caller afterwards. */
enum {
    FASHION_ACTIVATION_NONE = 0,
    FASHION_ACTIVATION_RELU = 1,
    FASHION_ACTIVATION_LEAKY_RELU = 2,
};

enum {
    FASHION_POOL_NONE = 0,
    FASHION_POOL_MAX = 1,
    FASHION_POOL_AVERAGE = 2,
};

/* A convolution's geometry for the direct kernels. Input [images][in_h][in_w][in_c], output
   [images][out_h][out_w][out_c], channels last; weights [kernel_h][kernel_w][in_c][out_c]. */
struct fashion_conv_shape {
    long in_h, in_w, in_c;
    long out_h, out_w, out_c;
    long kernel_h, kernel_w;
    long stride_y, stride_x;
    long dilation_y, dilation_x;
    long pad_top, pad_left;
    int activation; /* FASHION_ACTIVATION_* */
    float alpha;    /* LeakyReLU's slope */
    /* A 2x2, stride 2, unpadded pool fused behind the activation (FASHION_POOL_NONE: none); the output is then
       [images][pool_out_h][pool_out_w][out_c], with pool_out_h <= out_h / 2 and pool_out_w <= out_w / 2, and
       pool_activation applied to each pooled value. */
    int pool;
    long pool_out_h, pool_out_w;
    int pool_activation;
    float pool_alpha;
};

/* Floats of scratch the direct kernels need for `shape` (the same for every instruction set): a zero-padded
   copy of one input image when the convolution pads, else 0. */
long fashion_conv_direct_scratch(const struct fashion_conv_shape *shape);

/* Direct convolution with bias and activation fused, and optionally a 2x2 pool behind it (`shape->pool`), one
   function per instruction set: AVX-512F (+ DQ, BW, VL) and AVX2 + FMA. Requires out_c % 16 == 0 (AVX-512) or
   out_c % 8 == 0 (AVX2); bias [out_c] or NULL; `scratch` holds fashion_conv_direct_scratch(shape) floats (NULL when that is
   0). Output pixels are computed in row segments held in registers: AVX-512 up to 14 pixels x 32 channels
   (with a pool, two rows of up to 14 x 16 or 6 x 32), AVX2 up to 6 pixels x 16 channels or 12 x 8, or two rows
   of up to 3 x 16 or 6 x 8 (with a pool, two rows of up to 6 x 8). Each output is bias + the sum over taps in
   (ky, kx, c) order, one fused multiply-add per term; an average pool adds its four values in row order and
   multiplies by 0.25. */
void fashion_conv_direct_avx512(const struct fashion_conv_shape *shape, const float *input, const float *weights,
                                const float *bias, float *output, float *scratch, long images);
void fashion_conv_direct_avx2(const struct fashion_conv_shape *shape, const float *input, const float *weights,
                              const float *bias, float *output, float *scratch, long images);

/* A one-input-channel 3x3 convolution (stride 1, no dilation) with its 2x2 pool fused, by Winograd's F(2x2, 3x3),
   AVX2 + FMA: each pool window is one tile, whose 16 products U ⊙ V (U = G g Gᵀ per output channel, V = Bᵀ d B
   per tile) become the window's four outputs through Aᵀ m A, then bias, activation (none, ReLU, LeakyReLU), the
   pool and the activation after it, as fashion_conv_direct_avx2 applies them. 16 multiplications per window
   and channel instead of 36; results differ from the direct kernel's by float rounding. The same arguments as
   fashion_conv_direct_avx2, except the weights: `u` holds the 16 x out_c floats fashion_winograd_unit_weights
   made of the [3][3][1][out_c] weights (once, when the plan is built). Requires in_c == 1, a 3x3 kernel, stride
   and dilation 1, out_c % 8 == 0 and a pool; `scratch` holds fashion_winograd_unit_scratch(shape) floats. */
void fashion_winograd_unit_weights(const float *weights, long out_c, float *u);
long fashion_winograd_unit_scratch(const struct fashion_conv_shape *shape);
void fashion_winograd_unit_pooled_avx2(const struct fashion_conv_shape *shape, const float *input, const float *u,
                                       const float *bias, float *output, float *scratch, long images);

/* A fully connected layer, c[m][n] = activation(bias + a[m][k] x w[k][n]), row-major, AVX2 + FMA, with the weights
   packed once by fashion_gemm_pack_weights (k x n floats) into panels of 16 columns (and one of 8): blocks of up
   to 6 rows x 16 columns accumulate over the whole of k in registers, one fused multiply-add per term in order,
   then add the bias (may be null) and apply the activation (none, ReLU, LeakyReLU with slope `alpha`). No packing
   per call, unlike sgemm, whose packing is a third of its time for fashion-cnn's fc1 (m = 32, k = 1600,
   n = 128). Also the 16 small products of AVX2 Winograd convolutions (k = 32, n = 64), over U packed once.
   Requires n % 8 == 0. */
void fashion_gemm_pack_weights(const float *weights, long k, long n, float *packed);
void fashion_gemm_packed_avx2(const float *a, const float *packed, const float *bias, float *c, long m, long k,
                              long n, int activation, float alpha);

/* output[i] = tanh(input[i]), AVX2 + FMA, absolute error below 3e-7 (a rational approximation instead of
   libm's tanhf, which costs ~20 ns a value); input and output may be the same buffer. */
void fashion_tanh_avx2(const float *input, float *output, long count);

/* Winograd F(2x2, 3x3) transforms in AVX-512F and in AVX2, as WinogradConvolution's Swift loops compute them
   (same operations in the same order). Input: V = B^T d B for every tile and channel of channels-last images into
   16 matrices [tiles][channels] `stride` = tiles * channels apart; `zeros` holds `channels` zeros (the padding).
   Output with a fused 2x2 max pool: for each tile, max of Y = A^T m A, + bias (NULL: none), then ReLU if
   `relu`, written [tiles][channels]; the convolution itself has no activation. */
void fashion_winograd_input_avx512(const float *input, float *v, const float *zeros, long images, long in_h,
                                   long in_w, long channels, long tiles_y, long tiles_x, long pad_top, long pad_left);
void fashion_winograd_output_max_pool_avx512(const float *products, const float *bias, float *output, long tiles,
                                             long channels, int relu);
void fashion_winograd_input_avx2(const float *input, float *v, const float *zeros, long images, long in_h, long in_w,
                                 long channels, long tiles_y, long tiles_x, long pad_top, long pad_left);
void fashion_winograd_output_max_pool_avx2(const float *products, const float *bias, float *output, long tiles,
                                           long channels, int relu);

#endif
