import ControlClient
import Foundation
import TestSupport
import Testing

@testable import WebConsole

@Suite("Web console: request policy and routing", .tags(.unit))
struct WebConsoleTests {
    @Test("Host must be the console's own address; loopback names are equivalent on loopback")
    func hostCheck() {
        let policy = RequestPolicy(listenHost: "127.0.0.1", port: 8484)
        #expect(policy.refusal(method: "GET", host: "127.0.0.1:8484", origin: nil, fetchSite: nil) == nil)
        #expect(policy.refusal(method: "GET", host: "LOCALHOST:8484", origin: nil, fetchSite: nil) == nil)
        #expect(policy.refusal(method: "GET", host: "[::1]:8484", origin: nil, fetchSite: nil) == nil)
        #expect(policy.refusal(method: "GET", host: "rebind.attacker.example:8484", origin: nil, fetchSite: nil) != nil)
        #expect(policy.refusal(method: "GET", host: "127.0.0.1:9999", origin: nil, fetchSite: nil) != nil)
        #expect(policy.refusal(method: "GET", host: nil, origin: nil, fetchSite: nil) != nil)
        let wide = RequestPolicy(listenHost: "0.0.0.0", port: 8484, extraHosts: ["box.lan:8484"])
        #expect(wide.refusal(method: "GET", host: "localhost:8484", origin: nil, fetchSite: nil) != nil)
        #expect(wide.refusal(method: "GET", host: "box.lan:8484", origin: nil, fetchSite: nil) == nil)
    }

    @Test("POSTs from another site or origin are refused; same-origin and non-browser clients pass")
    func crossSite() {
        let policy = RequestPolicy(listenHost: "127.0.0.1", port: 8484)
        let host = "127.0.0.1:8484"
        #expect(
            policy.refusal(method: "POST", host: host, origin: "http://127.0.0.1:8484", fetchSite: "same-origin") == nil
        )
        #expect(policy.refusal(method: "POST", host: host, origin: nil, fetchSite: nil) == nil)
        #expect(policy.refusal(method: "POST", host: host, origin: nil, fetchSite: "cross-site") != nil)
        #expect(policy.refusal(method: "POST", host: host, origin: nil, fetchSite: "same-site") != nil)
        #expect(policy.refusal(method: "POST", host: host, origin: "http://evil.example", fetchSite: nil) != nil)
        #expect(policy.refusal(method: "POST", host: host, origin: "null", fetchSite: nil) != nil)
        #expect(
            policy.refusal(method: "GET", host: host, origin: "http://evil.example", fetchSite: "cross-site") == nil,
            "reads are harmless: the browser keeps the answer from the other site")
    }

    @Test("the page is served from the binary; API calls without a daemon answer 502 with the client's reason")
    func routing() {
        let router = ConsoleRouter(
            client: ControlClient(socketPath: "/nonexistent/fashiond.sock"),
            policy: RequestPolicy(listenHost: "127.0.0.1", port: 8484))
        func get(_ path: String) -> ConsoleResponse {
            router.answer(
                ConsoleRequest(method: "GET", path: path, query: [:], headers: [("Host", "127.0.0.1:8484")], body: []))
        }
        let page = get("/")
        #expect(page.status == 200 && page.contentType.hasPrefix("text/html"))
        let html = String(decoding: page.body, as: UTF8.self)
        #expect(html.contains("/app.js") && html.contains("/app.css"))
        #expect(
            !html.contains("https://") && !String(decoding: get("/app.css").body, as: UTF8.self).contains("url("),
            "no external asset")
        #expect(get("/app.js").contentType.hasPrefix("text/javascript"))
        let status = get("/api/status")
        #expect(status.status == 502)
        #expect(String(decoding: status.body, as: UTF8.self).contains("daemon_unreachable"))
        #expect(get("/api/nothing").status == 404)
        #expect(get("/etc/passwd").status == 404)
        #expect(WebConsoleConfiguration.parseListen("127.0.0.1:0")! == ("127.0.0.1", 0))
        #expect(WebConsoleConfiguration.parseListen("[::1]:8484")! == ("::1", 8484))
        #expect(WebConsoleConfiguration.parseListen("8484") == nil)
    }

    @Test("a request target splits into its path as sent and its percent-decoded query")
    func targetSplitting() {
        let plain = ConsoleRequest.split(target: "/api/status")
        #expect(plain.path == "/api/status" && plain.query.isEmpty)
        let (path, query) = ConsoleRequest.split(
            target: "/api/inputs/a%2Fb?model=fashion+cnn&last=5&flag&bad=%zz&last=7&note=caf%C3%A9#top")
        #expect(path == "/api/inputs/a%2Fb", "the router decodes the request id itself, once")
        #expect(query == ["model": "fashion cnn", "last": "7", "flag": "", "note": "café"])
    }
}
