import Shared

/// The message headers fashiond reads (``StreamContract``), from Kafka headers or Pub/Sub attributes.
///
/// Header names are compared without regard to case, as HTTP and most producers treat them. Filled by
/// one pass over a message's headers, without building a dictionary of all of them: this runs for every
/// consumed message.
struct MessageHeaders: Sendable, Equatable {
    var requestID: String?
    var submittedAt: String?
    var model: String?
    var contentType: String?

    init(requestID: String? = nil, submittedAt: String? = nil, model: String? = nil, contentType: String? = nil) {
        self.requestID = requestID
        self.submittedAt = submittedAt
        self.model = model
        self.contentType = contentType
    }

    /// Keeps `value` if `name` is one of the headers above; with repeated names the last one wins.
    /// `value` is evaluated only then.
    mutating func set(name: String, value: @autoclosure () -> String) {
        if Self.same(name, StreamContract.requestIDHeader) {
            requestID = value()
        } else if Self.same(name, StreamContract.submittedAtHeader) {
            submittedAt = value()
        } else if Self.same(name, StreamContract.modelHeader) {
            model = value()
        } else if Self.same(name, StreamContract.contentTypeHeader) {
            contentType = value()
        }
    }

    /// ASCII case-insensitive equality with `lowercased`, a lower-case name.
    private static func same(_ name: String, _ lowercased: String) -> Bool {
        guard name.utf8.count == lowercased.utf8.count else { return false }
        // Compared as bytes, not through the generic UTF-8 view (`withUTF8` makes a bridged string contiguous).
        var name = name
        var lowercased = lowercased
        return name.withUTF8 { nameBytes in
            lowercased.withUTF8 { expected in
                for index in 0..<nameBytes.count {
                    let byte = nameBytes[index]
                    if (byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) != expected[index] { return false }
                }
                return true
            }
        }
    }
}
