import Glibc
import NIOCore
import NIOHTTP1
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A complete HTTP/1.1 response with a JSON error body, as bytes: for answers the guard sends on
/// its own, below the HTTP codec, when no response is under way (timeouts, parse errors, overload).
func rawErrorResponse(status: HTTPResponseStatus, code: String, message: String, retryable: Bool = false) -> ByteBuffer
{
    var body =
        (try? ControlAPI.makeEncoder().encode(ErrorResponse(code: code, message: message, retryable: retryable)))
        ?? Data()
    body.append(UInt8(ascii: "\n"))
    var buffer = ByteBuffer()
    buffer.writeString("HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n")
    buffer.writeString("content-type: application/json\r\ncontent-length: \(body.count)\r\nconnection: close\r\n\r\n")
    buffer.writeBytes(body)
    return buffer
}
