// libFuzzer target: the control API's request validation (RequestRouter, the code between
// SwiftNIO's HTTP parser and the daemon). The input is read as
//   METHOD SP TARGET LF (NAME ":" VALUE LF)* LF BODY
// which is what NIO hands the router after parsing. Built by Fuzz/build.sh.
import Foundation
import Shared

@testable import Daemon

private let router = RequestRouter(maxImageBytes: 4096, maxRequestBytes: 1024)
private let statuses: Set<Int> = [400, 404, 405, 413]

@_cdecl("LLVMFuzzerTestOneInput")
public func controlRequestFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    let split = bytes.firstRange(of: [0x0A, 0x0A])
    let headBytes = split.map { Array(bytes[..<$0.lowerBound]) } ?? bytes
    let body = split.map { Array(bytes[$0.upperBound...]) } ?? []
    let lines = String(decoding: headBytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
    let requestLine = lines.first.map { $0.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false) } ?? []
    let method = requestLine.first.map(String.init) ?? ""
    let target = requestLine.count > 1 ? String(requestLine[1]) : ""
    let headers = lines.dropFirst().map { line -> (name: String, value: String) in
        let parts = line.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        return (String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
    }
    do {
        let route = try router.validate(method: method, target: target, headers: headers, body: body)
        switch route {
        case .status, .models, .results, .metrics:
            precondition(method == "GET", "\(method) routed to \(route)")
        case .input(let requestID):
            precondition(method == "GET" && !requestID.isEmpty && !requestID.contains("/"), "bad input route \(route)")
            precondition(
                RequestRouter.problem(with: requestID) == nil,
                "unsafe request id accepted: \(requestID.debugDescription)")
        case .submit(let parameters):
            precondition(method == "POST" && !body.isEmpty && body.count <= router.maxImageBytes, "bad submit accepted")
            for value in [parameters.model, parameters.requestID, parameters.contentType].compactMap({ $0 }) {
                precondition(
                    RequestRouter.problem(with: value) == nil, "unsafe parameter accepted: \(value.debugDescription)")
            }
        case .reload:
            precondition(method == "POST" && body.count <= router.maxRequestBytes, "bad reload accepted")
        }
        if case .results(let query) = route {
            if case .last(let last) = query.start {
                precondition((0...RequestRouter.maxRecordsPerAnswer).contains(last))
            }
            if let limit = query.limit { precondition((0...RequestRouter.maxRecordsPerAnswer).contains(limit)) }
        }
    } catch {
        precondition(statuses.contains(error.status), "unexpected status \(error.status) for \(error.code)")
        precondition(!error.code.isEmpty && !error.message.isEmpty, "error without code or message")
        let encoded = try? JSONEncoder().encode(ErrorResponse(code: error.code, message: error.message))
        precondition(encoded != nil, "error body does not encode")
    }
    return 0
}
