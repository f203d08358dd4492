import ArgumentParser
import ControlClient
import Glibc
import Shared

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish images to the stream through fashiond.",
        discussion: """
            Each FILE is a PNG, a JPEG or 784 raw grayscale bytes (28x28); '-' reads standard input. \
            The content type is taken from the file's first bytes. All files are read before anything \
            is sent, so a missing file publishes nothing.

            Without --wait, prints one request id per file (with --json, one SubmitResponse object \
            per line). With --wait, prints each image's result as it is journaled: \
            '<file>: <label> (<confidence>)  request <id>', or the rejection reason (with --json, \
            the ResultRecord line). Exit status 1 if any image was rejected, 4 if not every result \
            arrived within --timeout.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("Image files; '-' for standard input.", valueName: "file"), completion: .file())
    var files: [String]

    @Option(help: ArgumentHelp("Model to classify with (default: the daemon's default model).", valueName: "name"))
    var model: String?

    @Option(
        name: .customLong("request-id"),
        help: ArgumentHelp("Request id to use (only with a single file).", valueName: "id"))
    var requestID: String?

    @Flag(help: "Wait for every image's result and print it.")
    var wait = false

    @Option(help: ArgumentHelp("Seconds to wait for the results with --wait.", valueName: "seconds"))
    var timeout: Double = 30

    @Flag(help: "Print NDJSON instead of text.")
    var json = false

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("name at least one image file, or '-' for standard input") }
        guard files.filter({ $0 == "-" }).count <= 1 else {
            throw ValidationError("standard input ('-') can be submitted only once")
        }
        if requestID != nil && files.count > 1 {
            throw ValidationError(
                "--request-id needs exactly one file; leave it out to let fashiond assign one per image")
        }
        if let requestID, requestID.isEmpty { throw ValidationError("--request-id must not be empty") }
        guard timeout.isFinite, timeout > 0 else {
            throw ValidationError("--timeout must be a positive number of seconds")
        }
    }

    func run() throws {
        let images = try files.map { file in (name: file == "-" ? "<stdin>" : file, bytes: try Self.read(file)) }
        let client = global.client()

        guard wait else {
            for image in images {
                let response = try client.submit(image: image.bytes, model: model, requestID: requestID)
                if json { try Output.json(response) } else { Output.line(response.requestID) }
            }
            return
        }

        // Only records after this cursor can belong to the images below; older ones are skipped
        // without being read twice.
        let cursor = try client.status().lastSeq
        var pending: [String: String] = [:]
        var order: [String] = []
        for image in images {
            let response = try client.submit(image: image.bytes, model: model, requestID: requestID)
            pending[response.requestID] = image.name
            order.append(response.requestID)
        }

        let deadline = ContinuousClock.now + .milliseconds(Int64((timeout * 1000).rounded(.up)))
        var rejected = 0
        let end = try client.followResultLines(after: cursor, deadline: deadline) { line in
            guard let name = pending.removeValue(forKey: line.record.requestID) else { return true }
            if line.record.status == .rejected { rejected += 1 }
            Output.line(json ? line.json : Self.describe(line.record, file: name))
            return !pending.isEmpty
        }
        if end == .deadlineReached && !pending.isEmpty {
            throw CommandFailure(
                message:
                    "timed out after \(Self.seconds(timeout)) waiting for the results of \(Self.list(order, pending))",
                status: .timeout)
        }
        if end == .endedByDaemon && !pending.isEmpty {
            throw CommandFailure(
                message:
                    "fashiond closed the results stream (is it stopping?) before the results of \(Self.list(order, pending)) arrived",
                status: .unreachable)
        }
        if rejected > 0 {
            throw CommandFailure(
                message: "\(rejected) of \(images.count) image\(images.count == 1 ? " was" : "s were") rejected",
                status: .failure)
        }
    }

    /// `shirt.png: Shirt (93.1%)  request 6f1c…` or `bad.png: rejected: the PNG ends early [png_truncated]  request …`
    static func describe(_ record: ResultRecord, file: String) -> String {
        switch record.status {
        case .ok:
            let label = record.label ?? record.labelIndex.map { FashionLabels.name(for: $0) } ?? "?"
            let confidence = record.confidence.map { " (\(Format.percent($0)))" } ?? ""
            return "\(file): \(label)\(confidence)  request \(record.requestID)"
        case .rejected:
            return "\(file): rejected: \(Format.rejectionReason(record))  request \(record.requestID)"
        }
    }

    private static func list(_ order: [String], _ pending: [String: String]) -> String {
        order.compactMap { id in pending[id].map { "\($0) (request \(id))" } }.joined(separator: ", ")
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }

    /// The whole file, or standard input for `-`; fails with the system's reason.
    static func read(_ path: String) throws(CommandFailure) -> [UInt8] {
        let descriptor = path == "-" ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure(reading: path, errno: errno) }
        defer { if descriptor != STDIN_FILENO { close(descriptor) } }
        var contents: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                contents += chunk[0..<count]
            } else if count == 0 {
                break
            } else if errno != EINTR {
                throw failure(reading: path, errno: errno)
            }
        }
        guard !contents.isEmpty else {
            throw CommandFailure(
                message: "\(path == "-" ? "standard input" : path) is empty; nothing to submit", status: .failure)
        }
        return contents
    }

    private static func failure(reading path: String, errno code: Int32) -> CommandFailure {
        let reason = strerror(code).map { String(cString: $0) } ?? "errno \(code)"
        return CommandFailure(
            message: "cannot read \(path == "-" ? "standard input" : path): \(reason)", status: .failure)
    }
}
