/// The compiler's intermediate form: layers over activation tensors whose shapes are known up to
/// the batch size. Every activation has the batch as its leading dimension; `dims` is the shape
/// of one sample.

/// How one sample of an activation is laid out in memory.
enum Layout: Equatable {
    /// Logical row-major order (NCHW for images).
    case rowMajor
    /// Rank-3 samples [C, H, W] stored as [H, W, C] (NHWC): what convolutions and pools run on.
    case channelsLast
    /// Rank-1 samples whose physical element `j` is logical element `permutation[j]`: a flattened
    /// channels-last tensor, consumed by a Gemm/MatMul whose weights are permuted to match, so the
    /// layout change costs nothing at run time.
    case featurePermutation([Int])
}

struct ActivationInfo {
    var dims: [Int]
    var layout: Layout

    var elementCount: Int { dims.reduce(1, *) }

    /// Whether the sample is rank 3 and its memory is in [H, W, C] order (true whenever C or H*W is 1).
    var isPhysicallyChannelsLast: Bool {
        guard dims.count == 3 else { return false }
        if layout == .channelsLast { return true }
        return layout == .rowMajor && (dims[0] == 1 || dims[1] * dims[2] == 1)
    }

    var isPhysicallyRowMajor: Bool {
        switch layout {
        case .rowMajor: return true
        case .channelsLast: return dims.count == 3 && (dims[0] == 1 || dims[1] * dims[2] == 1)
        case .featurePermutation(let permutation):
            return permutation.enumerated().allSatisfy { $0.offset == $0.element }
        }
    }

    /// For each physical position, the logical (row-major) element index stored there.
    func logicalIndexOfPhysical() -> [Int] {
        switch layout {
        case .rowMajor:
            return Array(0..<elementCount)
        case .channelsLast:
            let (channels, height, width) = (dims[0], dims[1], dims[2])
            var table = [Int](repeating: 0, count: elementCount)
            var position = 0
            for y in 0..<height {
                for x in 0..<width {
                    for c in 0..<channels {
                        table[position] = (c * height + y) * width + x
                        position += 1
                    }
                }
            }
            return table
        case .featurePermutation(let permutation):
            return permutation
        }
    }
}

/// An elementwise nonlinearity, standalone or fused into the layer before it.
enum Activation: Equatable, Sendable {
    case none
    case relu
    case leakyRelu(alpha: Float)
    case sigmoid
    case tanh
    case clip(min: Float, max: Float)

    /// Whether x <= y implies f(x) <= f(y), so the activation commutes with max pooling.
    var isNonDecreasing: Bool {
        switch self {
        case .leakyRelu(let alpha): alpha >= 0
        case .clip(let low, let high): low <= high
        default: true
        }
    }

    var name: String {
        switch self {
        case .none: "Identity"
        case .relu: "Relu"
        case .leakyRelu: "LeakyRelu"
        case .sigmoid: "Sigmoid"
        case .tanh: "Tanh"
        case .clip: "Clip"
        }
    }
}

enum BinaryOperator: Equatable, Sendable {
    case add, subtract, multiply, divide

    init?(opType: String) {
        switch opType {
        case "Add": self = .add
        case "Sub": self = .subtract
        case "Mul": self = .multiply
        case "Div": self = .divide
        default: return nil
        }
    }

    @inline(__always)
    func apply(_ a: Float, _ b: Float) -> Float {
        switch self {
        case .add: a + b
        case .subtract: a - b
        case .multiply: a * b
        case .divide: a / b
        }
    }
}

/// 2-D convolution on channels-last samples. Weights are [kernelH][kernelW][inChannels][outChannels]
/// so that one im2col row (a kernel window, channels innermost) times the weights gives one output pixel.
struct ConvolutionLayer {
    var inChannels: Int, inHeight: Int, inWidth: Int
    var outChannels: Int, outHeight: Int, outWidth: Int
    var kernelHeight: Int, kernelWidth: Int
    var strideY: Int, strideX: Int
    var dilationY: Int, dilationX: Int
    var padTop: Int, padLeft: Int
    var weights: [Float]
    var bias: [Float]?
    var activation: Activation
    /// Runs as a direct convolution (`CInferenceKernels`) instead of im2col + sgemm; set by `PlanBuilder`
    /// from the engine's kernel set and `DirectConvolution.kernel(for:kernels:)`.
    var direct: DirectConvolution.Kernel = .none

    var reductionLength: Int { kernelHeight * kernelWidth * inChannels }
    var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && strideX == 1 && strideY == 1 && padTop == 0 && padLeft == 0
    }
}

enum PoolKind: Equatable, Sendable { case max, average }

/// Max or average pooling on channels-last samples.
struct PoolLayer {
    var kind: PoolKind
    var channels: Int, inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int
    var kernelHeight: Int, kernelWidth: Int
    var strideY: Int, strideX: Int
    var dilationY: Int, dilationX: Int
    var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    var countIncludePad: Bool
    /// The producing convolution's activation, applied after pooling instead of before:
    /// max(act(x)) = act(max(x)) for a non-decreasing act, and the pooled tensor is smaller.
    var activation: Activation = .none
}

/// Y = X · W + bias over `rowsPerSample` rows per sample; W is [inFeatures][outFeatures].
struct GemmLayer {
    var inFeatures: Int
    var outFeatures: Int
    var rowsPerSample: Int
    var weights: [Float]
    var bias: [Float]?
    var activation: Activation
    /// The C kernel with packed weights, or OpenBLAS (`none`); set by `PlanBuilder`.
    var packed: PackedGemm.Kernel = .none
}

/// y = x * scale[c] + shift[c], then `activation`; channel c of element i is
/// `(i / innerSize) % channels` (innerSize 1: channels innermost).
struct AffineLayer {
    var scale: [Float]
    var shift: [Float]
    var innerSize: Int
    var activation: Activation
}

enum LayerOperation {
    /// uint8 pixels to normalised floats.
    case input
    case convolution(ConvolutionLayer)
    case pool(PoolLayer)
    /// A convolution whose output only a max/average pool reads, run together a few images at a
    /// time so the convolution's output never leaves the core's L2 cache.
    case convolutionPool(ConvolutionLayer, PoolLayer)
    case globalPool(kind: PoolKind, channels: Int, pixels: Int)
    case gemm(GemmLayer)
    case activation(Activation)
    case affine(AffineLayer)
    /// Two activations of identical dims and layout.
    case binary(BinaryOperator)
    /// A channels-last [C, H, W] activation with a per-sample [C, 1, 1] activation (squeeze-and-
    /// excitation gating): out[p][c] = x[p][c] op s[c], or s[c] op x[p][c] when `channelsOnLeft`.
    /// Inputs are [x, s].
    case channelBinary(BinaryOperator, channels: Int, pixels: Int, channelsOnLeft: Bool)
    /// Two activations with broadcasting: output element i = a[tableA[i]] op b[tableB[i]].
    case broadcastBinary(BinaryOperator, tableA: [Int32], tableB: [Int32])
    /// Activation with a constant expanded to the activation's physical layout.
    case constantBinary(BinaryOperator, constant: [Float], constantOnLeft: Bool)
    /// output[i] = input[table[i]]: layout conversions and transposes.
    case gather(table: [Int32])
    case softmax(outer: Int, length: Int, inner: Int)
    /// Per sample, `outer` rounds of copying `chunks[k]` elements from input k.
    case concat(outer: Int, chunks: [Int])
    /// A view: the output is the input's memory reinterpreted (reshape, flatten, identity).
    case alias
}

final class Layer {
    var operation: LayerOperation
    var inputs: [Int]
    var output: Int
    /// The ONNX node(s) the layer computes, for profiles and messages.
    var nodeName: String
    var opType: String

    init(_ operation: LayerOperation, inputs: [Int], output: Int, nodeName: String, opType: String) {
        self.operation = operation
        self.inputs = inputs
        self.output = output
        self.nodeName = nodeName
        self.opType = opType
    }
}
