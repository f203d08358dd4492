import TestSupport
import Testing

@testable import Inference

/// The vectorized elementwise and global-pool loops against plain per-element references: counts that are not
/// a multiple of the vector width, the plan's in-place use, and NaN and infinities passing through as the
/// scalar loops pass them.
@Suite("Elementwise kernels", .tags(.unit))
struct ElementwiseKernelTests {
    static let specials: [Float] = [.nan, .infinity, -.infinity, -0.0, 0, .greatestFiniteMagnitude]

    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var generator = WinogradTests.Generator(state: seed)
        return (0..<count).map { $0 % 11 == 3 ? specials[$0 % specials.count] : generator.next() }
    }

    static func reference(_ op: BinaryOperator, _ x: Float, _ y: Float) -> Float {
        switch op {
        case .add: x + y
        case .subtract: x - y
        case .multiply: x * y
        case .divide: x / y
        }
    }

    @Test(
        "binary operators, into a new buffer and in place over either operand",
        arguments: [BinaryOperator.add, .subtract, .multiply, .divide], [1, 4, 7, 32, 1_571])
    func binary(op: BinaryOperator, count: Int) {
        let a = Self.values(count, seed: UInt64(count))
        let b = Self.values(count, seed: UInt64(count) &+ 99)
        let expected = zip(a, b).map { Self.reference(op, $0, $1) }
        var separate = [Float](repeating: .nan, count: count)
        var inPlace = a
        var inPlaceRight = b
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                separate.withUnsafeMutableBufferPointer {
                    Kernels.binary(op, a.baseAddress!, b.baseAddress!, $0.baseAddress!, count: count)
                }
                inPlace.withUnsafeMutableBufferPointer {
                    Kernels.binary(op, UnsafePointer($0.baseAddress!), b.baseAddress!, $0.baseAddress!, count: count)
                }
                // The plan's `channelBinary` with the channels on the left writes over the right operand.
                inPlaceRight.withUnsafeMutableBufferPointer {
                    Kernels.binary(op, a.baseAddress!, UnsafePointer($0.baseAddress!), $0.baseAddress!, count: count)
                }
            }
        }
        #expect(Self.firstMismatch(separate, expected) == nil)
        #expect(Self.firstMismatch(inPlace, expected) == nil)
        #expect(Self.firstMismatch(inPlaceRight, expected) == nil)
    }

    /// The first index where `actual` differs from `expected` bit for bit (NaN equal to NaN: the loops must
    /// compute exactly what the scalar operation does), with both values; nil when none does.
    static func firstMismatch(_ actual: [Float], _ expected: [Float]) -> String? {
        guard actual.count == expected.count else { return "\(actual.count) values, expected \(expected.count)" }
        for (i, (x, y)) in zip(actual, expected).enumerated() where x.isNaN ? !y.isNaN : x.bitPattern != y.bitPattern {
            return "[\(i)]: \(x), expected \(y)"
        }
        return nil
    }

    @Test(
        "global max and average pools: channel groups of sixteen, a tail, every pixel in order",
        arguments: [PoolKind.max, .average], [(1, 1), (5, 3), (16, 49), (37, 9)])
    func globalPool(kind: PoolKind, shape: (channels: Int, pixels: Int)) {
        let (channels, pixels, images) = (shape.channels, shape.pixels, 3)
        let input = Self.values(images * pixels * channels, seed: UInt64(channels * pixels))
        var expected = [Float]()
        for image in 0..<images {
            for c in 0..<channels {
                var total: Float = kind == .max ? -.infinity : 0
                for p in 0..<pixels {
                    let value = input[(image * pixels + p) * channels + c]
                    if kind == .max {
                        if value > total { total = value }
                    } else {
                        total += value
                    }
                }
                expected.append(kind == .average ? total * (1 / Float(pixels)) : total)
            }
        }
        var actual = [Float](repeating: .nan, count: images * channels)
        input.withUnsafeBufferPointer { input in
            actual.withUnsafeMutableBufferPointer {
                Kernels.globalPool(
                    kind: kind, channels: channels, pixels: pixels, input: input.baseAddress!,
                    output: $0.baseAddress!, images: images)
            }
        }
        #expect(Self.firstMismatch(actual, expected) == nil)
    }
}
