// libFuzzer target: ImageDecoder.decode on arbitrary bytes (PNG, JPEG, raw and prototype JSON,
// chosen by the bytes themselves as in the daemon). Built by Fuzz/build.sh.
@testable import Imaging

/// Content types the daemon may see next to a payload; picked from the input's length so that the
/// bytes themselves stay exactly as in the seed files.
private let contentTypes: [String?] = [nil, "image/png", "image/jpeg", "application/x-fashion-raw", "application/json"]

/// Lower than the daemon's defaults so that a declared 6000x6000 image costs milliseconds, not seconds;
/// the limit checks themselves are the same code.
private let decoder = ImageDecoder(limits: DecodeLimits(maxEncodedBytes: 1 << 20, maxPixels: 2_000_000, maxDimension: 4096, maxJSONBytes: 1 << 20))

@_cdecl("LLVMFuzzerTestOneInput")
public func imageDecoderFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let contentType = contentTypes[size % contentTypes.count]
    // The small-gray PNG fast path must be invisible: whatever it decodes, libpng decodes to the same pixels.
    if let fast = SmallGrayPNG.decode(bytes) {
        let libpng = try? PNGDecoder.decodeWithLibpng(bytes, limits: decoder.limits)
        precondition(libpng == fast, "the PNG fast path and libpng disagree on a \(fast.width)x\(fast.height) image")
    }
    do {
        let image = try decoder.decode(bytes, contentType: contentType)
        precondition(image.pixels.count == 784, "decoded image has \(image.pixels.count) pixels")
        precondition(image.sourceWidth > 0 && image.sourceHeight > 0, "decoded image has no size")
    } catch {
        precondition(ImageRejection.Code(rawValue: error.code) != nil, "unknown rejection code \(error.code)")
        precondition(!error.message.isEmpty, "rejection \(error.code) without a message")
        precondition(error.code != "decoder_failure", "decoder_failure is for resource failures, not input: \(error.message)")
    }
    return 0
}
