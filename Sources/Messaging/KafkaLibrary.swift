import CRdKafka

/// Facts about the librdkafka the process runs with.
package enum KafkaLibrary {
    /// librdkafka's version string, e.g. `2.0.2` (the loaded library's, not the headers').
    package static var version: String { String(cString: rd_kafka_version_str()) }
}
