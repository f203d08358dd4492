import CCurl
import Glibc
import Threads

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A libcurl easy handle: one HTTP/1.1 connection (kept alive between requests) used by one thread.
///
/// This is the only type that touches libcurl. It is deliberately not `Sendable`: an easy handle
/// must not be used by two threads at once, so each puller, acker or publisher thread owns its own.
/// Reusing the same handle is what keeps the TCP (and TLS) connection alive across requests.
final class CurlConnection {
    /// Largest response body accepted; a pull of 1,000 large images stays well below it.
    static let maxResponseBytes = 512 << 20

    private let handle: UnsafeMutableRawPointer
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private let context: Unmanaged<TransferContext>

    /// State the C callbacks reach through their user-data pointer.
    private final class TransferContext {
        var body: [UInt8] = []
        var overflowed = false
        let cancellation: CancellationFlag?
        init(cancellation: CancellationFlag?) { self.cancellation = cancellation }
    }

    private static let globalInit: CURLcode = curl_global_init(Int(CURL_GLOBAL_ALL))

    /// - Parameter cancellation: when cancelled, a transfer in progress is aborted within about a second.
    init(cancellation: CancellationFlag? = nil, userAgent: String = "fashiond") throws(PubSubError) {
        guard Self.globalInit == CURLE_OK, let handle = curl_easy_init() else {
            throw PubSubError(
                code: "curl_init_failed", message: "libcurl could not be initialised (out of memory?)",
                isRetryable: false)
        }
        self.handle = handle
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        context = Unmanaged.passRetained(TransferContext(cancellation: cancellation))

        // Threads call libcurl concurrently: no signals (they would hit a random thread).
        fashiond_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        fashiond_curl_setopt_long(handle, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1)
        fashiond_curl_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1)
        fashiond_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, 10_000)
        fashiond_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
        fashiond_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        fashiond_curl_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, "")
        fashiond_curl_setopt_string(handle, CURLOPT_USERAGENT, userAgent)
        fashiond_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, UnsafeMutableRawPointer(errorBuffer))
        let opaque = context.toOpaque()
        fashiond_curl_setopt_write_function(handle) { data, size, count, user in
            let context = Unmanaged<TransferContext>.fromOpaque(user!).takeUnretainedValue()
            let bytes = size * count
            guard context.body.count + bytes <= CurlConnection.maxResponseBytes else {
                context.overflowed = true
                return 0  // makes libcurl fail the transfer with CURLE_WRITE_ERROR
            }
            if let data, bytes > 0 {
                context.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: bytes))
            }
            return bytes
        }
        fashiond_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, opaque)
        fashiond_curl_setopt_long(handle, CURLOPT_NOPROGRESS, 0)
        fashiond_curl_setopt_xferinfo_function(handle) { user, _, _, _, _ in
            let context = Unmanaged<TransferContext>.fromOpaque(user!).takeUnretainedValue()
            return context.cancellation?.isCancelled == true ? 1 : 0
        }
        fashiond_curl_setopt_pointer(handle, CURLOPT_XFERINFODATA, opaque)
    }

    deinit {
        curl_easy_cleanup(handle)
        errorBuffer.deallocate()
        context.release()
    }

    /// Sends `request` and reads the whole response. Blocking: call only from a dedicated thread.
    func perform(_ request: HTTPRequest) throws(PubSubError) -> HTTPResponse {
        let state = context.takeUnretainedValue()
        if state.cancellation?.isCancelled == true { throw PubSubError.cancelled }
        state.body = []
        state.overflowed = false
        errorBuffer[0] = 0

        var headerList: UnsafeMutablePointer<curl_slist>? = nil
        // libcurl would send `Expect: 100-continue` for large bodies and wait for the server's go-ahead.
        for line in request.headers + ["Expect:"] {
            guard let appended = curl_slist_append(headerList, line) else {
                curl_slist_free_all(headerList)
                throw PubSubError(
                    code: "curl_out_of_memory", message: "libcurl could not allocate a header list", isRetryable: true)
            }
            headerList = appended
        }
        defer { curl_slist_free_all(headerList) }

        fashiond_curl_setopt_string(handle, CURLOPT_URL, request.url)
        fashiond_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList)
        fashiond_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(1, Int(request.timeout.seconds * 1000)))

        let code: CURLcode
        switch request.method {
        case .get:
            fashiond_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, nil)
            fashiond_curl_setopt_long(handle, CURLOPT_HTTPGET, 1)
            code = curl_easy_perform(handle)
        case .post, .put:
            // POSTFIELDS points into `body` for the duration of the transfer (no copy of large publishes).
            let body = request.body ?? []
            fashiond_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, request.method == .put ? "PUT" : nil)
            fashiond_curl_setopt_long(handle, CURLOPT_POST, 1)
            fashiond_curl_setopt_off_t(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
            code = body.withUnsafeBytes { raw in
                let placeholder: StaticString = ""
                let pointer = raw.baseAddress ?? UnsafeRawPointer(placeholder.utf8Start)
                fashiond_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: pointer))
                defer { fashiond_curl_setopt_pointer(handle, CURLOPT_POSTFIELDS, nil) }
                return curl_easy_perform(handle)
            }
        }
        guard code == CURLE_OK else { throw transportError(code, request: request, overflowed: state.overflowed) }

        var status = 0
        fashiond_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var connects = 0
        fashiond_curl_getinfo_long(handle, CURLINFO_NUM_CONNECTS, &connects)
        let body = state.body
        state.body = []
        return HTTPResponse(status: status, body: body, newConnections: connects)
    }

    private func transportError(_ code: CURLcode, request: HTTPRequest, overflowed: Bool) -> PubSubError {
        if code == CURLE_ABORTED_BY_CALLBACK { return .cancelled }
        let detail = errorBuffer[0] != 0 ? String(cString: errorBuffer) : String(cString: curl_easy_strerror(code))
        let target = Self.redactedTarget(request.url)
        if overflowed {
            return PubSubError(
                code: "pubsub_response_too_large",
                message: "the response from \(target) exceeded \(Self.maxResponseBytes) bytes; lower the pull size",
                isRetryable: false)
        }
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return PubSubError(
                code: "pubsub_timeout", message: "\(request.method.rawValue) \(target) timed out: \(detail)",
                isRetryable: true)
        case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_COULDNT_CONNECT:
            return PubSubError(
                code: "pubsub_unreachable",
                message: "cannot connect to \(target): \(detail); check the endpoint and that the service is running",
                isRetryable: true)
        case CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM,
            CURLE_SSL_CONNECT_ERROR:
            return PubSubError(
                code: "pubsub_transport", message: "\(request.method.rawValue) \(target) failed: \(detail)",
                isRetryable: true)
        default:
            return PubSubError(
                code: "pubsub_transport", message: "\(request.method.rawValue) \(target) failed: \(detail)",
                isRetryable: false)
        }
    }

    /// The URL without its query (which may carry parameters nobody needs in a log).
    static func redactedTarget(_ url: String) -> String {
        String(url.split(separator: "?", maxSplits: 1).first ?? Substring(url))
    }
}
