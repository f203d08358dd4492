// libFuzzer target: ImageDecoder.decode on arbitrary bytes (PNG, JPEG, raw and prototype JSON,
// chosen by the bytes themselves as in the daemon). Built by Fuzz/build.sh.
@testable import Imaging

/// Content types the daemon may see next to a payload; picked from the input's length so that the
/// bytes themselves stay exactly as in the seed files.
private let contentTypes: [String?] = [nil, "image/png", "image/jpeg", "application/x-fashion-raw", "application/json"]

/// Lower than the daemon's defaults so that a declared 6000x6000 image costs milliseconds, not seconds;
/// the limit checks themselves are the same code.
private let decoder = ImageDecoder(
    limits: DecodeLimits(maxEncodedBytes: 1 << 20, maxPixels: 2_000_000, maxDimension: 4096, maxJSONBytes: 1 << 20))

@_cdecl("LLVMFuzzerTestOneInput")
public func imageDecoderFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let contentType = contentTypes[size % contentTypes.count]
    // The small-gray PNG fast path must be invisible: with it, a PNG decodes to the same pixels, or is
    // rejected with the same code, as through libpng alone (the limits are checked before either path).
    if bytes.starts(with: PNGDecoder.signature) {
        let withFastPath = pngOutcome(bytes, allowFastPath: true)
        let libpngOnly = pngOutcome(bytes, allowFastPath: false)
        precondition(
            withFastPath == libpngOnly,
            "the PNG fast path changes the outcome: \(withFastPath) with it, \(libpngOnly) without")
    }
    do {
        let image = try decoder.decode(bytes, contentType: contentType)
        precondition(image.pixels.count == 784, "decoded image has \(image.pixels.count) pixels")
        precondition(image.sourceWidth > 0 && image.sourceHeight > 0, "decoded image has no size")
    } catch {
        precondition(ImageRejection.Code(rawValue: error.code) != nil, "unknown rejection code \(error.code)")
        precondition(!error.message.isEmpty, "rejection \(error.code) without a message")
        precondition(
            error.code != "decoder_failure", "decoder_failure is for resource failures, not input: \(error.message)")
    }
    return 0
}

/// What decoding a PNG came to, for comparing the two paths.
private enum PNGOutcome: Equatable, CustomStringConvertible {
    case image(GrayImage)
    case rejected(code: String)

    var description: String {
        switch self {
        case .image(let image): "a \(image.width)x\(image.height) image"
        case .rejected(let code): "rejected (\(code))"
        }
    }
}

private func pngOutcome(_ bytes: [UInt8], allowFastPath: Bool) -> PNGOutcome {
    do {
        return .image(try PNGDecoder.decode(bytes, limits: decoder.limits, allowFastPath: allowFastPath))
    } catch {
        return .rejected(code: error.code)
    }
}
