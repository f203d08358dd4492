import Glibc
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A consumed message on its way through decode → batch → engine → journal.
struct PipelineItem: Sendable {
    /// What the decoder made of the message.
    enum Content: Sendable {
        /// A 28×28 image (784 bytes) to classify with `model`.
        case image(pixels: [UInt8], model: String)
        /// The message cannot be classified; it is journaled as a rejection.
        case rejected(code: String, message: String)
    }

    var source: ResultRecord.Source
    var requestID: String
    var submittedAtMs: Int64?
    var consumedAtMs: Int64
    var format: String?
    /// Model named by the message (header or prototype JSON), if any.
    var requestedModel: String?
    var content: Content
    /// The message as it arrived, kept only while a dead-letter topic is configured, so a rejection can
    /// be republished there unchanged.
    var original: OriginalMessage?
    /// Monotonic time (ns) when decoding finished and how long it took: the stage timings in /v1/status.
    var decodedUptimeNanos: UInt64 = 0
    var decodeNanos: UInt64 = 0
}

/// Milliseconds since the Unix epoch, the unit of every timestamp in a result record.
func currentTimeMs() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded()) }
