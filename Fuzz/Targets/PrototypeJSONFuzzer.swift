// libFuzzer target: the prototype-JSON parser (PrototypeJSON.parse and JSONCursor) on arbitrary
// bytes. Built by Fuzz/build.sh.
@testable import Imaging

@_cdecl("LLVMFuzzerTestOneInput")
public func prototypeJSONFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    do {
        let envelope = try PrototypeJSON.parse(bytes)
        precondition(
            envelope.image.width == 28 && envelope.image.height == 28,
            "accepted a \(envelope.image.width)x\(envelope.image.height) image")
        precondition(envelope.image.pixels.count == 784, "accepted \(envelope.image.pixels.count) pixels")
        precondition((envelope.model?.utf8.count ?? 0) <= PrototypeJSON.maxFieldBytes, "model longer than the limit")
        precondition((envelope.time?.utf8.count ?? 0) <= PrototypeJSON.maxFieldBytes, "time longer than the limit")
    } catch {
        precondition(error.code.hasPrefix("json_"), "prototype JSON rejected with a non-JSON code \(error.code)")
        precondition(!error.message.isEmpty, "rejection \(error.code) without a message")
    }
    return 0
}
