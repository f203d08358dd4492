#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension String {
    /// printf-style formatting through the C library's `vsnprintf`, for the few numeric formats printed
    /// (`%.1f`, `%02d`, `%02X`). It stands in for Foundation's `String(format:)`, which FoundationEssentials
    /// lacks: that one alone would link full Foundation and its ICU data (about 40 MB) into every binary.
    /// Pass `Int32`/`UInt32` for `%d`/`%X` and `Int` for `%ld`, as in C.
    package init(cFormat format: String, _ arguments: any CVarArg...) {
        var capacity = 64
        while true {
            var buffer = [CChar](repeating: 0, count: capacity)
            let length = Int(withVaList(arguments) { vsnprintf(&buffer, capacity, format, $0) })
            guard length >= 0 else {
                self = format
                return
            }
            if length < capacity {
                self = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                return
            }
            capacity = length + 1
        }
    }
}
