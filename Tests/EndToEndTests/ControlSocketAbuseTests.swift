import ControlClient
import Foundation
import Shared
import TestSupport
import Testing

/// Sends one request on a fresh connection and reads the answer up to the daemon's close.
private func exchange(_ daemon: DaemonProcess, _ request: String) throws -> RawResponse? {
    let connection = try RawControlConnection(socket: daemon.socket)
    try connection.send(request)
    return RawResponse(connection.readUntilClosed(timeout: 30).bytes)
}

private func get(_ target: String) -> String { "GET \(target) HTTP/1.1\r\nHost: fashiond\r\nConnection: close\r\n\r\n" }

/// Random bytes that every decoder rejects (no signature, not JSON, not 784 bytes).
private func noise(_ count: Int) -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    return [0] + (1..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
}

@Suite("Control socket under abuse", .tags(.broker), .serialized)
struct ControlSocketAbuseTests {
    @Test(
        "malformed HTTP, queries and JSON get 400 with a JSON error body; other mistakes get 404/405; the daemon keeps serving"
    )
    func malformedRequests() throws {
        let directory = try TemporaryDirectory()
        let daemon = DaemonProcess(directory: directory)
        try daemon.start()

        // Broken HTTP: answered by the connection's guard, then closed.
        let broken: [(String, String)] = [
            ("not HTTP at all", "GARBAGE\r\n\r\n"),
            ("a request line of NUL bytes", String(repeating: "\0", count: 64) + "\r\n\r\n"),
            ("a non-numeric content-length", "POST /v1/images HTTP/1.1\r\nHost: x\r\nContent-Length: lots\r\n\r\n"),
            ("a header line without a colon", "GET /v1/status HTTP/1.1\r\nHost x\r\n\r\n"),
            (
                "100 KB of header",
                "GET /v1/status HTTP/1.1\r\nX-Filler: \(String(repeating: "a", count: 100_000))\r\n\r\n"
            ),
            (
                "both content-length and chunked",
                "POST /v1/images HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            ),
        ]
        for (what, request) in broken {
            let response = try #require(try exchange(daemon, request), "\(what): no HTTP answer")
            #expect(response.status == 400, "\(what): \(response.status)")
            #expect(response.headers["content-type"] == "application/json", "\(what)")
            #expect(response.error?.code == "bad_request", "\(what): \(String(decoding: response.body, as: UTF8.self))")
            #expect(response.error?.message.isEmpty == false)
        }

        // Valid HTTP, invalid API use: stable codes, and the connection stays usable.
        let mistakes: [(request: String, status: Int, code: String)] = [
            (get("/v1/results?last=abc"), 400, "bad_query"),
            (get("/v1/results?last=-1"), 400, "bad_query"),
            (get("/v1/results?after=-1"), 400, "bad_cursor"),
            (get("/v1/results?follow=maybe"), 400, "bad_query"),
            (get("/v1/results?last=5&after=3"), 400, "bad_query"),
            (get("/v1/results?last=%zz"), 400, "bad_query"),
            (get("/v1/results?limit=1&limit=2"), 400, "bad_query"),
            ("POST /v1/images?request_id=a%0Ab HTTP/1.1\r\nContent-Length: 1\r\n\r\nx", 400, "bad_request_id"),
            (
                "POST /v1/images?model=\(String(repeating: "m", count: 300)) HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
                400, "bad_model"
            ),
            ("POST /v1/images HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400, "empty_image"),
            (
                "POST /v1/reload HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{not json", 400,
                "bad_json"
            ),
            ("POST /v1/reload HTTP/1.1\r\nContent-Length: 2\r\n\r\n[]", 400, "bad_json"),
            ("POST /v1/reload HTTP/1.1\r\nContent-Length: 15\r\n\r\n{\"force\": true}", 400, "bad_json"),
            ("DELETE /v1/status HTTP/1.1\r\n\r\n", 405, "method_not_allowed"),
            (get("/v2/status"), 404, "not_found"),
            (get("/v1/status/../models"), 404, "not_found"),
        ]
        let connection = try RawControlConnection(socket: daemon.socket)
        for mistake in mistakes {
            try connection.send(mistake.request.replacingOccurrences(of: "Connection: close\r\n", with: ""))
            let response = try #require(connection.readHead(), "\(mistake.request.prefix(40)): no answer")
            #expect(response.status == mistake.status, "\(mistake.request.prefix(60)): \(response.status)")
            #expect(
                response.error?.code == mistake.code,
                "\(mistake.request.prefix(60)): \(String(decoding: response.body, as: UTF8.self))")
        }
        try connection.send("GET /v1/status HTTP/1.1\r\nConnection: close\r\n\r\n")
        let status = try #require(RawResponse(connection.readUntilClosed().bytes))
        #expect(status.status == 200, "keep-alive connection unusable after API errors")
        #expect(try daemon.status().state == "ok")
        #expect(daemon.stop() == 0)
    }

    @Test("bodies over max_message_bytes (images) and max_request_bytes (the rest) are answered 413")
    func oversizedBodies() throws {
        let directory = try TemporaryDirectory()
        let daemon = DaemonProcess(
            directory: directory, arguments: ["--set", "max_message_bytes=65536", "--set", "max_request_bytes=2048"])
        try daemon.start()
        let image = noise(70_000)

        let declared = try RawControlConnection(socket: daemon.socket)
        try declared.send(
            "POST /v1/images HTTP/1.1\r\nContent-Type: application/octet-stream\r\nContent-Length: \(image.count)\r\n\r\n"
        )
        try declared.send(image)
        let tooLarge = try #require(RawResponse(declared.readUntilClosed().bytes))
        #expect(tooLarge.status == 413)
        #expect(tooLarge.error?.code == "payload_too_large")
        #expect(tooLarge.error?.message.contains("max_message_bytes") == true)

        // Chunked: no length up front; the limit still holds while reading.
        let chunked = try RawControlConnection(socket: daemon.socket)
        try chunked.send("POST /v1/images HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        for start in stride(from: 0, to: image.count, by: 10_000) {
            let piece = Array(image[start..<min(start + 10_000, image.count)])
            try chunked.send(String(piece.count, radix: 16) + "\r\n")
            try chunked.send(piece + Array("\r\n".utf8))
        }
        try chunked.send("0\r\n\r\n")
        let chunkedAnswer = try #require(RawResponse(chunked.readUntilClosed().bytes))
        #expect(chunkedAnswer.status == 413)
        #expect(chunkedAnswer.error?.code == "payload_too_large")

        let reload = try #require(
            try exchange(
                daemon, "POST /v1/reload HTTP/1.1\r\nContent-Length: 3000\r\n\r\n" + String(repeating: " ", count: 3000)
            ))
        #expect(reload.status == 413)
        #expect(reload.error?.message.contains("max_request_bytes") == true)

        // fashionctl reports the limit by name.
        let file = directory.path("big.bin")
        _ = FileManager.default.createFile(atPath: file, contents: Data(image))
        let viaCLI = try daemon.ctl(["submit", file])
        #expect(viaCLI.status == 1)
        #expect(viaCLI.stderr.contains("max_message_bytes"), "\(viaCLI.stderr)")
        // At the limit is fine.
        _ = FileManager.default.createFile(atPath: file, contents: Data(image.prefix(65536)))
        #expect(try daemon.ctl(["submit", file]).status == 0)
        #expect(daemon.stop() == 0)
    }

    @Test("slow clients: a dribbled head gets 408, a stalled body gets 408, a silent connection is closed")
    func slowClients() throws {
        let directory = try TemporaryDirectory()
        let daemon = DaemonProcess(
            directory: directory,
            arguments: [
                "--set", "control_header_timeout_ms=700", "--set", "control_idle_timeout_ms=1500",
            ])
        try daemon.start()

        // Slowloris: one byte of the head every 100 ms never completes it; the header deadline
        // counts from the first byte, so the trickle does not keep the connection alive.
        let loris = try RawControlConnection(socket: daemon.socket)
        let head =
            Array("GET /v1/status HTTP/1.1\r\nHost: fashiond\r\nX-Slow: ".utf8)
            + [UInt8](repeating: UInt8(ascii: "z"), count: 10_000)
        var sent = 0
        let deadline = Date(timeIntervalSinceNow: 30)
        while Date() < deadline {
            guard (try? loris.send([head[sent % head.count]])) != nil else { break }
            sent += 1
            Thread.sleep(forTimeInterval: 0.1)
        }
        let slowAnswer = RawResponse(loris.readUntilClosed(timeout: 5).bytes)
        #expect(slowAnswer?.status == 408, "the trickling client was not answered 408 after \(sent) bytes")
        #expect(slowAnswer?.error?.code == "request_timeout")
        #expect(slowAnswer?.error?.message.contains("control_header_timeout_ms") == true)

        // Head complete, body stalled.
        let stalled = try RawControlConnection(socket: daemon.socket)
        try stalled.send("POST /v1/images HTTP/1.1\r\nContent-Length: 1000\r\n\r\nonly a little")
        let (stalledBytes, stalledClosed) = stalled.readUntilClosed(timeout: 30)
        #expect(stalledClosed)
        #expect(RawResponse(stalledBytes)?.status == 408)
        #expect(RawResponse(stalledBytes)?.error?.message.contains("control_idle_timeout_ms") == true)

        // Connected, never a byte: closed without an answer.
        let silent = try RawControlConnection(socket: daemon.socket)
        let (silentBytes, silentClosed) = silent.readUntilClosed(timeout: 30)
        #expect(silentClosed)
        #expect(silentBytes.isEmpty)

        // A keep-alive connection left idle after an answer is closed too.
        let idle = try RawControlConnection(socket: daemon.socket)
        try idle.send("GET /v1/status HTTP/1.1\r\nHost: fashiond\r\n\r\n")
        let (idleBytes, idleClosed) = idle.readUntilClosed(timeout: 30)
        #expect(RawResponse(idleBytes)?.status == 200)
        #expect(idleClosed)

        // A client that sends its request promptly is unaffected, and so is one that follows.
        let follower = try Follower(daemon: daemon)
        Thread.sleep(forTimeInterval: 3)  // longer than both timeouts
        let good = try daemon.ctl(["submit", "--wait", "--json", try TestSetImages.load().files[2]])
        #expect(try parseRecords(good.stdout).first?.status == .ok, "\(good.stderr)")
        #expect(eventually(timeout: 30) { follower.records().count == 1 }, "the follower lost its stream")
        #expect(follower.interrupt() == 0)
        #expect(daemon.stop() == 0)
    }

    @Test("beyond control_max_connections a client gets 503 too_many_connections; capacity comes back")
    func connectionCap() throws {
        let directory = try TemporaryDirectory()
        let daemon = DaemonProcess(directory: directory, arguments: ["--set", "control_max_connections=16"])
        try daemon.start()
        var held: [RawControlConnection] = []
        for _ in 0..<16 {
            let connection = try RawControlConnection(socket: daemon.socket)
            try connection.send("GET /v1/status HTTP/1.1\r\nHost: fashiond\r\n\r\n")
            #expect(connection.readHead()?.status == 200)
            held.append(connection)
        }
        let refused = try #require(try exchange(daemon, get(ControlAPI.statusPath)))
        #expect(refused.status == 503)
        #expect(refused.error?.code == "too_many_connections")
        #expect(refused.error?.retryable == true)
        let viaCLI = try daemon.ctl(["status"])
        #expect(viaCLI.status == 1)
        #expect(viaCLI.stderr.contains("control_max_connections"), "\(viaCLI.stderr)")

        held.forEach { $0.close() }
        #expect(eventually(timeout: 30) { (try? daemon.ctl(["status", "--json"]).status) == 0 })
        #expect(daemon.stop() == 0)
    }

    /// `count` connections that have each sent `request` (method and target) as an HTTP/1.1 head; no
    /// answer read yet.
    static func connections(_ count: Int, to socket: String, sending request: String) throws -> [RawControlConnection] {
        try (0..<count).map { _ in
            let connection = try RawControlConnection(socket: socket)
            try connection.send("\(request) HTTP/1.1\r\nHost: fashiond\r\n\r\n")
            return connection
        }
    }

    @Test("500 connections and 200 followers stay within bounded memory, stream records, and are let go")
    func manyConnections() throws {
        let directory = try TemporaryDirectory()
        let daemon = DaemonProcess(directory: directory)
        try daemon.start()
        let images = try TestSetImages.load()
        // Warm up every path the connections will use, so the baseline includes it.
        _ = try daemon.ctl(["submit", "--wait", images.files[0]])
        _ = try daemon.records()
        let baselineRSS = try #require(ProcessProbe.residentMiB(daemon.pid))
        let baselineDescriptors = ProcessProbe.openDescriptors(daemon.pid)

        let plain = try Self.connections(500, to: daemon.socket, sending: "GET /v1/status")
        #expect(plain.count { $0.readHead()?.status == 200 } == 500)
        let followers = try Self.connections(200, to: daemon.socket, sending: "GET /v1/results?follow=true&last=0")
        #expect(followers.count { $0.readHead()?.status == 200 } == 200)

        let submitted = try daemon.ctl(["submit", "--wait", "--json"] + Array(images.files[1...3]))
        #expect(submitted.status == 0, "\(submitted.stderr)")
        let ids = try parseRecords(submitted.stdout).map(\.requestID)
        #expect(ids.count == 3)
        // Each follower gets the records (checked on a sample; all of them are written to).
        for follower in followers.prefix(20) {
            var text = ""
            _ = eventually(timeout: 30, interval: 0.05) {
                text += String(decoding: follower.readUntilClosed(timeout: 0.2).bytes, as: UTF8.self)
                return ids.allSatisfy(text.contains)
            }
            #expect(ids.allSatisfy(text.contains), "a follower missed records")
        }

        let loadedRSS = try #require(ProcessProbe.residentMiB(daemon.pid))
        let loadedDescriptors = ProcessProbe.openDescriptors(daemon.pid)
        print(
            "control socket load: RSS \(baselineRSS) MiB idle, \(loadedRSS) MiB with 500 connections + 200 followers; descriptors \(baselineDescriptors) -> \(loadedDescriptors)"
        )
        #expect(loadedDescriptors >= baselineDescriptors + 700)
        #expect(loadedRSS < baselineRSS + 200, "RSS grew from \(baselineRSS) to \(loadedRSS) MiB")

        (plain + followers).forEach { $0.close() }
        let released = eventually(timeout: 30) { ProcessProbe.openDescriptors(daemon.pid) <= baselineDescriptors + 8 }
        #expect(
            released,
            "descriptors still open: \(ProcessProbe.openDescriptors(daemon.pid)) (baseline \(baselineDescriptors))")
        let afterRSS = try #require(ProcessProbe.residentMiB(daemon.pid))
        print("control socket load: RSS \(afterRSS) MiB after the clients left")
        #expect(afterRSS < baselineRSS + 200)
        #expect(try daemon.status().state == "ok")
        #expect(daemon.stop() == 0)
    }

    @Test(
        "a follower that stops reading is dropped after control_write_timeout_ms; readers and shutdown are unaffected")
    func stalledFollowerIsDropped() throws {
        let directory = try TemporaryDirectory()
        let daemon = DaemonProcess(directory: directory, arguments: ["--set", "control_write_timeout_ms=1000"])
        try daemon.start()
        // About 600 KB of records: more than the socket buffer and NIO's high watermark hold.
        let client = ControlClient(socketPath: daemon.socket)
        let padding = String(repeating: "p", count: 180)
        let failures = LockedData()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for index in 0..<125 {
                do throws(ControlClientError) {
                    _ = try client.submit(image: noise(1000), requestID: "\(padding)-\(worker)-\(index)")
                } catch {
                    failures.append(Data("\(error.message)\n".utf8))
                }
            }
        }
        #expect(failures.get().isEmpty, "\(String(decoding: failures.get(), as: UTF8.self).prefix(500))")
        #expect(eventually(timeout: 60) { ((try? client.status().lastSeq) ?? 0) >= 1000 })
        let reader = try Follower(daemon: daemon)

        let stalled = try RawControlConnection(socket: daemon.socket)
        try stalled.send("GET /v1/results?follow=true&after=0 HTTP/1.1\r\nHost: fashiond\r\n\r\n")
        #expect(
            eventually(timeout: 30) { daemon.log().contains("stopped reading") }, "the stalled follower was not dropped"
        )
        let (bytes, closed) = stalled.readUntilClosed(timeout: 30)
        #expect(closed, "the stalled follower's connection is still open")
        print("stalled follower: dropped after \(bytes.count) bytes had been buffered for it")

        // An idle keep-alive connection and an active follower do not hold up shutdown.
        let idle = try RawControlConnection(socket: daemon.socket)
        try idle.send("GET /v1/status HTTP/1.1\r\nHost: fashiond\r\n\r\n")
        #expect(idle.readHead()?.status == 200)
        let good = try daemon.ctl(["submit", "--wait", "--json", try TestSetImages.load().files[4]])
        #expect(try parseRecords(good.stdout).first?.status == .ok)
        #expect(
            eventually(timeout: 30) { reader.records().contains { $0.status == .ok } },
            "the reading follower stopped receiving")
        #expect(daemon.stop(timeout: 30) == 0)
        #expect(idle.readUntilClosed(timeout: 10).closed)
        _ = reader.interrupt()
    }
}
