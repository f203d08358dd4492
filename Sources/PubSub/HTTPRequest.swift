/// One HTTP request as the REST clients build it.
struct HTTPRequest {
    enum Method: String {
        case get = "GET"
        case post = "POST"
        case put = "PUT"
    }

    var method: Method
    var url: String
    /// `Name: value` lines. Nothing is added implicitly except `Expect:` suppression.
    var headers: [String]
    var body: [UInt8]?
    /// The whole transfer, connection set-up included.
    var timeout: Duration

    init(_ method: Method, _ url: String, headers: [String] = [], body: [UInt8]? = nil, timeout: Duration) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}
