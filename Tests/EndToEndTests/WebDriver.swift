import Foundation

/// Headless Chromium driven through chromedriver's W3C WebDriver protocol (JSON over loopback HTTP),
/// the protocol Selenium speaks, without Selenium: the test needs only Debian's `chromium` and
/// `chromium-driver`.
final class WebDriver {
    static let elementKey = "element-6066-11e4-a52e-4f735466cecf"
    private let driver: ChildProcess
    private let port: Int
    private let session: String
    private let profile: TemporaryDirectory
    private let drains: [DrainThread]

    /// Starts chromedriver and a headless Chromium session.
    init(windowWidth: Int = 1440, windowHeight: Int = 1000) throws {
        port = try LoopbackHTTP.freePort()
        profile = try TemporaryDirectory()
        let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        guard let chromedriver else {
            throw HarnessError("chromedriver is not installed (apt-get install chromium-driver)")
        }
        driver = try ChildProcess([chromedriver, "--port=\(port)", "--allowed-ips=127.0.0.1"])
        drains = [DrainThread(driver.stdoutFD), DrainThread(driver.stderrFD)]
        let port = self.port
        let ready = eventually(timeout: 60, interval: 0.2) {
            ((try? LoopbackHTTP.request(port: port, path: "/status", timeout: 5).json()) as? [String: Any]).flatMap {
                ($0["value"] as? [String: Any])?["ready"] as? Bool
            } ?? false
        }
        guard ready else {
            driver.signal(SIGKILL)
            throw HarnessError("chromedriver did not come up on port \(port)")
        }
        let binary =
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first {
                FileManager.default.isExecutableFile(atPath: $0)
            } ?? "chromium"
        let capabilities: [String: Any] = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": [
                        "binary": binary,
                        "args": [
                            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                            "--no-first-run",
                            "--window-size=\(windowWidth),\(windowHeight)",
                            "--user-data-dir=\(profile.path("profile"))",
                        ],
                    ],
                ]
            ]
        ]
        do {
            let answer = try Self.call(port: port, "POST", "/session", capabilities)
            guard let value = answer as? [String: Any], let id = value["sessionId"] as? String else {
                throw HarnessError("chromedriver gave no session: \(answer)")
            }
            session = id
        } catch {
            driver.signal(SIGKILL)
            _ = driver.wait(timeout: 10)
            throw error
        }
    }

    deinit {
        _ = try? Self.call(port: port, "DELETE", "/session/\(session)", nil)
        driver.signal(SIGTERM)
        _ = driver.wait(timeout: 10)
    }

    func navigate(to url: String) throws { _ = try call("POST", "url", ["url": url]) }

    /// Runs `script` (a function body; `arguments[i]`) in the page and returns its JSON result.
    @discardableResult
    func execute(_ script: String, _ arguments: [Any] = []) throws -> Any {
        try call("POST", "execute/sync", ["script": script, "args": arguments])
    }

    /// The WebDriver id of the first element matching `selector`.
    func element(_ selector: String) throws -> String {
        let answer = try call("POST", "element", ["using": "css selector", "value": selector])
        guard let found = answer as? [String: Any], let id = found[Self.elementKey] as? String else {
            throw HarnessError("no element \(selector): \(answer)")
        }
        return id
    }

    /// Types into an element; for `<input type=file multiple>`, one path per line selects several files.
    func sendKeys(_ text: String, to element: String) throws {
        _ = try call("POST", "element/\(element)/value", ["text": text])
    }

    /// A PNG of the viewport.
    func screenshot() throws -> Data {
        guard let encoded = try call("GET", "screenshot", nil) as? String, let data = Data(base64Encoded: encoded)
        else {
            throw HarnessError("chromedriver returned no screenshot")
        }
        return data
    }

    /// Polls a JavaScript condition until it returns true.
    func waitFor(_ what: String, timeout: TimeInterval = 90, _ script: String) throws {
        var last: Any = ""
        let held = try eventually(timeout: timeout, interval: 0.25) {
            last = try execute(script)
            return last as? Bool == true
        }
        guard held else { throw HarnessError("timed out after \(Int(timeout)) s waiting for \(what) (last: \(last))") }
    }

    private func call(_ method: String, _ command: String, _ body: [String: Any]?) throws -> Any {
        try Self.call(port: port, method, "/session/\(session)/\(command)", body)
    }

    private static func call(port: Int, _ method: String, _ path: String, _ body: [String: Any]?) throws -> Any {
        let payload = try body.map { try [UInt8](JSONSerialization.data(withJSONObject: $0)) }
        let response = try LoopbackHTTP.request(
            port: port, method: method, path: path,
            headers: payload == nil ? [] : [("Content-Type", "application/json")], body: payload)
        let json = try response.json() as? [String: Any]
        let value = json?["value"] ?? NSNull()
        if response.status != 200 {
            throw HarnessError("WebDriver \(method) \(path) answered \(response.status): \(value)")
        }
        return value
    }
}
