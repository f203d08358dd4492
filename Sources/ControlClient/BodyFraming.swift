/// How the end of a response body is found (RFC 9112 section 6.3, client side).
enum BodyFraming: Equatable {
    case empty
    case contentLength(Int)
    case chunked
    case untilClose
}
