/// The browser-facing safety checks of the web console, as pure functions.
///
/// The console acts with the caller's own permissions on the control socket, so a web page from
/// elsewhere must not be able to use it: a request whose `Host` is not the console's own address is
/// refused (DNS rebinding: a foreign name resolving to 127.0.0.1), and so is a state-changing request
/// that a browser marks as cross-site (`Sec-Fetch-Site`) or sends from another origin (`Origin`).
package struct RequestPolicy: Sendable, Equatable {
    /// `host:port` values accepted in the `Host` header (lower case).
    package var allowedHosts: Set<String>

    /// Accepts the listening address itself and, on loopback, the usual loopback names for `port`.
    package init(listenHost: String, port: Int, extraHosts: [String] = []) {
        var hosts: Set<String> = [Self.authority(host: listenHost, port: port)]
        if Self.isLoopback(listenHost) {
            for name in ["127.0.0.1", "localhost", "::1"] { hosts.insert(Self.authority(host: name, port: port)) }
        }
        for extra in extraHosts { hosts.insert(extra.lowercased()) }
        allowedHosts = hosts
    }

    /// Why the request must be refused (a sentence for the 403 body), or nil when it may proceed.
    package func refusal(method: String, host: String?, origin: String?, fetchSite: String?) -> String? {
        guard let host, allowedHosts.contains(host.lowercased()) else {
            return
                "the Host header \(host.map { "'\($0)'" } ?? "(missing)") is not this console's address; open it as http://\(allowedHosts.sorted().first ?? "127.0.0.1")/"
        }
        let safe = method == "GET" || method == "HEAD"
        if safe { return nil }
        if let fetchSite, !["same-origin", "none"].contains(fetchSite.lowercased()) {
            return "cross-site \(method) refused (Sec-Fetch-Site: \(fetchSite))"
        }
        if let origin, origin.lowercased() != "http://" + host.lowercased() {
            return "cross-origin \(method) from \(origin) refused"
        }
        return nil
    }

    /// Whether `host` is a loopback address or name.
    package static func isLoopback(_ host: String) -> Bool {
        let lowered = host.lowercased()
        return lowered == "localhost" || lowered == "::1" || lowered.hasPrefix("127.")
    }

    /// `host:port`, with brackets around an IPv6 address, as browsers write the Host header.
    package static func authority(host: String, port: Int) -> String {
        (host.contains(":") ? "[\(host)]" : host).lowercased() + ":\(port)"
    }
}
