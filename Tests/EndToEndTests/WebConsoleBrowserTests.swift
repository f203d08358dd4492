import Foundation
import Shared
import TestSupport
import Testing

/// `fashionctl web` in a real browser (headless Chromium through chromedriver): send images from the
/// page, watch the live feed pick up a submit from outside, read the status panel; the screenshot is
/// kept as a test artifact (.build/test-artifacts/web-console.png, or $FASHIOND_TEST_ARTIFACTS).
@Suite("fashionctl web in headless Chromium", .tags(.broker, .slow), .serialized)
struct WebConsoleBrowserTests {
    /// A running fashiond on the embedded broker, and `fashionctl web` on it with the URL it printed.
    final class Console {
        let daemon: DaemonProcess
        let process: ChildProcess
        let url: String
        let port: Int
        private let errors: DrainThread

        init(directory: TemporaryDirectory) throws {
            daemon = DaemonProcess(directory: directory)
            try daemon.start()
            process = try ChildProcess([
                Paths.binary("fashionctl"), "--socket", daemon.socket, "web", "--listen", "127.0.0.1:0",
            ])
            errors = DrainThread(process.stderrFD)
            guard let line = process.readLine(), let start = line.range(of: "http://"),
                let url = line[start.lowerBound...].split(separator: " ").first.map(String.init),
                let port = Int(url.dropLast().split(separator: ":").last ?? "")
            else {
                process.signal(SIGKILL)
                daemon.stop()
                throw HarnessError("fashionctl web did not print its URL: \(errors.result())")
            }
            self.url = url
            self.port = port
        }

        deinit {
            process.signal(SIGINT)
            _ = process.wait(timeout: 10)
            daemon.stop()
        }
    }

    static var artifactDirectory: URL {
        if let explicit = ProcessInfo.processInfo.environment["FASHIOND_TEST_ARTIFACTS"] {
            return URL(fileURLWithPath: explicit)
        }
        return Paths.packageRoot.appendingPathComponent(".build/test-artifacts")
    }

    @Test("send images from the page, see their labels, the feed and the status panel; screenshot kept")
    func sendWatchAndStatus() throws {
        let directory = try TemporaryDirectory()
        let console = try Console(directory: directory)
        let daemon = console.daemon
        #expect(console.url.hasPrefix("http://127.0.0.1:"))
        let browser = try WebDriver()
        try browser.navigate(to: console.url)

        // Status panel: the daemon's state, backend and its four partitions with lag.
        try browser.waitFor(
            "the status panel",
            #"""
            return document.getElementById("state").dataset.state === "ok"
                && document.getElementById("status-backend").textContent === "embedded-kafka"
                && document.querySelectorAll("#partitions tbody tr").length === 4;
            """#)
        let model = try browser.execute(#"return document.getElementById("status-model").textContent;"#) as? String
        #expect(model?.hasPrefix("fashion-cnn") == true)
        #expect(
            (try browser.execute(#"return document.getElementById("model").options.length;"#) as? Int ?? 0) >= 2,
            "the model choice lists the default and the loaded models")

        // Send images through the page's file picker (several at once): each card fills in.
        let product = Paths.fixtures.appendingPathComponent("images/product")
        let files = ["03-trouser.jpg", "08-dress.png", "17-bag.jpg"].map { product.appendingPathComponent($0).path }
        try browser.sendKeys(files.joined(separator: "\n"), to: try browser.element("#files"))
        try browser.waitFor(
            "three labelled cards",
            #"""
            const cards = document.querySelectorAll("#cards .card");
            return cards.length === 3 && Array.from(cards).every((c) => c.dataset.state === "done");
            """#)
        let cards = try #require(
            try browser.execute(
                #"""
                return Array.from(document.querySelectorAll("#cards .card")).map((c) => ({
                    id: c.dataset.requestId, label: c.querySelector(".label").textContent,
                    bars: c.querySelectorAll(".prob").length }));
                """#) as? [[String: Any]])
        let records = try daemon.records()
        let labelByRequest = Dictionary(uniqueKeysWithValues: records.map { ($0.requestID, $0.label ?? "") })
        #expect(cards.count == 3)
        for card in cards {
            let id = try #require(card["id"] as? String)
            #expect(card["label"] as? String == labelByRequest[id], "the card shows the journaled label of \(id)")
            #expect(card["bars"] as? Int == 10, "ten class probabilities")
        }
        #expect(Set(cards.compactMap { $0["label"] as? String }) == ["Trouser", "Dress", "Bag"])

        // A rejected file shows its reason.
        try browser.sendKeys(
            Paths.fixtures.appendingPathComponent("hostile/png-truncated-idat.png").path,
            to: try browser.element("#files"))
        try browser.waitFor(
            "the rejection card",
            #"""
            const card = document.querySelector("#cards .card");
            return card.dataset.state === "rejected" && card.querySelector(".reason").textContent.length > 3;
            """#)

        // A submit from outside the page appears in the live feed with the model's input drawn.
        let submitted = try daemon.ctl(["submit", "--json", product.appendingPathComponent("15-sneaker.jpg").path])
        #expect(submitted.status == 0, "\(submitted)")
        let response = try ControlAPI.makeDecoder().decode(SubmitResponse.self, from: Data(submitted.stdout.utf8))
        try browser.waitFor(
            "the outside submit in the feed",
            ##"""
            const item = document.querySelector(`#feed li[data-request-id="\##(response.requestID)"]`);
            return item !== null && item.querySelector("canvas").dataset.drawn === "true";
            """##)
        let newest = try browser.execute(##"return document.querySelector("#feed li").dataset.requestId;"##) as? String
        #expect(newest == response.requestID, "newest first")
        let feedCount = try browser.execute(##"return document.querySelectorAll("#feed li").length;"##) as? Int
        #expect(feedCount == 5)
        // What the model saw: a bright garment on a dark background, not an empty canvas.
        let brightPixels =
            try browser.execute(
                ##"""
                const canvas = document.querySelector("#feed li canvas");
                const data = canvas.getContext("2d").getImageData(0, 0, 28, 28).data;
                let bright = 0;
                for (let i = 0; i < data.length; i += 4) if (data[i] > 128) bright++;
                return bright;
                """##) as? Int
        #expect((brightPixels ?? 0) > 20)
        try browser.waitFor(
            "the message counters",
            #"""
            return document.getElementById("status-messages").textContent.includes("4 predicted, 1 rejected");
            """#)

        let artifacts = Self.artifactDirectory
        try FileManager.default.createDirectory(at: artifacts, withIntermediateDirectories: true)
        let screenshot = try browser.screenshot()
        #expect(screenshot.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        try screenshot.write(to: artifacts.appendingPathComponent("web-console.png"))
        print("web console screenshot: \(artifacts.appendingPathComponent("web-console.png").path)")
    }

    @Test("the console refuses foreign Host headers and cross-site POSTs, and serves its page itself")
    func refusesCrossSite() throws {
        let directory = try TemporaryDirectory()
        let console = try Console(directory: directory)
        let daemon = console.daemon
        let image = try [UInt8](
            Data(contentsOf: Paths.fixtures.appendingPathComponent("images/product/03-trouser.jpg")))

        let page = try LoopbackHTTP.request(port: console.port, path: "/")
        #expect(page.status == 200 && page.text.contains("<script src=\"/app.js\""))
        #expect(page.headers["content-security-policy"]?.contains("default-src 'self'") == true)
        #expect(try LoopbackHTTP.request(port: console.port, path: "/app.js").text.contains("pollFeed"))
        let rebound = try LoopbackHTTP.request(
            port: console.port, path: "/api/status", headers: [("Host", "attacker.example:\(console.port)")])
        #expect(rebound.status == 403)
        let crossSite = try LoopbackHTTP.request(
            port: console.port, method: "POST", path: "/api/images",
            headers: [("Sec-Fetch-Site", "cross-site"), ("Content-Type", "image/jpeg")], body: image)
        #expect(crossSite.status == 403)
        let otherOrigin = try LoopbackHTTP.request(
            port: console.port, method: "POST", path: "/api/images",
            headers: [("Origin", "http://attacker.example"), ("Content-Type", "image/jpeg")], body: image)
        #expect(otherOrigin.status == 403)
        #expect(try daemon.status().consumed == 0, "nothing refused reached the daemon")
        let sameOrigin = try LoopbackHTTP.request(
            port: console.port, method: "POST", path: "/api/images",
            headers: [
                ("Origin", "http://127.0.0.1:\(console.port)"), ("Sec-Fetch-Site", "same-origin"),
                ("Content-Type", "image/jpeg"),
            ], body: image)
        #expect(sameOrigin.status == 201, "\(sameOrigin.text)")
        let status = try LoopbackHTTP.request(
            port: console.port, path: "/api/status", headers: [("Host", "localhost:\(console.port)")])
        #expect(status.status == 200 && status.text.contains("\"backend\":\"embedded-kafka\""))
    }
}
