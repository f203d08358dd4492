import Glibc

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Shape and index arithmetic shared by the compiler's constant folding and layout tables.
enum ShapeMath {
    static func product(_ dims: [Int]) -> Int { dims.reduce(1, *) }

    static func strides(_ dims: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: dims.count)
        var running = 1
        for axis in stride(from: dims.count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= dims[axis]
        }
        return strides
    }

    /// NumPy-style broadcast of two shapes, or nil when they are incompatible.
    static func broadcast(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        let paddedA = [Int](repeating: 1, count: rank - a.count) + a
        let paddedB = [Int](repeating: 1, count: rank - b.count) + b
        var result: [Int] = []
        for axis in 0..<rank {
            let (x, y) = (paddedA[axis], paddedB[axis])
            if x == y || y == 1 { result.append(x) } else if x == 1 { result.append(y) } else { return nil }
        }
        return result
    }

    /// For each element of a tensor of shape `target`, the index of the element of a tensor of
    /// shape `source` that broadcasting maps onto it. `source` must broadcast to `target`.
    static func broadcastIndexTable(from source: [Int], to target: [Int]) -> [Int] {
        let padded = [Int](repeating: 1, count: target.count - source.count) + source
        let sourceStrides = strides(padded)
        let count = product(target)
        var table = [Int](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: target.count)
        for flat in 0..<count {
            var offset = 0
            for axis in 0..<target.count where padded[axis] != 1 { offset += index[axis] * sourceStrides[axis] }
            table[flat] = offset
            var axis = target.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < target[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
        return table
    }

    /// For each element of the transposed tensor (shape `dims` permuted by `permutation`), the
    /// index of the source element.
    static func transposeIndexTable(dims: [Int], permutation: [Int]) -> [Int] {
        let outputDims = permutation.map { dims[$0] }
        let sourceStrides = strides(dims)
        let count = product(dims)
        var table = [Int](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: outputDims.count)
        for flat in 0..<count {
            var offset = 0
            for axis in 0..<outputDims.count { offset += index[axis] * sourceStrides[permutation[axis]] }
            table[flat] = offset
            var axis = outputDims.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < outputDims[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
        return table
    }

    static func isPermutation(_ permutation: [Int], rank: Int) -> Bool {
        permutation.count == rank && Set(permutation) == Set(0..<rank)
    }
}

extension Activation {
    /// The scalar definition; kernels have vectorised equivalents that must agree with it.
    @inline(__always)
    func apply(_ x: Float) -> Float {
        switch self {
        case .none: x
        case .relu: x > 0 ? x : 0
        case .leakyRelu(let alpha): x >= 0 ? x : x * alpha
        case .sigmoid: 1 / (1 + expf(-x))
        case .tanh: tanhf(x)
        case .clip(let low, let high): Swift.min(Swift.max(x, low), high)
        }
    }
}
