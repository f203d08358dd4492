import Foundation
import Shared
import TestSupport
import Testing

@testable import Daemon

@Suite("Control request validation and access policy", .tags(.unit))
struct RequestRouterTests {
    let router = RequestRouter(maxImageBytes: 1000, maxRequestBytes: 100)

    func outcome(
        _ method: String, _ target: String, headers: [(name: String, value: String)] = [], body: [UInt8] = []
    ) -> Result<ControlRoute, RouteError> {
        Result { () throws(RouteError) -> ControlRoute in
            try router.validate(method: method, target: target, headers: headers, body: body)
        }
    }

    func error(
        _ method: String, _ target: String, headers: [(name: String, value: String)] = [], body: [UInt8] = []
    ) -> RouteError? {
        if case .failure(let error) = outcome(method, target, headers: headers, body: body) { return error }
        return nil
    }

    @Test("known endpoints route with their parameters, in origin and absolute form")
    func routes() throws {
        #expect(try outcome("GET", "/v1/status").get() == .status)
        #expect(try outcome("GET", "http://fashiond/v1/models#ignored").get() == .models)
        #expect(
            try outcome("GET", "/v1/results").get()
                == .results(ResultsQuery(start: .last(10), limit: nil, follow: false)))
        #expect(
            try outcome("GET", "/v1/results?after=42&follow&limit=7").get()
                == .results(ResultsQuery(start: .after(42), limit: 7, follow: true)))
        #expect(
            try outcome("GET", "/v1/results?last=999999999999999999999").get()
                == .results(ResultsQuery(start: .last(RequestRouter.maxRecordsPerAnswer), limit: nil, follow: false)))
        let submit = try outcome(
            "POST", "/v1/images?model=fashion-cnn&request_id=a%2Fb+c&unknown=1",
            headers: [("Content-Type", "image/png")], body: [1]
        ).get()
        #expect(submit == .submit(SubmitParameters(model: "fashion-cnn", requestID: "a/b c", contentType: "image/png")))
        #expect(try outcome("POST", "/v1/reload", body: Array(" {} ".utf8)).get() == .reload)
    }

    @Test("mistakes get their status and a stable code")
    func mistakes() {
        let cases: [(String, String, [(name: String, value: String)], [UInt8], Int, String)] = [
            ("GET", "/v2/status", [], [], 404, "not_found"),
            ("POST", "/v1/status", [], [], 405, "method_not_allowed"),
            ("GET", "*", [], [], 400, "bad_target"),
            ("GET", "/v1/results?last=1&last=2", [], [], 400, "bad_query"),
            ("GET", "/v1/results?last=%4", [], [], 400, "bad_query"),
            ("GET", "/v1/results?last=%FF", [], [], 400, "bad_query"),
            ("GET", "/v1/results?after=x", [], [], 400, "bad_cursor"),
            ("GET", "/v1/results?follow=perhaps", [], [], 400, "bad_query"),
            ("POST", "/v1/images", [], [], 400, "empty_image"),
            ("POST", "/v1/images?request_id=a%00b", [], [1], 400, "bad_request_id"),
            ("POST", "/v1/images", [("content-type", "image/png\u{7F}")], [1], 400, "bad_content_type"),
            ("POST", "/v1/images", [("content-length", "1001")], [], 413, "payload_too_large"),
            ("POST", "/v1/images", [("content-length", "5"), ("content-length", "6")], [], 400, "bad_request"),
            ("POST", "/v1/images", [], [UInt8](repeating: 1, count: 1001), 413, "payload_too_large"),
            ("POST", "/v1/reload", [], Array("[1]".utf8), 400, "bad_json"),
            ("POST", "/v1/reload", [], Array("{\"a\":1}".utf8), 400, "bad_json"),
            ("POST", "/v1/reload", [], [UInt8](repeating: 32, count: 101), 413, "payload_too_large"),
        ]
        for (method, target, headers, body, status, code) in cases {
            let refusal = error(method, target, headers: headers, body: body)
            #expect(refusal?.status == status, "\(method) \(target): \(String(describing: refusal))")
            #expect(refusal?.code == code, "\(method) \(target): \(String(describing: refusal))")
            #expect(refusal?.message.isEmpty == false)
        }
        #expect(
            error("POST", "/v1/images", body: [UInt8](repeating: 1, count: 1001))?.message.contains("max_message_bytes")
                == true)
    }

    @Test("access: root, the daemon's user and group members only; unknown credentials are refused")
    func accessPolicy() {
        let policy = ControlAccessPolicy(daemonUserID: 500, groupID: 900, groupName: "fashiond")
        func peer(uid: UInt32, gid: UInt32, groups: [UInt32]?) -> ControlPeer {
            ControlPeer(credentials: PeerCredentials(pid: 1, uid: uid, gid: gid), supplementaryGroups: groups)
        }
        #expect(policy.permits(peer(uid: 0, gid: 0, groups: [])))
        #expect(policy.permits(peer(uid: 500, gid: 500, groups: [])))
        #expect(policy.permits(peer(uid: 1234, gid: 900, groups: [])))
        #expect(policy.permits(peer(uid: 1234, gid: 100, groups: [27, 900])))
        #expect(!policy.permits(peer(uid: 1234, gid: 100, groups: [27, 901])))
        #expect(!policy.permits(nil))
        let closed = ControlAccessPolicy(daemonUserID: 500, groupID: nil, groupName: "missing")
        #expect(!closed.permits(peer(uid: 1234, gid: 100, groups: [900])))
        #expect(closed.refusal(for: peer(uid: 1234, gid: 100, groups: [])).message.contains("does not exist"))
        #expect(policy.refusal(for: peer(uid: 1234, gid: 100, groups: [])).status == 403)
    }

    @Test("the zero-padded SO_PEERGROUPS answer is read up to its last group")
    func peerGroupPadding() {
        var list = ControlAccessPolicy.PeerGroupBuffer(repeating: 0)
        #expect(ControlAccessPolicy.groups(fromPaddedList: list) == [])
        list[0] = 0
        list[1] = 27
        list[2] = 100
        #expect(ControlAccessPolicy.groups(fromPaddedList: list) == [0, 27, 100])
    }
}
