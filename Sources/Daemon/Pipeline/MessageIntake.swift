import Dispatch
import Glibc
import Imaging
import Shared

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Turns a raw stream message into a ``PipelineItem``: decode, pick the model, name the request.
///
/// Runs on the reader thread of the message's partition (decoding is CPU work and per-partition
/// order must hold). Never throws: anything wrong with the message becomes a rejection item.
struct MessageIntake: Sendable {
    let decoder: ImageDecoder
    let maxMessageBytes: Int

    init(
        maxMessageBytes: Int, maxPixels: Int, maxDimension: Int = DecodeLimits.standard.maxDimension,
        maxJSONBytes: Int = DecodeLimits.standard.maxJSONBytes
    ) {
        self.maxMessageBytes = maxMessageBytes
        var limits = DecodeLimits()
        limits.maxEncodedBytes = maxMessageBytes
        limits.maxPixels = maxPixels
        limits.maxDimension = maxDimension
        limits.maxJSONBytes = maxJSONBytes
        self.decoder = ImageDecoder(limits: limits)
    }

    /// - Parameters:
    ///   - headers: what the message's headers (Kafka headers or Pub/Sub attributes) say.
    ///   - key: the message key as text, if any (built only when no header names the request).
    ///   - fallbackRequestID: used when neither header nor key carries a request id (built only then).
    ///   - original: the message as received, carried along for the dead-letter topic (nil when it is off).
    func makeItem(
        value: [UInt8], headers: MessageHeaders, key: @autoclosure () -> String?, source: ResultRecord.Source,
        fallbackRequestID: @autoclosure () -> String, original: OriginalMessage? = nil
    ) -> PipelineItem {
        let consumedAt = currentTimeMs()
        let decodeStarted = DispatchTime.now().uptimeNanoseconds
        let requestID =
            headers.requestID.flatMap { $0.isEmpty ? nil : $0 }
            ?? key().flatMap { $0.isEmpty ? nil : $0 } ?? fallbackRequestID()
        let submittedAt = headers.submittedAt.flatMap { Int64($0) }
        let headerModel = headers.model.flatMap { $0.isEmpty ? nil : $0 }
        var item = PipelineItem(
            source: source, requestID: requestID, submittedAtMs: submittedAt, consumedAtMs: consumedAt,
            format: nil, requestedModel: headerModel, content: .rejected(code: "", message: ""))
        item.original = original
        if value.count > maxMessageBytes {
            item.content = .rejected(
                code: "too_large",
                message: "message is \(value.count) bytes; the limit is \(maxMessageBytes) bytes (max_message_bytes)")
            return item
        }
        do {
            let image = try decoder.decode(value, contentType: headers.contentType)
            item.format = image.format.rawValue
            let model = headerModel ?? image.requestedModel
            item.requestedModel = model
            item.content = .image(pixels: image.pixels, model: model ?? "")
        } catch {
            item.content = .rejected(code: error.code, message: error.message)
        }
        item.decodedUptimeNanos = DispatchTime.now().uptimeNanoseconds
        item.decodeNanos = item.decodedUptimeNanos &- decodeStarted
        return item
    }
}
