import CRdKafka

enum RdKafkaClient {
    /// Settings every handle starts from; `settings` passed to ``create(type:settings:context:reportsErrors:configure:)``
    /// override them.
    ///
    /// `socket.nagle.disable`: librdkafka 2.0.2 leaves Nagle's algorithm on (newer releases turn it off by
    /// default). With Nagle on, a small produce or fetch response waits for the peer's delayed ACK, which shows
    /// up as stalls of tens of milliseconds between the moment an image is published and the moment it is
    /// consumed. The embedded broker's listening sockets take their options from the handle that anchors the
    /// mock cluster, so this setting also fixes the broker side of every connection to it.
    static let baseSettings: [(String, String)] = [("socket.nagle.disable", "true")]

    /// Creates an `rd_kafka_t`. ``baseSettings`` then `settings` are applied in order (later ones win);
    /// `configure` may set callbacks on the configuration before the handle takes ownership of it.
    static func create(
        type: rd_kafka_type_t,
        settings: [(String, String)],
        context: RdKafkaClientContext?,
        reportsErrors: Bool = false,
        configure: (OpaquePointer) -> Void = { _ in }
    ) throws(KafkaError) -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        var errorText = [CChar](repeating: 0, count: 512)
        for (key, value) in baseSettings + settings {
            let result = rd_kafka_conf_set(conf, key, value, &errorText, errorText.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError.configuration(key, value, errorBufferText(errorText))
            }
        }
        if let context {
            rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
            if context.logHandler != nil {
                rd_kafka_conf_set_log_cb(conf) { rk, level, facility, line in
                    guard let rk, let opaque = rd_kafka_opaque(rk) else { return }
                    let context = Unmanaged<RdKafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
                    context.logHandler?(
                        KafkaLogRecord(
                            level: level,
                            facility: facility.map { String(cString: $0) } ?? "",
                            message: line.map { String(cString: $0) } ?? "",
                            clientName: String(cString: rd_kafka_name(rk))))
                }
            }
            if reportsErrors {
                rd_kafka_conf_set_error_cb(conf) { rk, err, reason, opaque in
                    guard let opaque else { return }
                    let context = Unmanaged<RdKafkaClientContext>.fromOpaque(opaque).takeUnretainedValue()
                    var error = KafkaError.rdKafka(rd_kafka_resp_err_t(rawValue: err), "Kafka client error")
                    if let reason { error.message += " Detail: \(String(cString: reason))." }
                    context.clientError(error)
                }
            }
        }
        configure(conf)
        guard let handle = rd_kafka_new(type, conf, &errorText, errorText.count) else {
            // On failure the configuration is still ours.
            rd_kafka_conf_destroy(conf)
            throw KafkaError.clientCreation(errorBufferText(errorText))
        }
        return handle
    }
}
